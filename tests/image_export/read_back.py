"""Independent readers of the files the export writes, and independent writers of the files
it starts from.

Usage:
  read_back.py read REQUEST.json RESULT.json
      REQUEST: {"files": [{"path": ..., "reader": ..., "out": PREFIX}, ...]}; each file is
      read with its reader and every channel saved as PREFIX.<k>.raw (little-endian,
      row-major). RESULT: {"files": [{"width", "height", "channels": [{"name", "dtype",
      "data"}], "attributes": {...}}, ...]}.
      Readers: "openexr" (OpenEXR's Python bindings; channels in the file's sorted order,
      header attributes as JSON), "oiio" (OpenImageIO; channels in its presented order,
      each in its own type, alpha as stored; attributes: the data and display windows and
      the spec's extra attributes), "tifffile" (samples as stored; attributes: photometric, extrasamples,
      compression, predictor, bitspersample, bigtiff), "pillow" (its mode as an
      attribute).
  read_back.py make OUT_DIR
      Source files for read -> write -> read round trips, written by OpenEXR, OpenImageIO,
      Pillow and tifffile.
  read_back.py encode REQUEST.json
      REQUEST: {"width", "height", "compression": "pxr24" | "b44" | ..., "channels":
      [{"name", "dtype", "data"}], "out": PATH}: the raw planes written as a scanline
      OpenEXR file by OpenEXR itself, for comparing what lossy compressions lose.
  read_back.py preview REQUEST.json
      REQUEST: {"width", "height", "out_width", "out_height", "channels": [{"data",
      "dtype", "alpha"}], "out": PATH}: the expected 8-bit preview of the raw planes by an
      area-weighted box filter in numpy (see src/export/preview.rs), saved as raw
      interleaved samples at PATH.

The Rust tests (tests/image_export.rs) compare what they read.
"""

import json
import sys
from pathlib import Path

import numpy as np
import OpenEXR
import OpenImageIO as oiio
import tifffile
from PIL import Image


def save_raw(path, array):
    array = np.ascontiguousarray(array)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    Path(path).write_bytes(array.tobytes())
    return str(path)


def jsonable(value):
    """An attribute value as JSON: arrays as lists, windows as [x0, y0, x1, y1], enums by
    name."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, np.ndarray) for v in value):
        return [int(v) for v in np.concatenate(value)]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "name"):
        return value.name
    return str(value)


def read_openexr(path):
    f = OpenEXR.File(str(path), separate_channels=True)
    header = f.parts[0].header
    planes = [(n, c.pixels) for n, c in f.parts[0].channels.items()]
    attributes = {k: jsonable(v) for k, v in header.items() if k != "channels"}
    return planes, attributes


def read_oiio(path):
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # as stored, never premultiplied
    inp = oiio.ImageInput.open(str(path), config)
    assert inp, oiio.geterror()
    spec = inp.spec()
    planes = []
    for c, name in enumerate(spec.channelnames):
        fmt = spec.channelformat(c)
        pixels = inp.read_image(0, 0, c, c + 1, fmt)
        assert pixels is not None, inp.geterror()
        planes.append((name, pixels.reshape(spec.height, spec.width)))
    attributes = {
        "dataWindow": [spec.x, spec.y, spec.x + spec.width - 1, spec.y + spec.height - 1],
        "displayWindow": [spec.full_x, spec.full_y, spec.full_x + spec.full_width - 1,
                          spec.full_y + spec.full_height - 1],
    }
    for attribute in spec.extra_attribs:
        attributes[attribute.name] = jsonable(attribute.value)
    inp.close()
    return planes, attributes


def planes_of(array):
    if array.ndim == 2:
        return [("0", array)]
    return [(str(k), array[:, :, k]) for k in range(array.shape[2])]


def read_tifffile(path):
    with tifffile.TiffFile(str(path)) as tif:
        page = tif.pages[0]
        array = page.asarray()
        attributes = {
            "photometric": page.photometric.name,
            "extrasamples": [int(e) for e in page.extrasamples],
            "compression": page.compression.name,
            "predictor": int(page.predictor),
            "bitspersample": int(page.bitspersample),
            "bigtiff": bool(tif.is_bigtiff),
        }
    return planes_of(array), attributes


def read_pillow(path):
    with Image.open(str(path)) as img:
        img.load()
        return planes_of(np.array(img)), {"mode": img.mode, "size": list(img.size)}


READERS = {
    "openexr": read_openexr,
    "oiio": read_oiio,
    "tifffile": read_tifffile,
    "pillow": read_pillow,
}


def read(request_path, result_path):
    request = json.loads(Path(request_path).read_text())
    results = []
    for item in request["files"]:
        planes, attributes = READERS[item["reader"]](item["path"])
        height, width = planes[0][1].shape
        channels = [
            {"name": name, "dtype": str(plane.dtype),
             "data": save_raw(f"{item['out']}.{k}.raw", plane)}
            for k, (name, plane) in enumerate(planes)
        ]
        results.append({"width": width, "height": height, "channels": channels,
                        "attributes": attributes})
    Path(result_path).write_text(json.dumps({"files": results}))


def make(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261203)
    h, w = 45, 67
    y, x = np.mgrid[0:h, 0:w]
    smooth = 0.5 + 0.4 * np.sin(x / 7.0 + y / 11.0)
    header = {
        "compression": OpenEXR.ZIP_COMPRESSION,
        "type": OpenEXR.scanlineimage,
        "dataWindow": (np.array([10, -20], np.int32), np.array([10 + w - 1, -20 + h - 1], np.int32)),
        "displayWindow": (np.array([0, 0], np.int32), np.array([99, 79], np.int32)),
        "pixelAspectRatio": 2.0,
        "owner": "Jane Doe",
        "comments": "a test image",
        "myFloat": 1.5,
        "myInt": 7,
        "myVector": np.array([0.25, -3.0], np.float32),
    }
    channels = {
        "R": smooth.astype(np.float16),
        "G": (2 * smooth).astype(np.float16),
        "B": (1 - smooth).astype(np.float16),
        "A": (0.5 * smooth).astype(np.float16),
        "Z": (1000 * smooth + rng.random((h, w))).astype(np.float32),
        "id": rng.integers(0, 2**32, (h, w), dtype=np.uint32),
        "diffuse.R": rng.random((h, w)).astype(np.float32),
        "diffuse.G": rng.random((h, w)).astype(np.float16),
    }
    OpenEXR.File(header, channels).write(str(out / "attributes.exr"))

    rgba16 = rng.integers(0, 2**16, (h, w, 4), dtype=np.uint16)
    spec = oiio.ImageSpec(w, h, 4, "uint16")
    output = oiio.ImageOutput.create(str(out / "rgba16.png"))
    assert output.open(str(out / "rgba16.png"), spec), output.geterror()
    assert output.write_image(rgba16), output.geterror()
    output.close()

    Image.fromarray(rng.integers(0, 256, (h, w, 2), dtype=np.uint8), "LA").save(out / "gray-alpha.png")
    tifffile.imwrite(out / "rgb16.tif", rng.integers(0, 2**16, (h, w, 3), dtype=np.uint16),
                     photometric="rgb", compression="zlib")
    tifffile.imwrite(out / "rgba8.tif", rng.integers(0, 256, (h, w, 4), dtype=np.uint8),
                     photometric="rgb", extrasamples=["unassalpha"])
    (out / "ready").write_text("")


def encode(request_path):
    request = json.loads(Path(request_path).read_text())
    h, w = request["height"], request["width"]
    channels = {
        c["name"]: np.frombuffer(Path(c["data"]).read_bytes(),
                                 np.dtype(c["dtype"]).newbyteorder("<")).reshape(h, w)
        for c in request["channels"]
    }
    compression = getattr(OpenEXR, request["compression"].upper() + "_COMPRESSION")
    header = {"compression": compression, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, channels).write(request["out"])


def box_weights(src, dst):
    """weights[X, x]: the share of source pixel x in output pixel X."""
    weights = np.zeros((dst, src))
    for x in range(src):
        start, end = x * dst, (x + 1) * dst
        for X in range(start // src, (end - 1) // src + 1):
            overlap = min(end, (X + 1) * src) - max(start, X * src)
            weights[X, x] = overlap / src
    return weights


def srgb(v):
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def preview(request_path):
    request = json.loads(Path(request_path).read_text())
    h, w = request["height"], request["width"]
    wy = box_weights(h, request["out_height"])
    wx = box_weights(w, request["out_width"])
    samples = []
    for channel in request["channels"]:
        dtype = np.dtype(channel["dtype"]).newbyteorder("<")
        plane = np.frombuffer(Path(channel["data"]).read_bytes(), dtype).reshape(h, w)
        if np.issubdtype(dtype, np.integer):
            values = plane.astype(np.float64) / np.iinfo(dtype).max
        else:
            values = np.nan_to_num(plane.astype(np.float64), nan=0.0)
        mean = np.clip(wy @ values @ wx.T, 0.0, 1.0)
        if np.issubdtype(dtype, np.floating) and not channel["alpha"]:
            mean = srgb(mean)
        samples.append(np.floor(mean * 255 + 0.5).astype(np.uint8))
    save_raw(request["out"], np.stack(samples, axis=-1))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "read":
        read(sys.argv[2], sys.argv[3])
    elif command == "make":
        make(sys.argv[2])
    elif command == "encode":
        encode(sys.argv[2])
    elif command == "preview":
        preview(sys.argv[2])
    else:
        sys.exit(f"unknown command {command}")
