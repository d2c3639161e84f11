//! Python bindings of the `compressed-image` crate: the module `compressed_image`, a
//! drop-in for the compressed-image 1.0.1 Python API (`Codec`, `Channel`, `Image`) plus
//! persistence (files, other processes) and real threads (the GIL is released around every
//! (de)compression and I/O call).
//!
//! No `unsafe`: numpy buffers are reached through rust-numpy's checked borrows, which
//! stay alive (with their arrays) across the GIL-free sections that use them.

// The modules form a line, each using only those before it: errors → convert (numpy
// arrays and dtypes) → json (metadata) → codec → settings (keyword arguments) → handle
// (what Channel and Image share) → typed (generic chunk operations) → pinned (snapshot
// ids) → channel → image → read (importing image files) → write (exporting them) → array
// (numpy indexing of Channel) → stored (stored chunks, pinned snapshots, inspect). backing
// (where anonymous stores keep their bytes) stands apart.
mod array;
mod backing;
mod channel;
mod codec;
mod convert;
mod errors;
mod handle;
mod image;
mod json;
mod pinned;
mod read;
mod settings;
mod stored;
mod typed;
mod write;

use pyo3::prelude::*;

#[pymodule]
fn _compressed_image(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<codec::PyCodec>()?;
    m.add_class::<channel::PyChannel>()?;
    m.add_class::<image::PyImage>()?;
    m.add_class::<stored::PyChannelBatch>()?;
    m.add_function(wrap_pyfunction!(backing::set_anonymous_backing, m)?)?;
    m.add_function(wrap_pyfunction!(backing::anonymous_backing, m)?)?;
    m.add_function(wrap_pyfunction!(stored::inspect, m)?)?;
    m.add(
        "SnapshotUnavailableError",
        py.get_type::<errors::SnapshotUnavailableError>(),
    )?;
    m.add("CorruptedError", py.get_type::<errors::CorruptedError>())?;
    m.add("LockedError", py.get_type::<errors::LockedError>())?;
    m.add("ReadOnlyError", py.get_type::<errors::ReadOnlyError>())?;
    m.add(
        "ChannelRemovedError",
        py.get_type::<errors::ChannelRemovedError>(),
    )?;
    m.add(
        "ImageFileNotFoundError",
        errors::image_file_not_found_error(py)?,
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FORMAT_VERSION", (ci::FORMAT_MAJOR, ci::FORMAT_MINOR))?;
    Ok(())
}
