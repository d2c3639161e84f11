//! Import of image files written by independent libraries: `tests/image_files/make_files.py`
//! writes OpenEXR files (OpenEXR's own Python bindings, OpenImageIO's texture maker),
//! TIFFs (tifffile), PNGs (Pillow, imagecodecs, a hand-written encoder) and JPEGs
//! (Pillow), with the pixels those libraries read back, OpenImageIO's channel names and
//! order, its conversions to other types, and damaged files with the error each must give.
//! Every case is imported here and compared: lossless files exactly, lossy ones within the
//! tolerance the manifest states.
//!
//! The interpreter is `$CIMG_IMAGE_PYTHON` if set; else `<repo>/.venv-img/bin/python` when
//! that environment exists and has numpy, OpenEXR, tifffile, Pillow, imagecodecs and
//! OpenImageIO; else a virtual environment made once in the target directory (see
//! `tests/common/python.rs`). The files are made once per version of the script, in the
//! target directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use compressed_image::{AnyImage, Dtype, Error, Image, ImageFileError, ReadOptions, Settings, f16};
use serde_json::Value;

mod common;
#[path = "common/image_files.rs"]
mod image_files;
#[path = "common/progress_log.rs"]
#[allow(dead_code)] // cancellation is tested in tests/image_progress.rs
mod progress_log;
#[path = "common/python.rs"]
mod python_env;

use image_files::{IMAGE_PYTHON, dtype, listing, values};
use progress_log::ProgressLog;

/// The directory of generated files, made once per version of the generator (a file lock
/// keeps parallel test processes from racing; the manifest, written last, marks it done).
fn files() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/image_files/make_files.py");
        let version = crc32fast::hash(&fs::read(&script).expect("read the generator"));
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.join(format!("image-files-{version:08x}"));
        fs::create_dir_all(tmp).expect("create the target's temporary directory");
        let lock = fs::File::create(tmp.join("image-files.lock")).expect("create the lock file");
        lock.lock().expect("lock the image files");
        if !dir.join("manifest.json").exists() {
            let _ = fs::remove_dir_all(&dir);
            let mut make = Command::new(IMAGE_PYTHON.python());
            make.arg(&script).arg(&dir);
            python_env::run_setup(make, "tests/image_files/make_files.py", "see its output");
        }
        lock.unlock().expect("unlock the image files");
        dir
    })
}

fn manifest() -> &'static [Value] {
    static CASES: OnceLock<Vec<Value>> = OnceLock::new();
    CASES.get_or_init(|| {
        let text = fs::read(files().join("manifest.json")).expect("read the manifest");
        let manifest: Value = serde_json::from_slice(&text).expect("parse the manifest");
        manifest["cases"].as_array().expect("cases").clone()
    })
}

/// The cases whose name starts with `prefix`, with or without an expected error.
fn cases(prefix: &str, errors: bool) -> Vec<&'static Value> {
    let found: Vec<&Value> = manifest()
        .iter()
        .filter(|c| c["case"].as_str().unwrap().starts_with(prefix))
        .filter(|c| c.get("error").is_some() == errors)
        .collect();
    assert!(!found.is_empty(), "no {prefix} cases in the manifest");
    found
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// `got` equals `expected` (raw bytes of `dtype`): exactly, or within `tolerance`.
fn assert_pixels(what: &str, got: &[u8], expected: &[u8], dtype: Dtype, tolerance: f64) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    if tolerance == 0.0 {
        let first = got.iter().zip(expected).position(|(a, b)| a != b);
        assert!(first.is_none(), "{what}: bytes differ from byte {first:?}");
        return;
    }
    let (got, expected) = (values(got, dtype), values(expected, dtype));
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= tolerance,
        "{what}: differs by up to {worst} (tolerance {tolerance})"
    );
}

/// Small chunks (a few rows), so every file spans several chunks and bands.
fn small_chunks(width: usize) -> Settings {
    Settings::default().chunk_size(width * 5)
}

fn options(case: &Value) -> ReadOptions {
    let width = case["width"].as_u64().unwrap() as usize;
    ReadOptions::default()
        .subimage(case["subimage"].as_u64().unwrap() as usize)
        .settings(small_chunks(width))
}

fn path_of(case: &Value) -> PathBuf {
    files().join(text(&case["file"]))
}

/// Import `case` and compare everything the manifest says.
fn check_case(case: &Value) {
    let name = text(&case["case"]);
    let image =
        AnyImage::read(path_of(case), &options(case)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        image.width() as u64,
        case["width"].as_u64().unwrap(),
        "{name}"
    );
    assert_eq!(
        image.height() as u64,
        case["height"].as_u64().unwrap(),
        "{name}"
    );
    let channels = case["channels"].as_array().unwrap();
    let names: Vec<&str> = channels.iter().map(|c| text(&c["name"])).collect();
    assert_eq!(
        image.channel_names(),
        names,
        "{name}: channel names and order"
    );
    let dtypes: Vec<Dtype> = channels.iter().map(|c| dtype(text(&c["dtype"]))).collect();
    assert_eq!(image.dtypes(), dtypes, "{name}: element types");
    let tolerance = case["tolerance"].as_f64().unwrap();
    for ((got, channel), dt) in image
        .get_decompressed_bytes()
        .unwrap()
        .iter()
        .zip(channels)
        .zip(&dtypes)
    {
        let expected = fs::read(files().join(text(&channel["data"]))).unwrap();
        let what = format!("{name} channel {}", text(&channel["name"]));
        assert_pixels(&what, got, &expected, *dt, tolerance);
    }
    let metadata = image.metadata();
    for (key, value) in case["metadata"].as_object().unwrap() {
        assert_eq!(
            &metadata[key], value,
            "{name}: metadata {key} in {metadata}"
        );
    }
    assert_eq!(metadata["source:subimage"], case["subimage"], "{name}");
}

/// Import and compare every case whose name starts with `prefix`.
fn check_cases(prefix: &str) {
    cases(prefix, false).into_iter().for_each(check_case);
}

#[test]
fn openexr_files_import_as_openexr_reads_them() {
    check_cases("exr-");
}

#[test]
fn tiff_files_import_as_tifffile_reads_them() {
    check_cases("tiff-");
}

#[test]
fn png_files_import_as_pillow_reads_them() {
    check_cases("png-");
}

#[test]
fn jpeg_files_import_as_libjpeg_reads_them_within_tolerance() {
    check_cases("jpeg-");
}

#[test]
fn conversions_match_openimageio() {
    let mut checked = 0;
    for case in manifest().iter().filter(|c| c.get("error").is_none()) {
        let name = text(&case["case"]);
        for conversion in case["conversions"].as_array().unwrap() {
            let dt = dtype(text(&conversion["dtype"]));
            let image = AnyImage::read(path_of(case), &options(case).dtype(dt))
                .unwrap_or_else(|e| panic!("{name} as {dt}: {e}"));
            assert!(image.dtypes().iter().all(|&d| d == dt), "{name} as {dt}");
            let expected = conversion["channels"].as_array().unwrap();
            let got = image.get_decompressed_bytes().unwrap();
            assert_eq!(got.len(), expected.len(), "{name} as {dt}");
            for (c, (got, file)) in got.iter().zip(expected).enumerate() {
                let expected = fs::read(files().join(text(file))).unwrap();
                // OpenImageIO converts through float32: its rounding may differ by one
                // step of the target type. Lossy files state their own tolerance.
                let step = if dt.name().starts_with("float") {
                    1e-6
                } else {
                    1.0
                };
                let tolerance = conversion["tolerance"].as_f64().unwrap_or(step);
                assert_pixels(
                    &format!("{name} as {dt}, channel {c}"),
                    got,
                    &expected,
                    dt,
                    tolerance,
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} conversions in the manifest");
}

#[test]
fn read_info_describes_each_file_as_its_import_presents_it() {
    for case in manifest().iter().filter(|c| c.get("error").is_none()) {
        let name = text(&case["case"]);
        let subimage = case["subimage"].as_u64().unwrap() as usize;
        let info =
            AnyImage::read_info(path_of(case), subimage).unwrap_or_else(|e| panic!("{name}: {e}"));
        let channels = case["channels"].as_array().unwrap();
        let names: Vec<&str> = channels.iter().map(|c| text(&c["name"])).collect();
        let dtypes: Vec<Dtype> = channels.iter().map(|c| dtype(text(&c["dtype"]))).collect();
        assert_eq!(info.channel_names, names, "{name}");
        assert_eq!(info.dtypes, dtypes, "{name}");
        assert_eq!(info.width as u64, case["width"].as_u64().unwrap(), "{name}");
        assert_eq!(
            info.height as u64,
            case["height"].as_u64().unwrap(),
            "{name}"
        );
        assert!(subimage < info.subimages, "{name}");
        let past = AnyImage::read_info(path_of(case), info.subimages).unwrap_err();
        assert!(
            matches!(past, Error::ImageFile { kind: ImageFileError::BadSubimage { index, count }, .. }
                if index == info.subimages && count == info.subimages),
            "{name}: {past}"
        );
    }
}

/// The kind of an import error, by name (as the manifest names it).
fn kind_name(kind: &ImageFileError) -> &'static str {
    match kind {
        ImageFileError::UnknownFormat => "UnknownFormat",
        ImageFileError::UnsupportedCompression(_) => "UnsupportedCompression",
        ImageFileError::DeepData => "DeepData",
        ImageFileError::Subsampled { .. } => "Subsampled",
        ImageFileError::BadSubimage { .. } => "BadSubimage",
        ImageFileError::NoSuchChannel(_) => "NoSuchChannel",
        ImageFileError::ChannelIndexOutOfRange { .. } => "ChannelIndexOutOfRange",
        ImageFileError::TooLarge { .. } => "TooLarge",
        ImageFileError::Unsupported(_) => "Unsupported",
        ImageFileError::Decode(_) => "Decode",
        ImageFileError::Io(_) => "Io",
        _ => "unknown kind",
    }
}

#[test]
fn refused_and_damaged_files_give_typed_errors_and_leave_nothing_behind() {
    for case in manifest().iter().filter(|c| c.get("error").is_some()) {
        let name = text(&case["case"]);
        let expected = text(&case["error"]);
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.cimg");
        let options = ReadOptions::default()
            .subimage(case["subimage"].as_u64().unwrap() as usize)
            .to_file(&destination);
        match AnyImage::read(path_of(case), &options) {
            Err(Error::ImageFile { path, kind }) => {
                assert_eq!(kind_name(&kind), expected, "{name}: {kind}");
                assert_eq!(path, path_of(case), "{name}");
            }
            Err(other) => panic!("{name}: expected {expected}, got {other}"),
            Ok(_) => panic!("{name}: expected {expected}, the import succeeded"),
        }
        assert_eq!(
            listing(dir.path()),
            Vec::<String>::new(),
            "{name}: files left behind"
        );
    }
}

fn case_named(name: &str) -> &'static Value {
    manifest()
        .iter()
        .find(|c| c["case"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

#[test]
fn an_import_to_a_file_appears_only_when_complete_and_reopens() {
    let case = case_named("exr-layers");
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("layers.cimg");
    let image = AnyImage::read(path_of(case), &options(case).to_file(&destination)).unwrap();
    assert_eq!(image.path(), Some(destination.as_path()));
    let expected = image.get_decompressed_bytes().unwrap();
    drop(image);
    assert_eq!(listing(dir.path()), ["layers.cimg", "layers.cimg.lock"]);
    let reopened = AnyImage::open_read_only(&destination).unwrap();
    assert_eq!(reopened.get_decompressed_bytes().unwrap(), expected);
    assert_eq!(reopened.metadata()["source:format"], "openexr");
}

#[test]
fn a_channel_subset_keeps_the_presented_order() {
    let case = case_named("exr-layers");
    let all: Vec<&str> = case["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| text(&c["name"]))
        .collect();
    let wanted = ["left.R", "B", "R", "left.Z"];
    let by_name = AnyImage::read(path_of(case), &options(case).channel_names(wanted)).unwrap();
    let mut presented: Vec<&str> = wanted.to_vec();
    presented.sort_by_key(|n| all.iter().position(|a| a == n));
    assert_eq!(by_name.channel_names(), presented);
    let by_index =
        AnyImage::read(path_of(case), &options(case).channel_indices([5, 0, 2])).unwrap();
    assert_eq!(by_index.channel_names(), [all[0], all[2], all[5]]);
    let full = AnyImage::read(path_of(case), &options(case)).unwrap();
    let full_bytes = full.get_decompressed_bytes().unwrap();
    assert_eq!(
        by_index.get_decompressed_bytes().unwrap(),
        [&full_bytes[0], &full_bytes[2], &full_bytes[5]].map(Clone::clone)
    );
    // A name asked for twice is imported twice, as the original does.
    let twice =
        AnyImage::read(path_of(case), &options(case).channel_names(["G", "R", "G"])).unwrap();
    assert_eq!(twice.channel_names(), ["R", "G", "G"]);
    let twice_bytes = twice.get_decompressed_bytes().unwrap();
    assert_eq!(twice_bytes[1], twice_bytes[2]);
    let none = AnyImage::read(
        path_of(case),
        &options(case).channel_names(Vec::<String>::new()),
    )
    .unwrap();
    assert_eq!(none.num_channels(), 0);
    assert_eq!(none.width(), full.width());
}

#[test]
fn unknown_channels_are_typed_errors() {
    let case = case_named("png-rgb");
    let err = AnyImage::read(path_of(case), &options(case).channel_names(["R", "Q"])).unwrap_err();
    assert!(
        matches!(err, Error::ImageFile { kind: ImageFileError::NoSuchChannel(n), .. } if n == "Q")
    );
    let err = AnyImage::read(path_of(case), &options(case).channel_indices([3])).unwrap_err();
    assert!(matches!(
        err,
        Error::ImageFile {
            kind: ImageFileError::ChannelIndexOutOfRange { index: 3, count: 3 },
            ..
        }
    ));
}

#[test]
fn typed_read_converts_every_channel() {
    let case = case_named("png-rgba");
    let image = Image::<f32>::read(path_of(case), &options(case)).unwrap();
    let native = AnyImage::read(path_of(case), &options(case)).unwrap();
    for (f, u) in image
        .get_decompressed()
        .unwrap()
        .iter()
        .zip(native.get_decompressed_bytes().unwrap())
    {
        let expected: Vec<f32> = u.iter().map(|&v| f32::from(v) / 255.0).collect();
        assert_eq!(f, &expected);
    }
    let err = Image::<f32>::read(path_of(case), &options(case).dtype(Dtype::U16)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn postprocess_sees_every_chunk_once_and_its_changes_are_stored() {
    let case = case_named("tiff-u16-rgb-lzw-predictor");
    let mut seen = Vec::new();
    let image = AnyImage::read_with(path_of(case), &options(case), |mut chunk| {
        seen.push((chunk.channel(), chunk.index()));
        assert_eq!(chunk.file_channel(), chunk.channel());
        let row = chunk.start_row() as u16;
        for v in chunk.data_mut::<u16>()? {
            *v = row;
        }
        Ok(())
    })
    .unwrap();
    let chunks = image.channel(0).unwrap().num_chunks();
    assert!(chunks > 2, "the test wants several chunks");
    seen.sort_unstable();
    let expected: Vec<(usize, usize)> = (0..3)
        .flat_map(|c| (0..chunks).map(move |i| (c, i)))
        .collect();
    assert_eq!(seen, expected);
    let rows_per_chunk = image.channel(0).unwrap().geometry().rows_per_chunk();
    let g = image.get_decompressed_bytes().unwrap();
    let first: Vec<u16> = g[1]
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let width = image.width();
    for (i, v) in first.iter().enumerate() {
        assert_eq!(*v as usize, (i / width) / rows_per_chunk * rows_per_chunk);
    }
}

#[test]
fn a_failing_postprocess_ends_the_import_and_leaves_nothing_behind() {
    let case = case_named("png-gray16");
    let dir = tempfile::tempdir().unwrap();
    let options = options(case).to_file(dir.path().join("x.cimg"));
    let mut calls = 0;
    let err = AnyImage::read_with(path_of(case), &options, |chunk| {
        calls += 1;
        match chunk.index() {
            1 => Err(Error::ReadOnly),
            _ => Ok(()),
        }
    })
    .unwrap_err();
    assert!(matches!(err, Error::ReadOnly), "{err}");
    assert_eq!(calls, 2);
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn a_missing_file_is_a_file_error() {
    let err = AnyImage::read("/nonexistent/x.exr", &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::File { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
}

#[test]
fn files_with_random_bytes_changed_give_an_image_or_a_typed_error_never_a_panic() {
    let mut rng = common::rng::Rng::new(20261202);
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("damaged");
    let mut errors = 0;
    for name in [
        "exr-scanline-zip",
        "exr-tiled-piz",
        "exr-part1",
        "tiff-u16-rgb-lzw-predictor",
        "tiff-five-samples-tiled-planar",
        "png-palette-trns",
        "png-interlaced",
        "jpeg-progressive",
    ] {
        let case = manifest()
            .iter()
            .find(|c| text(&c["case"]).starts_with(name))
            .unwrap_or_else(|| panic!("no case {name}"));
        let pristine = fs::read(path_of(case)).unwrap();
        for _ in 0..40 {
            let mut bytes = pristine.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            fs::write(&damaged, &bytes).unwrap();
            match AnyImage::read(&damaged, &options(case)) {
                // Damage to pixels of an uncompressed or lossy stream can go unnoticed.
                Ok(_) => {}
                Err(Error::ImageFile { .. }) => errors += 1,
                Err(other) => panic!("{name}: not an image file error: {other}"),
            }
        }
    }
    assert!(errors > 0, "no damage was detected");
}

#[test]
fn an_import_replaces_an_existing_file_only_when_complete() {
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("image.cimg");
    fs::write(&destination, b"old contents").unwrap();
    let bad = case_named("bad-truncated-png-50");
    let options = ReadOptions::default().to_file(&destination);
    assert!(AnyImage::read(path_of(bad), &options).is_err());
    assert_eq!(fs::read(&destination).unwrap(), b"old contents");
    let good = case_named("png-rgb");
    let image = AnyImage::read(path_of(good), &options).unwrap();
    drop(image);
    assert_eq!(
        AnyImage::open_read_only(&destination)
            .unwrap()
            .channel_names(),
        ["R", "G", "B"]
    );
}

#[test]
fn a_typed_import_of_mixed_channels_converts_each() {
    let case = case_named("exr-scanline-zip");
    let image = Image::<f16>::read(path_of(case), &options(case)).unwrap();
    let native = AnyImage::read(path_of(case), &options(case)).unwrap();
    assert_eq!(
        native.dtypes(),
        [
            Dtype::F16,
            Dtype::F16,
            Dtype::F16,
            Dtype::F16,
            Dtype::F32,
            Dtype::U32
        ]
    );
    let halves = image.get_decompressed().unwrap();
    let native = native.get_decompressed_bytes().unwrap();
    assert_eq!(f16_values(&native[0]), halves[0], "f16 stays as it is");
    let depth: Vec<f16> = values(&native[4], Dtype::F32)
        .iter()
        .map(|&v| f16::from_f64(v))
        .collect();
    assert_eq!(depth, halves[4], "f32 rounds to f16");
    let ids: Vec<f16> = values(&native[5], Dtype::U32)
        .iter()
        .map(|&v| f16::from_f64(v / f64::from(u32::MAX)))
        .collect();
    assert_eq!(ids, halves[5], "u32 is normalised");
}

fn f16_values(bytes: &[u8]) -> Vec<f16> {
    bytes
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn imports_report_the_bytes_they_store_and_finish_once_also_when_they_fail() {
    for case in manifest().iter().filter(|c| c.get("error").is_none()) {
        let name = text(&case["case"]);
        let log = ProgressLog::new();
        AnyImage::read_with_progress(path_of(case), &options(case), &log)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every element in the type the manifest says the channel is stored as.
        let element_bytes: u64 = (case["channels"].as_array().unwrap().iter())
            .map(|c| dtype(text(&c["dtype"])).size() as u64)
            .sum();
        let pixels = case["width"].as_u64().unwrap() * case["height"].as_u64().unwrap();
        assert_eq!(log.completed("import"), pixels * element_bytes, "{name}");
    }
    for case in manifest().iter().filter(|c| c.get("error").is_some()) {
        let name = text(&case["case"]);
        let dir = tempfile::tempdir().unwrap();
        let options = ReadOptions::default()
            .subimage(case["subimage"].as_u64().unwrap() as usize)
            .to_file(dir.path().join("out.cimg"));
        let log = ProgressLog::new();
        AnyImage::read_with_progress(path_of(case), &options, &log).unwrap_err();
        // Refused when opened (no call), or found damaged half-way (one start, one
        // finish, short of the total).
        if !log.is_silent() {
            let (what, total, advanced) = log.ended();
            assert_eq!(what, "import", "{name}");
            assert!(advanced < total, "{name}: {advanced} of {total}");
        }
        assert!(listing(dir.path()).is_empty(), "{name}: files left behind");
    }
}
