//! `Channel`: one image channel of compressed scanline chunks.

use std::path::PathBuf;
use std::sync::Arc;

use ci::{AnyChannel, AnyImage, Settings};
use numpy::PyUntypedArrayMethods;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::codec::PyCodec;
use crate::convert::{
    array_dtype, as_ndarray, check_array_dtype, check_shape, dispatch, np_dtype, parse_dtype,
    with_bytes,
};
use crate::errors::{ChannelRemovedError, IntoPyResult, closed, to_py, to_py_at};
use crate::handle::{Handle, PyHandle, absolute, file_handle_methods, set_threads};
use crate::pinned::{parse_snapshot_id, snapshot_bytes};
use crate::settings::{Level, Size, Threads, settings};
use crate::typed::{
    create_eager, create_lazy, create_like, decompressed, get_chunk_into, get_chunk_new,
};

/// Where a channel handle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A standalone channel (its own file, or anonymous).
    Standalone,
    /// Handed out by an image; `position` is its index there, `None` once removed through
    /// that image.
    Image { position: Option<usize> },
}

/// The state of a `Channel` object; an image keeps a weak reference to the state of each
/// Channel object it hands out, to close them with it and to track their positions.
pub type ChannelHandle = Handle<AnyChannel, Origin>;

/// An image channel: a `width × height` array stored as independently compressed chunks of
/// whole scanlines.
///
/// `chunk_size` (bytes) is aligned down to whole scanlines and capped to the channel; a
/// request smaller than one scanline (0 included) gives one scanline per chunk, where
/// compressed-image 1.0.1 raises RuntimeError "Unable to align chunk size to scanlines".
/// A scanline above c-blosc2's 2 GiB chunk limit is a RuntimeError.
///
/// Anonymous channels (the constructor, `zeros`, `full`, `*_like`) live in an unlinked
/// temporary file; `create`, `create_full` and `open` work on a named file that other
/// processes can open too.
#[pyclass(module = "compressed_image", name = "Channel", frozen, weakref)]
pub struct PyChannel {
    pub(crate) state: Arc<ChannelHandle>,
}

impl PyHandle for PyChannel {
    type Resource = AnyChannel;
    type Extra = Origin;
    const KIND: &'static str = "Channel";

    fn handle(&self) -> &ChannelHandle {
        &self.state
    }

    /// `(position, snapshot)`: the index in its image file, or None for a channel file;
    /// the snapshot id of a pinned handle, or None.
    fn unpickle_args<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let slot = self.state.lock();
        let snapshot = (slot.resource.as_ref())
            .filter(|any| any.is_pinned())
            .map(|any| snapshot_bytes(py, any.snapshot_id()));
        let position = match slot.extra {
            Origin::Standalone => None,
            Origin::Image { position: Some(p) } => Some(p),
            Origin::Image { position: None } => {
                return Err(ChannelRemovedError::new_err(
                    "cannot pickle a channel that was removed from its image",
                ));
            }
        };
        Ok(vec![
            position.into_pyobject(py)?.into_any(),
            snapshot.into_pyobject(py)?.into_any(),
        ])
    }
}

file_handle_methods!(PyChannel);

impl PyChannel {
    /// A Channel object for `any`.
    pub(crate) fn new(any: AnyChannel, path: Option<PathBuf>, origin: Origin) -> PyChannel {
        PyChannel {
            state: Arc::new(Handle::new(any, path, origin)),
        }
    }

    fn standalone(any: AnyChannel, path: Option<PathBuf>) -> PyChannel {
        PyChannel::new(any, path, Origin::Standalone)
    }

    /// Compress `data` (checked against `width × height`) into a new standalone channel:
    /// anonymous, or a file at `path` (absolute).
    fn eager(
        py: Python<'_>,
        path: Option<PathBuf>,
        data: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        s: Settings,
    ) -> PyResult<PyChannel> {
        let arr = as_ndarray(data, "data")?;
        let dtype = array_dtype(&arr)?;
        check_shape(&arr, width.0, height.0)?;
        let any = dispatch!(dtype, T => create_eager::<T>(py, path.as_deref(), &arr, width.0, height.0, s))?;
        Ok(PyChannel::standalone(any, path))
    }

    /// A new standalone lazy channel of `fill_value` (zeros without one): anonymous, or a
    /// file at `path` (absolute).
    fn lazy(
        py: Python<'_>,
        path: Option<PathBuf>,
        dtype: &Bound<'_, PyAny>,
        fill_value: Option<&Bound<'_, PyAny>>,
        width: Size,
        height: Size,
        s: Settings,
    ) -> PyResult<PyChannel> {
        let dtype = parse_dtype(dtype)?;
        let any = dispatch!(dtype, T => create_lazy::<T>(py, path.as_deref(), fill_value, width.0, height.0, s))?;
        Ok(PyChannel::standalone(any, path))
    }

    /// A standalone Channel object on the commit `id` of the channel file at `path`
    /// (absolute).
    pub(crate) fn open_pinned(
        py: Python<'_>,
        path: PathBuf,
        id: &ci::SnapshotId,
    ) -> PyResult<PyChannel> {
        let any = py
            .detach(|| AnyChannel::open_snapshot(&path, id))
            .map_err(|e| to_py_at(e, Some(&path)))?;
        Ok(PyChannel::standalone(any, Some(path)))
    }

    /// A clone of the crate handle (cheap); RuntimeError once closed, ChannelRemovedError
    /// once removed through the image that handed it out.
    pub(crate) fn any(&self) -> PyResult<AnyChannel> {
        let slot = self.state.lock();
        match (&slot.resource, slot.extra) {
            (None, _) => Err(closed(Self::KIND)),
            (Some(_), Origin::Image { position: None }) => Err(to_py(ci::Error::ChannelRemoved)),
            (Some(any), _) => Ok(any.clone()),
        }
    }
}

/// `array` as `set_chunk` takes it: a 1-D numpy array of `dtype` (its length is checked
/// against the chunk's with the data).
pub(crate) fn chunk_array<'py>(
    array: &Bound<'py, PyAny>,
    dtype: ci::Dtype,
) -> PyResult<Bound<'py, numpy::PyUntypedArray>> {
    let arr = as_ndarray(array, "array")?;
    check_array_dtype(&arr, dtype, "set_chunk")?;
    if arr.ndim() != 1 {
        return Err(PyValueError::new_err("set_chunk requires a 1D numpy array"));
    }
    Ok(arr)
}

#[pymethods]
impl PyChannel {
    /// Compress `data` (1-D of `width * height` elements or 2-D `(height, width)`; any
    /// strides) into a new anonymous channel of the array's dtype.
    #[new]
    #[pyo3(
        signature = (data, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(data, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn py_new(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        PyChannel::eager(py, None, data, width, height, s)
    }

    /// A lazy channel of zeros: nothing is compressed until a chunk is set.
    #[staticmethod]
    #[pyo3(
        signature = (dtype, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(dtype, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn zeros(
        py: Python<'_>,
        dtype: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        PyChannel::lazy(py, None, dtype, None, width, height, s)
    }

    /// A lazy channel whose every element is `fill_value` (exactly representable in `dtype`,
    /// else RuntimeError).
    #[staticmethod]
    #[pyo3(
        signature = (dtype, fill_value, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(dtype, fill_value, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn full(
        py: Python<'_>,
        dtype: &Bound<'_, PyAny>,
        fill_value: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        PyChannel::lazy(py, None, dtype, Some(fill_value), width, height, s)
    }

    /// A lazy channel of zeros with `other`'s dtype, size, codec, level, block and chunk size.
    #[staticmethod]
    #[pyo3(text_signature = "(other)")]
    fn zeros_like(py: Python<'_>, other: PyRef<'_, PyChannel>) -> PyResult<PyChannel> {
        let any = other.any()?;
        let any = dispatch!(any.dtype(), T => create_like::<T>(py, any, None))?;
        Ok(PyChannel::standalone(any, None))
    }

    /// A lazy channel of `fill_value` with `other`'s dtype, size and settings.
    #[staticmethod]
    #[pyo3(text_signature = "(other, fill_value)")]
    fn full_like(
        py: Python<'_>,
        other: PyRef<'_, PyChannel>,
        fill_value: &Bound<'_, PyAny>,
    ) -> PyResult<PyChannel> {
        let any = other.any()?;
        let any = dispatch!(any.dtype(), T => create_like::<T>(py, any, Some(fill_value)))?;
        Ok(PyChannel::standalone(any, None))
    }

    // ---- files ----------------------------------------------------------------------

    /// Compress `data` into a new channel file at `path` (replacing any file there once
    /// complete), opened read-write.
    #[staticmethod]
    #[pyo3(
        signature = (path, data, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(path, data, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        data: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        PyChannel::eager(py, Some(absolute(&path)), data, width, height, s)
    }

    /// A lazy channel file at `path` whose every element is `fill_value`; instant for any
    /// size. Opened read-write.
    #[staticmethod]
    #[pyo3(
        signature = (path, dtype, fill_value, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(path, dtype, fill_value, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn create_full(
        py: Python<'_>,
        path: PathBuf,
        dtype: &Bound<'_, PyAny>,
        fill_value: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        PyChannel::lazy(
            py,
            Some(absolute(&path)),
            dtype,
            Some(fill_value),
            width,
            height,
            s,
        )
    }

    /// Open a channel file: read-write (one writer per file, in any process: a second one
    /// gets `LockedError`) or read-only (any number, beside the writer).
    #[staticmethod]
    #[pyo3(signature = (path, read_only = false), text_signature = "(path, read_only=False)")]
    fn open(py: Python<'_>, path: PathBuf, read_only: bool) -> PyResult<PyChannel> {
        let path = absolute(&path);
        let any = py
            .detach(|| {
                if read_only {
                    AnyChannel::open_read_only(&path)
                } else {
                    AnyChannel::open(&path)
                }
            })
            .map_err(|e| to_py_at(e, Some(&path)))?;
        Ok(PyChannel::standalone(any, Some(path)))
    }

    /// Unpickling: reopen by path (and position, for a channel of an image file), at the
    /// pinned commit `snapshot` if given.
    #[staticmethod]
    #[pyo3(signature = (path, read_only, position = None, snapshot = None))]
    fn _unpickle(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        position: Option<usize>,
        snapshot: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyChannel> {
        let snapshot = snapshot.map(parse_snapshot_id).transpose()?;
        let Some(position) = position else {
            return match snapshot {
                Some(id) => PyChannel::open_pinned(py, path, &id),
                None => PyChannel::open(py, path, read_only),
            };
        };
        let any = py
            .detach(|| {
                let image = match (snapshot, read_only) {
                    (Some(id), _) => AnyImage::open_snapshot(&path, &id),
                    (None, true) => AnyImage::open_read_only(&path),
                    (None, false) => AnyImage::open(&path),
                }?;
                image.channel(position)
            })
            .map_err(|e| to_py_at(e, Some(&path)))?;
        let origin = Origin::Image {
            position: Some(position),
        };
        Ok(PyChannel::new(any, Some(path), origin))
    }

    // ---- the original API -------------------------------------------------------------

    /// Decompress chunk `chunk_index`: into a new 1-D array (returned), or into `array`
    /// (1-D, the channel's dtype, exactly `chunk_elems(chunk_index)` long, writeable,
    /// C-contiguous; returns None).
    #[pyo3(signature = (chunk_index, array = None), text_signature = "($self, chunk_index, array=None)")]
    fn get_chunk(
        &self,
        py: Python<'_>,
        chunk_index: Size,
        array: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let any = self.any()?;
        let dtype = any.dtype();
        match array {
            None => dispatch!(dtype, T => get_chunk_new::<T>(py, any, chunk_index.0)).map(Some),
            Some(obj) => {
                let arr = as_ndarray(obj, "array")?;
                check_array_dtype(&arr, dtype, "get_chunk")?;
                dispatch!(dtype, T => get_chunk_into::<T>(py, any, chunk_index.0, &arr))?;
                Ok(None)
            }
        }
    }

    /// Compress `array` (1-D, the channel's dtype, exactly `chunk_elems(chunk_index)` long;
    /// any strides) into chunk `chunk_index` and commit. Nothing changes on any error.
    #[pyo3(text_signature = "($self, chunk_index, array)")]
    fn set_chunk(
        &self,
        py: Python<'_>,
        chunk_index: Size,
        array: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let any = self.any()?;
        let arr = chunk_array(array, any.dtype())?;
        with_bytes(&arr, any.dtype(), |data| {
            py.detach(|| any.set_chunk_bytes(chunk_index.0, data))
        })?
        .py_err()
    }

    /// The whole channel as a new 2-D array `(height, width)`.
    fn get_decompressed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let any = self.any()?;
        dispatch!(any.dtype(), T => decompressed::<T>(py, any))
    }

    /// Number of chunks.
    fn num_chunks(&self) -> PyResult<usize> {
        Ok(self.any()?.num_chunks())
    }

    /// Nominal chunk size in bytes (every chunk but possibly the last), or the size of
    /// chunk `chunk_index` in bytes.
    #[pyo3(signature = (chunk_index = None), text_signature = "($self, chunk_index=None)")]
    fn chunk_size(&self, chunk_index: Option<Size>) -> PyResult<usize> {
        let any = self.any()?;
        match chunk_index {
            None => Ok(any.chunk_size()),
            Some(i) => any.chunk_size_at(i.0).py_err(),
        }
    }

    /// Nominal chunk size in elements, or the elements of chunk `chunk_index`.
    #[pyo3(signature = (chunk_index = None), text_signature = "($self, chunk_index=None)")]
    fn chunk_elems(&self, chunk_index: Option<Size>) -> PyResult<usize> {
        let any = self.any()?;
        match chunk_index {
            None => Ok(any.chunk_elems()),
            Some(i) => any.chunk_elems_at(i.0).py_err(),
        }
    }

    /// The effective c-blosc2 block size in bytes (the requested one capped to the chunk
    /// and rounded down to whole elements; 0 = chosen by c-blosc2).
    fn block_size(&self) -> PyResult<usize> {
        Ok(self.any()?.block_size())
    }

    /// Stored bytes: compressed chunks plus one element per lazy chunk.
    fn compressed_bytes(&self) -> PyResult<usize> {
        self.any()?.compressed_bytes().py_err()
    }

    /// Number of elements (`width * height`), as the original counts it.
    fn uncompressed_size(&self) -> PyResult<usize> {
        Ok(self.any()?.uncompressed_size())
    }

    /// The codec.
    fn compression(&self) -> PyResult<PyCodec> {
        PyCodec::from_ci(self.any()?.codec())
    }

    /// The compression level (0–9).
    fn compression_level(&self) -> PyResult<u8> {
        Ok(self.any()?.level())
    }

    /// Whether chunk `chunk_index` is a lazy fill value rather than compressed data.
    #[pyo3(text_signature = "($self, chunk_index)")]
    fn is_lazy(&self, chunk_index: Size) -> PyResult<bool> {
        self.any()?.is_lazy(chunk_index.0).py_err()
    }

    /// Set the number of threads used inside one chunk and across chunks: any count from
    /// 1 (c-blosc2 gets at most a few per available core for one chunk, however many are
    /// asked for). `block_size` is accepted for compatibility and ignored: unlike the
    /// original, the block size never changes after construction.
    #[pyo3(
        signature = (nthreads, block_size = Size(32768)),
        text_signature = "($self, nthreads, block_size=32768)"
    )]
    fn update_nthreads(&self, nthreads: Threads, block_size: Size) -> PyResult<()> {
        let _ = block_size;
        set_threads(self, nthreads)
    }

    /// The numpy dtype of the elements.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, numpy::PyArrayDescr>> {
        np_dtype(py, self.any()?.dtype())
    }

    /// `(height, width)`.
    #[getter]
    fn shape(&self) -> PyResult<(usize, usize)> {
        let any = self.any()?;
        Ok((any.height(), any.width()))
    }

    /// Width in elements.
    #[getter]
    fn width(&self) -> PyResult<usize> {
        Ok(self.any()?.width())
    }

    /// Height in scanlines.
    #[getter]
    fn height(&self) -> PyResult<usize> {
        Ok(self.any()?.height())
    }

    fn __repr__(&self) -> String {
        let slot = self.state.lock();
        let Some(any) = &slot.resource else {
            return "<compressed_image.Channel (closed)>".to_string();
        };
        let place = match (self.state.path(), slot.extra) {
            (_, Origin::Image { position: None }) => {
                return "<compressed_image.Channel (removed from its image)>".to_string();
            }
            (None, _) => "anonymous".to_string(),
            (Some(p), origin) => format!(
                "path={:?}{}{}",
                p.display().to_string(),
                match origin {
                    Origin::Image { position: Some(i) } => format!(" image channel {i}"),
                    _ => String::new(),
                },
                if any.is_writable() { "" } else { " read-only" }
            ),
        };
        format!(
            "<compressed_image.Channel dtype={} shape=({}, {}) chunks={} codec={} level={} {place}>",
            any.dtype(),
            any.height(),
            any.width(),
            any.num_chunks(),
            any.codec(),
            any.level(),
        )
    }
}
