"""Image channels stored as independently compressed c-blosc2 chunks of whole scanlines.

A drop-in for the compressed-image 1.0.1 Python module (``Codec``, ``Channel``, ``Image``,
with ``Image.read`` of OpenEXR, TIFF, PNG and JPEG files) that adds crash-safe single-file
persistence (``Channel.create``/``open``, ``Image.create``/``open``, ``save``, ``refresh``,
``sync``, ``compact``, ``verify``, ``stats``), images whose channels differ in dtype
(``Image.read_native`` keeps a file's types), image files read straight into a file or
through a post-process callback, context managers, pickling of file-backed handles, and
real threads: the GIL is released around every (de)compression and I/O call. Anonymous
handles (made without a path) keep their bytes in memory, moving to a temporary file past a
threshold (``set_anonymous_backing``).
"""

from . import _conflict

# This distribution (compressed-image-rs) and the original (compressed-image) both install
# the package directory compressed_image/: refuse to run on a mixture of their files.
_conflict.check_no_original_distribution()

from ._compressed_image import (  # noqa: E402
    FORMAT_VERSION,
    ChannelRemovedError,
    Channel,
    ChannelBatch,
    Codec,
    CorruptedError,
    Image,
    ImageFileNotFoundError,
    LockedError,
    ReadOnlyError,
    SnapshotUnavailableError,
    __version__,
    anonymous_backing,
    inspect,
    set_anonymous_backing,
)

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
