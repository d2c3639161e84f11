//! What the image file tests (`tests/image_files.rs`, `tests/image_export.rs`) share: the
//! Python environment with the image libraries, element decoding and directory listings.
//!
//! Included by `#[path]` beside `common/python.rs` (as `python_env`), not through
//! `common/mod.rs`.

use std::fs;
use std::path::Path;

use compressed_image::{Dtype, f16};

/// The interpreter of the image file tests' Python scripts: numpy and an independent
/// reader and writer of each format.
pub const IMAGE_PYTHON: super::python_env::PythonEnv = super::python_env::PythonEnv {
    purpose: "the image file tests (tests/image_files/, tests/image_export/)",
    override_var: "CIMG_IMAGE_PYTHON",
    project_venv: ".venv-img",
    own_venv: "image-venv",
    modules: &[
        "numpy",
        "OpenEXR",
        "tifffile",
        "PIL",
        "imagecodecs",
        "OpenImageIO",
    ],
    packages: &[
        "numpy",
        "openexr",
        "tifffile",
        "pillow",
        "imagecodecs",
        "openimageio",
    ],
};

/// The element type numpy calls `name`.
pub fn dtype(name: &str) -> Dtype {
    Dtype::ALL
        .into_iter()
        .find(|d| d.name() == name)
        .unwrap_or_else(|| panic!("unknown dtype {name}"))
}

/// Little-endian elements of `dtype` as numbers.
pub fn values(bytes: &[u8], dtype: Dtype) -> Vec<f64> {
    let each = bytes.chunks_exact(dtype.size());
    each.map(|b| match dtype {
        Dtype::U8 => f64::from(b[0]),
        Dtype::I8 => f64::from(b[0] as i8),
        Dtype::U16 => f64::from(u16::from_le_bytes([b[0], b[1]])),
        Dtype::I16 => f64::from(i16::from_le_bytes([b[0], b[1]])),
        Dtype::F16 => f16::from_le_bytes([b[0], b[1]]).to_f64(),
        Dtype::U32 => f64::from(u32::from_le_bytes(b.try_into().unwrap())),
        Dtype::I32 => f64::from(i32::from_le_bytes(b.try_into().unwrap())),
        Dtype::F32 => f64::from(f32::from_le_bytes(b.try_into().unwrap())),
        Dtype::F64 => f64::from_le_bytes(b.try_into().unwrap()),
        other => panic!("unexpected dtype {other}"),
    })
    .collect()
}

/// The names of the files in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
