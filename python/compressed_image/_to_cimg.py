"""``to_cimg``: Dask (or numpy) arrays written to a compressed-image file.

The file is made under a temporary name beside the target (``.NAME.to_cimg-RANDOM``), its
channels created lazy (all zeros, nothing stored) with the settings given. The output
chunks (whole scanlines) are cut into groups, each the smallest run of chunks that ends
where an input chunk ends, so a group's rows are whole input chunks and no input chunk
feeds two groups. A group is one task (or, when a channel has too few groups to keep every
worker thread busy, a few tasks of consecutive chunks): it takes the input blocks holding
its rows, cuts them into chunks and compresses each on the worker (``compress_chunk`` on a
read-only handle of the temporary file), with no rechunking along rows (an input chunked
along columns is first joined into whole scanlines) and no input block moving between
workers. This process alone commits the compressed chunks as they arrive. With a
``distributed`` client active, results stream through ``as_completed`` and the next group
is submitted once fewer than ``max_in_flight`` chunks are outstanding; otherwise groups are
joined until they hold at least ``max_in_flight`` chunks and each is one ``dask.compute``.
The default ``max_in_flight`` covers one group more than there are worker threads, so every
thread computes an input chunk while the previous ones compress. Either way this process
and the workers hold a bounded number of finished chunks. Once every chunk is committed
the file is synced and renamed over ``path`` in one step. A failed task, an exception or
an interruption (Ctrl-C) cancels what is left and removes the temporary file: ``path``
keeps its previous file, or none.

Builds of the extension without ``compress_chunk`` send the computed chunk itself and
compress it in this process (``set_chunk``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import Any, Dict, Generator, List, Mapping, Optional, Sequence, Tuple, Union, cast

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


# What a task returns: (channel position, chunk index, payload) for each chunk it made.
_Made = List[Tuple[int, int, Payload]]
# One task: the number of chunks it makes, and a Delayed of its `_Made`.
_Task = Tuple[int, Delayed]


def _compress_run(
    tmp: str, position: int, first: int, rows: Tuple[int, ...], offset: int, *blocks: npt.NDArray[Any]
) -> _Made:
    """One task: chunks `first`, `first + 1`, ... of channel `position` of the file at `tmp`
    (`rows[j]` rows each), compressed from `blocks`, the consecutive input blocks that hold
    their rows, starting `offset` rows into the first block."""
    data = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
    made: _Made = []
    start = offset
    for j, n in enumerate(rows):
        payload = _compat._compress(
            lambda: _handles.cached_image(tmp, None)[position], first + j, data[start : start + n]
        )
        made.append((position, first + j, payload))
        start += n
    return made


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
    """Consecutive `groups` joined into groups of at least `least` chunks (the last may be
    smaller); each still ends where one of `groups` ended."""
    result: List[List[_Task]] = []
    current: List[_Task] = []
    for group in groups:
        current.extend(group)
        if sum(n for n, _ in current) >= least:
            result.append(current)
            current = []
    if current:
        result.append(current)
    return result


def _runs(group: range, most: int) -> List[range]:
    """`group` cut into consecutive runs of at most `most` chunks, as even as can be."""
    count = -(-len(group) // most)
    bounds = [group.start + len(group) * i // count for i in range(count + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


def _chunk_groups(tmp: str, writer: Image, arrays: List[da.Array], threads: int) -> List[List[_Task]]:
    """Every chunk of every channel in tasks, in the smallest groups to compute one after
    another. A task compresses a run of consecutive chunks from the input blocks holding
    their rows, on the worker that holds those blocks: no rechunking along rows, and no
    input block moves between workers to be compressed. A group is one task unless the channel has
    too few groups to keep every thread busy; then its runs are split."""
    total = sum(len(row_chunks(ch.height, ch.chunk_elems() // ch.width)) for ch in writer.channels())
    most = max(1, -(-total // (2 * threads)))
    result: List[List[_Task]] = []
    for position, array in enumerate(arrays):
        ch = writer[position]
        output_rows = row_chunks(ch.height, ch.chunk_elems() // ch.width)
        if len(array.chunks[1]) > 1:
            array = array.rechunk({1: -1})  # whole scanlines
        input_rows = array.chunks[0]
        input_starts = np.concatenate(([0], np.cumsum(input_rows))).tolist()
        output_starts = np.concatenate(([0], np.cumsum(output_rows))).tolist()
        name = f"to_cimg-{position}-{tokenize(tmp, array.name, most)}"
        layer: Dict[Any, Any] = {}
        groups: List[List[Tuple[int, Any]]] = []  # per group, (chunks, key) of each task
        for group in _groups(input_rows, output_rows):
            tasks: List[Tuple[int, Any]] = []
            for run in _runs(group, most):
                first_row, end_row = output_starts[run.start], output_starts[run.stop]
                # The input blocks overlapping rows [first_row, end_row).
                i0 = int(np.searchsorted(input_starts, first_row, side="right")) - 1
                i1 = int(np.searchsorted(input_starts, end_row, side="left"))
                key = (name, run.start)
                layer[key] = (
                    _compress_run, tmp, position, run.start, output_rows[run.start : run.stop],
                    first_row - input_starts[i0], *[(array.name, i, 0) for i in range(i0, i1)],
                )
                tasks.append((len(run), key))
            groups.append(tasks)
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[cast(Any, array)])
        result.extend([(n, Delayed(key, graph, layer=name)) for n, key in group] for group in groups)
    return result


def default_in_flight(threads: int, groups: List[List[_Task]]) -> int:
    """Chunks outstanding at once by default: the largest group's for one more group than
    `threads` (each thread computes one while the previous ones compress), and never
    fewer than twice the threads or 4."""
    largest = max(sum(n for n, _ in group) for group in groups)
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
    """Payloads as their tasks complete; the next group goes out once fewer than `least`
    chunks are outstanding."""
    from distributed import as_completed

    pending = iter(groups)
    outstanding: Dict[Any, int] = {}  # future -> the chunks it makes
    stream = as_completed([], with_results=True)

    def submit_while_short() -> None:
        while sum(outstanding.values()) < least:
            group = next(pending, None)
            if group is None:
                return
            futures = client.compute([task for _, task in group])
            outstanding.update(zip(futures, (n for n, _ in group)))
            stream.update(futures)

    try:
        submit_while_short()
        # The results that finished together come in one batch: one gather for them all.
        for batch in stream.batches():
            for future, made in batch:
                del outstanding[future]
                future.release()
                yield from made
            submit_while_short()
    finally:
        if outstanding:
            client.cancel(list(outstanding))


def _stream_local(groups: List[List[_Task]]) -> Generator[Tuple[int, int, Payload], None, None]:
    """Payloads group by group, each group one `dask.compute`."""
    for group in groups:
        for made in dask.compute(*(task for _, task in group)):
            yield from made


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
            groups = _chunk_groups(tmp, writer, inputs, threads)
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
