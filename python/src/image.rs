//! `Image`: channels of one size, optional names and JSON metadata. Each channel has its
//! own dtype in the file; the Python object is either single-typed (one dtype for every
//! channel, enforced by `add_channel`, as compressed-image 1.0.1) or mixed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use ci::{AnyImage, Dtype};
use numpy::{PyArrayDescr, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::channel::{ChannelHandle, Origin, PyChannel};
use crate::codec::PyCodec;
use crate::convert::{
    array_dtype, as_ndarray, check_array_dtype, check_shape, contiguous, dispatch, np_dtype,
    parse_dtype, with_bytes,
};
use crate::errors::{IntoPyResult, to_py_at};
use crate::handle::{Handle, PyHandle, absolute, file_handle_methods, set_threads};
use crate::json::{json_to_py, py_to_json};
use crate::pinned::{parse_snapshot_id, snapshot_bytes};
use crate::settings::{Level, Size, Threads, WideLevel, settings};
use crate::typed::{add_lazy, decompressed};

/// A `dtype` argument of `Image`, `Image.create` and `Image.open`.
enum DtypeSpec {
    /// One dtype: every channel holds it (the 1.0.1 API).
    One(Dtype),
    /// A list or tuple: the dtype of each channel, in order; the image is mixed.
    PerChannel(Vec<Dtype>),
}

impl DtypeSpec {
    fn parse(obj: &Bound<'_, PyAny>) -> PyResult<DtypeSpec> {
        if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
            let dtypes = obj
                .try_iter()?
                .map(|d| parse_dtype(&d?))
                .collect::<PyResult<_>>()?;
            return Ok(DtypeSpec::PerChannel(dtypes));
        }
        parse_dtype(obj).map(DtypeSpec::One)
    }

    /// ValueError unless a per-channel list has exactly `count` entries.
    fn check_count(&self, count: usize) -> PyResult<()> {
        match self {
            DtypeSpec::PerChannel(list) if list.len() != count => {
                Err(PyValueError::new_err(format!(
                    "a list of dtypes gives one dtype per channel: got {} dtypes for {count} channels",
                    list.len()
                )))
            }
            _ => Ok(()),
        }
    }

    /// The dtype of channel `index` (after [`check_count`](Self::check_count)).
    fn of_channel(&self, index: usize) -> Dtype {
        match self {
            DtypeSpec::One(d) => *d,
            DtypeSpec::PerChannel(list) => list[index],
        }
    }

    /// The dtype every channel must have: `None` for a mixed image.
    fn single(&self) -> Option<Dtype> {
        match self {
            DtypeSpec::One(d) => Some(*d),
            DtypeSpec::PerChannel(_) => None,
        }
    }
}

/// What an `Image` object keeps beside its crate handle.
pub struct ImageExtra {
    /// The dtype every channel must have (`add_channel` enforces it); `None` for a mixed
    /// image, whose channels each have their own.
    dtype: Option<Dtype>,
    /// Channel objects handed out, to close them with the image and track their positions.
    children: Vec<Weak<ChannelHandle>>,
}

/// An image: channels of one size, each with its own dtype and compression settings,
/// optional channel names (none, or one per channel; duplicates allowed, lookup takes the
/// first) and JSON metadata.
///
/// An image made or opened with one dtype holds only channels of that dtype, as in
/// compressed-image 1.0.1; one made with a list of dtypes, or opened from a file whose
/// channels differ, is mixed. Channel objects obtained from an image read and write
/// through to it; after `remove_channel` they raise `ChannelRemovedError` instead of
/// dangling.
#[pyclass(module = "compressed_image", name = "Image", frozen, weakref)]
pub struct PyImage {
    state: Handle<AnyImage, ImageExtra>,
}

impl PyHandle for PyImage {
    type Resource = AnyImage;
    type Extra = ImageExtra;
    const KIND: &'static str = "Image";

    fn handle(&self) -> &Handle<AnyImage, ImageExtra> {
        &self.state
    }

    fn close_dependents(&self, py: Python<'_>) {
        let children = std::mem::take(&mut self.state.lock().extra.children);
        let channels: Vec<_> = children
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|c| c.take())
            .collect();
        py.detach(move || drop(channels));
    }

    /// `(dtype, snapshot)`: the single dtype's name, or None for a mixed image; the
    /// snapshot id of a pinned handle, or None.
    fn unpickle_args<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let slot = self.state.lock();
        let dtype = slot.extra.dtype.map(Dtype::name);
        let snapshot = (slot.resource.as_ref())
            .filter(|image| image.is_pinned())
            .map(|image| snapshot_bytes(py, image.snapshot_id()));
        Ok(vec![
            dtype.into_pyobject(py)?.into_any(),
            snapshot.into_pyobject(py)?.into_any(),
        ])
    }
}

file_handle_methods!(PyImage);

/// Open an image file; `dtype` is the single dtype its channels must all have, or `None`
/// for a mixed image.
fn open_image(
    py: Python<'_>,
    path: &Path,
    read_only: bool,
    dtype: Option<Dtype>,
) -> PyResult<AnyImage> {
    let image = py
        .detach(|| {
            if read_only {
                AnyImage::open_read_only(path)
            } else {
                AnyImage::open(path)
            }
        })
        .map_err(|e| to_py_at(e, Some(path)))?;
    let found = image.dtypes();
    if let Some(expected) = dtype
        && let Some(other) = found.iter().find(|d| **d != expected)
    {
        return Err(PyValueError::new_err(format!(
            "{}: the image holds {other} channels, not {expected}",
            path.display()
        )));
    }
    Ok(image)
}

/// Open the image file at `path` read-only at the commit `id` names.
pub fn open_pinned_image(py: Python<'_>, path: &Path, id: &ci::SnapshotId) -> PyResult<AnyImage> {
    py.detach(|| AnyImage::open_snapshot(path, id))
        .map_err(|e| to_py_at(e, Some(path)))
}

/// `[float16, uint32]`, for messages.
fn dtype_names(dtypes: &[Dtype]) -> String {
    let names: Vec<&str> = dtypes.iter().map(|d| d.name()).collect();
    format!("[{}]", names.join(", "))
}

/// The single dtype of an image opened without a `dtype` argument: the one its channels
/// share; `None` (mixed) when they differ or there are none.
pub fn common_dtype(dtypes: &[Dtype]) -> Option<Dtype> {
    let (first, rest) = dtypes.split_first()?;
    rest.iter().all(|d| d == first).then_some(*first)
}

impl PyImage {
    pub fn wrap(image: AnyImage, dtype: Option<Dtype>, path: Option<PathBuf>) -> PyImage {
        let extra = ImageExtra {
            dtype,
            children: Vec::new(),
        };
        PyImage {
            state: Handle::new(image, path, extra),
        }
    }

    pub(crate) fn image(&self) -> PyResult<AnyImage> {
        self.state.get(Self::KIND)
    }

    /// A Channel object for the channel at `position`, tracked by this image.
    fn child(&self, image: &AnyImage, position: usize) -> PyResult<PyChannel> {
        let any = image.channel(position).py_err()?;
        let origin = Origin::Image {
            position: Some(position),
        };
        let channel = PyChannel::new(any, self.state.path().map(Path::to_path_buf), origin);
        let mut slot = self.state.lock();
        slot.extra.children.retain(|w| w.strong_count() > 0);
        slot.extra.children.push(Arc::downgrade(&channel.state));
        Ok(channel)
    }

    /// A channel by index (IndexError past the end) or name (ValueError if unknown).
    fn child_by_key(&self, key: &Bound<'_, PyAny>) -> PyResult<PyChannel> {
        let image = self.image()?;
        if let Ok(name) = key.cast::<PyString>() {
            let index = image.channel_index(&name.to_cow()?).py_err()?;
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

    /// After removing the channel at `index`: Channel objects of it are removed, those
    /// after it move down one.
    fn shift_children(&self, index: usize) {
        let slot = self.state.lock();
        for child in slot.extra.children.iter().filter_map(Weak::upgrade) {
            let mut c = child.lock();
            if let Origin::Image { position: Some(p) } = c.extra {
                c.extra = Origin::Image {
                    position: match p.cmp(&index) {
                        std::cmp::Ordering::Less => Some(p),
                        std::cmp::Ordering::Equal => None,
                        std::cmp::Ordering::Greater => Some(p - 1),
                    },
                };
            }
        }
    }

    /// Compress `arr` (of `dtype`, contiguous) as a new last channel.
    fn push_channel(
        py: Python<'_>,
        image: &AnyImage,
        arr: &Bound<'_, PyUntypedArray>,
        dtype: Dtype,
        name: Option<&str>,
        s: ci::Settings,
    ) -> PyResult<()> {
        with_bytes(arr, dtype, |data| {
            py.detach(|| image.add_channel_bytes(dtype, data, name, s).map(drop))
        })?
        .py_err()
    }
}

#[pymethods]
impl PyImage {
    /// An anonymous image from planar channel data: each item of `channels` is force-cast
    /// to `dtype` and must hold `width * height` elements (1-D, or 2-D `(height, width)`).
    /// `dtype` is one dtype for every channel, or a list with one dtype per channel (a
    /// mixed image).
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
        let spec = DtypeSpec::parse(dtype)?;
        let items = channels.try_iter()?.collect::<PyResult<Vec<_>>>()?;
        spec.check_count(items.len())?;
        let mut arrays = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let dt = spec.of_channel(i);
            let arr = contiguous(item, Some(dt))?;
            check_shape(&arr, width.0, height.0)?;
            arrays.push((arr, dt));
        }
        if !channel_names.is_empty() && channel_names.len() != arrays.len() {
            return Err(PyValueError::new_err(format!(
                "Invalid number of channel names: got {} for {} channels (pass none, or one per channel)",
                channel_names.len(),
                arrays.len()
            )));
        }
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        let image = py.detach(|| AnyImage::new(width.0, height.0)).py_err()?;
        for (i, (arr, dt)) in arrays.iter().enumerate() {
            let name = channel_names.get(i).map(String::as_str);
            PyImage::push_channel(py, &image, arr, *dt, name, s)?;
        }
        Ok(PyImage::wrap(image, spec.single(), None))
    }

    /// A new, empty image file at `path` (replacing any file there), opened read-write.
    /// `dtype` is the dtype of every channel, or `[]` for a mixed image.
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
        let spec = DtypeSpec::parse(dtype)?;
        spec.check_count(0)?;
        let image = py
            .detach(|| AnyImage::create(&path, width.0, height.0))
            .map_err(|e| to_py_at(e, Some(&path)))?;
        Ok(PyImage::wrap(image, spec.single(), Some(path)))
    }

    /// Open an image file read-write (one writer per file; a second gets `LockedError`) or
    /// read-only. Without `dtype`, the image is single-typed when its channels share one
    /// dtype and mixed otherwise (also when it has no channels); with `dtype`, every
    /// channel must have it, or, for a list, the channels must have exactly those dtypes
    /// (the image is then mixed).
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
        let spec = dtype.map(DtypeSpec::parse).transpose()?;
        let image = open_image(
            py,
            &path,
            read_only,
            spec.as_ref().and_then(DtypeSpec::single),
        )?;
        let found = image.dtypes();
        let single = match spec {
            None => common_dtype(&found),
            Some(DtypeSpec::One(d)) => Some(d),
            Some(DtypeSpec::PerChannel(list)) if list == found => None,
            Some(DtypeSpec::PerChannel(list)) => {
                return Err(PyValueError::new_err(format!(
                    "{}: the channels hold {}, not {}",
                    path.display(),
                    dtype_names(&found),
                    dtype_names(&list)
                )));
            }
        };
        Ok(PyImage::wrap(image, single, Some(path)))
    }

    /// Unpickling: reopen by path, single-typed (`dtype`, a name) or mixed (`None`), at
    /// the pinned commit `snapshot` if given.
    #[staticmethod]
    #[pyo3(signature = (path, read_only, dtype = None, snapshot = None))]
    fn _unpickle(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        dtype: Option<&Bound<'_, PyAny>>,
        snapshot: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyImage> {
        let dtype = dtype.map(parse_dtype).transpose()?;
        let image = match snapshot {
            Some(id) => open_pinned_image(py, &path, &parse_snapshot_id(id)?)?,
            None => open_image(py, &path, read_only, dtype)?,
        };
        Ok(PyImage::wrap(image, dtype, Some(path)))
    }

    // ---- the original API -------------------------------------------------------------

    /// Compress `data` (2-D `(height, width)`, any strides) as a new last channel named
    /// `name`. Its dtype must be the image's; a mixed image takes any supported dtype.
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
        let image = self.image()?;
        let arr = as_ndarray(data, "data")?;
        let dtype = match self.state.lock().extra.dtype {
            Some(d) => check_array_dtype(&arr, d, "add_channel").map(|()| d),
            None => array_dtype(&arr),
        }?;
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
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        PyImage::push_channel(py, &image, &arr, dtype, name.as_deref(), s)
    }

    /// A new last channel named `name` whose every element is `fill_value` (zeros without
    /// one), of the image's size: lazy, nothing is compressed until a chunk is set. Its
    /// dtype must be the image's; a mixed image takes any supported dtype. (Not in 1.0.1.)
    #[pyo3(
        signature = (dtype, name = None, fill_value = None, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "($self, dtype, name=None, fill_value=None, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn add_lazy_channel(
        &self,
        py: Python<'_>,
        dtype: &Bound<'_, PyAny>,
        name: Option<String>,
        fill_value: Option<&Bound<'_, PyAny>>,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<()> {
        let image = self.image()?;
        let dtype = parse_dtype(dtype)?;
        let expected = self.state.lock().extra.dtype;
        if let Some(expected) = expected
            && dtype != expected
        {
            return Err(PyValueError::new_err(format!(
                "add_lazy_channel requires dtype {expected}, instead got {dtype}"
            )));
        }
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        dispatch!(dtype, T => add_lazy::<T>(py, &image, fill_value, name.as_deref(), s))
    }

    /// Remove a channel by name (first match) or index; Channel objects of it raise
    /// `ChannelRemovedError` from then on.
    #[pyo3(text_signature = "($self, name_or_index)")]
    fn remove_channel(&self, py: Python<'_>, name_or_index: &Bound<'_, PyAny>) -> PyResult<()> {
        let image = self.image()?;
        let index = if let Ok(name) = name_or_index.cast::<PyString>() {
            image.channel_index(&name.to_cow()?).py_err()?
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
        py.detach(|| image.remove_channel(index)).py_err()?;
        self.shift_children(index);
        Ok(())
    }

    /// `image[i]` (IndexError past the end; negative indices are a TypeError, as in the
    /// original) or `image["name"]` (ValueError if unknown). The Channel has that
    /// channel's own dtype.
    fn __getitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<PyChannel> {
        self.child_by_key(key)
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.image()?.num_channels())
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
        let image = self.image()?;
        let list = PyList::empty(py);
        for pos in 0..image.num_channels() {
            list.append(Bound::new(py, self.child(&image, pos)?)?)?;
        }
        Ok(list.unbind())
    }

    /// Index of the first channel named `channelname` (ValueError if none).
    #[pyo3(text_signature = "($self, channelname)")]
    fn get_channel_index(&self, channelname: &str) -> PyResult<usize> {
        self.image()?.channel_index(channelname).py_err()
    }

    /// Channel names in order; `[]` when the image has no names.
    fn get_channel_names(&self) -> PyResult<Vec<String>> {
        Ok(self.image()?.channel_names())
    }

    /// Name every channel: exactly one name per channel (ValueError otherwise).
    #[pyo3(text_signature = "($self, names)")]
    fn set_channel_names(&self, py: Python<'_>, names: Vec<String>) -> PyResult<()> {
        let image = self.image()?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        py.detach(|| image.set_channel_names(&names)).py_err()
    }

    /// The metadata as Python values (None when never set).
    fn get_metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.image()?.metadata())
    }

    /// Replace the metadata with a JSON-convertible value (dict, list, str, int, float,
    /// bool, None).
    #[pyo3(text_signature = "($self, metadata)")]
    fn set_metadata(&self, py: Python<'_>, metadata: &Bound<'_, PyAny>) -> PyResult<()> {
        let image = self.image()?;
        let json = py_to_json(metadata)?;
        py.detach(|| image.set_metadata(json)).py_err()
    }

    /// Every channel decompressed: a list of 2-D `(height, width)` arrays, each of its
    /// channel's dtype.
    fn get_decompressed(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let list = PyList::empty(py);
        for any in self.image()?.channels() {
            list.append(dispatch!(any.dtype(), T => decompressed::<T>(py, any))?)?;
        }
        Ok(list.unbind())
    }

    /// Uncompressed bytes over stored bytes, all channels (1.0 without channels).
    fn compression_ratio(&self) -> PyResult<f64> {
        self.image()?.compression_ratio().py_err()
    }

    /// Print sizes, the compression ratio (both in bytes), names and metadata to stdout,
    /// in the original's layout.
    fn print_statistics(&self, py: Python<'_>) -> PyResult<()> {
        let image = self.image()?;
        let channels = image.channels();
        let (mut raw, mut stored, mut chunks) = (0usize, 0usize, 0usize);
        for c in &channels {
            raw += c.uncompressed_size() * c.dtype().size();
            stored += c.compressed_bytes().py_err()?;
            chunks += c.num_chunks();
        }
        let ratio = image.compression_ratio().py_err()?;
        let builtins = py.import("builtins")?;
        let ratio: String = builtins.call_method1("format", (ratio, "g"))?.extract()?;
        let meta = json_to_py(py, &image.metadata())?;
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

    /// Set the thread count of this image and of channels obtained from it afterwards: any
    /// count from 1 (c-blosc2 gets at most a few per available core for one chunk).
    #[pyo3(text_signature = "($self, nthreads)")]
    fn update_nthreads(&self, nthreads: Threads) -> PyResult<()> {
        set_threads(self, nthreads)
    }

    /// The nominal chunk size (bytes) shared by every channel; 0 without channels;
    /// RuntimeError if channels differ.
    fn chunk_size(&self) -> PyResult<usize> {
        self.image()?.chunk_size().py_err()
    }

    /// The block size shared by every channel; 0 without channels; RuntimeError if
    /// channels differ.
    fn block_size(&self) -> PyResult<usize> {
        self.image()?.block_size().py_err()
    }

    /// `(num_channels, height, width)`.
    #[getter]
    fn shape(&self) -> PyResult<(usize, usize, usize)> {
        let image = self.image()?;
        Ok((image.num_channels(), image.height(), image.width()))
    }

    /// Width of every channel.
    #[getter]
    fn width(&self) -> PyResult<usize> {
        Ok(self.image()?.width())
    }

    /// Height of every channel.
    #[getter]
    fn height(&self) -> PyResult<usize> {
        Ok(self.image()?.height())
    }

    /// Number of channels.
    #[getter]
    fn num_channels(&self) -> PyResult<usize> {
        Ok(self.image()?.num_channels())
    }

    /// The numpy dtype of every channel; None for a mixed image (see `dtypes`). Not in
    /// the original.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDescr>>> {
        self.image()?;
        let dtype = self.state.lock().extra.dtype;
        dtype.map(|d| np_dtype(py, d)).transpose()
    }

    /// The numpy dtype of each channel, in order (a new list). Not in the original.
    #[getter]
    fn dtypes<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyArrayDescr>>> {
        self.image()?
            .dtypes()
            .into_iter()
            .map(|d| np_dtype(py, d))
            .collect()
    }

    fn __repr__(&self) -> String {
        let slot = self.state.lock();
        let Some(image) = &slot.resource else {
            return "<compressed_image.Image (closed)>".to_string();
        };
        let dtype = slot
            .extra
            .dtype
            .map_or_else(|| "mixed".to_string(), |d| d.to_string());
        let place = match self.state.path() {
            None => "anonymous".to_string(),
            Some(p) => format!(
                "path={:?}{}",
                p.display().to_string(),
                if image.is_writable() {
                    ""
                } else {
                    " read-only"
                }
            ),
        };
        format!(
            "<compressed_image.Image dtype={dtype} shape=({}, {}, {}) names={:?} {place}>",
            image.num_channels(),
            image.height(),
            image.width(),
            image.channel_names(),
        )
    }
}
