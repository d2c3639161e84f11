"""Files: create/open read-write and read-only, other processes, refresh, sync, save,
compact, verify, stats, context managers, pickling."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Channel, Codec, Image

from conftest import ramp, run_python

pytestmark = pytest.mark.extension


def test_channel_create_open_round_trip(tmp_path):
    p = tmp_path / "c.cimg"
    data = ramp(np.float32, 64, 48)
    c = Channel.create(p, data, 48, 64, Codec.zstd, 5, 2048, 48 * 4 * 16)
    assert c.path == str(p) and not c.read_only
    assert c.num_chunks() == 4
    c.close()
    with Channel.open(p) as r:
        assert r.dtype == np.float32 and r.shape == (64, 48)
        assert (r.compression(), r.compression_level(), r.block_size()) == (Codec.zstd, 5, 2048)
        np.testing.assert_array_equal(r.get_decompressed(), data)
    with Channel.open(str(p), read_only=True) as r:
        assert r.read_only
        np.testing.assert_array_equal(r.get_chunk(1), data.ravel()[48 * 16 : 48 * 32])
        with pytest.raises(ci.ReadOnlyError):
            r.set_chunk(0, np.zeros(48 * 16, np.float32))
        with pytest.raises(RuntimeError):
            r.compact()


def test_create_full_is_lazy_and_edits_persist(tmp_path):
    p = tmp_path / "mask.cimg"
    with Channel.create_full(p, np.uint16, 3, 4096, 4096) as c:
        assert c.num_chunks() == 8
        assert c.compressed_bytes() == 16
        chunk = np.arange(c.chunk_elems(5), dtype=np.uint16)
        c.set_chunk(5, chunk)
        c.sync()
    with Channel.open(p, read_only=True) as r:
        np.testing.assert_array_equal(r.get_chunk(5), chunk)
        assert (r.get_chunk(4) == 3).all()
        assert r.is_lazy(4) and not r.is_lazy(5)


def test_relative_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = Channel.create_full("rel.cimg", np.uint8, 0, 4, 4)
    assert c.path == str(tmp_path / "rel.cimg")


def test_one_writer_per_file(tmp_path):
    p = tmp_path / "c.cimg"
    w = Channel.create_full(p, np.uint8, 0, 8, 8)
    with pytest.raises(ci.LockedError):
        Channel.open(p)
    r = Channel.open(p, read_only=True)  # readers are never locked out
    assert r.num_chunks() == 1
    # another process
    proc = run_python(
        """
        import sys, compressed_image as ci
        try:
            ci.Channel.open(sys.argv[1])
        except ci.LockedError:
            print("locked")
        """,
        p,
    )
    assert proc.stdout.strip() == "locked"
    w.close()  # releases the lock
    Channel.open(p).close()


def test_context_manager_releases_the_writer_lock(tmp_path):
    p = tmp_path / "c.cimg"
    Channel.create_full(p, np.float32, 1.0, 8, 8).close()
    with Channel.open(p) as c:
        c.set_chunk(0, np.zeros(64, np.float32))
    assert c.closed
    with pytest.raises(RuntimeError):
        c.get_chunk(0)
    with Channel.open(p) as again:
        assert (again.get_decompressed() == 0).all()


def test_other_process_reads_and_follows_commits(tmp_path):
    p = tmp_path / "shared.cimg"
    data = ramp(np.float32, 256, 128)
    w = Channel.create(p, data, 128, 256, chunk_size=128 * 4 * 64)
    w.sync()
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, numpy as np, compressed_image as ci
                r = ci.Channel.open(sys.argv[1], read_only=True)
                print(float(r.get_decompressed().sum()), flush=True)
                sys.stdin.readline()
                print(r.refresh(), float(r.get_chunk(2).sum()), flush=True)
                """
            ),
            str(p),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert float(reader.stdout.readline()) == pytest.approx(float(data.sum()))
        w.set_chunk(2, np.full(w.chunk_elems(2), 2.0, np.float32))
        w.set_chunk(1, np.full(w.chunk_elems(1), 1.0, np.float32))
        reader.stdin.write("go\n")
        reader.stdin.flush()
        changed, total = reader.stdout.readline().split()
        assert changed == "True"
        assert float(total) == 2.0 * w.chunk_elems(2)
    finally:
        reader.stdin.close()
        assert reader.wait(60) == 0
        reader.stdout.close()
    w.close()


def test_writer_in_another_process(tmp_path):
    p = tmp_path / "img.cimg"
    run_python(
        """
        import sys, numpy as np, compressed_image as ci
        img = ci.Image.create(sys.argv[1], np.uint16, 32, 16)
        for k, name in enumerate("RGB"):
            img.add_channel(np.full((16, 32), k, np.uint16), 32, 16, name)
        img.set_metadata({"colorspace": "sRGB", "tags": [1, 2]})
        img.sync()
        """,
        p,
    )
    with Image.open(p, read_only=True) as img:
        assert img.dtype == np.uint16
        assert img.get_channel_names() == ["R", "G", "B"]
        assert img.get_metadata() == {"colorspace": "sRGB", "tags": [1, 2]}
        assert [int(a[0, 0]) for a in img.get_decompressed()] == [0, 1, 2]
        assert img.read_only
        with pytest.raises(ci.ReadOnlyError):
            img.add_channel(np.zeros((16, 32), np.uint16), 32, 16)
        with pytest.raises(ci.ReadOnlyError):
            img["R"].set_chunk(0, np.zeros(512, np.uint16))


def test_image_file_edits(tmp_path):
    p = tmp_path / "img.cimg"
    with Image.create(p, np.float32, 20, 10) as img:
        assert img.shape == (0, 10, 20)
        img.add_channel(ramp(np.float32, 10, 20), 20, 10, "Y")
        img.add_channel(np.ones((10, 20), np.float32), 20, 10, "A")
        img.remove_channel("A")
        img.set_channel_names(["luma"])
        img.set_metadata({"k": "v"})
    with Image.open(p) as img:
        assert img.get_channel_names() == ["luma"]
        assert img.get_metadata() == {"k": "v"}
        np.testing.assert_array_equal(img["luma"].get_decompressed(), ramp(np.float32, 10, 20))


def test_image_close_closes_its_channels_and_releases_the_lock(tmp_path):
    p = tmp_path / "img.cimg"
    img = Image.create(p, np.uint8, 4, 4)
    img.add_channel(np.zeros((4, 4), np.uint8), 4, 4, "R")
    r = img["R"]
    with pytest.raises(ci.LockedError):
        Image.open(p)
    img.close()
    with pytest.raises(RuntimeError):
        r.get_chunk(0)
    with pytest.raises(RuntimeError):
        img.num_channels
    Image.open(p).close()


def test_save_anonymous_channel_and_image(tmp_path):
    data = ramp(np.int32, 30, 40)
    c = Channel(data, 40, 30)
    c.save(tmp_path / "c.cimg")
    assert c.path is None
    with Channel.open(tmp_path / "c.cimg", read_only=True) as r:
        np.testing.assert_array_equal(r.get_decompressed(), data)
    img = Image(np.int32, [data, data + 1], 40, 30, ["a", "b"])
    img.set_metadata([1, "two"])
    img.save(tmp_path / "i.cimg")
    with Image.open(tmp_path / "i.cimg") as r:
        assert r.get_channel_names() == ["a", "b"] and r.get_metadata() == [1, "two"]
        np.testing.assert_array_equal(r["b"].get_decompressed(), data + 1)
    # a channel of an image saves as a standalone channel file
    img["b"].save(tmp_path / "b.cimg")
    with Channel.open(tmp_path / "b.cimg") as r:
        np.testing.assert_array_equal(r.get_decompressed(), data + 1)


def test_stats_compact_verify(tmp_path):
    p = tmp_path / "c.cimg"
    data = ramp(np.float32, 128, 128)
    c = Channel.create(p, data, 128, 128, chunk_size=128 * 4 * 16)
    for _ in range(5):
        for i in range(c.num_chunks()):
            c.set_chunk(i, c.get_chunk(i)[::-1].copy())
    s = c.stats()
    assert set(s) == {"generation", "file_len", "committed_end", "live_bytes", "dead_bytes", "blob_chunks", "fill_chunks", "fill_bytes", "in_memory"}
    assert s["in_memory"] is False
    assert s["dead_bytes"] > 0 and s["blob_chunks"] == 8 and s["fill_chunks"] == 0
    v = c.verify()
    assert v["ok"] is True and v["problems"] == [] and v["records"] > 0
    r = c.compact()
    assert set(r) == {"file_len_before", "file_len_after", "reclaimed"}
    assert r["file_len_after"] < r["file_len_before"]
    assert c.stats()["dead_bytes"] == 0
    # five reversals of every chunk: each chunk's elements are reversed once overall
    expect = np.concatenate([chunk[::-1] for chunk in np.split(data.ravel(), 8)])
    np.testing.assert_array_equal(c.get_decompressed().ravel(), expect)
    c.close()
    with Channel.open(p, read_only=True) as r:
        assert r.verify()["ok"]


def test_refresh_follows_compaction_in_this_process(tmp_path):
    p = tmp_path / "c.cimg"
    w = Channel.create_full(p, np.uint8, 0, 64, 64, chunk_size=64 * 8)
    r = Channel.open(p, read_only=True)
    w.set_chunk(0, np.full(512, 5, np.uint8))
    w.set_chunk(0, np.full(512, 6, np.uint8))
    w.compact()
    r.refresh()
    assert (r.get_chunk(0) == 6).all()
    assert w.refresh() is False


def test_corrupted_and_missing_files(tmp_path):
    junk = tmp_path / "junk.cimg"
    junk.write_bytes(b"not a compressed image" * 500)
    with pytest.raises(ci.CorruptedError):
        Channel.open(junk, read_only=True)
    with pytest.raises(ValueError):
        Image.open(junk)
    with pytest.raises(FileNotFoundError):
        Channel.open(tmp_path / "missing.cimg")
    with pytest.raises(FileNotFoundError):
        Image.open(tmp_path / "missing.cimg", read_only=True)
    with pytest.raises(OSError):
        Channel.create_full(tmp_path / "no" / "such" / "dir.cimg", np.uint8, 0, 4, 4)


def test_opening_an_image_file_as_a_channel(tmp_path):
    p = tmp_path / "img.cimg"
    img = Image.create(p, np.uint8, 2, 2)
    img.add_channel(np.zeros((2, 2), np.uint8), 2, 2)
    img.add_channel(np.zeros((2, 2), np.uint8), 2, 2)
    img.close()
    with pytest.raises(ValueError):
        Channel.open(p)


def test_checksum_damage_is_detected(tmp_path):
    p = tmp_path / "c.cimg"
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    Channel.create(p, data, 64, 64, compression_level=0).close()
    raw = bytearray(p.read_bytes())
    needle = data.tobytes()[1000:1032]
    at = raw.find(needle)
    assert at > 0
    raw[at] ^= 0xFF
    p.write_bytes(bytes(raw))
    with Channel.open(p, read_only=True) as r:
        assert not r.verify()["ok"]
        with pytest.raises(ci.CorruptedError):
            r.get_decompressed()


# ---- pickling --------------------------------------------------------------------------


def test_pickle_anonymous_is_a_type_error():
    with pytest.raises(TypeError, match="anonymous"):
        pickle.dumps(Channel.zeros(np.uint8, 4, 4))
    with pytest.raises(TypeError, match="anonymous"):
        pickle.dumps(Image(np.uint8, [], 4, 4))


def test_pickle_read_only_handles_by_path(tmp_path):
    p = tmp_path / "c.cimg"
    data = ramp(np.uint8, 16, 16)
    Channel.create(p, data, 16, 16).close()
    r = Channel.open(p, read_only=True)
    blob = pickle.dumps(r)
    r2 = pickle.loads(blob)
    assert r2 is not r and r2.read_only and r2.path == r.path
    np.testing.assert_array_equal(r2.get_decompressed(), data)
    # in another process
    proc = run_python(
        """
        import pickle, sys
        c = pickle.loads(bytes.fromhex(sys.argv[1]))
        print(c.read_only, int(c.get_decompressed().sum()))
        """,
        blob.hex(),
    )
    assert proc.stdout.split() == ["True", str(int(data.sum()))]


def test_pickle_read_write_handle_reopens_read_write(tmp_path):
    p = tmp_path / "c.cimg"
    c = Channel.create_full(p, np.float32, 0.0, 8, 8)
    blob = pickle.dumps(c)
    with pytest.raises(ci.LockedError):
        pickle.loads(blob)  # the original handle still writes the file
    c.close()
    proc = run_python(
        """
        import pickle, sys, numpy as np
        c = pickle.loads(bytes.fromhex(sys.argv[1]))
        c.set_chunk(0, np.full(64, 4.0, np.float32))
        c.sync()
        print(c.read_only)
        """,
        blob.hex(),
    )
    assert proc.stdout.strip() == "False"
    with Channel.open(p, read_only=True) as r:
        assert (r.get_decompressed() == 4.0).all()


def test_pickle_image_and_its_channels(tmp_path):
    p = tmp_path / "img.cimg"
    img = Image.create(p, np.int16, 4, 2)
    for k in range(3):
        img.add_channel(np.full((2, 4), k, np.int16), 4, 2, f"c{k}")
    img.close()
    ro = Image.open(p, read_only=True)
    c2 = ro["c2"]
    ro2 = pickle.loads(pickle.dumps(ro))
    assert ro2.get_channel_names() == ["c0", "c1", "c2"] and ro2.read_only
    assert (pickle.loads(pickle.dumps(c2)).get_decompressed() == 2).all()
    # positions follow removals made through the image object
    ro.close()
    ro2.close()
    rw = Image.open(p)
    c1, c2 = rw["c1"], rw["c2"]
    rw.remove_channel("c0")
    blob1 = pickle.dumps(c1)  # c1 is now at position 0
    rw.remove_channel("c1")
    with pytest.raises(ci.ChannelRemovedError):
        pickle.dumps(c1)
    blob2 = pickle.dumps(c2)  # c2 is now at position 0
    rw.close()
    assert (pickle.loads(blob2).get_decompressed() == 2).all()
    # A pickle records the position at pickling time: once the image changes, it names
    # whatever channel is there now.
    assert (pickle.loads(blob1).get_decompressed() == 2).all()


def test_pickle_closed_handle():
    c = Channel.zeros(np.uint8, 2, 2)
    c.close()
    with pytest.raises(RuntimeError):
        pickle.dumps(c)


def test_multiprocessing_pool_receives_read_only_handles(tmp_path):
    import multiprocessing as mp

    paths = []
    for k in range(2):
        p = tmp_path / f"c{k}.cimg"
        Channel.create(p, np.full((64, 64), k + 1, np.uint16), 64, 64).close()
        paths.append(Channel.open(p, read_only=True))
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        sums = pool.map(_sum_channel, paths)
    assert sums == [64 * 64, 2 * 64 * 64]


def _sum_channel(c):
    return int(c.get_decompressed().astype(np.int64).sum())
