//! Golden files of format v1 (SPEC §13): `tests/data/v1/*.cimg` are committed v1.0 files,
//! and this test decodes every element of them bit-exactly. **These files must decode
//! forever: every later version of the library with format major version 1 must read them
//! exactly as written here. Never regenerate them to make this test pass** — a failure
//! means the library broke compatibility with files already on users' disks (or this test
//! is wrong). The expected contents are recomputed below from formulas and constants that
//! deliberately repeat those of `examples/make_golden.rs` (the generator is never run or
//! read by this test). `tests/data/v1/README.md` describes each file.

use std::fs;
use std::path::PathBuf;

use compressed_image::{AnyChannel, Channel, Codec, Dtype, Error, Image, Sample, f16};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1")
}

/// What one chunk holds.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A compressed BLOB with the case's formula.
    Blob,
    /// A FILL entry: every element has these bits.
    Fill(u64),
    /// Never written: the channel's default fill.
    Default,
}
use Kind::{Blob, Default as Dflt, Fill};

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blob => f.write_str("Blob"),
            Fill(bits) => write!(f, "Fill({bits:#x})"),
            Dflt => f.write_str("Default"),
        }
    }
}

/// One single-channel golden file.
struct Case {
    file: &'static str,
    dtype: Dtype,
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
        u64::from((x as f32 * 0.25 - y as f32 * 1.5).to_bits())
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
        (x as f64 * 1e-3 + y as f64 * 1e10 - ((x * y) as f64).sqrt()).to_bits()
    }
}

const CASES: &[Case] = &[
    Case {
        file: "u8.cimg",
        dtype: Dtype::U8,
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
    Case {
        file: "i8.cimg",
        dtype: Dtype::I8,
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
    Case {
        file: "u16.cimg",
        dtype: Dtype::U16,
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
    Case {
        file: "i16.cimg",
        dtype: Dtype::I16,
        codec: Codec::Zstd,
        level: 3,
        block_size: 0,
        width: 31,
        height: 19,
        rows_per_chunk: 5,
        default_bits: 0xFED4,                     // -300
        kinds: &[Blob, Blob, Fill(0xFFFE), Dflt], // fill -2
        formula: |x, y| {
            (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)) >> 29
        },
    },
    Case {
        file: "u32.cimg",
        dtype: Dtype::U32,
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
    Case {
        file: "i32.cimg",
        dtype: Dtype::I32,
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
    Case {
        file: "f16.cimg",
        dtype: Dtype::F16,
        codec: Codec::Zstd,
        level: 9,
        block_size: 64,
        width: 23,
        height: 13,
        rows_per_chunk: 4,
        default_bits: 0xBC00,                     // -1.0
        kinds: &[Blob, Fill(0x7D01), Dflt, Blob], // signalling NaN, payload 0x101
        formula: f16_bits,
    },
    Case {
        file: "f32.cimg",
        dtype: Dtype::F32,
        codec: Codec::Blosclz,
        level: 9,
        block_size: 0,
        width: 40,
        height: 16,
        rows_per_chunk: 3,
        default_bits: 0x8000_0000, // -0.0
        // a quiet NaN with payload, a negative signalling NaN
        kinds: &[Blob, Fill(0x7FC0_1234), Blob, Dflt, Fill(0xFF80_0001), Blob],
        formula: f32_bits,
    },
    Case {
        file: "f64.cimg",
        dtype: Dtype::F64,
        codec: Codec::Zlib,
        level: 1,
        block_size: 0,
        width: 11,
        height: 9,
        rows_per_chunk: 2,
        default_bits: 0x7FF0_0000_0000_0001, // signalling NaN, payload 1
        // a quiet NaN with payload, then -0.0 in the short last chunk
        kinds: &[
            Blob,
            Fill(0x7FF8_0000_DEAD_BEEF),
            Dflt,
            Blob,
            Fill(0x8000_0000_0000_0000),
        ],
        formula: f64_bits,
    },
];

/// The element `bits` as `size` little-endian bytes.
fn elem(bits: u64, size: usize) -> Vec<u8> {
    bits.to_le_bytes()[..size].to_vec()
}

/// Expected bytes of chunk `index`.
fn expected_chunk(case: &Case, index: usize) -> Vec<u8> {
    let size = case.dtype.size();
    let first = index * case.rows_per_chunk;
    let last = (first + case.rows_per_chunk).min(case.height);
    let n = (last - first) * case.width;
    match case.kinds[index] {
        Blob => (first..last)
            .flat_map(|y| (0..case.width).map(move |x| (x as u64, y as u64)))
            .flat_map(|(x, y)| elem((case.formula)(x, y), size))
            .collect(),
        Fill(bits) => elem(bits, size).repeat(n),
        Dflt => elem(case.default_bits, size).repeat(n),
    }
}

fn expected_channel(case: &Case) -> Vec<u8> {
    (0..case.kinds.len())
        .flat_map(|i| expected_chunk(case, i))
        .collect()
}

/// The decoded channel through the typed API, as bytes; plus the typed checks.
fn typed_bytes<T: Sample>(path: &std::path::Path) -> Vec<u8> {
    let channel = Channel::<T>::open_read_only(path).unwrap();
    let values = channel.get_decompressed().unwrap();
    let image = Image::<T>::open_read_only(path).unwrap();
    assert_eq!(image.channels().unwrap().len(), 1);
    assert!(image.channel_names().is_empty());
    assert_eq!(image.metadata(), serde_json::Value::Null);
    let via_image = image.get_decompressed().unwrap();
    assert_eq!(
        bytemuck::cast_slice::<T, u8>(&via_image[0]),
        bytemuck::cast_slice::<T, u8>(&values)
    );
    bytemuck::cast_slice(&values).to_vec()
}

fn typed_channel_bytes(dtype: Dtype, path: &std::path::Path) -> Vec<u8> {
    match dtype {
        Dtype::U8 => typed_bytes::<u8>(path),
        Dtype::I8 => typed_bytes::<i8>(path),
        Dtype::U16 => typed_bytes::<u16>(path),
        Dtype::I16 => typed_bytes::<i16>(path),
        Dtype::U32 => typed_bytes::<u32>(path),
        Dtype::I32 => typed_bytes::<i32>(path),
        Dtype::F16 => typed_bytes::<f16>(path),
        Dtype::F32 => typed_bytes::<f32>(path),
        Dtype::F64 => typed_bytes::<f64>(path),
        other => panic!("no golden file for {other}"),
    }
}

fn check_case(case: &Case) {
    let path = data_dir().join(case.file);
    let f = case.file;
    let file_len = fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{f}: {e}"))
        .len();
    assert!(file_len < 64 * 1024, "{f}: {file_len} bytes");
    let c = AnyChannel::open_read_only(&path).unwrap_or_else(|e| panic!("{f}: {e}"));
    assert!(!c.is_writable());
    let size = case.dtype.size();
    assert_eq!(c.dtype(), case.dtype, "{f}");
    assert_eq!(c.width(), case.width, "{f}");
    assert_eq!(c.height(), case.height, "{f}");
    let g = c.geometry();
    assert_eq!(g.rows_per_chunk(), case.rows_per_chunk, "{f}");
    assert_eq!(g.elem_size(), size, "{f}");
    assert_eq!(c.num_chunks(), case.kinds.len(), "{f}");
    assert_eq!(
        c.chunk_size(),
        case.rows_per_chunk * case.width * size,
        "{f}"
    );
    assert_eq!(c.codec(), case.codec, "{f}");
    assert_eq!(c.level(), case.level, "{f}");
    assert_eq!(c.settings().block_size, case.block_size, "{f}");
    // Every file has a short last chunk.
    let last = case.kinds.len() - 1;
    assert!(!case.height.is_multiple_of(case.rows_per_chunk), "{f}");
    assert_eq!(
        c.chunk_elems_at(last).unwrap(),
        (case.height % case.rows_per_chunk) * case.width,
        "{f}"
    );

    // Chunk by chunk.
    for (i, kind) in case.kinds.iter().enumerate() {
        assert_eq!(
            c.is_lazy(i).unwrap(),
            *kind != Blob,
            "{f}: chunk {i} ({kind:?})"
        );
        let mut out = vec![0u8; c.chunk_size_at(i).unwrap()];
        c.get_chunk_bytes(i, &mut out).unwrap();
        assert!(
            out == expected_chunk(case, i),
            "{f}: chunk {i} ({kind:?}) differs"
        );
    }
    // The whole channel, untyped and typed.
    let expected = expected_channel(case);
    let mut all = vec![0u8; expected.len()];
    c.decompress_into_bytes(&mut all).unwrap();
    assert!(all == expected, "{f}: decompressed channel differs");
    assert!(
        typed_channel_bytes(case.dtype, &path) == expected,
        "{f}: typed decode differs"
    );
    // Row ranges, decoded block by block (partial chunks) and across chunk boundaries.
    let row = case.width * size;
    for (first, n) in [
        (1, case.height - 2),
        (case.rows_per_chunk - 1, 2),
        (case.height - 1, 1),
        (0, 1),
    ] {
        let mut out = vec![0u8; n * row];
        c.read_rows_bytes(first, &mut out).unwrap();
        assert!(
            out == expected[first * row..(first + n) * row],
            "{f}: rows {first}..+{n} differ"
        );
    }
    // Space accounting of the committed tree.
    let stats = c.stats().unwrap();
    let blobs = case.kinds.iter().filter(|k| **k == Blob).count();
    assert_eq!(stats.blob_chunks, blobs, "{f}");
    assert_eq!(stats.fill_chunks, case.kinds.len() - blobs, "{f}");
    let lazy_bytes: usize = (0..case.kinds.len())
        .filter(|&i| case.kinds[i] != Blob)
        .map(|i| c.chunk_size_at(i).unwrap())
        .sum();
    assert_eq!(stats.fill_bytes, lazy_bytes as u64, "{f}");
    assert_eq!(stats.file_len, file_len, "{f}");
    // Opening with the wrong element type is refused.
    let wrong = if case.dtype == Dtype::U8 {
        Channel::<i8>::open_read_only(&path).map(drop)
    } else {
        Channel::<u8>::open_read_only(&path).map(drop)
    };
    assert!(
        matches!(wrong, Err(Error::DtypeMismatch { found, .. }) if found == case.dtype),
        "{f}: {wrong:?}"
    );
}

#[test]
fn u8_channel() {
    check_case(&CASES[0]);
}

#[test]
fn i8_channel_level0_memcpyed() {
    check_case(&CASES[1]);
    // Level 0 stores every blob memcpyed: the raw samples sit verbatim in the file, right
    // after the 32-byte record header and the 32-byte blosc2 header, at a 64-aligned offset
    // (SPEC §4).
    let case = &CASES[1];
    let file = fs::read(data_dir().join(case.file)).unwrap();
    for (i, kind) in case.kinds.iter().enumerate() {
        if *kind != Blob {
            continue;
        }
        let raw = expected_chunk(case, i);
        let found = (8192..file.len().saturating_sub(raw.len()))
            .step_by(64)
            .any(|p| file[p..p + raw.len()] == raw[..]);
        assert!(
            found,
            "chunk {i}: raw samples not found at an aligned offset"
        );
    }
}

#[test]
fn u16_channel() {
    check_case(&CASES[2]);
}

#[test]
fn i16_channel() {
    check_case(&CASES[3]);
}

#[test]
fn u32_channel() {
    check_case(&CASES[4]);
}

#[test]
fn i32_channel() {
    check_case(&CASES[5]);
}

#[test]
fn f16_channel() {
    check_case(&CASES[6]);
}

#[test]
fn f32_channel() {
    check_case(&CASES[7]);
}

#[test]
fn f64_channel() {
    check_case(&CASES[8]);
}

#[test]
fn cases_cover_every_dtype_codec_and_kind() {
    for d in Dtype::ALL {
        assert!(CASES.iter().any(|c| c.dtype == d), "{d}");
    }
    for codec in Codec::ALL {
        assert!(CASES.iter().any(|c| c.codec == codec), "{codec}");
    }
    assert!(CASES.iter().any(|c| c.level == 0));
    for c in CASES {
        assert!(
            c.kinds.contains(&Blob) && c.kinds.contains(&Dflt),
            "{}",
            c.file
        );
        assert!(c.kinds.iter().any(|k| matches!(k, Fill(_))), "{}", c.file);
    }
}

/// Codec, level, block size, rows per chunk, lazy chunks, elements of one image channel.
type Expect<'a> = (Codec, u8, usize, usize, &'a [bool], &'a [f32]);

/// Metadata of `image_f32.cimg`, in its stored key order.
fn image_metadata() -> serde_json::Value {
    serde_json::json!({
        "zeta": 1,
        "alpha": {
            "nested": [1, 2.5, -3, "é✓", null, true, false, {"deep": {"deeper": []}}],
            "empty": {}
        },
        "big": u64::MAX,
        "neg": i64::MIN,
        "float": 0.1,
        "text": "line\nbreak \"quoted\" \u{1}"
    })
}

#[test]
fn image_f32() {
    let path = data_dir().join("image_f32.cimg");
    assert!(fs::metadata(&path).unwrap().len() < 64 * 1024);
    let (w, h) = (24usize, 10usize);
    let formula = |seed: f32| -> Vec<f32> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x as f32 - 11.5) * seed + y as f32 * 0.125))
            .collect()
    };
    let image = Image::<f32>::open_read_only(&path).unwrap();
    assert_eq!(image.channel_names(), ["R", "", "R"]);
    assert_eq!(image.channel_index("R").unwrap(), 0);
    assert_eq!(image.channel_index("").unwrap(), 1);
    assert!(matches!(
        image.channel_index("tmp"),
        Err(Error::UnknownChannelName(_))
    ));
    let meta = image.metadata();
    assert_eq!(meta, image_metadata());
    // Key order is kept (serde_json's preserve_order): compare the serialisations.
    assert_eq!(meta.to_string(), image_metadata().to_string());

    // Channel 0 "R": zstd 5, 4 rows per chunk: BLOB, FILL (NaN with payload), BLOB (2 rows).
    let mut c0 = formula(0.5);
    c0[w * 4..w * 8].fill(f32::from_bits(0x7FC0_0ABC));
    // Channel 1 "": lz4hc 9, 3 rows per chunk, never written (no table): -0.0.
    let c1 = vec![-0.0f32; w * h];
    // Channel 2 "R": blosclz 1, block 256, 5 rows per chunk: BLOB, DEFAULT (2.5).
    let mut c2 = formula(-2.0);
    c2[w * 5..].fill(2.5);
    let expect: [Expect<'_>; 3] = [
        (Codec::Zstd, 5, 0, 4, &[false, true, false], &c0),
        (Codec::Lz4hc, 9, 32 * 1024, 3, &[true; 4], &c1),
        (Codec::Blosclz, 1, 256, 5, &[false, true], &c2),
    ];
    let channels = image.channels().unwrap();
    assert_eq!(channels.len(), 3);
    let decoded = image.get_decompressed().unwrap();
    for (i, (codec, level, block, rows, lazy, data)) in expect.into_iter().enumerate() {
        let c = &channels[i];
        assert_eq!(c.width(), w);
        assert_eq!(c.height(), h);
        assert_eq!(c.dtype(), Dtype::F32);
        assert_eq!(c.codec(), codec, "channel {i}");
        assert_eq!(c.level(), level, "channel {i}");
        assert_eq!(c.settings().block_size, block, "channel {i}");
        assert_eq!(c.geometry().rows_per_chunk(), rows, "channel {i}");
        assert_eq!(c.num_chunks(), lazy.len(), "channel {i}");
        for (k, &l) in lazy.iter().enumerate() {
            assert_eq!(c.is_lazy(k).unwrap(), l, "channel {i} chunk {k}");
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&c.get_decompressed().unwrap()),
            bits(data),
            "channel {i}"
        );
        assert_eq!(bits(&decoded[i]), bits(data), "channel {i}");
    }
    // Name lookups take the first match.
    let by_name = image.channel_by_name("R").unwrap();
    assert_eq!(by_name.level(), 5);
    // A three-channel file is not a channel file; the element type is checked.
    assert!(AnyChannel::open_read_only(&path).is_err());
    assert!(matches!(
        Image::<u16>::open_read_only(&path).map(drop),
        Err(Error::ChannelDtypeMismatch { .. })
    ));
    let stats = image.stats().unwrap();
    assert_eq!((stats.blob_chunks, stats.fill_chunks), (3, 6));
}

#[test]
fn commits_u16_history() {
    // A named file with several commits, left as a killed process leaves it: dead space,
    // the newest slot (generation 7) in page B with durable_end < committed_end, and the
    // blob of a discarded batch after committed_end.
    let path = data_dir().join("commits_u16.cimg");
    let file_len = fs::metadata(&path).unwrap().len();
    assert!(file_len < 64 * 1024);
    let (w, h) = (16usize, 8usize);
    let data = |seed: u16| -> Vec<u16> {
        (0..w * h)
            .map(|i| (i as u16).wrapping_mul(seed).wrapping_add(seed))
            .collect()
    };
    let mut expected = data(3);
    expected[2 * w..4 * w].copy_from_slice(&data(7)[2 * w..4 * w]);
    expected[4 * w..6 * w].fill(0x5555);
    let c = Channel::<u16>::open_read_only(&path).unwrap();
    assert_eq!((c.width(), c.height()), (w, h));
    assert_eq!(c.codec(), Codec::Lz4);
    assert_eq!(c.level(), 5);
    assert_eq!(c.settings().block_size, 32 * 1024);
    assert_eq!(c.geometry().rows_per_chunk(), 2);
    let lazy: Vec<bool> = (0..4).map(|i| c.is_lazy(i).unwrap()).collect();
    assert_eq!(lazy, [false, false, true, false]);
    assert_eq!(c.get_decompressed().unwrap(), expected);
    let stats = c.stats().unwrap();
    assert_eq!(stats.generation, 7);
    assert!(stats.dead_bytes > 0, "{stats:?}");
    assert!(stats.committed_end < file_len, "{stats:?}");
    assert_eq!((stats.blob_chunks, stats.fill_chunks), (3, 1));
}
