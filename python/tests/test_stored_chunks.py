"""Chunks compressed away from the writer (compress_chunk / set_stored_chunk(s)), chunk-wise
updates in one commit (update_chunks), pinned commits (snapshot_id / open_snapshot, also
across processes and through pickling) and inspect()."""

import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Channel, Image

from conftest import ramp, run_python

pytestmark = pytest.mark.extension

W, H, ROWS = 48, 20, 8  # chunks of 8, 8 and 4 rows


def make(tmp_path, dtype=np.uint16):
    path = tmp_path / "c.cimg"
    return path, Channel.create_full(path, dtype, 0, W, H, chunk_size=W * np.dtype(dtype).itemsize * ROWS)


def chunk_data(c, i, seed=0):
    return (ramp(np.uint16, c.chunk_elems(i) // W, W) + seed).astype(c.dtype)


def test_chunks_compressed_on_worker_threads_commit_like_set_chunk(tmp_path):
    path, writer = make(tmp_path)
    worker = Channel.open(path, read_only=True)
    with ThreadPoolExecutor(3) as pool:
        blobs = list(pool.map(lambda i: worker.compress_chunk(i, chunk_data(writer, i, i)), range(3)))
    assert all(isinstance(b, bytes) for b in blobs)
    generation = writer.stats()["generation"]
    writer.set_stored_chunks(enumerate(blobs))
    assert writer.stats()["generation"] == generation + 1
    expected = np.concatenate([chunk_data(writer, i, i) for i in range(3)])
    np.testing.assert_array_equal(writer.get_decompressed(), expected)
    reference = Channel.zeros(np.uint16, W, H, chunk_size=W * 2 * ROWS)
    for i in range(3):
        reference.set_chunk(i, chunk_data(writer, i, i).ravel())
    assert writer.compressed_bytes() == reference.compressed_bytes()
    assert writer.verify()["ok"]


def test_single_stored_chunk_and_fill_values(tmp_path):
    path, writer = make(tmp_path)
    writer.set_stored_chunk(1, writer.compress_chunk(1, chunk_data(writer, 1, 3)))
    np.testing.assert_array_equal(writer.get_chunk(1).reshape(ROWS, W), chunk_data(writer, 1, 3))
    writer.set_stored_chunk(2, writer.compress_chunk(2, np.full(W * 4, 9, np.uint16)))
    assert writer.is_lazy(2)
    assert (writer.get_chunk(2) == 9).all()


def test_every_mismatch_is_a_value_error_and_changes_nothing(tmp_path):
    path, writer = make(tmp_path)
    good = writer.compress_chunk(1, chunk_data(writer, 1))
    other = Channel.zeros(np.int16, W, H, chunk_size=W * 2 * ROWS)
    before = (writer.stats()["generation"], writer.get_decompressed())
    for index, blob in [
        (0, good),  # made for chunk 1
        (1, good[:-1]),  # truncated
        (1, good[:40] + bytes([good[40] ^ 1]) + good[41:]),  # damaged header
        (1, good[:-1] + bytes([good[-1] ^ 1])),  # damaged payload
        (1, b"not a chunk at all, not a chunk at all, not a chunk at all"),
        (1, other.compress_chunk(1, np.ones(W * ROWS, np.int16))),  # another dtype
    ]:
        with pytest.raises(ValueError):
            writer.set_stored_chunk(index, blob)
        with pytest.raises(ValueError):
            writer.set_stored_chunks([(index, blob)])
    with pytest.raises(IndexError):
        writer.set_stored_chunk(3, good)
    with pytest.raises(ValueError):
        writer.compress_chunk(1, np.zeros(W * ROWS, np.int16))  # wrong dtype
    with pytest.raises(ValueError):
        writer.compress_chunk(1, np.zeros(W * ROWS - 1, np.uint16))  # wrong length
    with pytest.raises(TypeError):
        writer.set_stored_chunk(1, "a str")
    assert writer.stats()["generation"] == before[0]
    np.testing.assert_array_equal(writer.get_decompressed(), before[1])
    reader = Channel.open(path, read_only=True)
    with pytest.raises(ci.ReadOnlyError):
        reader.set_stored_chunk(1, good)


def test_update_chunks_writes_back_only_changed_chunks_in_one_commit(tmp_path):
    path, c = make(tmp_path)
    seen = []

    def double_the_middle(i, chunk):
        seen.append((i, chunk.shape))
        if i == 1:
            chunk[:] = 5  # in place
            return None
        if i == 2:
            return np.full(chunk.shape, 6, np.uint16)  # a new array
        return None  # unchanged

    generation = c.stats()["generation"]
    c.update_chunks(double_the_middle)
    assert seen == [(0, (ROWS, W)), (1, (ROWS, W)), (2, (4, W))]
    assert c.stats()["generation"] == generation + 1
    assert (c[0:8] == 0).all() and (c[8:16] == 5).all() and (c[16:] == 6).all()
    assert c.is_lazy(0)

    def fail(i, chunk):
        chunk[:] = 1
        if i == 2:
            raise KeyError("stop")

    with pytest.raises(KeyError):
        c.update_chunks(fail)
    assert c.stats()["generation"] == generation + 1
    with pytest.raises(ValueError):
        c.update_chunks(lambda i, chunk: np.zeros(3, np.uint16))
    with pytest.raises(ValueError):
        c.update_chunks(lambda i, chunk: chunk.astype(np.float32))
    assert (c[16:] == 6).all()


def test_a_batch_commits_its_chunks_together_and_an_exception_discards_them(tmp_path):
    path, c = make(tmp_path)
    generation = c.stats()["generation"]
    with c.batch() as b:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda i: b.set_chunk(i, chunk_data(c, i, i).ravel()), range(3)))
        b.set_stored_chunk(2, c.compress_chunk(2, np.full(W * 4, 4, np.uint16)))  # replaces
        assert len(b) == 3
        assert c.stats()["generation"] == generation  # nothing yet
    assert c.stats()["generation"] == generation + 1
    np.testing.assert_array_equal(c[0:16], np.concatenate([chunk_data(c, i, i) for i in range(2)]))
    assert (c[16:] == 4).all()
    with pytest.raises(KeyError):
        with c.batch() as b:
            b.set_chunk(0, np.zeros(W * ROWS, np.uint16))
            raise KeyError("stop")
    assert c.stats()["generation"] == generation + 1
    b = c.batch()
    b.set_stored_chunk(1, c.compress_chunk(0, np.zeros(W * ROWS, np.uint16)))  # made for chunk 0
    with pytest.raises(ValueError):
        b.commit()
    with pytest.raises(RuntimeError):
        b.commit()  # finished
    assert c.stats()["generation"] == generation + 1
    with pytest.raises(ci.ReadOnlyError):
        Channel.open(path, read_only=True).batch()


def test_a_pinned_channel_reads_its_commit_after_newer_ones(tmp_path):
    path, w = make(tmp_path)
    w[:] = 1
    sid = w.snapshot_id()
    assert isinstance(sid, bytes) and len(sid) == 48
    w[:] = 2
    pinned = Channel.open_snapshot(path, sid)
    assert pinned.pinned and pinned.read_only and not w.pinned
    w[:] = 3
    assert not pinned.refresh()
    assert (np.asarray(pinned) == 1).all()
    assert (np.asarray(Channel.open_snapshot(path, sid.hex())) == 1).all()
    # Pickling keeps the pin.
    clone = pickle.loads(pickle.dumps(pinned))
    assert clone.pinned and (np.asarray(clone) == 1).all()
    w.compact()
    with pytest.raises(ci.SnapshotUnavailableError):
        Channel.open_snapshot(path, sid)
    with pytest.raises(ValueError):
        Channel.open_snapshot(path, sid[:-1] + bytes([sid[-1] ^ 1]))
    with pytest.raises(TypeError):
        Channel.open_snapshot(path, 42)


def test_a_pinned_image_and_its_channels(tmp_path):
    path = tmp_path / "i.cimg"
    img = Image.create(path, np.uint8, 4, 3)
    img.add_channel(np.full((3, 4), 1, np.uint8), 4, 3, name="a")
    sid = img.snapshot_id()
    img.add_channel(np.full((3, 4), 2, np.uint8), 4, 3, name="b")
    pinned = Image.open_snapshot(path, sid)
    assert pinned.pinned and pinned.get_channel_names() == ["a"]
    channel = pinned["a"]
    assert (np.asarray(channel) == 1).all()
    clone = pickle.loads(pickle.dumps(channel))
    assert clone.pinned and (np.asarray(clone) == 1).all()
    image_clone = pickle.loads(pickle.dumps(pinned))
    assert image_clone.get_channel_names() == ["a"]


def test_a_second_process_reads_a_pinned_snapshot_while_this_one_commits(tmp_path):
    path, w = make(tmp_path, np.float32)
    w[:] = 1.0
    sid = w.snapshot_id()
    w[:] = 2.0  # the child opens a commit that is no longer the newest
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, numpy as np, compressed_image as ci
                c = ci.Channel.open_snapshot(sys.argv[1], bytes.fromhex(sys.argv[2]))
                print(float(np.asarray(c).mean()), flush=True)
                while sys.stdin.readline().strip() == "read":
                    print(c.refresh(), float(c[:, 5:9].mean()), float(c[7].mean()), flush=True)
                """
            ),
            str(path),
            sid.hex(),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert float(child.stdout.readline()) == 1.0
        for value in (3.0, 4.0, 5.0):
            w[::2] = value
            w.sync()
            child.stdin.write("read\n")
            child.stdin.flush()
            assert child.stdout.readline().split() == ["False", "1.0", "1.0"]
    finally:
        child.stdin.close()
        assert child.wait(60) == 0
        child.stdout.close()
    assert float(np.asarray(Channel.open(path, read_only=True))[0, 0]) == 5.0


def test_pickled_snapshot_ids_open_in_another_process(tmp_path):
    path, w = make(tmp_path)
    w[:] = 7
    sid = w.snapshot_id()
    w[:] = 8
    out = run_python(
        """
        import pickle, sys, numpy as np, compressed_image as ci
        c = pickle.loads(bytes.fromhex(sys.argv[1]))
        print(int(np.asarray(c).max()), c.pinned)
        """,
        pickle.dumps(Channel.open_snapshot(path, sid)).hex(),
    )
    assert out.stdout.split() == ["7", "True"]


def test_inspect(tmp_path):
    path = tmp_path / "i.cimg"
    img = Image([np.float16, np.uint32], [np.zeros((3, 4))] * 2, 4, 3, ["luma", "id"], ci.Codec.zstd, 5)
    img.save(path)
    info = ci.inspect(path)
    assert (info["width"], info["height"], info["has_names"]) == (4, 3, True)
    assert info["format_version"] == ci.FORMAT_VERSION
    assert [c["name"] for c in info["channels"]] == ["luma", "id"]
    assert [c["dtype"] for c in info["channels"]] == [np.float16, np.uint32]
    assert info["channels"][0]["codec"] == ci.Codec.zstd and info["channels"][0]["level"] == 5
    assert info["channels"][1]["num_chunks"] == 1 and info["channels"][1]["rows_per_chunk"] == 3
    with pytest.raises(FileNotFoundError):
        ci.inspect(tmp_path / "missing.cimg")
