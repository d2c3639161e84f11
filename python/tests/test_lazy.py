"""Lazy channels (§6): zeros/full/*_like store fill values, not compressed data."""

import math

import numpy as np
import pytest

from compressed_image import Channel, Codec

from conftest import DTYPES


@pytest.mark.parametrize(
    "dtype,w,h,expected",
    [
        (np.uint8, 1, 1, 1),
        (np.uint16, 2048, 2049, 6),
        (np.float32, 8192, 8192, 256),
        (np.float64, 8192, 8192, 1024),
        (np.uint16, 1920, 1080, 2),
    ],
)
def test_compressed_bytes_counts_one_element_per_lazy_chunk(dtype, w, h, expected):
    c = Channel.zeros(dtype, w, h)
    assert c.compressed_bytes() == expected


@pytest.mark.extension
def test_is_lazy():
    c = Channel.zeros(np.float32, 100, 30, chunk_size=3200)
    assert all(c.is_lazy(i) for i in range(c.num_chunks()))
    c.set_chunk(2, np.arange(800, dtype=np.float32))
    assert [c.is_lazy(i) for i in range(4)] == [True, True, False, True]


def test_huge_lazy_channel_is_instant_and_reads_its_fill():
    c = Channel.full(np.float32, 2.5, 16384, 16384)
    assert c.num_chunks() == 256
    chunk = c.get_chunk(100)
    assert chunk.shape == (c.chunk_elems(100),)
    assert (chunk == 2.5).all()


def test_get_chunk_of_lazy_chunk_returns_the_fill():
    c = Channel.full(np.int16, -7, 64, 64, chunk_size=1024)
    buf = np.empty(c.chunk_elems(1), np.int16)
    c.get_chunk(1, buf)
    assert (buf == -7).all()
    np.testing.assert_array_equal(c.get_decompressed(), np.full((64, 64), -7, np.int16))


@pytest.mark.extension
def test_set_chunk_materializes_only_that_chunk():
    c = Channel.full(np.float32, 7.0, 100, 30, chunk_size=3200)
    assert c.compressed_bytes() == 16
    data = np.arange(800, dtype=np.float32)
    c.set_chunk(0, data)
    assert not c.is_lazy(0) and c.is_lazy(1)
    stored = c.compressed_bytes()
    assert stored > 16
    # Deviation: a chunk set to one repeated value is kept lazy (the original compresses
    # it: 972 bytes instead of 922 in the reference's measurement).
    c.set_chunk(1, np.full(800, 7.0, np.float32))
    assert c.is_lazy(1)
    assert c.compressed_bytes() == stored
    expect = np.full(3000, 7.0, np.float32)
    expect[:800] = data
    np.testing.assert_array_equal(c.get_decompressed().ravel(), expect)


@pytest.mark.extension
def test_all_zero_chunk_stays_lazy():
    c = Channel.zeros(np.uint16, 1920, 1080)
    assert c.compressed_bytes() == 2
    c.set_chunk(0, c.get_chunk(0))
    assert c.compressed_bytes() == 2  # the original: 32 (a 32-byte all-zero blosc2 chunk)


def test_like_copies_geometry_and_settings():
    src = Channel(np.arange(50, dtype=np.float32), 10, 5, Codec.zstd, 3, 40, 80)
    f = Channel.full_like(src, 3)
    assert f.num_chunks() == 3
    assert f.compressed_bytes() == 12
    assert (f.chunk_size(), f.block_size(), f.compression(), f.compression_level()) == (80, 40, Codec.zstd, 3)
    assert (f.get_decompressed() == 3).all()
    z = Channel.zeros_like(src)
    assert z.dtype == np.float32 and (z.get_decompressed() == 0).all()
    assert z.shape == src.shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_fill_of_every_dtype(dtype):
    c = Channel.full(dtype, 1, 3, 3)
    assert (c.get_decompressed() == 1).all()
    assert c.get_decompressed().dtype == np.dtype(dtype)


@pytest.mark.parametrize("bad", [25.7, -1, 300, "abc", None, 2.0])
def test_full_rejects_values_not_representable_in_uint8(bad):
    with pytest.raises(RuntimeError, match="Could not convert fill_value"):
        Channel.full(np.uint8, bad, 4, 4)


def test_full_conversions_that_work():
    assert Channel.full(np.int8, True, 2, 2).get_chunk(0)[0] == 1
    assert Channel.full(np.float16, 1.5, 2, 2).get_chunk(0)[0] == np.float16(1.5)
    assert Channel.full(np.uint8, np.uint8(200), 2, 2).get_chunk(0)[0] == 200
    assert Channel.full(np.float32, 3, 2, 2).get_chunk(0)[0] == 3.0
    assert math.isnan(Channel.full(np.float64, float("nan"), 2, 2).get_chunk(0)[0])
    assert Channel.full(np.float32, 1e300, 2, 2).get_chunk(0)[0] == np.inf
    assert Channel.full(np.uint32, 2**32 - 1, 2, 2).get_chunk(0)[0] == 2**32 - 1
    assert Channel.full(np.int32, -(2**31), 2, 2).get_chunk(0)[0] == -(2**31)
    with pytest.raises(RuntimeError):
        Channel.full(np.int32, 2**31, 2, 2)


def test_negative_zero_and_nan_payload_fill_bitwise():
    nz = Channel.full(np.float32, -0.0, 4, 4).get_decompressed()
    assert np.signbit(nz).all()
    c = Channel.full(np.float32, 0.0, 4, 4)
    c.set_chunk(0, np.full(16, -0.0, np.float32))  # bitwise different from the +0.0 fill
    assert np.signbit(c.get_decompressed()).all()


@pytest.mark.extension
def test_image_add_lazy_channel_stores_only_fills(tmp_path):
    from compressed_image import Image

    path = str(tmp_path / "lazy.cimg")
    with Image.create(path, [], 300, 70) as image:
        image.add_lazy_channel(np.uint16, "A", chunk_size=300 * 2 * 16)
        image.add_lazy_channel(np.float32, "B", fill_value=-0.5, compression_codec=Codec.zstd)
        a, b = image["A"], image["B"]
        assert (a.dtype, b.dtype) == (np.uint16, np.float32)
        assert a.num_chunks() == 5 and all(a.is_lazy(i) for i in range(5))
        assert (b.compression(), a.compression_level()) == (Codec.zstd, 9)
        a.set_chunk(1, np.full(300 * 16, 7, np.uint16))
    with Image.open(path) as image:
        expected = np.zeros((70, 300), np.uint16)
        expected[16:32] = 7
        np.testing.assert_array_equal(image["A"].get_decompressed(), expected)
        np.testing.assert_array_equal(image["B"].get_decompressed(), np.full((70, 300), -0.5, np.float32))
        assert image.get_channel_names() == ["A", "B"]


@pytest.mark.extension
def test_image_add_lazy_channel_refuses_before_changing_anything():
    from compressed_image import Image

    typed = Image(np.float32, [np.zeros((4, 5), np.float32)], 5, 4)
    with pytest.raises(ValueError, match="dtype"):
        typed.add_lazy_channel(np.uint8)
    with pytest.raises(RuntimeError, match="fill_value"):
        typed.add_lazy_channel(np.float32, fill_value="x")
    with pytest.raises(ValueError, match="levels"):
        typed.add_lazy_channel(np.float32, compression_level=10)
    assert typed.num_channels == 1
    typed.add_lazy_channel(np.float32, "Z", fill_value=1.5)
    np.testing.assert_array_equal(typed["Z"].get_decompressed(), np.full((4, 5), 1.5, np.float32))
