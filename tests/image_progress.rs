//! Progress of image file import, export and previews: each reports its exact total (the
//! bytes of the image's pixels, in the image's element types), advances that add up to it
//! and one `finish`, whether it completes, fails or is cancelled; cancelled at any call,
//! it returns `Error::Cancelled` and leaves no file, no temporary file and whatever it
//! would replace untouched.
//!
//! The image files imported here are the crate's own exports (their pixels are checked
//! against independent readers in `tests/image_export.rs`); `tests/image_files.rs` checks
//! the totals of imports of files written by other libraries.

use std::fs;
use std::path::{Path, PathBuf};

use compressed_image::{
    AnyImage, Dtype, Error, Image, ImageFileError, PreviewOptions, ReadOptions, Result, Settings,
    WriteOptions, f16,
};

#[path = "common/image_files.rs"]
#[allow(dead_code)] // only the directory listing is used here
mod image_files;
#[path = "common/progress_log.rs"]
mod progress_log;
#[path = "common/python.rs"]
#[allow(dead_code)] // needed by `image_files`, whose interpreter is not used here
mod python_env;
#[path = "common/rng.rs"]
#[allow(dead_code)]
mod rng;

use image_files::listing;
use progress_log::ProgressLog;
use rng::Rng;

/// Wide enough for TIFF strips of 32 rows, so that a TIFF export has two bands.
const WIDTH: usize = 1024;
const HEIGHT: usize = 64;

/// Settings with chunks of `rows` rows of elements of `size` bytes.
fn rows(rows: usize, size: usize) -> Settings {
    Settings::default().chunk_size(WIDTH * rows * size)
}

/// An RGBA image of four element types — `R` f32, `G` f16, `B` u16, `A` u8, 9 bytes a
/// pixel — each channel in chunks of a different height, so that neither an export's
/// bands nor an import's chunks line up with the file's blocks.
fn rgba_image() -> AnyImage {
    let mut rng = Rng::new(11);
    let mut unit = || rng.below(1001) as f64 / 1000.0;
    let n = WIDTH * HEIGHT;
    let r: Vec<f32> = (0..n).map(|_| unit() as f32).collect();
    let g: Vec<f16> = (0..n).map(|_| f16::from_f64(unit())).collect();
    let b: Vec<u16> = (0..n).map(|_| (unit() * 65535.0) as u16).collect();
    let a: Vec<u8> = (0..n).map(|_| (unit() * 255.0) as u8).collect();
    let image = AnyImage::new(WIDTH, HEIGHT).unwrap();
    image.add_channel(&r, Some("R"), rows(5, 4)).unwrap();
    image.add_channel(&g, Some("G"), rows(9, 2)).unwrap();
    image.add_channel(&b, Some("B"), rows(7, 2)).unwrap();
    image.add_channel(&a, Some("A"), rows(13, 1)).unwrap();
    image
}

/// Bytes of `per_pixel` bytes of elements over the whole image.
fn pixel_bytes(per_pixel: usize) -> u64 {
    (WIDTH * HEIGHT * per_pixel) as u64
}

/// An export or a preview of `image` to a path, reporting to a progress observer if one
/// is given, else by the method without progress.
type Writing = Box<dyn Fn(&AnyImage, &Path, Option<&ProgressLog>) -> Result>;

/// Every kind of export and preview: the extension its files get, what it reports as, its
/// element bytes per pixel of [`rgba_image`], and the operation.
fn writings() -> Vec<(&'static str, &'static str, usize, Writing)> {
    let export = |options: WriteOptions| -> Writing {
        Box::new(move |image, path, log| match log {
            Some(log) => image.write_with_progress(path, &options, log),
            None => image.write(path, &options),
        })
    };
    let preview = |options: PreviewOptions| -> Writing {
        Box::new(move |image, path, log| match log {
            Some(log) => image.preview_with_progress(path, &options, log),
            None => image.preview(path, &options),
        })
    };
    let rgb = || WriteOptions::default().channel_names(["R", "G", "B"]);
    vec![
        ("exr", "export", 9, export(WriteOptions::default())),
        ("tif", "export", 9, export(WriteOptions::default())),
        ("png", "export", 9, export(WriteOptions::default())),
        ("png", "export", 8, export(rgb())),
        (
            "png",
            "preview",
            9,
            preview(PreviewOptions::default().max_size(20)),
        ),
        (
            "png",
            "preview",
            2,
            preview(PreviewOptions::default().channel_names(["G"])),
        ),
    ]
}

#[test]
fn exports_and_previews_report_every_byte_read_and_write_what_the_plain_methods_write() {
    let dir = tempfile::tempdir().unwrap();
    let image = rgba_image();
    for (k, (extension, what, per_pixel, writing)) in writings().into_iter().enumerate() {
        let observed = dir.path().join(format!("observed{k}.{extension}"));
        let log = ProgressLog::new();
        writing(&image, &observed, Some(&log)).unwrap();
        assert_eq!(log.completed(what), pixel_bytes(per_pixel), "{k}: {what}");
        // At least two bands, each reported once written, and the end.
        assert!(log.advances() >= 3, "{k}: {:?}", log.calls());
        let plain = dir.path().join(format!("plain{k}.{extension}"));
        writing(&image, &plain, None).unwrap();
        assert!(
            fs::read(&observed).unwrap() == fs::read(&plain).unwrap(),
            "{k}"
        );
    }
}

#[test]
fn a_cancelled_export_or_preview_leaves_no_temporary_file_and_the_old_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let image = rgba_image();
    for (k, (extension, what, _, writing)) in writings().into_iter().enumerate() {
        let count = ProgressLog::new();
        let fresh = dir.path().join(format!("count.{extension}"));
        writing(&image, &fresh, Some(&count)).unwrap();
        fs::remove_file(&fresh).unwrap();
        let target = dir.path().join(format!("old.{extension}"));
        fs::write(&target, b"the old file").unwrap();
        let before = listing(dir.path());
        for cancel_at in 1..=count.advances() {
            let log = ProgressLog::cancelling_at(cancel_at);
            let err = writing(&image, &target, Some(&log)).unwrap_err();
            assert!(matches!(err, Error::Cancelled), "{k}: {err:?}");
            assert_eq!(log.ended().0, what);
            assert_eq!(
                log.advances(),
                cancel_at,
                "{k}: stops at the call that cancels"
            );
            assert_eq!(listing(dir.path()), before, "{k}: cancelled at {cancel_at}");
            assert_eq!(fs::read(&target).unwrap(), b"the old file");
        }
        fs::remove_file(&target).unwrap();
    }
}

#[test]
fn an_export_that_fails_reports_nothing_before_it_starts_and_finishes_once_after() {
    let dir = tempfile::tempdir().unwrap();
    let image = rgba_image();
    // Refused before any file is made: no call at all.
    let log = ProgressLog::new();
    let five = WriteOptions::default().channel_indices([0, 1, 2, 3, 0]);
    let err = image
        .write_with_progress(dir.path().join("five.png"), &five, &log)
        .unwrap_err();
    assert!(matches!(err, Error::ImageFile { .. }), "{err:?}");
    let err = image
        .write_with_progress(dir.path().join("x.jpg"), &WriteOptions::default(), &log)
        .unwrap_err();
    assert!(matches!(err, Error::ImageFile { .. }), "{err:?}");
    let err = image
        .preview_with_progress(
            dir.path().join("x.png"),
            &PreviewOptions::default().max_size(0),
            &log,
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(log.is_silent(), "{:?}", log.calls());

    // Refused by the OpenEXR writer once the export started: one start, one finish.
    let log = ProgressLog::new();
    let twice = WriteOptions::default().channel_indices([0, 0]);
    let err = image
        .write_with_progress(dir.path().join("twice.exr"), &twice, &log)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::ImageFile {
                kind: ImageFileError::DuplicateChannel(_),
                ..
            }
        ),
        "{err:?}"
    );
    let (what, total, advanced) = log.ended();
    assert_eq!((what.as_str(), total), ("export", pixel_bytes(8)));
    assert!(advanced < total);
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

/// [`rgba_image`] exported as OpenEXR (`R G B A` as f32 f16 f32 f16: 12 bytes a pixel),
/// TIFF and PNG (16-bit: 8 bytes a pixel), in `dir`: each path with its bytes a pixel.
fn exported(dir: &Path) -> Vec<(PathBuf, usize)> {
    let image = rgba_image();
    [("rgba.exr", 12), ("rgba.tif", 8), ("rgba.png", 8)]
        .into_iter()
        .map(|(name, per_pixel)| {
            let path = dir.join(name);
            image.write(&path, &WriteOptions::default()).unwrap();
            (path, per_pixel)
        })
        .collect()
}

/// Import options with chunks of 16 bytes a column: 4 rows of f32, 8 of u16 or f16.
fn read_options() -> ReadOptions {
    ReadOptions::default().settings(rows(16, 1))
}

#[test]
fn imports_report_the_bytes_they_store_anonymous_or_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    for (k, (file, per_pixel)) in exported(dir.path()).into_iter().enumerate() {
        let expected = AnyImage::read(&file, &read_options())
            .unwrap()
            .get_decompressed_bytes()
            .unwrap();
        let to_file = read_options().to_file(out_dir.join(format!("{k}.cimg")));
        for options in [read_options(), to_file] {
            let log = ProgressLog::new();
            let image = AnyImage::read_with_progress(&file, &options, &log).unwrap();
            assert_eq!(log.completed("import"), pixel_bytes(per_pixel), "{file:?}");
            assert!(log.advances() > 4, "one per chunk: {:?}", log.calls());
            assert_eq!(image.get_decompressed_bytes().unwrap(), expected);
        }
        // Converted: the stored type counts.
        let log = ProgressLog::new();
        let image = Image::<f32>::read_with_progress(&file, &read_options(), &log).unwrap();
        assert_eq!(log.completed("import"), pixel_bytes(4 * 4), "{file:?}");
        assert_eq!(image.num_channels(), 4);
        let log = ProgressLog::new();
        let options = read_options().dtype(Dtype::U8).channel_names(["G"]);
        AnyImage::read_with_progress(&file, &options, &log).unwrap();
        assert_eq!(log.completed("import"), pixel_bytes(1), "{file:?}");
    }
    // A typed import asking for another type is refused before it starts.
    let log = ProgressLog::new();
    let file = dir.path().join("rgba.png");
    let options = read_options().dtype(Dtype::U8);
    let err = Image::<f32>::read_with_progress(&file, &options, &log).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(log.is_silent());
}

#[test]
fn a_cancelled_import_leaves_no_file_and_keeps_the_one_it_would_replace() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let target = out_dir.join("image.cimg");
    for (file, _) in exported(dir.path()) {
        let count = ProgressLog::new();
        AnyImage::read_with_progress(&file, &read_options(), &count).unwrap();
        let calls = count.advances();
        for cancel_at in 1..=calls {
            let to_file = read_options().to_file(&target);
            for options in [read_options(), to_file] {
                let log = ProgressLog::cancelling_at(cancel_at);
                let err = AnyImage::read_with_progress(&file, &options, &log).unwrap_err();
                assert!(matches!(err, Error::Cancelled), "{err:?}");
                assert_eq!(log.ended().0, "import");
                assert_eq!(log.advances(), cancel_at, "stops at the call that cancels");
                assert!(listing(&out_dir).is_empty(), "{:?}", listing(&out_dir));
            }
        }
    }
    // An existing file stays as it was, beside its lock file.
    let (file, _) = &exported(dir.path())[0];
    AnyImage::read(file, &read_options().to_file(&target)).unwrap();
    let (bytes, before) = (fs::read(&target).unwrap(), listing(&out_dir));
    let log = ProgressLog::cancelling_at(3);
    let options = read_options().to_file(&target);
    let err = AnyImage::read_with_progress(file, &options, &log).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(fs::read(&target).unwrap() == bytes);
    assert_eq!(listing(&out_dir), before);
}

#[test]
fn an_import_failing_half_way_finishes_once_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let (file, _) = &exported(dir.path())[0];
    // The header and the block offsets are whole; the blocks of the second half are not.
    let bytes = fs::read(file).unwrap();
    let cut = dir.path().join("cut.exr");
    fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let log = ProgressLog::new();
    let options = read_options().to_file(out_dir.join("cut.cimg"));
    let err = AnyImage::read_with_progress(&cut, &options, &log).unwrap_err();
    assert!(matches!(err, Error::ImageFile { .. }), "{err:?}");
    let (what, total, advanced) = log.ended();
    assert_eq!((what.as_str(), total), ("import", pixel_bytes(12)));
    assert!(advanced > 0 && advanced < total, "{advanced} of {total}");
    assert!(listing(&out_dir).is_empty(), "{:?}", listing(&out_dir));
}
