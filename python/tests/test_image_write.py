"""Image.write (OpenEXR, TIFF, PNG) and Image.preview (a PNG thumbnail), checked with
independent readers: OpenEXR's own Python bindings, tifffile and Pillow.

Lossless OpenEXR compressions must give back every pixel exactly. Lossy ones (PXR24, B44,
B44A, DWAA, DWAB) must lose no more than OpenEXR's own encoder loses on the same pixels
with the same compression, allowing half as much again: the worst error relative to
max(|value|, 1) of each channel at most 1.5 times OpenEXR's, so exact wherever OpenEXR is
exact (float16 and uint32 under PXR24, float32 and uint32 under B44).
"""

import inspect

import numpy as np
import OpenEXR
import pytest
import tifffile
from PIL import Image as PILImage

from compressed_image import Codec, Image
from gil_probe import ticks_during

pytestmark = pytest.mark.extension  # image files are written by neither 1.0.1 nor OpenImageIO there

# Odd sizes: the last OpenEXR block, TIFF strip and chunk are partial.
H, W = 37, 53
# Chunks of 5 rows (of 4-byte elements): an export reads several bands.
CHUNK = W * 4 * 5

EXR_CONSTANTS = {
    "none": OpenEXR.NO_COMPRESSION,
    "rle": OpenEXR.RLE_COMPRESSION,
    "zips": OpenEXR.ZIPS_COMPRESSION,
    "zip": OpenEXR.ZIP_COMPRESSION,
    "piz": OpenEXR.PIZ_COMPRESSION,
    "pxr24": OpenEXR.PXR24_COMPRESSION,
    "b44": OpenEXR.B44_COMPRESSION,
    "b44a": OpenEXR.B44A_COMPRESSION,
    "dwaa": OpenEXR.DWAA_COMPRESSION,
    "dwab": OpenEXR.DWAB_COMPRESSION,
}
LOSSLESS = ["none", "rle", "zips", "zip", "piz"]
LOSSY = ["pxr24", "b44", "b44a", "dwaa", "dwab"]


def wave(phase, h=H, w=W):
    """Smooth values in about [0.05, 0.95]."""
    y, x = np.mgrid[0:h, 0:w]
    return 0.5 + 0.45 * np.sin(x / 6.0 + y / 9.0 + phase)


def mixed_planes():
    """float16 colour (B dipping below 0, G above 1), a float32 depth, uint32 ids and a
    float32 layer channel: name -> (H, W) array."""
    rng = np.random.default_rng(11)
    return {
        "R": wave(0).astype(np.float16),
        "G": (2 * wave(1)).astype(np.float16),
        "B": (wave(2) - 0.25).astype(np.float16),
        "A": wave(3).astype(np.float16),
        "Z": (1000 * wave(4) + rng.random((H, W))).astype(np.float32),
        "id": rng.integers(0, 2**32, (H, W), dtype=np.uint32),
        "diffuse.R": rng.random((H, W)).astype(np.float32),
    }


def image_of(planes):
    """An anonymous image of `planes` (name -> array), each channel of its array's dtype."""
    arrays = list(planes.values())
    return Image([a.dtype for a in arrays], arrays, arrays[0].shape[1], arrays[0].shape[0],
                 channel_names=list(planes), chunk_size=CHUNK)


def read_openexr(path):
    """(name -> pixels, header) as OpenEXR's own bindings read the first part."""
    part = OpenEXR.File(str(path), separate_channels=True).parts[0]
    return {name: c.pixels for name, c in part.channels.items()}, part.header


def worst_error(got, source):
    source = source.astype(np.float64)
    return float(np.max(np.abs(got.astype(np.float64) - source) / np.maximum(np.abs(source), 1.0)))


def encoded(values, bits, srgb):
    """What Image.write makes of float values as `bits`-bit samples: clamped to [0, 1],
    sRGB-encoded when `srgb`, scaled and rounded (halves away from zero)."""
    v = np.clip(values.astype(np.float64), 0.0, 1.0)
    if srgb:
        v = np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    return np.floor(v * (2**bits - 1) + 0.5).astype(np.uint8 if bits == 8 else np.uint16)


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


def test_signatures_take_the_selection_and_options_by_keyword():
    def described(method):
        return [(p.name, p.kind.name, p.default) for p in inspect.signature(method).parameters.values()][1:]

    empty, keyword = inspect.Parameter.empty, "KEYWORD_ONLY"
    assert described(Image.write) == [
        ("filepath", "POSITIONAL_OR_KEYWORD", empty),
        ("channel_indices", keyword, None),
        ("channel_names", keyword, None),
        ("compression", keyword, None),
        ("depth", keyword, None),
        ("transfer", keyword, "srgb"),
        ("format", keyword, None),
    ]
    assert described(Image.preview) == [
        ("filepath", "POSITIONAL_OR_KEYWORD", empty),
        ("max_size", "POSITIONAL_OR_KEYWORD", 512),
        ("channel_indices", keyword, None),
        ("channel_names", keyword, None),
    ]


# ---------------------------------------------------------------- OpenEXR

@pytest.mark.parametrize("compression", LOSSLESS + [None])
def test_lossless_openexr_keeps_every_name_type_and_pixel(tmp_path, compression):
    planes = mixed_planes()
    path = tmp_path / "mixed.exr"
    image_of(planes).write(path, compression=compression)
    read, header = read_openexr(path)
    assert header["compression"] == EXR_CONSTANTS[compression or "zip"]  # ZIP by default
    assert sorted(read) == sorted(planes)
    for name, source in planes.items():
        assert read[name].dtype == source.dtype, name  # half, float and uint kept
        np.testing.assert_array_equal(read[name], source, err_msg=name)


@pytest.mark.parametrize("compression", LOSSY)
def test_lossy_openexr_loses_no_more_than_openexr_itself(tmp_path, compression):
    planes = mixed_planes()
    ours, theirs = tmp_path / "ours.exr", tmp_path / "theirs.exr"
    image_of(planes).write(ours, compression=compression.upper())  # names in any case
    header = {"compression": EXR_CONSTANTS[compression], "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, dict(planes)).write(str(theirs))  # it turns the values into Channels
    (read, our_header), (reference, _) = read_openexr(ours), read_openexr(theirs)
    assert our_header["compression"] == EXR_CONSTANTS[compression]
    for name, source in planes.items():
        assert read[name].dtype == source.dtype, name
        ours_lost, theirs_lost = worst_error(read[name], source), worst_error(reference[name], source)
        assert ours_lost <= 1.5 * theirs_lost, f"{name}: {ours_lost} lost, OpenEXR {theirs_lost}"


def test_openexr_converts_other_types_as_the_import_does(tmp_path):
    rng = np.random.default_rng(3)
    planes = {
        "bytes": rng.integers(0, 256, (H, W), dtype=np.uint8),
        "shorts": rng.integers(0, 2**16, (H, W), dtype=np.uint16),
        "doubles": rng.normal(0, 100, (H, W)),
    }
    path = tmp_path / "types.exr"
    image_of(planes).write(path)
    read, _ = read_openexr(path)
    # uint8 -> float16 and uint16 -> float32, normalised by the type's maximum; float64 -> float32
    np.testing.assert_array_equal(read["bytes"], (planes["bytes"] / 255.0).astype(np.float16))
    np.testing.assert_array_equal(read["shorts"], (planes["shorts"] / 65535.0).astype(np.float32))
    np.testing.assert_array_equal(read["doubles"], planes["doubles"].astype(np.float32))


def test_a_selection_writes_those_channels_only(tmp_path):
    planes = mixed_planes()
    image = image_of(planes)
    image.write(tmp_path / "named.exr", channel_names=["Z", "diffuse.R"])
    image.write(str(tmp_path / "indexed.exr"), channel_indices=[5, 0])
    named, _ = read_openexr(tmp_path / "named.exr")
    indexed, _ = read_openexr(tmp_path / "indexed.exr")
    assert sorted(named) == ["Z", "diffuse.R"]
    assert sorted(indexed) == ["R", "id"]
    np.testing.assert_array_equal(indexed["id"], planes["id"])


def window(x_min, y_min, x_max, y_max):
    """An OpenEXR box2i attribute as OpenEXR's bindings take it."""
    return np.array([x_min, y_min], np.int32), np.array([x_max, y_max], np.int32)


# The source's data window: W x H pixels from (-4, 12).
DATA_WINDOW = [-4, 12, -4 + W - 1, 12 + H - 1]


@pytest.fixture
def openexr_source(tmp_path):
    """An OpenEXR file written by OpenEXR: float16 colour, a float32 depth, uint32 ids, an
    offset data window and attributes of several types."""
    path = tmp_path / "source.exr"
    attributes = dict(owner="A. Colorist", comments="graded", capDate="2024:05:01 10:00:00",
                      myFloat=0.125, myInt=-3, myVector=np.array([1.5, 2.0], np.float32))
    header = dict(compression=OpenEXR.PIZ_COMPRESSION, type=OpenEXR.scanlineimage,
                  dataWindow=window(*DATA_WINDOW), displayWindow=window(0, 0, 63, 47),
                  pixelAspectRatio=1.25, **attributes)
    OpenEXR.File(header, mixed_planes()).write(str(path))
    return path


ATTRIBUTES = ["dataWindow", "displayWindow", "pixelAspectRatio", "owner", "comments", "capDate",
              "myFloat", "myInt", "myVector", "screenWindowCenter", "screenWindowWidth"]


def test_openexr_read_then_written_reads_back_identical(openexr_source, tmp_path):
    path = tmp_path / "again.exr"
    native = Image.read_native(openexr_source)
    native.write(path, compression="zips")
    again = Image.read_native(path)
    assert again.get_channel_names() == native.get_channel_names()
    assert again.dtypes == native.dtypes  # float16, float32 and uint32 as in the source
    for name, before, after in zip(native.get_channel_names(), native.get_decompressed(),
                                   again.get_decompressed()):
        np.testing.assert_array_equal(after, before, err_msg=name)
    meta, meta_again = native.get_metadata(), again.get_metadata()
    for key in ATTRIBUTES:
        assert meta_again[key] == meta[key], key
    assert (meta["compression"], meta_again["compression"]) == ("piz", "zips")
    assert meta_again["dataWindow"] == DATA_WINDOW
    # Image.read (1.0.1's form) reads the same pixels from both files.
    converted = [Image.read(np.float32, str(p), 0) for p in (openexr_source, path)]
    for before, after in zip(*(image.get_decompressed() for image in converted)):
        np.testing.assert_array_equal(after, before)
    # and OpenEXR reads the attributes back as it wrote them
    _, header = read_openexr(path)
    assert (header["owner"], header["capDate"], header["myInt"]) == ("A. Colorist", "2024:05:01 10:00:00", -3)
    np.testing.assert_array_equal(np.concatenate(header["dataWindow"]), DATA_WINDOW)
    np.testing.assert_array_equal(np.concatenate(header["displayWindow"]), [0, 0, 63, 47])


# ---------------------------------------------------------------- TIFF

@pytest.mark.parametrize(
    "compression, tag, predictor",
    [
        (None, tifffile.COMPRESSION.ADOBE_DEFLATE, 2),  # Deflate with the predictor by default
        ("deflate", tifffile.COMPRESSION.ADOBE_DEFLATE, 2),
        ("lzw", tifffile.COMPRESSION.LZW, 2),
        ("none", tifffile.COMPRESSION.NONE, 1),
    ],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiff_keeps_uint8_and_uint16_samples_exactly(tmp_path, compression, tag, predictor, dtype):
    rng = np.random.default_rng(5)
    top = np.iinfo(dtype).max
    rgba = {name: rng.integers(0, top, (H, W), dtype=dtype, endpoint=True) for name in "RGBA"}
    path = tmp_path / "rgba.tif"
    image_of(rgba).write(path, compression=compression)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        samples = page.asarray()
        assert (page.compression, int(page.predictor)) == (tag, predictor)
        assert page.photometric == tifffile.PHOTOMETRIC.RGB
        assert tuple(page.extrasamples) == (2,)  # unassociated alpha
        assert page.bitspersample == 8 * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(samples, np.stack(list(rgba.values()), axis=-1))


@pytest.mark.parametrize("transfer", ["srgb", "linear"])
def test_tiff_float_colour_follows_the_transfer_and_alpha_stays_linear(tmp_path, transfer):
    rng = np.random.default_rng(9)
    planes = {name: rng.uniform(-0.1, 1.1, (H, W)).astype(np.float32) for name in "YA"}
    path = tmp_path / "gray-alpha.tif"
    image_of(planes).write(path, transfer=transfer)  # float channels: 16 bits by default
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        samples = page.asarray()
        assert page.photometric == tifffile.PHOTOMETRIC.MINISBLACK
        assert page.bitspersample == 16
    np.testing.assert_array_equal(samples[:, :, 0], encoded(planes["Y"], 16, transfer == "srgb"))
    np.testing.assert_array_equal(samples[:, :, 1], encoded(planes["A"], 16, srgb=False))


# ---------------------------------------------------------------- PNG

@pytest.mark.parametrize("names, mode", [("Y", "L"), ("YA", "LA"), ("RGB", "RGB"), ("RGBA", "RGBA")])
def test_png_of_uint8_channels_is_read_by_pillow_exactly(tmp_path, names, mode):
    rng = np.random.default_rng(len(names))
    planes = {name: rng.integers(0, 256, (H, W), dtype=np.uint8) for name in names}
    path = tmp_path / "out.png"
    image_of(planes).write(path)
    with PILImage.open(path) as png:
        assert (png.format, png.mode, png.size) == ("PNG", mode, (W, H))
        pixels = np.asarray(png)
    np.testing.assert_array_equal(pixels.reshape(H, W, -1), np.stack(list(planes.values()), axis=-1))


def test_png_depth_and_transfer_of_float_samples(tmp_path):
    rng = np.random.default_rng(4)
    rgb = {name: rng.uniform(-0.1, 1.1, (H, W)).astype(np.float16) for name in "RGB"}
    image = image_of(rgb)
    image.write(tmp_path / "srgb.png", depth=8)
    image.write(tmp_path / "linear.png", depth=8, transfer="linear")
    image.write(tmp_path / "green16.png", channel_names=["G"], depth=16, transfer="LINEAR")
    expected = np.stack(list(rgb.values()), axis=-1)
    with PILImage.open(tmp_path / "srgb.png") as png:
        np.testing.assert_array_equal(np.asarray(png), encoded(expected, 8, srgb=True))
    with PILImage.open(tmp_path / "linear.png") as png:
        np.testing.assert_array_equal(np.asarray(png), encoded(expected, 8, srgb=False))
    with PILImage.open(tmp_path / "green16.png") as png:
        assert png.mode in ("I;16", "I")  # 16-bit gray, as Pillow names it
        np.testing.assert_array_equal(np.asarray(png).astype(np.int64), encoded(rgb["G"], 16, srgb=False))


def test_the_format_may_be_named_whatever_the_extension(tmp_path):
    image = image_of({"Y": wave(0).astype(np.float32)})
    image.write(tmp_path / "scan.data", format="exr")
    read, _ = read_openexr(tmp_path / "scan.data")
    assert list(read) == ["Y"]
    image.write(tmp_path / "scan.EXR", format="PNG")
    with PILImage.open(tmp_path / "scan.EXR") as png:
        assert png.format == "PNG"


def test_a_read_only_image_can_be_written(tmp_path):
    planes = {"R": wave(0).astype(np.float16), "G": wave(1).astype(np.float16)}
    image_of(planes).save(tmp_path / "two.cimg")
    with Image.open(tmp_path / "two.cimg", read_only=True) as image:
        image.write(tmp_path / "two.exr")
    read, _ = read_openexr(tmp_path / "two.exr")
    np.testing.assert_array_equal(read["G"], planes["G"])


# ---------------------------------------------------------------- previews

@pytest.mark.parametrize(
    "planes, selection, mode",
    [
        ("RGBAZ", {}, "RGBA"),  # R G B and A picked by name
        ("ZRGB", {}, "RGB"),
        ("ZYA", {}, "LA"),
        ("ZQ", {}, "L"),  # neither: the first channel
        ("RGBAZ", {"channel_names": ["Z"]}, "L"),
        ("RGBAZ", {"channel_indices": [2, 1, 0]}, "RGB"),
    ],
)
def test_preview_is_a_png_whose_longest_side_is_max_size(tmp_path, planes, selection, mode):
    image = image_of({name: wave(k).astype(np.float16) for k, name in enumerate(planes)})
    image.preview(tmp_path / "thumb.png", 16, **selection)
    with PILImage.open(tmp_path / "thumb.png") as png:
        # 53 x 37 to 16 x round(16 * 37 / 53)
        assert (png.format, png.mode, png.size) == ("PNG", mode, (16, 11))


def test_a_smaller_image_keeps_its_size_in_a_preview(tmp_path):
    image = image_of({"Y": wave(0).astype(np.float32)})
    image.preview(tmp_path / "thumb.png")  # max_size 512
    tall = image_of({"Y": wave(0, h=90, w=30).astype(np.float32)})
    tall.preview(tmp_path / "tall.png", max_size=45)
    with PILImage.open(tmp_path / "thumb.png") as png, PILImage.open(tmp_path / "tall.png") as t:
        assert (png.size, t.size) == ((W, H), (15, 45))


def test_preview_pixels_are_box_averages_encoded_as_write_encodes(tmp_path):
    # uint8 gray, 64 x 32 to 32 x 16: each preview pixel is the mean of a 2 x 2 block,
    # here v, v + 1 over v + 2, v + 1, so exactly v + 1.
    v = np.random.default_rng(2).integers(0, 254, (16, 32)).astype(np.uint8)
    blocks = np.empty((32, 64), np.uint8)
    blocks[0::2, 0::2], blocks[0::2, 1::2] = v, v + 1
    blocks[1::2, 0::2], blocks[1::2, 1::2] = v + 2, v + 1
    image_of({"Y": blocks}).preview(tmp_path / "gray.png", 32)
    with PILImage.open(tmp_path / "gray.png") as png:
        np.testing.assert_array_equal(np.asarray(png), v + 1)
    # float colour clamped and sRGB-encoded, alpha linear: a flat image stays flat
    flat = {"R": 0.5, "G": 0.2, "B": 1.5, "A": 0.25}
    image_of({n: np.full((H, W), x, np.float16) for n, x in flat.items()}).preview(
        tmp_path / "flat.png", 8)
    with PILImage.open(tmp_path / "flat.png") as png:
        pixels = np.asarray(png)
    colour = encoded(np.array([0.5, 0.2, 1.5], np.float16), 8, srgb=True)
    assert pixels.shape == (6, 8, 4)
    np.testing.assert_array_equal(pixels[:, :, :3], np.broadcast_to(colour, (6, 8, 3)))
    assert (pixels[:, :, 3] == 64).all()  # 0.25 * 255, rounded


# ---------------------------------------------------------------- errors

@pytest.fixture
def rgba_image():
    return image_of({name: wave(k).astype(np.float16) for k, name in enumerate("RGBAZ")})


@pytest.mark.parametrize(
    "name, kwargs, error, match",
    [
        ("x.jpg", {}, ValueError, "cannot tell the format from the extension"),
        ("x", {}, ValueError, "extension"),
        ("x.exr", {"format": "jpeg"}, ValueError, "no format"),
        ("x.png", {}, ValueError, "5 channels"),  # PNG takes 1 to 4
        ("x.tif", {"channel_indices": [0, 1, 2, 3, 4]}, ValueError, "5 channels"),
        ("x.exr", {"channel_names": []}, ValueError, "no channels"),
        ("x.exr", {"channel_names": ["R", "Q"]}, ValueError, "Unknown channelname 'Q'"),
        ("x.exr", {"channel_indices": [5]}, IndexError, "channel index 5 is out of range"),
        ("x.exr", {"channel_indices": [-1]}, IndexError, "-1"),
        ("x.exr", {"compression": "lzw"}, ValueError, "no OpenEXR compression"),
        ("x.tif", {"compression": "piz"}, ValueError, "no TIFF compression"),
        ("x.png", {"channel_names": ["R"], "compression": "deflate"}, ValueError, "only OpenEXR and TIFF"),
        ("x.png", {"channel_names": ["R"], "depth": 12}, ValueError, "8 or 16"),
        ("x.exr", {"depth": 16}, ValueError, "TIFF and PNG"),
        ("x.png", {"channel_names": ["R"], "transfer": "gamma"}, ValueError, "no transfer"),
        ("x.exr", {"channel_names": ["R", "R"]}, ValueError, "two channels would be named"),
    ],
)
def test_refused_writes_raise_and_leave_no_file(tmp_path, rgba_image, name, kwargs, error, match):
    with pytest.raises(error, match=match):
        rgba_image.write(tmp_path / name, **kwargs)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((), {"channel_indices": [0], "channel_names": ["R"]}),
        ((), {"channel_names": "RGB"}),  # a string is not a list of names
        ((), {"channel_indices": [0.5]}),
        ((), {"compression": 1}),
        ((), {"depth": "8"}),
        ((["R"],), {}),  # the selection is keyword-only
    ],
)
def test_malformed_arguments_are_type_errors(tmp_path, rgba_image, args, kwargs):
    with pytest.raises(TypeError):
        rgba_image.write(tmp_path / "x.exr", *args, **kwargs)


def test_preview_errors(tmp_path, rgba_image):
    for size in (0, -1):
        with pytest.raises(ValueError, match="max_size must be at least 1"):
            rgba_image.preview(tmp_path / "thumb.png", size)
    with pytest.raises(ValueError, match="5 channels"):
        rgba_image.preview(tmp_path / "thumb.png", channel_indices=range(5))
    with pytest.raises(ValueError, match="Unknown channelname"):
        rgba_image.preview(tmp_path / "thumb.png", channel_names=["Q"])
    with pytest.raises(IndexError):
        rgba_image.preview(tmp_path / "thumb.png", channel_indices=[9])
    with pytest.raises(ValueError, match="no channels"):
        Image(np.float32, [], W, H).preview(tmp_path / "thumb.png")
    assert files_in(tmp_path) == []


def test_an_image_without_channels_has_nothing_to_write(tmp_path):
    with pytest.raises(ValueError, match="no channels"):
        Image(np.float32, [], W, H).write(tmp_path / "x.exr")


def test_a_directory_that_cannot_take_the_file_is_an_os_error(tmp_path, rgba_image):
    with pytest.raises(FileNotFoundError) as info:
        rgba_image.write(tmp_path / "missing" / "x.exr")
    assert not isinstance(info.value, ValueError)  # not an image-file error
    assert str(tmp_path / "missing") in str(info.value)
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(IsADirectoryError):
        rgba_image.preview(tmp_path / "taken.png")
    assert files_in(tmp_path) == ["taken.png"]
    assert files_in(tmp_path / "taken.png") == []


def test_a_failed_write_leaves_the_file_it_would_replace_untouched(tmp_path, rgba_image):
    # Refused before writing (five channels for a PNG), and while writing (two channels of
    # one name, found once the temporary file exists, and a name OpenEXR cannot hold).
    for name in ("old.png", "old.exr"):
        (tmp_path / name).write_bytes(b"the previous contents")
    with pytest.raises(ValueError):
        rgba_image.write(tmp_path / "old.png")
    with pytest.raises(ValueError, match="two channels would be named"):
        rgba_image.write(tmp_path / "old.exr", channel_indices=[0, 0])
    rgba_image.set_channel_names(["R", "G", "B", "A", "\u6df1\u5ea6"])  # not Latin-1
    with pytest.raises(ValueError, match="OpenEXR names"):
        rgba_image.write(tmp_path / "old.exr")
    assert files_in(tmp_path) == ["old.exr", "old.png"]
    for name in ("old.png", "old.exr"):
        assert (tmp_path / name).read_bytes() == b"the previous contents"
    # and a successful write replaces it
    rgba_image.write(tmp_path / "old.exr", channel_names=["R"])
    assert list(read_openexr(tmp_path / "old.exr")[0]) == ["R"]


def test_a_closed_image_cannot_be_written(tmp_path, rgba_image):
    rgba_image.close()
    with pytest.raises(RuntimeError, match="closed"):
        rgba_image.write(tmp_path / "x.exr")
    with pytest.raises(RuntimeError, match="closed"):
        rgba_image.preview(tmp_path / "x.png")


# ---------------------------------------------------------------- threads

def test_the_gil_is_released_while_writing_and_previewing(tmp_path):
    rng = np.random.default_rng(1)
    noise = {name: rng.random((512, 512), dtype=np.float32) for name in "RGB"}
    image = Image(np.float32, list(noise.values()), 512, 512, list(noise), Codec.zstd, 5)
    ticks, _ = ticks_during(lambda: image.write(tmp_path / "noise.tif", compression="deflate"))
    assert ticks > 0
    assert tifffile.imread(tmp_path / "noise.tif").shape == (512, 512, 3)
    ticks, _ = ticks_during(lambda: image.preview(tmp_path / "noise.png", 500))
    assert ticks > 0
