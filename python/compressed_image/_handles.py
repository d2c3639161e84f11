"""Read-only handles shared by the Dask tasks of one process: one per (file, commit)."""

from __future__ import annotations

import os
import threading
from typing import Dict, Optional, Tuple

from . import Image, _compat
from ._compat import Snapshot

# Handles kept per process; the oldest goes first (its file is unmapped once unused).
CACHE_SIZE = 8

_lock = threading.Lock()
_cache: Dict[Tuple[str, Optional[Snapshot]], Image] = {}
_pid = os.getpid()


def cached_image(path: str, snapshot: Optional[Snapshot]) -> Image:
    """A read-only handle of the image file at `path`: at exactly `snapshot`, or (None) at
    the commit it held when this process first asked. A forked child starts afresh."""
    global _pid
    key = (path, snapshot)
    with _lock:
        if _pid != os.getpid():
            _cache.clear()
            _pid = os.getpid()
        image = _cache.get(key)
        if image is not None:
            return image
    # Opening maps and checks the file: outside the lock, so other files' tasks go on.
    if snapshot is None:
        image = Image.open(path, read_only=True)
    else:
        image = _compat._open_at(path, snapshot)
    with _lock:
        image = _cache.setdefault(key, image)
        while len(_cache) > CACHE_SIZE:
            del _cache[next(iter(_cache))]
    return image


def forget(path: str) -> None:
    """Drop this process's handles of `path` (a temporary file about to be removed)."""
    with _lock:
        for key in [k for k in _cache if k[0] == path]:
            del _cache[key]
