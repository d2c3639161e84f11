"""Channels of a compressed-image file as Dask arrays, and Dask arrays written to one.

``open(path)`` gives one ``dask.array.Array`` per channel whose chunks are exactly the
file's chunks: whole scanlines, ``chunk_elems() // width`` rows each, the last one shorter.
The graph has one task per chunk; each opens the file read-only by path (one handle per
file and commit, cached in each worker process), reads its chunk (the extension releases
the GIL while it decompresses) and returns it as a ``(rows, width)`` array.

**One commit per graph.** The arrays are pinned to the commit the file held when they were
made: every task opens exactly that commit (``Image.open_snapshot``), so a writer that
commits, or replaces the file, while the graph runs does not tear it. Builds of the
extension without pinned commits check instead that the file still holds that commit and
raise ``SnapshotUnavailableError`` when it does not; either way a result never mixes
commits. A compaction or replacement of the file makes an old commit unreadable (the same
error): make a new array with ``open`` to read the newest.

**Anonymous handles** (made without a path) have no file that workers could open:
``channel_to_dask`` and ``image_to_dask`` raise ``TypeError`` for them; ``save()`` the image
first. Channels of an image without channel names are keyed by their position as a string
(``"0"``, ``"1"``, ...).

The helpers are module functions, ``channel_to_dask(ch)`` and ``image_to_dask(img)``, not
methods of ``Channel`` and ``Image``: those classes keep the compressed-image API of their
type stubs, and ``import compressed_image`` does not import Dask. ``to_cimg`` (the
writing side) is documented in ``compressed_image._to_cimg``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import dask.array as da
import numpy as np
import numpy.typing as npt
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import Channel, Image, _compat, _handles
from ._compat import Snapshot, SnapshotUnavailableError
from ._to_cimg import row_chunks, to_cimg

__all__ = [
    "open",
    "channel_to_dask",
    "image_to_dask",
    "to_cimg",
    "ChannelLayout",
    "SnapshotUnavailableError",
]

_Path = Union[str, "os.PathLike[str]"]
# A channel chosen by name or by position.
ChannelKey = Union[str, int]


class ChannelLayout(NamedTuple):
    """Where one channel's chunks lie: what a graph needs to know about it."""

    position: int
    key: str
    dtype: np.dtype[Any]
    height: int
    width: int
    rows_per_chunk: int

    @property
    def row_chunks(self) -> Tuple[int, ...]:
        """Rows of each chunk: `rows_per_chunk`, the last one what remains."""
        return row_chunks(self.height, self.rows_per_chunk)

    @property
    def chunks(self) -> Tuple[Tuple[int, ...], Tuple[int]]:
        """Dask's chunks of the channel: whole scanlines, one column chunk."""
        return self.row_chunks, (self.width,)


def channel_keys(image: Image) -> List[str]:
    """Each channel's key: its name, or its position (as a string) when the image has no
    names. ValueError when names repeat or one is empty (the keys must tell them apart)."""
    names = image.get_channel_names()
    if not names:
        return [str(i) for i in range(image.num_channels)]
    if "" in names or len(set(names)) != len(names):
        raise ValueError(
            f"{image.path}: channel names {names!r} do not tell the channels apart "
            "(an empty or repeated name); pick channels by position with channels=[...]"
        )
    return list(names)


def layouts(image: Image, channels: Optional[Sequence[ChannelKey]] = None) -> List[ChannelLayout]:
    """The layouts of `channels` (names or positions; all by default) of `image`, in that order."""
    names = image.get_channel_names()
    if channels is None:
        picked = list(zip(range(image.num_channels), channel_keys(image)))
    else:
        picked = []
        for c in channels:
            position = c if isinstance(c, int) else image.get_channel_index(c)
            if not 0 <= position < image.num_channels:
                raise IndexError(f"no channel {c!r}: the image has {image.num_channels}")
            key = names[position] if names and names[position] else str(position)
            picked.append((position, key))
    if len({key for _, key in picked}) != len(picked):
        raise ValueError(f"channels {channels!r} name a channel twice")
    result = []
    for position, key in picked:
        ch = image[position]
        result.append(
            ChannelLayout(position, key, ch.dtype, ch.height, ch.width, ch.chunk_elems() // ch.width)
        )
    return result


# ---- graphs ------------------------------------------------------------------------------


def read_chunk(
    path: str, snapshot: Snapshot, position: int, chunk_index: int, rows: int, width: int
) -> npt.NDArray[Any]:
    """One task: chunk `chunk_index` of channel `position` at `snapshot`, `(rows, width)`."""
    chunk = _handles.cached_image(path, snapshot)[position].get_chunk(chunk_index)
    return chunk.reshape(rows, width)


def _array(path: str, snapshot: Snapshot, layout: ChannelLayout) -> da.Array:
    token = tokenize(path, _compat.snapshot_token(snapshot), layout.position)
    name = f"cimg-{layout.key}-{token}"
    layer: Dict[Any, Any] = {
        (name, k, 0): (read_chunk, path, snapshot, layout.position, k, rows, layout.width)
        for k, rows in enumerate(layout.row_chunks)
    }
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    meta = np.empty((0, 0), dtype=layout.dtype)
    return da.Array(graph, name, layout.chunks, meta=meta)


def file_path(handle: Union[Image, Channel]) -> str:
    if handle.path is None:
        raise TypeError(
            f"an anonymous {type(handle).__name__} has no file for Dask's workers to open; "
            "save() it to a file and open that"
        )
    return handle.path


def image_to_dask(
    image: Image, *, channels: Optional[Sequence[ChannelKey]] = None
) -> Dict[str, da.Array]:
    """The channels of a file-backed `image` as Dask arrays, keyed as `channel_keys` says,
    pinned to the commit `image` reads now (see the module's documentation)."""
    path = file_path(image)
    snapshot = _compat._snapshot_of(image)
    return {layout.key: _array(path, snapshot, layout) for layout in layouts(image, channels)}


def _position_of(channel: Channel) -> int:
    # A channel of an image file pickles as (path, read_only, position); a standalone
    # channel file holds one channel, at position 0.
    args = channel.__reduce__()[1]
    return int(args[2]) if len(args) > 2 and args[2] is not None else 0


def channel_to_dask(channel: Channel) -> da.Array:
    """A file-backed `channel` as a Dask array, pinned to the commit it reads now."""
    path = file_path(channel)
    snapshot = _compat._snapshot_of(channel)
    with _compat._open_at(path, snapshot) as image:
        (layout,) = layouts(image, [_position_of(channel)])
    return _array(path, snapshot, layout)


def open(path: _Path, *, channels: Optional[Sequence[ChannelKey]] = None) -> Dict[str, da.Array]:
    """The channels of the file at `path` (names or positions in `channels`; all by
    default) as Dask arrays, pinned to the file's newest commit."""
    with Image.open(path, read_only=True) as image:
        return image_to_dask(image, channels=channels)
