//! Model-based tests: proptest generates random sequences of 1–40 operations on an image
//! (anonymous from `Image::new`/`Image::from_channels`, or a file from `Image::create`) or on
//! a standalone `Channel<T>` (anonymous or a file), applies each to the library and to a
//! plain in-memory model (ordered channels of raw chunk bytes with a lazy flag, names and
//! JSON metadata), and after every operation compares everything the handles can observe
//! with the model, bit for bit: every chunk, the whole channel and row windows, lazy flags,
//! geometry and settings, names and metadata, `compressed_bytes` (a lazy chunk counts one
//! element, a blob the length the same bytes compress to with the same settings in a fresh
//! thread), the live/dead space accounting of SPEC §12 record by record, and a clean
//! `verify()`. The operations are chunk writes (random, compressible, constant — which must
//! be stored lazily, NaN payloads, −0.0 and f16 specials included — and short last chunks),
//! batches committed or dropped, `update_chunks` over a random subset, adding and removing
//! channels (removed handles must return `ChannelRemoved`), names, metadata, `sync`,
//! dropping and reopening the file, read-only handles that keep their snapshot until
//! `refresh`, compaction, `save_as` copies, durability and automatic compaction, and invalid
//! calls that must fail with the documented error and change nothing (not even the file's
//! bytes). Every element type runs the image and the channel state machines.
//!
//! The default run keeps CI short (64 cases per state machine and element type);
//! `PROPTEST_CASES=2000 cargo test --release --test model` runs a long one. A failure is
//! shrunk to a minimal operation sequence and recorded in `tests/model.proptest-regressions`.
//! Two plain tests at the end pin the first bugs the state machines found.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use compressed_image::{
    AnyChannel, AutoCompact, Channel, Codec, Durability, Error, Image, Sample, Settings, Stats,
    f16, inspect,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

mod common;

use common::format::{HEADER, REGION_START, align64};
use common::model::{ImageChannel, ImageModel, uniform};
use common::rng::Rng;

// ---------------------------------------------------------------------------------------
// Assertions that report through proptest (so failures shrink quietly)
// ---------------------------------------------------------------------------------------

type TestResult<V = ()> = Result<V, TestCaseError>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!(
                "{}: `{}` is false",
                format!($($fmt)+),
                stringify!($cond)
            )));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr, $($fmt:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(TestCaseError::fail(format!(
                "{}: {} = {:?}, expected {} = {:?}",
                format!($($fmt)+),
                stringify!($a),
                a,
                stringify!($b),
                b
            )));
        }
    }};
}

/// `$e` (a `Result`) must be an `Err` matching `$p`.
macro_rules! expect_err {
    ($e:expr, $p:pat, $($fmt:tt)+) => {
        match ($e).map(|_| ()) {
            Err($p) => {}
            other => {
                return Err(TestCaseError::fail(format!(
                    "{}: `{}` gave {:?}, expected Err({})",
                    format!($($fmt)+),
                    stringify!($e),
                    other,
                    stringify!($p)
                )))
            }
        }
    };
}

/// Library errors where success was expected become test failures.
trait Ctx<V> {
    fn ctx(self, what: &str) -> TestResult<V>;
}

impl<V> Ctx<V> for compressed_image::Result<V> {
    fn ctx(self, what: &str) -> TestResult<V> {
        self.map_err(|e| TestCaseError::fail(format!("{what}: unexpected error {e:?} ({e})")))
    }
}

/// Byte-exact comparison that names the first differing byte.
fn same_bytes(got: &[u8], want: &[u8], what: &str) -> TestResult {
    if got.len() != want.len() {
        return Err(TestCaseError::fail(format!(
            "{what}: {} bytes, expected {}",
            got.len(),
            want.len()
        )));
    }
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        return Err(TestCaseError::fail(format!(
            "{what}: byte {at} is {:#04x}, expected {:#04x} (of {})",
            got[at],
            want[at],
            got.len()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Element types and generated data
// ---------------------------------------------------------------------------------------

/// An element type with bit patterns worth testing.
trait Elem: Sample {
    /// Little-endian bit patterns (NaN payloads, −0.0, infinities, subnormals, extremes).
    const SPECIALS: &'static [u64];
    /// A small, compressible value.
    fn small(v: i32) -> Self;
}

const INT8: &[u64] = &[0, 1, 0x7f, 0x80, 0xff];
const INT16: &[u64] = &[0, 1, 0x7fff, 0x8000, 0xffff, 0x0100];
const INT32: &[u64] = &[0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x0001_0000];

impl Elem for u8 {
    const SPECIALS: &'static [u64] = INT8;
    fn small(v: i32) -> Self {
        v as u8
    }
}
impl Elem for i8 {
    const SPECIALS: &'static [u64] = INT8;
    fn small(v: i32) -> Self {
        v as i8
    }
}
impl Elem for u16 {
    const SPECIALS: &'static [u64] = INT16;
    fn small(v: i32) -> Self {
        v as u16
    }
}
impl Elem for i16 {
    const SPECIALS: &'static [u64] = INT16;
    fn small(v: i32) -> Self {
        v as i16
    }
}
impl Elem for u32 {
    const SPECIALS: &'static [u64] = INT32;
    fn small(v: i32) -> Self {
        v as u32
    }
}
impl Elem for i32 {
    const SPECIALS: &'static [u64] = INT32;
    fn small(v: i32) -> Self {
        v
    }
}
impl Elem for f16 {
    // +0, −0, 1, ±inf, quiet NaN, NaN payloads (positive, negative), signalling NaN,
    // ±smallest subnormal, largest finite.
    const SPECIALS: &'static [u64] = &[
        0x0000, 0x8000, 0x3c00, 0x7c00, 0xfc00, 0x7e00, 0x7e01, 0xfe5a, 0x7d00, 0x0001, 0x8001,
        0x7bff,
    ];
    fn small(v: i32) -> Self {
        f16::from_f32(v as f32 * 0.5)
    }
}
impl Elem for f32 {
    const SPECIALS: &'static [u64] = &[
        0,
        0x8000_0000,
        0x3f80_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x7fc0_1234,
        0xffc0_abcd,
        0x7f80_0001,
        0x0000_0001,
        0x8000_0001,
        0x7f7f_ffff,
    ];
    fn small(v: i32) -> Self {
        v as f32 * 0.25
    }
}
impl Elem for f64 {
    const SPECIALS: &'static [u64] = &[
        0,
        0x8000_0000_0000_0000,
        0x3ff0_0000_0000_0000,
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        0x7ff8_0000_0000_0000,
        0x7ff8_0000_0000_1234,
        0xfff8_dead_beef_0001,
        0x7ff0_0000_0000_0001,
        0x0000_0000_0000_0001,
        0x8000_0000_0000_0001,
        0x7fef_ffff_ffff_ffff,
    ];
    fn small(v: i32) -> Self {
        f64::from(v) * 0.125
    }
}

/// One element value.
#[derive(Clone, Debug)]
enum Val {
    /// One of [`Elem::SPECIALS`].
    Special(Index),
    /// Arbitrary bits, truncated to the element size.
    Bits(u64),
}

impl Val {
    fn bits<T: Elem>(&self) -> u64 {
        match self {
            Val::Special(i) => T::SPECIALS[i.index(T::SPECIALS.len())],
            Val::Bits(b) => *b,
        }
    }
}

/// The contents of one chunk.
#[derive(Clone, Debug)]
enum Data {
    /// Random bits (incompressible; floats include NaNs with payloads).
    Noise(u64),
    /// A compressible ramp.
    Smooth(u64),
    /// A random mix of special values.
    Specials(u64),
    /// Every element the same: must be stored lazily.
    Const(Val),
    /// Constant but for one element (lazy only when both are bitwise equal).
    OneOff { base: Val, other: Val, at: Index },
}

/// How a chunk is modified inside `update_chunks`.
#[derive(Clone, Debug)]
enum Edit {
    Replace(Data),
    Poke {
        at: Index,
        val: Val,
    },
    /// `data_mut` without a change: the chunk is written back as it is.
    Touch,
}

fn elem_bytes<T: Elem>(bits: u64) -> Vec<u8> {
    bits.to_le_bytes()[..size_of::<T>()].to_vec()
}

fn from_bits<T: Elem>(bits: u64) -> T {
    bytemuck::pod_read_unaligned(&bits.to_le_bytes()[..size_of::<T>()])
}

/// `n` elements of `data` as little-endian bytes; `salt` varies seeded contents.
fn gen_bytes<T: Elem>(data: &Data, n: usize, salt: u64) -> Vec<u8> {
    let size = size_of::<T>();
    let mut out = Vec::with_capacity(n * size);
    let salted = salt.wrapping_mul(0x2545_F491_4F6C_DD1D);
    match data {
        Data::Noise(seed) => {
            let mut rng = Rng::new(salted ^ seed);
            for _ in 0..n {
                out.extend_from_slice(&rng.next().to_le_bytes()[..size]);
            }
        }
        Data::Smooth(seed) => {
            let offset = (seed % 97) as i32 + (salt % 13) as i32;
            for k in 0..n {
                out.extend_from_slice(bytemuck::bytes_of(&T::small(k as i32 / 3 + offset)));
            }
        }
        Data::Specials(seed) => {
            let mut rng = Rng::new(salted ^ seed);
            for _ in 0..n {
                let pick = rng.below(T::SPECIALS.len());
                out.extend_from_slice(&elem_bytes::<T>(T::SPECIALS[pick]));
            }
        }
        Data::Const(v) => {
            let e = elem_bytes::<T>(v.bits::<T>());
            for _ in 0..n {
                out.extend_from_slice(&e);
            }
        }
        Data::OneOff { base, other, at } => {
            let e = elem_bytes::<T>(base.bits::<T>());
            for _ in 0..n {
                out.extend_from_slice(&e);
            }
            let at = at.index(n) * size;
            out[at..at + size].copy_from_slice(&elem_bytes::<T>(other.bits::<T>()));
        }
    }
    out
}

fn to_elems<T: Sample>(bytes: &[u8]) -> Vec<T> {
    let mut out = vec![zeroed::<T>(); bytes.len() / size_of::<T>()];
    bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(bytes);
    out
}

fn as_bytes<T: Sample>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

fn zeroed<T: Sample>() -> T {
    bytemuck::Zeroable::zeroed()
}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

/// Requested compression settings; `rows == 0` keeps the default 4 MiB chunk (one chunk
/// for these small channels), otherwise the chunk size is `rows` scanlines plus `extra`
/// bytes less than one more scanline.
#[derive(Clone, Debug)]
struct SettingsSpec {
    codec: Index,
    level: u8,
    block: Index,
    rows: usize,
    extra: usize,
}

const BLOCKS: [usize; 7] = [0, 8, 16, 40, 256, 4096, 32 * 1024];

impl SettingsSpec {
    /// The settings and the rows per chunk the geometry rules give (SPEC §5.2).
    fn build(&self, width: usize, height: usize, size: usize) -> (Settings, usize) {
        let base = Settings::default()
            .codec(Codec::ALL[self.codec.index(Codec::ALL.len())])
            .level(self.level)
            .block_size(BLOCKS[self.block.index(BLOCKS.len())]);
        if self.rows == 0 {
            return (base, height);
        }
        let row = width * size;
        (
            base.chunk_size(self.rows * row + self.extra % row),
            self.rows.min(height),
        )
    }
}

/// A chunk's share of `compressed_bytes` when compressed single- and multi-threaded.
type Len = (usize, usize);

/// Every total of `fixed` plus one of the two lengths of each item.
fn sums(fixed: usize, items: &[Len]) -> BTreeSet<usize> {
    let mut out = BTreeSet::from([fixed]);
    for &(a, b) in items {
        out = out.iter().flat_map(|s| [s + a, s + b]).collect();
    }
    out
}

/// Each chunk's share of `compressed_bytes`: one element for a lazy chunk, else the blob
/// length, as c-blosc2 compresses the chunk single-threaded and multi-threaded (the two
/// may differ by a few bytes; the library uses either).
type Stored = Vec<Len>;

/// A channel of the model, with its chunks' shares of `compressed_bytes`.
type MChan = ImageChannel<Stored>;

type Model = ImageModel<Stored>;

impl Model {
    /// The shares of a lazy channel: one element per chunk.
    fn lazy_stored(&self, rows: usize) -> Stored {
        vec![(self.size, self.size); self.height.div_ceil(rows)]
    }

    /// The possible live byte counts as SPEC §12 defines them: the catalog, the metadata,
    /// every table and every blob the commit references, each rounded up to 64 bytes with
    /// its header.
    fn live_bytes(&self) -> BTreeSet<usize> {
        let rec = |payload: usize| align64(HEADER + payload);
        let names: usize = self.channels.iter().map(|c| c.name.len()).sum();
        let mut fixed = rec(64 + 64 * self.channels.len() + names);
        if !self.meta.is_null() {
            fixed += rec(self.meta.to_string().len());
        }
        let mut blobs = Vec::new();
        for c in &self.channels {
            if c.has_table {
                fixed += rec(32 * c.chunks.len());
            }
            for (lazy, (serial, parallel)) in c.lazy.iter().zip(&c.extra) {
                if !lazy {
                    blobs.push((rec(*serial), rec(*parallel)));
                }
            }
        }
        sums(fixed, &blobs)
    }
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum AddContent {
    /// Whole-channel data; chunk `i` gets `specs[i % len]`.
    Data(Vec<Data>),
    /// `add_lazy_channel` with this fill value.
    Lazy(Val),
}

#[derive(Clone, Debug)]
struct AddSpec {
    content: AddContent,
    name: Option<String>,
    settings: SettingsSpec,
}

#[derive(Clone, Debug)]
enum BadWrite {
    WrongLen { idx: Index, delta: i8 },
    OutOfRange { extra: u8 },
}

#[derive(Clone, Debug)]
enum SettingsFault {
    Level(u8),
    ChunkBelowRow,
    BlockTooBig,
}

/// Calls that must fail and change nothing.
#[derive(Clone, Debug)]
enum Bad {
    WrongLen { ch: Index, idx: Index, delta: i8 },
    OutOfRange { ch: Index, extra: u8 },
    ReadWrongLen { ch: Index, idx: Index, delta: i8 },
    Rows { ch: Index },
    ChannelOutOfRange { extra: u8 },
    AddWrongLen { delta: i8, name: Option<String> },
    Settings { kind: SettingsFault, lazy: bool },
    NamesWrongCount { more: bool },
    UnknownName(String),
    SecondWriter,
    ReaderWrites,
    WrongDtype,
    ZeroThreads,
}

#[derive(Clone, Debug)]
enum Op {
    SetChunk {
        ch: Index,
        idx: Index,
        data: Data,
    },
    SetLastChunk {
        ch: Index,
        data: Data,
    },
    Batch {
        ch: Index,
        writes: Vec<(Index, Data)>,
        bad: Option<BadWrite>,
        probe: bool,
        commit: bool,
    },
    Update {
        ch: Index,
        mask: u64,
        edits: Vec<Edit>,
        fail_at: Option<Index>,
    },
    Add(AddSpec),
    Remove {
        ch: Index,
    },
    RemoveByName {
        pick: Option<Index>,
        name: String,
    },
    SetNames(Vec<String>),
    SetMetadata(Value),
    ReadRows {
        ch: Index,
        first: Index,
        count: usize,
    },
    Sync,
    Reopen,
    OpenReader,
    RefreshReader,
    Compact,
    SaveAs {
        rw: bool,
    },
    SaveChannelAs {
        ch: Index,
    },
    Durability {
        immediate: bool,
    },
    AutoCompact {
        on: bool,
    },
    Invalid(Bad),
}

/// What an operation does to the file's generation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Gen {
    /// No commit: the generation stays.
    Same,
    /// A commit: the generation grows.
    Grows,
    /// It may grow (a sync or an open may write a marker slot).
    Any,
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

fn val_strategy() -> BoxedStrategy<Val> {
    prop_oneof![
        3 => any::<Index>().prop_map(Val::Special),
        1 => any::<u64>().prop_map(Val::Bits),
    ]
    .boxed()
}

fn data_strategy() -> BoxedStrategy<Data> {
    prop_oneof![
        3 => any::<u64>().prop_map(Data::Noise),
        2 => any::<u64>().prop_map(Data::Smooth),
        2 => any::<u64>().prop_map(Data::Specials),
        3 => val_strategy().prop_map(Data::Const),
        2 => (val_strategy(), val_strategy(), any::<Index>())
            .prop_map(|(base, other, at)| Data::OneOff { base, other, at }),
    ]
    .boxed()
}

fn edit_strategy() -> BoxedStrategy<Edit> {
    prop_oneof![
        2 => data_strategy().prop_map(Edit::Replace),
        2 => (any::<Index>(), val_strategy()).prop_map(|(at, val)| Edit::Poke { at, val }),
        1 => Just(Edit::Touch),
    ]
    .boxed()
}

fn settings_strategy() -> BoxedStrategy<SettingsSpec> {
    (
        any::<Index>(),
        0u8..=9,
        any::<Index>(),
        0usize..=24,
        0usize..64,
    )
        .prop_map(|(codec, level, block, rows, extra)| SettingsSpec {
            codec,
            level,
            block,
            rows,
            extra,
        })
        .boxed()
}

/// Short names from a tiny alphabet, so that empty and repeated names are common.
fn name_strategy() -> BoxedStrategy<String> {
    "[aé ]{0,2}".boxed()
}

fn add_strategy() -> BoxedStrategy<AddSpec> {
    (
        prop_oneof![
            3 => prop::collection::vec(data_strategy(), 1..4).prop_map(AddContent::Data),
            1 => val_strategy().prop_map(AddContent::Lazy),
        ],
        prop::option::of(name_strategy()),
        settings_strategy(),
    )
        .prop_map(|(content, name, settings)| AddSpec {
            content,
            name,
            settings,
        })
        .boxed()
}

/// Small JSON values. Numbers are integers or eighths, which every JSON parser reads back
/// exactly.
fn json_strategy() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|u| json!(u)),
        (-8000i32..8000).prop_map(|k| json!(f64::from(k) / 8.0)),
        "(\\PC|[\\x00-\\x1f\"\\\\]){0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z\"]{0,3}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

fn delta_strategy() -> BoxedStrategy<i8> {
    prop_oneof![-3i8..0, 1i8..=3].boxed()
}

fn settings_fault_strategy() -> BoxedStrategy<SettingsFault> {
    prop_oneof![
        2 => (10u8..=255).prop_map(SettingsFault::Level),
        1 => Just(SettingsFault::ChunkBelowRow),
        1 => Just(SettingsFault::BlockTooBig),
    ]
    .boxed()
}

fn bad_strategy(image: bool) -> BoxedStrategy<Bad> {
    let common = prop_oneof![
        (any::<Index>(), any::<Index>(), delta_strategy())
            .prop_map(|(ch, idx, delta)| Bad::WrongLen { ch, idx, delta }),
        (any::<Index>(), 0u8..3).prop_map(|(ch, extra)| Bad::OutOfRange { ch, extra }),
        (any::<Index>(), any::<Index>(), delta_strategy())
            .prop_map(|(ch, idx, delta)| Bad::ReadWrongLen { ch, idx, delta }),
        any::<Index>().prop_map(|ch| Bad::Rows { ch }),
        (settings_fault_strategy(), any::<bool>())
            .prop_map(|(kind, lazy)| Bad::Settings { kind, lazy }),
        Just(Bad::SecondWriter),
        Just(Bad::ReaderWrites),
        Just(Bad::WrongDtype),
        Just(Bad::ZeroThreads),
    ];
    if !image {
        return common.boxed();
    }
    prop_oneof![
        9 => common,
        1 => (0u8..3).prop_map(|extra| Bad::ChannelOutOfRange { extra }),
        1 => (delta_strategy(), prop::option::of(name_strategy()))
            .prop_map(|(delta, name)| Bad::AddWrongLen { delta, name }),
        1 => any::<bool>().prop_map(|more| Bad::NamesWrongCount { more }),
        1 => name_strategy().prop_map(Bad::UnknownName),
    ]
    .boxed()
}

fn op_strategy(image: bool) -> BoxedStrategy<Op> {
    let idx = || any::<Index>();
    let mut arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            8,
            (idx(), idx(), data_strategy())
                .prop_map(|(ch, idx, data)| Op::SetChunk { ch, idx, data })
                .boxed(),
        ),
        (
            2,
            (idx(), data_strategy())
                .prop_map(|(ch, data)| Op::SetLastChunk { ch, data })
                .boxed(),
        ),
        (
            4,
            (
                idx(),
                prop::collection::vec((idx(), data_strategy()), 0..6),
                prop::option::weighted(
                    0.2,
                    prop_oneof![
                        (idx(), delta_strategy())
                            .prop_map(|(idx, delta)| BadWrite::WrongLen { idx, delta }),
                        (0u8..3).prop_map(|extra| BadWrite::OutOfRange { extra }),
                    ],
                ),
                prop::bool::weighted(0.3),
                prop::bool::weighted(0.8),
            )
                .prop_map(|(ch, writes, bad, probe, commit)| Op::Batch {
                    ch,
                    writes,
                    bad,
                    probe,
                    commit,
                })
                .boxed(),
        ),
        (
            3,
            (
                idx(),
                any::<u64>(),
                prop::collection::vec(edit_strategy(), 1..3),
                prop::option::weighted(0.15, idx()),
            )
                .prop_map(|(ch, mask, edits, fail_at)| Op::Update {
                    ch,
                    mask,
                    edits,
                    fail_at,
                })
                .boxed(),
        ),
        (
            2,
            (idx(), idx(), 0usize..=22)
                .prop_map(|(ch, first, count)| Op::ReadRows { ch, first, count })
                .boxed(),
        ),
        (1, Just(Op::Sync).boxed()),
        (2, Just(Op::Reopen).boxed()),
        (2, Just(Op::OpenReader).boxed()),
        (2, Just(Op::RefreshReader).boxed()),
        (2, Just(Op::Compact).boxed()),
        (1, any::<bool>().prop_map(|rw| Op::SaveAs { rw }).boxed()),
        (
            1,
            any::<bool>()
                .prop_map(|immediate| Op::Durability { immediate })
                .boxed(),
        ),
        (
            1,
            prop::bool::weighted(0.3)
                .prop_map(|on| Op::AutoCompact { on })
                .boxed(),
        ),
        (4, bad_strategy(image).prop_map(Op::Invalid).boxed()),
    ];
    if image {
        arms.extend([
            (3, add_strategy().prop_map(Op::Add).boxed()),
            (2, idx().prop_map(|ch| Op::Remove { ch }).boxed()),
            (
                1,
                (prop::option::of(idx()), name_strategy())
                    .prop_map(|(pick, name)| Op::RemoveByName { pick, name })
                    .boxed(),
            ),
            (
                2,
                prop::collection::vec(name_strategy(), 0..5)
                    .prop_map(Op::SetNames)
                    .boxed(),
            ),
            (2, json_strategy().prop_map(Op::SetMetadata).boxed()),
            (1, idx().prop_map(|ch| Op::SaveChannelAs { ch }).boxed()),
        ]);
    }
    proptest::strategy::Union::new_weighted(arms).boxed()
}

#[derive(Clone, Debug)]
struct ImageCase {
    width: usize,
    height: usize,
    file: bool,
    /// Build the initial channels with `Image::from_channels` (anonymous images only).
    from_channels: bool,
    initial: Vec<AddSpec>,
    ops: Vec<Op>,
}

#[derive(Clone, Debug)]
enum Init {
    Data(Vec<Data>),
    Full(Val),
    Zeros,
}

#[derive(Clone, Debug)]
struct ChannelCase {
    width: usize,
    height: usize,
    file: bool,
    settings: SettingsSpec,
    init: Init,
    ops: Vec<Op>,
}

fn image_case() -> impl Strategy<Value = ImageCase> {
    (
        1usize..=20,
        1usize..=20,
        any::<bool>(),
        prop::bool::weighted(0.25),
        prop::collection::vec(add_strategy(), 0..=3),
        prop::collection::vec(op_strategy(true), 1..=40),
    )
        .prop_map(
            |(width, height, file, from_channels, initial, ops)| ImageCase {
                width,
                height,
                file,
                from_channels,
                initial,
                ops,
            },
        )
}

fn channel_case() -> impl Strategy<Value = ChannelCase> {
    (
        1usize..=20,
        1usize..=20,
        any::<bool>(),
        settings_strategy(),
        prop_oneof![
            3 => prop::collection::vec(data_strategy(), 1..4).prop_map(Init::Data),
            1 => val_strategy().prop_map(Init::Full),
            1 => Just(Init::Zeros),
        ],
        prop::collection::vec(op_strategy(false), 1..=40),
    )
        .prop_map(|(width, height, file, settings, init, ops)| ChannelCase {
            width,
            height,
            file,
            settings,
            init,
            ops,
        })
}

// ---------------------------------------------------------------------------------------
// The system under test
// ---------------------------------------------------------------------------------------

/// An image or a standalone channel.
enum Target<T: Sample> {
    Image(Image<T>),
    Channel(Channel<T>),
}

impl<T: Sample> Target<T> {
    fn channel(&self, pos: usize) -> compressed_image::Result<Channel<T>> {
        match self {
            Target::Image(i) => i.channel(pos),
            Target::Channel(c) => {
                assert_eq!(pos, 0, "a channel file has one channel");
                Ok(c.clone())
            }
        }
    }
    fn channels(&self) -> Vec<Channel<T>> {
        match self {
            Target::Image(i) => i.channels(),
            Target::Channel(c) => vec![c.clone()],
        }
    }
    fn stats(&self) -> compressed_image::Result<Stats> {
        match self {
            Target::Image(i) => i.stats(),
            Target::Channel(c) => c.stats(),
        }
    }
    fn verify(&self) -> compressed_image::Result<compressed_image::Verification> {
        match self {
            Target::Image(i) => i.verify(),
            Target::Channel(c) => c.verify(),
        }
    }
    fn compact(&self) -> compressed_image::Result<compressed_image::Compaction> {
        match self {
            Target::Image(i) => i.compact(),
            Target::Channel(c) => c.compact(),
        }
    }
    fn sync(&self) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.sync(),
            Target::Channel(c) => c.sync(),
        }
    }
    fn refresh(&self) -> compressed_image::Result<bool> {
        match self {
            Target::Image(i) => i.refresh(),
            Target::Channel(c) => c.refresh(),
        }
    }
    fn save_as(&self, path: &Path) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.save_as(path),
            Target::Channel(c) => c.save_as(path),
        }
    }
    fn set_durability(&self, d: Durability) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.set_durability(d),
            Target::Channel(c) => c.set_durability(d),
        }
    }
    fn set_auto_compact(&self, a: Option<AutoCompact>) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.set_auto_compact(a),
            Target::Channel(c) => c.set_auto_compact(a),
        }
    }
    fn set_threads(&mut self, n: usize) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.set_threads(n),
            Target::Channel(c) => c.set_threads(n),
        }
    }
    fn path(&self) -> Option<&Path> {
        match self {
            Target::Image(i) => i.path(),
            Target::Channel(c) => c.path(),
        }
    }
    fn open(path: &Path, image: bool, rw: bool) -> compressed_image::Result<Target<T>> {
        Ok(match (image, rw) {
            (true, true) => Target::Image(Image::open(path)?),
            (true, false) => Target::Image(Image::open_read_only(path)?),
            (false, true) => Target::Channel(Channel::open(path)?),
            (false, false) => Target::Channel(Channel::open_read_only(path)?),
        })
    }
}

/// What a target is compared with.
struct View<'a, T: Sample> {
    target: &'a Target<T>,
    model: &'a Model,
    /// Channel handles obtained earlier, by model uid (removed ones included).
    held: &'a [(u64, Channel<T>)],
    writable: bool,
    /// The file whose newest commit `inspect` must describe as the model (a writer's file).
    inspect: Option<&'a Path>,
    /// A batch of this thread is open: skip writes through removed handles.
    in_batch: bool,
    /// A directory for files that must not come into existence.
    scratch: &'a Path,
}

fn check_channel<T: Elem>(c: &Channel<T>, mc: &MChan, m: &Model, what: &str) -> TestResult {
    let size = m.size;
    let n = m.height.div_ceil(mc.rows);
    let chunk_bytes = mc.rows * m.width * size;
    ensure_eq!(c.dtype().ctx(what)?, T::DTYPE, "{what}");
    ensure_eq!(c.width().ctx(what)?, m.width, "{what}");
    ensure_eq!(c.height().ctx(what)?, m.height, "{what}");
    ensure_eq!(c.num_chunks().ctx(what)?, n, "{what}");
    ensure_eq!(c.chunk_size().ctx(what)?, chunk_bytes, "{what}");
    ensure_eq!(c.chunk_elems().ctx(what)?, mc.rows * m.width, "{what}");
    ensure_eq!(
        c.uncompressed_size().ctx(what)?,
        m.width * m.height,
        "{what}"
    );
    let g = c.geometry().ctx(what)?;
    ensure_eq!(g.rows_per_chunk(), mc.rows, "{what}");
    ensure_eq!(g.elem_size(), size, "{what}");
    ensure_eq!(c.codec().ctx(what)?, mc.settings.codec, "{what}");
    ensure_eq!(c.level().ctx(what)?, mc.settings.level, "{what}");
    let block = mc.settings.block_size.min(chunk_bytes);
    let block = if block > size {
        block / size * size
    } else {
        block
    };
    ensure_eq!(c.block_size().ctx(what)?, block, "{what}");
    ensure_eq!(
        c.settings().ctx(what)?,
        mc.settings.chunk_size(chunk_bytes),
        "{what}"
    );
    let mut whole = Vec::with_capacity(m.width * m.height * size);
    for i in 0..n {
        let elems = mc.chunks[i].len() / size;
        ensure_eq!(c.chunk_elems_at(i).ctx(what)?, elems, "{what} chunk {i}");
        ensure_eq!(
            c.chunk_size_at(i).ctx(what)?,
            elems * size,
            "{what} chunk {i}"
        );
        ensure_eq!(c.is_lazy(i).ctx(what)?, mc.lazy[i], "{what}: is_lazy({i})");
        let got = c.get_chunk_vec(i).ctx(what)?;
        same_bytes(
            as_bytes(&got),
            &mc.chunks[i],
            &format!("{what}: get_chunk({i})"),
        )?;
        whole.extend_from_slice(&mc.chunks[i]);
    }
    expect_err!(c.chunk_elems_at(n), Error::IndexOutOfRange { .. }, "{what}");
    let stored = c.compressed_bytes().ctx(what)?;
    ensure!(
        sums(0, &mc.extra).contains(&stored),
        "{what}: compressed_bytes is {stored}, expected a total of {:?} (lazy {:?}; a lazy \
         chunk counts {size} bytes, a blob its length single- or multi-threaded)",
        mc.extra,
        mc.lazy
    );
    let all = c.get_decompressed().ctx(what)?;
    same_bytes(as_bytes(&all), &whole, &format!("{what}: get_decompressed"))?;
    let mut rows = vec![zeroed::<T>(); m.width * m.height];
    c.read_rows(0, &mut rows).ctx(what)?;
    same_bytes(as_bytes(&rows), &whole, &format!("{what}: read_rows"))?;
    // A few row windows, chosen by the contents (so a replay reads the same ones).
    let row_bytes = m.width * size;
    let mut rng = Rng::new(
        mc.uid
            ^ mc.chunks
                .iter()
                .map(|c| u64::from(c[0]) + c.len() as u64)
                .sum::<u64>(),
    );
    for _ in 0..4 {
        let first = rng.below(m.height);
        let count = 1 + rng.below(m.height - first);
        let mut out = vec![zeroed::<T>(); count * m.width];
        c.read_rows(first, &mut out).ctx(what)?;
        same_bytes(
            as_bytes(&out),
            &whole[first * row_bytes..(first + count) * row_bytes],
            &format!("{what}: read_rows({first}, {count} rows)"),
        )?;
    }
    let mut visited = 0;
    let mut problem = None;
    c.for_each_chunk(|chunk| {
        let i = chunk.index();
        let last = chunk.data().len() - 1;
        if i != visited
            || as_bytes(chunk.data()) != mc.chunks[i].as_slice()
            || (chunk.x(0), chunk.y(0)) != (0, i * mc.rows)
            || (chunk.x(last), chunk.y(last)) != (last % m.width, i * mc.rows + last / m.width)
        {
            problem.get_or_insert(format!("for_each_chunk: chunk {i} (visit {visited})"));
        }
        visited += 1;
        Ok(())
    })
    .ctx(what)?;
    if let Some(p) = problem {
        return Err(TestCaseError::fail(format!("{what}: {p}")));
    }
    ensure_eq!(visited, n, "{what}: for_each_chunk visits");
    Ok(())
}

/// A handle whose channel was removed: every call says so and nothing is written.
fn check_removed<T: Elem>(
    c: &Channel<T>,
    writable: bool,
    in_batch: bool,
    scratch: &Path,
) -> TestResult {
    let what = "removed channel handle";
    expect_err!(c.num_chunks(), Error::ChannelRemoved, "{what}");
    expect_err!(c.dtype(), Error::ChannelRemoved, "{what}");
    expect_err!(c.is_lazy(0), Error::ChannelRemoved, "{what}");
    expect_err!(c.compressed_bytes(), Error::ChannelRemoved, "{what}");
    expect_err!(c.get_decompressed(), Error::ChannelRemoved, "{what}");
    expect_err!(
        c.get_chunk(0, &mut [zeroed::<T>()]),
        Error::ChannelRemoved,
        "{what}"
    );
    expect_err!(
        c.for_each_chunk(|_| Ok(())),
        Error::ChannelRemoved,
        "{what}"
    );
    let copy = scratch.join("removed.cimg");
    expect_err!(c.save_as(&copy), Error::ChannelRemoved, "{what}");
    ensure!(!copy.exists(), "{what}: save_as made a file");
    if !writable {
        expect_err!(c.set_chunk(0, &[zeroed::<T>()]), Error::ReadOnly, "{what}");
    } else if !in_batch {
        expect_err!(
            c.set_chunk(0, &[zeroed::<T>()]),
            Error::ChannelRemoved,
            "{what}"
        );
        expect_err!(c.update_chunks(|_| Ok(())), Error::ChannelRemoved, "{what}");
        let mut batch = c.batch().ctx(what)?;
        expect_err!(
            batch.set_chunk(0, &[zeroed::<T>()]),
            Error::ChannelRemoved,
            "{what}"
        );
    }
    Ok(())
}

fn check_view<T: Elem>(v: &View<'_, T>, what: &str) -> TestResult {
    let m = v.model;
    let chans = v.target.channels();
    ensure_eq!(chans.len(), m.channels.len(), "{what}: channel count");
    for (pos, (c, mc)) in chans.iter().zip(&m.channels).enumerate() {
        ensure_eq!(c.is_writable(), v.writable, "{what}");
        check_channel(c, mc, m, &format!("{what}: channel {pos}"))?;
    }
    for (uid, c) in v.held {
        match m.find(*uid) {
            Some(mc) => {
                let what = format!("{what}: held handle of channel uid {uid}");
                let all = c.get_decompressed().ctx(&what)?;
                same_bytes(as_bytes(&all), &mc.chunks.concat(), &what)?;
                for i in 0..mc.lazy.len() {
                    ensure_eq!(c.is_lazy(i).ctx(&what)?, mc.lazy[i], "{what}: chunk {i}");
                }
                let stored = c.compressed_bytes().ctx(&what)?;
                ensure!(
                    sums(0, &mc.extra).contains(&stored),
                    "{what}: compressed_bytes {stored}"
                );
            }
            None => check_removed(c, v.writable, v.in_batch, v.scratch)?,
        }
    }
    if let Target::Image(img) = v.target {
        check_image(img, m, what)?;
    }
    // Space accounting (SPEC §12) and integrity.
    let s = v.target.stats().ctx(what)?;
    let total: usize = m.channels.iter().map(|c| c.lazy.len()).sum();
    let lazy: usize = m
        .channels
        .iter()
        .map(|c| c.lazy.iter().filter(|l| **l).count())
        .sum();
    let fill_bytes: usize = m
        .channels
        .iter()
        .flat_map(|c| c.lazy.iter().zip(&c.chunks))
        .filter(|(l, _)| **l)
        .map(|(_, c)| c.len())
        .sum();
    ensure_eq!(
        s.live_bytes + s.dead_bytes,
        (align64(s.committed_end as usize) - REGION_START) as u64,
        "{what}: stats {s:?}"
    );
    ensure_eq!(s.blob_chunks + s.fill_chunks, total, "{what}: stats {s:?}");
    ensure_eq!(s.fill_chunks, lazy, "{what}: stats {s:?}");
    ensure_eq!(s.fill_bytes, fill_bytes as u64, "{what}: stats {s:?}");
    ensure!(
        m.live_bytes().contains(&(s.live_bytes as usize)),
        "{what}: live bytes {}, expected one of {:?}",
        s.live_bytes,
        m.live_bytes()
    );
    ensure!(s.file_len >= s.committed_end, "{what}: stats {s:?}");
    let report = v.target.verify().ctx(what)?;
    ensure!(report.is_ok(), "{what}: verify found {:?}", report.problems);
    ensure_eq!(report.generation, s.generation, "{what}");
    ensure!(
        report.records > total - lazy,
        "{what}: verify checked {} records for {} blobs",
        report.records,
        total - lazy
    );
    if let Some(path) = v.inspect {
        let info = inspect(path).ctx(what)?;
        ensure_eq!(info.width, m.width, "{what}: inspect");
        ensure_eq!(info.height, m.height, "{what}: inspect");
        ensure_eq!(info.has_names, m.names_present, "{what}: inspect");
        ensure_eq!(info.channels.len(), m.channels.len(), "{what}: inspect");
        for (ci, mc) in info.channels.iter().zip(&m.channels) {
            ensure_eq!(ci.name, mc.name, "{what}: inspect");
            ensure_eq!(ci.dtype, T::DTYPE, "{what}: inspect");
            ensure_eq!(ci.codec, mc.settings.codec, "{what}: inspect");
            ensure_eq!(ci.level, mc.settings.level, "{what}: inspect");
            ensure_eq!(ci.geometry.rows_per_chunk(), mc.rows, "{what}: inspect");
            ensure_eq!(ci.geometry.width(), m.width, "{what}: inspect");
            ensure_eq!(ci.geometry.height(), m.height, "{what}: inspect");
        }
        ensure!(info.generation >= s.generation, "{what}: inspect {info:?}");
    }
    Ok(())
}

fn check_image<T: Elem>(img: &Image<T>, m: &Model, what: &str) -> TestResult {
    let n = m.channels.len();
    ensure_eq!(img.width(), m.width, "{what}");
    ensure_eq!(img.height(), m.height, "{what}");
    ensure_eq!(img.num_channels(), n, "{what}");
    let names: Vec<String> = if m.names_present {
        m.channels.iter().map(|c| c.name.clone()).collect()
    } else {
        Vec::new()
    };
    ensure_eq!(img.channel_names(), names, "{what}: names");
    let meta = img.metadata();
    ensure_eq!(meta, m.meta, "{what}: metadata");
    ensure_eq!(
        meta.to_string(),
        m.meta.to_string(),
        "{what}: metadata text"
    );
    for name in &names {
        let first = m.channels.iter().position(|c| &c.name == name);
        ensure_eq!(
            img.channel_index(name).ok(),
            first,
            "{what}: channel_index({name:?})"
        );
    }
    if !m.names_present {
        expect_err!(
            img.channel_index(""),
            Error::UnknownChannelName(_),
            "{what}"
        );
    }
    expect_err!(
        img.channel_index("\u{1}absent"),
        Error::UnknownChannelName(_),
        "{what}"
    );
    expect_err!(img.channel(n), Error::IndexOutOfRange { .. }, "{what}");
    let all = img.get_decompressed().ctx(what)?;
    ensure_eq!(all.len(), n, "{what}");
    for (pos, (got, mc)) in all.iter().zip(&m.channels).enumerate() {
        same_bytes(
            as_bytes(got),
            &mc.chunks.concat(),
            &format!("{what}: image get_decompressed channel {pos}"),
        )?;
    }
    let raw: usize = n * m.width * m.height * m.size;
    // Each channel's compressed_bytes was checked against the model above.
    let stored = img
        .channels()
        .iter()
        .map(|c| c.compressed_bytes())
        .sum::<compressed_image::Result<usize>>()
        .ctx(what)?;
    let ratio = if stored == 0 {
        1.0
    } else {
        raw as f64 / stored as f64
    };
    ensure_eq!(img.compression_ratio().ctx(what)?, ratio, "{what}");

    let common = |values: Vec<usize>| match values.split_first() {
        None => Some(0),
        Some((first, rest)) => rest.iter().all(|v| v == first).then_some(*first),
    };
    let chunk_sizes = m
        .channels
        .iter()
        .map(|c| c.rows * m.width * m.size)
        .collect();
    ensure_eq!(
        img.chunk_size().ok(),
        common(chunk_sizes),
        "{what}: chunk_size"
    );
    let blocks = img
        .channels()
        .iter()
        .map(|c| c.block_size())
        .collect::<compressed_image::Result<Vec<_>>>()
        .ctx(what)?;
    ensure_eq!(img.block_size().ok(), common(blocks), "{what}: block_size");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The harness: applies operations to the target and the model
// ---------------------------------------------------------------------------------------

/// Learns the compressed length of a chunk by storing it in a scratch channel with the
/// same settings and geometry, from a fresh thread (so that nothing compressed before can
/// influence it).
struct Oracle<T: Sample> {
    /// Compresses single-threaded.
    serial: Channel<T>,
    /// Compresses with two threads.
    parallel: Channel<T>,
    /// What each chunk of the two channels counts in `compressed_bytes` now.
    stored: Vec<Len>,
}

struct Reader<T: Sample> {
    target: Target<T>,
    held: Vec<(u64, Channel<T>)>,
    /// The model as of the reader's snapshot.
    model: Model,
}

struct Harness<T: Sample> {
    dir: tempfile::TempDir,
    /// The file, for file-backed targets.
    path: Option<PathBuf>,
    image: bool,
    target: Option<Target<T>>,
    held: Vec<(u64, Channel<T>)>,
    reader: Option<Reader<T>>,
    model: Model,
    oracles: HashMap<u64, Oracle<T>>,
    next_uid: u64,
    last_generation: u64,
    copies: usize,
    /// Op counter, used as salt for generated data.
    step: u64,
    /// Automatic compaction at zero dead bytes is on: after a commit, dead space is 0.
    auto_zero: bool,
}

impl<T: Elem> Harness<T> {
    fn t(&self) -> &Target<T> {
        self.target.as_ref().expect("target is open")
    }

    fn img(&self) -> &Image<T> {
        match self.t() {
            Target::Image(i) => i,
            Target::Channel(_) => panic!("image operation on a channel target"),
        }
    }

    /// A handle to the channel at `pos`: alternately one held since the channel was
    /// added (or the file opened) and a fresh one.
    fn handle(&self, pos: usize) -> TestResult<Channel<T>> {
        let uid = self.model.channels[pos].uid;
        if self.step.is_multiple_of(2)
            && let Some((_, c)) = self.held.iter().find(|(u, _)| *u == uid)
        {
            return Ok(c.clone());
        }
        self.t().channel(pos).ctx("channel(pos)")
    }

    fn stored_len(&mut self, pos: usize, index: usize, bytes: &[u8]) -> TestResult<Len> {
        let m = &self.model;
        if uniform(bytes, m.size) {
            return Ok((m.size, m.size));
        }
        let c = &m.channels[pos];
        let oracle = match self.oracles.entry(c.uid) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let mut serial = Channel::zeros(m.width, m.height, c.settings).ctx("oracle")?;
                serial.set_threads(1).ctx("oracle")?;
                let mut parallel = Channel::zeros_like(&serial).ctx("oracle")?;
                parallel.set_threads(2).ctx("oracle")?;
                e.insert(Oracle {
                    serial,
                    parallel,
                    stored: vec![(m.size, m.size); c.chunks.len()],
                })
            }
        };
        // A fresh thread has fresh c-blosc2 contexts: its result is the chunk's length as
        // the settings alone determine it.
        let elems = to_elems::<T>(bytes);
        let (serial, parallel) = (&oracle.serial, &oracle.parallel);
        let store = |c: &Channel<T>| -> compressed_image::Result<(usize, usize)> {
            let before = c.compressed_bytes()?;
            c.set_chunk(index, &elems)?;
            Ok((before, c.compressed_bytes()?))
        };
        let ((s0, s1), (p0, p1)) = std::thread::scope(|scope| {
            scope
                .spawn(|| Ok((store(serial)?, store(parallel)?)))
                .join()
                .expect("oracle thread")
        })
        .ctx("oracle")?;
        let (old_s, old_p) = oracle.stored[index];
        let len = (s1 + old_s - s0, p1 + old_p - p0);
        oracle.stored[index] = len;
        Ok(len)
    }

    /// Record in the model that chunk `index` of channel `pos` now holds `bytes`.
    fn model_write(&mut self, pos: usize, index: usize, bytes: Vec<u8>) -> TestResult {
        let stored = self.stored_len(pos, index, &bytes)?;
        self.model.set_chunk(pos, index, &bytes);
        self.model.channels[pos].extra[index] = stored;
        Ok(())
    }

    fn new_uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    /// Add a channel to the model (and learn its blob lengths); returns its uid.
    fn model_add(&mut self, mc: MChan) -> TestResult<u64> {
        let uid = mc.uid;
        self.model.channels.push(mc);
        let pos = self.model.channels.len() - 1;
        for i in 0..self.model.num_chunks(pos) {
            if !self.model.channels[pos].lazy[i] {
                let bytes = self.model.channels[pos].chunks[i].clone();
                self.model.channels[pos].extra[i] = self.stored_len(pos, i, &bytes)?;
            }
        }
        Ok(uid)
    }

    /// Whole-channel data of `specs` (chunk `i` gets `specs[i % len]`), split per chunk.
    fn gen_channel(&self, specs: &[Data], rows: usize) -> Vec<Vec<u8>> {
        let m = &self.model;
        (0..m.height.div_ceil(rows))
            .map(|i| {
                let n = rows.min(m.height - i * rows) * m.width;
                gen_bytes::<T>(&specs[i % specs.len()], n, self.step * 1000 + i as u64)
            })
            .collect()
    }

    fn add(&mut self, spec: &AddSpec) -> TestResult {
        let m = &self.model;
        let (settings, rows) = spec.settings.build(m.width, m.height, m.size);
        let name = spec.name.as_deref();
        let uid = self.new_uid();
        let (handle, mc) = match &spec.content {
            AddContent::Data(specs) => {
                let chunks = self.gen_channel(specs, rows);
                let data = to_elems::<T>(&chunks.concat());
                let handle = self
                    .img()
                    .add_channel(&data, name, settings)
                    .ctx("add_channel")?;
                let name = name.unwrap_or("").into();
                let stored = self.model.lazy_stored(rows);
                let mc = self
                    .model
                    .data_channel(uid, settings, rows, name, chunks, stored);
                (handle, mc)
            }
            AddContent::Lazy(v) => {
                let bits = v.bits::<T>();
                let handle = self
                    .img()
                    .add_lazy_channel(from_bits::<T>(bits), name, settings)
                    .ctx("add_lazy_channel")?;
                let mc = self.model.lazy_channel(
                    uid,
                    settings,
                    rows,
                    name.unwrap_or("").into(),
                    bits & (u64::MAX >> (64 - 8 * self.model.size)),
                    self.model.lazy_stored(rows),
                );
                (handle, mc)
            }
        };
        self.model.names_present |= name.is_some();
        self.model_add(mc)?;
        self.held.push((uid, handle));
        Ok(())
    }

    fn remove_at(&mut self, pos: usize) {
        let uid = self.model.channels.remove(pos).uid;
        self.oracles.remove(&uid);
        // Keep the handle (it must now say ChannelRemoved), but only the last few.
        let live: Vec<u64> = self.model.channels.iter().map(|c| c.uid).collect();
        let mut dead = self.held.iter().filter(|(u, _)| !live.contains(u)).count();
        self.held.retain(|(u, _)| {
            if live.contains(u) {
                return true;
            }
            dead -= 1;
            dead < 3
        });
    }

    fn reopen_target(&mut self, rw: bool) -> TestResult<Target<T>> {
        let path = self.path.clone().expect("file-backed");
        Target::open(&path, self.image, rw).ctx(if rw { "open" } else { "open_read_only" })
    }

    fn held_of(&self, target: &Target<T>) -> Vec<(u64, Channel<T>)> {
        self.model
            .channels
            .iter()
            .map(|c| c.uid)
            .zip(target.channels())
            .collect()
    }

    fn copy_path(&mut self) -> PathBuf {
        self.copies += 1;
        self.dir.path().join(format!("copy{}.cimg", self.copies))
    }

    fn check(&self, in_batch: bool, what: &str) -> TestResult {
        let view = View {
            target: self.t(),
            model: &self.model,
            held: &self.held,
            writable: true,
            inspect: self.path.as_deref(),
            in_batch,
            scratch: self.dir.path(),
        };
        check_view(&view, what)?;
        if let Some(r) = &self.reader {
            let view = View {
                target: &r.target,
                model: &r.model,
                held: &r.held,
                writable: false,
                inspect: None,
                in_batch,
                scratch: self.dir.path(),
            };
            check_view(&view, &format!("{what} (read-only handle)"))?;
        }
        Ok(())
    }

    fn generation(&self) -> TestResult<u64> {
        Ok(self.t().stats().ctx("stats")?.generation)
    }

    fn file_bytes(&self) -> TestResult<Option<Vec<u8>>> {
        self.path
            .as_ref()
            .map(|p| std::fs::read(p).map_err(|e| TestCaseError::fail(format!("read file: {e}"))))
            .transpose()
    }

    /// Apply one operation to the target and the model.
    fn apply(&mut self, op: &Op) -> TestResult<Gen> {
        self.step += 1;
        let nch = self.model.channels.len();
        let needs_channel = matches!(
            op,
            Op::SetChunk { .. }
                | Op::SetLastChunk { .. }
                | Op::Batch { .. }
                | Op::Update { .. }
                | Op::Remove { .. }
                | Op::ReadRows { .. }
                | Op::SaveChannelAs { .. }
        );
        if needs_channel && nch == 0 {
            return Ok(Gen::Same);
        }
        match op {
            Op::SetChunk { ch, idx, data } => {
                let pos = ch.index(nch);
                let i = idx.index(self.model.num_chunks(pos));
                self.set_chunk(pos, i, data)
            }
            Op::SetLastChunk { ch, data } => {
                let pos = ch.index(nch);
                let i = self.model.num_chunks(pos) - 1;
                self.set_chunk(pos, i, data)
            }
            Op::Batch {
                ch,
                writes,
                bad,
                probe,
                commit,
            } => self.batch(ch.index(nch), writes, bad.as_ref(), *probe, *commit),
            Op::Update {
                ch,
                mask,
                edits,
                fail_at,
            } => self.update(ch.index(nch), *mask, edits, fail_at.as_ref()),
            Op::Add(spec) => {
                self.add(spec)?;
                Ok(Gen::Grows)
            }
            Op::Remove { ch } => {
                let pos = ch.index(nch);
                self.img().remove_channel(pos).ctx("remove_channel")?;
                self.remove_at(pos);
                Ok(Gen::Grows)
            }
            Op::RemoveByName { pick, name } => {
                let name = match pick {
                    Some(p) if nch > 0 => self.model.channels[p.index(nch)].name.clone(),
                    _ => name.clone(),
                };
                let expected = self
                    .model
                    .channels
                    .iter()
                    .position(|c| self.model.names_present && c.name == name);
                let result = self.img().remove_channel_by_name(&name);
                match expected {
                    Some(pos) => {
                        result.ctx("remove_channel_by_name")?;
                        self.remove_at(pos);
                        Ok(Gen::Grows)
                    }
                    None => {
                        expect_err!(result, Error::UnknownChannelName(_), "remove {name:?}");
                        Ok(Gen::Same)
                    }
                }
            }
            Op::SetNames(names) => {
                let names: Vec<String> = (0..nch)
                    .map(|k| names.get(k).cloned().unwrap_or_default())
                    .collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                self.img()
                    .set_channel_names(&refs)
                    .ctx("set_channel_names")?;
                self.model.names_present = true;
                for (c, n) in self.model.channels.iter_mut().zip(names) {
                    c.name = n;
                }
                Ok(Gen::Grows)
            }
            Op::SetMetadata(v) => {
                self.img().set_metadata(v.clone()).ctx("set_metadata")?;
                self.model.meta = v.clone();
                Ok(Gen::Grows)
            }
            Op::ReadRows { ch, first, count } => {
                let pos = ch.index(nch);
                let (w, h) = (self.model.width, self.model.height);
                let first = first.index(h + 1);
                let mut out = vec![zeroed::<T>(); count * w];
                let result = self.handle(pos)?.read_rows(first, &mut out);
                if first + count <= h {
                    result.ctx("read_rows")?;
                    let whole = self.model.channels[pos].chunks.concat();
                    let s = self.model.size;
                    same_bytes(
                        as_bytes(&out),
                        &whole[first * w * s..(first + count) * w * s],
                        &format!("read_rows({first}, {count} rows)"),
                    )?;
                } else {
                    expect_err!(result, Error::InvalidArgument { .. }, "rows past the end");
                }
                Ok(Gen::Same)
            }
            Op::Sync => {
                self.t().sync().ctx("sync")?;
                Ok(Gen::Any)
            }
            Op::Reopen => {
                if self.path.is_none() {
                    return Ok(Gen::Same);
                }
                self.held.clear();
                self.target = None; // drops the writer (and syncs)
                let target = self.reopen_target(true)?;
                self.held = self.held_of(&target);
                self.target = Some(target);
                self.auto_zero = false; // a per-handle setting
                Ok(Gen::Any)
            }
            Op::OpenReader => {
                if self.path.is_none() {
                    return Ok(Gen::Same);
                }
                let target = self.reopen_target(false)?;
                let held = self.held_of(&target);
                self.reader = Some(Reader {
                    target,
                    held,
                    model: self.model.clone(),
                });
                Ok(Gen::Same)
            }
            Op::RefreshReader => {
                ensure!(!self.t().refresh().ctx("refresh")?, "a writer refreshed");
                if let Some(r) = &mut self.reader {
                    r.target.refresh().ctx("refresh")?;
                    r.model = self.model.clone();
                }
                Ok(Gen::Same)
            }
            Op::Compact => {
                let before = self.t().stats().ctx("stats")?;
                let report = self.t().compact().ctx("compact")?;
                let after = self.t().stats().ctx("stats")?;
                ensure_eq!(after.dead_bytes, 0, "after compact: {after:?}");
                ensure_eq!(
                    after.file_len,
                    after.committed_end,
                    "after compact: {after:?}"
                );
                ensure_eq!(after.live_bytes, before.live_bytes, "after compact");
                ensure_eq!(report.file_len_after, after.file_len, "compaction report");
                ensure_eq!(report.file_len_before, before.file_len, "compaction report");
                ensure_eq!(
                    report.reclaimed,
                    before.file_len.saturating_sub(after.file_len),
                    "compaction report"
                );
                ensure_eq!(self.t().path(), self.path.as_deref(), "path after compact");
                Ok(Gen::Grows)
            }
            Op::SaveAs { rw } => {
                let copy = self.copy_path();
                self.t().save_as(&copy).ctx("save_as")?;
                {
                    let target = Target::open(&copy, self.image, *rw).ctx("open copy")?;
                    let held = self.held_of(&target);
                    let view = View {
                        target: &target,
                        model: &self.model,
                        held: &held,
                        writable: *rw,
                        inspect: Some(&copy),
                        in_batch: false,
                        scratch: self.dir.path(),
                    };
                    check_view(&view, "save_as copy")?;
                    let s = target.stats().ctx("copy stats")?;
                    ensure_eq!(s.dead_bytes, 0, "save_as copy: {s:?}");
                }
                remove_file(&copy)?;
                Ok(Gen::Same)
            }
            Op::SaveChannelAs { ch } => {
                let pos = ch.index(nch);
                let copy = self.copy_path();
                self.handle(pos)?.save_as(&copy).ctx("channel save_as")?;
                {
                    let target = Target::Channel(
                        Channel::<T>::open_read_only(&copy).ctx("open channel copy")?,
                    );
                    let mut mc = self.model.channels[pos].clone();
                    mc.name.clear();
                    let model = Model {
                        channels: vec![mc],
                        names_present: false,
                        meta: Value::Null,
                        ..self.model.clone()
                    };
                    let view = View {
                        target: &target,
                        model: &model,
                        held: &[],
                        writable: false,
                        inspect: Some(&copy),
                        in_batch: false,
                        scratch: self.dir.path(),
                    };
                    check_view(&view, "channel save_as copy")?;
                    let s = target.stats().ctx("copy stats")?;
                    ensure_eq!(s.dead_bytes, 0, "channel copy: {s:?}");
                }
                remove_file(&copy)?;
                Ok(Gen::Same)
            }
            Op::Durability { immediate } => {
                let d = if *immediate {
                    Durability::Immediate
                } else {
                    Durability::OnSync
                };
                self.t().set_durability(d).ctx("set_durability")?;
                Ok(Gen::Same)
            }
            Op::AutoCompact { on } => {
                let auto = on.then_some(AutoCompact {
                    min_dead_ratio: 0.0,
                    min_dead_bytes: 0,
                });
                self.t().set_auto_compact(auto).ctx("set_auto_compact")?;
                self.auto_zero = *on;
                Ok(Gen::Same)
            }
            Op::Invalid(bad) => {
                let bytes = self.file_bytes()?;
                self.invalid(bad)?;
                if let Some(before) = bytes {
                    let after = self.file_bytes()?.expect("file-backed");
                    ensure!(before == after, "a failed call changed the file's bytes");
                }
                Ok(Gen::Same)
            }
        }
    }

    fn set_chunk(&mut self, pos: usize, i: usize, data: &Data) -> TestResult<Gen> {
        let bytes = gen_bytes::<T>(data, self.model.chunk_elems(pos, i), self.step);
        self.handle(pos)?
            .set_chunk(i, &to_elems::<T>(&bytes))
            .ctx("set_chunk")?;
        self.model_write(pos, i, bytes)?;
        Ok(Gen::Grows)
    }

    fn batch(
        &mut self,
        pos: usize,
        writes: &[(Index, Data)],
        bad: Option<&BadWrite>,
        probe: bool,
        commit: bool,
    ) -> TestResult<Gen> {
        let n = self.model.num_chunks(pos);
        let handle = self.handle(pos)?;
        let mut staged = Vec::new();
        {
            let mut batch = handle.batch().ctx("batch")?;
            for (k, (idx, data)) in writes.iter().enumerate() {
                let i = idx.index(n);
                let salt = self.step * 1000 + k as u64;
                let bytes = gen_bytes::<T>(data, self.model.chunk_elems(pos, i), salt);
                batch
                    .set_chunk(i, &to_elems::<T>(&bytes))
                    .ctx("batch.set_chunk")?;
                staged.push((i, bytes));
            }
            match bad {
                Some(BadWrite::WrongLen { idx, delta }) => {
                    let i = idx.index(n);
                    let len = (self.model.chunk_elems(pos, i) as isize + *delta as isize).max(0);
                    let data = vec![zeroed::<T>(); len as usize];
                    expect_err!(
                        batch.set_chunk(i, &data),
                        Error::InvalidArgument { .. },
                        "batch write of {len} elements to chunk {i}"
                    );
                }
                Some(BadWrite::OutOfRange { extra }) => {
                    let data = vec![zeroed::<T>(); self.model.chunk_elems(pos, 0)];
                    expect_err!(
                        batch.set_chunk(n + *extra as usize, &data),
                        Error::IndexOutOfRange { .. },
                        "batch write past the last chunk"
                    );
                }
                None => {}
            }
            if probe {
                self.probe_batch(pos, &handle)?;
            }
            if commit {
                batch.commit().ctx("batch.commit")?;
            }
        }
        if !commit || staged.is_empty() {
            return Ok(Gen::Same);
        }
        for (i, bytes) in staged {
            self.model_write(pos, i, bytes)?;
        }
        Ok(Gen::Grows)
    }

    /// While a batch is open: reads show the last commit; other writes of this thread are
    /// refused with `BatchInProgress`.
    fn probe_batch(&self, pos: usize, handle: &Channel<T>) -> TestResult {
        self.check(true, "during a batch")?;
        let chunk0 = to_elems::<T>(&self.model.channels[pos].chunks[0]);
        expect_err!(
            handle.set_chunk(0, &chunk0),
            Error::BatchInProgress,
            "in batch"
        );
        let other = self.t().channel(pos).ctx("channel")?;
        expect_err!(
            other.set_chunk(0, &chunk0),
            Error::BatchInProgress,
            "in batch"
        );
        expect_err!(other.batch(), Error::BatchInProgress, "in batch");
        expect_err!(self.t().compact(), Error::BatchInProgress, "in batch");
        if let Target::Image(img) = self.t() {
            expect_err!(
                img.set_metadata(json!(1)),
                Error::BatchInProgress,
                "in batch"
            );
            expect_err!(
                img.add_lazy_channel(zeroed::<T>(), None, Settings::default()),
                Error::BatchInProgress,
                "in batch"
            );
            expect_err!(img.remove_channel(pos), Error::BatchInProgress, "in batch");
        }
        Ok(())
    }

    fn update(
        &mut self,
        pos: usize,
        mask: u64,
        edits: &[Edit],
        fail_at: Option<&Index>,
    ) -> TestResult<Gen> {
        let n = self.model.num_chunks(pos);
        let fail = fail_at.map(|f| f.index(n));
        let handle = self.handle(pos)?;
        let mc = &self.model.channels[pos];
        let (width, size, step) = (self.model.width, self.model.size, self.step);
        let mut written = Vec::new();
        let mut problem = None;
        let mut visited = 0;
        let result = handle.update_chunks(|chunk| {
            let i = chunk.index();
            let last = chunk.data().len() - 1;
            if i != visited
                || as_bytes(chunk.data()) != mc.chunks[i].as_slice()
                || (chunk.x(0), chunk.y(0)) != (0, i * mc.rows)
                || (chunk.x(last), chunk.y(last)) != (last % width, i * mc.rows + last / width)
            {
                problem = Some(format!(
                    "update_chunks: chunk {i} (visit {visited}) differs"
                ));
                return Err(Error::Io(std::io::Error::other("model mismatch")));
            }
            visited += 1;
            if fail == Some(i) {
                return Err(Error::UnknownChannelName("abort".into()));
            }
            if mask >> (i % 64) & 1 == 0 {
                return Ok(());
            }
            let elems = chunk.data().len();
            let data = bytemuck::cast_slice_mut::<T, u8>(chunk.data_mut());
            match &edits[i % edits.len()] {
                Edit::Replace(d) => {
                    data.copy_from_slice(&gen_bytes::<T>(d, elems, step * 1000 + i as u64))
                }
                Edit::Poke { at, val } => {
                    let at = at.index(elems) * size;
                    data[at..at + size].copy_from_slice(&elem_bytes::<T>(val.bits::<T>()));
                }
                Edit::Touch => {}
            }
            written.push((i, data.to_vec()));
            Ok(())
        });
        if let Some(p) = problem {
            return Err(TestCaseError::fail(p));
        }
        if fail.is_some() {
            expect_err!(
                result,
                Error::UnknownChannelName(_),
                "update_chunks aborted"
            );
            return Ok(Gen::Same);
        }
        result.ctx("update_chunks")?;
        ensure_eq!(visited, n, "update_chunks visits");
        if written.is_empty() {
            return Ok(Gen::Same);
        }
        for (i, bytes) in written {
            self.model_write(pos, i, bytes)?;
        }
        Ok(Gen::Grows)
    }

    fn bad_settings(&self, kind: &SettingsFault) -> Settings {
        let row = self.model.width * self.model.size;
        match kind {
            SettingsFault::Level(l) => Settings::default().level(*l),
            SettingsFault::ChunkBelowRow => Settings::default().chunk_size(row - 1),
            SettingsFault::BlockTooBig => Settings::default().block_size(536_866_817),
        }
    }

    fn invalid(&mut self, bad: &Bad) -> TestResult {
        let nch = self.model.channels.len();
        let (w, h) = (self.model.width, self.model.height);
        match bad {
            Bad::WrongLen { ch, idx, delta } => {
                if nch == 0 {
                    return Ok(());
                }
                let pos = ch.index(nch);
                let i = idx.index(self.model.num_chunks(pos));
                let len = (self.model.chunk_elems(pos, i) as isize + *delta as isize).max(0);
                let data = vec![zeroed::<T>(); len as usize];
                let c = self.handle(pos)?;
                expect_err!(
                    c.set_chunk(i, &data),
                    Error::InvalidArgument { .. },
                    "{len} elements"
                );
                let mut batch = c.batch().ctx("batch")?;
                expect_err!(
                    batch.set_chunk(i, &data),
                    Error::InvalidArgument { .. },
                    "{len} elements"
                );
                batch.commit().ctx("empty commit")?;
            }
            Bad::OutOfRange { ch, extra } => {
                if nch == 0 {
                    return Ok(());
                }
                let pos = ch.index(nch);
                let n = self.model.num_chunks(pos);
                let i = n + *extra as usize;
                let c = self.handle(pos)?;
                let mut data = vec![zeroed::<T>(); self.model.chunk_elems(pos, 0)];
                match c.set_chunk(i, &data) {
                    Err(Error::IndexOutOfRange { index, len, .. }) => {
                        ensure_eq!((index, len), (i, n), "set_chunk({i})");
                    }
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "set_chunk({i}) of {n} chunks gave {other:?}"
                        )));
                    }
                }
                expect_err!(
                    c.get_chunk(i, &mut data),
                    Error::IndexOutOfRange { .. },
                    "get"
                );
                expect_err!(c.is_lazy(i), Error::IndexOutOfRange { .. }, "is_lazy");
                expect_err!(c.chunk_size_at(i), Error::IndexOutOfRange { .. }, "size");
                expect_err!(c.get_chunk_vec(i), Error::IndexOutOfRange { .. }, "get_vec");
            }
            Bad::ReadWrongLen { ch, idx, delta } => {
                if nch == 0 {
                    return Ok(());
                }
                let pos = ch.index(nch);
                let i = idx.index(self.model.num_chunks(pos));
                let len = (self.model.chunk_elems(pos, i) as isize + *delta as isize).max(0);
                let c = self.handle(pos)?;
                let mut out = vec![zeroed::<T>(); len as usize];
                expect_err!(
                    c.get_chunk(i, &mut out),
                    Error::InvalidArgument { .. },
                    "get {len}"
                );
                let len = ((w * h) as isize + *delta as isize).max(0);
                let mut out = vec![zeroed::<T>(); len as usize];
                expect_err!(
                    c.decompress_into(&mut out),
                    Error::InvalidArgument { .. },
                    "all {len}"
                );
            }
            Bad::Rows { ch } => {
                if nch == 0 {
                    return Ok(());
                }
                let c = self.handle(ch.index(nch))?;
                if w > 1 {
                    let mut out = vec![zeroed::<T>(); w + 1];
                    expect_err!(
                        c.read_rows(0, &mut out),
                        Error::InvalidArgument { .. },
                        "part row"
                    );
                }
                let mut out: Vec<T> = Vec::new();
                expect_err!(
                    c.read_rows(h + 1, &mut out),
                    Error::InvalidArgument { .. },
                    "past end"
                );
            }
            Bad::ChannelOutOfRange { extra } => {
                let img = self.img();
                let i = nch + *extra as usize;
                expect_err!(
                    img.channel(i),
                    Error::IndexOutOfRange { .. },
                    "channel({i})"
                );
                expect_err!(
                    img.remove_channel(i),
                    Error::IndexOutOfRange { .. },
                    "remove({i})"
                );
            }
            Bad::AddWrongLen { delta, name } => {
                let len = ((w * h) as isize + *delta as isize).max(0);
                let data = vec![zeroed::<T>(); len as usize];
                expect_err!(
                    self.img()
                        .add_channel(&data, name.as_deref(), Settings::default()),
                    Error::InvalidArgument { .. },
                    "add_channel of {len} elements"
                );
            }
            Bad::Settings { kind, lazy } => {
                let settings = self.bad_settings(kind);
                let data = vec![zeroed::<T>(); w * h];
                match self.t() {
                    Target::Image(img) => {
                        let r = if *lazy {
                            img.add_lazy_channel(zeroed::<T>(), Some("bad"), settings)
                        } else {
                            img.add_channel(&data, Some("bad"), settings)
                        };
                        expect_err!(r, Error::InvalidArgument { .. }, "{settings:?}");
                    }
                    Target::Channel(_) => {
                        let path = self.dir.path().join("bad.cimg");
                        let r = if *lazy {
                            Channel::create_full(&path, w, h, zeroed::<T>(), settings)
                        } else {
                            Channel::create(&path, &data, w, h, settings)
                        };
                        expect_err!(r, Error::InvalidArgument { .. }, "{settings:?}");
                        ensure!(!path.exists(), "a failed create made {}", path.display());
                        expect_err!(
                            Channel::new(&data, w, h, settings),
                            Error::InvalidArgument { .. },
                            "{settings:?}"
                        );
                    }
                }
            }
            Bad::NamesWrongCount { more } => {
                let count = if *more || nch == 0 { nch + 1 } else { nch - 1 };
                let names = vec!["x"; count];
                expect_err!(
                    self.img().set_channel_names(&names),
                    Error::InvalidArgument { .. },
                    "{count} names for {nch} channels"
                );
            }
            Bad::UnknownName(name) => {
                let m = &self.model;
                if m.names_present && m.channels.iter().any(|c| &c.name == name) {
                    return Ok(());
                }
                let img = self.img();
                expect_err!(
                    img.channel_by_name(name),
                    Error::UnknownChannelName(_),
                    "{name:?}"
                );
                expect_err!(
                    img.remove_channel_by_name(name),
                    Error::UnknownChannelName(_),
                    "{name:?}"
                );
            }
            Bad::SecondWriter => {
                let Some(path) = self.path.clone() else {
                    return Ok(());
                };
                expect_err!(
                    Image::<T>::open(&path),
                    Error::Locked { .. },
                    "second writer"
                );
                expect_err!(
                    Channel::<T>::open(&path),
                    Error::Locked { .. },
                    "second writer"
                );
                expect_err!(
                    AnyChannel::open(&path),
                    Error::Locked { .. },
                    "second writer"
                );
                expect_err!(
                    Image::<T>::create(&path, w, h),
                    Error::Locked { .. },
                    "create"
                );
                expect_err!(
                    Channel::<T>::create_full(&path, w, h, zeroed::<T>(), Settings::default()),
                    Error::Locked { .. },
                    "create"
                );
                expect_err!(
                    self.t().save_as(&path),
                    Error::Locked { .. },
                    "save_as onto itself"
                );
            }
            Bad::ReaderWrites => {
                if self.path.is_none() {
                    return Ok(());
                }
                let r = self.reopen_target(false)?;
                {
                    let held = self.held_of(&r);
                    let view = View {
                        target: &r,
                        model: &self.model,
                        held: &held,
                        writable: false,
                        inspect: None,
                        in_batch: false,
                        scratch: self.dir.path(),
                    };
                    check_view(&view, "fresh read-only handle")?;
                }
                let ro = "read-only handle";
                expect_err!(r.compact(), Error::ReadOnly, "{ro}");
                expect_err!(
                    r.set_durability(Durability::Immediate),
                    Error::ReadOnly,
                    "{ro}"
                );
                expect_err!(r.set_auto_compact(None), Error::ReadOnly, "{ro}");
                r.sync().ctx("read-only sync")?;
                if nch > 0 {
                    let c = r.channel(0).ctx(ro)?;
                    let data = to_elems::<T>(&self.model.channels[0].chunks[0]);
                    expect_err!(c.set_chunk(0, &data), Error::ReadOnly, "{ro}");
                    expect_err!(c.batch(), Error::ReadOnly, "{ro}");
                    expect_err!(c.update_chunks(|_| Ok(())), Error::ReadOnly, "{ro}");
                }
                if let Target::Image(img) = &r {
                    expect_err!(img.set_metadata(json!({"a": 1})), Error::ReadOnly, "{ro}");
                    expect_err!(
                        img.add_lazy_channel(zeroed::<T>(), None, Settings::default()),
                        Error::ReadOnly,
                        "{ro}"
                    );
                    expect_err!(img.remove_channel(0), Error::ReadOnly, "{ro}");
                    expect_err!(img.set_channel_names(&[]), Error::ReadOnly, "{ro}");
                }
            }
            Bad::WrongDtype => {
                let Some(path) = self.path.clone() else {
                    return Ok(());
                };
                if T::DTYPE == compressed_image::Dtype::U8 {
                    self.wrong_dtype::<i8>(&path)?;
                } else {
                    self.wrong_dtype::<u8>(&path)?;
                }
            }
            Bad::ZeroThreads => {
                let t = self.target.as_mut().expect("open");
                expect_err!(t.set_threads(0), Error::InvalidArgument { .. }, "0 threads");
                if nch > 0 {
                    let mut c = self.t().channel(0).ctx("channel")?;
                    let threads = c.threads();
                    expect_err!(c.set_threads(0), Error::InvalidArgument { .. }, "0 threads");
                    ensure_eq!(c.threads(), threads, "threads after set_threads(0)");
                }
            }
        }
        Ok(())
    }

    /// Opening the file as another element type is refused; untyped opens work.
    fn wrong_dtype<U: Sample>(&self, path: &Path) -> TestResult {
        let nch = self.model.channels.len();
        if self.image {
            let r = Image::<U>::open_read_only(path);
            if nch == 0 {
                ensure_eq!(
                    r.ctx("empty image as another type")?.num_channels(),
                    0,
                    "empty"
                );
            } else {
                match r {
                    Err(Error::DtypeMismatch { expected, found }) => {
                        ensure_eq!((expected, found), (U::DTYPE, T::DTYPE), "dtype mismatch");
                    }
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "opening a {} image as {}: {:?}",
                            T::DTYPE,
                            U::DTYPE,
                            other.map(|_| ())
                        )));
                    }
                }
            }
            // A channel-file open of an image works exactly when it has one channel.
            let single = Channel::<T>::open_read_only(path);
            if nch == 1 {
                let c = single.ctx("one-channel image as a channel")?;
                check_channel(&c, &self.model.channels[0], &self.model, "image as channel")?;
            } else {
                expect_err!(
                    single,
                    Error::InvalidArgument { .. },
                    "{nch} channels as one"
                );
            }
        } else {
            match Channel::<U>::open_read_only(path) {
                Err(Error::DtypeMismatch { expected, found }) => {
                    ensure_eq!((expected, found), (U::DTYPE, T::DTYPE), "dtype mismatch");
                }
                other => {
                    return Err(TestCaseError::fail(format!(
                        "opening a {} channel as {}: {:?}",
                        T::DTYPE,
                        U::DTYPE,
                        other.map(|_| ())
                    )));
                }
            }
            let any = AnyChannel::open_read_only(path).ctx("untyped open")?;
            ensure_eq!(any.dtype().ctx("dtype")?, T::DTYPE, "untyped open");
            let mut out = vec![0u8; self.model.width * self.model.height * self.model.size];
            any.decompress_into_bytes(&mut out).ctx("untyped read")?;
            same_bytes(
                &out,
                &self.model.channels[0].chunks.concat(),
                "untyped read",
            )?;
        }
        Ok(())
    }

    /// Run `ops`, checking everything after each one, then reopen the file.
    fn run(mut self, ops: &[Op]) -> TestResult {
        self.check(false, "after creation")?;
        self.last_generation = self.generation()?;
        for (k, op) in ops.iter().enumerate() {
            let expect = self
                .apply(op)
                .map_err(|e| TestCaseError::fail(format!("op #{k} {op:?}: {e}")))?;
            let what = format!("after op #{k} {op:?}");
            self.check(false, &what)?;
            let generation = self.generation()?;
            match expect {
                Gen::Same => ensure_eq!(generation, self.last_generation, "{what}: generation"),
                Gen::Grows => ensure!(generation > self.last_generation, "{what}: generation"),
                Gen::Any => ensure!(generation >= self.last_generation, "{what}: generation"),
            }
            self.last_generation = generation;
            if self.auto_zero && expect == Gen::Grows {
                let s = self.t().stats().ctx("stats")?;
                ensure_eq!(s.dead_bytes, 0, "{what}: automatic compaction at 0: {s:?}");
            }
            if self.path.is_some() || matches!(op, Op::SaveAs { .. } | Op::SaveChannelAs { .. }) {
                no_temp_files(self.dir.path(), &what)?;
            }
        }
        // Everything committed is in the file once the writer is gone.
        if self.path.is_some() {
            self.held.clear();
            self.reader = None;
            self.target = None;
            let target = self.reopen_target(true)?;
            self.held = self.held_of(&target);
            self.target = Some(target);
            self.check(false, "after the final reopen")?;
        }
        no_temp_files(self.dir.path(), "at the end")?;
        Ok(())
    }
}

fn remove_file(path: &Path) -> TestResult {
    std::fs::remove_file(path).map_err(|e| TestCaseError::fail(format!("remove copy: {e}")))
}

/// No temporary file of a create, copy or compaction is left behind.
fn no_temp_files(dir: &Path, what: &str) -> TestResult {
    let entries = std::fs::read_dir(dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        ensure!(
            !name.contains("cimg-tmp"),
            "{what}: temporary file {name} left behind"
        );
    }
    Ok(())
}

fn harness<T: Elem>(
    width: usize,
    height: usize,
    file: bool,
    image: bool,
) -> TestResult<(Harness<T>, Option<PathBuf>)> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = file.then(|| {
        dir.path()
            .join(if image { "image.cimg" } else { "channel.cimg" })
    });
    Ok((
        Harness {
            dir,
            path: path.clone(),
            image,
            target: None,
            held: Vec::new(),
            reader: None,
            model: Model::new(width, height, size_of::<T>()),
            oracles: HashMap::new(),
            next_uid: 0,
            last_generation: 0,
            copies: 0,
            step: 0,
            auto_zero: false,
        },
        path,
    ))
}

fn run_image<T: Elem>(case: &ImageCase) -> TestResult {
    let (mut h, path) = harness::<T>(case.width, case.height, case.file, true)?;
    let (w, ht) = (case.width, case.height);
    if case.from_channels && !case.file && !case.initial.is_empty() {
        // Every channel gets the first one's settings; names only if all have one.
        let (settings, rows) = case.initial[0].settings.build(w, ht, h.model.size);
        let names: Vec<&str> = case
            .initial
            .iter()
            .filter_map(|a| a.name.as_deref())
            .collect();
        let names = if names.len() == case.initial.len() {
            names
        } else {
            Vec::new()
        };
        let mut chans = Vec::new();
        for (k, spec) in case.initial.iter().enumerate() {
            h.step += 1;
            let chunks = match &spec.content {
                AddContent::Data(specs) => h.gen_channel(specs, rows),
                AddContent::Lazy(v) => h.gen_channel(&[Data::Const(v.clone())], rows),
            };
            let uid = h.new_uid();
            let name = names.get(k).copied().unwrap_or("").to_string();
            let stored = h.model.lazy_stored(rows);
            chans.push(
                h.model
                    .data_channel(uid, settings, rows, name, chunks, stored),
            );
        }
        let data: Vec<Vec<T>> = chans
            .iter()
            .map(|c| to_elems::<T>(&c.chunks.concat()))
            .collect();
        let refs: Vec<&[T]> = data.iter().map(Vec::as_slice).collect();
        let img = Image::from_channels(&refs, w, ht, &names, settings).ctx("from_channels")?;
        h.model.names_present = !names.is_empty();
        for c in chans {
            h.model_add(c)?;
        }
        let held = h.held_of(&Target::Image(img.clone()));
        h.held = held;
        h.target = Some(Target::Image(img));
    } else {
        let img = match &path {
            Some(p) => Image::create(p, w, ht).ctx("Image::create")?,
            None => Image::new(w, ht).ctx("Image::new")?,
        };
        ensure_eq!(img.path(), path.as_deref(), "path");
        h.target = Some(Target::Image(img));
        for spec in &case.initial {
            h.step += 1;
            h.add(spec)?;
        }
    }
    h.run(&case.ops)
}

fn run_channel<T: Elem>(case: &ChannelCase) -> TestResult {
    let (mut h, path) = harness::<T>(case.width, case.height, case.file, false)?;
    let (w, ht) = (case.width, case.height);
    let (settings, rows) = case.settings.build(w, ht, h.model.size);
    let uid = h.new_uid();
    let (channel, mc) = match &case.init {
        Init::Data(specs) => {
            let chunks = h.gen_channel(specs, rows);
            let data = to_elems::<T>(&chunks.concat());
            let c = match &path {
                Some(p) => Channel::create(p, &data, w, ht, settings),
                None => Channel::new(&data, w, ht, settings),
            }
            .ctx("create channel")?;
            (
                c,
                h.model.data_channel(
                    uid,
                    settings,
                    rows,
                    String::new(),
                    chunks,
                    h.model.lazy_stored(rows),
                ),
            )
        }
        Init::Full(v) => {
            let bits = v.bits::<T>() & (u64::MAX >> (64 - 8 * h.model.size));
            let value = from_bits::<T>(bits);
            let c = match &path {
                Some(p) => Channel::create_full(p, w, ht, value, settings),
                None => Channel::full(w, ht, value, settings),
            }
            .ctx("create full channel")?;
            (
                c,
                h.model.lazy_channel(
                    uid,
                    settings,
                    rows,
                    String::new(),
                    bits,
                    h.model.lazy_stored(rows),
                ),
            )
        }
        Init::Zeros => {
            let c = match &path {
                Some(p) => Channel::create_full(p, w, ht, zeroed::<T>(), settings),
                None => Channel::zeros(w, ht, settings),
            }
            .ctx("create zeros channel")?;
            (
                c,
                h.model.lazy_channel(
                    uid,
                    settings,
                    rows,
                    String::new(),
                    0,
                    h.model.lazy_stored(rows),
                ),
            )
        }
    };
    ensure_eq!(channel.path(), path.as_deref(), "path");
    h.model_add(mc)?;
    h.held = vec![(uid, channel.clone())];
    h.target = Some(Target::Channel(channel));
    h.run(&case.ops)
}

// ---------------------------------------------------------------------------------------
// The tests: both state machines for every element type
// ---------------------------------------------------------------------------------------

/// Run a case in a thread of its own, so that no per-thread state (such as cached
/// compression contexts) carries over from earlier cases: a failure replays on its own.
fn in_fresh_thread(case: impl FnOnce() -> TestResult + Send) -> TestResult {
    std::thread::scope(|s| s.spawn(case).join())
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// 64 cases per test unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    // Failures persist beside this file, as the `proptest!` macro would keep them.
    config.source_file = Some(file!());
    config
}

/// Run `test` on the cases `strategy` generates, each in a fresh thread, shrinking a
/// failure to a minimal case; then print how many cases and operations ran.
fn run_cases<S>(
    what: &str,
    strategy: S,
    ops: fn(&S::Value) -> usize,
    test: fn(&S::Value) -> TestResult,
) where
    S: Strategy,
    S::Value: Send + Sync,
{
    let cases = AtomicUsize::new(0);
    let operations = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |case| {
        cases.fetch_add(1, Ordering::Relaxed);
        operations.fetch_add(ops(&case), Ordering::Relaxed);
        in_fresh_thread(|| test(&case))
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
    println!(
        "model [{what}]: {} cases, {} operations",
        cases.into_inner(),
        operations.into_inner()
    );
}

macro_rules! model_tests {
    ($($module:ident: $t:ty),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn image_matches_model() {
                let what = concat!(stringify!($module), " image");
                run_cases(what, image_case(), |c| c.ops.len(), run_image::<$t>);
            }

            #[test]
            fn channel_matches_model() {
                let what = concat!(stringify!($module), " channel");
                run_cases(what, channel_case(), |c| c.ops.len(), run_channel::<$t>);
            }
        }
    )*};
}

model_tests!(
    dtype_u8: u8,
    dtype_i8: i8,
    dtype_u16: u16,
    dtype_i16: i16,
    dtype_u32: u32,
    dtype_i32: i32,
    dtype_f16: f16,
    dtype_f32: f32,
    dtype_f64: f64,
);

// ---------------------------------------------------------------------------------------
// The first bug the state machines found, on its own
// ---------------------------------------------------------------------------------------

/// The compressed length of chunk 0 as a fresh thread stores it, optionally after the
/// same thread stored the one-row last chunk (with the same settings) first.
fn chunk0_len_in_fresh_thread(settings: Settings, after_short_chunk: bool) -> usize {
    std::thread::spawn(move || {
        let (w, h) = (256, 65); // 64 rows per chunk: chunk 1 is one row
        let data: Vec<f32> = (0..w * h)
            .map(|i| ((i % 977) as f32 * 0.5).sin().round())
            .collect();
        let c = Channel::<f32>::zeros(w, h, settings).unwrap();
        if after_short_chunk {
            c.set_chunk(1, &data[64 * w..]).unwrap();
        }
        let before = c.compressed_bytes().unwrap();
        c.set_chunk(0, &data[..64 * w]).unwrap();
        c.compressed_bytes().unwrap() + size_of::<f32>() - before
    })
    .join()
    .unwrap()
}

/// A chunk's compressed form depends on its bytes and its channel's settings only, not on
/// what the same thread compressed before: `block_size()` promises the requested block
/// size capped to the chunk. (Fails while the per-thread c-blosc2 compression context is
/// reused as is: `blosc2_compress_ctx` passes the block size it clamped to the previous,
/// shorter input back in as the requested one, so after a short last chunk every later
/// chunk with the same settings is cut into blocks of that size.)
#[test]
fn compressed_size_does_not_depend_on_earlier_chunks() {
    for block in [0, 32 * 1024] {
        let settings = Settings::default()
            .block_size(block)
            .chunk_size(64 * 256 * 4);
        let fresh = chunk0_len_in_fresh_thread(settings, false);
        let after = chunk0_len_in_fresh_thread(settings, true);
        assert_eq!(
            after, fresh,
            "block size {block}: a 64 KiB chunk stored in {fresh} bytes by a fresh thread takes \
             {after} bytes after the thread compressed the 1 KiB last chunk"
        );
    }
}

/// `read_rows` of a range that starts inside one c-blosc2 block and is exactly one block
/// long returns the rows of the next block instead. (Fails while partial reads go through
/// `blosc2_getitem_ctx` of c-blosc2 2.15.2, whose single-block shortcut in `_blosc_getitem`
/// decodes the last block of a multi-block range straight into the start of the output
/// when that block's length equals the requested length, overwriting the rows before it.)
#[test]
fn read_rows_across_a_block_boundary() {
    // Default settings: one 64 KiB chunk of 16 rows, in 32 KiB blocks of 8 rows.
    let (w, h) = (1024, 16);
    let data: Vec<f32> = (0..w * h).map(|i| (i / w) as f32).collect(); // row r holds r
    let c = Channel::new(&data, w, h, Settings::default()).unwrap();
    assert_eq!(c.block_size().unwrap(), 8 * w * 4);
    for first in 0..=h - 8 {
        let mut out = vec![0.0f32; 8 * w];
        c.read_rows(first, &mut out).unwrap();
        let rows: Vec<f32> = out.chunks(w).map(|r| r[0]).collect();
        let want: Vec<f32> = (first..first + 8).map(|r| r as f32).collect();
        assert_eq!(rows, want, "read_rows({first}, 8 rows): the rows read");
    }
}
