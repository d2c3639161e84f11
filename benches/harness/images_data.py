"""The image files of the image-file benchmark (images.py), written by writers independent
of this repository: OpenEXR's own Python bindings (`OpenEXR.File`), tifffile and Pillow.

    python images_data.py --workdir DIR [--quick] [--only NAME,...]

Runs in the peers venv (numpy, OpenEXR, tifffile, Pillow). Writes each file once under
``DIR/images`` (``DIR/images-quick`` with --quick), under a temporary name renamed into place,
with a JSON sidecar; a file is rewritten when it or its sidecar is missing or when
``GENERATOR_VERSION`` or its parameters changed. Prints one JSON line on stdout: the list of
datasets (name, path, kind, width, height, channels with their numpy dtypes, the dtype that
compressed-image 1.0.1's ``Image.read`` is given, raw bytes, file bytes).

Pixels look like a rendered frame: smooth sin/cos gradients, a soft light, objects with
hard edges (discs and boxes of their own shade, depth and normal), and noise of about 1 % in
the colour channels (0.1 % in depth and normals), from a seeded generator, band by band.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

GENERATOR_VERSION = 2
BAND_ROWS = 512
SEED = 20241202

# name -> (kind, side of the full-size file, side with --quick, layout, compression)
DATASETS = {
    "exr-rgba-half-zip": ("exr", 8192, 1024, "rgba-half", "zip"),
    "exr-rgba-half-piz": ("exr", 8192, 1024, "rgba-half", "piz"),
    "exr-8ch-zip": ("exr", 8192, 1024, "8ch", "zip"),
    "exr-8ch-piz": ("exr", 8192, 1024, "8ch", "piz"),
    "tiff-rgb-u16": ("tiff", 8192, 1024, "rgb-u16", "deflate"),
    "png-rgba-u8": ("png", 8192, 1024, "rgba-u8", "deflate"),
    # The memory case: 2 GiB of pixels (16384² RGBA half).
    "exr-rgba-half-zip-16k": ("exr", 16384, 2048, "rgba-half", "zip"),
}

# layout -> [(channel name, numpy dtype)], in the order the file stores them
LAYOUTS = {
    "rgba-half": [("R", "float16"), ("G", "float16"), ("B", "float16"), ("A", "float16")],
    "8ch": [("R", "float16"), ("G", "float16"), ("B", "float16"), ("A", "float16"), ("Z", "float32"),
            ("N.x", "float32"), ("N.y", "float32"), ("N.z", "float32")],
    "rgb-u16": [("R", "uint16"), ("G", "uint16"), ("B", "uint16")],
    "rgba-u8": [("R", "uint8"), ("G", "uint8"), ("B", "uint8"), ("A", "uint8")],
}

# The one dtype given to `Image.read` (compressed-image 1.0.1 and ours): what OpenImageIO
# merges the channels' types to (float16 with float32 gives float32).
READ_DTYPE = {"rgba-half": "float16", "8ch": "float32", "rgb-u16": "uint16", "rgba-u8": "uint8"}

EXTENSIONS = {"exr": "exr", "tiff": "tif", "png": "png"}

# (centre x, centre y, radius, shade, depth) of the discs; (x0, y0, x1, y1, shade, depth)
# of the boxes, in units of the image side
DISCS = [(0.30, 0.62, 0.16, 0.85, 4.0), (0.72, 0.30, 0.10, 0.25, 6.0), (0.55, 0.80, 0.07, 0.55, 3.0)]
BOXES = [(0.05, 0.08, 0.38, 0.30, 0.15, 8.0), (0.60, 0.55, 0.95, 0.70, 0.65, 5.0)]


def band(width: int, height: int, y0: int, rows: int) -> dict[str, np.ndarray]:
    """Rows y0 .. y0 + rows of every channel, as float32: colour in about [0, 1.2], alpha
    in [0, 1], depth in about [3, 20], normals in [-1, 1]."""
    y = (np.arange(y0, y0 + rows, dtype=np.float32) / height)[:, None]
    x = (np.arange(width, dtype=np.float32) / width)[None, :]
    rng = np.random.default_rng([SEED, y0])
    two_pi = np.float32(2 * np.pi)
    gradient = 0.45 + 0.2 * np.sin(two_pi * (1.3 * x + 0.2)) * np.cos(two_pi * (0.9 * y - 0.1))
    light = 0.6 * np.exp(-((x - 0.62) ** 2 + (y - 0.35) ** 2) / np.float32(0.03))
    shade = gradient + light
    depth = 12.0 + 8.0 * y + 0.5 * np.sin(two_pi * 3 * x)
    alpha = np.full((rows, width), 0.0, dtype=np.float32)
    nx = 0.3 * np.sin(two_pi * 2 * x) + 0 * y
    ny = 0.3 * np.cos(two_pi * 2 * y) + 0 * x
    for x0, y_0, x1, y1, s, d in BOXES:
        inside = (x >= x0) & (x < x1) & (y >= y_0) & (y < y1)
        shade = np.where(inside, s + 0.3 * light, shade)
        depth = np.where(inside, d + 0.2 * x, depth)
        alpha = np.where(inside, 1.0, alpha)
        nx = np.where(inside, 0.0, nx)
        ny = np.where(inside, 0.0, ny)
    for cx, cy, r, s, d in DISCS:
        dx, dy = (x - cx) / r, (y - cy) / r
        d2 = dx * dx + dy * dy
        inside = d2 < 1.0
        bulge = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
        shade = np.where(inside, s * (0.4 + 0.6 * bulge) + 0.5 * light, shade)
        depth = np.where(inside, d - bulge, depth)
        alpha = np.where(inside, 1.0, alpha)
        nx = np.where(inside, dx, nx)
        ny = np.where(inside, dy, ny)
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    out = {}
    for name, tint in (("R", 1.0), ("G", 0.85), ("B", 0.7)):
        out[name] = shade * tint + np.float32(0.01) * rng.standard_normal((rows, width), dtype=np.float32)
    out["A"] = alpha
    for name, value in (("Z", depth), ("N.x", nx), ("N.y", ny), ("N.z", nz)):
        value = np.broadcast_to(value, (rows, width))
        out[name] = value + np.float32(0.001) * rng.standard_normal((rows, width), dtype=np.float32)
    return out


def typed(values: np.ndarray, dtype: str) -> np.ndarray:
    """float values as `dtype`: floats as they are, integers scaled from [0, 1]."""
    if dtype.startswith("float"):
        return values.astype(dtype)
    top = np.iinfo(dtype).max
    return np.rint(np.clip(values, 0.0, 1.0) * top).astype(dtype)


def pixels(layout: str, side: int) -> dict[str, np.ndarray]:
    """Every channel of `layout`, side × side, filled band by band."""
    channels = LAYOUTS[layout]
    planes = {name: np.empty((side, side), dtype=dt) for name, dt in channels}
    for y0 in range(0, side, BAND_ROWS):
        rows = min(BAND_ROWS, side - y0)
        values = band(side, side, y0, rows)
        for name, dt in channels:
            planes[name][y0:y0 + rows] = typed(values[name], dt)
    return planes


def write_exr(path: str, planes: dict[str, np.ndarray], compression: str) -> None:
    import OpenEXR

    header = {
        "compression": {"zip": OpenEXR.ZIP_COMPRESSION, "piz": OpenEXR.PIZ_COMPRESSION}[compression],
        "type": OpenEXR.scanlineimage,
    }
    with OpenEXR.File(header, planes) as f:
        f.write(path)


def write_tiff(path: str, planes: dict[str, np.ndarray]) -> None:
    import tifffile

    rgb = np.stack([planes[c] for c in ("R", "G", "B")], axis=-1)
    # Deflate (code 8, as libtiff writes it) with the horizontal predictor, 16 rows (768 KiB of
    # a 8192-wide image) a strip.
    tifffile.imwrite(path, rgb, photometric="rgb", compression="adobe_deflate", predictor=True, rowsperstrip=16,
                     maxworkers=os.cpu_count())


def write_png(path: str, planes: dict[str, np.ndarray]) -> None:
    from PIL import Image

    rgba = np.stack([planes[c] for c in ("R", "G", "B", "A")], axis=-1)
    Image.fromarray(rgba).save(path, compress_level=6)


def params(name: str, quick: bool) -> dict:
    kind, side, quick_side, layout, compression = DATASETS[name]
    return {"generator_version": GENERATOR_VERSION, "kind": kind, "width": quick_side if quick else side,
            "height": quick_side if quick else side, "layout": layout, "compression": compression}


def ensure(name: str, directory: str, quick: bool) -> dict:
    p = params(name, quick)
    path = os.path.join(directory, f"{name}.{EXTENSIONS[p['kind']]}")
    sidecar = path + ".json"
    if os.path.exists(path) and os.path.exists(sidecar):
        with open(sidecar) as f:
            if json.load(f).get("params") == p:
                return describe(name, path, p)
    print(f"generating {os.path.basename(path)} ({p['width']}x{p['height']})", file=sys.stderr, flush=True)
    planes = pixels(p["layout"], p["width"])
    temp = os.path.join(directory, f".tmp-{name}.{EXTENSIONS[p['kind']]}")
    if p["kind"] == "exr":
        write_exr(temp, planes, p["compression"])
    elif p["kind"] == "tiff":
        write_tiff(temp, planes)
    else:
        write_png(temp, planes)
    del planes
    os.replace(temp, path)
    with open(sidecar, "w") as f:
        json.dump({"params": p}, f)
    return describe(name, path, p)


def describe(name: str, path: str, p: dict) -> dict:
    channels = LAYOUTS[p["layout"]]
    raw = sum(np.dtype(dt).itemsize for _, dt in channels) * p["width"] * p["height"]
    return {"name": name, "path": path, "kind": p["kind"], "width": p["width"], "height": p["height"],
            "layout": p["layout"], "compression": p["compression"],
            "channels": [{"name": n, "dtype": dt} for n, dt in channels],
            "read_dtype": READ_DTYPE[p["layout"]], "raw_bytes": raw, "file_bytes": os.path.getsize(path)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    directory = os.path.join(a.workdir, "images-quick" if a.quick else "images")
    os.makedirs(directory, exist_ok=True)
    names = [n for n in a.only.split(",") if n] or list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        ap.error(f"unknown datasets {unknown}; known: {', '.join(DATASETS)}")
    print(json.dumps([ensure(n, directory, a.quick) for n in names]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
