//! Conversions between Python values and the crate's types: element types, sizes,
//! compression levels, fill values and JSON metadata.

use ci::Dtype;
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::image::AnyImage;

/// The supported element types, as the original's error message lists them.
const SUPPORTED: &str = "np.float16, np.float32, np.float64, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32";

/// A channel element type usable from Python: one of the nine the file format defines.
pub trait Elem: ci::Sample + numpy::Element + Copy {
    /// Wrap a typed image into the dtype-erased enum.
    fn wrap_image(image: ci::Image<Self>) -> AnyImage;
    /// `value` converted exactly, as the original's `full` does; `None` if it cannot be.
    fn fill_from_py(value: &Bound<'_, PyAny>) -> Option<Self>;
}

macro_rules! int_elem {
    ($($t:ty => $v:ident),*) => {$(
        impl Elem for $t {
            fn wrap_image(image: ci::Image<Self>) -> AnyImage {
                AnyImage::$v(image)
            }
            fn fill_from_py(value: &Bound<'_, PyAny>) -> Option<Self> {
                // Integers (bool and numpy integers included) that fit; never floats.
                if value.is_instance_of::<PyFloat>() {
                    return None;
                }
                let wide: i64 = value.extract().ok()?;
                <$t>::try_from(wide).ok()
            }
        }
    )*};
}
int_elem!(u8 => U8, u16 => U16, u32 => U32, i8 => I8, i16 => I16, i32 => I32);

impl Elem for f32 {
    fn wrap_image(image: ci::Image<Self>) -> AnyImage {
        AnyImage::F32(image)
    }
    fn fill_from_py(value: &Bound<'_, PyAny>) -> Option<Self> {
        // Anything float() accepts, rounded to the nearest f32 (1e300 becomes inf).
        value.extract::<f64>().ok().map(|v| v as f32)
    }
}

impl Elem for f64 {
    fn wrap_image(image: ci::Image<Self>) -> AnyImage {
        AnyImage::F64(image)
    }
    fn fill_from_py(value: &Bound<'_, PyAny>) -> Option<Self> {
        value.extract::<f64>().ok()
    }
}

impl Elem for ci::f16 {
    fn wrap_image(image: ci::Image<Self>) -> AnyImage {
        AnyImage::F16(image)
    }
    fn fill_from_py(value: &Bound<'_, PyAny>) -> Option<Self> {
        value.extract::<f64>().ok().map(ci::f16::from_f64)
    }
}

/// Run `$body` with `$T` bound to the Rust element type of `$dtype` (a `ci::Dtype`).
/// `$body` must be a `PyResult`.
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            ci::Dtype::U8 => {
                type $T = u8;
                $body
            }
            ci::Dtype::U16 => {
                type $T = u16;
                $body
            }
            ci::Dtype::U32 => {
                type $T = u32;
                $body
            }
            ci::Dtype::I8 => {
                type $T = i8;
                $body
            }
            ci::Dtype::I16 => {
                type $T = i16;
                $body
            }
            ci::Dtype::I32 => {
                type $T = i32;
                $body
            }
            ci::Dtype::F16 => {
                type $T = ci::f16;
                $body
            }
            ci::Dtype::F32 => {
                type $T = f32;
                $body
            }
            ci::Dtype::F64 => {
                type $T = f64;
                $body
            }
            // `Dtype` is non-exhaustive: a type added to the format later is not bound yet.
            other => Err($crate::convert::unsupported_file_dtype(other)),
        }
    };
}
pub(crate) use dispatch;

/// A file element type this module does not know.
pub fn unsupported_file_dtype(d: Dtype) -> PyErr {
    PyValueError::new_err(format!(
        "Unsupported dtype {d} in the file. Supported types are: {SUPPORTED}"
    ))
}

/// The numpy dtype of an element type.
pub fn np_dtype(py: Python<'_>, d: Dtype) -> PyResult<Bound<'_, PyArrayDescr>> {
    dispatch!(d, T => Ok(numpy::dtype::<T>(py)))
}

/// The element type a numpy dtype stands for (native byte order only), or the original's
/// ValueError "Unsupported dtype: kind='b', itemsize=1. ...".
pub fn dtype_of_descr(descr: &Bound<'_, PyArrayDescr>) -> PyResult<Dtype> {
    let py = descr.py();
    if descr.is_native_byteorder() != Some(false) && !descr.has_fields() {
        for d in Dtype::ALL {
            if descr.is_equiv_to(&np_dtype(py, d)?) {
                return Ok(d);
            }
        }
    }
    Err(PyValueError::new_err(format!(
        "Unsupported dtype: kind='{}', itemsize={}.\nSupported types are: {SUPPORTED}.",
        descr.kind() as char,
        descr.itemsize()
    )))
}

/// A `dtype` argument: a numpy type, `np.dtype` or string (anything `np.dtype()` takes).
pub fn parse_dtype(obj: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    if let Ok(descr) = obj.cast::<PyArrayDescr>() {
        return dtype_of_descr(descr);
    }
    // numpy.dtype(obj) itself: None and float mean float64, int means int64, ...
    let descr = obj
        .py()
        .import("numpy")?
        .getattr("dtype")?
        .call1((obj,))?
        .cast_into::<PyArrayDescr>()?;
    dtype_of_descr(&descr)
}

/// `obj` as a numpy array, or TypeError naming the argument.
pub fn as_ndarray<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>().cloned().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a numpy.ndarray, not {}",
            obj.get_type()
                .name()
                .map_or_else(|_| "?".to_string(), |n| n.to_string())
        ))
    })
}

/// The element type of a numpy array (ValueError if unsupported).
pub fn array_dtype(arr: &Bound<'_, PyUntypedArray>) -> PyResult<Dtype> {
    dtype_of_descr(&arr.dtype())
}

fn to_type_error(e: PyErr, py: Python<'_>, what: &str) -> PyErr {
    if e.is_instance_of::<PyOverflowError>(py) {
        PyTypeError::new_err(format!("{what}: {}", e.value(py)))
    } else {
        e
    }
}

/// A non-negative integer argument (a C `size_t` in the original): a negative or too
/// large value is a TypeError, as pybind11 makes it.
#[derive(Debug, Clone, Copy)]
pub struct Size(pub usize);

impl<'py> FromPyObject<'_, 'py> for Size {
    type Error = PyErr;
    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        obj.extract::<usize>()
            .map(Size)
            .map_err(|e| to_type_error(e, obj.py(), "expected a non-negative integer"))
    }
}

fn check_level(level: u64) -> PyResult<u8> {
    if level > 9 {
        return Err(PyValueError::new_err(format!(
            "Blosc2 only supports compression levels from 0-9, got {level}"
        )));
    }
    Ok(level as u8)
}

/// `compression_level` of `Channel`, `zeros`, `full`, `Image.add_channel` (a `uint8` in the
/// original): -1 or 256 → TypeError; 10–255 → ValueError (the original clamps to 9 and
/// prints a message).
#[derive(Debug, Clone, Copy)]
pub struct Level(pub u8);

impl<'py> FromPyObject<'_, 'py> for Level {
    type Error = PyErr;
    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let v = obj
            .extract::<u8>()
            .map_err(|e| to_type_error(e, obj.py(), "expected an integer from 0 to 255 (uint8)"))?;
        check_level(u64::from(v)).map(Level)
    }
}

/// `compression_level` of `Image(...)` (a `size_t` in the original): negative → TypeError,
/// above 9 → ValueError.
#[derive(Debug, Clone, Copy)]
pub struct WideLevel(pub u8);

impl<'py> FromPyObject<'_, 'py> for WideLevel {
    type Error = PyErr;
    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let v = obj
            .extract::<u64>()
            .map_err(|e| to_type_error(e, obj.py(), "expected a non-negative integer"))?;
        check_level(v).map(WideLevel)
    }
}

/// `fill_value` converted exactly to `T`, or the original's RuntimeError.
pub fn fill_value<T: Elem>(value: &Bound<'_, PyAny>) -> PyResult<T> {
    T::fill_from_py(value)
        .ok_or_else(|| PyRuntimeError::new_err("Could not convert fill_value to the target dtype."))
}

/// A JSON-convertible Python value (None, bool, int, float, str, list, tuple, dict with
/// keys converted by `str()`) as JSON; anything else is a TypeError, as in the original.
pub fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    use serde_json::Value;
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok(Value::from(v));
        }
        if let Ok(v) = obj.extract::<u64>() {
            return Ok(Value::from(v));
        }
        return Err(PyTypeError::new_err(
            "metadata integers must fit in 64 bits",
        ));
    }
    if obj.is_instance_of::<PyFloat>() {
        let v: f64 = obj.extract()?;
        return serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "metadata floats must be finite to be stored as JSON, got {v}"
                ))
            });
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        return obj
            .try_iter()?
            .map(|item| py_to_json(&item?))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (k, v) in d.iter() {
            map.insert(k.str()?.to_cow()?.into_owned(), py_to_json(&v)?);
        }
        return Ok(Value::Object(map));
    }
    Err(PyTypeError::new_err(format!(
        "metadata must be JSON-convertible (None, bool, int, float, str, list, tuple, dict), got {}",
        obj.get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string())
    )))
}

/// JSON as Python values (objects keep their key order).
pub fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}
