//! Edge cases found by the sweeps, each on its own.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};

use compressed_image::{Channel, Error, Image, Settings};

use crate::common::child::{child_command_in_shell, child_role, protocol_line};
use crate::common::format::{
    Commit, REGION_START, SLOT_CRC_AT, SLOT_LEN, SLOT_PAGE, crc32, parse_commit, put32, put64,
};
use crate::fixture::{bytes_of, channel_fixture, image_fixture, ramp16};
use crate::forge::{Forge, is_corrupted};
use crate::forge_cases::blob_entries;
use crate::observe::{Access, Observed, compare, continue_writing, continued, open_and_read};

/// The slot's generation is only bounded below (SPEC §3: `generation ≥ 1`). A slot of
/// generation `u64::MAX` (CRC valid) is read like any other; a read-write session on it
/// must then neither panic nor leave a file that no longer opens. Every open afterwards
/// must land on one of the commits the file held, with or without the session's change.
#[test]
fn a_slot_at_the_largest_generation_never_panics_and_never_makes_the_file_unreadable() {
    let mut failures = Vec::new();
    for fx in [image_fixture(), channel_fixture()] {
        let mut f = Forge::new(&fx);
        let s = f.slot();
        put64(&mut f.b, s + 16, u64::MAX);
        f.seal_slot();
        let path = fx.copy("generation-max.cimg", &f.b);
        // Read-only: the newest contents (at generation u64::MAX) or, if refused, the
        // previous commit; never a panic.
        match open_and_read(&path, fx.kind, Access::ReadOnly) {
            Err(msg) => failures.push(format!("{}: read-only open: {msg}", fx.name)),
            Ok(Observed::OpenFailed(e)) if is_corrupted(&e) => {}
            Ok(Observed::OpenFailed(e)) => {
                failures.push(format!("{}: read-only open: {e:?}", fx.name));
            }
            Ok(Observed::Opened(o)) => {
                let ok = [&fx.expect_newest, &fx.expect_previous]
                    .iter()
                    .any(|e| compare(&o, e).is_ok_and(|bad| bad.is_empty()));
                if !ok {
                    failures.push(format!("{}: read-only open: other contents", fx.name));
                }
            }
        }
        // A read-write session: open (which makes the commit durable and writes a marker
        // slot of the next generation), one commit, drop (sync, marker).
        match continue_writing(&path, fx.kind) {
            Err(msg) => failures.push(format!("{}: read-write session: {msg}", fx.name)),
            Ok(_) => {
                let candidates = [
                    fx.expect_newest.clone(),
                    fx.expect_previous.clone(),
                    continued(&fx.expect_newest, fx.kind),
                    continued(&fx.expect_previous, fx.kind),
                ];
                match open_and_read(&path, fx.kind, Access::ReadOnly) {
                    Err(msg) => failures.push(format!("{}: reopen: {msg}", fx.name)),
                    Ok(Observed::OpenFailed(e)) => failures.push(format!(
                        "{}: after a read-write session the file no longer opens: {e}",
                        fx.name
                    )),
                    Ok(Observed::Opened(o)) => {
                        if !candidates
                            .iter()
                            .any(|e| compare(&o, e).is_ok_and(|bad| bad.is_empty()))
                        {
                            failures.push(format!("{}: reopen: other contents", fx.name));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The memcpyed flag (blosc2 header byte 2, bit 1) set on a compressed chunk: the header
/// then claims `nbytes` raw bytes after the 32-byte header although `cbytes` (= the
/// payload length, which the table, the record header and the CRC all agree on) is
/// shorter. The header fields disagree with each other (a memcpyed chunk has `cbytes ==
/// nbytes + 32`), so the chunk must be refused before c-blosc2 reads it; in particular a
/// ranged read (`read_rows`, through `blosc2_getitem_ctx`) must not copy bytes from past
/// the payload.
#[test]
fn a_memcpyed_flag_on_a_compressed_chunk_never_reads_past_the_payload() {
    let fx = image_fixture();
    let mut f = Forge::new(&fx);
    let (durable, _) = blob_entries(&fx);
    // A compressed blob: its payload is shorter than its raw chunk.
    let (ch, i) = *durable
        .iter()
        .find(|&&(ch, i)| {
            let b = fx.newest.channels[ch].entries[i].blob.expect("blob");
            b.len + 64 < fx.newest.channels[ch].raw[i]
        })
        .expect("a compressed blob below durable_end");
    let b = f.blob(ch, i);
    let p = b.payload().start;
    f.b[p + 2] |= 0b10;
    f.seal_blob(ch, i, b.len);
    let path = fx.copy("memcpyed.cimg", &f.b);
    let img = Image::<f32>::open_read_only(&path).expect("the forged file opens");
    img.set_threads(1).expect("threads");
    let c = img.channel(ch).expect("channel");
    let data = &fx.expect_newest.channels[ch];
    let row = data.width * 4;
    let rows = data.chunks[i].len() / row;
    let first = i * data.rows;
    let mut failures = Vec::new();
    match c.get_chunk_vec(i) {
        Err(Error::Corrupted { .. } | Error::Codec { .. }) => {}
        other => failures.push(format!(
            "get_chunk: {:?}",
            other.map(|v| bytes_of(&v) == data.chunks[i])
        )),
    }
    // The last row of the chunk lies at payload offset 32 + (rows - 1) * row, past the
    // payload's end.
    let mut out = vec![0f32; data.width];
    match c.read_rows(first + rows - 1, &mut out) {
        Err(Error::Corrupted { .. } | Error::Codec { .. }) => {}
        Err(e) => failures.push(format!("read_rows: {e:?}")),
        Ok(()) => {
            let got = bytes_of(&out);
            let at = p + 32 + (rows - 1) * row;
            let past = at + got.len() > p + b.len;
            failures.push(format!(
                "read_rows of row {} returned Ok; bit-exact: {}; equal to the file bytes \
                 [{at}, {}) (the payload ends at {}): {} — an out-of-bounds read{}",
                first + rows - 1,
                got == data.chunks[i][(rows - 1) * row..],
                at + got.len(),
                p + b.len,
                got == f.b[at..at + got.len()],
                if past { " past the payload" } else { "" },
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "channel {ch} chunk {i} (payload [{p}, {}), cbytes {}, nbytes {}): {failures:#?}",
        p + b.len,
        b.len,
        data.chunks[i].len()
    );
}

/// A 13 KB file that is valid per SPEC §5.2: one u16 channel of 50 × 134,217,727 in
/// one-row chunks (the largest chunk count), without a table (every chunk DEFAULT). The
/// open must not abort the process however the library represents the chunks: it opens
/// (and reads chunk 5 as the default fill) or refuses with a typed error. The open runs
/// in a child process limited to 2 GiB of address space, so an allocation failure aborts
/// the child only.
#[cfg(target_os = "linux")]
#[test]
fn a_file_declaring_the_largest_chunk_count_opens_in_bounded_memory() {
    const NAME: &str =
        "edge_cases::a_file_declaring_the_largest_chunk_count_opens_in_bounded_memory";
    if let Some(path) = child_role(NAME) {
        let outcome = match Channel::<u16>::open_read_only(&path) {
            Ok(c) => match c.get_chunk_vec(5) {
                Ok(v) if v.iter().all(|&x| x == 7) => "opened".to_string(),
                other => format!("chunk 5: {other:?}"),
            },
            Err(e @ Error::Corrupted { .. }) => format!("refused: {e}"),
            Err(e) => format!("error: {e:?}"),
        };
        report!("{outcome}");
        return;
    }
    let fx = channel_fixture();
    let mut f = Forge::new(&fx);
    let height: u64 = 134_217_727;
    let cat = f.c.cat();
    put64(&mut f.b, cat + 8, height);
    let d = f.c.channels[0].desc_at;
    put32(&mut f.b, d + 12, 1); // rows_per_chunk
    put32(&mut f.b, d + 16, height as u32); // n_chunks
    f.b[d + 32..d + 48].fill(0); // no table
    f.seal_catalog();
    let path = fx.copy("largest-chunk-count.cimg", &f.b);
    let out = child_command_in_shell("ulimit -v 2097152", NAME, &path)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let outcome = stdout
        .lines()
        .find_map(|l| protocol_line(l).map(str::to_string));
    println!(
        "largest chunk count ({} bytes): child {}, {outcome:?}",
        f.b.len(),
        out.status
    );
    assert!(
        out.status.success()
            && outcome
                .as_deref()
                .is_some_and(|o| o == "opened" || o.starts_with("refused")),
        "the open of a valid {}-byte file declaring {height} chunks did not open or fail \
         typed within 2 GiB: child {}, outcome {outcome:?}\nstderr:\n{}",
        f.b.len(),
        out.status,
        stderr.lines().take(12).collect::<Vec<_>>().join("\n")
    );
}

/// The higher-generation commit of a pristine file's two slots.
pub fn newest_commit(b: &[u8]) -> Commit {
    let (x, y) = (parse_commit(b, 0), parse_commit(b, 1));
    if x.generation > y.generation { x } else { y }
}

/// Regression (fuzz finding F1, fuzz/README.md): `refresh` accepts exactly the commits
/// `open` accepts. A newer slot that differs from the durable commit only by a lower
/// durable end claims the durable commit's blobs as unsynced; one of them fails its CRC, so
/// `open` rejects that slot and falls back, and a refresh of the fallback must not take it
/// either (it once checked only blobs past the reader's own commit).
#[test]
fn refresh_never_moves_to_a_commit_open_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cimg");
    let data = ramp16(64 * 8, 3);
    let settings = Settings::default().chunk_size(64 * 2 * 4);
    let ch = Channel::<u16>::create_full(&path, 64, 8, 0, settings).unwrap();
    ch.set_chunk(0, &data[..256]).unwrap();
    ch.set_chunk(1, &data[256..]).unwrap();
    ch.sync().unwrap();
    drop(ch);
    let mut b = fs::read(&path).unwrap();
    let newest = newest_commit(&b);
    // The other page: a copy of the newest slot, one generation newer, nothing durable.
    let (from, to) = (newest.page * SLOT_PAGE, (1 - newest.page) * SLOT_PAGE);
    b.copy_within(from..from + SLOT_LEN, to);
    put64(&mut b, to + 16, newest.generation + 1);
    put64(&mut b, to + 40, REGION_START as u64);
    let crc = crc32(&b[to..to + SLOT_CRC_AT]);
    put32(&mut b, to + SLOT_CRC_AT, crc);
    // Damage the payload of chunk 1's blob (durable in the newest commit).
    let blob = newest.channels[0].entries[1]
        .blob
        .expect("chunk 1 is a blob");
    b[blob.payload().start + 40] ^= 1;
    fs::write(&path, &b).unwrap();

    let ch = Channel::<u16>::open_read_only(&path).unwrap();
    assert_eq!(ch.stats().unwrap().generation, newest.generation);
    assert!(!ch.refresh().unwrap(), "refresh took the rejected commit");
    assert_eq!(ch.stats().unwrap().generation, newest.generation);
    assert_eq!(ch.get_chunk_vec(0).unwrap(), data[..256]);
    assert!(matches!(
        ch.get_chunk_vec(1),
        Err(Error::ChecksumMismatch { chunk: 1, .. })
    ));
}

/// `ChecksumPolicy`: by default a blob is checksummed on its first read through a handle
/// and trusted afterwards; `EveryRead` checksums it on every read, so damage done while the
/// file is open is caught; `verify()` and a new handle check everything whatever the policy.
/// Level 0 stores the chunk raw, so a damaged byte still decodes and shows which read
/// trusted it.
#[test]
fn checksum_policy_decides_whether_later_reads_recheck_a_blob() {
    use compressed_image::ChecksumPolicy;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cimg");
    let data = ramp16(64 * 8, 5);
    let settings = Settings::default().chunk_size(64 * 2 * 4).level(0);
    let ch = Channel::<u16>::create(&path, &data, 64, 8, settings).unwrap();
    assert_eq!(ch.checksum_policy(), ChecksumPolicy::FirstRead);
    drop(ch);
    let b = fs::read(&path).unwrap();
    let newest = newest_commit(&b);
    let blob = newest.channels[0].entries[1]
        .blob
        .expect("chunk 1 is a blob");

    let first = Channel::<u16>::open_read_only(&path).unwrap();
    let every = Channel::<u16>::open_read_only(&path).unwrap();
    every.set_checksum_policy(ChecksumPolicy::EveryRead);
    assert_eq!(every.checksum_policy(), ChecksumPolicy::EveryRead);
    assert_eq!(first.get_chunk_vec(1).unwrap(), data[256..]);
    assert_eq!(every.get_chunk_vec(1).unwrap(), data[256..]);

    // Damage the last raw byte of the chunk in place (the mappings share the page cache).
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    let at = blob.payload().end - 1;
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(&[b[at] ^ 0x40]).unwrap();
    drop(f);

    assert!(matches!(
        every.get_chunk_vec(1),
        Err(Error::ChecksumMismatch { chunk: 1, .. })
    ));
    // The first-read handle verified this blob already and trusts it: exactly the damaged
    // element differs.
    let trusted = first.get_chunk_vec(1).unwrap();
    let differing: Vec<usize> = (0..trusted.len())
        .filter(|&i| trusted[i] != data[256 + i])
        .collect();
    assert_eq!(differing, [trusted.len() - 1]);
    for handle in [&first, &every] {
        let report = handle.verify().unwrap();
        assert!(
            !report.is_ok(),
            "verify must recheck every blob: {report:?}"
        );
    }
    let fresh = Channel::<u16>::open_read_only(&path).unwrap();
    assert!(matches!(
        fresh.get_chunk_vec(1),
        Err(Error::ChecksumMismatch { chunk: 1, .. })
    ));
}
