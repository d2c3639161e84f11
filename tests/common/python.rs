//! The Python interpreter with `blosc2` and `numpy` that tests use to check this crate's
//! output independently (the reference reader of the format, .npy files written by numpy).
//!
//! It is `$CIMG_PYTHON` if set; else `<repo>/.venv/bin/python` when that environment exists
//! and has both packages (the project's test script creates it); else a virtual environment
//! made once in the target directory (`python3 -m venv`, then `pip install blosc2 numpy`),
//! guarded by a file lock so that parallel tests and test processes build it once. Without
//! `python3` (with its `venv` module) or without access to the Python package index, the
//! caller fails with a message saying what to install; it never skips.
//!
//! Included by `#[path]` from the test targets that need it (of this crate and of `cli/`),
//! not from the shared kit's `mod.rs`: it reads variables Cargo sets for tests only.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Python packages the tests import.
const PACKAGES: [&str; 2] = ["blosc2", "numpy"];

/// The repository: the first directory above the testing crate's manifest that holds
/// the format specification.
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

/// Whether `python` starts and imports every package of [`PACKAGES`].
fn has_packages(python: &Path) -> bool {
    Command::new(python)
        .arg("-c")
        .arg(format!("import {}", PACKAGES.join(", ")))
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Run `command` (described by `what`) to completion; on failure panic with its output
/// and `help`.
fn run_setup(mut command: Command, what: &str, help: &str) {
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

/// The virtual environment kept in the target directory, made on first use: a file lock
/// serialises the processes that may race to make it, and a marker file, written last,
/// says that it is complete.
fn own_venv() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join("reference-venv");
    let python = venv_python(&venv);
    let ready = venv.join("ready");
    fs::create_dir_all(tmp).expect("create the target's temporary directory");
    let lock = fs::File::create(tmp.join("reference-venv.lock")).expect("create the lock file");
    lock.lock().expect("lock the reference environment");
    if !ready.exists() {
        // A run that died half-way leaves an incomplete environment: start again.
        let _ = fs::remove_dir_all(&venv);
        let mut make = Command::new("python3");
        make.arg("-m").arg("venv").arg(&venv);
        run_setup(
            make,
            "`python3 -m venv` (for the Python cross-checks)",
            "install Python 3 with its venv module (Debian/Ubuntu: `apt-get install python3 \
             python3-venv`), or set CIMG_PYTHON to an interpreter that has blosc2 and numpy",
        );
        let mut install = Command::new(&python);
        install
            .args(["-m", "pip", "install", "--quiet"])
            .args(PACKAGES);
        run_setup(
            install,
            &format!(
                "`pip install {}` into {}",
                PACKAGES.join(" "),
                venv.display()
            ),
            "pip needs access to the Python package index; or set CIMG_PYTHON to an \
             interpreter that has blosc2 and numpy",
        );
        fs::write(&ready, b"").expect("mark the reference environment ready");
    }
    lock.unlock().expect("unlock the reference environment");
    assert!(
        has_packages(&python),
        "{} cannot import {}: delete {} to have it made again",
        python.display(),
        PACKAGES.join(" and "),
        venv.display()
    );
    python
}

/// The interpreter (see the module documentation), found or made once per test process.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("CIMG_PYTHON") {
                let p = PathBuf::from(p);
                assert!(
                    has_packages(&p),
                    "CIMG_PYTHON={} does not run or cannot import {}",
                    p.display(),
                    PACKAGES.join(" and ")
                );
                return p;
            }
            let project = venv_python(&repo_root().join(".venv"));
            if has_packages(&project) {
                return project;
            }
            own_venv()
        })
        .clone()
}
