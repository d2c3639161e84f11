"""Channel as a numpy array: np.asarray, shape/ndim/dtype/len, basic indexing that decodes
only the selected rows' chunks, and slice assignment in one commit."""

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Channel

from conftest import DTYPES, ramp

pytestmark = pytest.mark.extension


@pytest.fixture
def channel():
    """A 23 x 17 int32 channel in chunks of 4 rows (the last one 1 row), and its data."""
    data = np.arange(17 * 23, dtype=np.int32).reshape(17, 23)
    return Channel(data, 23, 17, chunk_size=23 * 4 * 4), data


def test_np_asarray_gives_the_decompressed_2d_array_not_a_0d_object_array(channel):
    c, data = channel
    a = np.asarray(c)
    assert a.shape == (17, 23) and a.dtype == np.int32
    np.testing.assert_array_equal(a, data)
    np.testing.assert_array_equal(np.array(c, dtype=np.float64), data.astype(np.float64))
    assert np.asarray(c, dtype=np.float32).dtype == np.float32
    assert (np.add(c, 1) == data + 1).all()


def test_asarray_without_a_copy_is_refused(channel):
    c, _ = channel
    with pytest.raises(ValueError):
        np.asarray(c, copy=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_shape_ndim_dtype_len(dtype):
    c = Channel(ramp(dtype, 5, 7), 7, 5)
    assert c.shape == (5, 7)
    assert c.ndim == 2
    assert c.dtype == np.dtype(dtype)
    assert len(c) == 5
    np.testing.assert_array_equal(np.asarray(c), ramp(dtype, 5, 7))


KEYS = [
    0,
    16,
    -1,
    -17,
    np.int64(3),
    slice(None),
    slice(2, 9),
    slice(-5, None),
    slice(None, None, -1),
    slice(15, 2, -3),
    slice(1, 17, 4),
    slice(0, 17, 5),
    slice(9, 3),
    (3, 4),
    (-1, -1),
    (slice(2, 9), slice(5, 20)),
    (slice(None), 0),
    (slice(None, None, 2), slice(None, None, -3)),
    (slice(3, 4), slice(None)),
    (Ellipsis, 5),
    (5, Ellipsis),
    Ellipsis,
    (slice(16, 0, -7), slice(1, 22, 7)),
    (slice(4, 4), slice(None)),
]


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_equals_numpy_basic_indexing(channel, key):
    c, data = channel
    got = c[key]
    expected = data[key]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_iteration_gives_the_rows(channel):
    c, data = channel
    rows = list(c)
    assert len(rows) == 17
    np.testing.assert_array_equal(np.stack(rows), data)


@pytest.mark.parametrize(
    "key, error",
    [
        (17, IndexError),
        (-18, IndexError),
        ((0, 23), IndexError),
        ((0, 0, 0), IndexError),
        ((Ellipsis, Ellipsis), IndexError),
        (1.5, IndexError),
        (True, IndexError),
        ("a", IndexError),
        (None, IndexError),
    ],
    ids=repr,
)
def test_bad_keys(channel, key, error):
    c, _ = channel
    with pytest.raises(error):
        c[key]


def test_read_rows(channel):
    c, data = channel
    np.testing.assert_array_equal(c.read_rows(3, 11), data[3:11])
    assert c.read_rows(5, 5).shape == (0, 23)
    with pytest.raises(ValueError):
        c.read_rows(10, 18)
    with pytest.raises(ValueError):
        c.read_rows(6, 5)


def damaged_channel_file(tmp_path):
    """A 32 x 16 float32 channel file in chunks of 4 rows whose chunk 1 is damaged on disk
    (its checksum fails when read), and its data."""
    data = ramp(np.float32, 16, 32) + np.arange(16 * 32, dtype=np.float32).reshape(16, 32)
    path = tmp_path / "c.cimg"
    Channel.create(path, data, 32, 16, chunk_size=32 * 4 * 4).close()
    at = _blob_offset(path, 1) + 32 + 40
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path, data


def _blob_offset(path, chunk):
    """The record offset of a chunk's blob, from a scan for BLOB records of that chunk."""
    raw = path.read_bytes()
    at = 8192
    while at + 32 <= len(raw):
        if raw[at : at + 4] == b"CIR1" and raw[at + 4] == 1:
            if int.from_bytes(raw[at + 20 : at + 24], "little") == chunk:
                return at
        at += 64
    raise AssertionError("no blob of that chunk")


def test_reading_rows_decodes_only_their_chunks(tmp_path):
    path, data = damaged_channel_file(tmp_path)
    c = Channel.open(path, read_only=True)
    np.testing.assert_array_equal(c[0:4], data[0:4])
    np.testing.assert_array_equal(c[8:16, 3:9], data[8:16, 3:9])
    np.testing.assert_array_equal(c[::8], data[::8])  # rows 0 and 8: chunks 0 and 2
    with pytest.raises(ci.CorruptedError):
        c[5]


def test_setitem_reads_and_writes_only_the_chunks_of_its_rows(tmp_path):
    path, data = damaged_channel_file(tmp_path)
    c = Channel.open(path)
    generation = c.stats()["generation"]
    c[0:9:8, 0:5] = 3  # rows 0 and 8: chunks 0 and 2; the damaged chunk 1 is not read
    c[12:16, 1:3] = 4  # chunk 3
    assert c.stats()["generation"] == generation + 2
    data[0:9:8, 0:5] = 3
    data[12:16, 1:3] = 4
    for rows in (slice(0, 4), slice(8, 16)):
        np.testing.assert_array_equal(c[rows], data[rows])
    with pytest.raises(ci.CorruptedError):
        c[4:8]  # still the damaged chunk: it was not rewritten


@pytest.mark.parametrize(
    "key, value",
    [
        ((slice(2, 9), slice(5, 20)), lambda shape: np.full(shape, -7, np.int32)),
        ((3,), lambda shape: np.arange(23, dtype=np.int32)),
        ((slice(None), 4), lambda shape: np.arange(17, dtype=np.int32)),
        ((slice(1, 17, 4), slice(None, None, 3)), lambda shape: np.ones(shape, np.int32)),
        ((slice(None, None, -1), slice(2, 3)), lambda shape: np.arange(17, dtype=np.int32)[:, None]),
        ((slice(0, 17, 8), slice(None)), lambda shape: np.full(shape, 5, np.int32)),
        ((slice(1, 17, 4), slice(2, 11, 3)), lambda shape: np.full(shape, -1, np.int32)),
        ((slice(16, 0, -5), slice(10, 2, -2)), lambda shape: np.arange(np.prod(shape), dtype=np.int32).reshape(shape)),
        ((slice(0, 17, 8), slice(3, 7)), lambda shape: np.full(shape, 8, np.int32)),
        ((Ellipsis,), lambda shape: np.zeros(shape, np.int32)),
        ((-1, -1), lambda shape: np.int32(99)),
    ],
    ids=repr,
)
def test_setitem_equals_numpy_assignment_in_one_commit(channel, key, value):
    c, data = channel
    key = key if len(key) > 1 else key[0]
    expected = data.copy()
    v = value(expected[key].shape)
    expected[key] = v
    generation = c.stats()["generation"]
    c[key] = v
    np.testing.assert_array_equal(np.asarray(c), expected)
    assert c.stats()["generation"] == generation + 1


def test_scalars_broadcast_and_python_values_must_fit():
    c = Channel.zeros(np.uint8, 8, 6, chunk_size=16)
    c[1:3] = 7
    c[4, :] = [1, 2, 3, 4, 5, 6, 7, 8]
    expected = np.zeros((6, 8), np.uint8)
    expected[1:3] = 7
    expected[4] = np.arange(1, 9)
    np.testing.assert_array_equal(np.asarray(c), expected)
    generation = c.stats()["generation"]
    with pytest.raises(ValueError):
        c[0] = 256  # out of uint8's range
    with pytest.raises(TypeError):
        c[0] = 1.5  # a float into an integer channel
    with pytest.raises(TypeError):
        c[0] = np.zeros(8, np.int16)  # would lose range
    with pytest.raises(ValueError):
        c[0:2] = np.zeros((3, 8), np.uint8)  # does not broadcast
    with pytest.raises(TypeError):
        c[0] = "text"
    assert c.stats()["generation"] == generation
    np.testing.assert_array_equal(np.asarray(c), expected)
    f = Channel.zeros(np.float32, 4, 4)
    f[0] = 0.1  # a Python float rounds into a float channel
    f[1] = np.arange(4, dtype=np.uint8)  # a safe numpy cast
    with pytest.raises(TypeError):
        f[2] = np.ones(4, np.float64)  # an unsafe one
    assert f[0, 0] == np.float32(0.1) and f[1, 3] == 3
    # Another channel is an array like: float64 into float32 would lose precision.
    with pytest.raises(TypeError):
        f[:] = Channel.zeros(np.float64, 4, 4)
    f[:] = Channel.full(np.float16, 2.5, 4, 4)
    assert (np.asarray(f) == 2.5).all()
    # A step too large to add to its start selects one position.
    f[::2, 1 : 3 : 2**63 - 1] = 7
    np.testing.assert_array_equal(f[:, 1:3], [[7, 2.5], [2.5, 2.5], [7, 2.5], [2.5, 2.5]])


def test_setitem_on_a_read_only_handle_changes_nothing(tmp_path):
    path = tmp_path / "c.cimg"
    Channel.create_full(path, np.uint16, 5, 4, 4).close()
    r = Channel.open(path, read_only=True)
    with pytest.raises(ci.ReadOnlyError):
        r[0] = 1
    assert (np.asarray(r) == 5).all()


def test_getitem_and_setitem_on_a_closed_or_removed_channel():
    img = ci.Image(np.uint8, [np.zeros((2, 2))], 2, 2)
    ch = img[0]
    img.remove_channel(0)
    with pytest.raises(ci.ChannelRemovedError):
        ch[0]
    c = Channel.zeros(np.uint8, 2, 2)
    c.close()
    with pytest.raises(RuntimeError):
        np.asarray(c)
    with pytest.raises(RuntimeError):
        len(c)
