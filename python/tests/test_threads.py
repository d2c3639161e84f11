"""The GIL is released around (de)compression and I/O: Python threads run in parallel.

Correctness is asserted; the speed-up is printed, not asserted (shared, noisy machines).
"""

import os
import resource
import threading
import time

import numpy as np
import pytest

from compressed_image import Channel, Codec, Image

from conftest import run_python

pytestmark = pytest.mark.extension


def smooth(h, w, phase):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return (np.sin(x / 37.0 + phase) * np.cos(y / 23.0) * 1000).astype(np.float32)


def read_all(channel, rounds, out):
    buf = np.empty(channel.chunk_elems(), np.float32)
    total = 0.0
    for _ in range(rounds):
        for i in range(channel.num_chunks()):
            n = channel.chunk_elems(i)
            view = buf[:n]
            channel.get_chunk(i, view)
            total += float(view[::997].sum())
    out.append(total)


def expected_total(data, channel, rounds):
    flat = data.ravel()
    total = 0.0
    start = 0
    for i in range(channel.num_chunks()):
        n = channel.chunk_elems(i)
        total += float(flat[start : start + n][::997].sum())
        start += n
    return total * rounds


def run_threads(targets):
    threads = [threading.Thread(target=f, args=a) for f, a in targets]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def test_two_threads_on_two_channels(capsys):
    h = w = 2048
    datas = [smooth(h, w, 0.0), smooth(h, w, 1.0)]
    chans = [Channel(d, w, h) for d in datas]
    for c in chans:
        c.update_nthreads(1)  # one thread inside each call: the parallelism is Python's
    rounds = 12
    expect = [expected_total(d, c, rounds) for d, c in zip(datas, chans)]

    outs = [[], []]
    t0 = time.perf_counter()
    read_all(chans[0], rounds, outs[0])
    read_all(chans[1], rounds, outs[1])
    sequential = time.perf_counter() - t0
    assert outs == [[expect[0]], [expect[1]]]

    outs = [[], []]
    cpu = time.process_time()
    parallel = run_threads([(read_all, (chans[k], rounds, outs[k])) for k in range(2)])
    cpu = time.process_time() - cpu
    assert outs == [[expect[0]], [expect[1]]]
    with capsys.disabled():
        print(
            f"\n[threads] get_chunk loop, 2 channels x {rounds} x 16 MiB: "
            f"1 thread {sequential:.3f} s, 2 threads {parallel:.3f} s, "
            f"speed-up {sequential / parallel:.2f}x (process CPU / wall in the 2-thread run: "
            f"{cpu / parallel:.2f})"
        )


def test_two_threads_writing_two_channels():
    h, w = 512, 1024
    chans = [Channel.zeros(np.float32, w, h, chunk_size=w * 4 * 64) for _ in range(2)]
    datas = [smooth(h, w, k) for k in range(2)]

    def write(c, d):
        flat = d.ravel()
        for _ in range(3):
            for i in range(c.num_chunks()):
                n = c.chunk_elems()
                c.set_chunk(i, flat[i * n : i * n + c.chunk_elems(i)])

    run_threads([(write, (chans[k], datas[k])) for k in range(2)])
    for c, d in zip(chans, datas):
        np.testing.assert_array_equal(c.get_decompressed(), d)


def test_many_threads_reading_one_channel_and_one_image():
    h, w = 1024, 1024
    data = smooth(h, w, 0.5)
    c = Channel(data, w, h, Codec.zstd, 1, chunk_size=w * 4 * 128)
    img = Image(np.float32, [data, data * 2], w, h, ["a", "b"])
    errors = []

    def reader(k):
        try:
            for _ in range(3):
                np.testing.assert_array_equal(c.get_decompressed(), data)
                np.testing.assert_array_equal(img[k % 2].get_decompressed(), data * (1 + k % 2))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    run_threads([(reader, (k,)) for k in range(4)])
    assert errors == []


def test_gil_is_released_during_a_long_call():
    h = w = 1024
    data = np.random.default_rng(0).random((h, w), dtype=np.float32)
    stop = threading.Event()
    ticks = [0]

    def spin():
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.05)
        before = ticks[0]
        t0 = time.perf_counter()
        # one call, zstd level 9 on 4 MiB of noise: tens to hundreds of milliseconds
        Channel(data, w, h, Codec.zstd, 9)
        elapsed = time.perf_counter() - t0
        during = ticks[0] - before
    finally:
        stop.set()
        t.join()
    # With the GIL held for the whole call the spinning thread would barely move (it only
    # runs at the switch interval before and after the call).
    assert elapsed > 0.02
    assert during > 1000


# c-blosc2 gets at most 4 threads per core for one chunk (the crate's cap), and a thread
# keeps a compression and a decompression context, each with its own pool; rayon's pool
# across chunks adds one per core.
ALLOWED_NEW_THREADS = 9 * (os.cpu_count() or 1) + 4


def limit_address_space():
    """In the child before exec: 8 MiB thread stacks, and address space for the
    interpreter (1.5 GiB) plus 16 MiB per allowed thread: room for what is allowed, not
    for the thousands of threads a regression would start."""
    resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, 8 << 20))
    limit = (3 << 29) + ALLOWED_NEW_THREADS * (16 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_update_nthreads_huge_count_does_not_explode_threads():
    # 1 MiB chunks of 4 KiB blocks: 256 blocks, enough for c-blosc2 to use every thread it
    # is given; handed 40,000 as is, it would try to start 32,767. The check runs in a
    # child process whose address space is capped (limit_address_space), so that such a
    # regression fails there (an error, or c-blosc2 waiting forever for threads it could
    # not start: the timeout) after a few hundred threads instead of starting thousands.
    child = run_python(
        """
        import numpy as np
        from compressed_image import Channel

        def thread_count():
            with open("/proc/self/status") as f:
                return int(next(l for l in f if l.startswith("Threads:")).split()[1])

        h, w = 256, 1024
        data = np.arange(h * w, dtype=np.float32).reshape(h, w) % 977
        c = Channel(data, w, h, block_size=4096, chunk_size=w * 4 * 64)
        c.update_nthreads(40000)
        before = thread_count()
        assert (c.get_chunk(1) == data[64:128].ravel()).all()
        c.set_chunk(2, data[128:192].ravel())
        assert (c.get_decompressed() == data).all()
        print(thread_count() - before, c.nthreads)
        """,
        preexec_fn=limit_address_space,
        check=False,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    started, reported = map(int, child.stdout.split())
    assert started <= ALLOWED_NEW_THREADS, started
    assert reported == 40000  # the count as set
