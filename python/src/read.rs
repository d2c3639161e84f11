//! Importing image files (OpenEXR, TIFF, PNG, JPEG) as `Image`s: `Image.read` (1.0.1's
//! three overloads), `Image.read_native` (each channel's own type), `Image.dtype_from_file`
//! and `Image.dtypes_from_file`. The crate's importer decodes and compresses with the GIL
//! released; a Python post-process callback takes it back for each chunk.

use std::path::{Path, PathBuf};

use ci::{AnyImage, ChannelSelection, Dtype, ImportedChunk, ReadOptions, Settings};
use numpy::{PyArray1, PyArrayDescr, PyArrayMethods};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::codec::PyCodec;
use crate::convert::{
    Elem, as_ndarray, check_array_dtype, check_shape, dispatch, np_dtype, parse_dtype, type_name,
    with_slice,
};
use crate::errors::{IntoPyResult, bad_subimage, import_error};
use crate::handle::absolute;
use crate::image::{PyImage, common_dtype};
use crate::settings::{Size, WideLevel, settings};

/// How a channel selection was passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SelectionKind {
    /// `Image.read`'s fourth positional argument: indices or names, told apart by the
    /// items, as 1.0.1's overloads tell them apart.
    Either,
    /// `channel_indices=`.
    Indices,
    /// `channel_names=`.
    Names,
}

impl SelectionKind {
    fn argument(self) -> &'static str {
        match self {
            SelectionKind::Either => "the channel selection",
            SelectionKind::Indices => "channel_indices",
            SelectionKind::Names => "channel_names",
        }
    }
}

/// The channels a sequence of ints (indices) or of strs (names) selects. A negative index
/// is an IndexError, as out of range in 1.0.1.
fn selection(seq: &Bound<'_, PyAny>, kind: SelectionKind) -> PyResult<ChannelSelection> {
    let what = kind.argument();
    if seq.is_instance_of::<PyString>() || seq.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a sequence of channel names or indices, not a single string"
        )));
    }
    let items = seq.try_iter()?.collect::<PyResult<Vec<_>>>()?;
    let by_name = match kind {
        SelectionKind::Names => true,
        SelectionKind::Indices => false,
        SelectionKind::Either => items
            .first()
            .is_some_and(|i| i.is_instance_of::<PyString>()),
    };
    let wrong = |item: &Bound<'_, PyAny>, expected: &str| {
        PyTypeError::new_err(format!(
            "{what} must hold only {expected}, not {}",
            type_name(item)
        ))
    };
    if by_name {
        let names = items
            .iter()
            .map(|i| i.extract::<String>().map_err(|_| wrong(i, "str names")))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(ChannelSelection::Names(names));
    }
    let indices = items
        .iter()
        .map(|i| {
            let index: i64 = i.extract().map_err(|_| wrong(i, "int indices"))?;
            usize::try_from(index).map_err(|_| {
                PyIndexError::new_err(format!("channel index {index} is out of range"))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(ChannelSelection::Indices(indices))
}

/// The channel selection of `channel_indices=` or `channel_names=` (at most one).
pub(crate) fn keyword_selection(
    indices: Option<&Bound<'_, PyAny>>,
    names: Option<&Bound<'_, PyAny>>,
) -> PyResult<ChannelSelection> {
    match (indices, names) {
        (None, None) => Ok(ChannelSelection::All),
        (Some(i), None) => selection(i, SelectionKind::Indices),
        (None, Some(n)) => selection(n, SelectionKind::Names),
        (Some(_), Some(_)) => Err(more_than_one_selection()),
    }
}

fn more_than_one_selection() -> PyErr {
    PyTypeError::new_err("pass channel_indices or channel_names, not both")
}

/// The settings' names, in their positional order after the channel selection.
const SETTING_NAMES: [&str; 4] = [
    "compression_codec",
    "compression_level",
    "block_size",
    "chunk_size",
];

/// `Image.read`'s arguments after `subimage`, as 1.0.1's three overloads take them:
/// `[channels,] [compression_codec[, compression_level[, block_size[, chunk_size]]]]`
/// positionally (a first argument that is not a `Codec` is the channels), or by keyword
/// (`channel_indices=`, `channel_names=` and the settings' names).
fn read_tail(
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<(ChannelSelection, Settings)> {
    let mut positional: Vec<Bound<'_, PyAny>> = args.iter().collect();
    let mut channels = None;
    if positional
        .first()
        .is_some_and(|first| !first.is_instance_of::<PyCodec>())
    {
        channels = Some((positional.remove(0), SelectionKind::Either));
    }
    if positional.len() > SETTING_NAMES.len() {
        return Err(PyTypeError::new_err(format!(
            "read() takes at most 8 positional arguments ({} given)",
            3 + args.len()
        )));
    }
    let mut values: [Option<Bound<'_, PyAny>>; 4] = Default::default();
    for (slot, value) in values.iter_mut().zip(positional) {
        *slot = Some(value);
    }
    for (key, value) in kwargs.into_iter().flat_map(|k| k.iter()) {
        let key: String = key.extract()?;
        let kind = match key.as_str() {
            "channel_indices" => Some(SelectionKind::Indices),
            "channel_names" => Some(SelectionKind::Names),
            _ => None,
        };
        if let Some(kind) = kind {
            if channels.is_some() {
                return Err(more_than_one_selection());
            }
            channels = Some((value, kind));
            continue;
        }
        let Some(i) = SETTING_NAMES.iter().position(|n| *n == key) else {
            return Err(PyTypeError::new_err(format!(
                "read() got an unexpected keyword argument '{key}'"
            )));
        };
        if values[i].replace(value).is_some() {
            return Err(PyTypeError::new_err(format!(
                "read() got multiple values for argument '{key}'"
            )));
        }
    }
    let channels = match &channels {
        None => ChannelSelection::All,
        Some((seq, kind)) => selection(seq, *kind)?,
    };
    let [codec, level, block_size, chunk_size] = values;
    let s = settings(
        argument(codec, SETTING_NAMES[0], PyCodec::lz4)?,
        argument(level, SETTING_NAMES[1], WideLevel(9))?,
        argument(block_size, SETTING_NAMES[2], Size(32768))?,
        argument(chunk_size, SETTING_NAMES[3], Size(4194304))?,
    );
    Ok((channels, s))
}

/// An argument parsed by hand: its value, or `default` when not given; a TypeError names it.
fn argument<T>(value: Option<Bound<'_, PyAny>>, name: &str, default: T) -> PyResult<T>
where
    T: for<'a, 'py> FromPyObject<'a, 'py>,
    for<'a, 'py> <T as FromPyObject<'a, 'py>>::Error: Into<PyErr>,
{
    let Some(value) = value else {
        return Ok(default);
    };
    value.extract::<T>().map_err(|e| {
        let e: PyErr = e.into();
        let py = value.py();
        if e.is_instance_of::<PyTypeError>(py) {
            PyTypeError::new_err(format!("read() argument '{name}': {}", e.value(py)))
        } else {
            e
        }
    })
}

/// A subimage argument: a negative one is 1.0.1's ValueError.
fn subimage_index(filepath: &Path, subimage: i64) -> PyResult<usize> {
    usize::try_from(subimage).map_err(|_| bad_subimage(filepath, subimage, None))
}

/// The import options of both `read` methods; `path` (the destination) made absolute.
fn read_options(
    filepath: &Path,
    subimage: i64,
    dtype: Option<Dtype>,
    channels: ChannelSelection,
    settings: Settings,
    path: Option<&Path>,
) -> PyResult<ReadOptions> {
    let mut options = ReadOptions::default()
        .subimage(subimage_index(filepath, subimage)?)
        .settings(settings);
    options.channels = channels;
    options.dtype = dtype;
    if let Some(p) = path {
        options = options.to_file(absolute(p));
    }
    Ok(options)
}

/// Import `filepath` as `options` say, the GIL released; `postprocess` (a callable) is
/// called on every chunk with the GIL taken back, and its exception ends the import.
fn import(
    py: Python<'_>,
    filepath: &Path,
    options: &ReadOptions,
    postprocess: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyImage> {
    let result = match postprocess {
        None => py.detach(|| AnyImage::read(filepath, options)),
        Some(callback) => {
            if !callback.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "postprocess must be callable, not {}",
                    type_name(callback)
                )));
            }
            let callback = callback.clone().unbind();
            let mut failure = None;
            let result = py.detach(|| {
                AnyImage::read_with(filepath, options, |chunk| {
                    call_postprocess(&callback, chunk).map_err(|e| {
                        failure = Some(e);
                        // A stand-in that ends the import; the callback's exception is
                        // raised instead.
                        ci::Error::Poisoned
                    })
                })
            });
            if let Some(e) = failure {
                return Err(e);
            }
            result
        }
    };
    let image = result.map_err(|e| import_error(py, e, filepath))?;
    let single = options.dtype.or_else(|| common_dtype(&image.dtypes()));
    let path = image.path().map(Path::to_path_buf);
    Ok(PyImage::wrap(image, single, path))
}

/// `callback(file_channel_index, chunk)` with the GIL, the chunk a new `(rows, width)`
/// array; what is stored is that array as the callback left it, or the array it returns.
fn call_postprocess(callback: &Py<PyAny>, mut chunk: ImportedChunk<'_>) -> PyResult<()> {
    Python::attach(
        |py| dispatch!(chunk.dtype(), T => postprocess_chunk::<T>(callback.bind(py), &mut chunk)),
    )
}

fn postprocess_chunk<T: Elem>(
    callback: &Bound<'_, PyAny>,
    chunk: &mut ImportedChunk<'_>,
) -> PyResult<()> {
    let py = callback.py();
    let (width, file_channel) = (chunk.width(), chunk.file_channel());
    let data = chunk.data_mut::<T>().py_err()?;
    let rows = data.len() / width;
    let array = PyArray1::from_slice(py, data).reshape([rows, width])?;
    let returned = callback.call1((file_channel, &array))?;
    let result = if returned.is_none() {
        array.into_any()
    } else {
        returned
    };
    let result = as_ndarray(&result, "the array postprocess returns")?;
    check_array_dtype(&result, T::DTYPE, "postprocess")?;
    check_shape(&result, width, rows)?;
    with_slice::<T, _>(&result, |values| data.copy_from_slice(values))
}

/// The element types of subimage `subimage` of `filepath`, one per channel, from its header.
fn file_dtypes(py: Python<'_>, filepath: &Path, subimage: i64) -> PyResult<Vec<Dtype>> {
    let subimage = subimage_index(filepath, subimage)?;
    py.detach(|| AnyImage::read_info(filepath, subimage))
        .map(|info| info.dtypes)
        .map_err(|e| import_error(py, e, filepath))
}

/// The one type OpenImageIO gives channels of types `a` and `b` (its
/// `TypeDesc::basetype_merge`): a float type or the wider integer when it holds both
/// exactly, else float32 (so float16 with uint32 is float32).
fn merged(a: Dtype, b: Dtype) -> Dtype {
    use Dtype::{F16, F32, F64, I8, I16, I32, U8, U16, U32};
    if a == b {
        return a;
    }
    let (wide, narrow) = if a.size() >= b.size() { (a, b) } else { (b, a) };
    match (wide, narrow) {
        (F64 | F32, _)
        | (U32, U16 | U8)
        | (I32, I16 | U16 | I8 | U8)
        | (U16 | F16, U8)
        | (I16 | F16, I8 | U8) => wide,
        _ => F32,
    }
}

#[pymethods]
impl PyImage {
    /// Read an image file (OpenEXR, TIFF, PNG or JPEG, recognised by its first bytes) as a
    /// new image of `dtype`, decoded and compressed chunk by chunk (never the whole image in
    /// memory), with the GIL released.
    ///
    /// The three forms of compressed-image 1.0.1:
    ///
    /// - `read(dtype, filepath, subimage, compression_codec=Codec.lz4, compression_level=9,
    ///   block_size=32768, chunk_size=4194304)`: every channel of the subimage;
    /// - `read(dtype, filepath, subimage, channel_indices, ...)`: the channels at these
    ///   positions;
    /// - `read(dtype, filepath, subimage, channel_names, ...)`: the channels with these names.
    ///
    /// `subimage` is an OpenEXR part or a TIFF page (0 for PNG and JPEG). Channels come in
    /// the order the file presents them (OpenImageIO's: OpenEXR layers sorted by name,
    /// R, G, B, A first in each), also for a subset, whatever the order of the request; a
    /// channel asked for twice is read twice. Every channel is converted to `dtype` as
    /// OpenImageIO converts: integers to floats normalised (uint8 255 -> 1.0), floats to
    /// integers clamped to [0, 1] ([-1, 1] signed), scaled and rounded. Names and metadata
    /// come from the file.
    ///
    /// Not in 1.0.1: keyword-only `path` writes the image to that file (under a temporary
    /// name, renamed into place only when complete) instead of an anonymous one;
    /// `postprocess(file_channel_index, chunk)` is called on every chunk before it is
    /// compressed, `chunk` a `(rows, width)` array of `dtype` whose changes are stored (or
    /// return a new array of that shape and dtype); its exception ends the read. `filepath`
    /// may be any path-like.
    ///
    /// Errors: a missing file is `ImageFileNotFoundError` (a `FileNotFoundError` and a
    /// `ValueError`); a missing subimage, an unknown or unsupported format, a damaged file
    /// `ValueError`; an unknown channel name or index `IndexError`.
    #[staticmethod]
    #[pyo3(
        signature = (dtype, filepath, subimage, *args, path = None, postprocess = None, **kwargs),
        text_signature = "(dtype, filepath, subimage, *args, path=None, postprocess=None, **kwargs)"
    )]
    fn read(
        py: Python<'_>,
        dtype: &Bound<'_, PyAny>,
        filepath: PathBuf,
        subimage: i64,
        args: &Bound<'_, PyTuple>,
        path: Option<PathBuf>,
        postprocess: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyImage> {
        let dtype = parse_dtype(dtype)?;
        let (channels, settings) = read_tail(args, kwargs)?;
        let options = read_options(
            &filepath,
            subimage,
            Some(dtype),
            channels,
            settings,
            path.as_deref(),
        )?;
        import(py, &filepath, &options, postprocess)
    }

    /// Read an image file as `Image.read` does, keeping each channel's type from the file
    /// (an OpenEXR of float16 colour and a float32 depth gives a mixed image). Not in 1.0.1.
    /// The image is single-typed when the channels share a type.
    #[staticmethod]
    #[pyo3(
        signature = (filepath, subimage = 0, *, channel_indices = None, channel_names = None, compression_codec = PyCodec::lz4, compression_level = WideLevel(9), block_size = Size(32768), chunk_size = Size(4194304), path = None, postprocess = None),
        text_signature = "(filepath, subimage=0, *, channel_indices=None, channel_names=None, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304, path=None, postprocess=None)"
    )]
    fn read_native(
        py: Python<'_>,
        filepath: PathBuf,
        subimage: i64,
        channel_indices: Option<&Bound<'_, PyAny>>,
        channel_names: Option<&Bound<'_, PyAny>>,
        compression_codec: PyCodec,
        compression_level: WideLevel,
        block_size: Size,
        chunk_size: Size,
        path: Option<PathBuf>,
        postprocess: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyImage> {
        let channels = keyword_selection(channel_indices, channel_names)?;
        let s = settings(compression_codec, compression_level, block_size, chunk_size);
        let options = read_options(&filepath, subimage, None, channels, s, path.as_deref())?;
        import(py, &filepath, &options, postprocess)
    }

    /// The numpy dtype of an image file, from its header: the channels' type, or, when
    /// they differ, the one type OpenImageIO merges them to (float16 with float32 or
    /// uint32 gives float32). `subimage` (not in 1.0.1) picks an OpenEXR part or TIFF page.
    #[staticmethod]
    #[pyo3(signature = (filepath, subimage = 0), text_signature = "(filepath, subimage=0)")]
    fn dtype_from_file<'py>(
        py: Python<'py>,
        filepath: PathBuf,
        subimage: i64,
    ) -> PyResult<Bound<'py, PyArrayDescr>> {
        let dtypes = file_dtypes(py, &filepath, subimage)?;
        let dtype = dtypes
            .into_iter()
            .reduce(merged)
            .ok_or_else(|| PyValueError::new_err("the image has no channels"))?;
        np_dtype(py, dtype)
    }

    /// The numpy dtypes of an image file, from its header, as 1.0.1 gives them: one per
    /// channel (in the order `read` presents them) when the channels' types differ, else a
    /// list of one. `subimage` (not in 1.0.1) picks an OpenEXR part or TIFF page.
    #[staticmethod]
    #[pyo3(signature = (filepath, subimage = 0), text_signature = "(filepath, subimage=0)")]
    fn dtypes_from_file<'py>(
        py: Python<'py>,
        filepath: PathBuf,
        subimage: i64,
    ) -> PyResult<Vec<Bound<'py, PyArrayDescr>>> {
        let mut dtypes = file_dtypes(py, &filepath, subimage)?;
        if common_dtype(&dtypes).is_some() {
            dtypes.truncate(1);
        }
        dtypes.into_iter().map(|d| np_dtype(py, d)).collect()
    }
}
