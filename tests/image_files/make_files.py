"""Image files written by independent libraries, and what those libraries read back.

Usage: make_files.py OUT_DIR

Writes OpenEXR files (OpenEXR's own Python bindings; OpenImageIO's texture maker for
mip-maps), TIFFs (tifffile), PNGs (Pillow, imagecodecs, and a small hand-written encoder
for bit depths and interlacing Pillow cannot write), JPEGs (Pillow), a few damaged and
hostile files, and OUT_DIR/manifest.json describing each case:

- file, subimage, width, height;
- channels: name (as OpenImageIO presents the file, in its order), dtype (numpy name) and
  a raw file of the pixels as the writing library's own reader decodes them
  (little-endian, row-major);
- tolerance: the largest absolute difference allowed (0 for lossless files);
- metadata: entries the import must reproduce;
- conversions: the same file read by OpenImageIO into another type (OpenImageIO's
  conversion rules), with unassociated alpha left alone, and the tolerance of a lossy
  file's (null: one step of an integer type, 1e-6 for floats);
- or error: the kind of error the import must give.

The Rust tests (tests/image_files.rs) compare the import against all of it.
"""

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import OpenEXR
import OpenImageIO as oiio
import tifffile
import imagecodecs
from PIL import Image, ImageCms, PngImagePlugin

OUT = Path(sys.argv[1])
RNG = np.random.default_rng(20261202)
W, H = 67, 45  # odd sizes: not a multiple of any block, strip or tile
CASES = []


def smooth(h, w, scale=1.0, offset=0.0):
    """A smooth pattern with some noise: compressible, but not trivially."""
    y, x = np.mgrid[0:h, 0:w]
    return offset + scale * (0.5 + 0.4 * np.sin(x / 7.0 + y / 11.0)) + 0.02 * RNG.random((h, w))


def oiio_names(path, subimage=0):
    inp = oiio.ImageInput.open(str(path))
    assert inp, oiio.geterror()
    assert inp.seek_subimage(subimage, 0), inp.geterror()
    names = list(inp.spec().channelnames)
    inp.close()
    return names


def oiio_read(path, subimage, fmt):
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # as stored, never premultiplied
    inp = oiio.ImageInput.open(str(path), config)
    assert inp, oiio.geterror()
    assert inp.seek_subimage(subimage, 0), inp.geterror()
    pixels = inp.read_image(subimage, 0, 0, inp.spec().nchannels, fmt)
    inp.close()
    return pixels


def save_raw(name, array):
    array = np.ascontiguousarray(array)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    (OUT / name).write_bytes(array.tobytes())
    return name


def case(name, file, planes, names, tolerance=0.0, subimage=0, metadata=None, conversions=()):
    """Record a case: `planes` maps each channel name to its expected 2-D array."""
    h, w = next(iter(planes.values())).shape
    channels = []
    for n in names:
        plane = planes[n]
        channels.append(
            {
                "name": n,
                "dtype": str(plane.dtype),
                "data": save_raw(f"{name}.{len(channels)}.raw", plane),
            }
        )
    conv = []
    for fmt, dtype, *conversion_tolerance in conversions:
        pixels = oiio_read(OUT / file, subimage, fmt)
        pixels = pixels.reshape(h, w, -1)
        conv.append(
            {
                "dtype": dtype,
                "tolerance": conversion_tolerance[0] if conversion_tolerance else None,
                "channels": [
                    save_raw(f"{name}.as-{dtype}.{c}.raw", pixels[:, :, c].astype(dtype))
                    for c in range(pixels.shape[2])
                ],
            }
        )
    CASES.append(
        {
            "case": name,
            "file": file,
            "subimage": subimage,
            "width": w,
            "height": h,
            "channels": channels,
            "tolerance": tolerance,
            "metadata": metadata or {},
            "conversions": conv,
        }
    )


def error_case(name, file, error, subimage=0):
    CASES.append({"case": name, "file": file, "subimage": subimage, "error": error})


# ---------------------------------------------------------------- OpenEXR

def exr_read(path, part=0):
    f = OpenEXR.File(str(path), separate_channels=True)
    return {n: c.pixels for n, c in f.parts[part].channels.items()}


def exr_channels(h, w):
    return {
        "R": smooth(h, w).astype(np.float16),
        "G": smooth(h, w, 2.0).astype(np.float16),
        "B": smooth(h, w, -1.0, 0.5).astype(np.float16),
        "A": smooth(h, w, 0.5).astype(np.float16),
        "Z": smooth(h, w, 1000.0).astype(np.float32),
        "id": RNG.integers(0, 2**32, (h, w), dtype=np.uint32),
    }


EXR_COMPRESSIONS = {
    "none": (OpenEXR.NO_COMPRESSION, 0.0),
    "rle": (OpenEXR.RLE_COMPRESSION, 0.0),
    "zips": (OpenEXR.ZIPS_COMPRESSION, 0.0),
    "zip": (OpenEXR.ZIP_COMPRESSION, 0.0),
    "piz": (OpenEXR.PIZ_COMPRESSION, 0.0),
    # Lossy when encoding; OpenEXR and the exr crate decode what was stored to the same bits.
    "pxr24": (OpenEXR.PXR24_COMPRESSION, 0.0),
    "b44": (OpenEXR.B44_COMPRESSION, 0.0),
    "b44a": (OpenEXR.B44A_COMPRESSION, 0.0),
    "dwaa": (OpenEXR.DWAA_COMPRESSION, 0.0),
    "dwab": (OpenEXR.DWAB_COMPRESSION, 0.0),
}


def make_exr():
    for cname, (compression, tolerance) in EXR_COMPRESSIONS.items():
        file = f"exr-{cname}.exr"
        header = {"compression": compression, "type": OpenEXR.scanlineimage}
        OpenEXR.File(header, exr_channels(H, W)).write(str(OUT / file))
        case(
            f"exr-scanline-{cname}",
            file,
            exr_read(OUT / file),
            oiio_names(OUT / file),
            tolerance,
            metadata={"compression": cname, "source:format": "openexr"},
        )

    for cname, compression in [("zip", OpenEXR.ZIP_COMPRESSION), ("piz", OpenEXR.PIZ_COMPRESSION),
                               ("none", OpenEXR.NO_COMPRESSION)]:
        tiles = OpenEXR.TileDescription()
        tiles.xSize, tiles.ySize = 16, 8
        tiles.mode, tiles.roundingMode = OpenEXR.ONE_LEVEL, OpenEXR.ROUND_DOWN
        file = f"exr-tiled-{cname}.exr"
        header = {"compression": compression, "type": OpenEXR.tiledimage, "tiles": tiles}
        OpenEXR.File(header, exr_channels(H, W)).write(str(OUT / file))
        case(f"exr-tiled-{cname}", file, exr_read(OUT / file), oiio_names(OUT / file),
             metadata={"compression": cname, "type": "tiledimage", "tiles": {
                 "xSize": 16, "ySize": 8, "mode": "ONE_LEVEL", "roundingMode": "ROUND_DOWN"}})

    # Data window away from the origin, a display window, attributes, decreasing lines.
    file = "exr-windows.exr"
    header = {
        "compression": OpenEXR.ZIP_COMPRESSION,
        "type": OpenEXR.scanlineimage,
        "lineOrder": OpenEXR.DECREASING_Y,
        "dataWindow": (np.array([10, -20], np.int32), np.array([10 + W - 1, -20 + H - 1], np.int32)),
        "displayWindow": (np.array([0, 0], np.int32), np.array([99, 79], np.int32)),
        "owner": "Jane Doe",
        "comments": "a test image",
        "myFloat": 1.5,
        "myInt": 7,
        "pixelAspectRatio": 2.0,
    }
    OpenEXR.File(header, exr_channels(H, W)).write(str(OUT / file))
    case("exr-windows", file, exr_read(OUT / file), oiio_names(OUT / file), metadata={
        "dataWindow": [10, -20, 10 + W - 1, -20 + H - 1],
        "displayWindow": [0, 0, 99, 79],
        "owner": "Jane Doe",
        "comments": "a test image",
        "myFloat": 1.5,
        "myInt": 7,
        "pixelAspectRatio": 2.0,
        "lineOrder": "decreasingY",
        "type": "scanlineimage",
        "screenWindowCenter": [0.0, 0.0],
    }, conversions=[("uint8", "uint8"), ("uint16", "uint16")])

    # Layers: OpenImageIO's channel order differs from OpenEXR's sorted one.
    file = "exr-layers.exr"
    names = ["A", "B", "G", "R", "Z", "left.A", "left.B", "left.G", "left.R", "left.Z",
             "disparityL.x", "disparityL.y", "mask", "N.X", "N.Y", "N.Z", "N.A"]
    layers = {n: smooth(H, W, i + 1.0).astype(np.float16 if i % 3 else np.float32)
              for i, n in enumerate(names)}
    OpenEXR.File({"compression": OpenEXR.PIZ_COMPRESSION, "type": OpenEXR.scanlineimage},
                 layers).write(str(OUT / file))
    case("exr-layers", file, exr_read(OUT / file), oiio_names(OUT / file))

    # Two parts of different sizes and types: subimages 0 and 1.
    file = "exr-parts.exr"
    display = (np.array([0, 0], np.int32), np.array([W - 1, H - 1], np.int32))
    beauty = {k: v for k, v in exr_channels(H, W).items() if k in "RGBA"}
    depth = {"Z": smooth(21, 33, 100.0).astype(np.float32), "id": RNG.integers(0, 99, (21, 33), dtype=np.uint32)}
    parts = [
        OpenEXR.Part({"compression": OpenEXR.RLE_COMPRESSION, "displayWindow": display}, beauty, "beauty"),
        OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION, "displayWindow": display,
                      "dataWindow": (np.array([5, 6], np.int32), np.array([5 + 32, 6 + 20], np.int32))},
                     depth, "depth"),
    ]
    OpenEXR.File(parts).write(str(OUT / file))
    for p in range(2):
        case(f"exr-part{p}", file, exr_read(OUT / file, p), oiio_names(OUT / file, p), subimage=p,
             metadata={"oiio:subimages": 2, "name": ["beauty", "depth"][p]})
    error_case("exr-part-missing", file, "BadSubimage", subimage=2)

    # Mip-mapped tiles (written by OpenImageIO's texture maker): level 0 is the image.
    file = "exr-mipmap.exr"
    src = oiio.ImageBuf(oiio.ImageSpec(W, H, 2, "half"))
    src.set_pixels(oiio.ROI(0, W, 0, H, 0, 1, 0, 2),
                   np.stack([smooth(H, W), smooth(H, W, 3.0)], axis=2).astype(np.float16))
    config = oiio.ImageSpec()
    config.attribute("maketx:filtername", "box")
    assert oiio.ImageBufAlgo.make_texture(oiio.MakeTxTexture, src, str(OUT / file), config), oiio.geterror()
    mip = oiio_read(OUT / file, 0, "half")
    names = oiio_names(OUT / file)
    case("exr-mipmap", file, {n: mip[:, :, c] for c, n in enumerate(names)}, names)

    # Refused: compressions the exr crate cannot decode, deep data, subsampled channels.
    for cname, compression in [("zstd", OpenEXR.ZSTD_COMPRESSION), ("htj2k", OpenEXR.HTJ2K256_COMPRESSION)]:
        file = f"exr-{cname}.exr"
        OpenEXR.File({"compression": compression, "type": OpenEXR.scanlineimage},
                     {"R": smooth(H, W).astype(np.float16)}).write(str(OUT / file))
        error_case(f"exr-{cname}", file, "UnsupportedCompression")
    file = "exr-deep.exr"
    deep = np.empty((H, W), dtype=object)  # a sample list per pixel
    for y in range(H):
        for x in range(W):
            deep[y, x] = np.arange((x + y) % 3, dtype=np.float32)
    OpenEXR.File({"compression": OpenEXR.ZIPS_COMPRESSION, "type": OpenEXR.deepscanline},
                 {"Z": deep}).write(str(OUT / file))
    error_case("exr-deep", file, "DeepData")
    (OUT / "exr-subsampled.exr").write_bytes(subsampled_exr())
    error_case("exr-subsampled", "exr-subsampled.exr", "Subsampled")


def exr_attribute(name, kind, value):
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value


def subsampled_exr():
    """A luminance/chroma header (Y, and RY, BY at 2 x 2) over zeroed, uncompressed lines:
    the OpenEXR bindings refuse to write channels of different sizes."""
    w, h = 8, 4
    chlist = b""
    for name, sampling in [("BY", 2), ("RY", 2), ("Y", 1)]:
        chlist += name.encode() + b"\0" + struct.pack("<iB3xii", 1, 0, sampling, sampling)
    chlist += b"\0"
    box = struct.pack("<iiii", 0, 0, w - 1, h - 1)
    header = b"".join([
        exr_attribute("channels", "chlist", chlist),
        exr_attribute("compression", "compression", b"\0"),
        exr_attribute("dataWindow", "box2i", box),
        exr_attribute("displayWindow", "box2i", box),
        exr_attribute("lineOrder", "lineOrder", b"\0"),
        exr_attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
        exr_attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0, 0)),
        exr_attribute("screenWindowWidth", "float", struct.pack("<f", 1.0)),
    ]) + b"\0"
    start = 8 + len(header) + 8 * h
    lines = []
    for y in range(h):
        samples = w * 2 + (2 * (w // 2) * 2 if y % 2 == 0 else 0)
        lines.append(struct.pack("<ii", y, samples) + bytes(samples))
    offsets, at = [], start
    for line in lines:
        offsets.append(at)
        at += len(line)
    return (struct.pack("<ii", 20000630, 2) + header + struct.pack(f"<{h}Q", *offsets)
            + b"".join(lines))


# ---------------------------------------------------------------- TIFF

def tiff_planes(path, page=0, separate=False):
    data = tifffile.imread(str(path), key=page)
    if data.ndim == 2:
        return [data]
    if separate:
        return [data[c] for c in range(data.shape[0])]
    return [data[:, :, c] for c in range(data.shape[2])]


def tiff_case(name, data, names_expected=None, separate=False, conversions=(), expect=None, **kwargs):
    file = f"{name}.tif"
    tifffile.imwrite(str(OUT / file), data, **kwargs)
    names = oiio_names(OUT / file)
    if names_expected is not None:
        assert names == names_expected, (name, names)
    planes = tiff_planes(OUT / file, 0, separate)
    case(name, file, dict(zip(names, planes)), names, conversions=conversions,
         metadata=expect or {})


def scaled(h, w, dtype, channels=None):
    shape = (h, w) if channels is None else (h, w, channels)
    if np.issubdtype(dtype, np.floating):
        return (RNG.random(shape) * 4 - 1).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def tiff_jpeg_case(name, data, **kwargs):
    """A JPEG-compressed TIFF (tifffile stores colour as YCbCr): as tifffile decodes it, within
    the JPEG tolerance."""
    file = f"{name}.tif"
    tifffile.imwrite(str(OUT / file), data, compression="jpeg", **kwargs)
    names = oiio_names(OUT / file)
    case(name, file, dict(zip(names, tiff_planes(OUT / file))), names, JPEG_TOLERANCE,
         metadata={"compression": "jpeg"})


def make_tiff():
    tiff_case("tiff-u8-gray", scaled(H, W, np.uint8), ["Y"], photometric="minisblack",
              expect={"compression": "none", "Software": "tifffile.py", "source:format": "tiff"},
              conversions=[("float", "float32")])
    tiff_case("tiff-u16-rgb-lzw-predictor", scaled(H, W, np.uint16, 3), ["R", "G", "B"],
              photometric="rgb", compression="lzw", predictor=True, rowsperstrip=7,
              expect={"compression": "lzw"}, conversions=[("uint8", "uint8"), ("half", "float16")])
    tiff_case("tiff-u32-gray-deflate", scaled(H, W, np.uint32), photometric="minisblack",
              compression="zlib", rowsperstrip=5)
    for dtype in [np.int8, np.int16, np.int32]:
        tiff_case(f"tiff-{np.dtype(dtype).name}-gray", scaled(H, W, dtype), photometric="minisblack",
                  compression="packbits", rowsperstrip=4,
                  conversions=[("float", "float32")] if dtype == np.int16 else ())
    tiff_case("tiff-f16-gray-zstd", scaled(H, W, np.float16), photometric="minisblack",
              compression="zstd", rowsperstrip=8)
    tiff_case("tiff-f32-rgb-tiled-float-predictor", scaled(H, W, np.float32, 3), photometric="rgb",
              compression="zlib", predictor=3, tile=(16, 32),
              conversions=[("uint8", "uint8"), ("int8", "int8")])
    tiff_case("tiff-f64-gray-packbits", scaled(H, W, np.float64), photometric="minisblack",
              compression="packbits")
    tiff_case("tiff-rgba-planar", scaled(H, W, np.uint8, 4).transpose(2, 0, 1).copy(),
              ["R", "G", "B", "A"], separate=True, photometric="rgb", planarconfig="separate",
              extrasamples=["unassalpha"], rowsperstrip=6, expect={"planarconfig": "separate"})
    tiff_case("tiff-gray-alpha", scaled(H, W, np.uint16, 2), ["Y", "A"], photometric="minisblack",
              planarconfig="contig", extrasamples=["unassalpha"])
    tiff_case("tiff-five-samples-tiled-planar", scaled(H, W, np.uint16, 5).transpose(2, 0, 1).copy(),
              ["R", "G", "B", "A", "channel4"], separate=True, photometric="rgb",
              planarconfig="separate", extrasamples=["assocalpha", "unspecified"], tile=(16, 16),
              compression="lzw")
    tiff_case("tiff-bigtiff", scaled(H, W, np.uint16, 3), ["R", "G", "B"], photometric="rgb",
              bigtiff=True, compression="zlib", rowsperstrip=10)
    tiff_case("tiff-resolution", scaled(H, W, np.uint8, 3), photometric="rgb",
              resolution=(300, 300), resolutionunit="INCH", description="hello", metadata=None,
              expect={"XResolution": 300.0, "YResolution": 300.0, "ResolutionUnit": "in",
                        "ImageDescription": "hello"})

    # Gray below 8 bits and white-is-zero gray: tifffile reads the stored numbers;
    # OpenImageIO (and the import) scale them to 0..255 and invert white-is-zero.
    for bits in (1, 2, 4):
        file = f"tiff-gray{bits}.tif"
        levels = RNG.integers(0, 2**bits, (H, W), dtype=np.uint8)
        tifffile.imwrite(str(OUT / file), levels, photometric="minisblack", bitspersample=bits,
                         rowsperstrip=9)
        stored = tifffile.imread(str(OUT / file)).astype(np.uint16)
        expected = (stored * 255 // (2**bits - 1)).astype(np.uint8)
        assert np.array_equal(expected, oiio_read(OUT / file, 0, "uint8")[:, :, 0])
        case(f"tiff-gray{bits}", file, {"Y": expected}, oiio_names(OUT / file))
    # (OpenImageIO inverts white-is-zero only up to 8 bits; the import inverts every
    # unsigned integer type, as the TIFF specification means it.)
    file = "tiff-miniswhite.tif"
    tifffile.imwrite(str(OUT / file), scaled(H, W, np.uint8), photometric="miniswhite",
                     compression="lzw", tile=(16, 16))
    expected = 255 - tifffile.imread(str(OUT / file))
    assert np.array_equal(expected, oiio_read(OUT / file, 0, "uint8")[:, :, 0])
    case("tiff-miniswhite", file, {"Y": expected}, oiio_names(OUT / file))

    smooth_rgb = (np.stack([smooth(H, W), smooth(H, W, 0.6), smooth(H, W, -0.5, 0.9)], axis=2)
                  * 255).astype(np.uint8)
    tiff_jpeg_case("tiff-jpeg-ycbcr-strips", smooth_rgb, photometric="rgb", rowsperstrip=16)
    tiff_jpeg_case("tiff-jpeg-ycbcr-tiles", smooth_rgb, photometric="rgb", tile=(16, 32))
    tiff_jpeg_case("tiff-jpeg-gray", smooth_rgb[:, :, 1], photometric="minisblack", rowsperstrip=8)

    # Three pages of different sizes and types.
    file = "tiff-pages.tif"
    pages = [scaled(H, W, np.uint8), scaled(20, 30, np.float32, 3), scaled(9, 7, np.uint16)]
    with tifffile.TiffWriter(str(OUT / file)) as tif:
        for i, page in enumerate(pages):
            tif.write(page, photometric="rgb" if page.ndim == 3 else "minisblack",
                      compression=["lzw", "zlib", None][i])
    for p in range(3):
        names = oiio_names(OUT / file, p)
        case(f"tiff-page{p}", file, dict(zip(names, tiff_planes(OUT / file, p))), names, subimage=p,
             metadata={"oiio:subimages": 3})
    error_case("tiff-page-missing", file, "BadSubimage", subimage=3)

    tifffile.imwrite(str(OUT / "tiff-lzma.tif"), scaled(H, W, np.uint8), compression="lzma")
    error_case("tiff-lzma", "tiff-lzma.tif", "UnsupportedCompression")


# ---------------------------------------------------------------- PNG

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def adam7_passes(h, w):
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
        yield x0, y0, dx, dy


def pack_rows(rows, bits):
    """Pack gray samples of `bits` bits (< 8) into bytes, MSB first."""
    out = []
    for row in rows:
        per = 8 // bits
        padded = np.zeros(-(-len(row) // per) * per, np.uint8)
        padded[: len(row)] = row
        b = np.zeros(len(padded) // per, np.uint8)
        for k in range(per):
            b |= padded[k::per] << (8 - bits * (k + 1))
        out.append(b.tobytes())
    return out


def gray_png(pixels, bits, interlaced=False):
    """A gray PNG of `bits` bits per sample (1, 2, 4, 8 or 16), optionally Adam7."""
    h, w = pixels.shape

    def encode_rows(block):
        if bits < 8:
            return pack_rows(block, bits)
        if bits == 16:
            return [r.astype(">u2").tobytes() for r in block]
        return [r.astype(np.uint8).tobytes() for r in block]

    raw = b""
    if interlaced:
        for x0, y0, dx, dy in adam7_passes(h, w):
            sub = pixels[y0::dy, x0::dx]
            if sub.size:
                raw += b"".join(b"\0" + r for r in encode_rows(sub))
    else:
        raw = b"".join(b"\0" + r for r in encode_rows(pixels))
    ihdr = struct.pack(">IIBBBBB", w, h, bits, 0, 0, 0, 1 if interlaced else 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def trns16(path, key):
    """16-bit gray with a tRNS key as gray and alpha (Pillow reads no alpha for it)."""
    gray = np.asarray(Image.open(path)).astype(np.uint16)
    return np.stack([gray, np.where(gray == key, 0, 65535).astype(np.uint16)], axis=2)


def png_case(name, write, names_expected, read=None, metadata=None, conversions=()):
    file = f"{name}.png"
    write(OUT / file)
    names = oiio_names(OUT / file)
    assert names == names_expected, (name, names)
    data = read(OUT / file) if read else np.asarray(Image.open(OUT / file))
    planes = [data] if data.ndim == 2 else [data[:, :, c] for c in range(data.shape[2])]
    case(name, file, dict(zip(names, planes)), names, metadata=metadata or {},
         conversions=conversions)


def make_png():
    gray = scaled(H, W, np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a gray image")
    info.add_text("Comment", "compressed text", zip=True)
    info.add(b"gAMA", struct.pack(">I", 45455))
    png_case("png-gray", lambda p: Image.fromarray(gray).save(p, pnginfo=info), ["Y"],
             metadata={"Title": "a gray image", "Comment": "compressed text", "png:Gamma": 0.45455,
                       "source:format": "png"},
             conversions=[("float", "float32"), ("uint16", "uint16")])
    png_case("png-gray-alpha", lambda p: Image.fromarray(scaled(H, W, np.uint8, 2), "LA").save(p),
             ["Y", "A"])
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    png_case("png-rgb", lambda p: Image.fromarray(scaled(H, W, np.uint8, 3)).save(p, icc_profile=icc),
             ["R", "G", "B"], metadata={"ICCProfile:bytes": len(icc)})
    png_case("png-rgba", lambda p: Image.fromarray(scaled(H, W, np.uint8, 4)).save(p),
             ["R", "G", "B", "A"], conversions=[("float", "float32")])

    def palette(path, transparency):
        im = Image.fromarray(RNG.integers(0, 6, (H, W), dtype=np.uint8), "P")
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50, 9, 8, 7])
        if transparency:
            im.save(path, transparency=bytes([0, 128, 255, 255, 40]))
        else:
            im.save(path)

    png_case("png-palette", lambda p: palette(p, False), ["R", "G", "B"],
             read=lambda p: np.asarray(Image.open(p).convert("RGB")))
    png_case("png-palette-trns", lambda p: palette(p, True), ["R", "G", "B", "A"],
             read=lambda p: np.asarray(Image.open(p).convert("RGBA")))
    def palette4(path):
        im = Image.fromarray(RNG.integers(0, 16, (H, W), dtype=np.uint8), "P")
        im.putpalette(list(RNG.integers(0, 256, 48, dtype=np.uint8)))
        im.save(path, bits=4)

    png_case("png-palette-4bit", palette4, ["R", "G", "B"],
             read=lambda p: np.asarray(Image.open(p).convert("RGB")))
    png_case("png-gray16-trns",
             lambda p: Image.fromarray(scaled(H, W, np.uint16) // 16).save(p, transparency=100),
             ["Y", "A"], read=lambda p: trns16(p, 100))
    png_case("png-gray-trns", lambda p: Image.fromarray(gray).save(p, transparency=int(gray[0, 0])),
             ["Y", "A"], read=lambda p: np.asarray(Image.open(p).convert("LA")))
    png_case("png-rgb-trns", lambda p: Image.fromarray(scaled(H, W, np.uint8, 3)).save(p, transparency=(1, 2, 3)),
             ["R", "G", "B", "A"], read=lambda p: np.asarray(Image.open(p).convert("RGBA")))
    png_case("png-gray16", lambda p: Image.fromarray(scaled(H, W, np.uint16)).save(p), ["Y"],
             conversions=[("uint8", "uint8")])
    png_case("png-rgb16", lambda p: p.write_bytes(imagecodecs.png_encode(scaled(H, W, np.uint16, 3))),
             ["R", "G", "B"], read=lambda p: imagecodecs.png_decode(p.read_bytes()))
    png_case("png-bilevel", lambda p: Image.fromarray(gray > 128).save(p), ["Y"],
             read=lambda p: np.asarray(Image.open(p).convert("L")))
    for bits in (2, 4):
        levels = RNG.integers(0, 2**bits, (H, W), dtype=np.uint8)
        png_case(f"png-gray{bits}", lambda p, lv=levels, b=bits: p.write_bytes(gray_png(lv, b)), ["Y"])
    png_case("png-interlaced", lambda p: p.write_bytes(gray_png(gray, 8, interlaced=True)), ["Y"])
    levels = RNG.integers(0, 16, (H, W), dtype=np.uint8)
    png_case("png-interlaced-gray4", lambda p: p.write_bytes(gray_png(levels, 4, interlaced=True)), ["Y"])
    png_case("png-interlaced-gray16",
             lambda p: p.write_bytes(gray_png(scaled(H, W, np.uint16), 16, interlaced=True)), ["Y"],
             read=lambda p: imagecodecs.png_decode(p.read_bytes()))


# ---------------------------------------------------------------- JPEG

# zune-jpeg and libjpeg-turbo differ in the rounding of the inverse DCT and of chroma
# upsampling: by up to 3 levels on these images.
JPEG_TOLERANCE = 4.0


def make_jpeg():
    rgb = (np.stack([smooth(H, W), smooth(H, W, 0.7), smooth(H, W, -0.5, 0.8)], axis=2) * 255).astype(np.uint8)
    for name, kwargs in [("jpeg-rgb", {"quality": 90}),
                         ("jpeg-rgb-444", {"quality": 95, "subsampling": 0}),
                         ("jpeg-progressive", {"quality": 85, "progressive": True})]:
        file = f"{name}.jpg"
        Image.fromarray(rgb).save(OUT / file, **kwargs)
        data = np.asarray(Image.open(OUT / file))
        names = oiio_names(OUT / file)
        case(name, file, {n: data[:, :, c] for c, n in enumerate(names)}, names, JPEG_TOLERANCE,
             metadata={"source:format": "jpeg"},
             conversions=[("float", "float32", JPEG_TOLERANCE / 255)] if name == "jpeg-rgb" else ())
    file = "jpeg-gray.jpg"
    Image.fromarray(rgb[:, :, 0]).save(OUT / file, quality=90)
    case("jpeg-gray", file, {"Y": np.asarray(Image.open(OUT / file))}, oiio_names(OUT / file), JPEG_TOLERANCE)
    file = "jpeg-cmyk.jpg"
    cmyk = np.concatenate([rgb, rgb[:, :, :1] // 2], axis=2)
    Image.fromarray(cmyk, "CMYK").save(OUT / file, quality=95)
    # Pillow reads the inks back as written; OpenImageIO (and this library) turn them into
    # RGB as (255 - C) * (255 - K) / 255.
    inks = np.asarray(Image.open(OUT / file)).astype(np.float64)
    rgb_back = np.rint((255 - inks[:, :, :3]) * (255 - inks[:, :, 3:]) / 255).astype(np.uint8)
    names = oiio_names(OUT / file)
    case("jpeg-cmyk", file, {n: rgb_back[:, :, c] for c, n in enumerate(names)}, names, JPEG_TOLERANCE)


# ---------------------------------------------------------------- damaged and hostile files

def make_bad():
    good = {
        "exr": (OUT / "exr-zip.exr").read_bytes(),
        "tiff": (OUT / "tiff-u16-rgb-lzw-predictor.tif").read_bytes(),
        "png": (OUT / "png-rgb.png").read_bytes(),
        "jpeg": (OUT / "jpeg-rgb.jpg").read_bytes(),
    }
    ext = {"exr": "exr", "tiff": "tif", "png": "png", "jpeg": "jpg"}
    for fmt, data in good.items():
        for cut in (0.5, 0.9):
            file = f"bad-truncated-{int(cut * 100)}.{ext[fmt]}"
            (OUT / file).write_bytes(data[: int(len(data) * cut)])
            error_case(f"bad-truncated-{fmt}-{int(cut * 100)}", file, "Decode")
        file = f"bad-header-only.{ext[fmt]}"
        (OUT / file).write_bytes(data[:16])
        error_case(f"bad-header-only-{fmt}", file, "Decode")
    (OUT / "bad-magic.png").write_bytes(b"GIF89a" + good["png"][6:])
    error_case("bad-magic", "bad-magic.png", "UnknownFormat")
    (OUT / "bad-empty.exr").write_bytes(b"")
    error_case("bad-empty", "bad-empty.exr", "UnknownFormat")

    # A PNG claiming 2^31 - 1 x 2^31 - 1 pixels over a few bytes of data.
    ihdr = struct.pack(">IIBBBBB", 2**31 - 1, 2**31 - 1, 8, 2, 0, 0, 0)
    (OUT / "bad-huge.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))
    error_case("bad-huge-png", "bad-huge.png", "TooLarge")
    # A PNG of a plausible but large size whose pixel data ends at once.
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    (OUT / "bad-short.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))
    error_case("bad-short-png", "bad-short.png", "Decode")
    # A PNG whose pixel data fails its CRC.
    data = bytearray(good["png"])
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF
    (OUT / "bad-crc.png").write_bytes(bytes(data))
    error_case("bad-crc-png", "bad-crc.png", "Decode")
    # A TIFF claiming 4 billion rows in one uncompressed strip.
    tifffile.imwrite(str(OUT / "bad-huge.tif"), np.zeros((4, 4), np.uint8))
    data = bytearray((OUT / "bad-huge.tif").read_bytes())
    patch_tiff_entries(data, {257: 0xFFFFFFF0, 278: 0xFFFFFFF0})  # ImageLength, RowsPerStrip
    (OUT / "bad-huge.tif").write_bytes(bytes(data))
    error_case("bad-huge-tiff", "bad-huge.tif", "TooLarge")
    # OpenEXR headers claiming data windows of 2^29 (rows of 1 GiB) and 2^30 pixels (the
    # exr crate refuses the window).
    for side, error in [(2**29, "TooLarge"), (2**30, "Decode")]:
        data = bytearray(good["exr"])
        at = data.index(b"dataWindow\0box2i\0") + len(b"dataWindow\0box2i\0") + 4
        data[at: at + 16] = struct.pack("<iiii", 0, 0, side - 1, side - 1)
        file = f"bad-huge-{side}.exr"
        (OUT / file).write_bytes(bytes(data))
        error_case(f"bad-huge-exr-{side}", file, error)


def patch_tiff_entries(data, values):
    """Set tags of the first directory of a little-endian classic TIFF to LONG values."""
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        at = ifd + 2 + 12 * i
        (tag,) = struct.unpack_from("<H", data, at)
        if tag in values:
            struct.pack_into("<HHII", data, at, tag, 4, 1, values[tag])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    make_exr()
    make_tiff()
    make_png()
    make_jpeg()
    make_bad()
    (OUT / "manifest.json").write_text(json.dumps({"cases": CASES}, indent=1))


main()
