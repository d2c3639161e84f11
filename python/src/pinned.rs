//! Snapshot ids in Python: the bytes `snapshot_id()` returns and `open_snapshot` (and
//! unpickling a pinned handle) takes.

use ci::SnapshotId;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::convert::type_name;
use crate::errors::IntoPyResult;

/// A snapshot id as `snapshot_id()` returns it (bytes), or its hexadecimal string.
pub fn parse_snapshot_id(id: &Bound<'_, PyAny>) -> PyResult<SnapshotId> {
    let parsed = if let Ok(bytes) = id.cast::<PyBytes>() {
        SnapshotId::from_bytes(bytes.as_bytes())
    } else if let Ok(text) = id.cast::<PyString>() {
        text.to_cow()?.parse()
    } else {
        return Err(PyTypeError::new_err(format!(
            "a snapshot id is the bytes snapshot_id() returns (or their hex string), not {}",
            type_name(id)
        )));
    };
    parsed.py_err()
}

/// The encoded snapshot id, for `snapshot_id()` and pickling.
pub fn snapshot_bytes<'py>(py: Python<'py>, id: SnapshotId) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &id.to_bytes())
}
