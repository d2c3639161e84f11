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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use compressed_image::{AnyChannel, Backend, Channel, Durability, Error, Image, Result, Settings};
use serde_json::{Value, json};

mod common;

use common::fault::{self, EIO, ENOSPC, Failure, Fault, Op, Torn};
use common::format::{SLOT_LEN, SLOT_PAGE, SlotInfo, decode_slot, le64};
use common::rng::Rng;
use common::{long_run, panic_message};

// ---------------------------------------------------------------------------------------
// Configuration, randomness, scratch space
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Workloads and the reference model
// ---------------------------------------------------------------------------------------

const NEG_ZERO: u32 = 0x8000_0000;
const QNAN_PAYLOAD: u32 = 0x7FC0_0042;
const SNAN_PAYLOAD: u32 = 0x7FA0_1234;
const ONE: u32 = 0x3F80_0000;
const CONSTS: [u32; 6] = [0, NEG_ZERO, QNAN_PAYLOAD, SNAN_PAYLOAD, ONE, 0xFF80_0000];

/// Contents of a chunk (or a whole channel), as f32 bits.
#[derive(Debug, Clone, Copy)]
enum Data {
    /// Incompressible, never constant.
    Noise(u64),
    /// Compressible, never constant.
    Ramp(u64),
    /// Every element has these bits: stored as a fill entry.
    Const(u32),
}

#[derive(Debug, Clone)]
enum Step {
    Set {
        ch: usize,
        chunk: usize,
        data: Data,
    },
    Batch {
        ch: usize,
        writes: Vec<(usize, Data)>,
        commit: bool,
    },
    Sync,
    Immediate(bool),
    Compact,
    AddChannel {
        seed: u64,
        name: Option<String>,
    },
    AddLazy {
        bits: u32,
        name: Option<String>,
    },
    Remove(usize),
    Names(Vec<String>),
    Meta(Value),
}

impl Step {
    /// Whether a successful call writes a commit.
    fn commits(&self) -> bool {
        match self {
            Step::Batch { commit, .. } => *commit,
            Step::Sync | Step::Immediate(_) | Step::Compact => false,
            _ => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A channel file, through `Channel<f32>`.
    Channel,
    /// An image file, through `Image<f32>`.
    Image,
}

#[derive(Clone)]
struct Workload {
    name: String,
    kind: Kind,
    width: usize,
    height: usize,
    rows: usize,
    /// Fill of a new channel file.
    fill: u32,
    /// Applied normally when the base file is made.
    base: Vec<Step>,
    /// Applied through the wrapped backend.
    steps: Vec<Step>,
}

impl Workload {
    fn chunk_bytes(&self) -> usize {
        self.width * self.rows * 4
    }
    fn n_chunks(&self) -> usize {
        self.height.div_ceil(self.rows)
    }
    fn range(&self, i: usize) -> Range<usize> {
        let cb = self.chunk_bytes();
        i * cb..((i + 1) * cb).min(self.width * self.height * 4)
    }
    fn settings(&self) -> Settings {
        Settings::default().chunk_size(self.chunk_bytes())
    }
    fn bits(&self, d: Data, n: usize, salt: u64) -> Vec<u32> {
        match d {
            Data::Noise(seed) => {
                let mut r = seeded_rng(seed ^ salt.wrapping_mul(0x0100_0000_01B3));
                (0..n).map(|_| r.next() as u32).collect()
            }
            Data::Ramp(seed) => (0..n)
                .map(|i| ((i / 7) as f32 + seed as f32).to_bits())
                .collect(),
            Data::Const(bits) => vec![bits; n],
        }
    }
    /// Elements of chunk `i`.
    fn chunk(&self, d: Data, i: usize) -> Vec<f32> {
        let bits = self.bits(d, self.range(i).len() / 4, i as u64 + 1);
        bytemuck::cast_slice(&bits).to_vec()
    }
    /// Elements of a whole channel.
    fn channel(&self, seed: u64) -> Vec<f32> {
        let bits = self.bits(Data::Noise(seed), self.width * self.height, 0);
        bytemuck::cast_slice(&bits).to_vec()
    }
}

/// Everything a commit shows: channel bytes, names, metadata.
#[derive(Clone, PartialEq)]
struct State {
    channels: Vec<Vec<u8>>,
    names_present: bool,
    names: Vec<String>,
    meta: Value,
}

impl State {
    fn initial(w: &Workload) -> State {
        let channels = match w.kind {
            Kind::Channel => vec![bytemuck::cast_slice(&vec![w.fill; w.width * w.height]).to_vec()],
            Kind::Image => vec![],
        };
        State {
            names: vec![String::new(); channels.len()],
            channels,
            names_present: false,
            meta: Value::Null,
        }
    }

    fn shown_names(&self) -> Vec<String> {
        if self.names_present {
            self.names.clone()
        } else {
            Vec::new()
        }
    }

    fn matches(&self, o: &Observed) -> bool {
        self.channels == o.channels && self.shown_names() == o.names && self.meta == o.meta
    }

    /// The model after `step` (which must be valid for this state).
    fn after(&self, w: &Workload, step: &Step) -> State {
        let mut s = self.clone();
        let set = |s: &mut State, ch: usize, chunk: usize, d: Data| {
            let bytes: Vec<u8> = bytemuck::cast_slice(&w.chunk(d, chunk)).to_vec();
            s.channels[ch][w.range(chunk)].copy_from_slice(&bytes);
        };
        match step {
            Step::Set { ch, chunk, data } => set(&mut s, *ch, *chunk, *data),
            Step::Batch {
                ch,
                writes,
                commit: true,
            } => {
                for (chunk, data) in writes {
                    set(&mut s, *ch, *chunk, *data);
                }
            }
            Step::Batch { commit: false, .. } | Step::Sync | Step::Immediate(_) | Step::Compact => {
            }
            Step::AddChannel { seed, name } => {
                s.channels
                    .push(bytemuck::cast_slice(&w.channel(*seed)).to_vec());
                s.names_present |= name.is_some();
                s.names.push(name.clone().unwrap_or_default());
            }
            Step::AddLazy { bits, name } => {
                s.channels
                    .push(bytemuck::cast_slice(&vec![*bits; w.width * w.height]).to_vec());
                s.names_present |= name.is_some();
                s.names.push(name.clone().unwrap_or_default());
            }
            Step::Remove(i) => {
                s.channels.remove(*i);
                s.names.remove(*i);
            }
            Step::Names(names) => {
                s.names_present = true;
                s.names = names.clone();
            }
            Step::Meta(v) => s.meta = v.clone(),
        }
        s
    }
}

/// What a handle shows.
struct Observed {
    generation: u64,
    channels: Vec<Vec<u8>>,
    names: Vec<String>,
    meta: Value,
}

/// Where `o` differs from `s`, chunk by chunk.
fn diff(w: &Workload, s: &State, o: &Observed) -> String {
    let mut out = Vec::new();
    if s.channels.len() != o.channels.len() {
        out.push(format!(
            "{} channels, expected {}",
            o.channels.len(),
            s.channels.len()
        ));
    }
    for (ci, (a, b)) in s.channels.iter().zip(&o.channels).enumerate() {
        if a.len() != b.len() {
            out.push(format!(
                "channel {ci}: {} bytes, expected {}",
                b.len(),
                a.len()
            ));
            continue;
        }
        let bad: Vec<usize> = (0..w.n_chunks())
            .filter(|&i| a[w.range(i)] != b[w.range(i)])
            .collect();
        if !bad.is_empty() {
            out.push(format!("channel {ci}: chunks {bad:?} differ"));
        }
    }
    if s.shown_names() != o.names {
        out.push(format!(
            "names {:?}, expected {:?}",
            o.names,
            s.shown_names()
        ));
    }
    if s.meta != o.meta {
        out.push(format!("metadata {}, expected {}", o.meta, s.meta));
    }
    out.join("; ")
}

/// The channel workload: blobs, fills (NaN payloads, -0.0), batches (one discarded),
/// syncs, `Durability::Immediate`, growth of the preallocated file, compaction, and
/// commits on the compacted file.
fn scripted_channel() -> Workload {
    use Data::*;
    use Step::*;
    let set = |chunk, data| Set { ch: 0, chunk, data };
    let batch = |writes: Vec<(usize, Data)>, commit| Batch {
        ch: 0,
        writes,
        commit,
    };
    Workload {
        name: "channel".into(),
        kind: Kind::Channel,
        width: 64,
        height: 250, // 8 chunks of 32 rows (8 KiB), the last of 26 rows
        rows: 32,
        fill: QNAN_PAYLOAD,
        base: vec![set(5, Noise(1)), set(6, Const(ONE))],
        steps: vec![
            set(5, Noise(2)),
            set(2, Const(NEG_ZERO)),
            set(3, Const(SNAN_PAYLOAD)),
            batch(
                vec![
                    (4, Noise(3)),
                    (6, Ramp(4)),
                    (0, Const(QNAN_PAYLOAD)),
                    (1, Noise(5)),
                ],
                true,
            ),
            Sync,
            set(1, Noise(6)),
            batch(vec![(2, Noise(7)), (3, Noise(8))], false),
            set(7, Noise(9)),
            set(2, Ramp(10)),
            Sync,
            Immediate(true),
            set(0, Noise(11)),
            set(6, Const(0)),
            Immediate(false),
            batch((0..8).map(|i| (i, Noise(12 + i as u64))).collect(), true),
            set(3, Noise(21)),
            Compact,
            set(4, Noise(22)),
            set(5, Const(NEG_ZERO)),
            Sync,
            set(6, Noise(23)),
            batch(vec![(0, Ramp(24)), (7, Noise(25))], true),
        ],
    }
}

/// The image workload: channels added (blob and lazy), removed, renamed, metadata set and
/// cleared, chunk writes and a batch through channel handles, syncs, `Immediate`,
/// compaction and commits after it.
fn scripted_image() -> Workload {
    use Data::*;
    use Step::*;
    let name = |s: &str| Some(s.to_string());
    let names = |v: &[&str]| Names(v.iter().map(|s| s.to_string()).collect());
    Workload {
        name: "image".into(),
        kind: Kind::Image,
        width: 64,
        height: 96, // 3 chunks of 32 rows (8 KiB)
        rows: 32,
        fill: 0,
        base: vec![
            AddChannel {
                seed: 100,
                name: name("r"),
            },
            AddLazy {
                bits: ONE,
                name: name("g"),
            },
            Meta(json!({"origin": "crash_consistency", "n": [1, 2, 3]})),
        ],
        steps: vec![
            AddChannel {
                seed: 101,
                name: name("b"),
            },
            Meta(json!({"exposure": 1.5, "tags": ["a", "b"]})),
            Sync,
            names(&["x", "y", "z"]),
            Remove(1),
            Set {
                ch: 0,
                chunk: 2,
                data: Noise(102),
            },
            AddLazy {
                bits: NEG_ZERO,
                name: None,
            },
            Meta(Value::Null),
            Sync,
            Batch {
                ch: 1,
                writes: vec![(0, Noise(103)), (1, Const(QNAN_PAYLOAD))],
                commit: true,
            },
            Immediate(true),
            AddChannel {
                seed: 104,
                name: name("n"),
            },
            Immediate(false),
            Compact,
            Meta(json!({"after": "compaction"})),
            Remove(0),
            Set {
                ch: 0,
                chunk: 1,
                data: Noise(105),
            },
            Sync,
            names(&["p", "q", ""]),
            AddChannel {
                seed: 106,
                name: name("last"),
            },
        ],
    }
}

fn random_data(rng: &mut Rng, n: u64) -> Data {
    match rng.below(6) {
        0..=2 => Data::Noise(n),
        3 => Data::Ramp(n),
        _ => Data::Const(CONSTS[rng.below(CONSTS.len())]),
    }
}

fn random_writes(rng: &mut Rng, w: &Workload, n: &mut u64, max: usize) -> Vec<(usize, Data)> {
    (0..1 + rng.below(max))
        .map(|_| {
            *n += 1;
            (rng.below(w.n_chunks()), random_data(rng, *n))
        })
        .collect()
}

fn random_step(rng: &mut Rng, w: &Workload, s: &State, immediate: &mut bool, n: &mut u64) -> Step {
    *n += 1;
    let channels = s.channels.len();
    let roll = rng.below(100);
    let set = |rng: &mut Rng, n: u64| Step::Set {
        ch: rng.below(channels),
        chunk: rng.below(w.n_chunks()),
        data: random_data(rng, n),
    };
    match w.kind {
        Kind::Channel => match roll {
            0..45 => set(rng, *n),
            45..60 => Step::Batch {
                ch: 0,
                writes: random_writes(rng, w, n, 4),
                commit: true,
            },
            60..65 => Step::Batch {
                ch: 0,
                writes: random_writes(rng, w, n, 3),
                commit: false,
            },
            65..78 => Step::Sync,
            78..85 => {
                *immediate = !*immediate;
                Step::Immediate(*immediate)
            }
            85..91 => Step::Compact,
            _ => set(rng, *n),
        },
        Kind::Image => {
            let name = |rng: &mut Rng, n: u64| match rng.below(4) {
                0 => None,
                1 => Some(String::new()),
                _ => Some(format!("c{n}")),
            };
            if channels == 0 {
                return if rng.chance(1, 2) {
                    Step::AddChannel {
                        seed: *n,
                        name: name(rng, *n),
                    }
                } else {
                    Step::AddLazy {
                        bits: CONSTS[rng.below(CONSTS.len())],
                        name: name(rng, *n),
                    }
                };
            }
            match roll {
                0..30 => set(rng, *n),
                30..40 => Step::Batch {
                    ch: rng.below(channels),
                    writes: random_writes(rng, w, n, 3),
                    commit: true,
                },
                40..43 => Step::Batch {
                    ch: rng.below(channels),
                    writes: random_writes(rng, w, n, 2),
                    commit: false,
                },
                43..53 => Step::Sync,
                53..57 => {
                    *immediate = !*immediate;
                    Step::Immediate(*immediate)
                }
                57..61 => Step::Compact,
                61..68 if channels < 4 => Step::AddChannel {
                    seed: *n,
                    name: name(rng, *n),
                },
                68..73 if channels < 4 => Step::AddLazy {
                    bits: CONSTS[rng.below(CONSTS.len())],
                    name: name(rng, *n),
                },
                73..79 => Step::Remove(rng.below(channels)),
                79..85 => Step::Names(
                    (0..channels)
                        .map(|j| {
                            if rng.chance(1, 5) {
                                String::new()
                            } else {
                                format!("n{j}-{n}")
                            }
                        })
                        .collect(),
                ),
                _ if rng.chance(1, 4) => Step::Meta(Value::Null),
                _ => Step::Meta(json!({"n": *n, "list": [*n, *n * 2], "s": format!("v{n}")})),
            }
        }
    }
}

fn random_workload(kind: Kind, seed: u64, steps: usize) -> Workload {
    let long = config().long;
    let mut rng = seeded_rng(seed);
    let (width, height, rows) = match (kind, long) {
        (Kind::Channel, false) => (64, 250, 32),
        (Kind::Channel, true) => (96, 400, 24),
        (Kind::Image, false) => (64, 96, 32),
        (Kind::Image, true) => (80, 120, 24),
    };
    let mut w = Workload {
        name: format!(
            "random-{}-{seed:x}",
            if kind == Kind::Channel {
                "channel"
            } else {
                "image"
            }
        ),
        kind,
        width,
        height,
        rows,
        fill: QNAN_PAYLOAD,
        base: vec![],
        steps: vec![],
    };
    w.base = match kind {
        Kind::Channel => vec![Step::Set {
            ch: 0,
            chunk: 1,
            data: Data::Noise(seed),
        }],
        Kind::Image => vec![
            Step::AddChannel {
                seed,
                name: Some("a".into()),
            },
            Step::AddLazy {
                bits: ONE,
                name: Some("b".into()),
            },
        ],
    };
    let mut s = State::initial(&w);
    for step in &w.base {
        s = s.after(&w, step);
    }
    let (mut immediate, mut n) = (false, seed.wrapping_mul(1000));
    for _ in 0..steps {
        let step = random_step(&mut rng, &w, &s, &mut immediate, &mut n);
        s = s.after(&w, &step);
        w.steps.push(step);
    }
    w
}

/// The scripted workload of `kind` and the configured number of random ones.
fn workloads(kind: Kind) -> Vec<Workload> {
    let cfg = config();
    let mut v = vec![match kind {
        Kind::Channel => scripted_channel(),
        Kind::Image => scripted_image(),
    }];
    let salt = if kind == Kind::Channel { 1 } else { 2 };
    for r in 0..cfg.random_workloads {
        let seed = cfg.seed.wrapping_add(salt * 0x1_0000 + r as u64 * 7919);
        v.push(random_workload(kind, seed, cfg.random_steps));
    }
    v
}

// ---------------------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------------------

/// A channel file or an image file, opened through the public API.
enum Target {
    Chan(Channel<f32>),
    Img(Image<f32>),
}

impl Target {
    fn create(w: &Workload, path: &Path) -> Result<Target> {
        Ok(match w.kind {
            Kind::Channel => Target::Chan(Channel::create_full(
                path,
                w.width,
                w.height,
                f32::from_bits(w.fill),
                w.settings(),
            )?),
            Kind::Image => Target::Img(Image::create(path, w.width, w.height)?),
        })
    }

    fn open(kind: Kind, path: &Path, writable: bool) -> Result<Target> {
        Ok(match (kind, writable) {
            (Kind::Channel, false) => Target::Chan(Channel::open_read_only(path)?),
            (Kind::Channel, true) => Target::Chan(Channel::open(path)?),
            (Kind::Image, false) => Target::Img(Image::open_read_only(path)?),
            (Kind::Image, true) => Target::Img(Image::open(path)?),
        })
    }

    fn open_with<F>(kind: Kind, path: &Path, wrap: F) -> Result<Target>
    where
        F: Fn(Box<dyn Backend>) -> Box<dyn Backend> + Send + Sync + 'static,
    {
        Ok(match kind {
            Kind::Channel => Target::Chan(Channel::try_from_any(AnyChannel::open_with_backend(
                path, wrap,
            )?)?),
            Kind::Image => Target::Img(Image::open_with_backend(path, wrap)?),
        })
    }

    fn channel(&self, ch: usize) -> Result<Channel<f32>> {
        match self {
            Target::Chan(c) => {
                assert_eq!(ch, 0, "a channel file has one channel");
                Ok(c.clone())
            }
            Target::Img(img) => img.channel(ch),
        }
    }

    fn image(&self) -> &Image<f32> {
        match self {
            Target::Img(img) => img,
            Target::Chan(_) => panic!("an image step on a channel workload"),
        }
    }

    fn sync(&self) -> Result {
        match self {
            Target::Chan(c) => c.sync(),
            Target::Img(img) => img.sync(),
        }
    }

    fn compact(&self) -> Result {
        match self {
            Target::Chan(c) => c.compact().map(drop),
            Target::Img(img) => img.compact().map(drop),
        }
    }

    fn generation(&self) -> Result<u64> {
        Ok(match self {
            Target::Chan(c) => c.stats()?.generation,
            Target::Img(img) => img.stats()?.generation,
        })
    }

    fn verify(&self) -> std::result::Result<(), String> {
        let v = match self {
            Target::Chan(c) => c.verify(),
            Target::Img(img) => img.verify(),
        }
        .map_err(|e| format!("verify() failed: {e}"))?;
        if v.is_ok() {
            Ok(())
        } else {
            Err(format!("verify() found problems: {:?}", v.problems))
        }
    }

    fn apply(&self, w: &Workload, step: &Step) -> Result {
        match step {
            Step::Set { ch, chunk, data } => self
                .channel(*ch)?
                .set_chunk(*chunk, &w.chunk(*data, *chunk)),
            Step::Batch { ch, writes, commit } => {
                let c = self.channel(*ch)?;
                let mut b = c.batch()?;
                for (chunk, data) in writes {
                    b.set_chunk(*chunk, &w.chunk(*data, *chunk))?;
                }
                if *commit {
                    b.commit()
                } else {
                    drop(b); // discarded: its blobs stay in the tail, unreferenced
                    Ok(())
                }
            }
            Step::Sync => self.sync(),
            Step::Immediate(on) => {
                let d = if *on {
                    Durability::Immediate
                } else {
                    Durability::OnSync
                };
                match self {
                    Target::Chan(c) => c.set_durability(d),
                    Target::Img(img) => img.set_durability(d),
                }
            }
            Step::Compact => self.compact(),
            Step::AddChannel { seed, name } => self
                .image()
                .add_channel(&w.channel(*seed), name.as_deref(), w.settings())
                .map(drop),
            Step::AddLazy { bits, name } => self
                .image()
                .add_lazy_channel(f32::from_bits(*bits), name.as_deref(), w.settings())
                .map(drop),
            Step::Remove(i) => self.image().remove_channel(*i),
            Step::Names(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                self.image().set_channel_names(&names)
            }
            Step::Meta(v) => self.image().set_metadata(v.clone()),
        }
    }

    /// Every chunk of every channel, read one by one, plus names and metadata.
    fn observe(&self) -> Result<Observed> {
        fn read(c: &AnyChannel) -> Result<Vec<u8>> {
            let mut out = Vec::new();
            for i in 0..c.num_chunks()? {
                let mut buf = vec![0u8; c.chunk_size_at(i)?];
                c.get_chunk_bytes(i, &mut buf)?;
                out.extend_from_slice(&buf);
            }
            Ok(out)
        }
        Ok(match self {
            Target::Chan(c) => Observed {
                generation: self.generation()?,
                channels: vec![read(c)?],
                names: Vec::new(),
                meta: Value::Null,
            },
            Target::Img(img) => Observed {
                generation: self.generation()?,
                channels: (0..img.num_channels())
                    .map(|i| read(&*img.channel(i)?))
                    .collect::<Result<_>>()?,
                names: img.channel_names(),
                meta: img.metadata(),
            },
        })
    }

    /// After an I/O error every write is `Error::Poisoned`.
    fn expect_poisoned(&self, w: &Workload) -> std::result::Result<(), String> {
        let mut results: Vec<(&str, Result)> = Vec::new();
        match self {
            Target::Chan(c) => {
                results.push(("set_chunk", c.set_chunk(0, &w.chunk(Data::Noise(999), 0))));
                results.push(("batch", c.batch().map(drop)));
            }
            Target::Img(img) => {
                results.push(("set_metadata", img.set_metadata(json!(0))));
                results.push((
                    "add_lazy_channel",
                    img.add_lazy_channel(1.0, None, w.settings()).map(drop),
                ));
            }
        }
        results.push(("sync", self.sync()));
        results.push(("compact", self.compact()));
        for (what, r) in results {
            if !matches!(r, Err(Error::Poisoned)) {
                return Err(format!(
                    "{what} after the I/O error returned {r:?}, expected Error::Poisoned"
                ));
            }
        }
        Ok(())
    }
}

/// Commits made on a file after recovering it, to show it accepts new ones.
fn recovery_steps(w: &Workload, s: &State, seed: u64) -> Vec<Step> {
    let set = Step::Set {
        ch: 0,
        chunk: seed as usize % w.n_chunks(),
        data: Data::Noise(seed),
    };
    match w.kind {
        Kind::Channel => vec![set],
        Kind::Image if s.channels.is_empty() => vec![Step::Meta(json!({"recovered": seed}))],
        Kind::Image => vec![Step::Meta(json!({"recovered": seed})), set],
    }
}

/// Make the base file of `w` normally (created, base steps, synced, closed) and the model
/// states: `states[0]` is the base, `states[i + 1]` the state after step `i`.
fn prepare(w: &Workload, dir: &Path) -> (PathBuf, Vec<State>) {
    let base = dir.join(format!("{}-base.cimg", w.name));
    let t = Target::create(w, &base).expect("create the base file");
    let mut s = State::initial(w);
    for step in &w.base {
        t.apply(w, step)
            .unwrap_or_else(|e| panic!("{}: base step {step:?}: {e}", w.name));
        s = s.after(w, step);
    }
    t.sync().expect("sync the base file");
    drop(t);
    let mut states = vec![s];
    for step in &w.steps {
        let next = states.last().expect("a state").after(w, step);
        states.push(next);
    }
    (base, states)
}

// ---------------------------------------------------------------------------------------
// The recording backend
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum IoOp {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
    Sync,
}

/// The generation of a slot write (a 256-byte write at the start of a slot page).
fn slot_gen(op: &IoOp) -> Option<u64> {
    match op {
        IoOp::Write { offset, bytes }
            if (*offset == 0 || *offset == SLOT_PAGE as u64) && bytes.len() == SLOT_LEN =>
        {
            Some(le64(bytes, 16))
        }
        _ => None,
    }
}

struct Entry {
    /// Which wrapped backend (file) it went through: 0 is the file opened, every
    /// compaction adds one.
    inst: usize,
    op: IoOp,
    /// The model state the running operation produces (what a slot written now shows).
    state: usize,
}

/// During a compaction: the file at the path must stay exactly as it was.
struct Watch {
    path: PathBuf,
    bytes: Vec<u8>,
    old_inst: usize,
}

#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<Entry>>,
    /// Contents of each backend's file when it was wrapped.
    bases: Mutex<Vec<Vec<u8>>>,
    state: AtomicUsize,
    watch: Mutex<Option<Watch>>,
    watch_checks: AtomicUsize,
    violations: Mutex<Vec<String>>,
}

impl Recorder {
    fn instances(&self) -> usize {
        self.bases.lock().unwrap().len()
    }
    fn len(&self) -> usize {
        self.log.lock().unwrap().len()
    }
    fn violation(&self, message: String) {
        self.violations.lock().unwrap().push(message);
    }
}

/// Passes every call to the real backend, then logs the mutation.
struct Recording {
    inner: Box<dyn Backend>,
    inst: usize,
    rec: Arc<Recorder>,
}

impl Recording {
    fn record(&self, op: IoOp) {
        if let Some(w) = &*self.rec.watch.lock().unwrap() {
            if self.inst == w.old_inst {
                self.rec
                    .violation(format!("compaction wrote the old file: {op:?}"));
            } else if fs::read(&w.path).ok().as_ref() != Some(&w.bytes) {
                self.rec
                    .violation("the old file changed during compaction's copy".into());
            } else {
                self.rec.watch_checks.fetch_add(1, SeqCst);
            }
        }
        let state = self.rec.state.load(SeqCst);
        self.rec.log.lock().unwrap().push(Entry {
            inst: self.inst,
            op,
            state,
        });
    }
}

impl Backend for Recording {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)?;
        self.record(IoOp::Write {
            offset,
            bytes: buf.to_vec(),
        });
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let before = self.inner.len()?;
        if len < before {
            self.rec.violation(format!(
                "set_len({len}) shrinks a file of {before} bytes in place"
            ));
        }
        self.inner.set_len(len)?;
        self.record(IoOp::SetLen(len));
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()?;
        self.record(IoOp::Sync);
        Ok(())
    }
}

fn recording(
    rec: &Arc<Recorder>,
) -> impl Fn(Box<dyn Backend>) -> Box<dyn Backend> + Send + Sync + 'static {
    let rec = rec.clone();
    move |inner| -> Box<dyn Backend> {
        let len = inner.len().expect("length of a wrapped file");
        let mut bytes = vec![0u8; len as usize];
        inner
            .read_exact_at(&mut bytes, 0)
            .expect("contents of a wrapped file");
        let mut bases = rec.bases.lock().unwrap();
        let inst = bases.len();
        bases.push(bytes);
        Box::new(Recording {
            inner,
            inst,
            rec: rec.clone(),
        })
    }
}

/// A compaction: the copy went through backend `new`, was synced at log index `sync_idx`
/// and renamed over the path before `compact()` returned at log length `end`.
struct Event {
    new: usize,
    sync_idx: usize,
    end: usize,
}

/// A workload run once, fault-free, through the recording backend.
struct Rec {
    w: Workload,
    states: Vec<State>,
    log: Vec<Entry>,
    bases: Vec<Vec<u8>>,
    events: Vec<Event>,
    /// Generation → model state, for every slot ever written (and the base file's).
    gens: HashMap<u64, usize>,
    base_gen: u64,
    watch_checks: usize,
}

/// The bounds on the commit a crash image may open at.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// The commit whose slot was written last before the last completed fsync.
    lo: usize,
    lo_gen: u64,
    /// The commit whose slot was written last.
    hi: usize,
    hi_gen: u64,
}

/// One file at one crash point: what was durable and what may or may not have reached
/// the disk.
struct Point<'a> {
    b: Bounds,
    durable: Vec<u8>,
    pending: Vec<&'a IoOp>,
}

fn live_matches(t: &Target, s: &State, what: &str) {
    let o = t
        .observe()
        .unwrap_or_else(|e| panic!("{what}: reading: {e}"));
    assert!(s.matches(&o), "{what}: the handle disagrees with the model");
    t.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
}

fn record(w: &Workload, dir: &Path) -> Rec {
    let (base, states) = prepare(w, dir);
    let base_bytes = fs::read(&base).expect("read the base file");
    let path = dir.join(format!("{}-work.cimg", w.name));
    let _ = fs::remove_file(&path);
    fs::copy(&base, &path).expect("copy the base file");
    let rec = Arc::new(Recorder::default());
    let t = Target::open_with(w.kind, &path, recording(&rec))
        .unwrap_or_else(|e| panic!("{}: open: {e}", w.name));
    live_matches(&t, &states[0], &format!("{}: after open", w.name));
    let mut events = Vec::new();
    for (i, step) in w.steps.iter().enumerate() {
        let what = format!("{}: step {i} {step:?}", w.name);
        rec.state.store(i + 1, SeqCst);
        let start = rec.len();
        let old = rec.instances() - 1;
        if matches!(step, Step::Compact) {
            *rec.watch.lock().unwrap() = Some(Watch {
                path: path.clone(),
                bytes: fs::read(&path).expect("read the file"),
                old_inst: old,
            });
        }
        t.apply(w, step).unwrap_or_else(|e| panic!("{what}: {e}"));
        if matches!(step, Step::Compact) {
            *rec.watch.lock().unwrap() = None;
            let new = rec.instances() - 1;
            assert!(new > old, "{what}: compaction wrote no new file");
            let log = rec.log.lock().unwrap();
            assert!(
                log[start..].iter().all(|e| e.inst == new),
                "{what}: compaction touched another file"
            );
            let sync_idx = (start..log.len())
                .rev()
                .find(|&j| matches!(log[j].op, IoOp::Sync))
                .unwrap_or_else(|| panic!("{what}: the copy was never synced"));
            events.push(Event {
                new,
                sync_idx,
                end: log.len(),
            });
            drop(log);
            // After completion, the new file at the path opens with identical contents.
            let ro = Target::open(w.kind, &path, false)
                .unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
            live_matches(&ro, &states[i + 1], &format!("{what}: the compacted file"));
        }
        live_matches(&t, &states[i + 1], &what);
    }
    drop(t); // syncs (and writes a marker), logged too
    let ro = Target::open(w.kind, &path, false).expect("reopen the final file");
    live_matches(
        &ro,
        states.last().expect("a state"),
        &format!("{}: final file", w.name),
    );
    drop(ro);

    let violations = std::mem::take(&mut *rec.violations.lock().unwrap());
    assert!(violations.is_empty(), "{}: {violations:?}", w.name);
    let log = std::mem::take(&mut *rec.log.lock().unwrap());
    let bases = std::mem::take(&mut *rec.bases.lock().unwrap());

    // Generations: the base file's newest slot (and its pair, if it names the same
    // catalog) show state 0; every slot written shows the state its operation produced.
    let slots: Vec<SlotInfo> = (0..2).filter_map(|p| decode_slot(&base_bytes, p)).collect();
    let newest = *slots
        .iter()
        .max_by_key(|s| s.generation)
        .expect("the base file has a valid slot");
    let mut gens = HashMap::new();
    for s in &slots {
        if s.catalog_offset == newest.catalog_offset {
            gens.insert(s.generation, 0);
        }
    }
    for e in &log {
        if let Some(g) = slot_gen(&e.op)
            && let Some(prev) = gens.insert(g, e.state)
        {
            assert_eq!(prev, e.state, "{}: generation {g} written twice", w.name);
        }
    }
    Rec {
        w: w.clone(),
        states,
        log,
        bases,
        events,
        gens,
        base_gen: newest.generation,
        watch_checks: rec.watch_checks.load(SeqCst),
    }
}

fn put(img: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if img.len() < end {
        img.resize(end, 0); // a write past the end extends the file
    }
    img[start..end].copy_from_slice(bytes);
}

/// Apply one mutation to a file image. With `grow_only`, a `set_len` never shortens the
/// image (the library never shrinks a file in place; reordered growths keep the largest).
fn apply(img: &mut Vec<u8>, op: &IoOp, grow_only: bool) {
    match op {
        IoOp::Write { offset, bytes } => put(img, *offset, bytes),
        IoOp::SetLen(len) => {
            let len = *len as usize;
            if len > img.len() || !grow_only {
                img.resize(len, 0);
            }
        }
        IoOp::Sync => {}
    }
}

/// The byte ranges (relative to the write) of the `g`-byte sectors a write covers.
fn sectors(offset: u64, len: usize, g: u64) -> Vec<Range<usize>> {
    let end = offset + len as u64;
    let mut cuts = vec![offset];
    let mut b = (offset / g + 1) * g;
    while b < end {
        cuts.push(b);
        b += g;
    }
    cuts.push(end);
    cuts.windows(2)
        .map(|c| (c[0] - offset) as usize..(c[1] - offset) as usize)
        .collect()
}

impl Rec {
    /// Which files may be at the path after a crash with the first `k` log entries done:
    /// the old one until compaction's copy is synced, either one until `compact()` returns
    /// (the rename and the directory fsync happen in between), then the new one.
    fn instances_at(&self, k: usize) -> Vec<usize> {
        let mut cur = 0;
        for ev in &self.events {
            if k > ev.end {
                cur = ev.new;
            } else if k > ev.sync_idx {
                return vec![cur, ev.new];
            } else {
                break;
            }
        }
        vec![cur]
    }

    /// File `inst` after a crash with the first `k` log entries done: durable are its
    /// initial bytes and every mutation before its last completed fsync; the mutations
    /// after that may or may not have reached the disk.
    fn point(&self, inst: usize, k: usize) -> Point<'_> {
        let ops: Vec<(usize, &Entry)> = self.log[..k]
            .iter()
            .enumerate()
            .filter(|(_, e)| e.inst == inst)
            .collect();
        let last_sync = ops
            .iter()
            .rev()
            .find(|(_, e)| matches!(e.op, IoOp::Sync))
            .map(|(j, _)| *j);
        let slots: Vec<(usize, u64, usize)> = ops
            .iter()
            .filter_map(|(j, e)| slot_gen(&e.op).map(|g| (*j, g, e.state)))
            .collect();
        let base = (inst == 0).then_some((self.base_gen, 0));
        let (hi_gen, hi) = slots
            .last()
            .map(|&(_, g, s)| (g, s))
            .or(base)
            .expect("a file at the path has a commit");
        let (lo_gen, lo) = last_sync
            .and_then(|ls| {
                slots
                    .iter()
                    .rev()
                    .find(|(j, ..)| *j < ls)
                    .map(|&(_, g, s)| (g, s))
            })
            .or(base)
            .expect("a file at the path has a durable commit");
        let mut durable = self.bases[inst].clone();
        let mut pending = Vec::new();
        for (j, e) in ops {
            if matches!(e.op, IoOp::Sync) {
                continue;
            }
            if last_sync.is_some_and(|ls| j < ls) {
                apply(&mut durable, &e.op, false);
            } else {
                pending.push(&e.op);
            }
        }
        Point {
            b: Bounds {
                lo,
                lo_gen,
                hi,
                hi_gen,
            },
            durable,
            pending,
        }
    }
}

/// What a crash image opened at.
struct Opened {
    state: usize,
    generation: u64,
}

/// Open a crash image read-only and check it against the model and the bounds; then, if
/// asked, recover it read-write (and commit on it) and check again.
fn check_image(
    rec: &Rec,
    path: &Path,
    bytes: &[u8],
    b: &Bounds,
    exact: Option<u64>,
    rw: bool,
    write: Option<u64>,
) -> std::result::Result<Opened, String> {
    let w = &rec.w;
    write_image(path, bytes)?;
    let ro =
        Target::open(w.kind, path, false).map_err(|e| format!("read-only open failed: {e}"))?;
    let o = ro
        .observe()
        .map_err(|e| format!("reading the opened commit failed: {e}"))?;
    let c = *rec
        .gens
        .get(&o.generation)
        .ok_or_else(|| format!("opened generation {}, which no commit wrote", o.generation))?;
    if c < b.lo || c > b.hi {
        return Err(format!(
            "opened commit {c} (generation {}), outside [{}, {}] (generations {}..={})",
            o.generation, b.lo, b.hi, b.lo_gen, b.hi_gen
        ));
    }
    if let Some(g) = exact
        && o.generation != g
    {
        return Err(format!(
            "opened generation {}, expected exactly {g} (bounds {b:?})",
            o.generation
        ));
    }
    if !rec.states[c].matches(&o) {
        return Err(format!(
            "commit {c} reads wrong: {}",
            diff(w, &rec.states[c], &o)
        ));
    }
    ro.verify()?;
    drop(ro);
    if fs::read(path).map_err(|e| e.to_string())? != bytes {
        return Err("a read-only open changed the file".into());
    }
    if rw {
        let t = Target::open(w.kind, path, true)
            .map_err(|e| format!("read-write open (recovery) failed: {e}"))?;
        let o2 = t.observe().map_err(|e| format!("after recovery: {e}"))?;
        if !rec.states[c].matches(&o2) || o2.generation < o.generation {
            return Err(format!(
                "read-write open shows generation {} and {}, read-only showed {} (commit {c})",
                o2.generation,
                diff(w, &rec.states[c], &o2),
                o.generation
            ));
        }
        t.verify().map_err(|e| format!("after recovery: {e}"))?;
        let mut expected = rec.states[c].clone();
        if let Some(seed) = write {
            for step in recovery_steps(w, &expected, seed) {
                t.apply(w, &step)
                    .map_err(|e| format!("commit after recovery {step:?}: {e}"))?;
                expected = expected.after(w, &step);
            }
            t.sync().map_err(|e| format!("sync after recovery: {e}"))?;
        }
        drop(t);
        let t = Target::open(w.kind, path, false)
            .map_err(|e| format!("reopen after recovery failed: {e}"))?;
        let o3 = t
            .observe()
            .map_err(|e| format!("reopen after recovery: {e}"))?;
        if !expected.matches(&o3) {
            return Err(format!(
                "reopen after recovery: {}",
                diff(w, &expected, &o3)
            ));
        }
        t.verify()
            .map_err(|e| format!("reopen after recovery: {e}"))?;
    }
    Ok(Opened {
        state: c,
        generation: o.generation,
    })
}

/// Run `check_image`, turning a panic into a failure message.
fn check_caught(
    rec: &Rec,
    path: &Path,
    bytes: &[u8],
    b: &Bounds,
    exact: Option<u64>,
    recovery: (bool, Option<u64>),
) -> std::result::Result<Opened, String> {
    catch_unwind(AssertUnwindSafe(|| {
        check_image(rec, path, bytes, b, exact, recovery.0, recovery.1)
    }))
    .unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&*p))))
}

// ---------------------------------------------------------------------------------------
// Part 1: power-loss sweep
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct SweepStats {
    workloads: usize,
    log_entries: usize,
    points: usize,
    generated: usize,
    opened: usize,
    recovered: usize,
    written: usize,
    watch_checks: usize,
    fallbacks: usize,
}

/// A crash image and what it must open at.
struct Variant {
    label: String,
    bytes: Vec<u8>,
    exact: Option<u64>,
}

struct Sweep<'a> {
    rec: &'a Rec,
    file: PathBuf,
    rng: Rng,
    seen: HashSet<(u64, usize, usize, Option<u64>)>,
    stats: SweepStats,
    failures: Failures,
}

impl Sweep<'_> {
    fn variants(&mut self, p: &Point<'_>) -> Vec<Variant> {
        let cfg = config();
        let mut out = vec![Variant {
            label: "(a) durable only".into(),
            bytes: p.durable.clone(),
            exact: Some(p.b.lo_gen),
        }];
        let n = p.pending.len();
        if n == 0 {
            return out;
        }
        let build = |keep: &[bool]| {
            let mut img = p.durable.clone();
            for (op, _) in p.pending.iter().zip(keep).filter(|(_, k)| **k) {
                apply(&mut img, op, false);
            }
            img
        };
        out.push(Variant {
            label: "every write in order (process crash)".into(),
            bytes: build(&vec![true; n]),
            exact: Some(p.b.hi_gen),
        });
        for s in 0..cfg.subsets {
            let num = [1, 2, 3][s % 3];
            let keep: Vec<bool> = (0..n).map(|_| self.rng.chance(num, 4)).collect();
            out.push(Variant {
                label: format!("(b) subset {s} (p = {num}/4) {}", mask(&keep)),
                bytes: build(&keep),
                exact: None,
            });
        }
        for g in [512u64, 4096] {
            let tearable: Vec<usize> = (0..n)
                .filter(|&i| match p.pending[i] {
                    IoOp::Write { offset, bytes } => sectors(*offset, bytes.len(), g).len() > 1,
                    _ => false,
                })
                .collect();
            if tearable.is_empty() {
                continue;
            }
            for t in 0..cfg.torn {
                let victim = tearable[self.rng.below(tearable.len())];
                let IoOp::Write { offset, bytes } = p.pending[victim] else {
                    unreachable!()
                };
                let secs = sectors(*offset, bytes.len(), g);
                let keep: Vec<bool> = (0..n).map(|_| self.rng.chance(1, 2)).collect();
                // A prefix of the sectors, and a scattered subset of them.
                let cut = 1 + self.rng.below(secs.len() - 1);
                let prefix: Vec<bool> = (0..secs.len()).map(|s| s < cut).collect();
                let mut scattered: Vec<bool> =
                    (0..secs.len()).map(|_| self.rng.chance(1, 2)).collect();
                scattered[self.rng.below(secs.len())] = true;
                let hole = self.rng.below(secs.len());
                scattered[hole] = false;
                for (how, parts) in [("prefix", prefix), ("scattered", scattered)] {
                    let mut img = p.durable.clone();
                    for (i, op) in p.pending.iter().enumerate() {
                        if i == victim {
                            for (s, r) in secs.iter().enumerate() {
                                if parts[s] {
                                    put(&mut img, offset + r.start as u64, &bytes[r.clone()]);
                                }
                            }
                        } else if keep[i] {
                            apply(&mut img, op, false);
                        }
                    }
                    out.push(Variant {
                        label: format!(
                            "(c) torn {t} at {g} B ({how} {} of pending write {victim} at \
                             {offset}) {}",
                            mask(&parts),
                            mask(&keep)
                        ),
                        bytes: img,
                        exact: None,
                    });
                }
            }
        }
        for s in 0..cfg.shuffles {
            let keep: Vec<usize> = (0..n).filter(|_| s == 0 || self.rng.chance(3, 4)).collect();
            let mut order = keep;
            self.rng.shuffle(&mut order);
            let mut img = p.durable.clone();
            for &i in &order {
                apply(&mut img, p.pending[i], true);
            }
            out.push(Variant {
                label: format!("(d) reordered {s}: {order:?}"),
                bytes: img,
                exact: None,
            });
        }
        out
    }

    /// Check the crash images of every crash point from `start` on.
    fn run(&mut self, start: usize) {
        let cfg = config();
        let rec = self.rec;
        let n = rec.log.len();
        for k in start..=n {
            self.stats.points += 1;
            for inst in rec.instances_at(k) {
                let p = rec.point(inst, k);
                for v in self.variants(&p) {
                    self.stats.generated += 1;
                    let key = (digest(&v.bytes), p.b.lo, p.b.hi, v.exact);
                    if !self.seen.insert(key) {
                        continue;
                    }
                    self.stats.opened += 1;
                    let rw = self.stats.opened.is_multiple_of(cfg.rw_every);
                    let write = self
                        .stats
                        .opened
                        .is_multiple_of(cfg.write_every)
                        .then_some(self.stats.opened as u64);
                    match check_caught(rec, &self.file, &v.bytes, &p.b, v.exact, (rw, write)) {
                        Ok(opened) => {
                            self.stats.recovered += usize::from(rw);
                            self.stats.written += usize::from(rw && write.is_some());
                            self.stats.fallbacks += usize::from(opened.state < p.b.hi);
                        }
                        Err(m) => self.failures.push(format!(
                            "{} crash point {k}/{n} (file {inst}, pending {}) {}: {m}",
                            rec.w.name,
                            p.pending.len(),
                            v.label
                        )),
                    }
                }
            }
        }
    }
}

/// A keep-mask as a short string of 0s and 1s.
fn mask(keep: &[bool]) -> String {
    let s: String = keep.iter().map(|&k| if k { '1' } else { '0' }).collect();
    if s.len() > 48 {
        format!("{}…", &s[..48])
    } else {
        s
    }
}

fn power_loss_sweep(kind: Kind) {
    let cfg = config();
    let started = Instant::now();
    let dir = scratch();
    let mut total = SweepStats::default();
    let mut failures = Failures::default();
    for (wi, w) in workloads(kind).into_iter().enumerate() {
        let rec = record(&w, dir.path());
        // The scripted workloads must exercise every kind of mutation.
        if wi == 0 {
            let has = |f: &dyn Fn(&IoOp) -> bool| rec.log.iter().any(|e| f(&e.op));
            assert!(has(&|op| matches!(op, IoOp::SetLen(_))), "no file growth");
            assert!(has(&|op| matches!(op, IoOp::Sync)), "no fsync");
            assert!(has(&|op| slot_gen(op).is_some()), "no slot write");
            assert!(!rec.events.is_empty(), "no compaction");
            assert!(rec.watch_checks > 0, "compaction's copy was not watched");
        }
        let mut sweep = Sweep {
            rec: &rec,
            file: dir.path().join(format!("{}-crash.cimg", w.name)),
            rng: seeded_rng(cfg.seed ^ digest(w.name.as_bytes())),
            seen: HashSet::new(),
            stats: SweepStats::default(),
            failures: Failures::default(),
        };
        sweep.run(0);
        let s = &sweep.stats;
        println!(
            "power-loss sweep [{}]: {} log entries ({} files), {} crash points, {} crash images \
             ({} distinct opened, {} opened older than the newest slot written, {} recovered \
             read-write, {} with a commit after recovery), {} checks of the old file during \
             compaction",
            w.name,
            rec.log.len(),
            rec.bases.len(),
            s.points,
            s.generated,
            s.opened,
            s.fallbacks,
            s.recovered,
            s.written,
            rec.watch_checks
        );
        total.workloads += 1;
        total.log_entries += rec.log.len();
        total.points += s.points;
        total.generated += s.generated;
        total.opened += s.opened;
        total.recovered += s.recovered;
        total.written += s.written;
        total.fallbacks += s.fallbacks;
        total.watch_checks += rec.watch_checks;
        failures.count += sweep.failures.count;
        failures.shown.extend(sweep.failures.shown);
    }
    println!(
        "power-loss sweep total [{kind:?}{}]: {} workloads, {} log entries, {} crash points, \
         {} crash images, {} distinct opened ({} fell back), {} recovered read-write, {} \
         written after recovery, {} compaction watch checks, {:.1} s",
        if cfg.long { ", long" } else { "" },
        total.workloads,
        total.log_entries,
        total.points,
        total.generated,
        total.opened,
        total.fallbacks,
        total.recovered,
        total.written,
        total.watch_checks,
        started.elapsed().as_secs_f64()
    );
    failures.assert_none("power-loss sweep");
}

#[test]
fn power_loss_at_every_io_of_channel_workloads_opens_a_valid_commit() {
    power_loss_sweep(Kind::Channel);
}

#[test]
fn power_loss_at_every_io_of_image_workloads_opens_a_valid_commit() {
    power_loss_sweep(Kind::Image);
}

/// The log of a restart after a process crash at crash point `k` of `rec` (before any
/// compaction): the crashed process's writes up to `k` (in the page cache, not synced),
/// then those of a new process that opens the file read-write (fsync, marker), commits
/// and closes it (fsync, marker). The result is a `Rec` of one file whose states are
/// `rec`'s plus the commits made after the restart, and the log index where the restart
/// begins.
fn restart(rec: &Rec, k: usize, dir: &Path, seed: u64) -> (Rec, usize) {
    let w = &rec.w;
    let p = rec.point(0, k);
    let mut img = p.durable.clone();
    for op in &p.pending {
        apply(&mut img, op, false);
    }
    let file = dir.join(format!("{}-restart.cimg", w.name));
    write_image(&file, &img).expect("write the image");
    let opened = p.b.hi; // a process crash loses nothing committed
    let r = Arc::new(Recorder::default());
    r.state.store(opened, SeqCst);
    let what = format!("{}: restart after a process crash at {k}", w.name);
    let t = Target::open_with(w.kind, &file, recording(&r))
        .unwrap_or_else(|e| panic!("{what}: open: {e}"));
    live_matches(&t, &rec.states[opened], &what);
    // Each commit of the restarted process is a new model state after `rec`'s.
    let mut states = rec.states.clone();
    let mut current = rec.states[opened].clone();
    for step in recovery_steps(w, &current, seed) {
        current = current.after(w, &step);
        r.state.store(states.len(), SeqCst);
        t.apply(w, &step)
            .unwrap_or_else(|e| panic!("{what}: {step:?}: {e}"));
        live_matches(&t, &current, &what);
        states.push(current.clone());
    }
    drop(t); // fsync and marker
    let mut log: Vec<Entry> = rec.log[..k]
        .iter()
        .filter(|e| e.inst == 0)
        .map(|e| Entry {
            inst: 0,
            op: e.op.clone(),
            state: e.state,
        })
        .collect();
    let start = log.len();
    log.extend(
        std::mem::take(&mut *r.log.lock().unwrap())
            .into_iter()
            .map(|e| Entry { inst: 0, ..e }),
    );
    // Generations above the opened one now name the restarted process's slots.
    let mut gens: HashMap<u64, usize> = rec
        .gens
        .iter()
        .filter(|(g, _)| **g <= p.b.hi_gen)
        .map(|(g, s)| (*g, *s))
        .collect();
    for e in &log[start..] {
        if let Some(g) = slot_gen(&e.op) {
            assert!(
                gens.insert(g, e.state).is_none(),
                "{what}: generation {g} reused"
            );
        }
    }
    let rec2 = Rec {
        w: w.clone(),
        states,
        log,
        bases: vec![rec.bases[0].clone()],
        events: Vec::new(),
        gens,
        base_gen: rec.base_gen,
        watch_checks: 0,
    };
    (rec2, start)
}

/// A process crash, a restart that recovers the file read-write (fsync, then a marker),
/// commits and closes it, and a power loss at every I/O of the restarted process: the
/// restart's fsync makes the crashed process's writes durable, so from then on the file
/// opens at the commit the restart found or at the restart's own commit.
#[test]
fn power_loss_while_restarting_after_a_process_crash_opens_a_valid_commit() {
    let cfg = config();
    let started = Instant::now();
    let dir = scratch();
    let mut total = SweepStats::default();
    let mut failures = Failures::default();
    for kind in [Kind::Channel, Kind::Image] {
        for w in workloads(kind) {
            let rec = record(&w, dir.path());
            let mut rng = seeded_rng(cfg.seed ^ 0x0A11 ^ digest(w.name.as_bytes()));
            let mut ks: Vec<usize> = (1..=rec.log.len())
                .filter(|&k| rec.instances_at(k) == [0] && !rec.point(0, k).pending.is_empty())
                .collect();
            rng.shuffle(&mut ks);
            for (i, &k) in ks.iter().take(cfg.restarts).enumerate() {
                let (rec2, start) = restart(&rec, k, dir.path(), 7000 + i as u64);
                let mut sweep = Sweep {
                    rec: &rec2,
                    file: dir.path().join(format!("{}-restart-crash.cimg", w.name)),
                    rng: seeded_rng(cfg.seed ^ k as u64),
                    seen: HashSet::new(),
                    stats: SweepStats::default(),
                    failures: Failures::default(),
                };
                sweep.run(start);
                let s = &sweep.stats;
                total.workloads += 1;
                total.log_entries += rec2.log.len() - start;
                total.points += s.points;
                total.generated += s.generated;
                total.opened += s.opened;
                total.recovered += s.recovered;
                total.written += s.written;
                total.fallbacks += s.fallbacks;
                for m in sweep.failures.shown {
                    failures.push(format!("restart after a process crash at {k}: {m}"));
                }
                failures.count += sweep.failures.count.saturating_sub(40);
            }
        }
    }
    println!(
        "power loss after a restart{}: {} restarts, {} log entries of restarted processes, \
         {} crash points, {} crash images, {} distinct opened ({} fell back), {} recovered \
         read-write again, {} written after that, {:.1} s",
        if cfg.long { " (long)" } else { "" },
        total.workloads,
        total.log_entries,
        total.points,
        total.generated,
        total.opened,
        total.fallbacks,
        total.recovered,
        total.written,
        started.elapsed().as_secs_f64()
    );
    assert!(total.workloads > 0);
    failures.assert_none("power loss after a restart");
}

/// redb's growth case: the slot of a commit that grew the file persisted, the `set_len`
/// and the records past the old length did not, so the slot's `committed_end` lies past
/// the end of the file. The open must fall back to an older commit.
#[test]
fn slot_past_the_end_of_a_file_whose_growth_was_lost_falls_back() {
    let dir = scratch();
    let mut cases = 0;
    let mut failures = Failures::default();
    for kind in [Kind::Channel, Kind::Image] {
        for w in workloads(kind) {
            let rec = record(&w, dir.path());
            let file = dir.path().join(format!("{}-growth.cimg", w.name));
            for (j, e) in rec.log.iter().enumerate() {
                let IoOp::SetLen(_) = e.op else { continue };
                let inst = e.inst;
                let Some(m) = (j + 1..rec.log.len())
                    .find(|&m| rec.log[m].inst == inst && slot_gen(&rec.log[m].op).is_some())
                else {
                    continue;
                };
                let k = m + 1;
                if !rec.instances_at(k).contains(&inst) {
                    continue;
                }
                let p = rec.point(inst, k);
                if !p.pending.iter().any(|op| std::ptr::eq(*op, &e.op)) {
                    continue; // the growth was synced before the slot
                }
                let mut img = p.durable.clone();
                let mut old_len = None;
                for op in &p.pending {
                    if std::ptr::eq(*op, &e.op) {
                        old_len = Some(img.len());
                    }
                    match (old_len, op) {
                        (None, _) => apply(&mut img, op, false),
                        (Some(l), IoOp::Write { offset, bytes }) if (*offset as usize) < l => {
                            let keep = bytes.len().min(l - *offset as usize);
                            put(&mut img, *offset, &bytes[..keep]);
                        }
                        _ => {} // the set_len and everything past the old end are lost
                    }
                }
                let slot_gen_m = slot_gen(&rec.log[m].op).expect("a slot write");
                let page = match &rec.log[m].op {
                    IoOp::Write { offset, .. } => *offset as usize / SLOT_PAGE,
                    _ => unreachable!(),
                };
                let slot = decode_slot(&img, page).expect("the slot persisted");
                assert_eq!(slot.generation, slot_gen_m);
                let what = format!("{} set_len at {j}, slot at {m}", w.name);
                if slot.committed_end <= img.len() as u64 {
                    // The growth was for a discarded batch; this slot is a later commit
                    // that reused the tail below the old end.
                    continue;
                }
                cases += 1;
                match check_caught(&rec, &file, &img, &p.b, None, (true, Some(cases as u64))) {
                    Ok(o) if o.generation == slot_gen_m => {
                        failures.push(format!("{what}: opened the slot past the end of the file"))
                    }
                    Ok(_) => {}
                    Err(m) => failures.push(format!("{what}: {m}")),
                }
            }
        }
    }
    println!("growth lost, slot persisted: {cases} crash images, each fell back");
    assert!(cases > 0, "no workload grew the file before a slot write");
    failures.assert_none("growth case");
}

/// Open a crash image whose slot `page` holds a torn write of generation `torn_gen`:
/// read-only (bounds, contents, `verify()`, nothing written), then read-write. Returns
/// whether the recovery replaced the torn page, which it may only do with a marker of the
/// commit it accepted.
fn check_torn_slot(
    rec: &Rec,
    file: &Path,
    img: &[u8],
    b: &Bounds,
    torn_gen: u64,
    page: usize,
) -> std::result::Result<bool, String> {
    let o = check_image(rec, file, img, b, None, false, None)?;
    if o.generation == torn_gen {
        return Err("the torn slot was chosen".into());
    }
    let chosen = (0..2)
        .filter_map(|p| decode_slot(img, p))
        .find(|s| s.generation == o.generation)
        .ok_or("the chosen slot is not in the file")?;
    let t = Target::open(rec.w.kind, file, true).map_err(|e| format!("recovery: {e}"))?;
    let seen = t.observe().map_err(|e| format!("after recovery: {e}"))?;
    if !rec.states[o.state].matches(&seen) {
        return Err("recovery shows another commit".into());
    }
    drop(t);
    let after = fs::read(file).map_err(|e| e.to_string())?;
    let at = page * SLOT_PAGE;
    if after[at..at + SLOT_LEN] == img[at..at + SLOT_LEN] {
        return Ok(false);
    }
    match decode_slot(&after, page) {
        Some(s)
            if s.catalog_offset == chosen.catalog_offset
                && s.committed_end == chosen.committed_end
                && s.durable_end == s.committed_end
                && s.generation > chosen.generation =>
        {
            Ok(true)
        }
        Some(s) => Err(format!(
            "recovery wrote {s:?} over the torn slot; the accepted commit is {chosen:?}"
        )),
        None => Err("recovery turned the torn page into another invalid slot".into()),
    }
}

/// A slot write torn in the middle (new first half, old second half: the CRC fails) is
/// never chosen and never "laundered": a read-only open writes nothing, and a read-write
/// open leaves the torn page as it is or overwrites it with a marker of the commit it
/// accepted, never with the torn slot under a fresh CRC.
#[test]
fn recovery_does_not_launder_a_torn_slot() {
    let dir = scratch();
    let mut cases = 0;
    let mut overwritten = 0;
    let mut failures = Failures::default();
    for kind in [Kind::Channel, Kind::Image] {
        for w in workloads(kind) {
            let rec = record(&w, dir.path());
            let file = dir.path().join(format!("{}-torn-slot.cimg", w.name));
            for (m, e) in rec.log.iter().enumerate() {
                let Some(torn_gen) = slot_gen(&e.op) else {
                    continue;
                };
                let IoOp::Write { offset, bytes } = &e.op else {
                    unreachable!()
                };
                let (inst, page) = (e.inst, *offset as usize / SLOT_PAGE);
                if !rec.instances_at(m + 1).contains(&inst) {
                    continue;
                }
                let before = rec.point(inst, m);
                let mut img = before.durable.clone();
                for op in &before.pending {
                    apply(&mut img, op, false);
                }
                let at = page * SLOT_PAGE;
                img[at..at + SLOT_LEN / 2].copy_from_slice(&bytes[..SLOT_LEN / 2]);
                if decode_slot(&img, page).is_some() {
                    continue; // the old slot had the same first half: not torn
                }
                cases += 1;
                let what = format!(
                    "{} slot write {m} (generation {torn_gen}, page {page})",
                    w.name
                );
                let b = rec.point(inst, m + 1).b;
                let result = catch_unwind(AssertUnwindSafe(|| {
                    check_torn_slot(&rec, &file, &img, &b, torn_gen, page)
                }))
                .unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&*p))));
                match result {
                    Ok(marker) => overwritten += usize::from(marker),
                    Err(m) => failures.push(format!("{what}: {m}")),
                }
            }
        }
    }
    println!(
        "torn slots: {cases} crash images; read-only opens wrote nothing; read-write \
         recovery left {} torn pages as they were and replaced {overwritten} with a marker \
         of the accepted commit",
        cases - overwritten
    );
    assert!(cases > 0);
    failures.assert_none("torn slot");
}

// ---------------------------------------------------------------------------------------
// Part 2: I/O error countdown
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FErr {
    /// EIO, nothing written.
    Eio,
    /// ENOSPC, nothing written.
    Enospc,
    /// The first half of the buffer written, then ENOSPC (writes only).
    Short,
}

impl FErr {
    fn errno(self) -> i32 {
        match self {
            FErr::Eio => EIO,
            FErr::Enospc | FErr::Short => ENOSPC,
        }
    }
}

/// The `k`-th call of `op` fails with `err`; with `forever`, so does every later
/// mutating call.
#[derive(Debug, Clone, Copy)]
struct Plan {
    op: Op,
    k: usize,
    err: FErr,
    forever: bool,
}

impl Plan {
    /// The fault that carries out this plan.
    fn fault(self) -> fault::Target {
        fault::Target {
            op: self.op,
            k: self.k,
            failure: Failure::Errno(self.err.errno()),
            torn: if self.err == FErr::Short {
                Torn::Half
            } else {
                Torn::Nothing
            },
            forever: self.forever,
        }
    }
}

fn expect_injected(e: &Error, plan: Plan) -> std::result::Result<(), String> {
    plan.fault().check(e)
}

/// Temporary files (`.cimg-*`) left in `dir`.
fn strays(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".cimg-"))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Default)]
struct FaultStats {
    runs: usize,
    calls_failed: usize,
    in_open: usize,
    in_steps: usize,
    in_compaction: usize,
    usable_after_compaction: usize,
    in_drop: usize,
    short_fallbacks: usize,
}

/// Run `w` on a copy of `base` with `plan`'s fault; check the error, poisoning, the old
/// file after a failed compaction, and the reopened file. Returns the call counts.
fn run_fault(
    w: &Workload,
    base: &Path,
    path: &Path,
    states: &[State],
    plan: Option<Plan>,
    stats: &mut FaultStats,
) -> std::result::Result<[usize; 3], String> {
    let _ = fs::remove_file(path);
    fs::copy(base, path).map_err(|e| e.to_string())?;
    let ctl = Fault::new(plan.map(Plan::fault));
    let n = w.steps.len();
    let clean = plan.is_none_or(|p| p.err != FErr::Short);
    let mut last_synced = 0;
    let (lo, hi, exact) = match Target::open_with(w.kind, path, fault::wrap(&ctl)) {
        Err(e) => {
            let plan = plan.ok_or_else(|| format!("fault-free open failed: {e}"))?;
            if !ctl.fired() {
                return Err(format!("open failed without a fault: {e}"));
            }
            expect_injected(&e, plan).map_err(|m| format!("open: {m}"))?;
            stats.in_open += 1;
            (0, 0, vec![0])
        }
        Ok(t) => {
            let mut immediate = false;
            let mut failed = None;
            let mut compaction_fault = false;
            for (i, step) in w.steps.iter().enumerate() {
                let fired_before = ctl.fired();
                let old_file = match step {
                    Step::Compact => Some(fs::read(path).map_err(|e| e.to_string())?),
                    _ => None,
                };
                match t.apply(w, step) {
                    Ok(()) => {
                        if ctl.fired() && !fired_before {
                            return Err(format!(
                                "step {i} {step:?} returned Ok although a call in it failed"
                            ));
                        }
                        match step {
                            Step::Sync | Step::Compact => last_synced = i + 1,
                            Step::Immediate(on) => immediate = *on,
                            s if immediate && s.commits() => last_synced = i + 1,
                            _ => {}
                        }
                    }
                    Err(e) => {
                        let Some(plan) = plan else {
                            return Err(format!("fault-free step {i} {step:?} failed: {e}"));
                        };
                        if !ctl.fired() {
                            return Err(format!("step {i} {step:?} failed without a fault: {e}"));
                        }
                        expect_injected(&e, plan).map_err(|m| format!("step {i} {step:?}: {m}"))?;
                        if let Some(old_file) = old_file {
                            // The fault hit compaction's copy (compaction writes no other
                            // file): the old file is untouched and the handle keeps working
                            // on it. Observed: a failed compaction never poisons the handle,
                            // also when the fault is permanent and several compactions fail.
                            if !fired_before && ctl.first_instance() == Some(0) {
                                return Err("compaction failed in a call on the old file".into());
                            }
                            if fs::read(path).map_err(|e| e.to_string())? != old_file {
                                return Err("a failed compaction changed the old file".into());
                            }
                            let shown = t.observe().map_err(|e| e.to_string())?;
                            if !states[i].matches(&shown) {
                                return Err(
                                    "a failed compaction changed what the handle shows".into()
                                );
                            }
                            t.verify()?;
                            compaction_fault = true;
                            stats.in_compaction += 1;
                            continue;
                        }
                        let shown = t
                            .observe()
                            .map_err(|e| format!("read after the error: {e}"))?;
                        // The handle shows the commit before the step, or (a failed fsync
                        // after the slot write, `Immediate`) the one the step made.
                        let Some(si) = [i + 1, i].into_iter().find(|&c| states[c].matches(&shown))
                        else {
                            return Err(format!(
                                "after the failed step {i} the handle shows neither commit: {}",
                                diff(w, &states[i], &shown)
                            ));
                        };
                        t.expect_poisoned(w)
                            .map_err(|m| format!("step {i} {step:?}: {m}"))?;
                        failed = Some((i, si));
                        break;
                    }
                }
            }
            let fired_in_steps = ctl.fired();
            drop(t); // a read-write handle syncs on drop unless poisoned
            if compaction_fault && failed.is_none() {
                stats.usable_after_compaction += 1;
            }
            match failed {
                Some((i, shown)) => {
                    stats.in_steps += 1;
                    (last_synced, i + 1, vec![shown])
                }
                None => {
                    if ctl.fired() && !fired_in_steps {
                        stats.in_drop += 1;
                    }
                    (last_synced, n, vec![n])
                }
            }
        }
    };
    if plan.is_some() && !ctl.fired() {
        return Err("the fault was never reached".into());
    }
    stats.calls_failed += ctl.failed_calls();
    let dir = path.parent().expect("a directory");
    let left = strays(dir);
    if !left.is_empty() {
        return Err(format!("temporary files left behind: {left:?}"));
    }
    // After a clean error (nothing written) the file shows what the handle showed; a
    // short write may tear the slot page holding the newest unsynced commit, so then only
    // the bounds hold (at least the last synced commit, at most the one begun).
    let allowed: Vec<usize> = if clean { exact } else { (lo..=hi).collect() };
    let ro = Target::open(w.kind, path, false).map_err(|e| format!("reopen failed: {e}"))?;
    let o = ro
        .observe()
        .map_err(|e| format!("reading the reopened file: {e}"))?;
    let c = allowed
        .iter()
        .rev()
        .copied()
        .find(|&c| states[c].matches(&o))
        .ok_or_else(|| {
            format!(
                "the reopened file shows none of the commits {allowed:?}: {}",
                diff(w, &states[hi], &o)
            )
        })?;
    ro.verify().map_err(|e| format!("reopened: {e}"))?;
    drop(ro);
    if !clean && hi > 0 && c < hi - 1 {
        stats.short_fallbacks += 1;
    }
    let rw =
        Target::open(w.kind, path, true).map_err(|e| format!("read-write reopen failed: {e}"))?;
    let o = rw.observe().map_err(|e| e.to_string())?;
    if !states[c].matches(&o) {
        return Err(format!("read-write reopen: {}", diff(w, &states[c], &o)));
    }
    rw.verify().map_err(|e| format!("read-write reopen: {e}"))?;
    Ok(ctl.counts())
}

fn io_error_countdown(kind: Kind) {
    let started = Instant::now();
    let dir = scratch();
    let mut stats = FaultStats::default();
    let mut failures = Failures::default();
    for (wi, w) in workloads(kind).into_iter().enumerate() {
        let (base, states) = prepare(&w, dir.path());
        let path = dir.path().join(format!("{}-fault.cimg", w.name));
        let counts = run_fault(&w, &base, &path, &states, None, &mut FaultStats::default())
            .unwrap_or_else(|m| panic!("{}: fault-free run: {m}", w.name));
        if wi == 0 {
            assert!(
                counts.iter().all(|&c| c > 0),
                "{}: calls {counts:?}",
                w.name
            );
        }
        let before = stats.runs;
        for op in [Op::Write, Op::SetLen, Op::Sync] {
            let errs: &[FErr] = if op == Op::Write {
                &[FErr::Eio, FErr::Enospc, FErr::Short]
            } else {
                &[FErr::Eio, FErr::Enospc]
            };
            for &err in errs {
                for forever in [false, true] {
                    for k in 0..counts[op as usize] {
                        let plan = Plan {
                            op,
                            k,
                            err,
                            forever,
                        };
                        stats.runs += 1;
                        let r = catch_unwind(AssertUnwindSafe(|| {
                            run_fault(&w, &base, &path, &states, Some(plan), &mut stats)
                        }))
                        .unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&*p))));
                        if let Err(m) = r {
                            failures.push(format!("{} {plan:?}: {m}", w.name));
                        }
                    }
                }
            }
        }
        println!(
            "I/O error countdown [{}]: {} writes, {} set_len, {} fsyncs per run; {} faults \
             injected",
            w.name,
            counts[0],
            counts[1],
            counts[2],
            stats.runs - before
        );
    }
    println!(
        "I/O error countdown total [{kind:?}{}]: {} faults injected ({} failing calls): {} \
         in open, {} in a step (handle poisoned), {} failed compactions (old file untouched, \
         handle not poisoned; {} runs went on to finish the workload on it), {} in the sync \
         on drop (ignored); {} short writes tore the slot page of the newest unsynced commit \
         and the reopen fell back to an older commit; {:.1} s",
        if config().long { ", long" } else { "" },
        stats.runs,
        stats.calls_failed,
        stats.in_open,
        stats.in_steps,
        stats.in_compaction,
        stats.usable_after_compaction,
        stats.in_drop,
        stats.short_fallbacks,
        started.elapsed().as_secs_f64()
    );
    failures.assert_none("I/O error countdown");
}

#[test]
fn io_error_at_every_call_of_channel_workloads_surfaces_poisons_and_keeps_a_valid_commit() {
    io_error_countdown(Kind::Channel);
}

#[test]
fn io_error_at_every_call_of_image_workloads_surfaces_poisons_and_keeps_a_valid_commit() {
    io_error_countdown(Kind::Image);
}

/// Open the crash image `img` (which opens at `o`) read-write with `plan`'s fault in the
/// recovery: the open must fail with the injected `Error::Io`, the file must still open
/// read-only, read-write and read-only again at the same commit, and `verify()`.
fn check_open_fault(
    rec: &Rec,
    file: &Path,
    img: &[u8],
    o: &Opened,
    plan: Plan,
) -> std::result::Result<(), String> {
    let w = &rec.w;
    write_image(file, img)?;
    let ctl = Fault::new([plan.fault()]);
    match Target::open_with(w.kind, file, fault::wrap(&ctl)) {
        Ok(_) => return Err("the open succeeded".into()),
        Err(e) => expect_injected(&e, plan)?,
    }
    if !ctl.fired() {
        return Err("the fault was not reached".into());
    }
    // A failed fsync or a clean failed write changes nothing; a short write leaves half a
    // marker in the page that does not hold the chosen commit.
    let after = fs::read(file).map_err(|e| e.to_string())?;
    if (plan.op == Op::Sync || plan.err != FErr::Short) && after != img {
        return Err("a failed call changed the file".into());
    }
    for writable in [false, true, false] {
        let t = Target::open(w.kind, file, writable)
            .map_err(|e| format!("open (writable {writable}): {e}"))?;
        let seen = t.observe().map_err(|e| e.to_string())?;
        if !rec.states[o.state].matches(&seen) || seen.generation < o.generation {
            return Err(format!(
                "open (writable {writable}) shows generation {} and {}, expected commit {} \
                 (generation {})",
                seen.generation,
                diff(w, &rec.states[o.state], &seen),
                o.state,
                o.generation
            ));
        }
        t.verify()?;
    }
    Ok(())
}

/// A read-write open of a file left by a crash with unsynced data fsyncs it and writes a
/// marker. If that fsync or that write fails, the open returns `Error::Io` and the file
/// still opens afterwards, at the same commit.
#[test]
fn io_error_while_recovering_a_crashed_file_fails_the_open_and_keeps_the_commit() {
    let cfg = config();
    let dir = scratch();
    let mut images = 0;
    let mut faults = 0;
    let mut failures = Failures::default();
    for kind in [Kind::Channel, Kind::Image] {
        for w in workloads(kind) {
            let rec = record(&w, dir.path());
            let file = dir.path().join(format!("{}-reopen.cimg", w.name));
            let mut rng = seeded_rng(cfg.seed ^ 0x0FE4 ^ digest(w.name.as_bytes()));
            let mut ks: Vec<usize> = (0..=rec.log.len()).collect();
            rng.shuffle(&mut ks);
            // Crash images whose chosen commit is not yet marked durable.
            let mut found = Vec::new();
            for k in ks {
                if found.len() >= cfg.open_fault_images {
                    break;
                }
                let inst = *rec.instances_at(k).last().expect("a file");
                let p = rec.point(inst, k);
                if p.pending.is_empty() {
                    continue;
                }
                let mut img = p.durable.clone();
                for op in &p.pending {
                    if rng.chance(2, 3) {
                        apply(&mut img, op, false);
                    }
                }
                let Ok(o) = check_caught(&rec, &file, &img, &p.b, None, (false, None)) else {
                    continue; // the sweep reports it
                };
                let chosen = (0..2)
                    .filter_map(|pg| decode_slot(&img, pg))
                    .find(|s| s.generation == o.generation)
                    .expect("the chosen slot");
                if chosen.durable_end < chosen.committed_end {
                    found.push((k, img, o));
                }
            }
            for (k, img, o) in found {
                images += 1;
                for (op, err) in [
                    (Op::Sync, FErr::Eio),
                    (Op::Sync, FErr::Enospc),
                    (Op::Write, FErr::Eio),
                    (Op::Write, FErr::Enospc),
                    (Op::Write, FErr::Short),
                ] {
                    for forever in [false, true] {
                        faults += 1;
                        let plan = Plan {
                            op,
                            k: 0,
                            err,
                            forever,
                        };
                        let r = catch_unwind(AssertUnwindSafe(|| {
                            check_open_fault(&rec, &file, &img, &o, plan)
                        }))
                        .unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&*p))));
                        if let Err(m) = r {
                            failures.push(format!("{} crash point {k} {plan:?}: {m}", w.name));
                        }
                    }
                }
            }
        }
    }
    println!(
        "faults while recovering a crashed file: {images} crash images with unsynced data, \
         {faults} faults injected (first fsync or first write; EIO, ENOSPC, short; once or \
         forever)"
    );
    assert!(images > 0, "no crash image needed recovery");
    failures.assert_none("faults during recovery");
}
