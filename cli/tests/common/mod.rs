//! What the `cimg` tests share: running the real binary, and files made through the
//! library that hold every kind of chunk, names, metadata and dead space.
//!
//! The library's own test kit (`tests/common/` of the repository) is included by path for
//! the format parser (to damage exact bytes), the seeded generator and the Python
//! interpreter.

#![allow(dead_code)]

#[path = "../../../tests/common/format.rs"]
pub mod format;
#[path = "../../../tests/common/python.rs"]
pub mod python;
#[path = "../../../tests/common/rng.rs"]
pub mod rng;

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};

use rustix::fs::OFlags;

use compressed_image::serde_json::{self, Value, json};
use compressed_image::{AnyImage, Settings, f16};

/// The `cimg` binary of this build.
pub fn cimg() -> assert_cmd::Command {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_cimg"))
}

/// Width and height of the fixture image.
pub const WIDTH: usize = 64;
pub const HEIGHT: usize = 48;

/// Poorly compressible values, the same for the same `seed`.
pub fn noise_f32(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = rng::Rng::new(seed);
    (0..n).map(|_| rng.below(1 << 20) as f32 / 7.0).collect()
}

/// An image file at `path` with three named channels and metadata:
///
/// * 0 `"depth"`, f32 from data, 6 chunks of 8 rows; chunk 2 rewritten (dead space);
/// * 1 `"id"`, u16, lazy with default 7, 3 chunks of 16 rows: chunk 0 default, chunk 1
///   compressed, chunk 2 a fill of 3;
/// * 2 `"alpha"`, f16 from data, 4 chunks of 12 rows.
pub fn fixture_image(path: &Path) -> AnyImage {
    let image = AnyImage::create(path, WIDTH, HEIGHT).unwrap();
    let settings = Settings::default();
    let depth = image
        .add_channel(
            &noise_f32(1, WIDTH * HEIGHT),
            Some("depth"),
            settings.chunk_size(WIDTH * 8 * 4),
        )
        .unwrap();
    let id = image
        .add_lazy_channel(7u16, Some("id"), settings.chunk_size(WIDTH * 16 * 2))
        .unwrap();
    id.set_chunk(1, &(0..WIDTH as u16 * 16).collect::<Vec<_>>())
        .unwrap();
    id.set_chunk(2, &[3; WIDTH * 16]).unwrap();
    let alpha: Vec<f16> = (0..WIDTH * HEIGHT)
        .map(|i| f16::from_f32((i % 97) as f32 / 4.0))
        .collect();
    image
        .add_channel(&alpha, Some("alpha"), settings.chunk_size(WIDTH * 12 * 2))
        .unwrap();
    depth.set_chunk(2, &noise_f32(2, WIDTH * 8)).unwrap();
    image
        .set_metadata(json!({"camera": "left", "exposure": 0.5}))
        .unwrap();
    image
}

/// A temporary directory holding the fixture image as `image.cimg`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.cimg");
        drop(fixture_image(&path));
        Fixture { dir, path }
    }

    /// The image, opened read-only.
    pub fn image(&self) -> AnyImage {
        AnyImage::open_read_only(&self.path).unwrap()
    }

    /// A path in the fixture's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Run `cimg` with `args` and then `file`; its output.
pub fn run(args: &[&str], file: &Path) -> Output {
    cimg().args(args).arg(file).output().unwrap()
}

/// Standard output of a finished `cimg` run, parsed as JSON.
pub fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Standard error of a run as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output of a run as text.
pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Check that `stderr` is one error line of `cimg` naming `path`, not a panic or a debug
/// dump.
pub fn assert_one_error_line(stderr: &str, path: &Path) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(
        lines[0].starts_with(&format!("cimg: {}: ", path.display())),
        "stderr: {stderr}"
    );
    for sign in ["panicked", "RUST_BACKTRACE", "Error {", "Some("] {
        assert!(!stderr.contains(sign), "stderr: {stderr}");
    }
}

/// The names in `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A pipe whose buffer is full: a child given its writing end as stderr blocks on its
/// first write to stderr until the reading end is drained.
pub fn full_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    let (reader, mut writer) = std::io::pipe().unwrap();
    rustix::fs::fcntl_setfl(&writer, OFlags::NONBLOCK).unwrap();
    for size in [4096, 1] {
        let filler = vec![b'.'; size];
        loop {
            match writer.write(&filler) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the pipe: {e}"),
            }
        }
    }
    // The flag belongs to the open pipe, which the child shares: it must block.
    rustix::fs::fcntl_setfl(&writer, OFlags::empty()).unwrap();
    (reader, writer)
}

/// Wait until `path` exists, failing if `child` ends first.
pub fn wait_for(path: &Path, child: &mut Child) {
    wait_until(child, &path.display().to_string(), || path.exists());
}

/// Wait until a file whose name starts with `prefix` is in `dir`, failing if `child` ends
/// first.
pub fn wait_for_prefix(dir: &Path, prefix: &str, child: &mut Child) {
    let what = format!("{}/{prefix}*", dir.display());
    wait_until(child, &what, || {
        entries(dir).iter().any(|name| name.starts_with(prefix))
    });
}

/// Wait until `appeared` holds, failing (naming `what`) if `child` ends first.
fn wait_until(child: &mut Child, what: &str, appeared: impl Fn() -> bool) {
    while !appeared() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("cimg ended ({status}) before {what} appeared");
        }
        std::thread::yield_now();
    }
}

/// Send SIGINT to `child` (a `cimg` run whose stderr is `stderr`), wait for it and check that
/// it reported the interruption of `path` as its last line and exited with 130; returns its
/// output.
pub fn interrupt(child: Child, mut stderr: std::io::PipeReader, path: &Path) -> Output {
    use std::io::Read;
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let mut shown = Vec::new();
    stderr.read_to_end(&mut shown).unwrap();
    let output = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&shown);
    let shown = shown.trim_start_matches('.');
    assert_eq!(output.status.code(), Some(130), "stderr: {shown}");
    assert!(
        shown.ends_with(&format!(
            "cimg: {}: interrupted; the file is unchanged\n",
            path.display()
        )),
        "stderr: {shown}"
    );
    output
}
