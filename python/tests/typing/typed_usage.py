"""Typed use of compressed_image, checked with `mypy --strict` by test_typing.py.

The functions return from inside `with` blocks: that type-checks only because the stubs
declare `__exit__` as never suppressing exceptions (`Literal[False]`, not `bool`).
"""

from typing import Any, List, Optional

import numpy as np
import numpy.typing as npt

from compressed_image import Channel, Codec, Image


def first_chunk(path: str) -> npt.NDArray[np.float32]:
    with Channel.open(path, read_only=True) as channel:
        return channel.get_chunk(0)


def names_and_dtypes(path: str) -> List[str]:
    with Image.open(path, read_only=True) as image:
        return [f"{name}: {dtype}" for name, dtype in zip(image.get_channel_names(), image.dtypes)]


def single_dtype(path: str) -> Optional[np.dtype[np.generic]]:
    with Image.open(path) as image:
        return image.dtype


def make_mixed(path: str) -> int:
    luma = np.zeros((4, 8), np.float16)
    ids = np.arange(32, dtype=np.uint32)
    image = Image([np.float16, np.uint32], [luma, ids], 8, 4, ["luma", "id"], Codec.zstd)
    image.save(path)
    channel = image["id"]
    channel.update_nthreads(4)
    return channel.nthreads + image.num_channels


def read_image_files(exr: str, png: str, out: str) -> List[str]:
    # the three forms of 1.0.1's Image.read, settings by position and by keyword
    beauty = Image.read(np.float16, exr, 0, ["R", "G", "B"], Codec.zstd, 5)
    depth = Image.read(np.float32, exr, 0, channel_indices=[4], chunk_size=1 << 20, path=out)
    gray = Image.read(np.uint8, png, 0, Codec.lz4, 9, 32768, 4194304)

    def scale(file_channel: int, chunk: npt.NDArray[Any]) -> Optional[npt.NDArray[Any]]:
        chunk *= 2
        return None

    native = Image.read_native(exr, 1, channel_names=["Y", "id"], postprocess=scale)
    dtypes = Image.dtypes_from_file(exr) + [Image.dtype_from_file(png, subimage=0)]
    names = beauty.get_channel_names() + depth.get_channel_names() + gray.get_channel_names()
    return names + native.get_channel_names() + [str(d) for d in dtypes]


def write_image_files(exr: str, out_dir: str) -> None:
    image = Image.read_native(exr)
    image.write(f"{out_dir}/piz.exr", compression="piz")
    image.write(f"{out_dir}/rgb.tif", channel_names=["R", "G", "B"], compression="lzw", depth=16)
    image.write(f"{out_dir}/depth.data", channel_indices=[4], transfer="linear", format="png")
    image.preview(f"{out_dir}/thumb.png", 256, channel_names=["R", "G", "B"])
