//! The channel operations that need the element type at compile time, each generic over
//! `T` and called through [`dispatch!`](crate::convert::dispatch) with a channel's dtype.
//! Every (de)compression runs without the GIL.

use std::path::Path;

use ci::{AnyChannel, AnyImage, Channel, Settings};
use numpy::ndarray::Array2;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{Elem, fill_value, with_slice};
use crate::errors::{IntoPyResult, borrow_err, to_py_at};

/// A new channel (in the file at `path`, or anonymous) compressed from `arr`.
pub fn create_eager<T: Elem>(
    py: Python<'_>,
    path: Option<&Path>,
    arr: &Bound<'_, PyUntypedArray>,
    w: usize,
    h: usize,
    s: Settings,
) -> PyResult<AnyChannel> {
    with_slice::<T, _>(arr, |data| {
        py.detach(|| match path {
            None => Channel::<T>::new(data, w, h, s),
            Some(p) => Channel::<T>::create(p, data, w, h, s),
        })
    })?
    .map(Channel::into_any)
    .map_err(|e| to_py_at(e, path))
}

/// The element `fill` stands for (zero when `None`).
fn fill_or_zero<T: Elem>(fill: Option<&Bound<'_, PyAny>>) -> PyResult<T> {
    fill.map_or_else(|| Ok(T::zeroed()), fill_value)
}

/// A new lazy channel (in the file at `path`, or anonymous) of `fill` (or zeros).
pub fn create_lazy<T: Elem>(
    py: Python<'_>,
    path: Option<&Path>,
    fill: Option<&Bound<'_, PyAny>>,
    w: usize,
    h: usize,
    s: Settings,
) -> PyResult<AnyChannel> {
    let value: T = fill_or_zero(fill)?;
    py.detach(|| match path {
        None => Channel::<T>::full(w, h, value, s),
        Some(p) => Channel::<T>::create_full(p, w, h, value, s),
    })
    .map(Channel::into_any)
    .map_err(|e| to_py_at(e, path))
}

/// A new lazy last channel of `image` whose every element is `fill` (or zero).
pub fn add_lazy<T: Elem>(
    py: Python<'_>,
    image: &AnyImage,
    fill: Option<&Bound<'_, PyAny>>,
    name: Option<&str>,
    s: Settings,
) -> PyResult<()> {
    let value: T = fill_or_zero(fill)?;
    py.detach(|| image.add_lazy_channel(value, name, s).map(drop))
        .py_err()
}

/// A new anonymous lazy channel of `fill` (or zeros) shaped and set up like `other`.
pub fn create_like<T: Elem>(
    py: Python<'_>,
    other: AnyChannel,
    fill: Option<&Bound<'_, PyAny>>,
) -> PyResult<AnyChannel> {
    let value: T = fill_or_zero(fill)?;
    let other = Channel::<T>::try_from_any(other).py_err()?;
    py.detach(|| Channel::full_like(&other, value))
        .map(Channel::into_any)
        .py_err()
}

/// Chunk `index` as a new 1-D array.
pub fn get_chunk_new<T: Elem>(
    py: Python<'_>,
    any: AnyChannel,
    index: usize,
) -> PyResult<Py<PyAny>> {
    let ch = Channel::<T>::try_from_any(any).py_err()?;
    let v = py.detach(|| ch.get_chunk_vec(index)).py_err()?;
    Ok(PyArray1::from_vec(py, v).into_any().unbind())
}

/// Decompress chunk `index` into `arr` (1-D, `T`, exactly the chunk's length, writeable,
/// C-contiguous and aligned).
pub fn get_chunk_into<T: Elem>(
    py: Python<'_>,
    any: AnyChannel,
    index: usize,
    arr: &Bound<'_, PyUntypedArray>,
) -> PyResult<()> {
    let n = any.chunk_elems_at(index).py_err()?;
    if arr.ndim() != 1 {
        return Err(PyValueError::new_err("Array must be 1-dimensional."));
    }
    let typed = arr.cast::<PyArray1<T>>()?;
    let mut rw = typed.try_readwrite().map_err(borrow_err)?;
    if !typed.is_c_contiguous() || !typed.is_aligned() {
        return Err(PyValueError::new_err(
            "array must be C-contiguous and aligned: a strided, reversed or misaligned view \
             cannot be filled in place (pass e.g. np.empty(channel.chunk_elems(i), dtype))",
        ));
    }
    if typed.len() != n {
        return Err(PyValueError::new_err(format!(
            "Invalid array size received, expected {n} (chunk_elems({index})) but instead got {}",
            typed.len()
        )));
    }
    let out = rw
        .as_slice_mut()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    // The slice comes from a checked rust-numpy read-write borrow, held (with the array
    // alive) until this function returns; see `with_slice` for the GIL argument.
    py.detach(|| any.get_chunk_bytes(index, bytemuck::cast_slice_mut(out)))
        .py_err()
}

/// The whole channel as a new 2-D `(height, width)` array.
pub fn decompressed<T: Elem>(py: Python<'_>, any: AnyChannel) -> PyResult<Py<PyAny>> {
    let ch = Channel::<T>::try_from_any(any).py_err()?;
    let (w, h) = (ch.width(), ch.height());
    let v = py.detach(|| ch.get_decompressed()).py_err()?;
    let a =
        Array2::from_shape_vec((h, w), v).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(PyArray2::from_owned_array(py, a).into_any().unbind())
}
