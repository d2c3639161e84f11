//! What a parallel layer (Dask, xarray, Zarr) builds on: chunks compressed away from the
//! writer (`compress_chunk`, `set_stored_chunk(s)`), chunk writes committed together
//! (`batch`, `update_chunks`), pinned commits (`snapshot_id`, `open_snapshot`) and
//! `inspect`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ci::{AnyChannel, Channel, StoredChunk};
use numpy::PyUntypedArrayMethods;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::array::array2;
use crate::channel::{PyChannel, chunk_array};
use crate::codec::PyCodec;
use crate::convert::{
    Elem, as_ndarray, check_array_dtype, dispatch, np_dtype, with_bytes, with_slice,
};
use crate::errors::{IntoPyResult, to_py, to_py_at};
use crate::handle::absolute;
use crate::image::{PyImage, common_dtype, open_pinned_image};
use crate::pinned::{parse_snapshot_id, snapshot_bytes};
use crate::settings::Size;

/// Call `func(index, chunk)` on every chunk (a new `(rows, width)` array) and write back,
/// in one commit, the chunks it changed in place or replaced by returning an array; the
/// batch holds the file's writer throughout, so no other write comes between a chunk's read
/// and the commit. Decoding and compression run without the GIL.
fn update_chunks_of<T: Elem>(
    py: Python<'_>,
    any: AnyChannel,
    func: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let ch = Channel::<T>::try_from_any(any).py_err()?;
    let g = ch.geometry();
    let mut batch = ch.batch().py_err()?;
    for index in 0..g.num_chunks() {
        let data = py.detach(|| ch.get_chunk_vec(index)).py_err()?;
        let shape = [g.chunk_rows(index), g.width()];
        let chunk = array2(py, data.clone(), shape[0], shape[1])?;
        let returned = func.call1((index, &chunk))?;
        let result = if returned.is_none() { chunk } else { returned };
        let result = as_ndarray(&result, "the array update_chunks' function returned")?;
        check_array_dtype(&result, T::DTYPE, "update_chunks")?;
        if result.shape() != shape {
            return Err(PyValueError::new_err(format!(
                "update_chunks' function returned an array of shape {:?} for chunk {index} of shape {shape:?}",
                result.shape()
            )));
        }
        let original: &[u8] = bytemuck::cast_slice(&data);
        let stored = with_slice::<T, _>(&result, |s| {
            // Unchanged chunks (bit for bit) are not rewritten: lazy ones stay lazy.
            (bytemuck::cast_slice::<T, u8>(s) != original)
                .then(|| py.detach(|| ch.compress_chunk(index, s)))
        })?;
        if let Some(stored) = stored {
            batch.set_stored_chunk(index, &stored.py_err()?).py_err()?;
        }
    }
    batch.commit().py_err()
}

#[pymethods]
impl PyChannel {
    /// Compress `array` (the channel's dtype, exactly `chunk_elems(chunk_index)` elements,
    /// any shape) as chunk `chunk_index` with the channel's settings, without writing:
    /// returns the stored chunk's bytes for `set_stored_chunk`. Works on read-only handles
    /// and in other processes, without the writer's lock.
    #[pyo3(text_signature = "($self, chunk_index, array)")]
    fn compress_chunk<'py>(
        &self,
        py: Python<'py>,
        chunk_index: Size,
        array: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let any = self.any()?;
        let arr = as_ndarray(array, "array")?;
        check_array_dtype(&arr, any.dtype(), "compress_chunk")?;
        let stored = with_bytes(&arr, any.dtype(), |data| {
            py.detach(|| {
                any.compress_chunk_bytes(chunk_index.0, data)
                    .map(|c| c.to_bytes())
            })
        })?
        .py_err()?;
        Ok(PyBytes::new(py, &stored))
    }

    /// Commit the bytes `compress_chunk` made as chunk `chunk_index`, without
    /// decompressing them, once they pass every check a reader makes (dtype, geometry,
    /// index, CRC-32, c-blosc2 header); ValueError saying which failed, and nothing changes.
    #[pyo3(text_signature = "($self, chunk_index, chunk)")]
    fn set_stored_chunk(
        &self,
        py: Python<'_>,
        chunk_index: Size,
        chunk: &Bound<'_, PyBytes>,
    ) -> PyResult<()> {
        let any = self.any()?;
        let bytes = chunk.as_bytes();
        py.detach(|| any.set_stored_chunk_bytes(chunk_index.0, bytes))
            .py_err()
    }

    /// Commit many stored chunks, an iterable of `(chunk_index, bytes)` pairs (e.g.
    /// `dict.items()`), as one commit; every chunk is checked before anything is written.
    #[pyo3(text_signature = "($self, chunks)")]
    fn set_stored_chunks(&self, py: Python<'_>, chunks: &Bound<'_, PyAny>) -> PyResult<()> {
        let any = self.any()?;
        let items = chunks
            .try_iter()?
            .map(|item| item?.extract::<(Size, Bound<'_, PyBytes>)>())
            .collect::<PyResult<Vec<_>>>()?;
        let encoded: Vec<(usize, &[u8])> = items.iter().map(|(i, b)| (i.0, b.as_bytes())).collect();
        py.detach(|| {
            let decoded = encoded
                .iter()
                .map(|&(index, bytes)| Ok((index, StoredChunk::from_bytes(bytes)?)))
                .collect::<ci::Result<Vec<_>>>()?;
            any.set_stored_chunks(decoded.iter().map(|(index, chunk)| (*index, chunk)))
        })
        .py_err()
    }

    /// Call `func(chunk_index, chunk)` on every chunk, a new `(rows, width)` array: change
    /// it in place and return None, or return a new array of the same shape and dtype.
    /// The chunks that changed are written back, all in one commit (none if `func`
    /// raises); unchanged ones are not rewritten.
    #[pyo3(text_signature = "($self, func)")]
    fn update_chunks(&self, py: Python<'_>, func: &Bound<'_, PyAny>) -> PyResult<()> {
        let any = self.any()?;
        dispatch!(any.dtype(), T => update_chunks_of::<T>(py, any, func))
    }

    /// Open a channel file read-only at the commit `snapshot_id` names (the bytes
    /// `snapshot_id()` returned); the handle stays on it. `SnapshotUnavailableError` once
    /// the file was compacted or replaced.
    #[staticmethod]
    #[pyo3(text_signature = "(path, snapshot_id)")]
    fn open_snapshot(
        py: Python<'_>,
        path: PathBuf,
        snapshot_id: &Bound<'_, PyAny>,
    ) -> PyResult<PyChannel> {
        PyChannel::open_pinned(py, absolute(&path), &parse_snapshot_id(snapshot_id)?)
    }
}

#[pymethods]
impl PyImage {
    /// Open an image file read-only at the commit `snapshot_id` names (the bytes
    /// `snapshot_id()` returned); the handle stays on it. Single-typed when its channels
    /// share a dtype. `SnapshotUnavailableError` once the file was compacted or replaced.
    #[staticmethod]
    #[pyo3(text_signature = "(path, snapshot_id)")]
    fn open_snapshot(
        py: Python<'_>,
        path: PathBuf,
        snapshot_id: &Bound<'_, PyAny>,
    ) -> PyResult<PyImage> {
        let path = absolute(&path);
        let id = parse_snapshot_id(snapshot_id)?;
        let image = open_pinned_image(py, &path, &id)?;
        let single = common_dtype(&image.dtypes());
        Ok(PyImage::wrap(image, single, Some(path)))
    }
}

/// Chunk writes to one channel, staged and committed together:
/// `with channel.batch() as b: b.set_chunk(i, array)`. Each chunk is compressed as it is
/// set (without the GIL and without the file's writer, so several threads can set chunks
/// at once) and kept in memory until `commit()` — or the end of a `with` block without an
/// exception — writes them all in one commit; `discard()`, or an exception, drops them. A
/// chunk set twice keeps the later data.
#[pyclass(module = "compressed_image", name = "ChannelBatch", frozen)]
pub struct PyChannelBatch {
    channel: AnyChannel,
    /// The staged chunks by index; `None` once committed or discarded.
    staged: Mutex<Option<BTreeMap<usize, StoredChunk>>>,
}

impl PyChannelBatch {
    /// Stage `chunk` as chunk `index`.
    fn stage(&self, index: usize, chunk: StoredChunk) -> PyResult<()> {
        self.lock()
            .as_mut()
            .ok_or_else(finished)?
            .insert(index, chunk);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Option<BTreeMap<usize, StoredChunk>>> {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn finished() -> PyErr {
    PyRuntimeError::new_err("the batch was already committed or discarded")
}

#[pymethods]
impl PyChannelBatch {
    /// Compress `array` (as `Channel.set_chunk` takes it: 1-D, the channel's dtype, exactly
    /// `chunk_elems(chunk_index)` long) and stage it as chunk `chunk_index`.
    #[pyo3(text_signature = "($self, chunk_index, array)")]
    fn set_chunk(
        &self,
        py: Python<'_>,
        chunk_index: Size,
        array: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let any = &self.channel;
        let arr = chunk_array(array, any.dtype())?;
        let chunk = with_bytes(&arr, any.dtype(), |data| {
            py.detach(|| any.compress_chunk_bytes(chunk_index.0, data))
        })?
        .py_err()?;
        self.stage(chunk_index.0, chunk)
    }

    /// Stage the bytes `Channel.compress_chunk` made as chunk `chunk_index` (checked when
    /// the batch commits).
    #[pyo3(text_signature = "($self, chunk_index, chunk)")]
    fn set_stored_chunk(
        &self,
        py: Python<'_>,
        chunk_index: Size,
        chunk: &Bound<'_, PyBytes>,
    ) -> PyResult<()> {
        let bytes = chunk.as_bytes();
        let chunk = py.detach(|| StoredChunk::from_bytes(bytes)).py_err()?;
        self.stage(chunk_index.0, chunk)
    }

    /// Check every staged chunk and write them all in one commit; nothing is written if
    /// one is refused. The batch is finished afterwards either way.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        let staged = self.lock().take().ok_or_else(finished)?;
        let any = &self.channel;
        py.detach(|| any.set_stored_chunks(staged.iter().map(|(index, chunk)| (*index, chunk))))
            .py_err()
    }

    /// Drop the staged chunks; the batch is finished. Idempotent.
    fn discard(&self) {
        self.lock().take();
    }

    /// Number of chunks staged.
    fn __len__(&self) -> usize {
        self.lock().as_ref().map_or(0, BTreeMap::len)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Commit when the block ended without an exception, else discard; never suppresses
    /// the exception (returns False).
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        match exc_type {
            Some(t) if !t.is_none() => self.discard(),
            _ => self.commit(py)?,
        }
        Ok(false)
    }
}

#[pymethods]
impl PyChannel {
    /// A batch of chunk writes committed together (see `ChannelBatch`). ReadOnlyError on a
    /// read-only handle.
    fn batch(&self) -> PyResult<PyChannelBatch> {
        let channel = self.any()?;
        if !channel.is_writable() {
            return Err(to_py(ci::Error::ReadOnly));
        }
        Ok(PyChannelBatch {
            channel,
            staged: Mutex::new(Some(BTreeMap::new())),
        })
    }
}

/// `snapshot_id()` and `pinned` for a class whose method `$handle()` gives its crate handle.
macro_rules! pinned_methods {
    ($class:ty, $handle:ident) => {
        #[pymethods]
        impl $class {
            /// The id of the commit this handle reads (bytes): `open_snapshot(path, id)` of
            /// this class opens exactly that commit again, in any process, while the writer
            /// goes on.
            fn snapshot_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
                Ok(snapshot_bytes(py, self.$handle()?.snapshot_id()))
            }

            /// Whether this handle was opened with `open_snapshot` (read-only, on one
            /// commit it never moves from).
            #[getter]
            fn pinned(&self) -> PyResult<bool> {
                Ok(self.$handle()?.is_pinned())
            }
        }
    };
}
pinned_methods!(PyChannel, any);
pinned_methods!(PyImage, image);

/// What the file at `path` holds, from its newest commit, without opening it as a
/// Channel or Image: a dict of `width`, `height`, `has_names`, `generation`,
/// `format_version` and `channels`, a list of dicts of `name`, `dtype`, `codec`, `level`,
/// `rows_per_chunk`, `num_chunks`, `chunk_size` (bytes).
#[pyfunction]
#[pyo3(text_signature = "(path)")]
pub fn inspect(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyDict>> {
    let path = absolute(&path);
    let info = py
        .detach(|| ci::inspect(&path))
        .map_err(|e| to_py_at(e, Some(&path)))?;
    let channels = PyList::empty(py);
    for c in &info.channels {
        let d = PyDict::new(py);
        d.set_item("name", &c.name)?;
        d.set_item("dtype", np_dtype(py, c.dtype)?)?;
        d.set_item("codec", Bound::new(py, PyCodec::from_ci(c.codec)?)?)?;
        d.set_item("level", c.level)?;
        d.set_item("rows_per_chunk", c.geometry.rows_per_chunk())?;
        d.set_item("num_chunks", c.geometry.num_chunks())?;
        d.set_item("chunk_size", c.geometry.chunk_bytes())?;
        channels.append(d)?;
    }
    let d = PyDict::new(py);
    d.set_item("width", info.width)?;
    d.set_item("height", info.height)?;
    d.set_item("has_names", info.has_names)?;
    d.set_item("generation", info.generation)?;
    d.set_item("format_version", info.format_version)?;
    d.set_item("channels", channels)?;
    Ok(d)
}
