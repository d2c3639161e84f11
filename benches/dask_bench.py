"""Dask on compressed-image files against the alternatives, on a two-worker LocalCluster.

Run on demand (not part of the tests), from the repository root, with the extension and
the extra "dask" installed (`pip install "./python[dask]"`, scipy for the median filter):

    python benches/dask_bench.py            # 16384 x 16384 float32, 5 reps -> benches/DASK.md
    python benches/dask_bench.py --quick    # 2048 x 2048, 2 reps, printed only

(a) reduce: mean/min/max of one channel through Dask, reading our file against reading a
    Zarr v3 array of the same chunks and Blosc LZ4 + shuffle settings (written from it by
    compressed_image.zarr_io), at the default 4 MiB chunks and at 32 MiB chunks. Target:
    ours >= 1.5x Zarr. Also the same reduction over the array already in the workers'
    memory: the part of both times that is not reading; and the 4 MiB case on a cluster
    that does not queue tasks without inputs (worker-saturation inf), for the cost of
    Dask's scheduling of them.
(b) filter: a 3x3 median filter on every chunk (scipy.ndimage; a tone curve without scipy),
    written back with to_cimg: the cluster against the same code on Dask's synchronous
    scheduler (one process, one task at a time). Target >= 1.5x. Also Dask's overhead per
    task on the cluster (2000 tasks doing nothing), in ms.
(c) write: to_cimg of a computed array on the cluster against computing the same array in
    this process (threads) and building the file with Image.add_channel (the extension
    compresses on all cores). Target >= 0.8x. With the CPU time of the committing process.

Each cell: the median over the reps, with the min-max range. Every process keeps the
extension's default thread count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

import compressed_image as ci
from compressed_image import _compat
from compressed_image import dask as cdask
from compressed_image import zarr_io

try:
    from scipy import ndimage
except ImportError:  # the tone curve stands in
    ndimage = None


def timed(fn: Callable[[], Any], reps: int) -> List[float]:
    result = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        result.append(time.perf_counter() - start)
    return result


def cell(times: List[float]) -> str:
    return f"{statistics.median(times):.3f} s ({min(times):.3f}–{max(times):.3f})"


def source_block(block_info: Any = None) -> np.ndarray:
    """A smooth render with fine noise: the block of the test image at its location."""
    (y0, y1), (x0, x1) = block_info[None]["array-location"]
    y = np.arange(y0, y1, dtype=np.float32)[:, None]
    x = np.arange(x0, x1, dtype=np.float32)[None, :]
    noise = np.random.default_rng(y0 * 7919 + x0).standard_normal((y1 - y0, x1 - x0), dtype=np.float32)
    return np.sin(y * 0.001) * np.cos(x * 0.0013) + 0.01 * noise


def filtered(block: np.ndarray) -> np.ndarray:
    """The per-chunk operation of (b)."""
    if ndimage is not None:
        return ndimage.median_filter(block, size=3)
    return np.sign(block) * (np.abs(block) / (1 + np.abs(block))) ** np.float32(0.45)


def computed(side: int) -> da.Array:
    return da.map_blocks(source_block, chunks=((1024,) * (side // 1024), (side,)), dtype=np.float32)


def reduce(array: da.Array) -> Tuple[Any, ...]:
    return dask.compute(array.mean(dtype=np.float64), array.min(), array.max())


def in_process_build(side: int, path: str) -> None:
    with dask.config.set(scheduler="threads"):
        data = computed(side).compute()
    with ci.Image.create(path, [], side, side) as image:
        image.add_channel(data, side, side, "Y")


def cpu_of(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def noop(x: int) -> int:
    return x


# (a) runs at the file's default chunk size (4 MiB, 64 rows of 16384 float32) and at
# chunks in the range Dask's guidance recommends for tasks of this cost (32 MiB).
REDUCE_CHUNK_SIZES = (4 << 20, 32 << 20)


def reduce_row(client: Client, work: str, side: int, chunk_size: int, reps: int) -> Dict[str, str]:
    """(a) at one chunk size: ours against Zarr, and the reduction over the held array."""
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, f"reduce-{chunk_size}.cimg")
    with dask.config.set(scheduler="threads"):
        cdask.to_cimg(computed(side), path, names=["Y"], chunk_size=chunk_size)
    zarr_path = os.path.join(work, f"reduce-{chunk_size}.zarr")
    zarr_io.to_zarr(path, zarr_path)
    ours = timed(lambda: reduce(cdask.open(path)["Y"]), reps)
    theirs = timed(lambda: reduce(da.from_zarr(os.path.join(zarr_path, "Y"))), reps)
    # The floor: the same reduction over the array already held by the workers.
    held = client.persist(cdask.open(path)["Y"])
    wait(held)
    floor = timed(lambda: reduce(held), reps)
    del held
    return {
        "ours": cell(ours), "other": f"Zarr v3: {cell(theirs)}",
        "ratio": f"{statistics.median(theirs) / statistics.median(ours):.2f}x (target 1.5x); "
        f"the reduction alone, over the array in the workers' memory: {cell(floor)}",
    }


def run(side: int, reps: int, work: str) -> Dict[str, Dict[str, str]]:
    rows: Dict[str, Dict[str, str]] = {}
    path = os.path.join(work, "bench.cimg")
    with dask.config.set(scheduler="threads"):
        cdask.to_cimg(computed(side), path, names=["Y"])

    # Dask queues tasks without inputs on the scheduler and hands each worker about one at a
    # time (distributed.scheduler.worker-saturation, 1.1 by default): a scheduler round trip
    # per task. The same reduction on a cluster that does not queue them shows what that
    # costs both sides at 4 MiB chunks.
    with dask.config.set({"distributed.scheduler.worker-saturation": float("inf")}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
            unqueued = reduce_row(client, os.path.join(work, "unqueued"), side, REDUCE_CHUNK_SIZES[0], reps)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        for chunk_size in REDUCE_CHUNK_SIZES:
            rows[f"(a) reduce mean/min/max, {chunk_size >> 20} MiB chunks"] = reduce_row(
                client, work, side, chunk_size, reps
            )
        rows["(a) the same, 4 MiB chunks, tasks without inputs not queued (worker-saturation inf)"] = unqueued

        out = os.path.join(work, "filtered.cimg")
        job = lambda: cdask.to_cimg(cdask.open(path)["Y"].map_blocks(filtered), out)  # noqa: E731
        cluster_times = timed(job, reps)
        with dask.config.set(scheduler="synchronous"):
            serial = timed(job, reps)
        tasks = 2000
        overhead = timed(lambda: client.gather(client.map(noop, range(tasks), pure=False)), reps)
        rows["(b) 3x3 median + to_cimg" if ndimage is not None else "(b) tone curve + to_cimg"] = {
            "ours": f"cluster: {cell(cluster_times)}", "other": f"1 process, 1 task at a time: {cell(serial)}",
            "ratio": f"{statistics.median(serial) / statistics.median(cluster_times):.2f}x (target 1.5x); "
            f"{1000 * statistics.median(overhead) / tasks:.2f} ms/task",
        }

        out = os.path.join(work, "written.cimg")
        cpu: List[float] = []
        written = timed(lambda: cpu.append(cpu_of(lambda: cdask.to_cimg(computed(side), out))), reps)
        local = timed(lambda: in_process_build(side, os.path.join(work, "local.cimg")), reps)
        mb = side * side * 4 / 1e6
        rows["(c) to_cimg of a computed array"] = {
            "ours": f"{cell(written)}, {mb / statistics.median(written):.0f} MB/s, committer CPU {statistics.median(cpu):.2f} s",
            "other": f"in-process threads + add_channel: {cell(local)}",
            "ratio": f"{statistics.median(local) / statistics.median(written):.2f}x (target 0.8x)",
        }
    return rows


def table(rows: Dict[str, Dict[str, str]], side: int, reps: int) -> str:
    lines = [
        f"Dask on a 2-worker LocalCluster (1 thread each), {side} x {side} float32, "
        f"{reps} reps: medians (min–max). {'' if _compat.HAS_STORED_CHUNKS else 'Chunks compressed by the committing process (no compress_chunk in this build). '}"
        f"Machine: {os.cpu_count()} cores.",
        "",
        "| case | ours | other | speed-up |",
        "|---|---|---|---|",
    ]
    lines += [f"| {k} | {v['ours']} | {v['other']} | {v['ratio']} |" for k, v in rows.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2048 x 2048, 2 reps, print only")
    parser.add_argument("--out", help="the markdown file to write (default: benches/DASK.md unless --quick)")
    args = parser.parse_args()
    side, reps = (2048, 2) if args.quick else (16384, 5)
    out = args.out or (None if args.quick else os.path.join(os.path.dirname(__file__), "DASK.md"))
    work = tempfile.mkdtemp(prefix="dask_bench-")
    try:
        text = table(run(side, reps, work), side, reps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write("# Dask benchmarks (benches/dask_bench.py)\n\n" + text)


if __name__ == "__main__":
    sys.exit(main())
