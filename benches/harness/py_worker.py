"""Benchmark worker for the Python systems: one system, one metric, N reps, one JSON line.

    python py_worker.py worker --system S --data PATH.raw --width W --height H
        --dtype f32|f16|u8|u32 --metric M --threads N --reps R --workdir DIR

prints ``{"system", "metric", "threads", "unit", "values": [...], "extra": {...}}`` (plus
``"also": {"construct_durable" | "rewrite_durable": [...]}`` for file systems) or ``{"system",
"metric", "skipped"}`` on stdout and exits 0; any error gives a traceback on stderr and exit 1.

Every thread knob of the system is set to ``--threads``: compressed-image's
``update_nthreads(n, 32 KiB)``, python-blosc2's ``nthreads`` (global, cparams and dparams),
zarr's ``threading.max_workers``. run.py also limits the process to ``n`` CPUs, which is what
bounds the constructors that have no thread argument.

The peers (``compressed-image-1.0.1``, ``blosc2-*``, ``zarr-v3``) run in the peers venv, where
``compressed_image`` is the original 1.0.1; ``cimg-python*`` run in /work/main/.venv, where it
is this repository's module. Files of a dataset that read-only metrics share are built once
per run under ``DIR/cache`` (run.py empties it at the start of a run); scratch files go to
``DIR/tmp`` and are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import systems  # noqa: E402

CHUNK_BYTES = 4 * 1024 * 1024
BLOCK_BYTES = 32 * 1024
CLEVEL = 9
NP_DTYPES = {"f32": "<f4", "f16": "<f2", "u8": "u1", "u32": "<u4"}
RANDOM_READS = 64
OPENS = 50
REWRITES = 6
LAZY_W = LAZY_H = 16384
LAZY_EVERY = 10

perf = time.perf_counter


def rows_per_chunk(width: int, itemsize: int) -> int:
    return max(1, CHUNK_BYTES // (width * itemsize))


def rss_anon() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def remove(path: str) -> None:
    for p in (path, path + ".lock"):
        if os.path.isdir(p):
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.lexists(p):
            os.remove(p)


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str) -> None:
    """fsync a file, or every file and directory of a tree (a zarr store) and its parent."""
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for f in files:
                fsync_path(os.path.join(root, f))
            fsync_path(root)
    else:
        fsync_path(path)
    fsync_path(os.path.dirname(os.path.abspath(path)))


def tree_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


# ---------------------------------------------------------------------------------------
# Adapters: one per system. Chunks are passed as 2-D C-contiguous (rows, width) arrays.
# ---------------------------------------------------------------------------------------


class Adapter:
    file_backed = False
    ext = ""
    notes: dict = {}

    def __init__(self, width: int, height: int, dtype: np.dtype, threads: int):
        self.w, self.h, self.dtype, self.n = width, height, dtype, threads
        self.rows = rows_per_chunk(width, dtype.itemsize)
        self.nchunks = -(-height // self.rows)

    # in-memory systems: a channel of `data` using `self.n` threads
    def build(self, data):
        raise NotImplementedError

    # file systems: (seconds until the file is written and closed, seconds until it is also
    # on disk (fsync), extra) of creating `path` from `data` with `self.n` threads
    def construct_file(self, path: str, data) -> tuple[float, float, dict]:
        raise NotImplementedError

    # file systems: make what was written through the open handle `h` durable
    def persist(self, h, path: str) -> None:
        raise NotImplementedError

    def open_ro(self, path: str):
        raise NotImplementedError

    def open_rw(self, path: str):
        raise NotImplementedError

    def meta(self, h) -> None:
        raise NotImplementedError

    def close(self, h) -> None:
        pass

    def set_threads(self, h, n: int) -> None:
        raise NotImplementedError

    def read_chunk(self, h, i: int, out2d) -> None:
        raise NotImplementedError

    def write_chunk(self, h, i: int, src2d) -> None:
        raise NotImplementedError

    def decompress(self, h):
        raise NotImplementedError

    def lazy_zeros(self, path: str | None):
        raise NotImplementedError

    # (size after compaction, live compressed bytes) for a file written with open_rw
    def compact(self, h, path: str) -> tuple[int, int, dict]:
        raise NotImplementedError


# --- compressed-image 1.0.1 (and our module's anonymous channels: the same API) ----------


class CI101(Adapter):
    notes = {
        "construct_threads": "the constructor has no thread argument: it compresses on hardware_concurrency()/2 "
        "threads (1 on a 2-CPU machine) whatever n, within the n CPUs the process may use",
        "threads": "update_nthreads(n, 32768) after construction (it also sets the block size)",
        "decompress_threads": "1.0.1 decompresses on 1 thread whatever the setting (min(n, 1) bug)",
    }

    def __init__(self, *a):
        super().__init__(*a)
        import compressed_image as ci

        self.ci = ci
        self.kw = dict(
            compression_codec=ci.Codec.lz4,
            compression_level=CLEVEL,
            block_size=BLOCK_BYTES,
            chunk_size=CHUNK_BYTES,
        )

    def build(self, data):
        ch = self.ci.Channel(data, self.w, self.h, **self.kw)
        self.set_threads(ch, self.n)
        return ch

    def set_threads(self, h, n):
        h.update_nthreads(n, BLOCK_BYTES)

    def read_chunk(self, h, i, out2d):
        h.get_chunk(i, out2d.reshape(-1))

    def write_chunk(self, h, i, src2d):
        h.set_chunk(i, src2d.reshape(-1))

    def decompress(self, h):
        return h.get_decompressed()

    def lazy_zeros(self, path):
        ch = self.ci.Channel.zeros(np.float32, self.w, self.h, **self.kw)
        self.set_threads(ch, self.n)
        return ch

    def compressed_bytes(self, h):
        return h.compressed_bytes()


OURS_THREAD_NOTES = {
    "construct_threads": "the constructor has no thread argument: it uses every CPU the process may run on, "
    "which run.py limits to n",
    "threads": "update_nthreads(n) after construction",
}


class CimgAnon(CI101):
    notes = {
        **OURS_THREAD_NOTES,
        "lazy_rss": "an anonymous channel is an unlinked temporary file: its compressed chunks are page cache, not RssAnon",
    }


class CimgFile(CI101):
    file_backed = True
    ext = ".cimg"
    notes = dict(
        OURS_THREAD_NOTES,
        construct="Channel.create(...), which builds the file under a temporary name, fsyncs it and renames it "
        "into place before returning; durable: then sync() (fdatasync)",
        rewrite="set_chunk loop; durable: then sync()",
    )

    def construct_file(self, path, data):
        t0 = perf()
        ch = self.ci.Channel.create(path, data, self.w, self.h, **self.kw)
        t1 = perf()
        ch.sync()
        t2 = perf()
        extra = {"compressed_bytes": ch.compressed_bytes()}
        ch.close()
        return t1 - t0, t2 - t0, extra

    def persist(self, h, path):
        h.sync()

    def open_ro(self, path):
        return self.ci.Channel.open(path, read_only=True)

    def open_rw(self, path):
        return self.ci.Channel.open(path)

    def meta(self, h):
        h.num_chunks()
        h.shape  # noqa: B018

    def close(self, h):
        h.close()

    def lazy_zeros(self, path):
        ch = self.ci.Channel.create_full(path, np.float32, 0.0, self.w, self.h, **self.kw)
        self.set_threads(ch, self.n)
        return ch

    def compact(self, h, path):
        h.sync()
        live = h.stats()["live_bytes"]
        c = h.compact()
        after = os.path.getsize(path)
        return after, live, {"compact": c, "stats_after": h.stats()}


# --- python-blosc2 SChunk --------------------------------------------------------------


class Blosc2Mem(Adapter):
    kind = "mem"
    notes = {
        "threads": "blosc2.set_nthreads(n) and nthreads=n in CParams and DParams",
        "decompress": "np.empty + decompress_chunk(i, dst=view) per chunk (faster than get_slice(out=) here)",
    }

    def __init__(self, *a):
        super().__init__(*a)
        import blosc2

        self.b2 = blosc2
        blosc2.set_nthreads(self.n)
        self.chunkbytes = self.rows * self.w * self.dtype.itemsize

    def cparams(self, n):
        b2 = self.b2
        return b2.CParams(
            codec=b2.Codec.LZ4,
            clevel=CLEVEL,
            typesize=self.dtype.itemsize,
            blocksize=BLOCK_BYTES,
            filters=[b2.Filter.NOFILTER] * 5 + [b2.Filter.SHUFFLE],
            filters_meta=[0] * 6,
            nthreads=n,
        )

    def storage(self, path, mode):
        return {}

    def build(self, data):
        return self.b2.SChunk(
            chunksize=self.chunkbytes,
            data=data,
            cparams=self.cparams(self.n),
            dparams=self.b2.DParams(nthreads=self.n),
        )

    def set_threads(self, h, n):
        h.cparams = self.cparams(n)
        h.dparams = self.b2.DParams(nthreads=n)

    def read_chunk(self, h, i, out2d):
        h.decompress_chunk(i, out2d.reshape(-1))

    def write_chunk(self, h, i, src2d):
        h.update_data(i, src2d.reshape(-1), copy=False)

    def decompress(self, h):
        out = np.empty((self.h, self.w), self.dtype)
        flat = out.reshape(-1)
        per = self.rows * self.w
        for i in range(self.nchunks):
            h.decompress_chunk(i, flat[i * per : (i + 1) * per])
        return out

    def lazy_zeros(self, path):
        s = self.b2.SChunk(chunksize=self.chunkbytes, cparams=self.cparams(self.n), **self.storage(path, "w"))
        s.fill_special(self.w * self.h, self.b2.SpecialValue.ZERO)
        return s

    def compressed_bytes(self, h):
        return h.cbytes


class Blosc2Disk(Blosc2Mem):
    file_backed = True
    ext = ".b2frame"
    notes = dict(
        Blosc2Mem.notes,
        construct="SChunk(data=, urlpath=, contiguous=True) then the handle freed (frame file closed); "
        "durable: then os.fsync of the frame file",
        rewrite="update_data loop; durable: then os.fsync of the frame file",
        compact="no compaction API: to_cframe() written to a new file, renamed into place",
    )

    def storage(self, path, mode):
        return {"urlpath": path, "contiguous": True, "mode": mode}

    def construct_file(self, path, data):
        t0 = perf()
        s = self.b2.SChunk(
            chunksize=self.chunkbytes,
            data=data,
            cparams=self.cparams(self.n),
            dparams=self.b2.DParams(nthreads=self.n),
            **self.storage(path, "w"),
        )
        cb = s.cbytes
        del s
        t1 = perf()
        self.persist(None, path)
        t2 = perf()
        return t1 - t0, t2 - t0, {"compressed_bytes": cb}

    def persist(self, h, path):
        fsync_tree(path)

    def open_ro(self, path):
        return self.b2.open(path, mode="r")

    def open_rw(self, path):
        return self.b2.open(path, mode="a")

    def meta(self, h):
        h.nchunks  # noqa: B018
        h.chunksize  # noqa: B018

    def compact(self, h, path):
        live = h.cbytes
        frame = h.to_cframe()
        tmp = path + ".compact"
        with open(tmp, "wb") as f:
            f.write(frame)
        del frame
        os.replace(tmp, path)
        return os.path.getsize(path), live, {}


class Blosc2Mmap(Blosc2Disk):
    ext = ".b2frame"
    notes = dict(
        Blosc2Disk.notes,
        construct="SChunk(data=, urlpath=, mmap_mode='w+') then the handle freed (unmapped); "
        "durable: then os.fsync of the frame file",
        rewrite="update_data loop through the mapping; durable: then os.fsync of the frame file (writes back the "
        "mapping's dirty pages)",
    )

    def storage(self, path, mode):
        return {"urlpath": path, "contiguous": True, "mmap_mode": {"w": "w+", "r": "r", "a": "r+"}[mode]}

    def open_ro(self, path):
        return self.b2.open(path, mmap_mode="r")

    def open_rw(self, path):
        return self.b2.open(path, mmap_mode="r+")


# --- zarr v3 -----------------------------------------------------------------------------


class ZarrV3(Adapter):
    file_backed = True
    ext = ".zarr"
    notes = {
        "read": "get_basic_selection(out=NDBuffer over the reused buffer): honoured, but the codec decodes into a temporary that is then copied",
        "threads": "zarr sets numcodecs.blosc.use_threads=False; its parallelism is whole chunks on asyncio.to_thread "
        "workers, a pool of threading.max_workers = n threads; the chunk-by-chunk loops (read_all, rewrite, random) "
        "touch one chunk per call, so only construct and decompress can use more than one",
        "construct": "create_array + a[:] = data; durable: then os.fsync of every file and directory of the store",
        "rewrite": "a[rows] = chunk loop; durable: then os.fsync of every file and directory of the store",
        "compact": "no dead space (each chunk is its own file, replaced on write): size unchanged",
        "empty_chunks": "chunks equal to the fill value (0) are not written (write_empty_chunks=False, the default)",
    }

    def __init__(self, *a):
        super().__init__(*a)
        import zarr
        from zarr.codecs import BloscCodec
        from zarr.core.buffer.cpu import NDBuffer
        from zarr.storage import LocalStore

        self.zarr, self.NDBuffer, self.LocalStore = zarr, NDBuffer, LocalStore
        zarr.config.set({"threading.max_workers": self.n})
        self.codec = lambda: BloscCodec(
            cname="lz4", clevel=CLEVEL, shuffle="shuffle", typesize=self.dtype.itemsize, blocksize=BLOCK_BYTES
        )

    def create(self, path):
        return self.zarr.create_array(
            store=self.LocalStore(path),
            shape=(self.h, self.w),
            chunks=(self.rows, self.w),
            dtype=self.dtype.newbyteorder("="),
            compressors=self.codec(),
            fill_value=0,
            overwrite=True,
        )

    def construct_file(self, path, data):
        t0 = perf()
        a = self.create(path)
        a[:] = data
        t1 = perf()
        self.persist(a, path)
        t2 = perf()
        c = os.path.join(path, "c")
        return t1 - t0, t2 - t0, {"compressed_bytes": tree_size(c) if os.path.isdir(c) else 0}

    def persist(self, h, path):
        fsync_tree(path)

    def open_ro(self, path):
        return self.zarr.open_array(store=self.LocalStore(path, read_only=True), mode="r")

    def open_rw(self, path):
        return self.zarr.open_array(store=self.LocalStore(path), mode="r+")

    def meta(self, h):
        h.shape  # noqa: B018
        h.chunks  # noqa: B018

    def set_threads(self, h, n):
        pass  # process-wide: threading.max_workers, set in __init__ (see notes)

    def read_chunk(self, h, i, out2d):
        r0 = i * self.rows
        h.get_basic_selection((slice(r0, r0 + out2d.shape[0]), slice(None)), out=self.NDBuffer.from_numpy_array(out2d))

    def write_chunk(self, h, i, src2d):
        r0 = i * self.rows
        h[r0 : r0 + src2d.shape[0], :] = src2d

    def decompress(self, h):
        return h[:]

    def lazy_zeros(self, path):
        return self.create(path)

    def compact(self, h, path):
        c = os.path.join(path, "c")
        live = tree_size(c) if os.path.isdir(c) else 0
        return tree_size(path), live, {}


ADAPTERS = {
    "compressed-image-1.0.1": CI101,
    "blosc2-schunk-mem": Blosc2Mem,
    "blosc2-frame-disk": Blosc2Disk,
    "blosc2-frame-mmap": Blosc2Mmap,
    "zarr-v3": ZarrV3,
    "cimg-python": CimgFile,
    "cimg-python-anon": CimgAnon,
}


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------


class Ctx:
    def __init__(self, a, ad: Adapter):
        self.a, self.ad = a, ad
        self._data = None
        self.cache = os.path.join(a.workdir, "cache")
        self.tmp = os.path.join(a.workdir, "tmp")
        os.makedirs(self.cache, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)
        self.scratch: list[str] = []

    @property
    def data(self):
        if self._data is None:
            ad = self.ad
            d = np.fromfile(self.a.data, dtype=ad.dtype)
            if d.size != ad.w * ad.h:
                raise RuntimeError(f"{self.a.data}: {d.size} elements, expected {ad.w * ad.h}")
            self._data = d.reshape(ad.h, ad.w)
        return self._data

    def chunk_src(self, i):
        r = self.ad.rows
        return self.data[i * r : (i + 1) * r]

    def outs(self, buf):
        """Per-chunk 2-D views of one reused buffer."""
        ad = self.ad
        res = []
        for i in range(ad.nchunks):
            rows = min(ad.rows, ad.h - i * ad.rows)
            res.append(buf[: rows * ad.w].reshape(rows, ad.w))
        return res

    def new_buf(self):
        return np.empty(self.ad.rows * self.ad.w, self.ad.dtype)

    def scratch_path(self, tag=""):
        p = os.path.join(self.tmp, f"{self.a.system}-{os.getpid()}-{len(self.scratch)}{tag}{self.ad.ext}")
        remove(p)
        self.scratch.append(p)
        return p

    def cached_file(self, suffix=""):
        """A file of this dataset for read-only metrics, built once per run."""
        ad = self.ad
        stem = os.path.splitext(os.path.basename(self.a.data))[0]
        path = os.path.join(self.cache, f"{self.a.system}__{stem}{suffix}{ad.ext}")
        ok = path + ".ok"
        if not os.path.exists(ok):
            remove(path)
            ad.construct_file(path, self.data)
            with open(ok, "w") as f:
                f.write("ok\n")
        return path

    def handle(self, nthreads=None, suffix=""):
        """A fresh read handle on `nthreads` threads (default: the worker's `--threads`): the
        cached file opened, or an in-memory build."""
        ad = self.ad
        if ad.file_backed:
            h = ad.open_ro(self.cached_file(suffix))
        else:
            h = ad.build(self.data)
        ad.set_threads(h, ad.n if nthreads is None else nthreads)
        return h

    def cleanup(self):
        for p in self.scratch:
            remove(p)


def read_loop(ad, h, outs):
    for i, o in enumerate(outs):
        ad.read_chunk(h, i, o)


def check_last(ctx, outs):
    i = len(outs) - 1
    if not np.array_equal(outs[i], ctx.chunk_src(i)):
        raise RuntimeError(f"chunk {i} read back differs from the source")


def m_construct(ctx):
    ad = ctx.ad
    if ad.file_backed:
        path = ctx.scratch_path()
        t, t_durable, extra = ad.construct_file(path, ctx.data)
        extra["file_bytes"] = tree_size(path)
        remove(path)
        return t, extra, {"construct_durable": t_durable}
    data = ctx.data
    t0 = perf()
    h = ad.build(data)
    t1 = perf()
    extra = {"compressed_bytes": ad.compressed_bytes(h)}
    del h
    return t1 - t0, extra, {}


def m_read_all(ctx, again=False):
    ad = ctx.ad
    h = ctx.handle()
    buf = ctx.new_buf()
    outs = ctx.outs(buf)
    extra = {}
    if again:
        t0 = perf()
        read_loop(ad, h, outs)
        extra["first_pass_s"] = perf() - t0
    t0 = perf()
    read_loop(ad, h, outs)
    t = perf() - t0
    check_last(ctx, outs)
    ad.close(h)
    return t, extra


def m_random(ctx):
    ad = ctx.ad
    h = ctx.handle()
    buf = ctx.new_buf()
    outs = ctx.outs(buf)
    idx = np.random.default_rng(1234).integers(0, ad.nchunks, RANDOM_READS)
    passes = []
    for _ in range(2):
        lat = []
        for i in idx:
            t0 = perf()
            ad.read_chunk(h, int(i), outs[i])
            lat.append(perf() - t0)
        passes.append(lat)
    ad.close(h)
    return statistics.median(passes[0]), {
        "fresh_handle": True,
        "mean_s": statistics.fmean(passes[0]),
        "second_pass_median_s": statistics.median(passes[1]),
    }


def m_decompress(ctx):
    ad = ctx.ad
    h = ctx.handle()
    t0 = perf()
    out = ad.decompress(h)
    t = perf() - t0
    if not np.array_equal(np.asarray(out).reshape(ad.h, ad.w), ctx.data):
        raise RuntimeError("decompressed channel differs from the source")
    del out
    ad.close(h)
    return t, {}


def m_rewrite(ctx):
    ad = ctx.ad
    srcs = [ctx.chunk_src(i) for i in range(ad.nchunks)]
    if ad.file_backed:
        path = ctx.scratch_path()
        ad.construct_file(path, ctx.data)
        h = ad.open_rw(path)
    else:
        h = ad.build(ctx.data)
    ad.set_threads(h, ad.n)
    t0 = perf()
    for i, s in enumerate(srcs):
        ad.write_chunk(h, i, s)
    t = perf() - t0
    also = {}
    if ad.file_backed:
        t0 = perf()
        ad.persist(h, path)
        also["rewrite_durable"] = t + perf() - t0
    ad.close(h)
    return t, {}, also


def m_open(ctx):
    ad = ctx.ad
    path = ctx.cached_file()
    times = []
    for _ in range(OPENS):
        t0 = perf()
        h = ad.open_ro(path)
        ad.meta(h)
        times.append(perf() - t0)
        ad.close(h)
        del h
    return statistics.median(times), {"min_s": min(times), "opens": OPENS}


def m_two_threads(ctx):
    ad = ctx.ad
    ha, hb = ctx.handle(1), ctx.handle(1, suffix="_b")
    oa, ob = ctx.outs(ctx.new_buf()), ctx.outs(ctx.new_buf())
    read_loop(ad, ha, oa)  # warm: first reads (checksums, page faults) untimed
    read_loop(ad, hb, ob)
    one, two = [], []
    for _ in range(3):
        t0 = perf()
        read_loop(ad, ha, oa)
        read_loop(ad, hb, ob)
        one.append(perf() - t0)
        ts = [threading.Thread(target=read_loop, args=(ad, ha, oa)), threading.Thread(target=read_loop, args=(ad, hb, ob))]
        t0 = perf()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        two.append(perf() - t0)
    check_last(ctx, oa)
    check_last(ctx, ob)
    ad.close(ha)
    ad.close(hb)
    t_one, t_two = statistics.median(one), statistics.median(two)
    return t_one / t_two, {"t_one_s": t_one, "t_two_s": t_two}


def m_lazy_rss(ctx):
    from datasets import RenderRows

    cls = type(ctx.ad)
    ad = cls(LAZY_W, LAZY_H, np.dtype("<f4"), ctx.ad.n)
    path = ctx.scratch_path("-lazy") if ad.file_backed else None
    # The caller's chunk buffer and row generator exist before the baseline: the value is
    # what the system itself keeps.
    gen = RenderRows(ad.w, ad.h)
    rows = np.zeros((ad.rows, ad.w), np.float32)
    base = rss_anon()
    h = ad.lazy_zeros(path)
    peak = rss_anon()
    written = 0
    for i in range(0, ad.nchunks, LAZY_EVERY):
        n = min(ad.rows, ad.h - i * ad.rows)
        gen.fill(rows[:n], i * ad.rows, np.random.default_rng(i))
        ad.write_chunk(h, i, rows[:n])
        peak = max(peak, rss_anon())
        written += 1
    ad.close(h)
    return peak - base, {
        "baseline_rss_anon_bytes": base,
        "peak_rss_anon_bytes": peak,
        "chunks_written": written,
        "num_chunks": ad.nchunks,
    }


def m_size_rewrites(ctx):
    ad = ctx.ad
    path = ctx.scratch_path()
    ad.construct_file(path, ctx.data)
    initial = tree_size(path)
    srcs = [ctx.chunk_src(i) for i in range(ad.nchunks)]
    h = ad.open_rw(path)
    ad.set_threads(h, ad.n)
    for _ in range(REWRITES):
        for i, s in enumerate(srcs):
            ad.write_chunk(h, i, s)
    after = tree_size(path)
    after_compact, live, more = ad.compact(h, path)
    ad.close(h)
    extra = {
        "initial_bytes": initial,
        "after_rewrites_bytes": after,
        "after_compact_bytes": after_compact,
        "live_bytes": live,
        "rewrites": REWRITES,
    }
    extra.update(more)
    return after, extra


METRIC_FNS = {
    "construct": m_construct,
    "read_all": m_read_all,
    "read_all_again": lambda c: m_read_all(c, again=True),
    "decompress": m_decompress,
    "rewrite": m_rewrite,
    "random": m_random,
    "open": m_open,
    "two_threads": m_two_threads,
    "lazy_rss": m_lazy_rss,
    "size_rewrites": m_size_rewrites,
}


def versions(system):
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    try:
        from importlib.metadata import version

        for p in ("compressed-image", "blosc2", "zarr", "numcodecs"):
            try:
                out[p] = version(p)
            except Exception:
                pass
    except Exception:
        pass
    if system.startswith("cimg-python"):
        import compressed_image

        out["compressed_image (ours)"] = compressed_image.__version__
        out["compressed_image path"] = compressed_image.__file__
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["worker", "versions"])
    ap.add_argument("--system", required=True)
    ap.add_argument("--data")
    ap.add_argument("--width", type=int)
    ap.add_argument("--height", type=int)
    ap.add_argument("--dtype", choices=list(NP_DTYPES))
    ap.add_argument("--metric", choices=systems.WORKER_METRICS)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--workdir")
    a = ap.parse_args()
    if a.cmd == "versions":
        print(json.dumps(versions(a.system)))
        return
    if a.system not in ADAPTERS:
        raise SystemExit(f"unknown Python system {a.system!r}")
    reason = systems.py_skip_reason(a.system, a.metric)
    if reason:
        print(json.dumps({"system": a.system, "metric": a.metric, "skipped": reason}))
        return
    if not a.threads or a.threads < 1:
        raise SystemExit("--threads must be at least 1")
    ad = ADAPTERS[a.system](a.width, a.height, np.dtype(NP_DTYPES[a.dtype]), a.threads)
    ctx = Ctx(a, ad)
    values, extras, also = [], [], {}
    try:
        for _ in range(a.reps):
            # (value, extra) or (value, extra, {durable metric: value})
            v, e, *more = METRIC_FNS[a.metric](ctx)
            more = more[0] if more else {}
            values.append(v)
            extras.append(e)
            for k, x in more.items():
                also.setdefault(k, []).append(x)
    finally:
        ctx.cleanup()
    extra = extras[0] if len(extras) == 1 else {"per_rep": extras}
    if ad.notes:
        extra["notes"] = ad.notes
    out = {
        "system": a.system,
        "metric": a.metric,
        "threads": a.threads,
        "unit": systems.UNITS[a.metric],
        "values": values,
        "extra": extra,
    }
    if also:
        out["also"] = also
    print(json.dumps(out))


if __name__ == "__main__":
    main()
