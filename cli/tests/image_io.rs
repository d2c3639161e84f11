//! `cimg import`, `export` and `preview` on image files written by independent libraries
//! (OpenEXR's Python bindings, Pillow): names and types as `info --json` shows them,
//! pixels compared after a round trip, preview sizes, one-line errors, imports
//! interrupted or killed half-way leaving no output, and interrupted exports and previews
//! leaving no temporary file and the file they would replace untouched.
//!
//! The interpreter is the image tests' one (`$CIMG_IMAGE_PYTHON`, else the project's
//! `.venv-img`, else one made in the target directory; see `tests/common/python.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::python as python_env;
use common::{
    Fixture, assert_one_error_line, cimg, entries, full_pipe, json_of, stderr_of, wait_for,
    wait_for_prefix,
};
use compressed_image::{AnyImage, ReadOptions};

#[allow(dead_code)] // only the interpreter is used here
#[path = "../../tests/common/image_files.rs"]
mod image_files;

/// Run `script` with the image tests' interpreter, `dir` as its first argument.
fn python(script: &str, dir: &Path) {
    let mut command = Command::new(image_files::IMAGE_PYTHON.python());
    command.arg("-c").arg(script).arg(dir);
    python_env::run_setup(command, "the image-writing script", "see its output");
}

/// An OpenEXR file `name` written by OpenEXR's Python module: `width` x `height`, ZIP
/// compressed, `R`, `G` and `Z` float32 noise and `B` float16 noise.
fn exr_file(dir: &Path, name: &str, width: usize, height: usize) -> PathBuf {
    python(
        &format!(
            "import sys, numpy as np, OpenEXR
rng = np.random.default_rng(7)
f32 = lambda: rng.random(({height}, {width}), dtype=np.float32)
channels = {{'R': f32(), 'G': f32(), 'B': f32().astype(np.float16), 'Z': f32() * 100}}
header = {{'type': OpenEXR.scanlineimage, 'compression': OpenEXR.ZIP_COMPRESSION}}
OpenEXR.File(header, channels).write(sys.argv[1] + '/{name}')"
        ),
        dir,
    );
    dir.join(name)
}

/// An 8-bit RGBA PNG `name` written by Pillow, `width` x `height`.
fn png_file(dir: &Path, name: &str, width: usize, height: usize) -> PathBuf {
    python(
        &format!(
            "import sys, numpy as np
from PIL import Image
rng = np.random.default_rng(3)
pixels = rng.integers(0, 256, ({height}, {width}, 4), dtype=np.uint8)
Image.fromarray(pixels, 'RGBA').save(sys.argv[1] + '/{name}')"
        ),
        dir,
    );
    dir.join(name)
}

/// A Pillow PNG `<stem>.png` (see [`png_file`]) imported by `cimg` as `<stem>.cimg`: both
/// paths.
fn imported_png(dir: &Path, stem: &str, width: usize, height: usize) -> (PathBuf, PathBuf) {
    let png = png_file(dir, &format!("{stem}.png"), width, height);
    let cimg_file = dir.join(format!("{stem}.cimg"));
    run_ok(&["import".as_ref(), png.as_ref(), cimg_file.as_ref()]);
    (png, cimg_file)
}

/// Every channel's elements of the image file at `path`, as the library imports it.
fn pixels(path: &Path) -> Vec<Vec<u8>> {
    AnyImage::read(path, &ReadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .get_decompressed_bytes()
        .unwrap()
}

/// Run `cimg args`, checking that it succeeded; its standard output.
fn run_ok(args: &[&std::ffi::OsStr]) -> String {
    let output = cimg().args(args).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `info --json` of `path`: each channel's name and element type.
fn channels_of(path: &Path) -> Vec<(String, String)> {
    let output = cimg().args(["info", "--json"]).arg(path).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let info = json_of(&output);
    let channels = info[0]["channels"].as_array().unwrap();
    let text =
        |c: &compressed_image::serde_json::Value, key: &str| c[key].as_str().unwrap().to_string();
    channels
        .iter()
        .map(|c| (text(c, "name"), text(c, "dtype")))
        .collect()
}

fn named(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(n, d)| (n.to_string(), d.to_string()))
        .collect()
}

#[test]
fn an_openexr_file_imports_with_its_names_and_types_and_exports_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let exr = exr_file(dir.path(), "render.exr", 67, 41);
    let cimg_file = dir.path().join("render.cimg");
    let summary = run_ok(&[
        "import".as_ref(),
        exr.as_ref(),
        cimg_file.as_ref(),
        "--codec".as_ref(),
        "zstd".as_ref(),
        "--level".as_ref(),
        "3".as_ref(),
    ]);
    assert!(
        summary.starts_with(&format!("{}: 4 channels (R G B Z;", cimg_file.display())),
        "{summary}"
    );
    assert!(
        summary.contains("67 x 41") && summary.contains("ratio"),
        "{summary}"
    );
    assert_eq!(
        channels_of(&cimg_file),
        named(&[
            ("R", "float32"),
            ("G", "float32"),
            ("B", "float16"),
            ("Z", "float32")
        ])
    );
    let imported = AnyImage::open_read_only(&cimg_file).unwrap();
    assert_eq!(imported.get_decompressed_bytes().unwrap(), pixels(&exr));

    let back = dir.path().join("back.exr");
    run_ok(&[
        "export".as_ref(),
        cimg_file.as_ref(),
        back.as_ref(),
        "--compression".as_ref(),
        "piz".as_ref(),
    ]);
    assert_eq!(pixels(&back), pixels(&exr));
}

#[test]
fn a_channel_subset_imports_converted_and_one_channel_exports_as_npy() {
    let dir = tempfile::tempdir().unwrap();
    let exr = exr_file(dir.path(), "render.exr", 33, 20);
    let cimg_file = dir.path().join("zb.cimg");
    run_ok(&[
        "import".as_ref(),
        exr.as_ref(),
        cimg_file.as_ref(),
        "--channels".as_ref(),
        "Z,B".as_ref(),
        "--dtype".as_ref(),
        "f32".as_ref(),
    ]);
    // The file's order (B before Z), not the request's.
    assert_eq!(
        channels_of(&cimg_file),
        named(&[("B", "float32"), ("Z", "float32")])
    );

    let npy = dir.path().join("z.npy");
    run_ok(&[
        "export".as_ref(),
        cimg_file.as_ref(),
        npy.as_ref(),
        "--channels".as_ref(),
        "Z".as_ref(),
    ]);
    // numpy reads the array and OpenEXR's reader the original channel: they agree.
    python(
        "import sys, numpy as np, OpenEXR
d = sys.argv[1]
z = np.load(d + '/z.npy')
original = OpenEXR.File(d + '/render.exr', separate_channels=True).channels()['Z'].pixels
assert z.dtype == np.float32 and z.shape == (20, 33), (z.dtype, z.shape)
assert np.array_equal(z, original)",
        dir.path(),
    );
}

#[test]
fn a_pillow_png_imports_as_rgba_u8_and_exports_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (png, cimg_file) = imported_png(dir.path(), "photo", 45, 31);
    assert_eq!(
        channels_of(&cimg_file),
        named(&[
            ("R", "uint8"),
            ("G", "uint8"),
            ("B", "uint8"),
            ("A", "uint8")
        ])
    );

    let back = dir.path().join("back.png");
    run_ok(&["export".as_ref(), cimg_file.as_ref(), back.as_ref()]);
    assert_eq!(pixels(&back), pixels(&png));
    let tiff = dir.path().join("back.tif");
    run_ok(&[
        "export".as_ref(),
        cimg_file.as_ref(),
        tiff.as_ref(),
        "--channel-indices".as_ref(),
        "0,1,2".as_ref(),
        "--compression".as_ref(),
        "lzw".as_ref(),
    ]);
    assert_eq!(pixels(&tiff), pixels(&png)[..3]);
}

#[test]
fn a_preview_is_scaled_to_its_longest_side() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cimg_file) = imported_png(dir.path(), "wide", 300, 200);
    let preview = dir.path().join("thumb.png");
    run_ok(&[
        "preview".as_ref(),
        cimg_file.as_ref(),
        preview.as_ref(),
        "--size".as_ref(),
        "64".as_ref(),
        "--channel".as_ref(),
        "G".as_ref(),
    ]);
    let info = AnyImage::read_info(&preview, 0).unwrap();
    // 200 * 64 / 300 = 42.7, rounded.
    assert_eq!((info.width, info.height), (64, 43));
    assert_eq!(info.channel_names, ["Y"]);
}

#[test]
fn a_missing_input_is_one_line_and_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.exr");
    let out = dir.path().join("out.cimg");
    let output = cimg()
        .arg("import")
        .arg(&missing)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_one_error_line(&stderr_of(&output), &missing);
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    let missing = dir.path().join("missing.cimg");
    for command in ["export", "preview"] {
        let output = cimg()
            .arg(command)
            .arg(&missing)
            .arg(dir.path().join("out.png"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert_one_error_line(&stderr_of(&output), &missing);
    }
}

#[test]
fn an_unknown_export_extension_is_one_line_naming_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cimg_file) = imported_png(dir.path(), "photo", 8, 8);
    let out = dir.path().join("photo.jpg");
    let output = cimg()
        .arg("export")
        .arg(&cimg_file)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr, &out);
    assert!(stderr.contains("unknown extension"), "{stderr}");
    assert!(!out.exists());
}

/// An import of a 512 x 512 OpenEXR file (in 32 KiB chunks) from `input` into
/// `out_dir/big.cimg`, its stderr a full pipe: it blocks at its first progress line,
/// written once the first chunk is decoded, so it cannot end while the pipe is full.
/// Returns once the output's lock file shows the import has begun.
fn blocked_import(
    input: &Path,
    out_dir: &Path,
) -> (std::process::Child, std::io::PipeReader, PathBuf) {
    let out = out_dir.join("big.cimg");
    let (stderr, writer) = full_pipe();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cimg"));
    command
        .arg("import")
        .arg(input)
        .arg(&out)
        .args(["--chunk-size", "32768"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(writer);
    let mut child = command.spawn().unwrap();
    drop(command); // closes this process's writing end
    wait_for(&out_dir.join("big.cimg.lock"), &mut child);
    (child, stderr, out)
}

#[test]
fn an_interrupted_import_leaves_no_output_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = exr_file(dir.path(), "big.exr", 512, 512);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let (child, stderr, out) = blocked_import(&input, &out_dir);
    common::interrupt(child, stderr, &out);
    assert!(entries(&out_dir).is_empty(), "{:?}", entries(&out_dir));
}

#[test]
fn a_killed_import_leaves_no_output_and_the_next_import_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = exr_file(dir.path(), "big.exr", 512, 512);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let (mut child, stderr, out) = blocked_import(&input, &out_dir);
    child.kill().unwrap(); // SIGKILL: nothing of cimg runs after it
    child.wait().unwrap();
    drop(stderr);
    let left = entries(&out_dir);
    assert!(!out.exists(), "{left:?}");
    // What the killed process could not remove: its temporary file (and the lock file).
    assert!(
        left.iter().any(|n| n.starts_with(".big.cimg.cimg-tmp-")),
        "{left:?}"
    );

    let small = png_file(dir.path(), "small.png", 4, 4);
    run_ok(&["import".as_ref(), small.as_ref(), out.as_ref()]);
    assert_eq!(entries(&out_dir), ["big.cimg", "big.cimg.lock"]);
    assert_eq!(channels_of(&out).len(), 4);
}

#[test]
fn an_export_the_format_cannot_hold_is_one_line_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cimg_file) = imported_png(dir.path(), "photo", 8, 8);
    let before = entries(dir.path());
    let out = dir.path().join("five.png");
    let output = cimg()
        .args(["--quiet", "export"])
        .arg(&cimg_file)
        .arg(&out)
        .args(["--channel-indices", "0,1,2,3,0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr, &out);
    // The library's message names the file; the line names it once.
    assert_eq!(stderr.matches("five.png").count(), 1, "{stderr}");
    assert_eq!(entries(dir.path()), before);
}

/// Run `cimg command fixture out` (`out` in the fixture's directory, already holding other
/// content) with its stderr a full pipe, interrupt it once its temporary file appears —
/// it then blocks on its first progress line, written right after, so it cannot be done
/// yet — and check that it reports the interruption, and leaves no temporary file and
/// `out` as it was.
fn interrupt_writing(command: &str, out_name: &str) {
    let fixture = Fixture::new();
    let out = fixture.file(out_name);
    std::fs::write(&out, b"the previous output").unwrap();
    let before = entries(fixture.dir.path());
    let (stderr, writer) = full_pipe();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cimg"))
        .arg(command)
        .arg(&fixture.path)
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(writer)
        .spawn()
        .unwrap();
    let temporary = format!(".{out_name}.cimg-tmp-");
    wait_for_prefix(fixture.dir.path(), &temporary, &mut child);
    let output = common::interrupt(child, stderr, &out);
    assert!(output.stdout.is_empty(), "{command}");
    assert_eq!(entries(fixture.dir.path()), before, "{command}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous output");
}

#[test]
fn an_interrupted_export_leaves_no_temporary_file_and_the_old_output_untouched() {
    for out in ["out.exr", "out.tif", "out.png"] {
        interrupt_writing("export", out);
    }
}

#[test]
fn an_interrupted_preview_leaves_no_temporary_file_and_the_old_output_untouched() {
    interrupt_writing("preview", "thumb.png");
}
