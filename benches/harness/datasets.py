"""Deterministic benchmark datasets, written once as raw little-endian C-order bytes.

Run in the peers venv (``photo_u8`` needs scikit-image's bundled photographs)::

    python datasets.py --workdir DIR [--quick] [--only NAME,...]

prints one JSON line: a list of ``{name, base, path, width, height, dtype}``. A dataset is
regenerated only when its ``.raw`` file or ``.json`` sidecar is missing, or when the sidecar's
``generator_version`` differs from ``GENERATOR_VERSION``.

``render_rows`` is also imported by the workers (``lazy_rss``); it needs only numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

GENERATOR_VERSION = 1

# name -> (width, height, dtype) for the full and the --quick sizes.
FULL = {
    "render_f32": (8192, 8192, "f32"),
    "render_f16": (8192, 8192, "f16"),
    "photo_u8": (8192, 8192, "u8"),
    "mask_f32": (16384, 16384, "f32"),
    "ids_u32": (8192, 8192, "u32"),
}
QUICK = {
    "render_f32": (2048, 2048, "f32"),
    "render_f16": (2048, 2048, "f16"),
    "photo_u8": (2048, 2048, "u8"),
    "mask_f32": (4096, 4096, "f32"),
    "ids_u32": (2048, 2048, "u32"),
}
NUMPY_DTYPES = {"f32": "<f4", "f16": "<f2", "u8": "u1", "u32": "<u4"}
BAND_ROWS = 512  # rows generated at a time, to bound memory


def dataset_name(base: str, quick: bool) -> str:
    return base + "_quick" if quick else base


def render_rows(width: int, height: int, first_row: int, rows: int, rng) -> np.ndarray:
    """Rows ``first_row .. first_row + rows`` of a render-like f32 image: smooth sin/cos
    gradients, a soft Gaussian light falloff and uniform noise in [-0.002, 0.002) drawn from
    ``rng`` (a numpy Generator)."""
    tau = np.float32(2 * np.pi)
    u = (np.arange(width, dtype=np.float32) / np.float32(width))[None, :]
    v = (np.arange(first_row, first_row + rows, dtype=np.float32) / np.float32(height))[:, None]
    du = u - np.float32(0.35)
    dv = v - np.float32(0.4)
    diagonal = np.cos(tau * np.float32(0.6) * u + tau * np.float32(0.9) * v)
    base = (
        np.float32(0.5)
        + np.float32(0.25) * np.sin(tau * np.float32(1.5) * u + np.float32(0.7)) * np.cos(tau * np.float32(1.1) * v)
        + np.float32(0.15) * diagonal
        + np.float32(0.1) * u
    )
    light = np.float32(0.8) * np.exp(-du * du / np.float32(0.08)) * np.exp(-dv * dv / np.float32(0.08))
    out = base + light
    out += rng.uniform(-0.002, 0.002, size=(rows, width)).astype(np.float32)
    return out.astype(np.float32, copy=False)


class RenderRows:
    """``render_rows`` computed one row at a time into a caller's buffer, with the column
    terms precomputed: temporaries stay at one row (for ``lazy_rss``, whose memory
    measurement should not see large numpy temporaries kept by the allocator). Same image
    model as ``render_rows``, different noise draws."""

    def __init__(self, width: int, height: int):
        tau = 2 * np.pi
        self.width, self.height = width, height
        u = np.arange(width, dtype=np.float64) / width
        du = u - 0.35
        f32 = np.float32
        self.sx = np.sin(tau * 1.5 * u + 0.7).astype(f32)
        self.cx = np.cos(tau * 0.6 * u).astype(f32)
        self.sxx = np.sin(tau * 0.6 * u).astype(f32)
        self.lx = (0.8 * np.exp(-du * du / 0.08)).astype(f32)
        self.u = (0.1 * u + 0.5).astype(f32)
        self.tmp = np.empty(width, f32)
        self.noise = np.empty(width, np.float64)

    def fill(self, out: np.ndarray, first_row: int, rng) -> None:
        tau = 2 * np.pi
        for r in range(out.shape[0]):
            v = (first_row + r) / self.height
            dv = v - 0.4
            row, tmp = out[r], self.tmp
            np.multiply(self.sx, np.float32(0.25 * np.cos(tau * 1.1 * v)), out=row)
            np.multiply(self.cx, np.float32(0.15 * np.cos(tau * 0.9 * v)), out=tmp)
            row += tmp
            np.multiply(self.sxx, np.float32(-0.15 * np.sin(tau * 0.9 * v)), out=tmp)
            row += tmp
            np.multiply(self.lx, np.float32(np.exp(-dv * dv / 0.08)), out=tmp)
            row += tmp
            row += self.u
            rng.random(out=self.noise)
            self.noise *= 0.004
            self.noise -= 0.002
            row += self.noise.astype(np.float32)


def gen_render(width: int, height: int, out_f32, out_f16) -> None:
    rng = np.random.default_rng(20240601)
    for y in range(0, height, BAND_ROWS):
        rows = min(BAND_ROWS, height - y)
        band = render_rows(width, height, y, rows, rng)
        if out_f32 is not None:
            out_f32.write(band.astype("<f4", copy=False).tobytes())
        if out_f16 is not None:
            out_f16.write(band.astype("<f2").tobytes())


def gen_photo(width: int, height: int, out) -> None:
    from skimage import data  # bundled with the package: no download

    tile = data.camera()  # 512 x 512 greyscale uint8 photograph
    th, tw = tile.shape
    rng = np.random.default_rng(7)
    variants = [tile, tile[:, ::-1], tile[::-1, :], tile[::-1, ::-1]]
    img = np.empty((height, width), np.uint8)
    for ty in range(0, height, th):
        for tx in range(0, width, tw):
            t = variants[int(rng.integers(4))]
            t = np.roll(t, (int(rng.integers(th)), int(rng.integers(tw))), axis=(0, 1))
            h = min(th, height - ty)
            w = min(tw, width - tx)
            img[ty : ty + h, tx : tx + w] = t[:h, :w]
    out.write(img.tobytes())


def gen_mask(width: int, height: int, out) -> None:
    block = max(1, min(width, height) // 16)  # 1024 at 16384², 256 at 4096²
    rng = np.random.default_rng(11)
    by = int(rng.integers(0, height - block + 1))
    bx = int(rng.integers(0, width - block + 1))
    for y in range(0, height, BAND_ROWS):
        rows = min(BAND_ROWS, height - y)
        band = np.zeros((rows, width), "<f4")
        lo, hi = max(y, by), min(y + rows, by + block)
        if lo < hi:
            band[lo - y : hi - y, bx : bx + block] = 1.0
        out.write(band.tobytes())


def hash32(x: np.ndarray) -> np.ndarray:
    """murmur3's fmix32 finaliser on uint32 values."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def gen_ids(width: int, height: int, out, nseeds: int = 2000, tile: int = 128) -> None:
    """Voronoi regions of ``nseeds`` seeded random points, exact nearest-seed labels per
    pixel (ties to the lower index), label = 32-bit hash of the region index."""
    rng = np.random.default_rng(99)
    sx = rng.uniform(0, width, nseeds)
    sy = rng.uniform(0, height, nseeds)
    ids = hash32(np.arange(nseeds, dtype=np.uint32) * np.uint32(2654435761) + np.uint32(12345))
    for y0 in range(0, height, tile):
        y1 = min(height, y0 + tile)
        band = np.empty((y1 - y0, width), "<u4")
        py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
        for x0 in range(0, width, tile):
            x1 = min(width, x0 + tile)
            # Box distances: a seed can be nearest to some pixel of the tile only if its
            # nearest possible distance is <= the smallest farthest distance of any seed.
            dx_min = np.maximum(0, np.maximum(x0 - sx, sx - x1))
            dy_min = np.maximum(0, np.maximum(y0 - sy, sy - y1))
            dmin = dx_min * dx_min + dy_min * dy_min
            dx_max = np.maximum(np.abs(sx - x0), np.abs(sx - x1))
            dy_max = np.maximum(np.abs(sy - y0), np.abs(sy - y1))
            dmax = dx_max * dx_max + dy_max * dy_max
            cand = np.nonzero(dmin <= dmax.min())[0]  # ascending indices
            px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
            best = np.full((y1 - y0, x1 - x0), np.inf)
            label = np.zeros((y1 - y0, x1 - x0), np.int64)
            for k in cand:
                d = (px - sx[k]) ** 2 + (py - sy[k]) ** 2
                better = d < best
                best = np.where(better, d, best)
                label = np.where(better, k, label)
            band[:, x0:x1] = ids[label]
        out.write(band.tobytes())


def generate(base: str, width: int, height: int, dtype: str, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        if base == "render_f32":
            gen_render(width, height, f, None)
        elif base == "render_f16":
            gen_render(width, height, None, f)
        elif base == "photo_u8":
            gen_photo(width, height, f)
        elif base == "mask_f32":
            gen_mask(width, height, f)
        elif base == "ids_u32":
            gen_ids(width, height, f)
        else:
            raise ValueError(base)
    size = os.path.getsize(tmp)
    expect = width * height * np.dtype(NUMPY_DTYPES[dtype]).itemsize
    if size != expect:
        raise RuntimeError(f"{base}: wrote {size} bytes, expected {expect}")
    os.replace(tmp, path)


def ensure(workdir: str, quick: bool, only: list[str] | None) -> list[dict]:
    datadir = os.path.join(workdir, "data")
    os.makedirs(datadir, exist_ok=True)
    table = QUICK if quick else FULL
    result = []
    for base, (w, h, dt) in table.items():
        if only and base not in only:
            continue
        name = dataset_name(base, quick)
        raw = os.path.join(datadir, name + ".raw")
        side = os.path.join(datadir, name + ".json")
        meta = {"width": w, "height": h, "dtype": dt, "generator_version": GENERATOR_VERSION}
        current = None
        if os.path.exists(side):
            with open(side) as f:
                current = json.load(f)
        if current != meta or not os.path.exists(raw):
            t0 = time.perf_counter()
            print(f"datasets: generating {name} ({w}x{h} {dt})", file=sys.stderr, flush=True)
            generate(base, w, h, dt, raw)
            with open(side, "w") as f:
                json.dump(meta, f)
            print(f"datasets: {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        result.append({"name": name, "base": base, "path": os.path.abspath(raw), "width": w, "height": h, "dtype": dt})
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    only = [s for s in a.only.split(",") if s] or None
    print(json.dumps(ensure(a.workdir, a.quick, only)))


if __name__ == "__main__":
    main()
