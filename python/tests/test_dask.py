"""compressed_image.dask on a real two-process cluster: reads along the file's chunks,
pinned to one commit, and to_cimg's temporary file, streaming and clean failure."""

import os

import dask
import dask.array as da
import numpy as np
import pytest
from dask_support import client, fail_on_block, ramp, ramp_block, read_all, save_image

import compressed_image as ci
from compressed_image import _compat, _to_cimg
from compressed_image import dask as cdask

pytestmark = pytest.mark.extension
__all__ = ["client"]  # the module-scoped cluster fixture

# The large case: one 16384 x 16384 float32 channel is 1 GiB, 256 chunks of 64 rows.
SIDE = 16384


@pytest.fixture(scope="module")
def big_image(tmp_path_factory):
    """A 16384 x 16384 two-channel float32 file: normal noise "N" and a ramp "G"."""
    noise = np.random.default_rng(7).standard_normal((SIDE, SIDE), dtype=np.float32)
    gradient = ramp(0, SIDE, SIDE)
    path = save_image(
        tmp_path_factory.mktemp("big") / "big.cimg", [noise, gradient], names=["N", "G"]
    )
    return path, {"N": noise, "G": gradient}


def test_reductions_over_a_16384_square_image_equal_numpys(client, big_image):
    path, expected = big_image
    arrays = cdask.open(path)
    stats = {
        k: (a.mean(dtype=np.float64), a.min(), a.max()) for k, a in arrays.items()
    }
    (computed,) = dask.compute(stats)
    for name, data in expected.items():
        mean, low, high = computed[name]
        # Both sums accumulate float32 values in float64, in different orders (Dask per
        # chunk then across chunks, numpy pairwise): they agree to about 1e-12 relative.
        assert mean == pytest.approx(data.mean(dtype=np.float64), rel=1e-9, abs=1e-12)
        assert (low, high) == (data.min(), data.max())


def test_to_cimg_of_a_computed_16384_square_array_reopens_equal(client, tmp_path):
    # Computed on the workers in 4096 x 4096 blocks, rechunked to the file's 64-row chunks.
    blocks = da.map_blocks(ramp_block, chunks=((4096,) * 4, (4096,) * 4), dtype=np.float32)
    path = str(tmp_path / "computed.cimg")
    cdask.to_cimg(blocks * 0.5 + 1, path, names=["Y"], metadata={"source": "ramp"})
    with ci.Image.open(path, read_only=True) as image:
        assert image.get_channel_names() == ["Y"]
        assert image.get_metadata() == {"source": "ramp"}
        ch = image[0]
        rows = ch.chunk_elems() // SIDE
        for k in range(ch.num_chunks()):
            y0 = k * rows
            want = ramp(y0, min(y0 + rows, SIDE), SIDE) * np.float32(0.5) + np.float32(1)
            np.testing.assert_array_equal(ch.get_chunk(k).reshape(-1, SIDE), want)
    assert sorted(os.listdir(tmp_path)) == ["computed.cimg"]


def test_arrays_have_the_files_chunks_and_one_task_per_chunk(client, tmp_path):
    data = ramp(0, 1000, 300)
    path = save_image(tmp_path / "a.cimg", [data], names=["R"], chunk_size=300 * 4 * 64)
    (array,) = cdask.open(path).values()
    assert array.chunks == ((64,) * 15 + (40,), (300,))
    assert len(dict(array.__dask_graph__())) == 16
    np.testing.assert_array_equal(array.compute(), data)


def test_channels_are_keyed_by_name_or_by_position_without_names(client, tmp_path):
    a, b = ramp(0, 50, 40), ramp(0, 50, 40, np.uint16)
    named = save_image(tmp_path / "named.cimg", [a, b], names=["R", "id"])
    unnamed = save_image(tmp_path / "unnamed.cimg", [a, b])
    assert list(cdask.open(named)) == ["R", "id"]
    assert list(cdask.open(unnamed)) == ["0", "1"]
    picked = cdask.open(named, channels=["id", 0])
    assert list(picked) == ["id", "R"]
    assert picked["id"].dtype == np.uint16
    np.testing.assert_array_equal(picked["id"].compute(), b)


def test_channel_to_dask_reads_a_channel_of_an_image_file(client, tmp_path):
    a, b = ramp(0, 70, 30), ramp(0, 70, 30) + 1
    path = save_image(tmp_path / "two.cimg", [a, b], names=["A", "B"])
    with ci.Image.open(path, read_only=True) as image:
        np.testing.assert_array_equal(cdask.channel_to_dask(image[1]).compute(), b)
        assert set(cdask.image_to_dask(image)) == {"A", "B"}


def test_anonymous_handles_are_refused_with_a_type_error():
    channel = ci.Channel(ramp(0, 10, 10), 10, 10)
    with pytest.raises(TypeError, match="anonymous Channel has no file"):
        cdask.channel_to_dask(channel)
    with pytest.raises(TypeError, match="anonymous Image has no file"):
        cdask.image_to_dask(ci.Image(np.float32, [ramp(0, 10, 10)], 10, 10))


def _written_file(tmp_path, height=512, width=64, rows=32):
    path = save_image(
        tmp_path / "out.cimg", [ramp(0, height, width)], names=["R"], chunk_size=width * 4 * rows
    )
    return path, read_all(path)


def test_a_failing_to_cimg_leaves_the_previous_file_and_no_temporary_file(client, tmp_path):
    path, before = _written_file(tmp_path)
    listing = sorted(os.listdir(tmp_path))
    source = da.from_array(ramp(0, 512, 64) + 5, chunks=(100, 64))
    failing = source.map_blocks(fail_on_block, 300, dtype=np.float32)
    with pytest.raises(ValueError, match="no data for row 300"):
        cdask.to_cimg(failing, path, names=["R"], chunk_size=64 * 4 * 32)
    assert sorted(os.listdir(tmp_path)) == listing
    np.testing.assert_array_equal(read_all(path)[0], before[0])


def test_an_interrupted_to_cimg_leaves_the_previous_file_and_no_temporary_file(
    client, tmp_path, monkeypatch
):
    path, before = _written_file(tmp_path)
    listing = sorted(os.listdir(tmp_path))
    commits = []
    commit = _compat._commit

    def interrupt_on_the_third_commit(*args):
        commits.append(args[1])
        if len(commits) == 3:
            raise KeyboardInterrupt
        commit(*args)

    monkeypatch.setattr(_compat, "_commit", interrupt_on_the_third_commit)
    with pytest.raises(KeyboardInterrupt):
        cdask.to_cimg(da.zeros((512, 64), np.float32, chunks=(64, 64)), path, chunk_size=64 * 4 * 32)
    assert len(commits) == 3
    assert sorted(os.listdir(tmp_path)) == listing
    np.testing.assert_array_equal(read_all(path)[0], before[0])


def test_to_cimg_with_a_local_scheduler_streams_groups_and_replaces_the_file(tmp_path):
    path, _ = _written_file(tmp_path)
    source = {"A": da.from_array(ramp(0, 300, 50), chunks=(70, 25)), "B": ramp(0, 300, 50, np.int16)}
    with dask.config.set(scheduler="threads"):
        assert _to_cimg._active_client() is None
        cdask.to_cimg(source, path, chunk_size=50 * 4 * 16, max_in_flight=2)
    with ci.Image.open(path, read_only=True) as image:
        assert image.get_channel_names() == ["A", "B"]
        assert image.dtypes == [np.dtype(np.float32), np.dtype(np.int16)]
        assert image[0].chunk_elems() == 50 * 16
        np.testing.assert_array_equal(image[0].get_decompressed(), source["A"].compute())
        np.testing.assert_array_equal(image[1].get_decompressed(), source["B"])


def test_output_groups_end_where_input_chunks_end():
    # Inputs of 300 rows, outputs of 50: a group may close only at 300, 600, 900.
    groups = _to_cimg._groups((300, 300, 300, 100), (50,) * 20)
    assert groups == [range(0, 6), range(6, 12), range(12, 18), range(18, 20)]
    assert _to_cimg._groups((64,) * 4, (64,) * 4) == [range(k, k + 1) for k in range(4)]
    # Outputs of 50 over inputs of 70: the rows meet at 350, so a group spans 7 outputs.
    assert _to_cimg._groups((70,) * 10, (50,) * 14) == [range(0, 7), range(7, 14)]
    # Groups of tasks, each task (chunks it makes, its Delayed): joined by chunk count.
    groups = [[(n, f"task{k}")] for k, n in enumerate((6, 6, 6, 2))]
    merged = _to_cimg._merged(groups, 10)  # type: ignore[arg-type]
    assert merged == [groups[0] + groups[1], groups[2] + groups[3]]
    # Enough in flight for one group more than the threads, and never fewer than 4.
    assert _to_cimg.default_in_flight(2, groups) == 18  # type: ignore[arg-type]
    assert _to_cimg.default_in_flight(1, [[(1, None)]]) == 4  # type: ignore[list-item]
    # A group cut into runs of at most 3 chunks, as even as can be.
    assert _to_cimg._runs(range(4, 11), 3) == [range(4, 6), range(6, 8), range(8, 11)]
    assert _to_cimg._runs(range(0, 2), 8) == [range(0, 2)]


def test_to_cimg_cuts_misaligned_and_column_chunked_inputs_exactly(tmp_path):
    # Input rows of 70 (and columns in 3 chunks) against output chunks of 16 rows: a task
    # starts inside an input block, spans several, and every row lands once.
    path = str(tmp_path / "cut.cimg")
    values = np.arange(300 * 50, dtype=np.float32).reshape(300, 50)
    source = da.from_array(values, chunks=(70, 20))
    for threads_scheduler in ("threads", "synchronous"):
        with dask.config.set(scheduler=threads_scheduler):
            cdask.to_cimg(source, path, chunk_size=50 * 4 * 16, max_in_flight=1)
        with ci.Image.open(path, read_only=True) as image:
            assert image[0].chunk_elems() == 50 * 16
            np.testing.assert_array_equal(image[0].get_decompressed(), values)
    # One input block for the whole image: its single group is cut into runs, one per
    # task, so more than one worker thread has work.
    whole = da.from_array(values, chunks=(300, 50))
    with ci.Image.create(str(tmp_path / "w.cimg"), [], 50, 300) as writer:
        writer.add_lazy_channel(np.float32, None, None, ci.Codec.lz4, 9, 32768, 50 * 4 * 16)
        groups = _to_cimg._chunk_groups(str(tmp_path / "w.cimg"), writer, [whole], 2)
    assert len(groups) == 1 and [n for n, _ in groups[0]] == [4, 5, 5, 5]


def test_to_cimg_refuses_arrays_it_cannot_store(tmp_path):
    path = str(tmp_path / "x.cimg")
    with pytest.raises(ValueError, match="2-D"):
        cdask.to_cimg(np.zeros((2, 3, 4), np.float32), path)
    with pytest.raises(TypeError, match="int64"):
        cdask.to_cimg(np.zeros((2, 3), np.int64), path)
    with pytest.raises(ValueError, match="2 names for 1 channels"):
        cdask.to_cimg(np.zeros((2, 3), np.float32), path, names=["A", "B"])
    assert os.listdir(tmp_path) == []


def test_a_write_committed_while_a_read_graph_runs_does_not_tear_it(client, tmp_path):
    # With pinned commits every task reads the commit the arrays were made at: the result
    # is the old data exactly. Without them (the fallback) a task that finds a newer commit
    # raises SnapshotUnavailableError instead. Either way no result mixes old and new chunks.
    old = ramp(0, 2048, 256)
    path = save_image(tmp_path / "live.cimg", [old], names=["R"], chunk_size=256 * 4 * 64)
    array = cdask.open(path)["R"] + 0
    running = client.compute(array)
    with ci.Image.open(path) as writer:
        ch = writer[0]
        for k in (0, ch.num_chunks() - 1):
            ch.set_chunk(k, np.full(ch.chunk_elems(k), -1, np.float32))
    later = client.compute(array)  # submitted after the writes: every task sees them
    for future in (running, later):
        try:
            result = future.result()
        except _compat.SnapshotUnavailableError:
            assert not _compat.HAS_SNAPSHOTS, "a pinned graph reads on after a commit"
            continue
        np.testing.assert_array_equal(result, old)


def test_a_snapshot_opens_its_commit_or_raises_once_the_file_moved_on(tmp_path):
    old = ramp(0, 128, 16)
    path = save_image(tmp_path / "s.cimg", [old], chunk_size=16 * 4 * 32)
    with ci.Image.open(path, read_only=True) as reader:
        snapshot = _compat._snapshot_of(reader)
    with ci.Image.open(path) as writer:
        writer[0].set_chunk(1, np.zeros(16 * 32, np.float32))
    if _compat.HAS_SNAPSHOTS:
        with _compat._open_at(path, snapshot) as pinned:
            np.testing.assert_array_equal(pinned.get_decompressed()[0], old)
    else:
        with pytest.raises(_compat.SnapshotUnavailableError, match="cannot open earlier commits"):
            _compat._open_at(path, snapshot)
