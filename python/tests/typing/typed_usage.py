"""Typed use of compressed_image, checked with `mypy --strict` by test_typing.py.

The functions return from inside `with` blocks: that type-checks only because the stubs
declare `__exit__` as never suppressing exceptions (`Literal[False]`, not `bool`).
"""

from typing import List, Optional

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
