//! Workloads (scripted and seeded random ones) and the reference model of what each commit
//! shows.

use std::ops::Range;

use compressed_image::Settings;
use serde_json::{Value, json};

use crate::common::rng::Rng;
use crate::{config, seeded_rng};

pub const NEG_ZERO: u32 = 0x8000_0000;
pub const QNAN_PAYLOAD: u32 = 0x7FC0_0042;
pub const SNAN_PAYLOAD: u32 = 0x7FA0_1234;
pub const ONE: u32 = 0x3F80_0000;
pub const CONSTS: [u32; 6] = [0, NEG_ZERO, QNAN_PAYLOAD, SNAN_PAYLOAD, ONE, 0xFF80_0000];

/// Contents of a chunk (or a whole channel), as f32 bits.
#[derive(Debug, Clone, Copy)]
pub enum Data {
    /// Incompressible, never constant.
    Noise(u64),
    /// Compressible, never constant.
    Ramp(u64),
    /// Every element has these bits: stored as a fill entry.
    Const(u32),
}

#[derive(Debug, Clone)]
pub enum Step {
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
    pub fn commits(&self) -> bool {
        match self {
            Step::Batch { commit, .. } => *commit,
            Step::Sync | Step::Immediate(_) | Step::Compact => false,
            _ => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A channel file, through `Channel<f32>`.
    Channel,
    /// An image file, through `Image<f32>`.
    Image,
}

#[derive(Clone)]
pub struct Workload {
    pub name: String,
    pub kind: Kind,
    pub width: usize,
    pub height: usize,
    pub rows: usize,
    /// Fill of a new channel file.
    pub fill: u32,
    /// Applied normally when the base file is made.
    pub base: Vec<Step>,
    /// Applied through the wrapped backend.
    pub steps: Vec<Step>,
}

impl Workload {
    pub fn chunk_bytes(&self) -> usize {
        self.width * self.rows * 4
    }
    pub fn n_chunks(&self) -> usize {
        self.height.div_ceil(self.rows)
    }
    pub fn range(&self, i: usize) -> Range<usize> {
        let cb = self.chunk_bytes();
        i * cb..((i + 1) * cb).min(self.width * self.height * 4)
    }
    pub fn settings(&self) -> Settings {
        Settings::default().chunk_size(self.chunk_bytes())
    }
    pub fn bits(&self, d: Data, n: usize, salt: u64) -> Vec<u32> {
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
    pub fn chunk(&self, d: Data, i: usize) -> Vec<f32> {
        let bits = self.bits(d, self.range(i).len() / 4, i as u64 + 1);
        bytemuck::cast_slice(&bits).to_vec()
    }
    /// Elements of a whole channel.
    pub fn channel(&self, seed: u64) -> Vec<f32> {
        let bits = self.bits(Data::Noise(seed), self.width * self.height, 0);
        bytemuck::cast_slice(&bits).to_vec()
    }
}

/// Everything a commit shows: channel bytes, names, metadata.
#[derive(Clone, PartialEq)]
pub struct State {
    pub channels: Vec<Vec<u8>>,
    pub names_present: bool,
    pub names: Vec<String>,
    pub meta: Value,
}

impl State {
    pub fn initial(w: &Workload) -> State {
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

    pub fn shown_names(&self) -> Vec<String> {
        if self.names_present {
            self.names.clone()
        } else {
            Vec::new()
        }
    }

    pub fn matches(&self, o: &Observed) -> bool {
        self.channels == o.channels && self.shown_names() == o.names && self.meta == o.meta
    }

    /// The model after `step` (which must be valid for this state).
    pub fn after(&self, w: &Workload, step: &Step) -> State {
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
pub struct Observed {
    pub generation: u64,
    pub channels: Vec<Vec<u8>>,
    pub names: Vec<String>,
    pub meta: Value,
}

/// Where `o` differs from `s`, chunk by chunk.
pub fn diff(w: &Workload, s: &State, o: &Observed) -> String {
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
pub fn scripted_channel() -> Workload {
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
pub fn scripted_image() -> Workload {
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

pub fn random_data(rng: &mut Rng, n: u64) -> Data {
    match rng.below(6) {
        0..=2 => Data::Noise(n),
        3 => Data::Ramp(n),
        _ => Data::Const(CONSTS[rng.below(CONSTS.len())]),
    }
}

pub fn random_writes(rng: &mut Rng, w: &Workload, n: &mut u64, max: usize) -> Vec<(usize, Data)> {
    (0..1 + rng.below(max))
        .map(|_| {
            *n += 1;
            (rng.below(w.n_chunks()), random_data(rng, *n))
        })
        .collect()
}

pub fn random_step(
    rng: &mut Rng,
    w: &Workload,
    s: &State,
    immediate: &mut bool,
    n: &mut u64,
) -> Step {
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

pub fn random_workload(kind: Kind, seed: u64, steps: usize) -> Workload {
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
pub fn workloads(kind: Kind) -> Vec<Workload> {
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
