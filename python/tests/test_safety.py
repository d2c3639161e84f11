"""Where compressed-image 1.0.1 crashes or corrupts (§8, §12), we do the safe thing."""

import numpy as np
import pytest

from compressed_image import Channel, Image

from conftest import ramp

pytestmark = pytest.mark.crash


# (1) width 0 -> SIGFPE in the original
@pytest.mark.parametrize("w,h", [(0, 0), (0, 5)])
def test_zero_width_is_a_value_error(w, h):
    with pytest.raises(ValueError):
        Channel(np.zeros(0, np.float32), w, h)
    with pytest.raises(ValueError):
        Channel.zeros(np.float32, w, h)
    with pytest.raises(ValueError):
        Channel.full(np.uint8, 1, w, h)
    with pytest.raises(ValueError):
        Image(np.float32, [], w, h)


# (2) height 0 -> 0 chunks, then index access segfaults
def test_zero_height_is_a_value_error():
    with pytest.raises(ValueError):
        Channel(np.zeros(0, np.float32), 5, 0)
    with pytest.raises(ValueError):
        Channel.zeros(np.float32, 5, 0)
    with pytest.raises(ValueError):
        Image(np.uint8, [], 5, 0)


# (3) update_nthreads(0) -> SIGFPE on the next multi-block decompression
def test_update_nthreads_zero():
    c = Channel(ramp(np.float32, 256, 256), 256, 256, block_size=1024)
    with pytest.raises(ValueError):
        c.update_nthreads(0)
    np.testing.assert_array_equal(c.get_decompressed(), ramp(np.float32, 256, 256))


# (4) strided arrays: wrong data, out-of-bounds reads, SIGBUS
def test_non_contiguous_set_chunk_is_copied_correctly():
    c = Channel.zeros(np.int32, 100, 16, chunk_size=3200)
    src = np.arange(1600, dtype=np.int32)
    c.set_chunk(0, src[::2])  # the original stores 0,1,2,3,... instead of 0,2,4,...
    np.testing.assert_array_equal(c.get_chunk(0), src[::2])
    rev = np.arange(800, dtype=np.int32)[::-1]  # the original reads out of bounds
    c.set_chunk(1, rev)
    np.testing.assert_array_equal(c.get_chunk(1), rev)
    col = np.arange(800 * 3, dtype=np.int32).reshape(800, 3)[:, 1]
    c.set_chunk(0, col)
    np.testing.assert_array_equal(c.get_chunk(0), col)


def test_non_contiguous_output_buffers_are_rejected():
    c = Channel(np.arange(1600, dtype=np.float32), 100, 16, chunk_size=3200)
    big = np.zeros(1600, np.float32)
    with pytest.raises(ValueError, match="contiguous"):
        c.get_chunk(0, big[::2])  # the original writes from the base pointer
    assert (big == 0).all()
    with pytest.raises(ValueError, match="contiguous"):
        c.get_chunk(0, np.zeros(800, np.float32)[::-1])  # the original: SIGBUS
    # a contiguous view into a larger buffer is fine (the PhotoshopAPI pattern)
    whole = np.zeros(1600, np.float32)
    for i in range(c.num_chunks()):
        start = i * c.chunk_elems()
        c.get_chunk(i, whole[start : start + c.chunk_elems(i)])
    np.testing.assert_array_equal(whole, np.arange(1600, dtype=np.float32))


# (5) oversized incompressible set_chunk -> empty chunk -> segfault
def test_oversized_incompressible_set_chunk():
    c = Channel.zeros(np.uint8, 100, 40, chunk_size=1000)
    noise = np.random.default_rng(0).integers(0, 256, 1200, dtype=np.uint8)
    with pytest.raises(ValueError):
        c.set_chunk(0, noise)
    assert c.is_lazy(0)
    assert (c.get_decompressed() == 0).all()
    # the right length of incompressible data is stored and read back
    c.set_chunk(0, noise[:1000])
    np.testing.assert_array_equal(c.get_chunk(0), noise[:1000])


# (11) set_chunk mutate-then-validate; last chunk silently resizable
@pytest.mark.parametrize("index,length", [(0, 799), (0, 801), (2, 3196 // 4), (3, 500), (3, 700), (3, 800), (3, 900), (3, 0)])
def test_wrong_length_set_chunk_leaves_the_channel_unchanged(index, length):
    data = np.arange(3000, dtype=np.float32)
    c = Channel(data.reshape(30, 100), 100, 30, chunk_size=3200)
    before = c.compressed_bytes()
    with pytest.raises(ValueError):
        c.set_chunk(index, np.ones(length, np.float32))
    assert c.uncompressed_size() == 3000
    assert [c.chunk_elems(i) for i in range(4)] == [800, 800, 800, 600]
    assert c.compressed_bytes() == before
    np.testing.assert_array_equal(c.get_decompressed().ravel(), data)


@pytest.mark.parametrize("length", [500, 700, 800, 900, 0])
def test_wrong_length_set_chunk_on_lazy_channel(length):
    c = Channel.full(np.float32, 7.0, 100, 30, chunk_size=3200)
    with pytest.raises(ValueError):
        c.set_chunk(3, np.ones(length, np.float32))
    assert c.compressed_bytes() == 16
    assert (c.get_decompressed() == 7.0).all()


# (6) remove on an unnamed image -> segfault; remove_channel(len) off-by-one
def test_remove_on_unnamed_image_and_off_by_one():
    img = Image(np.uint8, [np.full(4, k) for k in range(2)], 2, 2)
    with pytest.raises(ValueError):
        img.remove_channel(2)
    img.remove_channel(0)
    assert img.num_channels == 1 and img[0].get_chunk(0)[0] == 1


# (7) stale channel aliases after add/remove
def test_image_channel_handles_never_dangle():
    img = Image(np.float32, [np.full(6, 1.0)], 3, 2, ["A"])
    a = img["A"]
    for k in range(50):
        img.add_channel(np.full((2, 3), k, np.float32), 3, 2, f"c{k}")
        assert (a.get_decompressed() == 1.0).all()
    handles = img.channels()
    img.remove_channel("A")
    with pytest.raises(RuntimeError):
        a.get_decompressed()
    with pytest.raises(RuntimeError):
        handles[0].set_chunk(0, np.zeros(6, np.float32))
    assert (handles[1].get_decompressed() == 0).all()
    assert (handles[50].get_decompressed() == 49).all()


# (9) chunk_size(i) unchecked on non-lazy channels
def test_chunk_size_of_any_index_is_checked():
    c = Channel(np.zeros(50, np.uint8), 10, 5)
    with pytest.raises(IndexError):
        c.chunk_size(1)
    with pytest.raises(IndexError):
        c.chunk_elems(10**12)


# moved-from / closed handles
def test_closed_handle_is_a_runtime_error():
    c = Channel.zeros(np.uint8, 4, 4)
    c.close()
    assert c.closed
    for call in (c.num_chunks, c.get_decompressed, lambda: c.get_chunk(0), lambda: c.shape):
        with pytest.raises(RuntimeError, match="closed"):
            call()
    c.close()  # idempotent
    assert "closed" in repr(c)


def misaligned_f32(n, fill):
    raw = np.zeros(n * 4 + 1, np.uint8)
    view = np.frombuffer(raw.data, dtype=np.float32, offset=1, count=n)
    assert not view.flags.aligned
    raw[1:] = np.full(n, fill, np.float32).view(np.uint8)
    return raw, view


def test_misaligned_arrays():
    raw, m = misaligned_f32(800, 2.5)
    c = Channel(m, 100, 8)
    assert (c.get_decompressed() == 2.5).all()
    c.set_chunk(0, misaligned_f32(800, -1.0)[1])
    assert (c.get_chunk(0) == -1.0).all()
    raw2, out = misaligned_f32(800, 0.0)
    out = np.frombuffer(bytearray(raw2.tobytes()), dtype=np.float32, offset=1, count=800)
    with pytest.raises(ValueError, match="aligned"):
        c.get_chunk(0, out)
    img = Image(np.float32, [m], 100, 8)
    assert (img.get_decompressed()[0] == 2.5).all()
    img.add_channel(m.reshape(8, 100), 100, 8)
    assert (img[1].get_decompressed() == 2.5).all()
