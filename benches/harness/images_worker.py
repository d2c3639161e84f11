"""Python worker of the image-file benchmark (images.py): one import or export, one JSON line.

    python images_worker.py --system S --input PATH [--output PATH] --threads N --dtype D

prints ``{"system", "threads", "seconds", "extra"}`` and exits 0; an error gives a traceback on
stderr and exit 1. ``seconds`` is the timed call alone (imports done before); ``extra`` holds
``baseline_rss_bytes`` (VmRSS before the call) and ``vm_hwm_bytes`` (the peak, VmHWM, after it).

Systems (the module ``compressed_image`` is compressed-image 1.0.1 in the peers venv and this
repository's module in .venv; every system uses the default compression settings: LZ4 level
9, 32 KiB blocks, 4 MiB chunks):

- ``oiio-read``: OpenImageIO's wheel reads the whole file into one numpy array,
  ``ImageInput.open(path, config)`` then ``read_image`` in the file's own format
  (``spec.format``), with ``OpenImageIO.attribute("threads", N)`` and ``attribute("exr_threads",
  N)``; ``config`` sets ``oiio:UnassociatedAlpha`` so that the pixels are as stored, as ours
  imports them (by default OpenImageIO multiplies colour by a PNG's or TIFF's alpha).
- ``oiio-write``: the same read (not timed), then OpenImageIO writes those pixels to
  ``--output`` (the format from its extension; OpenEXR ZIP, TIFF Deflate, PNG), each channel in
  the file's own type; timed: create, open, ``write_image``, close and ``os.fsync``.
- ``ci101-read``: compressed-image 1.0.1 ``Image.read(dtype, path, 0)``.
- ``ours-read``: ours ``Image.read(dtype, path, 0)``.
- ``ours-native``: ours ``Image.read_native(path)`` (each channel of its own type).
- ``ours-native-file``: ours ``Image.read_native(path, path=OUTPUT)`` into a named file;
  timed: the call and dropping the image.

Neither compressed-image's ``Image.read`` has a thread argument: they use the CPUs the process
may run on (images.py limits them to N; 1.0.1 sizes its pools by the machine's CPU count
whatever the affinity, so its threads share the N CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

perf = time.perf_counter


def status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return -1


def oiio_module(threads: int):
    import OpenImageIO as oiio

    oiio.attribute("threads", threads)
    oiio.attribute("exr_threads", threads)
    return oiio


def oiio_read(oiio, path: str):
    """(pixels, spec) of the whole file, in the file's own format, alpha as stored (like ours:
    OpenImageIO would multiply colour by unassociated alpha by default)."""
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(path, config)
    if inp is None:
        raise RuntimeError(f"OpenImageIO cannot open {path}: {oiio.geterror()}")
    spec = inp.spec()
    pixels = inp.read_image(0, 0, 0, spec.nchannels, spec.format)
    if pixels is None:
        raise RuntimeError(f"OpenImageIO cannot read {path}: {inp.geterror()}")
    inp.close()
    return pixels, spec


def oiio_write(oiio, path: str, pixels, spec) -> None:
    out = oiio.ImageOutput.create(path)
    if out is None:
        raise RuntimeError(f"OpenImageIO has no writer for {path}: {oiio.geterror()}")
    target = oiio.ImageSpec(spec.width, spec.height, spec.nchannels, spec.format)
    target.channelnames = spec.channelnames
    if len(spec.channelformats):
        target.channelformats = spec.channelformats
    if spec.get_int_attribute("oiio:UnassociatedAlpha"):
        target.attribute("oiio:UnassociatedAlpha", 1)  # the pixels are as stored: write them so
    if not path.endswith(".png"):
        target.attribute("compression", "zip")  # OpenEXR ZIP; TIFF Deflate (with the predictor)
    if not out.open(path, target):
        raise RuntimeError(f"OpenImageIO cannot create {path}: {out.geterror()}")
    if not out.write_image(pixels):
        raise RuntimeError(f"OpenImageIO cannot write {path}: {out.geterror()}")
    out.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def measure(a) -> tuple[float, dict]:
    """(seconds, extra) of the system's call."""
    extra: dict = {}
    if a.system in ("oiio-read", "oiio-write"):
        oiio = oiio_module(a.threads)
        if a.system == "oiio-read":
            extra["baseline_rss_bytes"] = status_bytes("VmRSS:")
            t0 = perf()
            pixels, spec = oiio_read(oiio, a.input)
            seconds = perf() - t0
        else:
            pixels, spec = oiio_read(oiio, a.input)
            extra["baseline_rss_bytes"] = status_bytes("VmRSS:")
            t0 = perf()
            oiio_write(oiio, a.output, pixels, spec)
            seconds = perf() - t0
            extra["output_bytes"] = os.path.getsize(a.output)
        extra["array_dtype"] = str(pixels.dtype)
        extra["oiio_version"] = oiio.__version__
        return seconds, extra

    import compressed_image as ci

    dtype = np.dtype(a.dtype)
    extra["baseline_rss_bytes"] = status_bytes("VmRSS:")
    t0 = perf()
    if a.system in ("ci101-read", "ours-read"):
        image = ci.Image.read(dtype, a.input, 0)
    elif a.system == "ours-native":
        image = ci.Image.read_native(a.input)
    elif a.system == "ours-native-file":
        image = ci.Image.read_native(a.input, path=a.output)
        del image
        image = None
    else:
        raise SystemExit(f"unknown --system {a.system}")
    seconds = perf() - t0
    if image is not None:
        extra["shape"] = list(image.shape)  # (channels, height, width), in both modules
    return seconds, extra


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--dtype", required=True, help="numpy dtype given to Image.read")
    a = ap.parse_args()
    seconds, extra = measure(a)
    extra["vm_hwm_bytes"] = status_bytes("VmHWM:")
    print(json.dumps({"system": a.system, "threads": a.threads, "seconds": seconds, "extra": extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
