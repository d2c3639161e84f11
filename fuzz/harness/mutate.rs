//! Target `open_mutated`: a golden file (tests/data/v1), mutated by a list of
//! structure-aware edits decoded from the input, with the slot and record checksums
//! optionally recomputed so that the edits reach the checks behind the CRCs; then read as
//! in `open_read` and, optionally, written to and read back.
//!
//! Input layout: byte 0 picks the golden file; byte 1 holds flags (bit 0: recompute CRCs,
//! bit 1: also copy record lengths into the references, bits 2 and 4 both: two threads,
//! bit 3: open for writing afterwards, commit, and check the result reads back); then
//! edits, each an opcode byte and its operands, until the input ends.

use std::path::Path;

use compressed_image::{Dtype, FileInfo, Image, Sample, f16};

use super::common::format::{
    CATALOG_FIELDS, DESC_FIELDS, ENTRY, ENTRY_FIELDS, HEADER, Kind, RECORD_FIELDS, REGION_START,
    SLOT_FIELDS, SLOT_PAGE, fix_checksums, put, scan_records,
};
use super::{Input, noise, run_dir};

/// The golden v1 files the mutations start from.
pub const GOLDEN: [(&str, &[u8]); 11] = [
    ("u8", include_bytes!("../../tests/data/v1/u8.cimg")),
    ("i8", include_bytes!("../../tests/data/v1/i8.cimg")),
    ("u16", include_bytes!("../../tests/data/v1/u16.cimg")),
    ("i16", include_bytes!("../../tests/data/v1/i16.cimg")),
    ("u32", include_bytes!("../../tests/data/v1/u32.cimg")),
    ("i32", include_bytes!("../../tests/data/v1/i32.cimg")),
    ("f16", include_bytes!("../../tests/data/v1/f16.cimg")),
    ("f32", include_bytes!("../../tests/data/v1/f32.cimg")),
    ("f64", include_bytes!("../../tests/data/v1/f64.cimg")),
    (
        "image_f32",
        include_bytes!("../../tests/data/v1/image_f32.cimg"),
    ),
    (
        "commits_u16",
        include_bytes!("../../tests/data/v1/commits_u16.cimg"),
    ),
];

/// Largest file the edits may grow.
const MAX_FILE: usize = 1 << 20;
/// Most edits applied from one input.
const MAX_EDITS: usize = 64;

const FLAG_FIX_CRC: u8 = 1;
const FLAG_FIX_LEN: u8 = 2;
/// Both bits: two threads (rarer than the other flags, as a thread count that changes
/// between runs makes c-blosc2 build new thread pools, which dominates the run time).
const FLAG_THREADS: u8 = 4 | 16;
const FLAG_WRITE: u8 = 8;

/// Values that sit on the edges of the format's checks.
const INTERESTING: [u64; 24] = [
    0,
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    9,
    31,
    32,
    63,
    64,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x2000,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x1_0000_0000,
    u64::MAX,
];

/// Fuzz entry point.
pub fn open_mutated(data: &[u8]) {
    let mut input = Input::new(data);
    let (_, golden) = GOLDEN[input.below(GOLDEN.len())];
    let flags = input.u8();
    let mut file = golden.to_vec();
    for _ in 0..MAX_EDITS {
        if input.is_empty() {
            break;
        }
        edit(&mut file, &mut input);
    }
    if flags & FLAG_FIX_CRC != 0 {
        fix_checksums(&mut file, flags & FLAG_FIX_LEN != 0);
    }
    let dir = run_dir();
    let path = dir.path().join("mutated.cimg");
    std::fs::write(&path, &file).expect("write the mutated file");
    let threads = if flags & FLAG_THREADS == FLAG_THREADS {
        2
    } else {
        1
    };
    let Some(info) = super::read::check_file(&path, threads) else {
        return;
    };
    if flags & FLAG_WRITE != 0 {
        write_probe(&path, &info);
    }
}

/// Apply one edit decoded from `input`.
fn edit(file: &mut Vec<u8>, input: &mut Input<'_>) {
    let op = input.u8() % 12;
    let len = file.len().max(1);
    match op {
        // Flip one bit.
        0 => {
            let at = input.u32() as usize % len;
            let bit = input.u8() % 8;
            if let Some(b) = file.get_mut(at) {
                *b ^= 1 << bit;
            }
        }
        // Overwrite bytes.
        1 => {
            let at = input.u32() as usize % len;
            let bytes = input.bytes(32);
            for (i, &b) in bytes.iter().enumerate() {
                if let Some(slot) = file.get_mut(at + i) {
                    *slot = b;
                }
            }
        }
        // An interesting integer at any offset.
        2 => {
            let at = input.u32() as usize % len;
            let size = [1, 2, 4, 8][input.below(4)];
            let value = interesting(input, file.len());
            put(file, at, size, value);
        }
        // Truncate.
        3 => {
            let new_len = input.u32() as usize % (file.len() + 1);
            file.truncate(new_len);
        }
        // Extend with zeros or input bytes.
        4 => {
            let n = usize::from(input.u16()) % 8192;
            if input.u8().is_multiple_of(2) {
                file.resize((file.len() + n).min(MAX_FILE), 0);
            } else {
                let bytes = input.bytes(255).to_vec();
                file.extend_from_slice(&bytes);
                file.truncate(MAX_FILE);
            }
        }
        // Copy a range of the file elsewhere (may extend it).
        5 => {
            let src = input.u32() as usize % len;
            let dst = input.u32() as usize % (len + 64);
            let n = usize::from(input.u16()) % 4096;
            copy_within(file, src, dst, n);
        }
        // Copy a whole record to another aligned offset, or append it.
        6 => {
            let recs = scan_records(file);
            if recs.is_empty() {
                return;
            }
            let r = recs[input.below(recs.len())];
            let n = (HEADER + r.len).div_ceil(64) * 64;
            let dst = if input.u8().is_multiple_of(2) {
                file.len().div_ceil(64) * 64
            } else {
                REGION_START + 64 * (usize::from(input.u16()) % (len / 64 + 1))
            };
            copy_within(file, r.offset, dst, n);
        }
        // Swap the slot pages, or copy one over the other.
        7 => {
            if file.len() >= 2 * SLOT_PAGE {
                match input.u8() % 3 {
                    0 => {
                        let (a, b) = file.split_at_mut(SLOT_PAGE);
                        a.swap_with_slice(&mut b[..SLOT_PAGE]);
                    }
                    1 => file.copy_within(0..SLOT_PAGE, SLOT_PAGE),
                    _ => file.copy_within(SLOT_PAGE..2 * SLOT_PAGE, 0),
                }
            }
        }
        // A field of a slot.
        8 => {
            let page = input.below(2) * SLOT_PAGE;
            let (at, size) = SLOT_FIELDS[input.below(SLOT_FIELDS.len())];
            let value = interesting(input, file.len());
            put(file, page + at, size, value);
        }
        // A field of a record header, or of a catalog, descriptor or table entry.
        9 | 10 => {
            let recs = scan_records(file);
            if recs.is_empty() {
                return;
            }
            let r = recs[input.below(recs.len())];
            let payload = r.offset + HEADER;
            let (at, size) = match (op, r.kind) {
                (9, _) => {
                    let (at, size) = RECORD_FIELDS[input.below(RECORD_FIELDS.len())];
                    (r.offset + at, size)
                }
                (_, Kind::CATALOG) => {
                    let which = input.u8();
                    if which.is_multiple_of(4) || r.len < 128 {
                        let (at, size) = CATALOG_FIELDS[input.below(CATALOG_FIELDS.len())];
                        (payload + at, size)
                    } else {
                        let descs = (r.len - 64) / 64;
                        let d = input.below(descs.max(1));
                        let (at, size) = DESC_FIELDS[input.below(DESC_FIELDS.len())];
                        (payload + 64 + 64 * d + at, size)
                    }
                }
                (_, Kind::TABLE) => {
                    let entries = r.len / ENTRY;
                    let e = input.below(entries.max(1));
                    let (at, size) = ENTRY_FIELDS[input.below(ENTRY_FIELDS.len())];
                    (payload + ENTRY * e + at, size)
                }
                _ => {
                    // Blob or metadata payload: a byte, or a blosc2 header field.
                    let at = input.below(r.len.clamp(1, 256));
                    (payload + at, [1, 2, 4][input.below(3)])
                }
            };
            let value = interesting(input, file.len());
            put(file, at, size, value);
        }
        // Insert or delete whole 64-byte units in the record region (shifts records).
        _ => {
            if file.len() <= REGION_START {
                return;
            }
            let units = (file.len() - REGION_START) / 64 + 1;
            let at = REGION_START + 64 * input.below(units);
            let n = 64 * (1 + input.below(4));
            if input.u8().is_multiple_of(2) {
                if at <= file.len() && file.len() + n <= MAX_FILE {
                    file.splice(at..at, std::iter::repeat_n(0u8, n));
                }
            } else if at + n <= file.len() {
                file.drain(at..at + n);
            }
        }
    }
}

/// An interesting value, or one relative to the file length, or raw input bits.
fn interesting(input: &mut Input<'_>, file_len: usize) -> u64 {
    let pick = input.u8();
    match pick % 4 {
        0 | 1 => INTERESTING[usize::from(pick / 4) % INTERESTING.len()],
        2 => (file_len as u64).wrapping_add(i64::from(input.u8() as i8) as u64),
        _ => input.u64(),
    }
}

/// Copy `n` bytes from `src` to `dst` (the source clipped to the file, the file grown to
/// hold the destination, up to [`MAX_FILE`]).
fn copy_within(file: &mut Vec<u8>, src: usize, dst: usize, n: usize) {
    let n = n.min(file.len().saturating_sub(src));
    if n == 0 || dst + n > MAX_FILE {
        return;
    }
    if file.len() < dst + n {
        file.resize(dst + n, 0);
    }
    file.copy_within(src..src + n, dst);
}

/// Open the (accepted) file for writing, commit a chunk and metadata, and check that a
/// fresh read-only open shows exactly that commit.
fn write_probe(path: &Path, info: &FileInfo) {
    let Some(first) = info.channels.first() else {
        return;
    };
    if info.channels.iter().any(|c| c.dtype != first.dtype) {
        return;
    }
    match first.dtype {
        Dtype::U8 => probe_as::<u8>(path, info),
        Dtype::U16 => probe_as::<u16>(path, info),
        Dtype::U32 => probe_as::<u32>(path, info),
        Dtype::I8 => probe_as::<i8>(path, info),
        Dtype::I16 => probe_as::<i16>(path, info),
        Dtype::I32 => probe_as::<i32>(path, info),
        Dtype::F16 => probe_as::<f16>(path, info),
        Dtype::F32 => probe_as::<f32>(path, info),
        Dtype::F64 => probe_as::<f64>(path, info),
        _ => {}
    }
}

fn probe_as<T: Sample>(path: &Path, info: &FileInfo) {
    let g = info.channels[0].geometry;
    let index = g.num_chunks() - 1;
    let elems = g.chunk_elems_at(index);
    if elems * g.elem_size() > 1 << 20 {
        return;
    }
    let bytes = noise(g.num_chunks() as u64 | 1, elems * g.elem_size());
    let data: Vec<T> = super::from_bytes(&bytes);
    let meta = serde_json::json!({"probe": index});
    {
        let img = match Image::<T>::open(path) {
            Ok(img) => img,
            Err(e) => panic!("a file that opens read-only fails to open for writing: {e:?}"),
        };
        img.set_threads(1).expect("1 thread");
        let ch = img.channel(0).expect("channel 0");
        ch.set_chunk(index, &data)
            .unwrap_or_else(|e| panic!("set_chunk on an accepted file: {e:?}"));
        img.set_metadata(meta.clone())
            .unwrap_or_else(|e| panic!("set_metadata on an accepted file: {e:?}"));
        let generation = img.stats().expect("stats").generation;
        assert!(generation > info.generation);
        drop(ch);
        img.sync().expect("sync");
    }
    let img = match Image::<T>::open_read_only(path) {
        Ok(img) => img,
        Err(e) => panic!("the file no longer opens after a successful commit: {e:?}"),
    };
    img.set_threads(1).expect("1 thread");
    assert_eq!(img.num_channels(), info.channels.len());
    assert_eq!(img.metadata(), meta);
    let ch = img.channel(0).expect("channel 0");
    assert_eq!(ch.geometry(), g);
    let mut out = vec![T::zeroed(); elems];
    match ch.get_chunk(index, &mut out) {
        Ok(()) => assert!(
            bytemuck::cast_slice::<T, u8>(&out) == bytes.as_slice(),
            "the chunk written does not read back"
        ),
        Err(e) => panic!("the chunk written does not read back: {e:?}"),
    }
    let v = img.verify().expect("verify");
    assert!(
        !v.problems
            .iter()
            .any(|p| p.starts_with(&format!("channel 0 chunk {index}:"))),
        "{v:?}"
    );
    // The second read-only check of the whole file, after the commit.
    let again = super::read::check_file(path, 1);
    assert!(again.is_some());
}
