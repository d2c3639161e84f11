//! Where anonymous channels and images (made without a path) keep their bytes: the
//! module-level `set_anonymous_backing` and `anonymous_backing` over the crate's
//! process-wide `AnonymousBacking` default.

use std::path::PathBuf;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use ci::AnonymousBacking;

/// Choose where anonymous Channels and Images created from now on keep their bytes
/// (existing ones keep theirs).
///
/// backing: "auto" (the default: in memory until a store's bytes would pass
/// `spill_above`, by default an eighth of the RAM, then in an unlinked temporary file in
/// `dir`), "memory" (always in memory) or "tempfile" (an unlinked temporary file in `dir`).
/// `dir` defaults to the system's temporary directory. A temporary file that cannot be made
/// raises OSError when a Channel or Image is created, or from the write that needed it
/// (the store then stays in memory, unchanged).
#[pyfunction]
#[pyo3(signature = (backing = "auto", *, spill_above = None, dir = None))]
pub fn set_anonymous_backing(
    backing: &str,
    spill_above: Option<u64>,
    dir: Option<PathBuf>,
) -> PyResult<()> {
    let backing = match (backing, spill_above) {
        ("memory", None) if dir.is_none() => AnonymousBacking::Memory,
        ("tempfile", None) => AnonymousBacking::TempFile { dir },
        ("auto", spill_above) => AnonymousBacking::Auto {
            spill_above: spill_above.unwrap_or_else(AnonymousBacking::default_spill_above),
            dir,
        },
        ("memory" | "tempfile", _) => {
            return Err(PyValueError::new_err(format!(
                "set_anonymous_backing({backing:?}) takes no spill_above{}",
                if backing == "memory" { " or dir" } else { "" }
            )));
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown anonymous backing {backing:?}: expected \"auto\", \"memory\" or \"tempfile\""
            )));
        }
    };
    AnonymousBacking::set_process_default(backing);
    Ok(())
}

/// The backing new anonymous stores get, as a dict: `backing` ("auto", "memory" or
/// "tempfile"), `spill_above` (bytes, or None) and `dir` (str, or None for the system's
/// temporary directory).
#[pyfunction]
pub fn anonymous_backing(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let (name, spill_above, dir) = match AnonymousBacking::process_default() {
        AnonymousBacking::Memory => ("memory", None, None),
        AnonymousBacking::TempFile { dir } => ("tempfile", None, dir),
        AnonymousBacking::Auto { spill_above, dir } => ("auto", Some(spill_above), dir),
        // A backing added to the crate later than these bindings.
        other => return Err(PyRuntimeError::new_err(format!("{other:?}"))),
    };
    let d = PyDict::new(py);
    d.set_item("backing", name)?;
    d.set_item("spill_above", spill_above)?;
    d.set_item("dir", dir.map(|d| d.display().to_string()))?;
    Ok(d)
}
