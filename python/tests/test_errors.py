"""The reference's error table (§8): the same exception class for the same mistake."""

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Channel, Codec, Image


def f32(n=3000):
    return np.arange(n, dtype=np.float32)


@pytest.fixture
def chan():
    return Channel(f32().reshape(30, 100), 100, 30, chunk_size=3200)


@pytest.fixture
def lazy():
    return Channel.zeros(np.float32, 100, 30, chunk_size=3200)


def test_data_length_mismatch():
    with pytest.raises(ValueError, match="expected 50 .* got 49"):
        Channel(np.zeros(49, np.uint8), 10, 5)


def test_bad_shapes():
    with pytest.raises(ValueError):
        Channel(np.zeros((4, 10), np.uint8), 10, 5)
    with pytest.raises(ValueError):
        Channel(np.zeros((5, 9), np.uint8), 10, 5)
    with pytest.raises(ValueError, match="dimensions"):
        Channel(np.zeros((5, 10, 1), np.uint8), 10, 5)


def test_list_instead_of_ndarray():
    with pytest.raises(TypeError):
        Channel(list(range(50)), 10, 5)


def test_wrong_argument_types():
    with pytest.raises(TypeError):
        Channel(f32(50), "10", 5)
    with pytest.raises(TypeError):
        Channel(f32(50), 10.0, 5)
    with pytest.raises(TypeError):
        Channel(f32(50), -10, -5)
    with pytest.raises(TypeError):
        Channel.zeros(np.float32, 10, 5, block_size=-1)


@pytest.mark.parametrize("level", [-1, 256, 1000])
def test_level_outside_uint8_is_a_type_error(level):
    with pytest.raises(TypeError):
        Channel(f32(50), 10, 5, compression_level=level)
    with pytest.raises(TypeError):
        Channel.zeros(np.float32, 10, 5, compression_level=level)
    with pytest.raises(TypeError):
        Channel.full(np.float32, 1, 10, 5, compression_level=level)


@pytest.mark.extension
@pytest.mark.parametrize("level", [10, 100, 255])
def test_level_above_nine_is_a_value_error(level):
    # Deviation: the original prints a message and clamps to 9.
    with pytest.raises(ValueError, match="0-9"):
        Channel(f32(50), 10, 5, compression_level=level)
    with pytest.raises(ValueError):
        Channel.zeros(np.float32, 10, 5, compression_level=level)
    img = Image(np.float32, [], 10, 5)
    with pytest.raises(ValueError):
        img.add_channel(np.zeros((5, 10), np.float32), 10, 5, compression_level=level)


def test_image_level_is_size_t():
    with pytest.raises(TypeError):
        Image(np.float32, [f32(50)], 10, 5, compression_level=-1)


@pytest.mark.extension
def test_image_level_above_nine():
    with pytest.raises(ValueError):
        Image(np.float32, [f32(50)], 10, 5, compression_level=256)
    with pytest.raises(ValueError):
        Image(np.float32, [f32(50)], 10, 5, compression_level=10)


def test_codec_as_int_is_a_type_error():
    with pytest.raises(TypeError):
        Channel(f32(50), 10, 5, 1)
    with pytest.raises(TypeError):
        Image(np.float32, [f32(50)], 10, 5, [], 1)


def test_negative_index_is_a_type_error(chan):
    with pytest.raises(TypeError):
        chan.get_chunk(-1)
    with pytest.raises(TypeError):
        chan.set_chunk(-1, f32(800))
    with pytest.raises(TypeError):
        chan.chunk_size(-1)
    with pytest.raises(TypeError):
        chan.chunk_elems(-1)


def test_full_fill_not_representable():
    with pytest.raises(RuntimeError, match="Could not convert fill_value to the target dtype."):
        Channel.full(np.uint8, 25.7, 4, 4)


@pytest.mark.parametrize("make", [pytest.param("chan", marks=pytest.mark.crash), "lazy"])
def test_index_out_of_range(make, request):
    c = request.getfixturevalue(make)
    with pytest.raises(IndexError):
        c.get_chunk(4)
    with pytest.raises(IndexError):
        c.get_chunk(4, np.empty(800, np.float32))
    with pytest.raises(IndexError):
        c.chunk_size(4)
    with pytest.raises(IndexError):
        c.chunk_elems(4)
    with pytest.raises(IndexError):
        c.set_chunk(4, f32(800))


@pytest.mark.extension
def test_is_lazy_index_out_of_range(chan):
    with pytest.raises(IndexError):
        chan.is_lazy(4)


@pytest.mark.parametrize("make", ["chan", "lazy"])
def test_get_chunk_bad_buffer(make, request):
    c = request.getfixturevalue(make)
    with pytest.raises(ValueError):
        c.get_chunk(0, np.empty(800, np.float64))
    with pytest.raises(ValueError, match="1-dimensional"):
        c.get_chunk(0, np.empty((8, 100), np.float32))
    with pytest.raises(ValueError):
        c.get_chunk(0, np.empty(799, np.float32))
    with pytest.raises(ValueError):
        c.get_chunk(0, np.empty(801, np.float32))
    with pytest.raises(ValueError):
        c.get_chunk(3, np.empty(800, np.float32))  # the last chunk has 600
    ro = np.empty(800, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="not writeable"):
        c.get_chunk(0, ro)
    with pytest.raises(TypeError):
        c.get_chunk(0, [0.0] * 800)


def test_set_chunk_wrong_dtype_or_dims(chan):
    with pytest.raises(ValueError):
        chan.set_chunk(0, np.zeros(800, np.float64))
    with pytest.raises(ValueError):
        chan.set_chunk(0, np.zeros((8, 100), np.float32))
    with pytest.raises(TypeError):
        chan.set_chunk(0, [0.0] * 800)


def test_image_index_and_names():
    img = Image(np.uint8, [np.zeros(4)] * 2, 2, 2, ["R", "G"])
    with pytest.raises(IndexError, match="Channel index out of range"):
        img[2]
    with pytest.raises(TypeError):
        img[-1]
    with pytest.raises(TypeError):
        img[1.0]
    with pytest.raises(IndexError):
        img.channel(5)
    for call in (lambda: img["Z"], lambda: img.channel("Z"), lambda: img.channel(name="Z"),
                 lambda: img.get_channel_index("Z"), lambda: img.remove_channel("Z")):
        with pytest.raises(ValueError, match="Unknown channelname 'Z' encountered"):
            call()


def test_set_channel_names_errors():
    img = Image(np.uint8, [np.zeros(4)] * 2, 2, 2)
    with pytest.raises(ValueError):
        img.set_channel_names(["a"])
    with pytest.raises(TypeError):
        img.set_channel_names(["a", 1])
    with pytest.raises(TypeError):
        img.set_channel_names("ab")


@pytest.mark.extension
def test_names_count_mismatch_in_constructor():
    # Deviation: the original prints a message and drops the names.
    with pytest.raises(ValueError):
        Image(np.uint8, [np.zeros(4)] * 2, 2, 2, ["only-one"])


def test_add_channel_errors():
    img = Image(np.float32, [np.zeros(4)], 2, 2)
    with pytest.raises(ValueError):
        img.add_channel(np.zeros((2, 2), np.float64), 2, 2)
    with pytest.raises(ValueError, match="2-dimensional"):
        img.add_channel(np.zeros(4, np.float32), 2, 2)
    with pytest.raises(ValueError):
        img.add_channel(np.zeros((3, 3), np.float32), 3, 3)
    with pytest.raises(ValueError):
        img.add_channel(np.zeros((2, 3), np.float32), 2, 2)
    with pytest.raises(TypeError):
        img.add_channel([[0.0, 0.0], [0.0, 0.0]], 2, 2)
    assert img.num_channels == 1


def test_remove_channel_out_of_range():
    img = Image(np.uint8, [np.zeros(4)] * 2, 2, 2)
    with pytest.raises(ValueError, match="Unable to remove channel with index 99"):
        img.remove_channel(99)
    with pytest.raises(TypeError):
        img.remove_channel(-1)
    assert img.num_channels == 2


@pytest.mark.crash
def test_remove_channel_at_len():
    img = Image(np.uint8, [np.zeros(4)] * 2, 2, 2, ["a", "b"])
    with pytest.raises(ValueError):
        img.remove_channel(2)  # the original's off-by-one accepts this (UB)
    assert img.num_channels == 2


@pytest.mark.extension
def test_update_nthreads_accepts_any_count_from_one(chan):
    # Deviation: compressed-image 1.0.1 raises IndexError above 32767 (c-blosc2's limit);
    # here the count handed to c-blosc2 is capped, and the count as set is reported.
    chan.update_nthreads(40000)
    assert chan.nthreads == 40000
    img = Image(np.uint8, [np.zeros(4)], 2, 2)
    img.update_nthreads(40000)
    assert img.nthreads == 40000
    assert img[0].nthreads == 40000  # channels obtained afterwards take the image's count
    with pytest.raises(TypeError):
        chan.update_nthreads(-1)


@pytest.mark.crash
def test_update_nthreads_zero(chan):
    with pytest.raises(ValueError):
        chan.update_nthreads(0)
    img = Image(np.uint8, [np.zeros(4)], 2, 2)
    with pytest.raises(ValueError):
        img.update_nthreads(0)


@pytest.mark.crash
def test_stale_channel_is_a_runtime_error():
    img = Image(np.uint8, [np.zeros(4)] * 2, 2, 2)
    c = img[0]
    img.remove_channel(0)
    with pytest.raises(RuntimeError):
        c.get_chunk(0)
    assert issubclass(ci.ChannelRemovedError, RuntimeError)


@pytest.mark.extension
def test_image_dtype():
    img = Image(np.uint16, [], 2, 2)
    assert img.dtype == np.uint16  # an addition; the original has no Image.dtype


@pytest.mark.extension
def test_exception_hierarchy():
    assert issubclass(ci.CorruptedError, ValueError)
    assert issubclass(ci.LockedError, RuntimeError)
    assert issubclass(ci.ReadOnlyError, RuntimeError)
    assert issubclass(ci.ChannelRemovedError, RuntimeError)
