//! `cimg` and the terminal: a progress bar when stderr is a terminal (a pseudo-terminal
//! here) for every long operation — verify, compact, import, export, preview — plain lines
//! when it is not, nothing with `--quiet`; and an interrupt (SIGINT) during `compact`
//! leaving the file untouched and no temporary file behind.

mod common;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{entries, full_pipe, noise_f32, wait_for};
use compressed_image::{AnyImage, Settings, WriteOptions};
use rustix::fs::OFlags;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

/// A file of 128 chunks of 64 KiB of noise, half of them written twice (dead space).
fn large_file(dir: &Path) -> PathBuf {
    let path = dir.join("large.cimg");
    let (width, rows) = (1024, 16);
    let image = AnyImage::create(&path, width, rows * 128).unwrap();
    let settings = Settings::default().level(1).chunk_size(width * rows * 4);
    let channel = image
        .add_channel(&noise_f32(1, width * rows * 128), Some("z"), settings)
        .unwrap();
    for i in (0..128).step_by(2) {
        channel
            .set_chunk(i, &noise_f32(i as u64 + 2, width * rows))
            .unwrap();
    }
    path
}

/// A new pseudo-terminal: its controller side, and its terminal side to give a child.
fn pseudo_terminal() -> (File, File) {
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap();
    let terminal = File::options()
        .read(true)
        .write(true)
        .custom_flags(OFlags::NOCTTY.bits() as i32)
        .open(OsStr::from_bytes(name.as_bytes()))
        .unwrap();
    let size = rustix::termios::Winsize {
        ws_row: 24,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&terminal, size).unwrap();
    (File::from(controller), terminal)
}

/// Everything written to the terminal until its last writer closed it (Linux reports
/// that as an I/O error on the controller side).
fn read_terminal(mut controller: File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match controller.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out
}

/// Run `cimg args` with stderr on a pseudo-terminal; its exit code, stdout and what the
/// terminal showed.
fn run_on_terminal(args: &[&OsStr]) -> (Option<i32>, String, String) {
    let (controller, terminal) = pseudo_terminal();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cimg"));
    command
        .args(args)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(terminal);
    let child = command.spawn().unwrap();
    drop(command); // closes this process's copy of the terminal side
    let reader = std::thread::spawn(move || read_terminal(controller));
    let output = child.wait_with_output().unwrap();
    let shown = reader.join().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&shown).into_owned(),
    )
}

/// One run of a long operation: the command and its files, the file its progress is
/// labelled with and the file its result line starts with.
struct Run {
    command: &'static str,
    files: Vec<PathBuf>,
    labelled: PathBuf,
    result: PathBuf,
}

impl Run {
    fn args(&self) -> Vec<&OsStr> {
        let mut args = vec![self.command.as_ref()];
        args.extend(self.files.iter().map(|f| f.as_os_str()));
        args
    }

    /// The progress label, e.g. `compact /tmp/x/large.cimg`.
    fn label(&self) -> String {
        format!("{} {}", self.command, self.labelled.display())
    }
}

/// Every operation with progress, on [`large_file`] in `dir` (and an OpenEXR export of
/// it, for the import), in an order that lets each run after the one before.
fn long_operations(dir: &Path) -> Vec<Run> {
    let path = large_file(dir);
    let exr = dir.join("large.exr");
    AnyImage::open_read_only(&path)
        .unwrap()
        .write(&exr, &WriteOptions::default())
        .unwrap();
    let on_itself = |command| Run {
        command,
        files: vec![path.clone()],
        labelled: path.clone(),
        result: path.clone(),
    };
    let writing = |command, input: &Path, out: &str, labelled: &Path| Run {
        command,
        files: vec![input.to_path_buf(), dir.join(out)],
        labelled: labelled.to_path_buf(),
        result: dir.join(out),
    };
    vec![
        on_itself("verify"),
        on_itself("compact"),
        writing("export", &path, "out.exr", &dir.join("out.exr")),
        writing("preview", &path, "thumb.png", &dir.join("thumb.png")),
        writing("import", &exr, "imported.cimg", &exr),
    ]
}

#[test]
fn long_operations_draw_a_progress_bar_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    for run in long_operations(dir.path()) {
        let command = run.command;
        let (code, stdout, shown) = run_on_terminal(&run.args());
        assert_eq!(code, Some(0), "{command}: {shown}");
        assert!(shown.contains(&run.label()), "{command}: {shown:?}");
        // The bar, its throughput and ETA, redrawn in place with terminal escapes.
        for part in ["[===", "/s", "ETA", "\x1b["] {
            assert!(shown.contains(part), "{command}: no {part:?} in {shown:?}");
        }
        assert!(!shown.contains("to process"), "no plain lines: {shown:?}");
        // The results go to stdout, not to the terminal.
        assert!(
            stdout.starts_with(&format!("{}: ", run.result.display())),
            "{command}: {stdout}"
        );
    }
}

#[test]
fn quiet_draws_nothing_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = large_file(dir.path());
    let (code, stdout, shown) =
        run_on_terminal(&["--quiet".as_ref(), "verify".as_ref(), path.as_os_str()]);
    assert_eq!(code, Some(0));
    assert_eq!(shown, "");
    assert!(stdout.contains(": ok"), "{stdout}");
}

#[test]
fn without_a_terminal_progress_is_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    for run in long_operations(dir.path()) {
        let output = common::cimg().args(run.args()).output().unwrap();
        assert!(output.status.success(), "{}", common::stderr_of(&output));
        let stderr = common::stderr_of(&output);
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(lines.len() >= 2, "{stderr}");
        assert!(
            lines[0].starts_with(&format!("{}: ", run.label()))
                && lines[0].ends_with(" to process"),
            "{stderr}"
        );
        assert!(lines.last().unwrap().ends_with("/s)"), "{stderr}");
        for sign in ["\x1b", "\r", "ETA", "[="] {
            assert!(!stderr.contains(sign), "{sign:?} in {stderr:?}");
        }
    }
}

#[test]
fn an_interrupt_during_compact_leaves_the_file_untouched_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = large_file(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let lock = dir.path().join("large.cimg.lock");
    std::fs::remove_file(&lock).unwrap();
    let listing = entries(dir.path());

    // The child blocks on its first line of progress (written when the compaction starts,
    // before anything is copied) until the pipe is drained, so the interrupt sent while it
    // waits is certain to arrive before the copy can end. It takes the writer lock (the
    // lock file appears) after installing its interrupt handler.
    let (stderr, writer) = full_pipe();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cimg"));
    command
        .arg("compact")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(writer);
    let mut child = command.spawn().unwrap();
    drop(command); // closes this process's writing end
    wait_for(&lock, &mut child);
    let output = common::interrupt(child, stderr, &path);
    assert!(output.stdout.is_empty());
    assert!(std::fs::read(&path).unwrap() == bytes, "the file changed");
    let mut after = listing.clone();
    after.push("large.cimg.lock".into());
    after.sort();
    assert_eq!(entries(dir.path()), after, "a temporary file was left");
    // The file still opens, with its dead space.
    assert!(
        AnyImage::open_read_only(&path)
            .unwrap()
            .stats()
            .unwrap()
            .dead_bytes
            > 0
    );
}
