"""Chunk geometry (§5): the reference's measured table, with our documented cap of the chunk
size to the channel size (the original's documentation promises it; 1.0.1 does not do it)."""

import numpy as np
import pytest

from compressed_image import Channel

MIB4 = 4 * 1024 * 1024

# dtype, W, H, and the reference's measured chunk_size(), num_chunks, last chunk bytes.
TABLE = [
    (np.uint8, 1, 1, 4_194_304, 1, 1),
    (np.uint8, 10, 5, 4_194_300, 1, 50),
    (np.uint8, 123, 456, 4_194_300, 1, 56_088),
    (np.uint8, 1920, 1080, 4_193_280, 1, 2_073_600),
    (np.uint8, 2048, 2049, 4_194_304, 2, 2_048),
    (np.uint8, 8192, 8192, 4_194_304, 16, 4_194_304),
    (np.uint16, 10, 5, 4_194_300, 1, 100),
    (np.float16, 10, 5, 4_194_300, 1, 100),
    (np.uint16, 2048, 2048, 4_194_304, 2, 4_194_304),
    (np.float16, 2048, 2049, 4_194_304, 3, 4_096),
    (np.uint16, 2048, 2049, 4_194_304, 3, 4_096),
    (np.float32, 10, 5, 4_194_280, 1, 200),
    (np.int32, 10, 5, 4_194_280, 1, 200),
    (np.float32, 123, 456, 4_194_300, 1, 224_352),
    (np.int32, 1920, 1080, 4_193_280, 2, 4_101_120),
    (np.float32, 4096, 4096, 4_194_304, 16, 4_194_304),
    (np.float64, 123, 456, 4_193_808, 1, 448_704),
    (np.float64, 1920, 1080, 4_193_280, 4, 4_008_960),
    (np.float64, 8192, 8192, 4_194_304, 128, 4_194_304),
]


def capped(dtype, w, h, request):
    s = np.dtype(dtype).itemsize
    rows = (request // s) // w
    return min(rows, h) * w * s


def table_params():
    # Rows where the cap changes chunk_size() check a documented deviation.
    for row in TABLE:
        dtype, w, h, ref_chunk = row[:4]
        capped_row = ref_chunk > w * h * np.dtype(dtype).itemsize
        yield pytest.param(*row, marks=[pytest.mark.extension] if capped_row else [])


@pytest.mark.parametrize("dtype,w,h,ref_chunk,n,last", list(table_params()))
def test_reference_table_with_cap(dtype, w, h, ref_chunk, n, last):
    s = np.dtype(dtype).itemsize
    c = Channel.zeros(dtype, w, h)
    # Where the channel is larger than one chunk, chunk_size() is exactly the reference's;
    # where it is smaller, it is capped to the channel (whole scanlines).
    expected = min(ref_chunk, h * w * s)
    assert expected == capped(dtype, w, h, MIB4)
    assert c.chunk_size() == expected
    assert c.chunk_elems() == expected // s
    assert c.num_chunks() == n
    assert c.chunk_size(n - 1) == last
    assert c.chunk_elems(n - 1) == last // s
    assert c.uncompressed_size() == w * h


@pytest.mark.parametrize("dtype,w,h,ref_chunk,n,last", [r for r in TABLE if r[1] * r[2] <= 123 * 456])
def test_eager_constructor_has_the_same_geometry(dtype, w, h, ref_chunk, n, last):
    c = Channel(np.zeros((h, w), dtype), w, h)
    z = Channel.zeros(dtype, w, h)
    assert (c.chunk_size(), c.num_chunks(), c.chunk_size(n - 1)) == (z.chunk_size(), z.num_chunks(), z.chunk_size(n - 1))


def test_small_requests_floor_to_scanlines():
    # f32 10x5: request 40 -> 5 chunks of 40 B; 60 -> 40 B; 80 -> [80, 80, 40] B.
    assert Channel.zeros(np.float32, 10, 5, chunk_size=40).num_chunks() == 5
    c = Channel.zeros(np.float32, 10, 5, chunk_size=60)
    assert c.chunk_size() == 40 and c.num_chunks() == 5
    c = Channel.zeros(np.float32, 10, 5, chunk_size=80)
    assert [c.chunk_size(i) for i in range(3)] == [80, 80, 40]
    assert [c.chunk_elems(i) for i in range(3)] == [20, 20, 10]
    # a request that is not a multiple of the element size is floored
    c = Channel.zeros(np.float32, 10, 100, chunk_size=1001)
    assert c.chunk_size() == 1000
    f = Channel.full(np.float32, 7.0, 100, 30, chunk_size=3200)
    assert [f.chunk_elems(i) for i in range(f.num_chunks())] == [800, 800, 800, 600]


def test_rgb_like_geometry():
    # 2048x2048 u8 with chunk_size=100000 -> 98,304 B chunks (48 rows), 43 chunks, last 32 rows.
    c = Channel.zeros(np.uint8, 2048, 2048, chunk_size=100000)
    assert c.chunk_size() == 98_304
    assert c.num_chunks() == 43
    assert c.chunk_size(42) == 65_536


@pytest.mark.extension
def test_chunk_smaller_than_a_scanline_gives_one_scanline_per_chunk():
    # Deviation: compressed-image 1.0.1 raises RuntimeError "Unable to align chunk size to
    # scanlines ..." for a request below one scanline (0 included).
    for request in (16, 0):
        c = Channel.zeros(np.float32, 10, 5, chunk_size=request)
        assert (c.num_chunks(), c.chunk_size(), c.chunk_elems()) == (5, 40, 10)
    wide = Channel.zeros(np.uint8, 5_000_000, 1)  # a 5 MB row, above the default 4 MiB
    assert (wide.num_chunks(), wide.chunk_size()) == (1, 5_000_000)
    data = np.arange(50, dtype=np.float32).reshape(5, 10)
    c = Channel(data, 10, 5, chunk_size=16)
    assert c.num_chunks() == 5
    np.testing.assert_array_equal(c.get_chunk(3), data[3])
    np.testing.assert_array_equal(c.get_decompressed(), data)


@pytest.mark.extension
def test_chunk_above_the_blosc2_limit_is_an_error():
    # The original accepts 3,000,000,000 unchecked on the lazy path; one chunk must stay
    # below c-blosc2's 2 GiB buffer limit.
    with pytest.raises(RuntimeError):
        Channel.zeros(np.uint8, 100_000, 100_000, chunk_size=3_000_000_000)


def test_chunk_start_rows_are_in_elements():
    # §5.3: start row of chunk i is i * chunk_elems() / W, for every element size.
    w, h = 100, 30
    data = np.arange(w * h, dtype=np.float32).reshape(h, w)
    c = Channel(data, w, h, chunk_size=3200)  # 8 rows per chunk
    for i in range(c.num_chunks()):
        start_row = i * c.chunk_elems() // w
        np.testing.assert_array_equal(c.get_chunk(i)[:w], data[start_row])
