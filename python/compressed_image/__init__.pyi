"""Type stubs of compressed_image: the compressed-image 1.0.1 Python API plus persistence."""

import os
from typing import Any, Callable, Dict, Iterable, Iterator, List, Literal, Optional, Sequence, SupportsIndex, Tuple, Union, final, overload

import numpy as np
import numpy.typing as npt

_DTypeLike = npt.DTypeLike
# One dtype for every channel, or a list/tuple with one dtype per channel (a mixed image).
_ImageDTypes = Union[_DTypeLike, List[_DTypeLike], Tuple[_DTypeLike, ...]]
_Path = Union[str, "os.PathLike[str]"]
_JSON = Union[None, bool, int, float, str, List[Any], Tuple[Any, ...], Dict[str, Any]]
# Image.read's postprocess(file_channel_index, chunk): change the (rows, width) chunk in place
# and return None, or return a new array of the same shape and dtype.
_PostProcess = Callable[[int, npt.NDArray[Any]], Optional[npt.NDArray[Any]]]
# Image.write's compression: OpenEXR's names, then TIFF's (PNG takes none); any case at run time.
_Compression = Literal[
    "none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab", "lzw", "deflate"
]
_ImageFormat = Literal["exr", "openexr", "tif", "tiff", "png"]
# Channel indexing: an int or slice per axis (rows, columns), at most one Ellipsis.
_Index = Union[SupportsIndex, slice, ellipsis]
_Key = Union[_Index, Tuple[_Index, ...]]
# update_chunks' func(chunk_index, chunk): change the (rows, width) chunk in place and return
# None, or return a new array of the same shape and dtype.
_ChunkUpdate = Callable[[int, npt.NDArray[Any]], Optional[npt.NDArray[Any]]]
# A snapshot id: the bytes snapshot_id() returns, or their hexadecimal string.
_SnapshotId = Union[bytes, str]

__all__ = [
    "Codec",
    "Channel",
    "Image",
    "CorruptedError",
    "LockedError",
    "ReadOnlyError",
    "ChannelRemovedError",
    "ImageFileNotFoundError",
    "SnapshotUnavailableError",
    "FORMAT_VERSION",
    "__version__",
    "set_anonymous_backing",
    "anonymous_backing",
    "inspect",
]

__version__: str
FORMAT_VERSION: Tuple[int, int]

def set_anonymous_backing(
    backing: Literal["auto", "memory", "tempfile"] = "auto",
    *,
    spill_above: Optional[int] = None,
    dir: Optional[_Path] = None,
) -> None: ...
def anonymous_backing() -> Dict[str, Any]: ...
def inspect(path: _Path) -> Dict[str, Any]: ...

class CorruptedError(ValueError):
    """Not a compressed-image file, an unsupported format version, or bytes that fail a check."""

class LockedError(RuntimeError):
    """Another handle, in this or another process, has the file open for writing."""

class ReadOnlyError(RuntimeError):
    """The handle was opened read-only and cannot write."""

class ChannelRemovedError(RuntimeError):
    """The channel behind this handle was removed from its image."""

class SnapshotUnavailableError(RuntimeError):
    """The commit a snapshot id names is no longer in the file: it was compacted or replaced since."""

class ImageFileNotFoundError(FileNotFoundError, ValueError):
    """The image file to read does not exist: a FileNotFoundError, and a ValueError as compressed-image 1.0.1 raises."""

@final
class Codec:
    """Compression codec: blosclz=0, lz4=1, lz4hc=2, zstd=3 (and zlib=4, not in 1.0.1).

    zstd at the default compression_level 9 is zstd's maximum level, 22, inside c-blosc2
    (levels 1-8 map to 2 x level - 1): a 3 MB float32 channel took 11.3 s to compress at
    level 9 and 0.28 s at level 8. 1.0.1 behaves the same; use level 8 or lower with zstd.
    """

    blosclz: Codec
    lz4: Codec
    lz4hc: Codec
    zstd: Codec
    zlib: Codec
    __members__: Dict[str, Codec]
    def __new__(cls, value: int) -> Codec: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...
    def __int__(self) -> int: ...
    def __index__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: Codec, /) -> bool: ...
    def __le__(self, other: Codec, /) -> bool: ...
    def __gt__(self, other: Codec, /) -> bool: ...
    def __ge__(self, other: Codec, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Channel:
    """An image channel stored as independently compressed chunks of whole scanlines.

    ``chunk_size`` (bytes) is aligned down to whole scanlines and capped to the channel; a
    request smaller than one scanline (0 included) gives one scanline per chunk, where
    compressed-image 1.0.1 raises RuntimeError. A scanline above c-blosc2's 2 GiB chunk
    limit is a RuntimeError.
    """

    def __new__(
        cls,
        data: npt.NDArray[Any],
        width: int,
        height: int,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
    ) -> Channel: ...
    @staticmethod
    def zeros(
        dtype: _DTypeLike,
        width: int,
        height: int,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
    ) -> Channel: ...
    @staticmethod
    def full(
        dtype: _DTypeLike,
        fill_value: Union[int, float, bool],
        width: int,
        height: int,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
    ) -> Channel: ...
    @staticmethod
    def zeros_like(other: Channel) -> Channel: ...
    @staticmethod
    def full_like(other: Channel, fill_value: Union[int, float, bool]) -> Channel: ...

    # files
    @staticmethod
    def create(
        path: _Path,
        data: npt.NDArray[Any],
        width: int,
        height: int,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
    ) -> Channel: ...
    @staticmethod
    def create_full(
        path: _Path,
        dtype: _DTypeLike,
        fill_value: Union[int, float, bool],
        width: int,
        height: int,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
    ) -> Channel: ...
    @staticmethod
    def open(path: _Path, read_only: bool = False) -> Channel: ...
    def refresh(self) -> bool: ...
    def sync(self) -> None: ...
    def save(self, path: _Path) -> None: ...
    def compact(self) -> Dict[str, int]: ...
    def verify(self) -> Dict[str, Any]: ...
    def stats(self) -> Dict[str, int]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def path(self) -> Optional[str]: ...
    @property
    def read_only(self) -> bool: ...
    def __enter__(self) -> Channel: ...
    def __exit__(self, *args: object) -> Literal[False]: ...

    # the original API
    @overload
    def get_chunk(self, chunk_index: int, array: None = None) -> npt.NDArray[Any]: ...
    @overload
    def get_chunk(self, chunk_index: int, array: npt.NDArray[Any]) -> None: ...
    def set_chunk(self, chunk_index: int, array: npt.NDArray[Any]) -> None: ...
    def get_decompressed(self) -> npt.NDArray[Any]: ...
    def num_chunks(self) -> int: ...
    def chunk_size(self, chunk_index: Optional[int] = None) -> int: ...
    def chunk_elems(self, chunk_index: Optional[int] = None) -> int: ...
    def block_size(self) -> int: ...
    def compressed_bytes(self) -> int: ...
    def uncompressed_size(self) -> int: ...
    def compression(self) -> Codec: ...
    def compression_level(self) -> int: ...
    def is_lazy(self, chunk_index: int) -> bool: ...
    def update_nthreads(self, nthreads: int, block_size: int = 32768) -> None: ...
    @property
    def nthreads(self) -> int: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def shape(self) -> Tuple[int, int]: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...

    # numpy (not in 1.0.1)
    def __array__(self, dtype: Optional[_DTypeLike] = None, copy: Optional[bool] = None) -> npt.NDArray[Any]: ...
    @property
    def ndim(self) -> int: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: _Key, /) -> npt.NDArray[Any]: ...
    def __setitem__(self, key: _Key, value: npt.ArrayLike, /) -> None: ...
    def read_rows(self, y0: int, y1: int) -> npt.NDArray[Any]: ...

    # chunks compressed elsewhere, chunk-wise updates, pinned commits (not in 1.0.1)
    def compress_chunk(self, chunk_index: int, array: npt.NDArray[Any]) -> bytes: ...
    def set_stored_chunk(self, chunk_index: int, chunk: bytes) -> None: ...
    def set_stored_chunks(self, chunks: Iterable[Tuple[int, bytes]]) -> None: ...
    def update_chunks(self, func: _ChunkUpdate) -> None: ...
    def batch(self) -> ChannelBatch: ...
    def snapshot_id(self) -> bytes: ...
    @staticmethod
    def open_snapshot(path: _Path, snapshot_id: _SnapshotId) -> Channel: ...
    @property
    def pinned(self) -> bool: ...

@final
class ChannelBatch:
    """Chunk writes to one channel, compressed as they are set and committed together."""

    def set_chunk(self, chunk_index: int, array: npt.NDArray[Any]) -> None: ...
    def set_stored_chunk(self, chunk_index: int, chunk: bytes) -> None: ...
    def commit(self) -> None: ...
    def discard(self) -> None: ...
    def __len__(self) -> int: ...
    def __enter__(self) -> ChannelBatch: ...
    def __exit__(self, exc_type: object, exc_value: object, traceback: object) -> Literal[False]: ...

@final
class Image:
    """Channels of one size, each with its own dtype, optional channel names and JSON metadata.

    Made or opened with one dtype, every channel has it (as in compressed-image 1.0.1);
    made with a list of dtypes, or opened from a file whose channels differ, it is mixed.
    """

    def __new__(
        cls,
        dtype: _ImageDTypes,
        channels: Sequence[npt.ArrayLike],
        width: int,
        height: int,
        channel_names: Sequence[str] = [],
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
    ) -> Image: ...

    # image files (OpenEXR, TIFF, PNG, JPEG); path and postprocess are not in 1.0.1
    @overload
    @staticmethod
    def read(
        dtype: _DTypeLike,
        filepath: _Path,
        subimage: int,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
        *,
        path: Optional[_Path] = None,
        postprocess: Optional[_PostProcess] = None,
    ) -> Image: ...
    @overload
    @staticmethod
    def read(
        dtype: _DTypeLike,
        filepath: _Path,
        subimage: int,
        channel_indices: Sequence[int],
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
        *,
        path: Optional[_Path] = None,
        postprocess: Optional[_PostProcess] = None,
    ) -> Image: ...
    @overload
    @staticmethod
    def read(
        dtype: _DTypeLike,
        filepath: _Path,
        subimage: int,
        channel_names: Sequence[str],
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
        *,
        path: Optional[_Path] = None,
        postprocess: Optional[_PostProcess] = None,
    ) -> Image: ...
    @staticmethod
    def read_native(
        filepath: _Path,
        subimage: int = 0,
        *,
        channel_indices: Optional[Sequence[int]] = None,
        channel_names: Optional[Sequence[str]] = None,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
        path: Optional[_Path] = None,
        postprocess: Optional[_PostProcess] = None,
    ) -> Image: ...
    @staticmethod
    def dtype_from_file(filepath: _Path, subimage: int = 0) -> np.dtype[Any]: ...
    @staticmethod
    def dtypes_from_file(filepath: _Path, subimage: int = 0) -> List[np.dtype[Any]]: ...

    # image files out (OpenEXR, TIFF, PNG) and PNG previews; not in 1.0.1
    def write(
        self,
        filepath: _Path,
        *,
        channel_indices: Optional[Sequence[int]] = None,
        channel_names: Optional[Sequence[str]] = None,
        compression: Optional[_Compression] = None,
        depth: Optional[Literal[8, 16]] = None,
        transfer: Literal["srgb", "linear"] = "srgb",
        format: Optional[_ImageFormat] = None,
    ) -> None: ...
    def preview(
        self,
        filepath: _Path,
        max_size: int = 512,
        *,
        channel_indices: Optional[Sequence[int]] = None,
        channel_names: Optional[Sequence[str]] = None,
    ) -> None: ...

    # files
    @staticmethod
    def create(path: _Path, dtype: _ImageDTypes, width: int, height: int) -> Image: ...
    @staticmethod
    def open(path: _Path, read_only: bool = False, *, dtype: Optional[_ImageDTypes] = None) -> Image: ...
    def refresh(self) -> bool: ...
    def sync(self) -> None: ...
    def save(self, path: _Path) -> None: ...
    def compact(self) -> Dict[str, int]: ...
    def verify(self) -> Dict[str, Any]: ...
    def stats(self) -> Dict[str, int]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def path(self) -> Optional[str]: ...
    @property
    def read_only(self) -> bool: ...
    def __enter__(self) -> Image: ...
    def __exit__(self, *args: object) -> Literal[False]: ...

    # the original API
    def add_channel(
        self,
        data: npt.NDArray[Any],
        width: int,
        height: int,
        name: Optional[str] = None,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
    ) -> None: ...
    def add_lazy_channel(
        self,
        dtype: _DTypeLike,
        name: Optional[str] = None,
        fill_value: Optional[Union[int, float]] = None,
        compression_codec: Codec = Codec.lz4,
        compression_level: int = 9,
        block_size: int = 32768,
        chunk_size: int = 4194304,
    ) -> None: ...
    def remove_channel(self, name_or_index: Union[str, int]) -> None: ...
    def __getitem__(self, key: Union[str, int], /) -> Channel: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Channel]: ...
    @overload
    def channel(self, index: Union[int, str], name: None = None) -> Channel: ...
    @overload
    def channel(self, index: None = None, *, name: str) -> Channel: ...
    def channels(self) -> List[Channel]: ...
    def get_channel_index(self, channelname: str) -> int: ...
    def get_channel_names(self) -> List[str]: ...
    def set_channel_names(self, names: Sequence[str]) -> None: ...
    def get_metadata(self) -> _JSON: ...
    def set_metadata(self, metadata: _JSON) -> None: ...
    def get_decompressed(self) -> List[npt.NDArray[Any]]: ...
    def compression_ratio(self) -> float: ...
    def print_statistics(self) -> None: ...
    def update_nthreads(self, nthreads: int) -> None: ...
    @property
    def nthreads(self) -> int: ...
    def chunk_size(self) -> int: ...
    def block_size(self) -> int: ...
    @property
    def shape(self) -> Tuple[int, int, int]: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def num_channels(self) -> int: ...
    @property
    def dtype(self) -> Optional[np.dtype[Any]]: ...
    @property
    def dtypes(self) -> List[np.dtype[Any]]: ...

    # pinned commits (not in 1.0.1)
    def snapshot_id(self) -> bytes: ...
    @staticmethod
    def open_snapshot(path: _Path, snapshot_id: _SnapshotId) -> Image: ...
    @property
    def pinned(self) -> bool: ...
