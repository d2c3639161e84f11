"""Image (§4, §7): signatures, names, metadata, channel handles."""

import inspect
import sys

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Channel, Codec, Image

from conftest import DTYPES, ramp

FOUR = ["compression_codec", "compression_level", "block_size", "chunk_size"]


def names(f):
    return [p.name for p in inspect.signature(f).parameters.values()]


def rgb(dtype=np.float32, h=30, w=40):
    return [ramp(dtype, h, w) + k for k in range(3)]


@pytest.mark.extension
def test_signatures():
    if sys.version_info >= (3, 10):  # abi3 classes carry a constructor signature from 3.10
        assert names(Image) == ["dtype", "channels", "width", "height", "channel_names"] + FOUR
        assert inspect.signature(Image).parameters["channel_names"].default == []
    assert names(Image.add_channel) == ["self", "data", "width", "height", "name"] + FOUR
    assert names(Image.remove_channel) == ["self", "name_or_index"]
    assert names(Image.get_channel_index) == ["self", "channelname"]
    assert names(Image.set_channel_names) == ["self", "names"]
    assert names(Image.set_metadata) == ["self", "metadata"]
    assert names(Image.update_nthreads) == ["self", "nthreads"]


def test_construct_with_names_and_defaults():
    chans = rgb()
    img = Image(np.float32, chans, 40, 30, ["R", "G", "B"])
    assert img.shape == (3, 30, 40)
    assert (img.width, img.height, img.num_channels, len(img)) == (40, 30, 3, 3)
    assert img.get_channel_names() == ["R", "G", "B"]
    assert img.get_channel_index("B") == 2
    for k, out in enumerate(img.get_decompressed()):
        assert out.shape == (30, 40) and out.dtype == np.float32
        np.testing.assert_array_equal(out, chans[k])
    np.testing.assert_array_equal(img["G"].get_decompressed(), chans[1])
    np.testing.assert_array_equal(img[2].get_decompressed(), chans[2])
    np.testing.assert_array_equal(img.channel(0).get_decompressed(), chans[0])
    np.testing.assert_array_equal(img.channel("B").get_decompressed(), chans[2])
    np.testing.assert_array_equal(img.channel(name="R").get_decompressed(), chans[0])
    np.testing.assert_array_equal(img.channel(index=1).get_decompressed(), chans[1])
    assert [c.get_decompressed()[0, 0] for c in img] == [0, 1, 2]
    assert [c.get_decompressed()[0, 0] for c in img.channels()] == [0, 1, 2]
    assert img[0].compression() == Codec.lz4 and img[0].compression_level() == 9


@pytest.mark.extension
def test_sizes_capped_to_the_channel():
    img = Image(np.float32, rgb(), 40, 30, ["R", "G", "B"])
    assert img.chunk_size() == 30 * 40 * 4  # 1.0.1: 4,194,240 (not capped)
    assert img.block_size() == 30 * 40 * 4  # the 32 KiB default, capped to the chunk


def test_keywords():
    chans = rgb(np.uint16)
    img = Image(
        dtype=np.uint16,
        channels=chans,
        width=40,
        height=30,
        channel_names=["a", "b", "c"],
        compression_codec=Codec.zstd,
        compression_level=4,
        block_size=256,
        chunk_size=800,
    )
    assert img.chunk_size() == 800 and img.block_size() == 256
    assert img[0].compression() == Codec.zstd and img[0].compression_level() == 4
    img.add_channel(
        data=chans[0], width=40, height=30, name="d", compression_codec=Codec.lz4hc,
        compression_level=2, block_size=256, chunk_size=800,
    )
    assert img.get_channel_names() == ["a", "b", "c", "d"]
    assert img["d"].compression() == Codec.lz4hc
    img.remove_channel(name_or_index="a")
    assert img.get_channel_index(channelname="b") == 0
    img.set_channel_names(["x", "y", "z"])
    img.set_metadata(metadata={"k": 1})
    img.update_nthreads(nthreads=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype(dtype):
    chans = rgb(dtype, 9, 7)
    img = Image(dtype, chans, 7, 9)
    for a, b in zip(img.get_decompressed(), chans):
        np.testing.assert_array_equal(a, b)


def test_unsupported_dtype():
    with pytest.raises(ValueError, match="Unsupported dtype"):
        Image(np.int64, [], 4, 4)


def test_force_cast_and_one_dimensional_channels():
    img = Image(np.float32, [np.full(12, 1.5, np.float64)], 4, 3)
    assert img.get_decompressed()[0].dtype == np.float32
    assert (img.get_decompressed()[0] == 1.5).all()
    img = Image(np.uint8, [np.full((3, 4), 300.7)], 4, 3)
    assert (img.get_decompressed()[0] == 44).all()  # silently wraps, as the original


@pytest.mark.extension
def test_constructor_accepts_nested_lists():
    # 1.0.1 requires ndarrays here (TypeError); we force-cast anything numpy takes.
    img = Image(np.int16, [[1, 2, 3, 4]], 2, 2)
    np.testing.assert_array_equal(img.get_decompressed()[0], [[1, 2], [3, 4]])
    img.set_channel_names(names=["keyword"])  # 1.0.1: positional only


def test_channel_failures_in_constructor():
    with pytest.raises(ValueError):
        Image(np.float32, [np.zeros(12), np.zeros(11)], 4, 3, ["R", "G"])
    with pytest.raises(ValueError):
        Image(np.float32, [np.zeros((4, 3))], 4, 3)


@pytest.mark.extension
def test_chunk_below_one_scanline_gives_one_scanline_per_chunk():
    # Deviation: compressed-image 1.0.1 raises RuntimeError for a chunk below one scanline.
    img = Image(np.float32, [np.arange(12)], 4, 3, chunk_size=8)
    assert (img.chunk_size(), img[0].num_chunks()) == (16, 3)
    np.testing.assert_array_equal(img[0].get_chunk(2), [8, 9, 10, 11])


def test_names_optional_duplicates_first_match():
    img = Image(np.uint8, [np.zeros(4)] * 3, 2, 2, ["A", "A", "B"])
    assert img.get_channel_index("A") == 0
    img.set_channel_names(["x", "y", "x"])
    assert img.get_channel_index("x") == 0
    unnamed = Image(np.uint8, [np.zeros(4)] * 2, 2, 2)
    assert unnamed.get_channel_names() == []
    with pytest.raises(ValueError, match="Unknown channelname 'A'"):
        unnamed.get_channel_index("A")


def test_add_channel_name_rules():
    named = Image(np.uint8, [np.zeros(4)], 2, 2, ["R"])
    named.add_channel(np.ones((2, 2), np.uint8), 2, 2)
    assert named.get_channel_names() == ["R", ""]
    named.add_channel(np.ones((2, 2), np.uint8), 2, 2, "A")
    assert named.get_channel_names() == ["R", "", "A"]


@pytest.mark.extension
def test_naming_a_channel_of_an_unnamed_image():
    unnamed = Image(np.uint8, [np.zeros(4)], 2, 2)
    unnamed.add_channel(np.ones((2, 2), np.uint8), 2, 2, "A")
    # Deviation: the original drops the name; we keep it and name the others "".
    assert unnamed.get_channel_names() == ["", "A"]


def test_add_channel_returns_none_and_appends():
    img = Image(np.float32, [], 4, 3)
    assert img.add_channel(np.ones((3, 4), np.float32), 4, 3, "R") is None
    assert img.shape == (1, 3, 4)
    # strided input is copied correctly
    base = ramp(np.float32, 6, 8)
    img.add_channel(base[::2, ::2], 4, 3, "G")
    np.testing.assert_array_equal(img["G"].get_decompressed(), base[::2, ::2])


def test_metadata():
    img = Image(np.uint8, [np.zeros(4)], 2, 2)
    assert img.get_metadata() is None
    meta = {"b": [1, 2.5, "x", None, True, {"nested": []}], "a": {"z": 1, "y": -2}}
    img.set_metadata(meta)
    got = img.get_metadata()
    assert got == meta
    for value in ["text", 3, 2.5, [1, 2], True, None]:
        img.set_metadata(value)
        assert img.get_metadata() == value
    img.set_metadata((1, 2))
    assert img.get_metadata() == [1, 2]
    img.set_metadata({1: "int key"})
    assert img.get_metadata() == {"1": "int key"}


@pytest.mark.extension
def test_metadata_key_order_is_kept():
    img = Image(np.uint8, [], 2, 2)
    img.set_metadata({"b": 1, "a": {"z": 1, "y": -2}})
    got = img.get_metadata()
    # 1.0.1 returns the keys sorted; we keep the order they were given in.
    assert list(got) == ["b", "a"] and list(got["a"]) == ["z", "y"]


@pytest.mark.extension
def test_metadata_non_finite_floats_are_rejected():
    # JSON text cannot hold NaN or infinity (1.0.1 keeps them in memory only).
    img = Image(np.uint8, [], 2, 2)
    with pytest.raises(ValueError):
        img.set_metadata({"x": float("nan")})


@pytest.mark.parametrize("bad", [object(), np.float32(1.0), np.int64(3), {"a": {1, 2}}, 2**70])
def test_metadata_not_json_convertible(bad):
    img = Image(np.uint8, [], 2, 2)
    with pytest.raises(TypeError):
        img.set_metadata(bad)
    assert img.get_metadata() is None


def test_channels_from_image_write_through():
    img = Image(np.float32, rgb(), 40, 30, ["R", "G", "B"])
    g = img["G"]
    g.set_chunk(0, np.zeros(g.chunk_elems(0), np.float32))
    assert (img.get_decompressed()[1] == 0).all()
    assert (img["G"].get_decompressed() == 0).all()
    lst = img.channels()
    lst.clear()  # a new list each time
    assert len(img.channels()) == 3


@pytest.mark.crash
def test_handles_survive_add_and_detect_remove():
    chans = rgb()
    img = Image(np.float32, chans, 40, 30, ["R", "G", "B"])
    r, g, b = img["R"], img["G"], img["B"]
    for k in range(10):  # the original segfaults once add_channel reallocates
        img.add_channel(chans[0], 40, 30, f"extra{k}")
    np.testing.assert_array_equal(b.get_decompressed(), chans[2])
    img.remove_channel("G")
    with pytest.raises(ci.ChannelRemovedError):
        g.get_decompressed()
    with pytest.raises(RuntimeError):
        g.num_chunks()
    np.testing.assert_array_equal(r.get_decompressed(), chans[0])
    np.testing.assert_array_equal(b.get_decompressed(), chans[2])
    assert img.get_channel_names()[:2] == ["R", "B"]


def test_handles_keep_the_image_alive():
    img = Image(np.uint8, [np.full(4, 9)], 2, 2)
    ch = img[0]
    del img
    import gc

    gc.collect()
    assert (ch.get_decompressed() == 9).all()


@pytest.mark.crash
def test_remove_channel_by_index_and_on_unnamed_image():
    img = Image(np.uint8, [np.full(4, k) for k in range(3)], 2, 2)
    img.remove_channel(1)
    assert [c.get_chunk(0)[0] for c in img.channels()] == [0, 2]
    img.remove_channel(1)  # the last one
    img.remove_channel(0)
    assert img.shape == (0, 2, 2)


def test_empty_image():
    img = Image(np.float32, [], 8, 4)
    assert img.chunk_size() == 0 and img.block_size() == 0
    assert img.compression_ratio() == 1.0
    assert img.get_decompressed() == []
    assert img.shape == (0, 4, 8)
    assert img.get_channel_names() == []


def test_chunk_and_block_size_must_agree():
    img = Image(np.float32, [np.zeros(100)], 10, 10)
    img.add_channel(np.zeros((10, 10), np.float32), 10, 10, chunk_size=40)
    with pytest.raises(RuntimeError, match="same chunk size"):
        img.chunk_size()
    img2 = Image(np.float32, [np.zeros(100)], 10, 10)
    img2.add_channel(np.zeros((10, 10), np.float32), 10, 10, block_size=16)
    with pytest.raises(RuntimeError, match="same block size"):
        img2.block_size()
    # codec and level may differ per channel
    img2.add_channel(np.zeros((10, 10), np.float32), 10, 10, compression_codec=Codec.zstd, compression_level=1)
    assert img2[2].compression() == Codec.zstd


@pytest.mark.extension
def test_compression_ratio_is_bytes_over_bytes():
    img = Image(np.uint8, [np.arange(16) % 3 for _ in range(3)], 4, 4)
    stored = sum(c.compressed_bytes() for c in img)
    assert img.compression_ratio() == pytest.approx(48 / stored)
    f32 = Image(np.float32, [np.arange(16) % 3], 4, 4)
    assert f32.compression_ratio() == pytest.approx(64 / f32[0].compressed_bytes())


def test_print_statistics(capfd):
    img = Image(np.uint8, [np.arange(16) % 3 for _ in range(3)], 4, 4)
    img.print_statistics()
    import sys

    sys.stdout.flush()
    out = capfd.readouterr().out
    assert "Compressed Size:" in out and "Uncompressed Size: 48" in out and "Compression ratio:" in out


@pytest.mark.extension
def test_all_zero_channel_added_is_lazy():
    img = Image(np.float32, [], 4, 4)
    img.add_channel(np.zeros((4, 4), np.float32), 4, 4, "Z")
    assert img["Z"].is_lazy(0)


@pytest.mark.extension
def test_repr():
    img = Image(np.float32, rgb(), 40, 30, ["R", "G", "B"])
    r = repr(img)
    assert "Image" in r and "float32" in r and "(3, 30, 40)" in r and "R" in r
