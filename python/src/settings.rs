//! The numeric keyword arguments of the original API (sizes, compression level, thread
//! count) and the crate `Settings` built from the four trailing ones (`compression_codec`,
//! `compression_level`, `block_size`, `chunk_size`).
//!
//! pybind11 converted these to C `size_t` / `uint8_t`: a negative or too large value is a
//! TypeError there, and stays one here.

use ci::Settings;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::codec::PyCodec;

/// An OverflowError from an integer conversion as the TypeError pybind11 raises.
fn to_type_error(e: PyErr, py: Python<'_>, what: &str) -> PyErr {
    if e.is_instance_of::<PyOverflowError>(py) {
        PyTypeError::new_err(format!("{what}: {}", e.value(py)))
    } else {
        e
    }
}

/// A non-negative integer argument (a C `size_t` in the original).
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
    u8::try_from(level).ok().filter(|l| *l <= 9).ok_or_else(|| {
        PyValueError::new_err(format!(
            "Blosc2 only supports compression levels from 0-9, got {level}"
        ))
    })
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

impl From<Level> for u8 {
    fn from(l: Level) -> u8 {
        l.0
    }
}

impl From<WideLevel> for u8 {
    fn from(l: WideLevel) -> u8 {
        l.0
    }
}

/// The crate settings of the four trailing keyword arguments.
pub fn settings(
    codec: PyCodec,
    level: impl Into<u8>,
    block_size: Size,
    chunk_size: Size,
) -> Settings {
    Settings::default()
        .codec(codec.to_ci())
        .level(level.into())
        .block_size(block_size.0)
        .chunk_size(chunk_size.0)
}

/// The `nthreads` of `update_nthreads`: any count from 1 up. The original rejects counts
/// above 32767 (c-blosc2's limit) with IndexError; here the crate caps the count it hands
/// to c-blosc2 per chunk, so a large request is harmless and accepted.
#[derive(Debug, Clone, Copy)]
pub struct Threads(pub usize);

impl<'py> FromPyObject<'_, 'py> for Threads {
    type Error = PyErr;
    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let Size(n) = obj.extract()?;
        if n == 0 {
            return Err(PyValueError::new_err(
                "Number of threads must be at least 1, got 0",
            ));
        }
        Ok(Threads(n))
    }
}
