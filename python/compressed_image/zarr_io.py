"""compressed-image files to and from Zarr v3 groups (zarr-python 3).

``to_zarr(image_or_path, store)`` writes a group with one array per channel, keyed as
``compressed_image.dask.open`` keys them (the channel names, or positions ``"0"``, ``"1"``,
... in an image without names), each of the channel's dtype, chunked as the file is (whole
scanlines: ``(rows_per_chunk, width)``) and compressed with Blosc at the channel's codec,
level and block size with byte shuffle. The group's attrs hold, under ``"compressed_image"``,
the channel order (``channels``), the channel names (``channel_names``, empty for an image
without names), the image metadata (``metadata``, any JSON) and each channel's settings
(``settings``). The chunks are copied through ``compressed_image.dask`` (one task per chunk,
pinned to one commit; on a ``distributed`` cluster when a client is active).

``from_zarr(store, path, **settings)`` writes such a group back to a file with
``compressed_image.dask.to_cimg``: channels in the recorded order, named as recorded, the
recorded metadata, and each setting the group recorded for its first channel unless given
(``compression_codec``, ``compression_level``, ``block_size``, ``chunk_size``). A group
written by other tools works too: its arrays in name order, named by their keys.

A round trip keeps values, dtypes, channel names, channel order and metadata exactly.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union, cast

import dask.array as da
import zarr
from zarr.codecs import BloscCodec

from . import Codec, Image
from . import dask as cdask

# The group attrs key of what zarr arrays do not say themselves.
ATTRS_KEY = "compressed_image"

_Image = Union[Image, str, Any]  # an Image or a path (str or os.PathLike)
_Store = Any  # anything zarr.open_group takes: a path, a store, a URL


def _settings(image: Image, position: int) -> Dict[str, Any]:
    ch = image[position]
    return {
        "compression_codec": ch.compression().name,
        "compression_level": ch.compression_level(),
        "block_size": ch.block_size(),
        "chunk_size": ch.chunk_size(),
    }


def _blosc(settings: Dict[str, Any]) -> BloscCodec:
    return BloscCodec(
        cname=settings["compression_codec"],
        clevel=settings["compression_level"],
        shuffle="shuffle",
        blocksize=settings["block_size"],
    )


def to_zarr(image_or_path: _Image, store_or_path: _Store) -> zarr.Group:
    """Write the image (an `Image` or a file path) to a new Zarr v3 group at
    `store_or_path` (replacing what was there); returns the group."""
    if isinstance(image_or_path, Image):
        return _write_group(image_or_path, store_or_path)
    with Image.open(image_or_path, read_only=True) as image:
        return _write_group(image, store_or_path)


def _write_group(image: Image, store: _Store) -> zarr.Group:
    arrays = cdask.image_to_dask(image)
    chosen = cdask.layouts(image)
    settings = [_settings(image, layout.position) for layout in chosen]
    group = zarr.open_group(store, mode="w", zarr_format=3)
    targets = [
        group.create_array(
            layout.key,
            shape=(layout.height, layout.width),
            chunks=(layout.rows_per_chunk, layout.width),
            dtype=layout.dtype,
            compressors=_blosc(s),
            fill_value=0,
        )
        for layout, s in zip(chosen, settings)
    ]
    # The chunks match the arrays' exactly: no two tasks write one Zarr chunk.
    sources: List[Any] = [arrays[layout.key] for layout in chosen]
    da.store(sources, cast(Any, targets), lock=False)
    group.attrs[ATTRS_KEY] = {
        "channels": [layout.key for layout in chosen],
        "channel_names": image.get_channel_names(),
        "metadata": image.get_metadata(),
        "settings": settings,
    }
    return group


def from_zarr(
    store_or_path: _Store,
    path: Any,
    *,
    compression_codec: Optional[Codec] = None,
    compression_level: Optional[int] = None,
    block_size: Optional[int] = None,
    chunk_size: Optional[int] = None,
) -> None:
    """Write the Zarr group at `store_or_path` (one 2-D array per channel) to a new
    compressed-image file at `path` (see the module's documentation)."""
    group = zarr.open_group(store_or_path, mode="r")
    recorded: Dict[str, Any] = dict(cast(Dict[str, Any], group.attrs.get(ATTRS_KEY) or {}))
    keys: List[str] = list(recorded.get("channels") or sorted(k for k, _ in group.arrays()))
    arrays = [da.from_zarr(group[k]) for k in keys]
    names = recorded.get("channel_names")
    first = (recorded.get("settings") or [{}])[0]
    given = {
        "compression_codec": compression_codec,
        "compression_level": compression_level,
        "block_size": block_size,
        "chunk_size": chunk_size,
    }
    settings: Dict[str, Any] = {k: v if v is not None else first.get(k) for k, v in given.items()}
    if isinstance(settings["compression_codec"], str):
        settings["compression_codec"] = Codec.__members__[settings["compression_codec"]]
    cdask.to_cimg(
        arrays,
        path,
        names=(names or None) if ATTRS_KEY in group.attrs else keys,
        metadata=recorded.get("metadata"),
        **{k: v for k, v in settings.items() if v is not None},
    )


__all__ = ["to_zarr", "from_zarr", "ATTRS_KEY"]
