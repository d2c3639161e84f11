//! The forgeries, structure by structure: table entries, overlapping blobs, the catalog and
//! channel descriptors, the slot, blosc2 chunk headers.

use std::collections::BTreeSet;

use crate::common::format::{Kind, LAST_ALIGNED, Rec, align64, le32, le64, put16, put32, put64};
use crate::fixture::{FileKind, Fixture, Sharing, channel_fixture, image_fixture};
use crate::forge::{Edit, Expect, Forge, is_corrupted, is_unsupported, run_forgeries};

/// The first channel whose table only the newest commit references (so that editing it
/// leaves the previous commit intact).
pub fn newest_only_table(fx: &Fixture) -> usize {
    let shared = fx.referenced();
    fx.newest
        .channels
        .iter()
        .position(|c| c.table.is_some_and(|t| shared[&t] == Sharing::Newest))
        .expect("a table only the newest commit references")
}

/// (channel position, chunk index).
pub type ChunkId = (usize, usize);

/// (channel, chunk) of blob entries of the newest commit: below durable_end, then past it.
pub fn blob_entries(fx: &Fixture) -> (Vec<ChunkId>, Vec<ChunkId>) {
    let mut durable = Vec::new();
    let mut unsynced = Vec::new();
    for (ch, c) in fx.newest.channels.iter().enumerate() {
        for (i, e) in c.entries.iter().enumerate() {
            if let Some(b) = e.blob {
                if b.offset < fx.newest.durable_end {
                    durable.push((ch, i));
                } else {
                    unsynced.push((ch, i));
                }
            }
        }
    }
    (durable, unsynced)
}

pub fn table_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let refused = Expect::Refused(is_corrupted);
    let ch = newest_only_table(fx);
    let c = &fx.newest.channels[ch];
    let i = c
        .entries
        .iter()
        .position(|e| e.blob.is_some())
        .expect("a blob entry");
    let fill = c.entries.iter().position(|e| e.kind == 2);
    let at = c.entries[i].at;
    let blob = c.entries[i].blob.expect("blob");
    let end = fx.newest.committed_end;
    let generation = fx.newest.generation;
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let mut entry = |name: String, field: usize, value: u64, width: usize| {
        let edit: Edit = Box::new(move |f: &mut Forge| {
            match width {
                1 => f.b[at + field] = value as u8,
                4 => put32(&mut f.b, at + field, value as u32),
                _ => put64(&mut f.b, at + field, value),
            }
            f.seal_table(ch);
        });
        cases.push((name, refused, edit));
    };
    for (what, offset) in [
        ("align64(committed_end)", align64(end) as u64),
        (
            "committed_end - 64 (payload runs past the end)",
            (end as u64 - 64) & !63,
        ),
        ("u64::MAX & !63 (offset + len overflows)", LAST_ALIGNED),
        ("u64::MAX - 63", u64::MAX - 63),
        ("0", 0),
        ("4096 (slot page B)", 4096),
        ("8128 (below the record region)", 8128),
        ("blob + 1 (unaligned)", blob.offset as u64 + 1),
    ] {
        entry(
            format!("ch {ch} entry {i}: blob offset {what}"),
            8,
            offset,
            8,
        );
    }
    for len in [
        0,
        31,
        u64::from(u32::MAX),
        u64::from(u32::MAX - 31),
        c.raw[i] as u64 + 33,
    ] {
        entry(format!("ch {ch} entry {i}: payload_len {len}"), 16, len, 4);
    }
    for raw in [
        0,
        c.raw[i] as u64 - 1,
        c.raw[i] as u64 + 1,
        u64::from(u32::MAX),
    ] {
        entry(format!("ch {ch} entry {i}: raw_len {raw}"), 20, raw, 4);
    }
    entry(format!("ch {ch} entry {i}: kind 3"), 0, 3, 1);
    entry(format!("ch {ch} entry {i}: flags 1"), 1, 1, 1);
    entry(format!("ch {ch} entry {i}: reserved byte 2"), 2, 1, 1);
    entry(format!("ch {ch} entry {i}: generation 0"), 24, 0, 8);
    entry(
        format!("ch {ch} entry {i}: generation = slot + 1"),
        24,
        generation + 1,
        8,
    );
    entry(
        format!("ch {ch} entry {i}: generation u64::MAX"),
        24,
        u64::MAX,
        8,
    );
    if let Some(k) = fill {
        let at = c.entries[k].at;
        let edit = |field: usize, value: u32| -> Edit {
            Box::new(move |f: &mut Forge| {
                put32(&mut f.b, at + field, value);
                f.seal_table(ch);
            })
        };
        cases.push((
            format!("ch {ch} FILL entry {k}: crc 1"),
            refused,
            edit(4, 1),
        ));
        cases.push((
            format!("ch {ch} FILL entry {k}: payload_len 8"),
            refused,
            edit(16, 8),
        ));
        cases.push((
            format!("ch {ch} FILL entry {k}: generation 0"),
            refused,
            edit(24, 0),
        ));
        let word = c.entries[k].word;
        if fx.kind == FileKind::ImageF32 {
            // f32 fill: bits above the element are ignored (SPEC §2 table).
            cases.push((
                format!("ch {ch} FILL entry {k}: bits above the element set"),
                Expect::Accepted,
                Box::new(move |f: &mut Forge| {
                    put64(&mut f.b, at + 8, word | 0xDEAD_BEEF_0000_0000);
                    f.seal_table(ch);
                }),
            ));
        }
    }
    if let Some(k) = c.entries.iter().position(|e| e.kind == 0) {
        let at = c.entries[k].at;
        cases.push((
            format!("ch {ch} DEFAULT entry {k}: a nonzero byte"),
            refused,
            Box::new(move |f: &mut Forge| {
                f.b[at + 30] = 1;
                f.seal_table(ch);
            }),
        ));
    }
    // Table header: huge entry count (aux) with the table CRC intact.
    let t = c.table.expect("table");
    cases.push((
        format!("ch {ch} table header: aux (n_chunks) u32::MAX"),
        refused,
        Box::new(move |f: &mut Forge| put32(&mut f.b, t.offset + 20, u32::MAX)),
    ));
    cases
}

/// Durable blob entries pointed at other records, and a blob extended over its neighbour.
pub fn overlap_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let (durable, unsynced) = blob_entries(fx);
    let referenced = fx.referenced();
    let all_blobs: Vec<(Rec, Sharing)> = referenced
        .iter()
        .filter(|(r, _)| r.kind == Kind::BLOB && r.offset < fx.newest.durable_end)
        .map(|(r, s)| (*r, *s))
        .collect();
    for &(ch, i) in &durable {
        let e = fx.newest.channels[ch].entries[i].clone();
        let own = e.blob.expect("blob");
        // Another durable record: wrong channel id or chunk index in its header. (A record
        // of the same chunk would pass: it is a valid, older version of that chunk.)
        let id = fx.newest.channels[ch].id;
        let other_chunk = |r: &Rec| {
            let h = &fx.bytes[r.header()];
            (le32(h, 16), le32(h, 20)) != (id, i as u32)
        };
        if let Some(&(other, _)) = all_blobs.iter().find(|(r, _)| other_chunk(r)) {
            cases.push((
                format!("ch {ch} entry {i} -> the blob record at {}", other.offset),
                Expect::ChunkRefused(ch, i),
                Box::new(move |f: &mut Forge| {
                    put64(&mut f.b, e.at + 8, other.offset as u64);
                    put32(&mut f.b, e.at + 16, other.len as u32);
                    put32(&mut f.b, e.at + 4, other.crc);
                    f.seal_table(ch);
                }),
            ));
        }
        // The middle of a long payload: no record header there.
        if own.len > 200 {
            let inside = align64(own.payload().start + 64);
            cases.push((
                format!("ch {ch} entry {i} -> inside its own payload ({inside})"),
                Expect::ChunkRefused(ch, i),
                Box::new(move |f: &mut Forge| {
                    put64(&mut f.b, e.at + 8, inside as u64);
                    put32(&mut f.b, e.at + 16, 64);
                    f.seal_table(ch);
                }),
            ));
        }
    }
    // A blob whose length (header, entry and blosc2 cbytes all agreeing, CRCs resealed)
    // reaches into the next referenced record.
    let newest_records: BTreeSet<Rec> = fx.newest.records().into_iter().collect();
    for &(ch, i) in durable.iter().chain(&unsynced) {
        let own = fx.newest.channels[ch].entries[i].blob.expect("blob");
        let Some(next) = newest_records.iter().find(|r| r.offset > own.offset) else {
            continue;
        };
        let len = next.offset + 8 - own.payload().start;
        if len > fx.newest.channels[ch].raw[i] + 32 {
            continue;
        }
        cases.push((
            format!(
                "ch {ch} blob {i} extended over the record at {}",
                next.offset
            ),
            Expect::OverlapReported,
            Box::new(move |f: &mut Forge| {
                let own = f.blob(ch, i);
                put32(&mut f.b, own.payload().start + 12, len as u32);
                f.seal_blob(ch, i, len);
            }),
        ));
        break;
    }
    cases
}

pub fn catalog_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let refused = Expect::Refused(is_corrupted);
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let cat = fx.newest.cat();
    let desc = fx.newest.channels[0].desc_at;
    let count = fx.newest.channels.len() as u32;
    let header = fx.newest.catalog.offset;
    let mut field = |name: &str, at: usize, value: u64, width: usize, also_aux: bool| {
        let edit: Edit = Box::new(move |f: &mut Forge| {
            match width {
                1 => f.b[at] = value as u8,
                4 => put32(&mut f.b, at, value as u32),
                _ => put64(&mut f.b, at, value),
            }
            if also_aux {
                put32(&mut f.b, header + 20, value as u32);
            }
            f.seal_catalog();
        });
        cases.push((name.to_string(), refused, edit));
    };
    field("catalog: width u64::MAX", cat, u64::MAX, 8, false);
    field("catalog: width 0", cat, 0, 8, false);
    field(
        "catalog: width + 1",
        cat,
        le64(&fx.bytes, cat) + 1,
        8,
        false,
    );
    field("catalog: height u64::MAX", cat + 8, u64::MAX, 8, false);
    field("catalog: height 1 << 40", cat + 8, 1 << 40, 8, false);
    field(
        "catalog: count u32::MAX (header aux too)",
        cat + 16,
        u64::from(u32::MAX),
        4,
        true,
    );
    field(
        "catalog: count + 1 (header aux too)",
        cat + 16,
        u64::from(count + 1),
        4,
        true,
    );
    field("catalog: count 0 (header aux too)", cat + 16, 0, 4, true);
    field("catalog: next_channel_id 0", cat + 20, 0, 4, false);
    field("catalog: flags bit 1", cat + 24, 3, 4, false);
    field(
        "catalog: names_len u32::MAX",
        cat + 28,
        u64::from(u32::MAX),
        4,
        false,
    );
    field(
        "catalog: names_len + 1",
        cat + 28,
        u64::from(le32(&fx.bytes, cat + 28) + 1),
        4,
        false,
    );
    field("descriptor 0: dtype 0", desc + 4, 0, 1, false);
    field("descriptor 0: dtype 10", desc + 4, 10, 1, false);
    field("descriptor 0: typesize 3", desc + 5, 3, 1, false);
    field("descriptor 0: codec 5", desc + 6, 5, 1, false);
    field("descriptor 0: level 10", desc + 7, 10, 1, false);
    field(
        "descriptor 0: block_size u32::MAX",
        desc + 8,
        u64::from(u32::MAX),
        4,
        false,
    );
    field("descriptor 0: rows_per_chunk 0", desc + 12, 0, 4, false);
    field(
        "descriptor 0: rows_per_chunk u32::MAX",
        desc + 12,
        u64::from(u32::MAX),
        4,
        false,
    );
    field(
        "descriptor 0: n_chunks u32::MAX",
        desc + 16,
        u64::from(u32::MAX),
        4,
        false,
    );
    field("descriptor 0: n_chunks 0", desc + 16, 0, 4, false);
    field("descriptor 0: flags 1", desc + 20, 1, 4, false);
    field(
        "descriptor 0: default_fill above the element",
        desc + 24,
        1 << 40,
        8,
        false,
    );
    field(
        "descriptor 0: name_offset u32::MAX",
        desc + 48,
        u64::from(u32::MAX),
        4,
        false,
    );
    field(
        "descriptor 0: name_len u32::MAX",
        desc + 52,
        u64::from(u32::MAX),
        4,
        false,
    );
    if fx.newest.channels[0].table.is_some() {
        field(
            "descriptor 0: table_len u32::MAX",
            desc + 40,
            u64::from(u32::MAX),
            4,
            false,
        );
        field(
            "descriptor 0: table_len u32::MAX - 31",
            desc + 40,
            u64::from(u32::MAX - 31),
            4,
            false,
        );
        field(
            "descriptor 0: table_offset past committed_end",
            desc + 32,
            align64(fx.newest.committed_end) as u64,
            8,
            false,
        );
        field(
            "descriptor 0: table_offset u64::MAX & !63",
            desc + 32,
            LAST_ALIGNED,
            8,
            false,
        );
    }
    if fx.newest.channels.len() > 1 {
        let second = fx.newest.channels[1].desc_at;
        field(
            "descriptor 1: the id of descriptor 0",
            second,
            u64::from(fx.newest.channels[0].id),
            4,
            false,
        );
        field(
            "descriptor 1: id u32::MAX",
            second,
            u64::from(u32::MAX),
            4,
            false,
        );
    }
    let names_len = le32(&fx.bytes, cat + 28) as usize;
    if names_len > 0 {
        let names = fx.newest.catalog.end() - names_len;
        field("names: invalid UTF-8", names, 0xFF, 1, false);
    }
    if let Some(m) = fx.newest.meta {
        field(
            "catalog: meta_len u32::MAX",
            cat + 40,
            u64::from(u32::MAX),
            4,
            false,
        );
        field(
            "catalog: meta_offset u64::MAX & !63",
            cat + 32,
            LAST_ALIGNED,
            8,
            false,
        );
        field(
            "catalog: meta_offset the catalog's own",
            cat + 32,
            fx.newest.catalog.offset as u64,
            8,
            false,
        );
        cases.push((
            "META: not JSON (CRC resealed)".into(),
            refused,
            Box::new(move |f: &mut Forge| {
                f.b[m.payload().start] = b'#';
                f.seal_meta();
            }),
        ));
        cases.push((
            "META: header channel_id 5".into(),
            refused,
            Box::new(move |f: &mut Forge| put32(&mut f.b, m.offset + 16, 5)),
        ));
    }
    cases.push((
        "catalog: header kind META".into(),
        refused,
        Box::new(move |f: &mut Forge| f.b[header + 4] = 3),
    ));
    cases.push((
        "catalog: header generation = slot + 1".into(),
        refused,
        Box::new(move |f: &mut Forge| {
            let g = f.c.generation + 1;
            put64(&mut f.b, header + 8, g);
        }),
    ));
    cases.push((
        "catalog: header reserved byte set".into(),
        Expect::Accepted,
        Box::new(move |f: &mut Forge| f.b[header + 6] = 0xAB),
    ));
    cases
}

pub fn slot_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let refused = Expect::Refused(is_corrupted);
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let end = fx.newest.committed_end as u64;
    let mut field = |name: &str, at: usize, value: u64, width: usize, expect: Expect| {
        let edit: Edit = Box::new(move |f: &mut Forge| {
            let s = f.slot();
            match width {
                1 => f.b[s + at] = value as u8,
                2 => put16(&mut f.b, s + at, value as u16),
                4 => put32(&mut f.b, s + at, value as u32),
                _ => put64(&mut f.b, s + at, value),
            }
            f.seal_slot();
        });
        cases.push((name.to_string(), expect, edit));
    };
    field("slot: major 2", 8, 2, 2, Expect::Refused(is_unsupported));
    field("slot: minor 9", 10, 9, 2, Expect::Accepted);
    field("slot: slot_len 255", 12, 255, 4, refused);
    field("slot: generation 0", 16, 0, 8, refused);
    field("slot: committed_end u64::MAX", 32, u64::MAX, 8, refused);
    field(
        "slot: committed_end file length + 1",
        32,
        end + 1,
        8,
        refused,
    );
    field("slot: committed_end 8191", 32, 8191, 8, refused);
    field(
        "slot: committed_end - 1 (catalog past it)",
        32,
        end - 1,
        8,
        refused,
    );
    field(
        "slot: durable_end > committed_end",
        40,
        end + 64,
        8,
        refused,
    );
    field("slot: durable_end 0", 40, 0, 8, refused);
    field("slot: catalog_offset 0", 48, 0, 8, refused);
    field("slot: catalog_offset 4096", 48, 4096, 8, refused);
    field(
        "slot: catalog_offset u64::MAX & !63",
        48,
        LAST_ALIGNED,
        8,
        refused,
    );
    field(
        "slot: catalog_offset u64::MAX - 31",
        48,
        u64::MAX - 31,
        8,
        refused,
    );
    field(
        "slot: catalog_offset + 1",
        48,
        fx.newest.catalog.offset as u64 + 1,
        8,
        refused,
    );
    field(
        "slot: catalog_offset of the previous catalog",
        48,
        fx.previous.catalog.offset as u64,
        8,
        refused,
    );
    field(
        "slot: catalog_len u32::MAX",
        56,
        u64::from(u32::MAX),
        4,
        refused,
    );
    field(
        "slot: catalog_len u32::MAX - 31",
        56,
        u64::from(u32::MAX - 31),
        4,
        refused,
    );
    field("slot: catalog_len 0", 56, 0, 4, refused);
    field(
        "slot: catalog_crc + 1",
        60,
        u64::from(fx.newest.catalog.crc.wrapping_add(1)),
        4,
        refused,
    );
    field("slot: a reserved byte set", 100, 0xAB, 1, Expect::Accepted);
    cases
}

/// blosc2 header fields (SPEC §8 step 4) that disagree with the table or the geometry, in
/// blobs below and past durable_end: the CRCs pass, the header check refuses the chunk.
pub fn blosc_header_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let (durable, unsynced) = blob_entries(fx);
    let mut targets: Vec<(usize, usize)> = durable.iter().take(2).copied().collect();
    targets.extend(unsynced.first());
    for (ch, i) in targets {
        let b = fx.newest.channels[ch].entries[i].blob.expect("blob");
        let raw = fx.newest.channels[ch].raw[i] as u64;
        let p = b.payload().start;
        let header = &fx.bytes[p..p + 16];
        let (nbytes, cbytes) = (u64::from(le32(header, 4)), u64::from(le32(header, 12)));
        let (flags, typesize) = (u64::from(header[2]), u64::from(header[3]));
        let variants: Vec<(String, usize, u64, usize)> = vec![
            ("version 0".into(), 0, 0, 1),
            ("version 2 (Blosc1)".into(), 0, 2, 1),
            ("version 6".into(), 0, 6, 1),
            ("version 255".into(), 0, 255, 1),
            ("flags without bit 0".into(), 2, flags & !1, 1),
            ("flags without bit 2".into(), 2, flags & !4, 1),
            ("typesize 0".into(), 3, 0, 1),
            ("typesize 1".into(), 3, 1, 1),
            (format!("typesize {}", typesize * 2), 3, typesize * 2, 1),
            ("typesize 255".into(), 3, 255, 1),
            (format!("nbytes {}", nbytes + 1), 4, nbytes + 1, 4),
            (format!("nbytes {}", nbytes - 1), 4, nbytes - 1, 4),
            ("nbytes 0".into(), 4, 0, 4),
            ("nbytes u32::MAX".into(), 4, u64::from(u32::MAX), 4),
            ("blocksize 0".into(), 8, 0, 4),
            (format!("blocksize {}", raw + 1), 8, raw + 1, 4),
            ("blocksize u32::MAX".into(), 8, u64::from(u32::MAX), 4),
            (format!("cbytes {}", cbytes + 1), 12, cbytes + 1, 4),
            (format!("cbytes {}", cbytes - 1), 12, cbytes - 1, 4),
            ("cbytes 0".into(), 12, 0, 4),
            ("cbytes u32::MAX".into(), 12, u64::from(u32::MAX), 4),
        ];
        let place = if b.offset < fx.newest.durable_end {
            "durable"
        } else {
            "unsynced"
        };
        for (what, at, value, width) in variants {
            cases.push((
                format!("ch {ch} blob {i} ({place}): blosc2 {what}"),
                Expect::ChunkRefused(ch, i),
                Box::new(move |f: &mut Forge| {
                    if width == 1 {
                        f.b[p + at] = value as u8;
                    } else {
                        put32(&mut f.b, p + at, value as u32);
                    }
                    f.seal_blob(ch, i, b.len);
                }),
            ));
        }
        // A payload shorter than a blosc2 header, with length and CRC consistent (only for
        // a blob of the newest commit alone, so that the previous commit stays intact).
        if place == "unsynced" {
            cases.push((
                format!("ch {ch} blob {i} ({place}): payload of 16 bytes"),
                Expect::Refused(is_corrupted),
                Box::new(move |f: &mut Forge| f.seal_blob(ch, i, 16)),
            ));
        }
    }
    cases
}

#[test]
fn forged_table_entries_are_refused() {
    for fx in [image_fixture(), channel_fixture()] {
        let cases = table_cases(&fx);
        run_forgeries(&fx, "table entries", cases);
    }
}

#[test]
fn forged_overlapping_blobs_are_refused_or_reported() {
    let fx = image_fixture();
    let cases = overlap_cases(&fx);
    assert!(
        cases
            .iter()
            .any(|(_, e, _)| matches!(e, Expect::OverlapReported)),
        "the image fixture has a blob that can be extended over its neighbour"
    );
    run_forgeries(&fx, "overlapping blobs", cases);
    let fx = channel_fixture();
    let cases = overlap_cases(&fx);
    run_forgeries(&fx, "overlapping blobs", cases);
}

#[test]
fn forged_catalogs_with_huge_counts_and_lengths_are_refused() {
    for fx in [image_fixture(), channel_fixture()] {
        let cases = catalog_cases(&fx);
        run_forgeries(&fx, "catalog", cases);
    }
}

#[test]
fn forged_slots_with_huge_offsets_and_lengths_are_refused() {
    for fx in [image_fixture(), channel_fixture()] {
        let cases = slot_cases(&fx);
        run_forgeries(&fx, "slot", cases);
    }
}

#[test]
fn forged_blosc2_headers_that_disagree_with_the_table_are_refused() {
    for fx in [image_fixture(), channel_fixture()] {
        let cases = blosc_header_cases(&fx);
        run_forgeries(&fx, "blosc2 headers", cases);
    }
}
