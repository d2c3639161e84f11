"""An xarray backend for compressed-image files: ``engine="compressed_image"``.

``xr.open_dataset("beauty.cimg", engine="compressed_image")`` gives one variable per
channel, dims ``("y", "x")``, named as ``compressed_image.dask.open`` keys them (the file's
channel names, or positions ``"0"``, ``"1"``, ... in an image without names). ``channels=[...]``
picks channels by name or position. Every variable reads the commit the file held at
opening (pinned as ``compressed_image.dask`` pins its graphs), through the same per-process
cached read-only handles. The variables are lazy: xarray chunks them along the file's own
chunks (their ``preferred_chunks``: whole scanlines) when asked for Dask arrays
(``chunks={}``, as ``open_mfdataset`` does), giving one read task per file chunk; without
``chunks`` a load reads the rows it needs (a whole channel with the extension's threads).
``open_mfdataset([...], engine="compressed_image", combine="nested", concat_dim="frame")``
stacks frames.

The image's JSON metadata goes into the dataset's ``attrs``: top-level entries xarray attrs
hold as they are (strings, numbers, booleans, and non-empty lists of numbers or of strings)
keep their keys; every other entry (objects, null, other lists) goes, as one JSON object
text, under the key ``METADATA_JSON_KEY`` (``"cimg_metadata_json"``); metadata that is not
a JSON object at all is stored whole as JSON text under that key.
``metadata_from_attrs(ds.attrs)`` gives the metadata back. Each variable's ``encoding``
holds its file chunks (``chunks``, ``preferred_chunks``) and compression settings.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from . import Image, _compat, _handles
from . import dask as cdask
from ._compat import Snapshot

# The attrs key holding metadata entries that are not plain attrs, as JSON text.
METADATA_JSON_KEY = "cimg_metadata_json"
# What every slot page of a compressed-image file starts with (format/SPEC.md §2-3).
MAGIC = b"\x89CIM\r\n\x1a\n"
SLOT_PAGE = 4096
EXTENSIONS = (".cimg",)


def _plain(value: Any) -> bool:
    """Whether xarray attrs (and netCDF) hold `value` as it is."""
    if isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return True
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    return False


def metadata_to_attrs(metadata: Any) -> Dict[str, Any]:
    """The image metadata as dataset attrs (see the module's documentation)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        return {METADATA_JSON_KEY: json.dumps(metadata)}
    attrs = {k: v for k, v in metadata.items() if _plain(v)}
    rest = {k: v for k, v in metadata.items() if not _plain(v)}
    if rest or METADATA_JSON_KEY in metadata:
        attrs[METADATA_JSON_KEY] = json.dumps(rest)
    return attrs


def metadata_from_attrs(attrs: Mapping[str, Any]) -> Any:
    """The image metadata `metadata_to_attrs` made `attrs` from (None for no attrs)."""
    if not attrs:
        return None
    text = attrs.get(METADATA_JSON_KEY)
    if text is None:
        return dict(attrs)
    rest = json.loads(text)
    if not isinstance(rest, dict):
        return rest
    plain = {k: v for k, v in attrs.items() if k != METADATA_JSON_KEY}
    return {**plain, **rest}


def is_cimg_file(path: str) -> bool:
    """Whether the file at `path` starts a slot page with the format's magic."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) == MAGIC:
                return True
            f.seek(SLOT_PAGE)
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


class ChannelArray(BackendArray):  # type: ignore[misc]
    """One channel at one commit, read by rows: what xarray indexes lazily and chunks."""

    def __init__(self, path: str, snapshot: Snapshot, layout: cdask.ChannelLayout) -> None:
        self.path = path
        self.snapshot = snapshot
        self.layout = layout
        self.shape = (layout.height, layout.width)
        self.dtype = layout.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._rows
        )

    def _rows(self, key: Tuple[Any, ...]) -> npt.NDArray[Any]:
        rows, columns = key
        y0, y1, step = rows.indices(self.layout.height) if isinstance(rows, slice) else (rows, rows + 1, 1)
        channel = _handles.cached_image(self.path, self.snapshot)[self.layout.position]
        per_chunk = self.layout.rows_per_chunk
        if y0 >= y1:
            block = np.empty((0, self.layout.width), self.dtype)
        elif (y0, y1) == (0, self.layout.height):
            block = channel.get_decompressed()
        else:
            first, last = y0 // per_chunk, (y1 - 1) // per_chunk
            chunks = [channel.get_chunk(k).reshape(-1, self.layout.width) for k in range(first, last + 1)]
            block = np.concatenate(chunks)[y0 - first * per_chunk : y1 - first * per_chunk]
        block = block[::step] if isinstance(rows, slice) else block[0]
        return block[..., columns]


def open_dataset(
    path: Union[str, "os.PathLike[str]"],
    *,
    channels: Optional[Sequence[Union[str, int]]] = None,
    drop_variables: Optional[Iterable[str]] = None,
) -> xr.Dataset:
    """The dataset `xr.open_dataset(path, engine="compressed_image")` gives."""
    dropped = set(drop_variables or ())
    with Image.open(path, read_only=True) as image:
        file_path = cdask.file_path(image)
        snapshot = _compat._snapshot_of(image)
        chosen = cdask.layouts(image, channels)
        attrs = metadata_to_attrs(image.get_metadata())
        variables = {}
        for layout in chosen:
            if layout.key in dropped:
                continue
            ch = image[layout.position]
            encoding = {
                "chunks": (layout.rows_per_chunk, layout.width),
                "preferred_chunks": {"y": layout.rows_per_chunk, "x": layout.width},
                "dtype": layout.dtype,
                "compression_codec": ch.compression().name,
                "compression_level": ch.compression_level(),
                "block_size": ch.block_size(),
                "chunk_size": ch.chunk_size(),
                "source": image.path,
            }
            data = indexing.LazilyIndexedArray(ChannelArray(file_path, snapshot, layout))
            variables[layout.key] = xr.Variable(("y", "x"), data, encoding=encoding)
    dataset = xr.Dataset(variables, attrs=attrs)
    dataset.encoding["source"] = os.fspath(path)
    return dataset


class CompressedImageBackendEntrypoint(BackendEntrypoint):
    """xarray's entry point for compressed-image files (``engine="compressed_image"``)."""

    description = "Open compressed-image (.cimg) files: one lazily chunked variable per channel"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "channels")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Optional[Iterable[str]] = None,
        channels: Optional[Sequence[Union[str, int]]] = None,
    ) -> xr.Dataset:
        return open_dataset(filename_or_obj, channels=channels, drop_variables=drop_variables)

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if isinstance(path, bytes):
            return False
        return path.lower().endswith(EXTENSIONS) or is_cimg_file(path)
