"""``to_cimg``: Dask (or numpy) arrays written to a compressed-image file.

The file is made under a temporary name beside the target (``.NAME.to_cimg-RANDOM``), its
channels created lazy (all zeros, nothing stored) with the settings given. Each input is
rechunked to its channel's chunks (whole scanlines) when its chunks differ; a task per chunk
computes the chunk and compresses it on the worker (``compress_chunk`` on a read-only handle
of the temporary file), and this process alone commits the compressed chunks as they
arrive. The chunks go out in groups, each ending where an input chunk ends (so no input
chunk is computed twice): with a ``distributed`` client active, a group is the chunks of
one input chunk, results stream through ``as_completed`` and the next group is submitted
once fewer than ``max_in_flight`` chunks are outstanding; otherwise groups hold at least
``max_in_flight`` chunks and each is one ``dask.compute``. The default ``max_in_flight``
covers the chunks of one input chunk more than there are worker threads, so every thread
computes an input chunk while the chunks of the previous ones compress. Either way this
process and the workers hold a bounded number of finished chunks. Once every chunk
is committed the file is synced and renamed over ``path`` in one step. A failed task, an
exception or an interruption (Ctrl-C) cancels what is left and removes the temporary file:
``path`` keeps its previous file, or none.

Builds of the extension without ``compress_chunk`` send the computed chunk itself and
compress it in this process (``set_chunk``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import Any, Dict, Generator, List, Mapping, Optional, Sequence, Set, Tuple, Union, cast

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt
from dask.base import get_scheduler, tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from . import Channel, Codec, Image, _compat, _handles
from ._compat import Payload

_Path = Union[str, "os.PathLike[str]"]
_ArrayLike = Union[da.Array, npt.NDArray[Any]]
# One array, a sequence of arrays (one per channel), or a mapping of channel name to array.
ArraysIn = Union[_ArrayLike, Sequence[_ArrayLike], Mapping[str, _ArrayLike]]

# The element types a channel holds.
SUPPORTED_DTYPES = tuple(
    np.dtype(t)
    for t in (np.float16, np.float32, np.float64, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32)
)


def _named_arrays(
    arrays: ArraysIn, names: Optional[Sequence[str]]
) -> Tuple[List[Optional[str]], List[da.Array]]:
    """The channels to write: their names (None for an unnamed image) and 2-D Dask arrays."""
    if isinstance(arrays, Mapping):
        if names is not None:
            raise ValueError("names= is for arrays given as a list: a dict's keys name its channels")
        labels: List[Optional[str]] = [str(k) for k in arrays]
        values = list(arrays.values())
    else:
        values = [arrays] if hasattr(arrays, "ndim") else list(arrays)  # type: ignore[list-item]
        if names is None:
            labels = [None] * len(values)
        elif len(names) != len(values):
            raise ValueError(f"{len(names)} names for {len(values)} channels")
        else:
            labels = list(names)
    if not values:
        raise ValueError("to_cimg needs at least one channel")
    result = [v if isinstance(v, da.Array) else da.from_array(np.asarray(v)) for v in values]
    shapes = {a.shape for a in result}
    if any(a.ndim != 2 for a in result) or len(shapes) != 1:
        raise ValueError(
            f"every channel must be a 2-D (height, width) array of one shape: got {sorted(shapes)}"
        )
    for label, a in zip(labels, result):
        if a.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"channel {label!r}: dtype {a.dtype} is not one a channel holds")
    return labels, result


def temporary_path(path: str) -> str:
    """A fresh name beside `path` for the file being written."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.to_cimg-{secrets.token_hex(6)}")


def _remove(path: str) -> None:
    for p in (path, path + ".lock"):
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


# One chunk to write: (channel position, chunk index, a Delayed of the same triple with the
# chunk's payload last).
_Task = Tuple[int, int, Delayed]


def _compress_block(
    tmp: str, position: int, chunk_index: int, block: npt.NDArray[Any]
) -> Tuple[int, int, Payload]:
    """One task: chunk `chunk_index` of channel `position` of the file at `tmp`, compressed."""
    payload = _compat._compress(
        lambda: _handles.cached_image(tmp, None)[position], chunk_index, block
    )
    return position, chunk_index, payload


def row_chunks(height: int, rows: int) -> Tuple[int, ...]:
    """Rows of each chunk of a channel of `height` rows, `rows` per chunk: the last one
    what remains."""
    full, rest = divmod(height, rows)
    return (rows,) * full + ((rest,) if rest else ())


def _groups(input_rows: Tuple[int, ...], output_rows: Tuple[int, ...]) -> List[range]:
    """Output chunks in the smallest consecutive groups that end where an input chunk ends:
    no input chunk feeds two groups, so computing the groups one after another computes no
    input chunk twice."""
    input_ends = set(np.cumsum(input_rows).tolist())
    groups, start, end = [], 0, 0
    for k, rows in enumerate(output_rows):
        end += rows
        if end in input_ends:
            groups.append(range(start, k + 1))
            start = k + 1
    if start < len(output_rows):
        groups.append(range(start, len(output_rows)))
    return groups


def _merged(groups: List[List[_Task]], least: int) -> List[List[_Task]]:
    """Consecutive `groups` joined into groups of at least `least` tasks (the last may be
    smaller); each still ends where one of `groups` ended."""
    result: List[List[_Task]] = []
    current: List[_Task] = []
    for group in groups:
        current.extend(group)
        if len(current) >= least:
            result.append(current)
            current = []
    if current:
        result.append(current)
    return result


def _chunk_groups(tmp: str, writer: Image, arrays: List[da.Array]) -> List[List[_Task]]:
    """Every chunk of every channel as a task, in the smallest groups to compute one after
    another."""
    result: List[List[_Task]] = []
    for position, array in enumerate(arrays):
        ch = writer[position]
        chunks = (row_chunks(ch.height, ch.chunk_elems() // ch.width), (ch.width,))
        groups = _groups(array.chunks[0], chunks[0])
        if array.chunks != chunks:
            array = array.rechunk(chunks)
        name = f"to_cimg-{position}-{tokenize(tmp, array.name)}"
        layer: Dict[Any, Any] = {
            (name, k): (_compress_block, tmp, position, k, (array.name, k, 0))
            for k in range(len(chunks[0]))
        }
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[cast(Any, array)])
        result.extend([(position, k, Delayed((name, k), graph, layer=name)) for k in group] for group in groups)
    return result


def default_in_flight(threads: int, groups: List[List[_Task]]) -> int:
    """Chunks outstanding at once by default: the largest group's for one more input chunk
    than `threads` (each thread computes one while the previous ones compress), and never
    fewer than twice the threads or 4."""
    largest = max(len(group) for group in groups)
    return max(4, 2 * threads, (threads + 1) * largest)


def _active_client() -> Any:
    """The distributed client Dask would compute with now (None for a local scheduler,
    also when `dask.config.set(scheduler=...)` chose one while a client exists)."""
    try:
        from distributed import Client
    except ImportError:
        return None
    owner = getattr(get_scheduler(), "__self__", None)
    return owner if isinstance(owner, Client) else None


def _stream_distributed(
    client: Any, groups: List[List[_Task]], least: int
) -> Generator[Tuple[int, int, Payload], None, None]:
    """Payloads as they complete; the next group goes out once fewer than `least` remain."""
    from distributed import as_completed

    pending = iter(groups)
    outstanding: Set[Any] = set()
    stream = as_completed([], with_results=True)

    def submit_while_short() -> None:
        while len(outstanding) < least:
            group = next(pending, None)
            if group is None:
                return
            futures = client.compute([task for _, _, task in group])
            outstanding.update(futures)
            stream.update(futures)

    try:
        submit_while_short()
        for future, result in stream:
            outstanding.discard(future)
            future.release()
            yield result
            submit_while_short()
    finally:
        if outstanding:
            client.cancel(list(outstanding))


def _stream_local(groups: List[List[_Task]]) -> Generator[Tuple[int, int, Payload], None, None]:
    """Payloads group by group, each group one `dask.compute`."""
    for group in groups:
        yield from dask.compute(*(task for _, _, task in group))


def to_cimg(
    arrays: ArraysIn,
    path: _Path,
    *,
    names: Optional[Sequence[str]] = None,
    metadata: Any = None,
    compression_codec: Codec = Codec.lz4,
    compression_level: int = 9,
    block_size: int = 32768,
    chunk_size: int = 4194304,
    max_in_flight: Optional[int] = None,
) -> None:
    """Write `arrays` (one 2-D array, a list of them, or a dict of channel name to array;
    Dask or numpy) as the channels of a new compressed-image file at `path`, replacing any
    file there only once the new one is complete.

    `names` names the channels of a list (a dict's keys name its own); `metadata` is the
    image's JSON metadata; the four settings are those of `Image.add_channel`, for every
    channel. `max_in_flight` bounds the chunks computed and not yet committed (default: the
    chunks of one input chunk more than the workers have threads; at least twice the
    threads, and 4).
    """
    labels, inputs = _named_arrays(arrays, names)
    if any(label is None for label in labels) and any(label is not None for label in labels):
        raise ValueError("name every channel or none")
    target = os.path.abspath(os.fspath(path))
    height, width = inputs[0].shape
    client = _active_client()
    threads = sum(client.nthreads().values()) if client is not None else (os.cpu_count() or 1)
    tmp = temporary_path(target)
    try:
        with Image.create(tmp, [], width, height) as writer:
            settings = (compression_codec, compression_level, block_size, chunk_size)
            for label, array in zip(labels, inputs):
                _compat._add_zeros(writer, array.dtype, label, settings)
            if metadata is not None:
                writer.set_metadata(metadata)
            groups = _chunk_groups(tmp, writer, inputs)
            if max_in_flight is None:
                max_in_flight = default_in_flight(threads, groups)
            stream = (
                _stream_distributed(client, groups, max_in_flight)
                if client is not None
                else _stream_local(_merged(groups, max_in_flight))
            )
            channels: List[Channel] = writer.channels()
            # closing: a failed commit cancels the chunks still computing at once.
            with contextlib.closing(stream):
                for position, index, payload in stream:
                    _compat._commit(channels[position], index, payload)
            writer.sync()
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        _forget_everywhere(client, tmp)
    _remove(tmp)  # only its writer-lock sidecar is left
    _sync_directory(os.path.dirname(target))


def _forget_everywhere(client: Any, tmp: str) -> None:
    """Drop the workers' (and this process's) handles of the temporary file."""
    _handles.forget(tmp)
    if client is not None:
        try:
            client.run(_handles.forget, tmp)
        except Exception:  # noqa: BLE001 - only cached handles stay, until evicted
            pass


def _sync_directory(directory: str) -> None:
    """Make the rename durable (the directory entry), where the platform allows."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
