//! Child processes for multi-process tests: a child is this test binary run again on one
//! test (`--exact NAME --nocapture`), with [`CHILD_ENV`] set to that test's name and
//! [`PATH_ENV`] to the file it works on; without them the child test returns at once (see
//! [`child_role`]). Children talk to the parent through lines `@cimg <word> <values>` on
//! stdout (the [`report!`] macro; a pipe, so lines printed before a kill are still read)
//! and take commands on stdin ([`command`]).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Environment variable naming the child role; unset in the parent.
pub const CHILD_ENV: &str = "CIMG_CHILD";
/// Environment variable with the file the child works on.
pub const PATH_ENV: &str = "CIMG_PATH";
/// Marker of protocol lines on a child's stdout (the test harness prints other lines).
pub const MARK: &str = "@cimg ";
/// How long the parent waits for any one message before failing the test.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// In a child process: print a protocol line for the parent.
macro_rules! report {
    ($($arg:tt)*) => {
        println!("{}{}", $crate::common::child::MARK, format_args!($($arg)*))
    };
}

/// The command line arguments that run only the test `name` of this binary, its output
/// not captured.
fn test_args(name: &str) -> [&str; 4] {
    ["--exact", name, "--nocapture", "--test-threads=1"]
}

/// The command that runs this test binary on the child test `name`, working on `path`.
pub fn child_command(name: &str, path: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(test_args(name))
        .env(CHILD_ENV, name)
        .env(PATH_ENV, path);
    command
}

/// The same, run through `sh -c "<prefix> && exec …"`: for a shell built-in that limits
/// the child, such as `ulimit -v <KiB>`.
pub fn child_command_in_shell(prefix: &str, name: &str, path: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{prefix} && exec \"$0\" \"$@\""))
        .arg(std::env::current_exe().expect("current_exe"))
        .args(test_args(name))
        .env(CHILD_ENV, name)
        .env(PATH_ENV, path);
    command
}

/// The protocol line in one line of a child's stdout, without the marker.
pub fn protocol_line(line: &str) -> Option<&str> {
    // `--nocapture` output may share a line with the harness's "test NAME ... ".
    line.find(MARK).map(|at| &line[at + MARK.len()..])
}

/// A running child process and the protocol lines it printed. Dropping it kills the
/// process if it still runs (a failing parent leaves no child behind).
pub struct Child {
    pub name: &'static str,
    pub process: std::process::Child,
    pub lines: Receiver<String>,
    stdin: Option<ChildStdin>,
}

/// Start this test binary on the child test `name`, working on `path`, with extra
/// environment variables.
pub fn spawn(name: &'static str, path: &Path, env: &[(&str, String)]) -> Child {
    let mut command = child_command(name, path);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut process = command.spawn().expect("spawn child test process");
    let stdout = process.stdout.take().expect("child stdout");
    let stdin = process.stdin.take();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(message) = protocol_line(&line)
                && tx.send(message.to_string()).is_err()
            {
                break;
            }
        }
    });
    Child {
        name,
        process,
        lines,
        stdin,
    }
}

impl Child {
    /// The next protocol line, within `timeout`.
    pub fn next_line(&self, timeout: Duration) -> String {
        self.lines.recv_timeout(timeout).unwrap_or_else(|e| {
            panic!(
                "{}: no line from the child ({e}); see its panic message above",
                self.name
            )
        })
    }

    /// The next protocol line, which must start with `word`; returns the rest.
    pub fn expect_within(&self, word: &str, timeout: Duration) -> String {
        let line = self.next_line(timeout);
        match line.strip_prefix(word) {
            Some(rest) => rest.trim().to_string(),
            None => panic!("{}: expected `{word} ...`, got `{line}`", self.name),
        }
    }

    /// The next protocol line, which must start with `word`, within [`TIMEOUT`].
    pub fn expect(&self, word: &str) -> String {
        self.expect_within(word, TIMEOUT)
    }

    /// Send one command line to the child's stdin.
    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("child stdin is open");
        writeln!(stdin, "{command}").expect("write to child stdin");
        stdin.flush().expect("flush child stdin");
    }

    /// Wait for the child to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_wait().expect("wait for child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: child did not exit within {timeout:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Close stdin and wait for a successful exit; returns the protocol lines not
    /// consumed yet.
    pub fn finish(&mut self) -> Vec<String> {
        drop(self.stdin.take());
        let status = self.wait(TIMEOUT);
        assert!(status.success(), "{}: child failed: {status}", self.name);
        self.lines.iter().collect()
    }

    /// SIGKILL the child, wait for it, and return every protocol line it printed that was
    /// not consumed yet (they stay in the pipe after its death).
    pub fn kill_and_drain(&mut self) -> (ExitStatus, Vec<String>) {
        self.process.kill().expect("SIGKILL the child");
        let status = self.wait(TIMEOUT);
        // The reader thread ends at end of file, i.e. once the child is gone.
        (status, self.lines.iter().collect())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// In a child process: the file to work on, if this process runs child test `name`.
pub fn child_role(name: &str) -> Option<PathBuf> {
    if std::env::var(CHILD_ENV).ok()? != name {
        return None;
    }
    Some(
        std::env::var_os(PATH_ENV)
            .unwrap_or_else(|| panic!("{PATH_ENV} is set"))
            .into(),
    )
}

/// In a child process: wait for the parent's next command (empty when stdin is closed).
pub fn command() -> String {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("read stdin");
    line.trim().to_string()
}

/// In a child process: the number in environment variable `key`.
pub fn env_u64(key: &str) -> u64 {
    std::env::var(key)
        .unwrap_or_else(|_| panic!("{key} is set"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} is a number"))
}
