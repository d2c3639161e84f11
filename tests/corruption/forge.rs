//! Forged files: a fixture copy edited by hand with every CRC above the edit recomputed,
//! so that the structural checks are what must catch it; how each forgery must be met.

use std::fmt::Write as _;
use std::fs;

use compressed_image::Error;

use crate::common::format::{Commit, Rec, SLOT_CRC_AT, SLOT_LEN, SLOT_PAGE, crc32, put32};
use crate::fixture::Fixture;
use crate::observe::{Access, Observed, Which, at_commit, compare, open_and_read};

/// A copy of a fixture being forged. Edits go to the newest commit; the `seal_*` methods
/// recompute the CRCs above an edited byte (blob → table → catalog → slot), so the
/// checksums pass and the structural checks are what must catch the edit. The copy ends at
/// the newest `committed_end`, so a read past it would leave the file.
pub struct Forge {
    pub b: Vec<u8>,
    pub c: Commit,
}

impl Forge {
    pub fn new(fx: &Fixture) -> Forge {
        Forge {
            b: fx.bytes[..fx.newest.committed_end].to_vec(),
            c: fx.newest.clone(),
        }
    }

    pub fn slot(&self) -> usize {
        self.c.page * SLOT_PAGE
    }

    /// CRC of the payload `r` names, written into its header; returned.
    pub fn seal_record(&mut self, r: Rec) -> u32 {
        let crc = crc32(&self.b[r.payload()]);
        put32(&mut self.b, r.offset + 28, crc);
        crc
    }

    pub fn seal_slot(&mut self) {
        let s = self.slot();
        let crc = crc32(&self.b[s..s + SLOT_CRC_AT]);
        put32(&mut self.b, s + SLOT_CRC_AT, crc);
    }

    pub fn seal_catalog(&mut self) {
        let crc = self.seal_record(self.c.catalog);
        let s = self.slot();
        put32(&mut self.b, s + 60, crc);
        self.seal_slot();
    }

    pub fn seal_table(&mut self, ch: usize) {
        let t = self.c.channels[ch].table.expect("channel with a table");
        let crc = self.seal_record(t);
        put32(&mut self.b, self.c.channels[ch].desc_at + 44, crc);
        self.seal_catalog();
    }

    pub fn seal_meta(&mut self) {
        let m = self.c.meta.expect("metadata record");
        let crc = self.seal_record(m);
        put32(&mut self.b, self.c.cat() + 44, crc);
        self.seal_catalog();
    }

    /// Reseal blob `i` of channel `ch` with payload length `len` (its entry, its header).
    pub fn seal_blob(&mut self, ch: usize, i: usize, len: usize) {
        let e = self.c.channels[ch].entries[i].clone();
        let r = Rec {
            len,
            ..e.blob.expect("blob entry")
        };
        put32(&mut self.b, r.offset + 24, len as u32);
        put32(&mut self.b, e.at + 16, len as u32);
        let crc = self.seal_record(r);
        put32(&mut self.b, e.at + 4, crc);
        self.seal_table(ch);
    }

    pub fn blob(&self, ch: usize, i: usize) -> Rec {
        self.c.channels[ch].entries[i].blob.expect("blob entry")
    }
}

/// What a forged file must do.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// The newest commit is refused at open: with the other slot, the previous commit;
    /// alone, this open error.
    Refused(fn(&Error) -> bool),
    /// The newest commit opens; this chunk's reads fail with `Corrupted`, every other read
    /// is exact, and `verify()` names the chunk.
    ChunkRefused(usize, usize),
    /// The newest commit opens; reads are exact or fail typed; `verify()` reports an overlap.
    OverlapReported,
    /// Accepted as the newest commit, every read exact (fields a reader ignores).
    Accepted,
}

pub fn is_corrupted(e: &Error) -> bool {
    matches!(e, Error::Corrupted { .. })
}

pub fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::UnsupportedVersion { major: 2, .. })
}

/// Run one forged file, with and without the previous slot, read-only and read-write.
pub fn check_forged(
    fx: &Fixture,
    name: &str,
    forge: &Forge,
    expect: Expect,
) -> std::result::Result<String, String> {
    let mut notes = Vec::new();
    for wiped in [false, true] {
        let mut bytes = forge.b.clone();
        if wiped {
            let s = (1 - forge.c.page) * SLOT_PAGE;
            bytes[s..s + SLOT_LEN].fill(0);
        }
        let path = fx.copy("forged.cimg", &bytes);
        for access in [Access::ReadOnly, Access::ReadWrite] {
            let ctx = format!(
                "{name} ({access:?}, previous slot {})",
                if wiped { "wiped" } else { "intact" }
            );
            let observed = open_and_read(&path, fx.kind, access)?;
            match (expect, &observed) {
                (Expect::Refused(_), Observed::Opened(o)) if !wiped => {
                    if at_commit(fx, o.generation, access) != Some(Which::Previous) {
                        return Err(format!("{ctx}: opened at generation {}", o.generation));
                    }
                    let bad = compare(o, &fx.expect_previous).map_err(|m| format!("{ctx}: {m}"))?;
                    if !bad.is_empty() {
                        return Err(format!("{ctx}: previous commit with bad chunks {bad:?}"));
                    }
                }
                (Expect::Refused(matches), Observed::OpenFailed(e)) if wiped => {
                    if !matches(e) {
                        return Err(format!("{ctx}: wrong error {e:?}"));
                    }
                    if access == Access::ReadOnly {
                        notes.push(e.to_string());
                    }
                }
                (Expect::ChunkRefused(ch, i), Observed::Opened(o)) => {
                    if at_commit(fx, o.generation, access) != Some(Which::Newest) {
                        return Err(format!("{ctx}: opened at generation {}", o.generation));
                    }
                    let bad = compare(o, &fx.expect_newest).map_err(|m| format!("{ctx}: {m}"))?;
                    if bad != [(ch, i)] {
                        return Err(format!("{ctx}: unreadable chunks {bad:?}"));
                    }
                    match &o.channels[ch].chunks[i] {
                        Err(e @ Error::Corrupted { .. }) => {
                            if access == Access::ReadOnly && !wiped {
                                notes.push(e.to_string());
                            }
                        }
                        other => return Err(format!("{ctx}: chunk read {other:?}")),
                    }
                }
                (Expect::OverlapReported, Observed::Opened(o)) => {
                    if at_commit(fx, o.generation, access) != Some(Which::Newest) {
                        return Err(format!("{ctx}: opened at generation {}", o.generation));
                    }
                    if !o.problems.iter().any(|p| p.contains("overlaps")) {
                        return Err(format!("{ctx}: verify() reports {:?}", o.problems));
                    }
                    let mut failed = Vec::new();
                    for (pos, (oc, ec)) in o
                        .channels
                        .iter()
                        .zip(&fx.expect_newest.channels)
                        .enumerate()
                    {
                        for (k, (got, want)) in oc.chunks.iter().zip(&ec.chunks).enumerate() {
                            match got {
                                Ok(b) if b != want => {
                                    return Err(format!(
                                        "{ctx}: channel {pos} chunk {k}: WRONG BITS"
                                    ));
                                }
                                Ok(_) => {}
                                Err(e @ (Error::Corrupted { .. } | Error::Codec { .. })) => {
                                    failed.push(format!("channel {pos} chunk {k}: {e}"));
                                }
                                Err(e) => return Err(format!("{ctx}: chunk {k}: {e:?}")),
                            }
                        }
                    }
                    if access == Access::ReadOnly && !wiped {
                        notes.push(o.problems.join("; "));
                        notes.push(if failed.is_empty() {
                            "every chunk reads bit-exact".to_string()
                        } else {
                            failed.join("; ")
                        });
                    }
                }
                (Expect::Accepted, Observed::Opened(o)) => {
                    if at_commit(fx, o.generation, access) != Some(Which::Newest) {
                        return Err(format!("{ctx}: opened at generation {}", o.generation));
                    }
                    let bad = compare(o, &fx.expect_newest).map_err(|m| format!("{ctx}: {m}"))?;
                    if !bad.is_empty() {
                        return Err(format!("{ctx}: unreadable chunks {bad:?}"));
                    }
                }
                (_, Observed::OpenFailed(e)) => return Err(format!("{ctx}: open failed: {e:?}")),
                (_, Observed::Opened(o)) => {
                    return Err(format!("{ctx}: opened at generation {}", o.generation));
                }
            }
            // A read-write open may have written a marker slot: start again from the forgery.
            fs::write(&path, &bytes).expect("rewrite forged copy");
        }
    }
    notes.dedup();
    Ok(notes.join(" | "))
}

pub type Edit = Box<dyn Fn(&mut Forge)>;

/// Run every case; print what each produced; fail on any violation.
pub fn run_forgeries(fx: &Fixture, title: &str, cases: Vec<(String, Expect, Edit)>) {
    let mut report = format!(
        "\n== forged files ({title}), {}: {} cases\n",
        fx.name,
        cases.len()
    );
    let mut failures = Vec::new();
    for (name, expect, edit) in cases {
        let mut forge = Forge::new(fx);
        edit(&mut forge);
        match check_forged(fx, &name, &forge, expect) {
            Ok(note) => {
                let kind = match expect {
                    Expect::Refused(_) => "refused",
                    Expect::ChunkRefused(..) => "chunk refused",
                    Expect::OverlapReported => "overlap reported",
                    Expect::Accepted => "accepted",
                };
                let _ = writeln!(report, "  ok  {name:<58} {kind}: {note}");
            }
            Err(msg) => {
                let _ = writeln!(report, "  FAIL {name}: {msg}");
                failures.push(msg);
            }
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{title}: {failures:#?}");
}
