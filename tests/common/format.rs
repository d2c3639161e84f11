//! The file format as the tests read it on their own, from `format/SPEC.md`: the slot
//! pages (§3), records (§4), the catalog and channel descriptors (§5) and chunk tables
//! (§6). Three readers share these definitions:
//!
//! * [`parse_commit`]: a strict parser of a pristine file that checks every rule on the
//!   way and locates every structure, so that damage can target exact bytes;
//! * [`decode_slot`]: a lenient decoder of one slot of a possibly damaged file;
//! * [`scan_records`]: a lenient scan of the record region for anything that looks like a
//!   record header;
//!
//! and the patchers ([`seal_slot`], [`fix_checksums`]) recompute CRCs after an edit, so
//! that the structural checks behind the checksums are what a forged file meets.

use std::collections::HashMap;
use std::ops::Range;

/// The file's magic number, the first 8 bytes of each slot record (SPEC §3).
pub const MAGIC: [u8; 8] = *b"\x89CIM\r\n\x1a\n";
/// Size of one slot page; the slot records sit at the start of pages 0 and 1 (SPEC §3).
pub const SLOT_PAGE: usize = 4096;
/// Length of a slot record.
pub const SLOT_LEN: usize = 256;
/// Bytes of a slot record covered by its CRC; the CRC follows them.
pub const SLOT_CRC_AT: usize = 252;
/// First byte after the slot pages: where the record region starts.
pub const REGION_START: usize = 8192;
/// Length of a record header (SPEC §4).
pub const HEADER: usize = 32;
/// Magic number of a record header.
pub const RECORD_MAGIC: [u8; 4] = *b"CIR1";
/// Length of one chunk-table entry (SPEC §6).
pub const ENTRY: usize = 32;
/// The largest 64-aligned offset: `u64::MAX & !63`.
pub const LAST_ALIGNED: u64 = !63;

/// Offsets and sizes of the fields of a slot record after the magic (SPEC §3): versions,
/// slot length, generation, reserved, committed end, durable end, catalog reference.
pub const SLOT_FIELDS: [(usize, usize); 10] = [
    (8, 2),
    (10, 2),
    (12, 4),
    (16, 8),
    (24, 8),
    (32, 8),
    (40, 8),
    (48, 8),
    (56, 4),
    (60, 4),
];
/// Offsets and sizes of the fields of a record header after the magic (SPEC §4).
pub const RECORD_FIELDS: [(usize, usize); 7] =
    [(4, 1), (5, 1), (8, 8), (16, 4), (20, 4), (24, 4), (28, 4)];
/// Offsets and sizes of the fields of a catalog payload's fixed part (SPEC §5).
pub const CATALOG_FIELDS: [(usize, usize); 10] = [
    (0, 8),
    (8, 8),
    (16, 4),
    (20, 4),
    (24, 4),
    (28, 4),
    (32, 8),
    (40, 4),
    (44, 4),
    (48, 8),
];
/// Offsets and sizes of the fields of a 64-byte channel descriptor (SPEC §5.1).
pub const DESC_FIELDS: [(usize, usize); 16] = [
    (0, 4),
    (4, 1),
    (5, 1),
    (6, 1),
    (7, 1),
    (8, 4),
    (12, 4),
    (16, 4),
    (20, 4),
    (24, 8),
    (32, 8),
    (40, 4),
    (44, 4),
    (48, 4),
    (52, 4),
    (56, 8),
];
/// Offsets and sizes of the fields of a chunk-table entry (SPEC §6).
pub const ENTRY_FIELDS: [(usize, usize); 8] = [
    (0, 1),
    (1, 1),
    (2, 2),
    (4, 4),
    (8, 8),
    (16, 4),
    (20, 4),
    (24, 8),
];

/// CRC-32/IEEE, as the format uses it (SPEC §2).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

pub fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
pub fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The low `size` bytes of `value` at `at`, little-endian; nothing when they would not
/// fit in `buf` (for edits of files of any length).
pub fn put(buf: &mut [u8], at: usize, size: usize, value: u64) {
    if at + size <= buf.len() {
        buf[at..at + size].copy_from_slice(&value.to_le_bytes()[..size]);
    }
}

pub fn align64(n: usize) -> usize {
    n.div_ceil(64) * 64
}

/// A record kind (SPEC §4): the byte after the record magic. A damaged file may hold any
/// byte there, so this is the byte itself with names for the four kinds the format has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(pub u8);

impl Kind {
    pub const BLOB: Kind = Kind(1);
    pub const TABLE: Kind = Kind(2);
    pub const META: Kind = Kind(3);
    pub const CATALOG: Kind = Kind(4);

    pub fn name(self) -> &'static str {
        match self {
            Kind::BLOB => "BLOB",
            Kind::TABLE => "TABLE",
            Kind::META => "META",
            Kind::CATALOG => "CATALOG",
            _ => "unknown kind",
        }
    }
}

/// A reference to a record: where its header is, its payload length and CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rec {
    pub offset: usize,
    pub len: usize,
    pub crc: u32,
    pub kind: Kind,
}

impl Rec {
    pub fn header(&self) -> Range<usize> {
        self.offset..self.offset + HEADER
    }
    pub fn payload(&self) -> Range<usize> {
        self.offset + HEADER..self.offset + HEADER + self.len
    }
    pub fn end(&self) -> usize {
        self.payload().end
    }
    /// The padding after the payload, up to the next 64-byte boundary (never read).
    pub fn padding(&self) -> Range<usize> {
        self.end()..align64(self.end())
    }
}

/// One 32-byte table entry (SPEC §6).
#[derive(Debug, Clone)]
pub struct Entry {
    /// File offset of the entry.
    pub at: usize,
    pub kind: u8,
    /// Fill bits or blob offset.
    pub word: u64,
    pub blob: Option<Rec>,
}

/// One channel descriptor (SPEC §5.1) and its table.
#[derive(Debug, Clone)]
pub struct Chan {
    /// File offset of the 64-byte descriptor.
    pub desc_at: usize,
    pub id: u32,
    pub table: Option<Rec>,
    /// Empty when the channel has no table (every chunk DEFAULT).
    pub entries: Vec<Entry>,
    /// `raw_len(i)` of every chunk.
    pub raw: Vec<usize>,
}

/// One commit: a slot and the tree it references.
#[derive(Debug, Clone)]
pub struct Commit {
    pub page: usize,
    pub generation: u64,
    pub committed_end: usize,
    pub durable_end: usize,
    pub catalog: Rec,
    pub meta: Option<Rec>,
    pub channels: Vec<Chan>,
}

impl Commit {
    /// Every record the commit references.
    pub fn records(&self) -> Vec<Rec> {
        let mut out = vec![self.catalog];
        out.extend(self.meta);
        for c in &self.channels {
            out.extend(c.table);
            out.extend(c.entries.iter().filter_map(|e| e.blob));
        }
        out
    }

    /// File offset of the catalog payload.
    pub fn cat(&self) -> usize {
        self.catalog.payload().start
    }
}

/// Check a record against its reference as a reader must (SPEC §4); a pristine file must
/// pass, so a failure here is a bug of the parser or of the writer.
pub fn check_record(b: &[u8], r: &Rec, channel_id: u32, aux: Option<u32>, commit: (u64, usize)) {
    let (generation, committed_end) = commit;
    assert!(
        r.offset.is_multiple_of(64) && r.offset >= REGION_START,
        "{r:?}"
    );
    assert!(r.end() <= committed_end, "{r:?} past {committed_end}");
    let h = &b[r.header()];
    assert_eq!(h[..4], RECORD_MAGIC, "{r:?}");
    assert_eq!(h[4], r.kind.0, "{r:?}");
    assert_eq!(&h[5..8], &[0, 0, 0], "{r:?}");
    let g = le64(h, 8);
    assert!((1..=generation).contains(&g), "{r:?} generation {g}");
    assert_eq!(le32(h, 16), channel_id, "{r:?}");
    if let Some(aux) = aux {
        assert_eq!(le32(h, 20), aux, "{r:?}");
    }
    assert_eq!(le32(h, 24) as usize, r.len, "{r:?}");
    assert_eq!(le32(h, 28), r.crc, "{r:?}");
    assert_eq!(crc32(&b[r.payload()]), r.crc, "{r:?}");
}

/// Parse the commit in slot page `page` of a pristine file, checking every rule on the way.
pub fn parse_commit(b: &[u8], page: usize) -> Commit {
    let s = &b[page * SLOT_PAGE..page * SLOT_PAGE + SLOT_LEN];
    assert_eq!(s[..8], MAGIC, "slot {page} magic");
    assert_eq!((le16(s, 8), le32(s, 12)), (1, 256), "slot {page} version");
    assert_eq!(
        crc32(&s[..SLOT_CRC_AT]),
        le32(s, SLOT_CRC_AT),
        "slot {page}"
    );
    assert!(s[64..SLOT_CRC_AT].iter().all(|&x| x == 0), "slot reserved");
    let generation = le64(s, 16);
    let committed_end = le64(s, 32) as usize;
    let durable_end = le64(s, 40) as usize;
    assert!(REGION_START <= durable_end && durable_end <= committed_end);
    assert!(committed_end <= b.len());
    let catalog = Rec {
        offset: le64(s, 48) as usize,
        len: le32(s, 56) as usize,
        crc: le32(s, 60),
        kind: Kind::CATALOG,
    };
    let within = (generation, committed_end);
    check_record(b, &catalog, 0, None, within);
    let p = &b[catalog.payload()];
    let (width, height) = (le64(p, 0) as usize, le64(p, 8) as usize);
    let count = le32(p, 16) as usize;
    let names_len = le32(p, 28) as usize;
    assert_eq!(le32(&b[catalog.header()], 20) as usize, count);
    assert_eq!(p.len(), 64 + 64 * count + names_len);
    let meta = (le64(p, 32) != 0).then(|| Rec {
        offset: le64(p, 32) as usize,
        len: le32(p, 40) as usize,
        crc: le32(p, 44),
        kind: Kind::META,
    });
    if let Some(m) = &meta {
        check_record(b, m, 0, Some(0), within);
    }
    let mut channels = Vec::new();
    for i in 0..count {
        let desc_at = catalog.payload().start + 64 + 64 * i;
        let d = &b[desc_at..desc_at + 64];
        let id = le32(d, 0);
        let typesize = d[5] as usize;
        let rows = le32(d, 12) as usize;
        let n_chunks = le32(d, 16) as usize;
        assert_eq!(n_chunks, height.div_ceil(rows));
        let raw: Vec<usize> = (0..n_chunks)
            .map(|k| rows.min(height - k * rows) * width * typesize)
            .collect();
        let table = (le64(d, 32) != 0).then(|| Rec {
            offset: le64(d, 32) as usize,
            len: le32(d, 40) as usize,
            crc: le32(d, 44),
            kind: Kind::TABLE,
        });
        let mut entries = Vec::new();
        if let Some(t) = &table {
            check_record(b, t, id, Some(n_chunks as u32), within);
            assert_eq!(t.len, n_chunks * ENTRY);
            for (k, &raw_len) in raw.iter().enumerate() {
                let at = t.payload().start + k * ENTRY;
                let e = &b[at..at + ENTRY];
                let kind = e[0];
                let blob = (kind == 1).then(|| Rec {
                    offset: le64(e, 8) as usize,
                    len: le32(e, 16) as usize,
                    crc: le32(e, 4),
                    kind: Kind::BLOB,
                });
                match kind {
                    0 => assert!(e.iter().all(|&x| x == 0)),
                    1 | 2 => assert_eq!(le32(e, 20) as usize, raw_len),
                    k => panic!("table entry kind {k}"),
                }
                if let Some(r) = &blob {
                    check_record(b, r, id, Some(k as u32), within);
                }
                entries.push(Entry {
                    at,
                    kind,
                    word: le64(e, 8),
                    blob,
                });
            }
        }
        channels.push(Chan {
            desc_at,
            id,
            table,
            entries,
            raw,
        });
    }
    Commit {
        page,
        generation,
        committed_end,
        durable_end,
        catalog,
        meta,
        channels,
    }
}

/// The fields of a slot that decides which commit a file opens at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotInfo {
    pub generation: u64,
    pub committed_end: u64,
    pub durable_end: u64,
    pub catalog_offset: u64,
}

/// The slot of `page` of a possibly damaged file, if its magic and CRC hold.
pub fn decode_slot(file: &[u8], page: usize) -> Option<SlotInfo> {
    let s = file.get(page * SLOT_PAGE..page * SLOT_PAGE + SLOT_LEN)?;
    (s[..8] == MAGIC && crc32(&s[..SLOT_CRC_AT]) == le32(s, SLOT_CRC_AT)).then(|| SlotInfo {
        generation: le64(s, 16),
        committed_end: le64(s, 32),
        durable_end: le64(s, 40),
        catalog_offset: le64(s, 48),
    })
}

/// The generation field of the slot in `page` (SPEC §3, offset 16), valid or not.
pub fn slot_generation(bytes: &[u8], page: usize) -> u64 {
    le64(bytes, page * SLOT_PAGE + 16)
}

/// Recompute the CRC of the slot in `page` after its bytes were edited.
pub fn seal_slot(bytes: &mut [u8], page: usize) {
    let start = page * SLOT_PAGE;
    let crc = crc32(&bytes[start..start + SLOT_CRC_AT]);
    put32(bytes, start + SLOT_CRC_AT, crc);
}

/// Every 64-aligned record header (magic `CIR1`, any kind byte) whose payload lies inside
/// `buf`, with the length and CRC its header states.
pub fn scan_records(buf: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut offset = REGION_START;
    while offset + HEADER <= buf.len() {
        if buf[offset..offset + 4] == RECORD_MAGIC {
            let len = le32(buf, offset + 24) as usize;
            if offset + HEADER + len <= buf.len() {
                out.push(Rec {
                    offset,
                    len,
                    crc: le32(buf, offset + 28),
                    kind: Kind(buf[offset + 4]),
                });
            }
        }
        offset += 64;
    }
    out
}

/// Recompute the CRC of every record and slot, bottom-up, and point the references at
/// the records they name: blobs, then tables (entry CRCs of the blobs they reference),
/// metadata, catalogs (metadata and table references), and the slots (catalog reference).
/// With `lengths`, references also take the referenced record's payload length.
pub fn fix_checksums(file: &mut [u8], lengths: bool) {
    let recs = scan_records(file);
    let by_offset: HashMap<usize, Rec> = recs.iter().map(|r| (r.offset, *r)).collect();
    let seal = |file: &mut [u8], r: &Rec| {
        let crc = crc32(&file[r.payload()]);
        put(file, r.offset + 28, 4, u64::from(crc));
    };
    // The reference at `at` (offset u64, len u32, crc u32) to a record of `kind`.
    let point = |file: &mut [u8], at: usize, kind: Kind, len_at: usize, crc_at: usize| {
        if at + 8 > file.len() {
            return;
        }
        let target = le64(file, at) as usize;
        if let Some(r) = by_offset.get(&target).filter(|r| r.kind == kind) {
            let crc = le32(file, r.offset + 28);
            put(file, crc_at, 4, u64::from(crc));
            if lengths {
                put(file, len_at, 4, r.len as u64);
            }
        }
    };
    for r in recs.iter().filter(|r| r.kind == Kind::BLOB) {
        seal(file, r);
    }
    for r in recs.iter().filter(|r| r.kind == Kind::TABLE) {
        let payload = r.offset + HEADER;
        for e in 0..r.len / ENTRY {
            let entry = payload + ENTRY * e;
            if file[entry] == 1 {
                point(file, entry + 8, Kind::BLOB, entry + 16, entry + 4);
            }
        }
        seal(file, r);
    }
    for r in recs.iter().filter(|r| r.kind == Kind::META) {
        seal(file, r);
    }
    for r in recs.iter().filter(|r| r.kind == Kind::CATALOG) {
        let payload = r.offset + HEADER;
        if r.len >= 64 {
            point(file, payload + 32, Kind::META, payload + 40, payload + 44);
            let count = le32(file, payload + 16) as usize;
            for d in 0..count.min((r.len - 64) / 64) {
                let desc = payload + 64 + 64 * d;
                point(file, desc + 32, Kind::TABLE, desc + 40, desc + 44);
            }
        }
        seal(file, r);
    }
    for page in 0..2 {
        let start = page * SLOT_PAGE;
        if file.len() >= start + SLOT_LEN && file[start..start + 8] == MAGIC {
            point(file, start + 48, Kind::CATALOG, start + 56, start + 60);
            seal_slot(file, page);
        }
    }
}
