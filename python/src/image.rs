//! `Image`: several channels of one dtype and size, optional names, JSON metadata.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use ci::{AnyChannel, Dtype, Image};
use numpy::ndarray::Array2;
use numpy::{PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::channel::{
    ChannelState, Origin, PyChannel, absolute, check_array_dtype, check_nthreads, check_shape,
    compaction_dict, contiguous, lock, settings, stats_dict, verification_dict, with_slice,
};
use crate::codec::PyCodec;
use crate::convert::{
    Elem, Level, Size, WideLevel, as_ndarray, dispatch, json_to_py, np_dtype, parse_dtype,
    py_to_json,
};
use crate::errors::{IntoPyResult, borrow_err, closed, to_py_at};

/// A typed image with its element type erased.
#[derive(Clone)]
pub enum AnyImage {
    U8(Image<u8>),
    U16(Image<u16>),
    U32(Image<u32>),
    I8(Image<i8>),
    I16(Image<i16>),
    I32(Image<i32>),
    F16(Image<ci::f16>),
    F32(Image<f32>),
    F64(Image<f64>),
}

/// Run `$body` with `$i` bound to the typed image inside `$img` (and `$T` to its element
/// type, in the second form).
macro_rules! with_image {
    ($img:expr, $i:ident => $body:expr) => {
        with_image!($img, $i, _T => $body)
    };
    ($img:expr, $i:ident, $T:ident => $body:expr) => {
        match $img {
            AnyImage::U8($i) => {
                #[allow(dead_code)]
                type $T = u8;
                $body
            }
            AnyImage::U16($i) => {
                #[allow(dead_code)]
                type $T = u16;
                $body
            }
            AnyImage::U32($i) => {
                #[allow(dead_code)]
                type $T = u32;
                $body
            }
            AnyImage::I8($i) => {
                #[allow(dead_code)]
                type $T = i8;
                $body
            }
            AnyImage::I16($i) => {
                #[allow(dead_code)]
                type $T = i16;
                $body
            }
            AnyImage::I32($i) => {
                #[allow(dead_code)]
                type $T = i32;
                $body
            }
            AnyImage::F16($i) => {
                #[allow(dead_code)]
                type $T = ci::f16;
                $body
            }
            AnyImage::F32($i) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            AnyImage::F64($i) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
        }
    };
}

impl AnyImage {
    fn width(&self) -> usize {
        with_image!(self, i => i.width())
    }
    fn height(&self) -> usize {
        with_image!(self, i => i.height())
    }
    fn num_channels(&self) -> usize {
        with_image!(self, i => i.num_channels())
    }
    fn channel_names(&self) -> Vec<String> {
        with_image!(self, i => i.channel_names())
    }

    /// The untyped handle of the channel at `index` (IndexError past the end).
    pub fn channel_any(&self, index: usize) -> PyResult<AnyChannel> {
        with_image!(self, i => i.channel(index).map(|c| c.into_any())).py_err()
    }

    /// Index of the first channel named `name` (the original's ValueError otherwise).
    fn index_of(&self, name: &str) -> PyResult<usize> {
        with_image!(self, i => i.channel_index(name)).map_err(|e| match e {
            ci::Error::UnknownChannelName(_) => {
                PyValueError::new_err(format!("Unknown channelname '{name}' encountered"))
            }
            other => crate::errors::to_py(other),
        })
    }
}

fn open_typed<T: Elem>(py: Python<'_>, path: &Path, read_only: bool) -> PyResult<AnyImage> {
    py.detach(|| {
        if read_only {
            Image::<T>::open_read_only(path)
        } else {
            Image::<T>::open(path)
        }
    })
    .map(T::wrap_image)
    .map_err(|e| to_py_at(e, Some(path)))
}

/// Open an image file with the element type `dtype`, or the one its channels have.
pub(crate) fn open_image(
    py: Python<'_>,
    path: &Path,
    read_only: bool,
    dtype: Option<Dtype>,
) -> PyResult<(AnyImage, Dtype)> {
    let dtype = match dtype {
        Some(d) => d,
        None => {
            let info = py
                .detach(|| ci::inspect(path))
                .map_err(|e| to_py_at(e, Some(path)))?;
            match info.channels.first() {
                Some(c) => c.dtype,
                None => {
                    return Err(PyValueError::new_err(format!(
                        "{} is an image without channels, whose dtype the file does not record: \
                         pass dtype= to Image.open",
                        path.display()
                    )));
                }
            }
        }
    };
    let image = dispatch!(dtype, T => open_typed::<T>(py, path, read_only))?;
    Ok((image, dtype))
}

fn build_image<T: Elem>(
    py: Python<'_>,
    arrays: &[Bound<'_, PyUntypedArray>],
    w: usize,
    h: usize,
    names: &[String],
    s: ci::Settings,
) -> PyResult<AnyImage> {
    // Every array is C-contiguous and aligned (`contiguous`), so each borrow is a slice.
    let borrows = arrays
        .iter()
        .map(|a| {
            a.cast::<PyArrayDyn<T>>()?
                .try_readonly()
                .map_err(borrow_err)
        })
        .collect::<PyResult<Vec<_>>>()?;
    let slices = borrows
        .iter()
        .map(|b| {
            b.as_slice()
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
        })
        .collect::<PyResult<Vec<&[T]>>>()?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    py.detach(|| Image::<T>::from_channels(&slices, w, h, &names, s))
        .map(T::wrap_image)
        .py_err()
}

fn create_empty<T: Elem>(
    py: Python<'_>,
    path: Option<&Path>,
    w: usize,
    h: usize,
) -> PyResult<AnyImage> {
    py.detach(|| match path {
        None => Image::<T>::new(w, h),
        Some(p) => Image::<T>::create(p, w, h),
    })
    .map(T::wrap_image)
    .map_err(|e| to_py_at(e, path))
}

fn decompressed_all<T: Elem>(py: Python<'_>, image: &Image<T>) -> PyResult<Py<PyList>> {
    let (w, h) = (image.width(), image.height());
    let planes = py.detach(|| image.get_decompressed()).py_err()?;
    let list = PyList::empty(py);
    for plane in planes {
        let a = Array2::from_shape_vec((h, w), plane)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        list.append(PyArray2::from_owned_array(py, a))?;
    }
    Ok(list.unbind())
}

/// The mutable part of an `Image` object.
struct ImageState {
    /// `None` once closed.
    image: Option<AnyImage>,
    dtype: Dtype,
    /// Absolute path of the file; `None` for an anonymous image.
    path: Option<PathBuf>,
    read_only: bool,
    /// Channel objects handed out, to close them with the image and track their positions.
    children: Vec<Weak<Mutex<ChannelState>>>,
}

/// An image: channels of one dtype and size, optional channel names (none, or one per
/// channel; duplicates allowed, lookup takes the first) and JSON metadata.
///
/// Channel objects obtained from an image read and write through to it; after
/// `remove_channel` they raise `ChannelRemovedError` instead of dangling.
#[pyclass(module = "compressed_image", name = "Image", frozen, weakref)]
pub struct PyImage {
    state: Mutex<ImageState>,
}

impl Drop for PyImage {
    fn drop(&mut self) {
        let image = lock(&self.state).image.take();
        if let Some(image) = image {
            Python::try_attach(|py| py.detach(move || drop(image)));
        }
    }
}

impl PyImage {
    fn wrap(image: AnyImage, dtype: Dtype, path: Option<PathBuf>, read_only: bool) -> PyImage {
        PyImage {
            state: Mutex::new(ImageState {
                image: Some(image),
                dtype,
                path,
                read_only,
                children: Vec::new(),
            }),
        }
    }

    fn image(&self) -> PyResult<(AnyImage, Dtype)> {
        let st = lock(&self.state);
        match &st.image {
            Some(i) => Ok((i.clone(), st.dtype)),
            None => Err(closed("Image")),
        }
    }

    fn img(&self) -> PyResult<AnyImage> {
        Ok(self.image()?.0)
    }

    /// A Channel object for the channel at `position`, tracked by this image.
    fn child(&self, image: &AnyImage, position: usize) -> PyResult<PyChannel> {
        let any = image.channel_any(position)?;
        let path = lock(&self.state).path.clone();
        let state = PyChannel::new_state(
            any,
            path,
            Origin::Image {
                position: Some(position),
            },
        )?;
        let mut st = lock(&self.state);
        st.children.retain(|w| w.strong_count() > 0);
        st.children.push(Arc::downgrade(&state));
        Ok(PyChannel { state })
    }

    /// A channel by index (IndexError past the end) or name (ValueError if unknown).
    fn child_by_key(&self, key: &Bound<'_, PyAny>) -> PyResult<PyChannel> {
        let image = self.img()?;
        if let Ok(name) = key.cast::<PyString>() {
            let index = image.index_of(&name.to_cow()?)?;
            return self.child(&image, index);
        }
        let Size(index) = key.extract().map_err(|e: PyErr| {
            PyTypeError::new_err(format!(
                "channel key must be a str name or a non-negative int index ({})",
                e.value(key.py())
            ))
        })?;
        if index >= image.num_channels() {
            return Err(PyIndexError::new_err("Channel index out of range"));
        }
        self.child(&image, index)
    }
}

#[pymethods]
impl PyImage {
    /// An anonymous image from planar channel data: each item of `channels` is force-cast
    /// to `dtype` and must hold `width * height` elements (1-D, or 2-D `(height, width)`).
    #[new]
    #[pyo3(
        signature = (dtype, channels, width, height, channel_names = Vec::new(), compression_codec = PyCodec::lz4, compression_level = WideLevel(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(dtype, channels, width, height, channel_names=[], compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn py_new(
        py: Python<'_>,
        dtype: &Bound<'_, PyAny>,
        channels: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        channel_names: Vec<String>,
        compression_codec: PyCodec,
        compression_level: WideLevel,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyImage> {
        let dt = parse_dtype(dtype)?;
        let descr = np_dtype(py, dt)?;
        let mut arrays = Vec::new();
        for item in channels.try_iter()? {
            // Force-cast to the dtype (numpy's unsafe casting, as the original's
            // `py::array::forcecast`), C-contiguous and aligned.
            let arr = contiguous(&item?, Some(&descr))?;
            check_shape(&arr, width.0, height.0)?;
            arrays.push(arr);
        }
        let s = settings(
            compression_codec,
            compression_level.0,
            block_size.0,
            chunk_size.0,
        );
        let image = if arrays.is_empty() && channel_names.is_empty() {
            dispatch!(dt, T => create_empty::<T>(py, None, width.0, height.0))?
        } else {
            dispatch!(dt, T => build_image::<T>(py, &arrays, width.0, height.0, &channel_names, s))?
        };
        Ok(PyImage::wrap(image, dt, None, false))
    }

    /// A new, empty image file at `path` (replacing any file there), opened read-write.
    #[staticmethod]
    #[pyo3(text_signature = "(path, dtype, width, height)")]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        dtype: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
    ) -> PyResult<PyImage> {
        let path = absolute(&path);
        let dt = parse_dtype(dtype)?;
        let image = dispatch!(dt, T => create_empty::<T>(py, Some(&path), width.0, height.0))?;
        Ok(PyImage::wrap(image, dt, Some(path), false))
    }

    /// Open an image file read-write (one writer per file; a second gets `LockedError`) or
    /// read-only. The dtype is the one its channels have; an image file without channels
    /// does not record one, so pass `dtype=` for it.
    #[staticmethod]
    #[pyo3(
        signature = (path, read_only = false, *, dtype = None),
        text_signature = "(path, read_only=False, *, dtype=None)"
    )]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyImage> {
        let path = absolute(&path);
        let dtype = dtype.map(parse_dtype).transpose()?;
        let (image, dt) = open_image(py, &path, read_only, dtype)?;
        Ok(PyImage::wrap(image, dt, Some(path), read_only))
    }

    #[staticmethod]
    fn _unpickle(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        dtype: &Bound<'_, PyAny>,
    ) -> PyResult<PyImage> {
        PyImage::open(py, path, read_only, Some(dtype))
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let (path, read_only, dtype) = {
            let st = lock(&slf.get().state);
            if st.image.is_none() {
                return Err(closed("Image"));
            }
            let path = st.path.clone().ok_or_else(|| {
                PyTypeError::new_err(
                    "cannot pickle an anonymous (in-memory) Image: it has no file. \
                     save(path) it and pickle Image.open(path) instead",
                )
            })?;
            (path, st.read_only, st.dtype)
        };
        let f = slf.get_type().getattr("_unpickle")?;
        let args = PyTuple::new(
            py,
            [
                path.into_pyobject(py)?.into_any(),
                pyo3::types::PyBool::new(py, read_only)
                    .to_owned()
                    .into_any(),
                PyString::new(py, dtype.name()).into_any(),
            ],
        )?;
        Ok((f, args))
    }

    /// Move a read-only handle to the newest commit; returns whether it changed.
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        let image = self.img()?;
        py.detach(|| with_image!(&image, i => i.refresh())).py_err()
    }

    /// Make every commit durable (fsync). No-op for read-only handles.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let image = self.img()?;
        py.detach(|| with_image!(&image, i => i.sync())).py_err()
    }

    /// Write the image (current commit, without dead space) to a new file at `path`.
    #[pyo3(text_signature = "($self, path)")]
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let image = self.img()?;
        py.detach(|| with_image!(&image, i => i.save_as(&path)))
            .map_err(|e| to_py_at(e, Some(&path)))
    }

    /// Rewrite the file without dead space (dict: `file_len_before`, `file_len_after`,
    /// `reclaimed`).
    fn compact<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let image = self.img()?;
        let c = py
            .detach(|| with_image!(&image, i => i.compact()))
            .py_err()?;
        compaction_dict(py, c)
    }

    /// Check every record of the current commit (dict with `ok`, `problems`, ...).
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let image = self.img()?;
        let v = py
            .detach(|| with_image!(&image, i => i.verify()))
            .py_err()?;
        verification_dict(py, v)
    }

    /// Space accounting of the file (dict).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let image = self.img()?;
        let s = py.detach(|| with_image!(&image, i => i.stats())).py_err()?;
        stats_dict(py, s)
    }

    /// Release the image and every Channel object obtained from it (with the last handle
    /// of a file, its writer lock). Using them afterwards raises RuntimeError. Idempotent.
    fn close(&self, py: Python<'_>) {
        let (image, children) = {
            let mut st = lock(&self.state);
            (st.image.take(), std::mem::take(&mut st.children))
        };
        let channels: Vec<AnyChannel> = children
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|c| lock(&c).any.take())
            .collect();
        py.detach(move || drop((image, channels)));
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.state).image.is_none()
    }

    /// The file's absolute path, or None for an anonymous image.
    #[getter]
    fn path(&self) -> Option<String> {
        lock(&self.state)
            .path
            .as_ref()
            .map(|p| p.display().to_string())
    }

    /// Whether this handle was opened read-only.
    #[getter]
    fn read_only(&self) -> bool {
        lock(&self.state).read_only
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    // ---- the original API -------------------------------------------------------------

    /// Compress `data` (2-D `(height, width)`, exactly the image dtype, any strides) as a
    /// new last channel named `name`.
    #[pyo3(
        signature = (data, width, height, name = None, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "($self, data, width, height, name=None, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn add_channel(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        name: Option<String>,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<()> {
        let (image, dtype) = self.image()?;
        let arr = as_ndarray(data, "data")?;
        check_array_dtype(&arr, dtype, "add_channel")?;
        if arr.ndim() != 2 {
            return Err(PyValueError::new_err("Array must be 2-dimensional."));
        }
        if (width.0, height.0) != (image.width(), image.height()) {
            return Err(PyValueError::new_err(format!(
                "Invalid channel size {} x {}: the image is {} x {}",
                width.0,
                height.0,
                image.width(),
                image.height()
            )));
        }
        check_shape(&arr, width.0, height.0)?;
        let s = settings(
            compression_codec,
            compression_level.0,
            block_size.0,
            chunk_size.0,
        );
        with_image!(&image, i, T => {
            with_slice::<T, _>(&arr, |data| {
                py.detach(|| i.add_channel(data, name.as_deref(), s).map(drop))
            })?
            .py_err()
        })
    }

    /// Remove a channel by name (first match) or index; Channel objects of it raise
    /// `ChannelRemovedError` from then on.
    #[pyo3(text_signature = "($self, name_or_index)")]
    fn remove_channel(&self, py: Python<'_>, name_or_index: &Bound<'_, PyAny>) -> PyResult<()> {
        let image = self.img()?;
        let index = if let Ok(name) = name_or_index.cast::<PyString>() {
            image.index_of(&name.to_cow()?)?
        } else {
            let Size(index) = name_or_index.extract()?;
            let n = image.num_channels();
            if index >= n {
                return Err(PyValueError::new_err(format!(
                    "Unable to remove channel with index {index} as the image only has {n} channels"
                )));
            }
            index
        };
        py.detach(|| with_image!(&image, i => i.remove_channel(index)))
            .py_err()?;
        let st = lock(&self.state);
        for child in st.children.iter().filter_map(Weak::upgrade) {
            let mut c = lock(&child);
            if let Origin::Image { position: Some(p) } = c.origin {
                c.origin = Origin::Image {
                    position: match p.cmp(&index) {
                        std::cmp::Ordering::Less => Some(p),
                        std::cmp::Ordering::Equal => None,
                        std::cmp::Ordering::Greater => Some(p - 1),
                    },
                };
            }
        }
        Ok(())
    }

    /// `image[i]` (IndexError past the end; negative indices are a TypeError, as in the
    /// original) or `image["name"]` (ValueError if unknown).
    fn __getitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<PyChannel> {
        self.child_by_key(key)
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.img()?.num_channels())
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.channels(py)?.bind(py).try_iter()?.into_any())
    }

    /// The channel at `index`, or the first named `name` (`channel(0)`, `channel("R")`,
    /// `channel(name="R")`).
    #[pyo3(signature = (index = None, name = None), text_signature = "($self, index=None, name=None)")]
    fn channel(
        &self,
        index: Option<&Bound<'_, PyAny>>,
        name: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyChannel> {
        match (index, name) {
            (Some(key), None) | (None, Some(key)) => self.child_by_key(key),
            _ => Err(PyTypeError::new_err(
                "channel() takes exactly one of index or name",
            )),
        }
    }

    /// Every channel, in order (a new list).
    fn channels(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let image = self.img()?;
        let list = PyList::empty(py);
        for pos in 0..image.num_channels() {
            list.append(Bound::new(py, self.child(&image, pos)?)?)?;
        }
        Ok(list.unbind())
    }

    /// Index of the first channel named `channelname` (ValueError if none).
    #[pyo3(text_signature = "($self, channelname)")]
    fn get_channel_index(&self, channelname: &str) -> PyResult<usize> {
        self.img()?.index_of(channelname)
    }

    /// Channel names in order; `[]` when the image has no names.
    fn get_channel_names(&self) -> PyResult<Vec<String>> {
        Ok(self.img()?.channel_names())
    }

    /// Name every channel: exactly one name per channel (ValueError otherwise).
    #[pyo3(text_signature = "($self, names)")]
    fn set_channel_names(&self, py: Python<'_>, names: Vec<String>) -> PyResult<()> {
        let image = self.img()?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        py.detach(|| with_image!(&image, i => i.set_channel_names(&names)))
            .py_err()
    }

    /// The metadata as Python values (None when never set).
    fn get_metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let image = self.img()?;
        let meta = with_image!(&image, i => i.metadata());
        json_to_py(py, &meta)
    }

    /// Replace the metadata with a JSON-convertible value (dict, list, str, int, float,
    /// bool, None).
    #[pyo3(text_signature = "($self, metadata)")]
    fn set_metadata(&self, py: Python<'_>, metadata: &Bound<'_, PyAny>) -> PyResult<()> {
        let image = self.img()?;
        let json = py_to_json(metadata)?;
        py.detach(|| with_image!(&image, i => i.set_metadata(json)))
            .py_err()
    }

    /// Every channel decompressed: a list of 2-D `(height, width)` arrays.
    fn get_decompressed(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let image = self.img()?;
        with_image!(&image, i => decompressed_all(py, i))
    }

    /// Uncompressed bytes over stored bytes, all channels (1.0 without channels).
    fn compression_ratio(&self) -> PyResult<f64> {
        let image = self.img()?;
        with_image!(&image, i => i.compression_ratio()).py_err()
    }

    /// Print sizes, the compression ratio (both in bytes), names and metadata to stdout,
    /// in the original's layout.
    fn print_statistics(&self, py: Python<'_>) -> PyResult<()> {
        let image = self.img()?;
        let channels: Vec<AnyChannel> = (0..image.num_channels())
            .map(|p| image.channel_any(p))
            .collect::<PyResult<_>>()?;
        let (mut raw, mut stored, mut chunks) = (0usize, 0usize, 0usize);
        for c in &channels {
            raw += c.uncompressed_size().py_err()? * c.dtype().py_err()?.size();
            stored += c.compressed_bytes().py_err()?;
            chunks += c.num_chunks().py_err()?;
        }
        let ratio = with_image!(&image, i => i.compression_ratio()).py_err()?;
        let builtins = py.import("builtins")?;
        let ratio: String = builtins.call_method1("format", (ratio, "g"))?.extract()?;
        let meta = json_to_py(py, &with_image!(&image, i => i.metadata()))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("indent", 4)?;
        let meta: String = py
            .import("json")?
            .call_method("dumps", (meta,), Some(&kwargs))?
            .extract()?;
        let text = format!(
            "Statistics for image buffer:\n Width:             {}\n Height:            {}\n Channels:          {}\n Channelnames:      [{}]\n --------------     \n Compressed Size:   {stored}\n Uncompressed Size: {raw}\n Compression ratio: {ratio}x\n Num Chunks:        {chunks}\n Metadata:          \n {meta}",
            image.width(),
            image.height(),
            channels.len(),
            image.channel_names().join(", "),
        );
        builtins.call_method1("print", (text,))?;
        Ok(())
    }

    /// Set the thread count of this image and of channels obtained from it afterwards
    /// (1–32767).
    #[pyo3(text_signature = "($self, nthreads)")]
    fn update_nthreads(&self, nthreads: Size) -> PyResult<()> {
        let n = check_nthreads(nthreads.0)?;
        let mut st = lock(&self.state);
        let image = st.image.as_mut().ok_or_else(|| closed("Image"))?;
        with_image!(image, i => i.set_threads(n)).py_err()
    }

    /// The nominal chunk size (bytes) shared by every channel; 0 without channels;
    /// RuntimeError if channels differ.
    fn chunk_size(&self) -> PyResult<usize> {
        let image = self.img()?;
        with_image!(&image, i => i.chunk_size()).map_err(|_| {
            PyRuntimeError::new_err(
                "Validation Error: Channels in image do not all have the same chunk size",
            )
        })
    }

    /// The block size shared by every channel; 0 without channels; RuntimeError if
    /// channels differ.
    fn block_size(&self) -> PyResult<usize> {
        let image = self.img()?;
        with_image!(&image, i => i.block_size()).map_err(|_| {
            PyRuntimeError::new_err(
                "Validation Error: Channels in image do not all have the same block size",
            )
        })
    }

    /// `(num_channels, height, width)`.
    #[getter]
    fn shape(&self) -> PyResult<(usize, usize, usize)> {
        let image = self.img()?;
        Ok((image.num_channels(), image.height(), image.width()))
    }

    /// Width of every channel.
    #[getter]
    fn width(&self) -> PyResult<usize> {
        Ok(self.img()?.width())
    }

    /// Height of every channel.
    #[getter]
    fn height(&self) -> PyResult<usize> {
        Ok(self.img()?.height())
    }

    /// Number of channels.
    #[getter]
    fn num_channels(&self) -> PyResult<usize> {
        Ok(self.img()?.num_channels())
    }

    /// The numpy dtype of every channel (not in the original).
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, numpy::PyArrayDescr>> {
        let (_, dtype) = self.image()?;
        np_dtype(py, dtype)
    }

    fn __repr__(&self) -> String {
        let st = lock(&self.state);
        let Some(image) = &st.image else {
            return "<compressed_image.Image (closed)>".to_string();
        };
        let place = match &st.path {
            None => "anonymous".to_string(),
            Some(p) => format!(
                "path={:?}{}",
                p.display().to_string(),
                if st.read_only { " read-only" } else { "" }
            ),
        };
        format!(
            "<compressed_image.Image dtype={} shape=({}, {}, {}) names={:?} {place}>",
            st.dtype,
            image.num_channels(),
            image.height(),
            image.width(),
            image.channel_names(),
        )
    }
}
