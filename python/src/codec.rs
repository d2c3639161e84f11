//! `Codec`: the original's pybind11 enum (blosclz=0, lz4=1, lz4hc=2, zstd=3), plus zlib=4,
//! which files written by the Rust crate may use.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Compression codec of a channel's chunks.
#[pyclass(
    module = "compressed_image",
    name = "Codec",
    eq,
    ord,
    frozen,
    from_py_object
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(non_camel_case_types)]
pub enum PyCodec {
    /// BloscLZ.
    blosclz = 0,
    /// LZ4 (the default).
    lz4 = 1,
    /// LZ4 high compression.
    lz4hc = 2,
    /// Zstandard. c-blosc2 maps levels 1–8 to zstd levels 2 × level − 1 and level 9 (the
    /// default) to zstd's maximum, 22: a 3 MB float32 channel took 11.3 s to compress at level
    /// 9 and 0.28 s at level 8. 1.0.1 behaves the same; pass compression_level=8 or lower.
    zstd = 3,
    /// zlib (not in compressed-image 1.0.1; files written by the Rust crate may use it).
    zlib = 4,
}

const ALL: [PyCodec; 5] = [
    PyCodec::blosclz,
    PyCodec::lz4,
    PyCodec::lz4hc,
    PyCodec::zstd,
    PyCodec::zlib,
];

impl PyCodec {
    fn label(self) -> &'static str {
        match self {
            PyCodec::blosclz => "blosclz",
            PyCodec::lz4 => "lz4",
            PyCodec::lz4hc => "lz4hc",
            PyCodec::zstd => "zstd",
            PyCodec::zlib => "zlib",
        }
    }

    /// The crate's codec.
    pub fn to_ci(self) -> ci::Codec {
        match self {
            PyCodec::blosclz => ci::Codec::Blosclz,
            PyCodec::lz4 => ci::Codec::Lz4,
            PyCodec::lz4hc => ci::Codec::Lz4hc,
            PyCodec::zstd => ci::Codec::Zstd,
            PyCodec::zlib => ci::Codec::Zlib,
        }
    }

    /// The Python codec of a crate codec.
    pub fn from_ci(c: ci::Codec) -> PyResult<PyCodec> {
        ALL.into_iter().find(|p| p.to_ci() == c).ok_or_else(|| {
            PyValueError::new_err(format!("codec {c} is not supported by this module"))
        })
    }
}

#[pymethods]
impl PyCodec {
    /// `Codec(value)`: the codec with this value; ValueError for any other (the original
    /// silently makes an unknown value blosclz).
    #[new]
    fn new(value: i64) -> PyResult<PyCodec> {
        ALL.into_iter()
            .find(|c| *c as i64 == value)
            .ok_or_else(|| PyValueError::new_err(format!("{value} is not a valid Codec")))
    }

    /// The member name, e.g. `"lz4"`.
    #[getter]
    fn name(&self) -> &'static str {
        self.label()
    }

    /// The integer value, e.g. `1`.
    #[getter]
    fn value(&self) -> i64 {
        *self as i64
    }

    fn __int__(&self) -> i64 {
        *self as i64
    }

    /// As pybind11 enums: the hash of the value.
    fn __hash__(&self) -> u64 {
        *self as u64
    }

    fn __index__(&self) -> i64 {
        *self as i64
    }

    fn __repr__(&self) -> String {
        format!("<Codec.{}: {}>", self.label(), *self as i64)
    }

    fn __str__(&self) -> String {
        format!("Codec.{}", self.label())
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, pyo3::types::PyType>, (i64,))> {
        Ok((slf.as_any().get_type(), (*slf.get() as i64,)))
    }

    /// Name → member, as pybind11 enums have.
    #[classattr]
    #[allow(non_snake_case)]
    fn __members__(py: Python<'_>) -> PyResult<Py<PyDict>> {
        let d = PyDict::new(py);
        for c in ALL {
            d.set_item(c.label(), c)?;
        }
        Ok(d.unbind())
    }
}
