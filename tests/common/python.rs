//! A Python interpreter with the packages a test needs: `$<override_var>` if set; else the
//! project's virtual environment when it exists and has the packages; else a virtual
//! environment the test makes once in the target directory (`python3 -m venv`, then `pip
//! install`), guarded by a file lock so that parallel tests and test processes build it
//! once. Without `python3` (with its `venv` module) or without access to the Python package
//! index the test fails with a message saying what to install; it never skips.
//!
//! Included by `#[path]` from the tests that run Python, of this crate and of `cli/` (it
//! needs the target's temporary directory, which only integration tests have), not through
//! `common/mod.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a test's interpreter comes from and what it must have.
pub struct PythonEnv {
    /// What the interpreter is for, in messages.
    pub purpose: &'static str,
    /// The environment variable naming an interpreter to use instead.
    pub override_var: &'static str,
    /// The project's virtual environment, relative to the repository root.
    pub project_venv: &'static str,
    /// The name of the environment made in the target directory otherwise.
    pub own_venv: &'static str,
    /// The modules the interpreter must import.
    pub modules: &'static [&'static str],
    /// The packages that provide them, as pip installs them.
    pub packages: &'static [&'static str],
}

/// The environment with `blosc2` and `numpy` that tests use to check this crate's output
/// independently (the reference reader of the format, .npy files written by numpy).
pub const REFERENCE: PythonEnv = PythonEnv {
    purpose: "format/reference_reader.py and numpy checks",
    override_var: "CIMG_PYTHON",
    project_venv: ".venv",
    own_venv: "reference-venv",
    modules: &["blosc2", "numpy"],
    packages: &["blosc2", "numpy"],
};

/// The [`REFERENCE`] interpreter, found or made once per test process.
#[allow(dead_code)] // not every including test target uses it
pub fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| REFERENCE.python()).clone()
}

/// The repository: the first directory above the testing crate's manifest that holds the
/// format specification (the crate itself, or the workspace root for `cli/`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("format/SPEC.md").is_file())
        .expect("the repository holding format/SPEC.md")
        .to_path_buf()
}

/// The interpreter of the virtual environment in `venv`.
fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Run `command` (described by `what`) to completion; on failure panic with its output
/// and `help`.
pub fn run_setup(mut command: Command, what: &str, help: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start it ({e}); {help}"));
    assert!(
        out.status.success(),
        "{what} failed ({}); {help}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PythonEnv {
    /// Whether `python` starts and imports every module.
    fn works(&self, python: &Path) -> bool {
        Command::new(python)
            .arg("-c")
            .arg(format!("import {}", self.modules.join(", ")))
            .output()
            .is_ok_and(|out| out.status.success())
    }

    fn help(&self) -> String {
        format!(
            "or set {} to an interpreter that has {}",
            self.override_var,
            self.packages.join(", ")
        )
    }

    /// The environment kept in the target directory, made on first use: a file lock
    /// serialises the processes that may race to make it, and a marker file, written
    /// last, says that it is complete.
    fn own_venv(&self) -> PathBuf {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let venv = tmp.join(self.own_venv);
        let python = venv_python(&venv);
        let ready = venv.join("ready");
        fs::create_dir_all(tmp).expect("create the target's temporary directory");
        let lock = fs::File::create(tmp.join(format!("{}.lock", self.own_venv)))
            .expect("create the lock file");
        lock.lock().expect("lock the Python environment");
        if !ready.exists() {
            // A run that died half-way leaves an incomplete environment: start again.
            let _ = fs::remove_dir_all(&venv);
            let mut make = Command::new("python3");
            make.arg("-m").arg("venv").arg(&venv);
            run_setup(
                make,
                &format!("`python3 -m venv` (for {})", self.purpose),
                &format!(
                    "install Python 3 with its venv module (Debian/Ubuntu: `apt-get install \
                     python3 python3-venv`), {}",
                    self.help()
                ),
            );
            let mut install = Command::new(&python);
            install
                .args(["-m", "pip", "install", "--quiet"])
                .args(self.packages);
            run_setup(
                install,
                &format!(
                    "`pip install {}` into {}",
                    self.packages.join(" "),
                    venv.display()
                ),
                &format!(
                    "pip needs access to the Python package index; {}",
                    self.help()
                ),
            );
            fs::write(&ready, b"").expect("mark the Python environment ready");
        }
        lock.unlock().expect("unlock the Python environment");
        assert!(
            self.works(&python),
            "{} cannot import {}: delete {} to have it made again",
            python.display(),
            self.modules.join(", "),
            venv.display()
        );
        python
    }

    /// The interpreter (see the module documentation).
    pub fn python(&self) -> PathBuf {
        if let Some(p) = std::env::var_os(self.override_var) {
            let p = PathBuf::from(p);
            assert!(
                self.works(&p),
                "{}={} does not run or cannot import {}",
                self.override_var,
                p.display(),
                self.modules.join(", ")
            );
            return p;
        }
        let project = venv_python(&repo_root().join(self.project_venv));
        if self.works(&project) {
            return project;
        }
        self.own_venv()
    }
}
