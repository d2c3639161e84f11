//! Crash consistency: power loss and I/O errors at every point of the commit protocol.
//!
//! Guards SPEC §9 (an open picks the newest commit that verifies and never launders a torn
//! slot), §10 (the commit protocol, durability and its crash-analysis table) and §12
//! (compaction's copy, fsync, rename) on the production code path: every file mutation
//! goes through the `Backend` seam of `open_with_backend`, which these tests wrap, and
//! every crash image is opened through the public API.
//!
//! * **Power-loss sweep.** A recording backend logs every write, `set_len` and fsync of
//!   scripted workloads (and seeded random ones), beside a reference model of the contents
//!   after every operation. For every prefix of the log it builds crash images: only the
//!   synced part; every write (a process crash); random subsets of the unsynced writes;
//!   the same with one write torn at 512 B or 4 KiB granularity; the unsynced writes
//!   reordered. Each image must open, read bit-exactly as one commit of the model that is
//!   no older than the last completed sync and no newer than the last commit begun, pass
//!   `verify()`, and (a subset) recover read-write and accept new commits. Compaction's
//!   copy goes through a second backend: the old file must be untouched at each of its
//!   calls, and the compacted file must open with the same contents once renamed. The
//!   same sweep runs over restarts after a process crash (recovery fsync, marker, a new
//!   commit), and targeted images cover a slot whose file growth was lost (`committed_end`
//!   past the end of the file) and a torn slot that recovery must not launder.
//! * **I/O error countdown.** For every k, the k-th write, `set_len` or fsync fails (EIO,
//!   ENOSPC, or a short write then ENOSPC), once or from then on. The error surfaces as
//!   `Error::Io` and poisons the handle — except in compaction's copy, which leaves the old
//!   file untouched and the handle usable — and a reopen shows a model commit that verifies.
//!   Faults are also injected into the recovery of a crashed file (its first fsync or its
//!   marker write): the open fails and the file still opens at the same commit.
//!
//! `cargo test --release --test crash_consistency -- --nocapture` prints the figures;
//! `CIMG_LONG=1` runs many more images, seeds and longer random workloads,
//! `CIMG_SEED=<n>` changes the seed, and `CIMG_SCRATCH=<dir>` the scratch directory
//! (default: tmpfs at `/dev/shm` if present, since real fsyncs only cost time here).
//!
//! Here: the configuration and scratch space; `workload` (workloads and the model),
//! `target` (the file under test), `recording` (the recording backend), `power_loss` and
//! `io_errors` (the two parts above). The fault backend is the shared one
//! (`tests/common/fault.rs`).

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::long_run;
use common::rng::Rng;

#[path = "../common/mod.rs"]
mod common;

/// How much each test does: the CI run, or the long run (`CIMG_LONG=1`).
struct Config {
    long: bool,
    seed: u64,
    /// Random subsets of the unsynced writes per crash point.
    subsets: usize,
    /// Torn variants per crash point and granularity (each a prefix and a scattered tear).
    torn: usize,
    /// Reordered variants per crash point.
    shuffles: usize,
    /// Every n-th distinct image is also opened read-write (recovery).
    rw_every: usize,
    /// Every n-th distinct image also gets a commit after recovery.
    write_every: usize,
    /// Random workloads per kind, and their length.
    random_workloads: usize,
    random_steps: usize,
    /// Crash images the open-fault test uses per workload.
    open_fault_images: usize,
    /// Process crashes per workload after which a restart is swept for power loss.
    restarts: usize,
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let long = long_run();
        let seed = std::env::var("CIMG_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5EED_C1A6);
        if long {
            Config {
                long,
                seed,
                subsets: 16,
                torn: 6,
                shuffles: 12,
                rw_every: 2,
                write_every: 6,
                random_workloads: 10,
                random_steps: 80,
                open_fault_images: 30,
                restarts: 30,
            }
        } else {
            Config {
                long,
                seed,
                subsets: 6,
                torn: 3,
                shuffles: 4,
                rw_every: 3,
                write_every: 9,
                random_workloads: 2,
                random_steps: 30,
                open_fault_images: 8,
                restarts: 6,
            }
        }
    })
}

/// The sweeps' generator: the shared one, its seed salted so that every figure of earlier
/// runs stays reproducible.
fn seeded_rng(seed: u64) -> Rng {
    Rng::new(seed ^ 0xD1B5_4A32_D192_ED03)
}

/// A scratch directory: `CIMG_SCRATCH` if set, else tmpfs when there is one (power loss
/// is simulated, so real fsyncs only cost time), else the system temporary directory.
fn scratch() -> tempfile::TempDir {
    let chosen = std::env::var_os("CIMG_SCRATCH").map(PathBuf::from);
    let shm = Path::new("/dev/shm");
    let dir = chosen.or_else(|| shm.is_dir().then(|| shm.to_path_buf()));
    if let Some(dir) = dir
        && let Ok(d) = tempfile::Builder::new()
            .prefix("cimg-crash-")
            .tempdir_in(&dir)
    {
        return d;
    }
    tempfile::tempdir().expect("temporary directory")
}

/// Replace the file at `path` (a new inode, so no mapping of an earlier image is affected).
fn write_image(path: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    let _ = fs::remove_file(path);
    fs::write(path, bytes).map_err(|e| format!("writing the crash image: {e}"))
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Failures collected over a whole sweep, so that one run reports all of them.
#[derive(Default)]
struct Failures {
    count: usize,
    shown: Vec<String>,
}

impl Failures {
    fn push(&mut self, message: String) {
        self.count += 1;
        if self.shown.len() < 40 {
            self.shown.push(message);
        }
    }
    fn assert_none(&self, what: &str) {
        assert!(
            self.count == 0,
            "{what}: {} failures; the first ones:\n{}",
            self.count,
            self.shown.join("\n")
        );
    }
}

mod io_errors;
mod power_loss;
mod recording;
mod target;
mod workload;
