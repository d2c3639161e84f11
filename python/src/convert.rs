//! numpy arrays and dtypes ↔ the crate's element types and slices: the one place that
//! knows how a Python array becomes a `&[T]` (and back), and which dtypes exist.

use ci::Dtype;
use numpy::{
    PyArrayDescr, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyFloat;

use crate::errors::borrow_err;

/// The supported element types, as the original's error message lists them.
const SUPPORTED: &str = "np.float16, np.float32, np.float64, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32";

/// A channel element type usable from Python: one of the nine the file format defines.
pub trait Elem: ci::Sample + numpy::Element + Copy {
    /// `value` converted exactly, as the original's `full` does; `None` if it cannot be.
    fn fill_from_py(value: &Bound<'_, PyAny>) -> Option<Self>;
}

macro_rules! int_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
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
int_elem!(u8, u16, u32, i8, i16, i32);

impl Elem for f32 {
    fn fill_from_py(value: &Bound<'_, PyAny>) -> Option<Self> {
        // Anything float() accepts, rounded to the nearest f32 (1e300 becomes inf).
        value.extract::<f64>().ok().map(|v| v as f32)
    }
}

impl Elem for f64 {
    fn fill_from_py(value: &Bound<'_, PyAny>) -> Option<Self> {
        value.extract::<f64>().ok()
    }
}

impl Elem for ci::f16 {
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

/// `fill_value` converted exactly to `T`, or the original's RuntimeError.
pub fn fill_value<T: Elem>(value: &Bound<'_, PyAny>) -> PyResult<T> {
    T::fill_from_py(value)
        .ok_or_else(|| PyRuntimeError::new_err("Could not convert fill_value to the target dtype."))
}

/// The name of `obj`'s type, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// `obj` as a numpy array, or TypeError naming the argument.
pub fn as_ndarray<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>().cloned().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a numpy.ndarray, not {}",
            type_name(obj)
        ))
    })
}

/// The element type of a numpy array (ValueError if unsupported).
pub fn array_dtype(arr: &Bound<'_, PyUntypedArray>) -> PyResult<Dtype> {
    dtype_of_descr(&arr.dtype())
}

/// The dtype of a data array must be exactly `expected`.
pub fn check_array_dtype(
    arr: &Bound<'_, PyUntypedArray>,
    expected: Dtype,
    what: &str,
) -> PyResult<()> {
    let found = array_dtype(arr)?;
    if found != expected {
        return Err(PyValueError::new_err(format!(
            "{what} requires a numpy array of dtype {expected}, instead got {found}"
        )));
    }
    Ok(())
}

/// Check that `arr` is `width × height` elements: 1-D of length `w·h` or 2-D `(h, w)`.
pub fn check_shape(arr: &Bound<'_, PyUntypedArray>, w: usize, h: usize) -> PyResult<()> {
    let shape = arr.shape();
    match *shape {
        [n] => {
            let expected = w.checked_mul(h).ok_or_else(|| {
                PyValueError::new_err(format!("width x height overflows: {w} x {h}"))
            })?;
            if n != expected {
                return Err(PyValueError::new_err(format!(
                    "Invalid array size received, expected {expected} (width x height = {w} x {h}) but instead got {n}"
                )));
            }
        }
        [rows, cols] => {
            if rows != h {
                return Err(PyValueError::new_err(format!(
                    "Invalid 1st dimension size encountered, expected {h} (height) but instead got {rows}"
                )));
            }
            if cols != w {
                return Err(PyValueError::new_err(format!(
                    "Invalid 2nd dimension size encountered, expected {w} (width) but instead got {cols}"
                )));
            }
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "Invalid number of dimensions received, expected one of {{ 1, 2 }} but instead got {}",
                shape.len()
            )));
        }
    }
    Ok(())
}

/// `arr` itself if it is C-contiguous and aligned, else numpy's C-contiguous, aligned copy
/// of it (cast to `dtype` if given, with numpy's unsafe casting, as the original's
/// `py::array::forcecast`).
pub fn contiguous<'py>(
    arr: &Bound<'py, PyAny>,
    dtype: Option<Dtype>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    if dtype.is_none()
        && let Ok(a) = arr.cast::<PyUntypedArray>()
        && a.is_c_contiguous()
        && a.is_aligned()
    {
        return Ok(a.clone());
    }
    let py = arr.py();
    let descr = dtype.map(|d| np_dtype(py, d)).transpose()?;
    let required = py
        .import("numpy")?
        .call_method1("require", (arr, descr, ["C", "A"]))?;
    Ok(required.cast_into::<PyUntypedArray>()?)
}

/// Run `f` on the elements of `arr` (whose dtype is `T`) in row-major order: borrowed when
/// the array is C-contiguous and aligned, else from numpy's contiguous copy (strided,
/// Fortran-ordered, reversed and misaligned views are all read correctly).
///
/// The borrow is a rust-numpy read-only borrow held for the whole call, so `f` may release
/// the GIL: the array object stays alive and other Rust code cannot borrow it mutably.
/// Python code in another thread writing to the same array meanwhile is the same data race
/// numpy's own GIL-free loops allow; it can give torn values in the result, never an
/// out-of-bounds access (the slice length is fixed for the borrow).
pub fn with_slice<T: Elem, R>(
    arr: &Bound<'_, PyUntypedArray>,
    f: impl FnOnce(&[T]) -> R,
) -> PyResult<R> {
    let arr = contiguous(arr.as_any(), None)?;
    let typed = arr.cast::<PyArrayDyn<T>>()?;
    let ro = typed.try_readonly().map_err(borrow_err)?;
    let slice = ro
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(f(slice))
}

/// [`with_slice`] on the raw bytes of `arr`, whose dtype is `dtype`.
pub fn with_bytes<R>(
    arr: &Bound<'_, PyUntypedArray>,
    dtype: Dtype,
    f: impl FnOnce(&[u8]) -> R,
) -> PyResult<R> {
    dispatch!(dtype, T => with_slice::<T, R>(arr, |s| f(bytemuck::cast_slice(s))))
}
