//! Writes the v1 golden files into a directory (SPEC §13):
//!
//! ```text
//! cargo run --release --example make_golden -- tests/data/v1
//! ```
//!
//! **Never rerun this to make `tests/golden.rs` pass.** The committed files are the
//! reference; the generator is kept only to document how they were made. `tests/golden.rs`
//! repeats every formula and constant below on purpose (it must not read this file), so a
//! change here does not change what the test expects.
//!
//! Each file is built through the public API in an anonymous (temporary) channel or image
//! and written with `save_as`, except `commits_u16.cimg`, a named file with a history of
//! commits whose handle is leaked (as if the process had been killed before its last
//! sync). Files are then cut after their last nonzero byte (rounded up to 64, never below
//! `committed_end`): the library preallocates in 64 KiB steps, and the zero tail it leaves
//! is never read (SPEC §1), so the cut keeps the files small without changing their
//! meaning. Output is deterministic except the random `file_id` of every slot. The
//! generation numbers in the comments below are those of the committed files; the library
//! that wrote them (before commit 1377ace) began every file with an empty generation-1
//! commit, so a later library may number (and lay out) a rerun differently.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use compressed_image::{AnyChannel, Channel, Codec, Image, Sample, Settings, f16};

/// How one chunk of a golden channel is made.
#[derive(Clone, Copy)]
enum Kind {
    /// `set_chunk` with the case's formula (at least two distinct elements): a BLOB.
    Blob,
    /// `set_chunk` with every element equal to these bits: a FILL entry.
    Fill(u64),
    /// Never written: reads as the channel's default fill.
    Default,
}
use Kind::{Blob, Default as Dflt, Fill};

/// One single-channel golden file.
struct Case {
    file: &'static str,
    codec: Codec,
    level: u8,
    block_size: usize,
    width: usize,
    height: usize,
    rows_per_chunk: usize,
    default_bits: u64,
    kinds: &'static [Kind],
    /// Bits of the element at column `x`, row `y` of a BLOB chunk (low `typesize` bytes).
    formula: fn(u64, u64) -> u64,
}

fn f16_bits(x: u64, y: u64) -> u64 {
    const SPECIAL: [u64; 5] = [0x7C00, 0xFC00, 0x7E01, 0x0001, 0x8000];
    if x == 22 {
        SPECIAL[(y % 5) as usize]
    } else {
        0x3800 + (x / 2 + y) % 32
    }
}

fn f32_bits(x: u64, y: u64) -> u64 {
    const SPECIAL: [u32; 5] = [
        0x7FC0_BEEF,
        0x8000_0000,
        0x7F80_0000,
        0x0040_0000,
        0xFF80_0001,
    ];
    if x == 0 {
        u64::from(SPECIAL[(y % 5) as usize])
    } else {
        let v = x as f32 * 0.25 - y as f32 * 1.5;
        u64::from(v.to_bits())
    }
}

fn f64_bits(x: u64, y: u64) -> u64 {
    const SPECIAL: [u64; 4] = [
        0x7FF8_0000_DEAD_BEEF,
        0x8000_0000_0000_0000,
        0xFFF0_0000_0000_0000,
        0x0000_0000_0000_0001,
    ];
    if x == 10 {
        SPECIAL[(y % 4) as usize]
    } else {
        let v = x as f64 * 1e-3 + y as f64 * 1e10 - ((x * y) as f64).sqrt();
        v.to_bits()
    }
}

const CASES: &[(&str, Case)] = &[
    (
        "u8",
        Case {
            file: "u8.cimg",
            codec: Codec::Blosclz,
            level: 5,
            block_size: 256,
            width: 64,
            height: 37,
            rows_per_chunk: 8,
            default_bits: 7,
            kinds: &[Blob, Fill(0xA5), Blob, Dflt, Blob],
            formula: |x, y| x / 8 + y * 2,
        },
    ),
    (
        "i8",
        Case {
            file: "i8.cimg",
            codec: Codec::Lz4,
            level: 0,
            block_size: 0,
            width: 33,
            height: 20,
            rows_per_chunk: 6,
            default_bits: 0xFD,                     // -3
            kinds: &[Blob, Dflt, Fill(0x80), Blob], // fill -128
            formula: |x, y| (x * 5).wrapping_sub(y * 9).wrapping_add(x ^ y),
        },
    ),
    (
        "u16",
        Case {
            file: "u16.cimg",
            codec: Codec::Lz4hc,
            level: 9,
            block_size: 128,
            width: 48,
            height: 33,
            rows_per_chunk: 8,
            default_bits: 0x1234,
            kinds: &[Dflt, Blob, Fill(0xBEEF), Blob, Fill(0xBEEF)],
            formula: |x, y| x / 2 + y * 3,
        },
    ),
    (
        "i16",
        Case {
            file: "i16.cimg",
            codec: Codec::Zstd,
            level: 3,
            block_size: 0,
            width: 31,
            height: 19,
            rows_per_chunk: 5,
            default_bits: 0xFED4,                     // -300
            kinds: &[Blob, Blob, Fill(0xFFFE), Dflt], // fill -2
            // pseudo-random: compression does not pay, blosc2 stores the chunk memcpyed
            formula: |x, y| {
                (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
                    >> 29
            },
        },
    ),
    (
        "u32",
        Case {
            file: "u32.cimg",
            codec: Codec::Zlib,
            level: 6,
            block_size: 256,
            width: 21,
            height: 14,
            rows_per_chunk: 3,
            default_bits: 0x89AB_CDEF,
            kinds: &[Blob, Fill(0xDEAD_BEEF), Dflt, Blob, Blob],
            formula: |x, y| x * 1000 + y * 65536 + 7,
        },
    ),
    (
        "i32",
        Case {
            file: "i32.cimg",
            codec: Codec::Lz4,
            level: 1,
            block_size: 32 * 1024,
            width: 17,
            height: 15,
            rows_per_chunk: 4,
            default_bits: 0xF8A4_32EB,                     // -123456789
            kinds: &[Fill(0x8000_0000), Blob, Dflt, Blob], // fill i32::MIN
            formula: |x, y| {
                (y * 7_919_000)
                    .wrapping_sub(x * 100_003)
                    .wrapping_sub(x * y)
            },
        },
    ),
    (
        "f16",
        Case {
            file: "f16.cimg",
            codec: Codec::Zstd,
            level: 9,
            block_size: 64,
            width: 23,
            height: 13,
            rows_per_chunk: 4,
            default_bits: 0xBC00, // -1.0
            // fill: a signalling NaN with payload 0x101
            kinds: &[Blob, Fill(0x7D01), Dflt, Blob],
            formula: f16_bits,
        },
    ),
    (
        "f32",
        Case {
            file: "f32.cimg",
            codec: Codec::Blosclz,
            level: 9,
            block_size: 0,
            width: 40,
            height: 16,
            rows_per_chunk: 3,
            default_bits: 0x8000_0000, // -0.0
            // fills: a quiet NaN with payload, a negative signalling NaN
            kinds: &[Blob, Fill(0x7FC0_1234), Blob, Dflt, Fill(0xFF80_0001), Blob],
            formula: f32_bits,
        },
    ),
    (
        "f64",
        Case {
            file: "f64.cimg",
            codec: Codec::Zlib,
            level: 1,
            block_size: 0,
            width: 11,
            height: 9,
            rows_per_chunk: 2,
            default_bits: 0x7FF0_0000_0000_0001, // signalling NaN, payload 1
            // fills: a quiet NaN with payload, then -0.0 (the short last chunk)
            kinds: &[
                Blob,
                Fill(0x7FF8_0000_DEAD_BEEF),
                Dflt,
                Blob,
                Fill(0x8000_0000_0000_0000),
            ],
            formula: f64_bits,
        },
    ),
];

/// The element with raw bits `bits` (low bytes, little-endian).
fn from_bits<T: Sample>(bits: u64) -> T {
    bytemuck::pod_read_unaligned(&bits.to_le_bytes()[..size_of::<T>()])
}

/// Chunk `index` of `case` made by the formula, as elements.
fn formula_chunk<T: Sample>(case: &Case, index: usize) -> Vec<T> {
    let first = index * case.rows_per_chunk;
    let last = (first + case.rows_per_chunk).min(case.height);
    (first..last)
        .flat_map(|y| (0..case.width).map(move |x| (x as u64, y as u64)))
        .map(|(x, y)| from_bits((case.formula)(x, y)))
        .collect()
}

fn make_channel<T: Sample>(case: &Case, out: &Path) {
    let settings = Settings::default()
        .codec(case.codec)
        .level(case.level)
        .block_size(case.block_size)
        .chunk_size(case.rows_per_chunk * case.width * size_of::<T>());
    let channel = Channel::<T>::full(
        case.width,
        case.height,
        from_bits(case.default_bits),
        settings,
    )
    .unwrap();
    assert_eq!(channel.num_chunks(), case.kinds.len(), "{}", case.file);
    for (index, kind) in case.kinds.iter().enumerate() {
        let n = channel.chunk_elems_at(index).unwrap();
        match *kind {
            Blob => channel
                .set_chunk(index, &formula_chunk::<T>(case, index))
                .unwrap(),
            Fill(bits) => channel
                .set_chunk(index, &vec![from_bits::<T>(bits); n])
                .unwrap(),
            Dflt => {}
        }
        assert_eq!(
            channel.is_lazy(index).unwrap(),
            !matches!(kind, Blob),
            "{} chunk {index}",
            case.file
        );
    }
    channel.save_as(out).unwrap();
}

/// `Image<f32>` 24 × 10: channel ids 0, 2, 3 (id 1 was removed), names "R", "", "R",
/// nested metadata with a non-alphabetical key order.
fn make_image(out: &Path) {
    let (w, h) = (24usize, 10usize);
    let image = Image::<f32>::new(w, h).unwrap();
    let formula = |seed: f32| -> Vec<f32> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x as f32 - 11.5) * seed + y as f32 * 0.125))
            .collect()
    };
    // id 0 "R": zstd 5, 4 rows per chunk: BLOB, FILL (NaN with payload), BLOB (2 rows).
    let r = image
        .add_channel(
            &formula(0.5),
            Some("R"),
            Settings::default()
                .codec(Codec::Zstd)
                .level(5)
                .block_size(0)
                .chunk_size(w * 4 * 4),
        )
        .unwrap();
    r.set_chunk(1, &vec![f32::from_bits(0x7FC0_0ABC); w * 4])
        .unwrap();
    // id 1: removed below.
    image
        .add_lazy_channel(9.0, Some("tmp"), Settings::default())
        .unwrap();
    // id 2 "": lz4hc 9, 3 rows per chunk, never written: no table, reads -0.0.
    image
        .add_lazy_channel(
            -0.0,
            Some(""),
            Settings::default()
                .codec(Codec::Lz4hc)
                .level(9)
                .chunk_size(w * 4 * 3),
        )
        .unwrap();
    // id 3 "R" (a duplicate name): blosclz 1, 5 rows per chunk: BLOB, DEFAULT (2.5).
    let r2 = image
        .add_lazy_channel(
            2.5,
            Some("R"),
            Settings::default()
                .codec(Codec::Blosclz)
                .level(1)
                .block_size(256)
                .chunk_size(w * 4 * 5),
        )
        .unwrap();
    r2.set_chunk(0, &formula(-2.0)[..w * 5]).unwrap();
    image.remove_channel_by_name("tmp").unwrap();
    image
        .set_metadata(serde_json::json!({
            "zeta": 1,
            "alpha": {
                "nested": [1, 2.5, -3, "é✓", null, true, false, {"deep": {"deeper": []}}],
                "empty": {}
            },
            "big": u64::MAX,
            "neg": i64::MIN,
            "float": 0.1,
            "text": "line\nbreak \"quoted\" \u{1}"
        }))
        .unwrap();
    assert_eq!(image.channel_names(), ["R", "", "R"]);
    image.save_as(out).unwrap();
}

/// `u16` 16 × 8, lz4 5, 2 rows per chunk, in a named file with a history: dead space, the
/// newest slot in page B with `durable_end < committed_end`, and a discarded batch's blob
/// past `committed_end`.
fn make_commits(out: &Path) {
    let (w, h) = (16usize, 8usize);
    let data = |seed: u16| -> Vec<u16> {
        (0..w * h)
            .map(|i| (i as u16).wrapping_mul(seed).wrapping_add(seed))
            .collect()
    };
    let settings = Settings::default().level(5).chunk_size(w * 2 * 2);
    // Generations 1 (empty catalog), 2 (all chunks), 3 (marker, page A) at creation.
    let c = Channel::<u16>::create(out, &data(3), w, h, settings).unwrap();
    let chunk = |seed: u16, index: usize| data(seed)[index * 2 * w..(index + 1) * 2 * w].to_vec();
    c.set_chunk(1, &chunk(5, 1)).unwrap(); // gen 4, page A
    c.set_chunk(2, &[0x5555; 32]).unwrap(); // gen 5, page A
    c.sync().unwrap(); // marker gen 6, page B
    c.set_chunk(1, &chunk(7, 1)).unwrap(); // gen 7, page B; durable_end = end of gen 5
    {
        let mut batch = c.batch().unwrap();
        batch.set_chunk(3, &chunk(11, 3)).unwrap(); // appended, then discarded
    }
    // As if the process were killed now: no sync on drop, no marker.
    std::mem::forget(c);
}

/// Cut the zero tail after the last nonzero byte (rounded up to 64, at least
/// `committed_end`).
fn trim(path: &Path) {
    let committed_end = AnyChannel::open_read_only(path)
        .map(|c| c.stats().unwrap().committed_end)
        .or_else(|_| Image::<f32>::open_read_only(path).map(|i| i.stats().unwrap().committed_end))
        .unwrap();
    let bytes = fs::read(path).unwrap();
    let last_nonzero = bytes.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
    let len = if last_nonzero <= committed_end {
        committed_end
    } else {
        last_nonzero.div_ceil(64) * 64
    };
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn main() {
    let out_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: make_golden OUTPUT_DIR"),
    );
    fs::create_dir_all(&out_dir).unwrap();
    // Build in a scratch directory (save_as leaves `<path>.lock` sidecars), then copy.
    let scratch = tempfile::tempdir().unwrap();
    let mut made = Vec::new();
    for (dtype, case) in CASES {
        let path = scratch.path().join(case.file);
        match *dtype {
            "u8" => make_channel::<u8>(case, &path),
            "i8" => make_channel::<i8>(case, &path),
            "u16" => make_channel::<u16>(case, &path),
            "i16" => make_channel::<i16>(case, &path),
            "u32" => make_channel::<u32>(case, &path),
            "i32" => make_channel::<i32>(case, &path),
            "f16" => make_channel::<f16>(case, &path),
            "f32" => make_channel::<f32>(case, &path),
            "f64" => make_channel::<f64>(case, &path),
            other => unreachable!("{other}"),
        }
        made.push(path);
    }
    let image = scratch.path().join("image_f32.cimg");
    make_image(&image);
    made.push(image);
    let commits = scratch.path().join("commits_u16.cimg");
    make_commits(&commits);
    made.push(commits);
    for path in made {
        trim(&path);
        let target = out_dir.join(path.file_name().unwrap());
        fs::write(&target, fs::read(&path).unwrap()).unwrap();
        println!(
            "{} {} bytes",
            target.display(),
            fs::metadata(&target).unwrap().len()
        );
    }
}
