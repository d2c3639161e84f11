"""Where anonymous Channels and Images (made without a path) keep their bytes:
set_anonymous_backing, anonymous_backing and stats()["in_memory"]."""

import sys

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Channel, Image

pytestmark = pytest.mark.extension

# Anonymous stores are kept in memory on Linux only.
MEMORY = sys.platform.startswith("linux")

WIDTH, HEIGHT, ROWS_PER_CHUNK = 256, 64, 8
CHUNK_ELEMS = WIDTH * ROWS_PER_CHUNK


@pytest.fixture(autouse=True)
def default_backing():
    """Every test starts and ends with the default backing."""
    ci.set_anonymous_backing()
    yield
    ci.set_anonymous_backing()


def noise(seed):
    """Incompressible uint32 data of the test channel's shape."""
    return np.random.default_rng(seed).integers(0, 2**32, (HEIGHT, WIDTH), dtype=np.uint32)


def new_channel(data):
    return Channel(data, WIDTH, HEIGHT, chunk_size=CHUNK_ELEMS * 4)


def test_anonymous_handles_are_in_memory_by_default():
    backing = ci.anonymous_backing()
    assert backing["backing"] == "auto" and backing["dir"] is None
    assert backing["spill_above"] > 0
    data = noise(0)
    c = new_channel(data)
    assert c.stats()["in_memory"] is MEMORY
    assert np.array_equal(c.get_decompressed(), data)
    image = Image(np.uint32, [data], WIDTH, HEIGHT, chunk_size=CHUNK_ELEMS * 4)
    assert image.stats()["in_memory"] is MEMORY


def test_tempfile_backing_applies_to_handles_created_after_it(tmp_path):
    before = new_channel(noise(0))
    ci.set_anonymous_backing("tempfile", dir=tmp_path)
    assert ci.anonymous_backing() == {"backing": "tempfile", "spill_above": None, "dir": str(tmp_path)}
    data = noise(1)
    after = new_channel(data)
    assert after.stats()["in_memory"] is False
    assert before.stats()["in_memory"] is MEMORY
    after.set_chunk(2, data.reshape(-1)[:CHUNK_ELEMS][::-1].copy())
    assert np.array_equal(after.get_chunk(2), data.reshape(-1)[:CHUNK_ELEMS][::-1])


def test_auto_backing_moves_to_a_temp_file_past_its_threshold(tmp_path):
    data = noise(0)
    probe = new_channel(data)
    # Room for about one more full rewrite of the channel's chunks.
    spill_above = probe.stats()["committed_end"] + data.nbytes * 3 // 2
    ci.set_anonymous_backing("auto", spill_above=spill_above, dir=tmp_path)
    c = new_channel(data)
    passes = [noise(seed) for seed in (1, 2, 3)]
    for new in passes:
        for chunk in range(c.num_chunks()):
            c.set_chunk(chunk, new.reshape(-1)[chunk * CHUNK_ELEMS : (chunk + 1) * CHUNK_ELEMS])
            stats = c.stats()
            assert stats["in_memory"] is (MEMORY and stats["committed_end"] <= spill_above)
    assert c.stats()["in_memory"] is False
    assert np.array_equal(c.get_decompressed(), passes[-1])


def test_a_missing_directory_raises_file_not_found(tmp_path):
    missing = tmp_path / "missing"
    ci.set_anonymous_backing("tempfile", dir=missing)
    with pytest.raises(FileNotFoundError) as e:
        new_channel(noise(0))
    assert e.value.filename == str(missing)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("disk",), {}),
        (("memory",), {"spill_above": 1}),
        (("memory",), {"dir": "/tmp"}),
        (("tempfile",), {"spill_above": 1}),
    ],
)
def test_invalid_backings_are_value_errors_and_change_nothing(args, kwargs):
    with pytest.raises(ValueError):
        ci.set_anonymous_backing(*args, **kwargs)
    assert ci.anonymous_backing()["backing"] == "auto"
