"""Channel: every signature, default, keyword name and dtype of compressed-image 1.0.1 (§4)."""

import inspect
import sys

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Channel, Codec

from conftest import DTYPES, ramp

FOUR = ["compression_codec", "compression_level", "block_size", "chunk_size"]
FOUR_DEFAULTS = [Ellipsis, 9, 32768, 4194304]  # Ellipsis stands for Codec.lz4


def params(f):
    return list(inspect.signature(f).parameters.values())


@pytest.mark.extension
def test_signatures_and_keyword_names():
    if sys.version_info >= (3, 10):  # abi3 classes carry a constructor signature from 3.10
        assert [p.name for p in params(Channel)] == ["data", "width", "height"] + FOUR
        assert [p.default for p in params(Channel)[3:]] == FOUR_DEFAULTS
    assert [p.name for p in params(Channel.zeros)] == ["dtype", "width", "height"] + FOUR
    assert [p.name for p in params(Channel.full)] == ["dtype", "fill_value", "width", "height"] + FOUR
    assert [p.default for p in params(Channel.full)[4:]] == FOUR_DEFAULTS
    assert [p.name for p in params(Channel.zeros_like)] == ["other"]
    assert [p.name for p in params(Channel.full_like)] == ["other", "fill_value"]
    assert [p.name for p in params(Channel.get_chunk)] == ["self", "chunk_index", "array"]
    assert [p.name for p in params(Channel.set_chunk)] == ["self", "chunk_index", "array"]
    assert [p.name for p in params(Channel.chunk_size)] == ["self", "chunk_index"]
    assert [p.name for p in params(Channel.chunk_elems)] == ["self", "chunk_index"]
    assert [p.name for p in params(Channel.update_nthreads)] == ["self", "nthreads", "block_size"]
    assert params(Channel.update_nthreads)[2].default == 32768


def test_defaults_take_effect():
    data = ramp(np.float32, 2048, 2048)
    c = Channel(data, 2048, 2048)
    assert c.compression() == Codec.lz4
    assert c.compression_level() == 9
    assert c.chunk_size() == 4194304
    assert c.block_size() == 32768
    assert c.num_chunks() == 4
    z = Channel.zeros(np.float32, 2048, 2048)
    assert (z.compression(), z.compression_level(), z.chunk_size(), z.block_size()) == (Codec.lz4, 9, 4194304, 32768)


def test_all_keywords():
    data = ramp(np.uint16, 20, 10)
    kw = dict(compression_codec=Codec.zstd, compression_level=3, block_size=64, chunk_size=80)
    c = Channel(data=data, width=10, height=20, **kw)
    assert (c.compression(), c.compression_level(), c.chunk_size(), c.block_size()) == (Codec.zstd, 3, 80, 64)
    z = Channel.zeros(dtype=np.uint16, width=10, height=20, **kw)
    f = Channel.full(dtype=np.uint16, fill_value=5, width=10, height=20, **kw)
    for ch in (z, f, Channel.zeros_like(other=c), Channel.full_like(other=c, fill_value=5)):
        assert (ch.compression(), ch.compression_level(), ch.chunk_size(), ch.block_size()) == (Codec.zstd, 3, 80, 64)
        assert ch.shape == (20, 10)
    got = np.empty(c.chunk_elems(0), np.uint16)
    assert c.get_chunk(chunk_index=0, array=got) is None
    np.testing.assert_array_equal(got, data.ravel()[:40])
    c.set_chunk(chunk_index=1, array=np.full(40, 9, np.uint16))
    assert c.chunk_size(chunk_index=4) == 80 and c.chunk_elems(chunk_index=4) == 40
    c.update_nthreads(nthreads=2, block_size=128)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips(dtype):
    h, w = 37, 23
    data = ramp(dtype, h, w)
    c = Channel(data, w, h, chunk_size=w * np.dtype(dtype).itemsize * 8)
    assert c.dtype == np.dtype(dtype)
    assert c.shape == (h, w) and c.width == w and c.height == h
    assert c.num_chunks() == 5
    out = c.get_decompressed()
    assert out.dtype == np.dtype(dtype) and out.shape == (h, w)
    np.testing.assert_array_equal(out, data)
    # 1-D input gives the same channel.
    c1 = Channel(data.ravel(), w, h, chunk_size=w * np.dtype(dtype).itemsize * 8)
    np.testing.assert_array_equal(c1.get_decompressed(), data)
    # chunk by chunk, new arrays and reused buffers
    flat = data.ravel()
    start = 0
    for i in range(c.num_chunks()):
        n = c.chunk_elems(i)
        chunk = c.get_chunk(i)
        assert chunk.dtype == np.dtype(dtype) and chunk.shape == (n,)
        np.testing.assert_array_equal(chunk, flat[start : start + n])
        buf = np.empty(n, dtype)
        assert c.get_chunk(i, buf) is None
        np.testing.assert_array_equal(buf, chunk)
        start += n
    assert start == w * h
    z = Channel.zeros(dtype, w, h)
    assert z.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(z.get_decompressed(), np.zeros((h, w), dtype))
    f = Channel.full(dtype, 3, w, h)
    np.testing.assert_array_equal(f.get_decompressed(), np.full((h, w), 3, dtype))


@pytest.mark.parametrize("spec", [np.float32, np.dtype("float32"), "float32", "f4"])
def test_dtype_argument_forms(spec):
    assert Channel.zeros(spec, 4, 4).dtype == np.float32


def test_python_float_and_none_mean_float64():
    assert Channel.zeros(float, 4, 4).dtype == np.float64
    assert Channel.zeros(None, 4, 4).dtype == np.float64


@pytest.mark.parametrize("bad", [bool, np.bool_, np.int64, np.uint64, np.complex64, ">f4", int])
def test_unsupported_dtypes(bad):
    with pytest.raises(ValueError, match="Unsupported dtype"):
        Channel.zeros(bad, 4, 4)
    with pytest.raises(ValueError, match="Unsupported dtype"):
        Channel(np.zeros(16, dtype=bad), 4, 4)


def test_unsupported_dtype_message():
    with pytest.raises(ValueError, match=r"kind='b', itemsize=1"):
        Channel(np.zeros(4, bool), 2, 2)


def test_data_must_be_an_ndarray():
    with pytest.raises(TypeError):
        Channel([1.0, 2.0, 3.0, 4.0], 2, 2)


def test_sizes_and_accounting(f32_channel):
    c, data = f32_channel
    assert c.num_chunks() == 4
    assert c.chunk_size() == 3200 and c.chunk_elems() == 800
    assert [c.chunk_size(i) for i in range(4)] == [3200, 3200, 3200, 2400]
    assert [c.chunk_elems(i) for i in range(4)] == [800, 800, 800, 600]
    assert c.uncompressed_size() == 3000  # elements, as the original
    assert 0 < c.compressed_bytes() < data.nbytes
    assert isinstance(c.compressed_bytes(), int)


def test_set_chunk_then_read(f32_channel):
    c, data = f32_channel
    new = -np.arange(800, dtype=np.float32)
    c.set_chunk(2, new)
    np.testing.assert_array_equal(c.get_chunk(2), new)
    expect = data.ravel().copy()
    expect[1600:2400] = new
    np.testing.assert_array_equal(c.get_decompressed().ravel(), expect)
    last = np.arange(600, dtype=np.float32) + 0.5
    c.set_chunk(3, last)
    np.testing.assert_array_equal(c.get_chunk(3), last)


def test_get_decompressed_is_an_owned_copy(f32_channel):
    c, data = f32_channel
    out = c.get_decompressed()
    assert out.flags.owndata or out.base is not None
    out[:] = 0
    np.testing.assert_array_equal(c.get_decompressed(), data)
    assert out.flags.writeable and out.flags.c_contiguous


def test_strided_and_fortran_input_is_copied_correctly():
    base = ramp(np.float32, 40, 60)
    fortran = np.asfortranarray(base[:30, :50])
    c = Channel(fortran, 50, 30)
    np.testing.assert_array_equal(c.get_decompressed(), base[:30, :50])
    strided = base[::2, ::3]  # (20, 20)
    c = Channel(strided, 20, 20)
    np.testing.assert_array_equal(c.get_decompressed(), strided)
    rev = base[::-1, ::-1]
    c = Channel(rev, 60, 40)
    np.testing.assert_array_equal(c.get_decompressed(), rev)
    flat_rev = base.ravel()[::-1]
    c = Channel(flat_rev, 60, 40)
    np.testing.assert_array_equal(c.get_decompressed().ravel(), flat_rev)


def test_read_only_input_array_is_fine():
    data = ramp(np.uint8, 8, 8)
    data.flags.writeable = False
    c = Channel(data, 8, 8)
    np.testing.assert_array_equal(c.get_decompressed(), data)
    c.set_chunk(0, data.ravel())


@pytest.mark.extension
def test_update_nthreads_keeps_block_size():
    data = ramp(np.float32, 256, 256)
    c = Channel(data, 256, 256, block_size=4096)
    assert c.block_size() == 4096
    c.update_nthreads(2, 128)  # the original would silently switch to 128-byte blocks
    assert c.block_size() == 4096
    c.update_nthreads(1)
    assert c.block_size() == 4096
    np.testing.assert_array_equal(c.get_decompressed(), data)


def test_identity_equality():
    c = Channel.zeros(np.uint8, 4, 4)
    d = Channel.zeros(np.uint8, 4, 4)
    assert c == c and c != d


@pytest.mark.extension
def test_len_and_iteration_are_over_rows_as_for_a_2d_array():
    # compressed-image 1.0.1 has neither (TypeError); here a Channel follows numpy's array
    # protocol (test_array_protocol.py).
    c = Channel.zeros(np.uint8, 4, 3)
    assert len(c) == 3
    rows = list(c)
    assert len(rows) == 3 and all(r.shape == (4,) for r in rows)


@pytest.mark.extension
def test_repr():
    c = Channel.zeros(np.float32, 10, 5)
    r = repr(c)
    assert "Channel" in r and "float32" in r and "(5, 10)" in r and "anonymous" in r


def test_block_size_zero_means_automatic():
    data = ramp(np.float32, 64, 64)
    c = Channel(data, 64, 64, block_size=0)
    assert c.block_size() == 0
    np.testing.assert_array_equal(c.get_decompressed(), data)


def test_level_zero_stores_raw():
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, size=(64, 64), dtype=np.uint8)
    c = Channel(data, 64, 64, compression_level=0)
    assert c.compressed_bytes() >= data.nbytes
    np.testing.assert_array_equal(c.get_decompressed(), data)
