"""Image.read (1.0.1's three forms), Image.read_native, Image.dtype_from_file and
Image.dtypes_from_file on files written by independent libraries (OpenEXR's own Python
bindings, tifffile, Pillow), compared with what those libraries read back.

The channel order the files are presented in is OpenImageIO's (as 1.0.1 reads through it):
OpenEXR layers sorted by name, the unnamed layer first, R G B A Z first in each layer.
"""

import pickle
import sys
import threading

import numpy as np
import OpenEXR
import pytest
import tifffile
from PIL import Image as PILImage

import compressed_image as ci
from compressed_image import Codec, Image

H, W = 48, 40
RNG = np.random.default_rng(7)


def smooth(h, w, scale=1.0, offset=0.0):
    yy, xx = np.mgrid[0:h, 0:w]
    return (np.sin(xx / 7.0) * np.cos(yy / 5.0) * 0.5 + 0.5) * scale + offset


# An OpenEXR file stores channels sorted by name; they are presented in this order.
EXR_PRESENTED = ["R", "G", "B", "A", "Z", "disparityL.x", "left.R", "left.G", "left.B"]


def exr_planes(path, part=0):
    """What OpenEXR's own reader gives: name -> 2-D array."""
    f = OpenEXR.File(str(path), separate_channels=True)
    return {name: c.pixels for name, c in f.parts[part].channels.items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("image-files")
    out = {}

    # OpenEXR: float16 colour, a float32 depth and layers, ZIP.
    channels = {
        "R": smooth(H, W).astype(np.float16),
        "G": smooth(H, W, 2.0).astype(np.float16),
        "B": smooth(H, W, -1.0, 0.5).astype(np.float16),
        "A": smooth(H, W, 0.5).astype(np.float16),
        "Z": smooth(H, W, 1000.0).astype(np.float32),
        "disparityL.x": smooth(H, W, 3.0).astype(np.float32),
        "left.R": smooth(H, W, 0.25).astype(np.float16),
        "left.G": smooth(H, W, 0.5).astype(np.float16),
        "left.B": smooth(H, W, 0.75).astype(np.float16),
    }
    out["exr"] = d / "layers.exr"
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, channels).write(str(out["exr"]))

    # OpenEXR: two parts, the second float16 luma and uint32 ids.
    out["exr_parts"] = d / "parts.exr"
    beauty = {k: channels[k] for k in "RGBA"}
    ids = {"Y": smooth(21, 33, 4.0).astype(np.float16), "id": RNG.integers(0, 99, (21, 33), dtype=np.uint32)}
    display = (np.array([0, 0], np.int32), np.array([W - 1, H - 1], np.int32))
    data = (np.array([5, 6], np.int32), np.array([5 + 32, 6 + 20], np.int32))  # 33 x 21
    OpenEXR.File(
        [
            OpenEXR.Part({"compression": OpenEXR.RLE_COMPRESSION, "displayWindow": display}, beauty, "beauty"),
            OpenEXR.Part({"compression": OpenEXR.PIZ_COMPRESSION, "displayWindow": display, "dataWindow": data},
                         ids, "ids"),
        ]
    ).write(str(out["exr_parts"]))

    # PNG (Pillow): RGB, RGBA, gray and 16-bit gray.
    rgb = (np.stack([smooth(H, W), smooth(H, W, 0.7), smooth(H, W, -0.5, 0.8)], axis=2) * 255).astype(np.uint8)
    out["rgb"] = rgb
    for name, array in [
        ("png_rgb", rgb),
        ("png_rgba", np.dstack([rgb, RNG.integers(0, 256, (H, W), dtype=np.uint8)])),
        ("png_gray", rgb[:, :, 1]),
        ("png_gray16", (smooth(H, W) * 65535).astype(np.uint16)),
    ]:
        out[name] = d / f"{name}.png"
        PILImage.fromarray(array).save(out[name])

    # JPEG (Pillow).
    out["jpeg"] = d / "rgb.jpg"
    PILImage.fromarray(rgb).save(out["jpeg"], quality=90)

    # TIFF (Pillow): RGB, LZW.
    out["tiff_pillow"] = d / "pillow.tif"
    PILImage.fromarray(rgb).save(out["tiff_pillow"], compression="tiff_lzw")

    # TIFF (tifffile): two pages, uint16 gray and float32 RGB, Deflate, tiled.
    out["tiff_pages"] = d / "pages.tif"
    with tifffile.TiffWriter(out["tiff_pages"]) as tif:
        tif.write((smooth(H, W) * 60000).astype(np.uint16), compression="zlib")
        tif.write((smooth(32, 48)[:, :, None] * [1, 2, 3]).astype(np.float32),
                  photometric="rgb", tile=(16, 16), compression="zlib")
    out["tiff_pages_data"] = [tifffile.imread(out["tiff_pages"], key=k) for k in range(2)]

    out["text"] = d / "notes.txt"
    out["text"].write_text("not an image")
    out["truncated"] = d / "truncated.png"
    out["truncated"].write_bytes(out["png_rgb"].read_bytes()[:200])
    return out


def planes(image):
    return dict(zip(image.get_channel_names(), image.get_decompressed()))


# ---------------------------------------------------------------- what is read

@pytest.mark.extension
def test_read_native_keeps_each_openexr_channel_type_in_presented_order(files):
    image = Image.read_native(files["exr"])
    expected = exr_planes(files["exr"])
    assert image.get_channel_names() == EXR_PRESENTED
    assert image.dtype is None  # float16 and float32: a mixed image
    assert [str(d) for d in image.dtypes] == [str(expected[n].dtype) for n in EXR_PRESENTED]
    for name, plane in planes(image).items():
        np.testing.assert_array_equal(plane, expected[name], err_msg=name)
        assert plane.dtype == expected[name].dtype
    meta = image.get_metadata()
    assert meta["compression"] == "zip"
    assert meta["source:format"] == "openexr"


def test_read_converts_every_channel_to_the_dtype(files):
    image = Image.read(np.float32, str(files["exr"]), 0)
    expected = exr_planes(files["exr"])
    assert image.dtype == np.float32
    assert image.shape == (len(EXR_PRESENTED), H, W)
    for name, plane in planes(image).items():
        assert plane.dtype == np.float32
        # float16 -> float32 is exact
        np.testing.assert_array_equal(plane, expected[name].astype(np.float32), err_msg=name)


def test_uint8_reads_as_float32_normalised(files):
    image = Image.read(np.float32, str(files["png_rgb"]), 0)
    assert image.get_channel_names() == ["R", "G", "B"]
    rgb = np.asarray(PILImage.open(files["png_rgb"]))
    for c, plane in enumerate(image.get_decompressed()):
        np.testing.assert_array_equal(plane, rgb[:, :, c].astype(np.float32) / np.float32(255))
    # the ends of the range
    assert Image.read(np.float32, str(files["png_rgba"]), 0)["A"].get_decompressed().max() <= 1.0


def test_float_reads_as_uint16_clamped_scaled_and_rounded(files):
    image = Image.read(np.uint16, str(files["exr"]), 0, ["Z", "G"])
    expected = exr_planes(files["exr"])
    for name in ["G", "Z"]:
        v = expected[name].astype(np.float64)
        want = np.floor(np.clip(v, 0.0, 1.0) * 65535 + 0.5).astype(np.uint16)  # halves up
        np.testing.assert_array_equal(image[name].get_decompressed(), want, err_msg=name)


@pytest.mark.parametrize(
    "name, names, dtype",
    [
        ("png_rgb", ["R", "G", "B"], np.uint8),
        ("png_rgba", ["R", "G", "B", "A"], np.uint8),
        ("png_gray", ["Y"], np.uint8),
        ("png_gray16", ["Y"], np.uint16),
        ("tiff_pillow", ["R", "G", "B"], np.uint8),
    ],
)
def test_files_written_by_pillow_read_as_pillow_reads_them(files, name, names, dtype):
    assert Image.dtype_from_file(str(files[name])) == dtype
    image = Image.read(dtype, str(files[name]), 0)
    assert image.get_channel_names() == names
    expected = np.asarray(PILImage.open(files[name]))
    if expected.ndim == 2:
        expected = expected[:, :, None]
    for c, plane in enumerate(image.get_decompressed()):
        np.testing.assert_array_equal(plane, expected[:, :, c].astype(dtype), err_msg=names[c])


def test_jpeg_reads_within_the_decoders_rounding_of_pillow(files):
    image = Image.read(np.uint8, str(files["jpeg"]), 0)
    assert image.get_channel_names() == ["R", "G", "B"]
    expected = np.asarray(PILImage.open(files["jpeg"])).astype(np.int16)
    for c, plane in enumerate(image.get_decompressed()):
        # libjpeg and the crate's decoder round the inverse DCT and chroma upsampling
        # differently: a few levels at most.
        assert np.abs(plane.astype(np.int16) - expected[:, :, c]).max() <= 4


def test_tiff_pages_are_subimages(files):
    gray, rgb = files["tiff_pages_data"]
    page0 = Image.read(np.uint16, str(files["tiff_pages"]), 0)
    assert page0.get_channel_names() == ["Y"]
    np.testing.assert_array_equal(page0[0].get_decompressed(), gray)
    page1 = Image.read(np.float32, str(files["tiff_pages"]), 1)
    assert page1.get_channel_names() == ["R", "G", "B"]
    assert page1.shape == (3, 32, 48)
    for c in range(3):
        np.testing.assert_array_equal(page1[c].get_decompressed(), rgb[:, :, c])
    assert page1.get_metadata()["source:subimage"] == 1


def test_openexr_parts_are_subimages(files):
    expected = exr_planes(files["exr_parts"], 1)
    part = Image.read(np.float32, str(files["exr_parts"]), 1)
    assert part.get_channel_names() == ["Y", "id"]
    assert (part.width, part.height) == (33, 21)
    np.testing.assert_array_equal(part["Y"].get_decompressed(), expected["Y"].astype(np.float32))
    native = Image.read_native(files["exr_parts"], 1)
    assert [str(d) for d in native.dtypes] == ["float16", "uint32"]
    np.testing.assert_array_equal(native["id"].get_decompressed(), expected["id"])
    assert Image.read(np.float16, str(files["exr_parts"]), 0).get_channel_names() == ["R", "G", "B", "A"]


# ---------------------------------------------------------------- channel subsets

def test_a_subset_by_name_or_index_comes_back_in_file_order(files):
    path = str(files["exr"])
    full = planes(Image.read(np.float32, path, 0))
    by_name = Image.read(np.float32, path, 0, ["left.G", "Z", "R"])
    assert by_name.get_channel_names() == ["R", "Z", "left.G"]
    by_keyword = Image.read(np.float32, path, 0, channel_names=["left.G", "Z", "R"])
    assert by_keyword.get_channel_names() == ["R", "Z", "left.G"]
    by_index = Image.read(np.float32, path, 0, [7, 4, 0])
    assert by_index.get_channel_names() == ["R", "Z", "left.G"]
    by_index_keyword = Image.read(np.float32, path, 0, channel_indices=(7, 4, 0))
    for image in (by_name, by_keyword, by_index, by_index_keyword):
        for name, plane in planes(image).items():
            np.testing.assert_array_equal(plane, full[name], err_msg=name)


def test_a_channel_asked_twice_is_read_twice_and_none_gives_no_channels(files):
    path = str(files["png_rgb"])
    twice = Image.read(np.uint8, path, 0, ["G", "G"])
    assert twice.get_channel_names() == ["G", "G"]
    assert Image.read(np.uint8, path, 0, [1, 1]).get_channel_names() == ["G", "G"]
    empty = Image.read(np.uint8, path, 0, [])
    assert empty.shape == (0, H, W)
    assert Image.read(np.uint8, path, 0, channel_names=[]).shape == (0, H, W)


@pytest.mark.extension
def test_read_native_takes_subsets_by_keyword(files):
    image = Image.read_native(files["exr"], channel_names=["Z", "disparityL.x"])
    assert image.get_channel_names() == ["Z", "disparityL.x"]
    assert image.dtype == np.float32  # both float32: single-typed
    assert Image.read_native(files["exr"], channel_indices=[3, 0]).get_channel_names() == ["R", "A"]
    with pytest.raises(TypeError):
        Image.read_native(files["exr"], channel_indices=[0], channel_names=["R"])


# ---------------------------------------------------------------- settings

def test_settings_by_position_and_keyword_as_in_the_three_forms(files):
    path = str(files["png_rgb"])
    # the first form: settings right after the subimage
    image = Image.read(np.uint8, path, 0, Codec.zstd, 5, 256, W * 10 + 7)
    c = image[0]
    assert (c.compression(), c.compression_level(), c.block_size()) == (Codec.zstd, 5, 256)
    assert image.chunk_size() == W * 10  # whole scanlines
    assert c.num_chunks() == 5
    # the second and third forms: settings after the channels
    image = Image.read(np.uint8, path, 0, [2], Codec.lz4hc, 3)
    assert (image.get_channel_names(), image[0].compression(), image[0].compression_level()) == (
        ["B"], Codec.lz4hc, 3)
    image = Image.read(np.uint8, path, 0, ["B"], compression_codec=Codec.blosclz, chunk_size=W * 2)
    assert (image[0].compression(), image.chunk_size()) == (Codec.blosclz, W * 2)
    image = Image.read(dtype=np.uint8, filepath=path, subimage=0, channel_indices=[0], compression_level=1)
    assert image[0].compression_level() == 1


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((0, [0], [1]), {}),  # two selections
        ((0, [0]), {"channel_names": ["R"]}),
        ((0,), {"channel_indices": [0], "channel_names": ["R"]}),
        ((0, Codec.lz4, 9, 32768, 4194304, 1), {}),  # too many positional arguments
        ((0, Codec.lz4), {"compression_codec": Codec.lz4}),  # given twice
        ((0,), {"compression": Codec.lz4}),  # unknown keyword
        ((0, "RGB"), {}),  # a string is not a list of names
        ((0, [0, "G"]), {}),  # mixed
        ((0, [0.5]), {}),
        ((0,), {"channel_names": [0]}),
        ((0,), {"channel_indices": ["R"]}),
        ((0, [0], 1), {}),  # a codec must be a Codec
        ((0,), {"postprocess": 3}),
    ],
)
def test_malformed_arguments_are_type_errors(files, args, kwargs):
    with pytest.raises(TypeError):
        Image.read(np.uint8, str(files["png_rgb"]), *args, **kwargs)


def test_the_subimage_has_no_default(files):
    with pytest.raises(TypeError):
        Image.read(np.uint8, str(files["png_rgb"]))  # type: ignore[call-overload]


def test_a_level_above_9_is_a_value_error(files):
    with pytest.raises(ValueError, match="levels from 0-9"):
        Image.read(np.uint8, str(files["png_rgb"]), 0, compression_level=10)


# ---------------------------------------------------------------- dtypes of a file

def test_dtype_from_file_and_dtypes_from_file_as_1_0_1_gives_them(files):
    # channels of one type: that type, and a list of one
    assert Image.dtype_from_file(str(files["png_rgb"])) == np.uint8
    assert Image.dtypes_from_file(str(files["png_rgb"])) == [np.dtype(np.uint8)]
    assert Image.dtypes_from_file(str(files["png_gray16"])) == [np.dtype(np.uint16)]
    assert Image.dtypes_from_file(str(files["tiff_pages"])) == [np.dtype(np.uint16)]
    # channels of different types: one per channel, merged to float32 as OpenImageIO does
    assert Image.dtype_from_file(str(files["exr"])) == np.float32
    assert Image.dtypes_from_file(str(files["exr"])) == [
        np.dtype(np.float16)] * 4 + [np.dtype(np.float32)] * 2 + [np.dtype(np.float16)] * 3


@pytest.mark.extension
def test_dtypes_of_another_subimage(files):
    assert Image.dtypes_from_file(files["exr_parts"], 1) == [np.dtype(np.float16), np.dtype(np.uint32)]
    assert Image.dtype_from_file(files["exr_parts"], 1) == np.float32  # float16 with uint32
    assert Image.dtype_from_file(files["tiff_pages"], subimage=1) == np.float32
    with pytest.raises(ValueError, match="does not have a subimage 2"):
        Image.dtype_from_file(files["tiff_pages"], 2)


# ---------------------------------------------------------------- errors

def test_a_missing_file_is_a_value_error_and_a_file_not_found_error(tmp_path):
    missing = str(tmp_path / "missing.exr")
    for call in (
        lambda: Image.read(np.float32, missing, 0),
        lambda: Image.read_native(missing),
        lambda: Image.dtype_from_file(missing),
        lambda: Image.dtypes_from_file(missing),
    ):
        with pytest.raises(ValueError) as info:
            call()
        assert isinstance(info.value, FileNotFoundError)
        assert isinstance(info.value, ci.ImageFileNotFoundError)
        assert info.value.filename == missing
        assert info.value.errno == 2
    assert issubclass(ci.ImageFileNotFoundError, OSError)
    e = pickle.loads(pickle.dumps(ci.ImageFileNotFoundError(2, "No such file", missing)))
    assert type(e) is ci.ImageFileNotFoundError and e.filename == missing


def test_a_missing_subimage_is_a_value_error(files):
    with pytest.raises(ValueError, match=r"does not have a subimage 1, cannot seek to it"):
        Image.read(np.float32, str(files["exr"]), 1)
    with pytest.raises(ValueError, match=r"does not have a subimage 2"):
        Image.read(np.float32, str(files["tiff_pages"]), 2)
    with pytest.raises(ValueError, match=r"does not have a subimage -1"):
        Image.read(np.float32, str(files["png_rgb"]), -1)


def test_an_unknown_channel_is_an_index_error(files):
    path = str(files["png_rgb"])
    with pytest.raises(IndexError, match="Q"):
        Image.read(np.uint8, path, 0, ["R", "Q"])
    with pytest.raises(IndexError, match="3"):
        Image.read(np.uint8, path, 0, channel_indices=[3])
    with pytest.raises(IndexError):
        Image.read(np.uint8, path, 0, [-1])


def test_unreadable_files_are_value_errors(files):
    with pytest.raises(ValueError, match="not an OpenEXR, TIFF, PNG or JPEG file"):
        Image.read(np.uint8, str(files["text"]), 0)
    with pytest.raises(ValueError, match="not an OpenEXR"):
        Image.dtype_from_file(str(files["text"]))
    with pytest.raises(ValueError, match=str(files["truncated"].name)):
        Image.read(np.uint8, str(files["truncated"]), 0)


def test_an_unsupported_dtype_is_a_value_error(files):
    with pytest.raises(ValueError, match="Unsupported dtype"):
        Image.read(np.int64, str(files["png_rgb"]), 0)


# ---------------------------------------------------------------- into a named file

@pytest.mark.extension
def test_reading_into_a_named_file_then_reopening_it(files, tmp_path):
    destination = tmp_path / "beauty.cimg"
    image = Image.read(np.float16, str(files["exr"]), 0, ["R", "G", "B", "A"], path=destination)
    assert image.path == str(destination)
    expected = planes(image)
    metadata = image.get_metadata()
    image.close()
    with Image.open(destination, read_only=True) as reopened:
        assert reopened.dtype == np.float16
        assert reopened.get_metadata() == metadata
        assert reopened.get_channel_names() == ["R", "G", "B", "A"]
        for name, plane in planes(reopened).items():
            np.testing.assert_array_equal(plane, expected[name])
    native = Image.read_native(files["exr"], path=tmp_path / "all.cimg")
    native.close()
    assert Image.open(tmp_path / "all.cimg").get_channel_names() == EXR_PRESENTED


@pytest.mark.extension
def test_a_failed_read_into_a_named_file_leaves_nothing(files, tmp_path):
    with pytest.raises(IndexError):
        Image.read(np.uint8, str(files["png_rgb"]), 0, ["Q"], path=tmp_path / "x.cimg")
    with pytest.raises(ValueError):
        Image.read(np.uint8, str(files["truncated"]), 0, path=tmp_path / "x.cimg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.extension
def test_errors_of_the_destination_are_not_those_of_the_image_file(files, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        Image.read(np.uint8, str(files["png_rgb"]), 0, path=tmp_path / "no" / "dir.cimg")
    assert not isinstance(e.value, ValueError)
    destination = tmp_path / "held.cimg"
    held = Image.read(np.uint8, str(files["png_rgb"]), 0, path=destination)
    with pytest.raises(ci.LockedError):
        Image.read_native(files["png_gray"], path=destination)
    held.close()
    assert Image.read_native(files["png_gray"], path=destination).get_channel_names() == ["Y"]


# ---------------------------------------------------------------- post-process callback

@pytest.mark.extension
def test_postprocess_sees_every_chunk_and_its_changes_are_stored(files):
    seen = []

    def double_red(file_channel, chunk):
        seen.append((file_channel, chunk.shape, chunk.dtype))
        if file_channel == 0:
            chunk *= 2

    image = Image.read(np.float32, str(files["png_rgb"]), 0, ["R", "B"], chunk_size=W * 4 * 10,
                       postprocess=double_red)
    plain = Image.read(np.float32, str(files["png_rgb"]), 0, ["R", "B"])
    rows = image.chunk_size() // (W * 4)
    # the file's channel index (R is 0, B is 2), every chunk of each, whole rows
    chunks = image[0].num_chunks()
    assert chunks > 2
    assert sorted(s[0] for s in seen) == [0] * chunks + [2] * chunks
    assert {s[1] for s in seen} == {(rows, W), ((H - 1) % rows + 1, W)}
    assert {s[2] for s in seen} == {np.dtype(np.float32)}
    np.testing.assert_array_equal(image["R"].get_decompressed(), plain["R"].get_decompressed() * 2)
    np.testing.assert_array_equal(image["B"].get_decompressed(), plain["B"].get_decompressed())


@pytest.mark.extension
def test_postprocess_may_return_the_new_chunk(files):
    image = Image.read_native(files["png_gray16"], postprocess=lambda i, chunk: 65535 - chunk)
    expected = np.asarray(PILImage.open(files["png_gray16"]))
    np.testing.assert_array_equal(image[0].get_decompressed(), 65535 - expected)
    with pytest.raises(ValueError, match="dtype"):
        Image.read_native(files["png_gray16"], postprocess=lambda i, chunk: chunk.astype(np.float32))
    with pytest.raises(ValueError):
        Image.read_native(files["png_gray16"], postprocess=lambda i, chunk: chunk[:1])
    with pytest.raises(TypeError):
        Image.read_native(files["png_gray16"], postprocess=lambda i, chunk: [0])


@pytest.mark.extension
def test_an_exception_in_postprocess_ends_the_read_and_leaves_nothing(files, tmp_path):
    calls = []

    class Stop(Exception):
        pass

    def fail_second(i, chunk):
        calls.append(i)
        if len(calls) == 2:
            raise Stop("enough")

    with pytest.raises(Stop, match="enough"):
        Image.read(np.uint8, str(files["png_rgb"]), 0, chunk_size=W * 3, path=tmp_path / "x.cimg",
                   postprocess=fail_second)
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.extension
def test_the_gil_is_released_while_decoding_and_compressing(tmp_path):
    # With a switch interval far longer than the test, a thread waiting for the GIL gets
    # it only when the holder releases it: the spinning thread below, which waits 1 ms
    # (GIL released) between increments, can count during the read only if the read
    # releases the GIL while it decodes and compresses.
    path = tmp_path / "noise.tif"
    tifffile.imwrite(path, RNG.random((512, 512, 3), dtype=np.float32), photometric="rgb", rowsperstrip=8)
    stop = threading.Event()
    ticks = [0]

    def spin():
        while not stop.wait(0.001):
            ticks[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    t = threading.Thread(target=spin)
    try:
        t.start()
        before = ticks[0]
        image = Image.read(np.float32, str(path), 0, Codec.zstd, 5, chunk_size=512 * 4 * 8)
        during = ticks[0] - before
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    assert image[0].num_chunks() == 64
    assert during > 0, during
