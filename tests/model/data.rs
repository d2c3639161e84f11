//! Element types, generated chunk data, and the test's view of the shared model
//! (`tests/common/model.rs`): requested settings and each chunk's share of
//! `compressed_bytes`.

use std::collections::BTreeSet;
use std::mem::size_of;

use compressed_image::{Codec, Sample, Settings, f16};
use proptest::sample::Index;

use crate::common::format::{HEADER, align64};
use crate::common::model::{ImageChannel, ImageModel};
use crate::common::rng::Rng;

/// An element type with bit patterns worth testing.
pub trait Elem: Sample {
    /// Little-endian bit patterns (NaN payloads, −0.0, infinities, subnormals, extremes).
    const SPECIALS: &'static [u64];
    /// A small, compressible value.
    fn small(v: i32) -> Self;
}

pub const INT8: &[u64] = &[0, 1, 0x7f, 0x80, 0xff];
pub const INT16: &[u64] = &[0, 1, 0x7fff, 0x8000, 0xffff, 0x0100];
pub const INT32: &[u64] = &[0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x0001_0000];

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
pub enum Val {
    /// One of [`Elem::SPECIALS`].
    Special(Index),
    /// Arbitrary bits, truncated to the element size.
    Bits(u64),
}

impl Val {
    pub fn bits<T: Elem>(&self) -> u64 {
        match self {
            Val::Special(i) => T::SPECIALS[i.index(T::SPECIALS.len())],
            Val::Bits(b) => *b,
        }
    }
}

/// The contents of one chunk.
#[derive(Clone, Debug)]
pub enum Data {
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
pub enum Edit {
    Replace(Data),
    Poke {
        at: Index,
        val: Val,
    },
    /// `data_mut` without a change: the chunk is written back as it is.
    Touch,
}

pub fn elem_bytes<T: Elem>(bits: u64) -> Vec<u8> {
    bits.to_le_bytes()[..size_of::<T>()].to_vec()
}

pub fn from_bits<T: Elem>(bits: u64) -> T {
    bytemuck::pod_read_unaligned(&bits.to_le_bytes()[..size_of::<T>()])
}

/// `n` elements of `data` as little-endian bytes; `salt` varies seeded contents.
pub fn gen_bytes<T: Elem>(data: &Data, n: usize, salt: u64) -> Vec<u8> {
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

pub fn to_elems<T: Sample>(bytes: &[u8]) -> Vec<T> {
    let mut out = vec![zeroed::<T>(); bytes.len() / size_of::<T>()];
    bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(bytes);
    out
}

pub fn as_bytes<T: Sample>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

pub fn zeroed<T: Sample>() -> T {
    bytemuck::Zeroable::zeroed()
}

/// Requested compression settings; `rows == 0` keeps the default 4 MiB chunk (one chunk
/// for these small channels), otherwise the chunk size is `rows` scanlines plus `extra`
/// bytes less than one more scanline.
#[derive(Clone, Debug)]
pub struct SettingsSpec {
    pub codec: Index,
    pub level: u8,
    pub block: Index,
    pub rows: usize,
    pub extra: usize,
}

pub const BLOCKS: [usize; 7] = [0, 8, 16, 40, 256, 4096, 32 * 1024];

impl SettingsSpec {
    /// The settings and the rows per chunk the geometry rules give (SPEC §5.2).
    pub fn build(&self, width: usize, height: usize, size: usize) -> (Settings, usize) {
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
pub type Len = (usize, usize);

/// Every total of `fixed` plus one of the two lengths of each item.
pub fn sums(fixed: usize, items: &[Len]) -> BTreeSet<usize> {
    let mut out = BTreeSet::from([fixed]);
    for &(a, b) in items {
        out = out.iter().flat_map(|s| [s + a, s + b]).collect();
    }
    out
}

/// Each chunk's share of `compressed_bytes`: one element for a lazy chunk, else the blob
/// length, as c-blosc2 compresses the chunk single-threaded and multi-threaded (the two
/// may differ by a few bytes; the library uses either).
pub type Stored = Vec<Len>;

/// A channel of the model, with its chunks' shares of `compressed_bytes`.
pub type MChan = ImageChannel<Stored>;

pub type Model = ImageModel<Stored>;

impl Model {
    /// The shares of a lazy channel: one element per chunk.
    pub fn lazy_stored(&self, rows: usize) -> Stored {
        vec![(self.size, self.size); self.height.div_ceil(rows)]
    }

    /// The possible live byte counts as SPEC §12 defines them: the catalog, the metadata,
    /// every table and every blob the commit references, each rounded up to 64 bytes with
    /// its header.
    pub fn live_bytes(&self) -> BTreeSet<usize> {
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
