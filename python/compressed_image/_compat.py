"""The extension features the parallel layer (``compressed_image.dask``, ``xarray_backend``,
``zarr_io``) builds on, each behind one adapter with a fallback for builds without it.

Pinned commits: ``Image.snapshot_id()`` names the commit a handle reads, and
``Image.open_snapshot(path, id)`` opens exactly that commit read-only in any process
(``SnapshotUnavailableError`` once the file was compacted or replaced). Without them a
snapshot is the file's identity and commit generation (``FileState``), and opening at it
opens the newest commit read-only and raises ``SnapshotUnavailableError`` unless it is still
that one: a graph then never mixes commits, but fails where the pinned build reads on.

Stored chunks: ``Channel.compress_chunk(index, array)`` compresses a chunk on any handle
(read-only ones too, in any process) and the writer commits the bytes with
``set_stored_chunk``, so compression runs where the data is. Without them the payload
is the chunk itself and the writer compresses it with ``set_chunk``.

Lazy channels: ``Image.add_lazy_channel`` adds a channel of zeros without touching any
data. Without it the channel is added from a zero-strided view of one zero, which the
extension makes contiguous before finding every chunk a fill.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, NamedTuple, Optional, Tuple, Union, cast

import numpy as np
import numpy.typing as npt

from . import Channel, Codec, Image


HAS_SNAPSHOTS: bool = hasattr(Image, "open_snapshot") and hasattr(Image, "snapshot_id")
HAS_STORED_CHUNKS: bool = hasattr(Channel, "compress_chunk") and hasattr(Channel, "set_stored_chunk")
HAS_LAZY_CHANNELS: bool = hasattr(Image, "add_lazy_channel")


class _FallbackSnapshotUnavailableError(RuntimeError):
    """The commit a snapshot names is no longer the file's newest (builds without pinning)."""


# The extension's class when it has one, so callers catch one name either way.
SnapshotUnavailableError: type[RuntimeError] = getattr(
    sys.modules[Image.__module__], "SnapshotUnavailableError", _FallbackSnapshotUnavailableError
)


class FileState(NamedTuple):
    """A commit named without pinning: the file (device, inode) and its commit generation.

    An atomic replacement or a compaction gives the path another inode; every commit raises
    the generation.
    """

    device: int
    inode: int
    generation: int


# What a task needs to read one commit again: the extension's snapshot id, or a FileState.
Snapshot = Union[bytes, FileState]
# What a worker hands the writer for one chunk: stored bytes, or the chunk to compress.
Payload = Union[bytes, npt.NDArray[Any]]


def _file_state(handle: Union[Image, Channel]) -> FileState:
    path = handle.path
    if path is None:
        raise TypeError("an anonymous handle has no file to pin")
    st = os.stat(path)
    return FileState(st.st_dev, st.st_ino, int(handle.stats()["generation"]))


def _snapshot_of(handle: Union[Image, Channel]) -> Snapshot:
    """The commit `handle` reads, in a form `_open_at` takes in any process."""
    if HAS_SNAPSHOTS:
        return bytes(cast(Any, handle).snapshot_id())
    return _file_state(handle)


def _open_at(path: str, snapshot: Snapshot) -> Image:
    """The image file at `path`, read-only, at exactly the commit `snapshot` names;
    `SnapshotUnavailableError` when that commit can no longer be read."""
    if HAS_SNAPSHOTS:
        return cast(Image, cast(Any, Image).open_snapshot(path, snapshot))
    image = Image.open(path, read_only=True)
    found = _file_state(image)
    if found != snapshot:
        image.close()
        raise SnapshotUnavailableError(
            f"{path}: the graph reads commit {snapshot!r}, but the file now holds {found!r} "
            "(it was written, replaced or compacted since the graph was built; this build "
            "of compressed_image cannot open earlier commits)"
        )
    return image


def _add_zeros(
    image: Image, dtype: np.dtype[Any], name: Optional[str], settings: Tuple[Codec, int, int, int]
) -> None:
    """A new last channel of zeros of `dtype`, with `settings` (codec, level, block size,
    chunk size)."""
    if HAS_LAZY_CHANNELS:
        cast(Any, image).add_lazy_channel(dtype, name, None, *settings)
        return
    zeros = np.broadcast_to(np.zeros((), dtype), (image.height, image.width))
    image.add_channel(zeros, image.width, image.height, name, *settings)


def _compress(open_channel: Callable[[], Channel], chunk_index: int, block: npt.NDArray[Any]) -> Payload:
    """Chunk `chunk_index`'s payload for `_commit`: compressed here when the extension can
    (`open_channel()` gives a read-only handle of the target channel), else the chunk itself."""
    if HAS_STORED_CHUNKS:
        return bytes(cast(Any, open_channel()).compress_chunk(chunk_index, block))
    return np.ascontiguousarray(block)


def _commit(writer: Channel, chunk_index: int, payload: Payload) -> None:
    """Write one `_compress` payload as chunk `chunk_index` (one commit)."""
    if isinstance(payload, bytes):
        cast(Any, writer).set_stored_chunk(chunk_index, payload)
    else:
        writer.set_chunk(chunk_index, payload.reshape(-1))


def snapshot_token(snapshot: Snapshot) -> str:
    """A short printable form of a snapshot, for task names and messages."""
    if isinstance(snapshot, bytes):
        return snapshot.hex()
    return "{}-{}-{}".format(*snapshot)


__all__ = [
    "HAS_SNAPSHOTS",
    "HAS_STORED_CHUNKS",
    "HAS_LAZY_CHANNELS",
    "SnapshotUnavailableError",
    "FileState",
    "Snapshot",
    "Payload",
    "snapshot_token",
]

