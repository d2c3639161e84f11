//! Sweeps over a working copy edited in place, outcomes tallied by region: every bit flip
//! (sampled in the default run), truncation to every length or near every boundary, junk
//! after the end, and torn tails.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::panic;
use std::path::PathBuf;
use std::time::Instant;

use compressed_image::inspect;

use crate::common::format::{Kind, MAGIC, REGION_START, Rec, SLOT_LEN, SLOT_PAGE, align64};
use crate::common::rng::Rng;
use crate::common::{long_run, panic_message};
use crate::fixture::{Fixture, Sharing, channel_fixture, image_fixture};
use crate::observe::{
    Access, Observed, Outcome, Which, classify, compare, continue_writing, continued, open_and_read,
};

/// Outcome counts per region, and every violation.
#[derive(Default)]
pub struct Tally {
    pub regions: Vec<String>,
    pub counts: BTreeMap<String, BTreeMap<Outcome, usize>>,
    pub trials: usize,
    pub rw_trials: usize,
    pub violations: Vec<String>,
}

impl Tally {
    pub fn record(&mut self, region: &str, outcome: Outcome) {
        if !self.counts.contains_key(region) {
            self.regions.push(region.to_string());
        }
        *self
            .counts
            .entry(region.to_string())
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }

    pub fn violation(&mut self, msg: String) {
        if self.violations.len() < 200 {
            eprintln!("VIOLATION: {msg}");
        }
        self.violations.push(msg);
    }

    /// The outcome table.
    pub fn table(&self, title: &str, seconds: f64) -> String {
        let mut s = String::new();
        let used: Vec<Outcome> = Outcome::ALL
            .into_iter()
            .filter(|o| self.counts.values().any(|m| m.contains_key(o)))
            .collect();
        let _ = writeln!(
            s,
            "\n== {title}: {} trials ({} also read-write), {} violations, {seconds:.1} s",
            self.trials,
            self.rw_trials,
            self.violations.len()
        );
        let _ = write!(s, "{:<52}", "region");
        for o in &used {
            let _ = write!(s, " {:>18}", o.label());
        }
        s.push('\n');
        let mut totals = BTreeMap::<Outcome, usize>::new();
        for r in &self.regions {
            let _ = write!(s, "{r:<52}");
            for o in &used {
                let n = self.counts[r].get(o).copied().unwrap_or(0);
                *totals.entry(*o).or_default() += n;
                let _ = write!(s, " {n:>18}");
            }
            s.push('\n');
        }
        let _ = write!(s, "{:<52}", "total");
        for o in &used {
            let _ = write!(s, " {:>18}", totals.get(o).copied().unwrap_or(0));
        }
        s.push('\n');
        s
    }

    /// Print the table and fail on any violation.
    pub fn finish(self, title: &str, started: Instant) {
        println!("{}", self.table(title, started.elapsed().as_secs_f64()));
        assert!(
            self.violations.is_empty(),
            "{title}: {} violations, first: {:#?}",
            self.violations.len(),
            &self.violations[..self.violations.len().min(20)]
        );
    }
}

/// A working copy of a fixture, edited in place between opens.
pub struct Bench<'a> {
    pub fx: &'a Fixture,
    pub path: PathBuf,
    pub file: File,
    /// Bytes currently in the working copy.
    pub current_len: usize,
    pub tally: Tally,
    /// Every n-th trial also opens read-write, commits and reopens.
    pub rw_every: usize,
}

impl<'a> Bench<'a> {
    pub fn new(fx: &'a Fixture, name: &str, rw_every: usize) -> Bench<'a> {
        let path = fx.copy(name, &fx.bytes);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open working copy");
        Bench {
            fx,
            path,
            file,
            current_len: fx.bytes.len(),
            tally: Tally::default(),
            rw_every,
        }
    }

    pub fn write_at(&mut self, at: usize, data: &[u8]) {
        self.file
            .seek(SeekFrom::Start(at as u64))
            .expect("seek working copy");
        self.file.write_all(data).expect("write working copy");
        self.current_len = self.current_len.max(at + data.len());
    }

    pub fn set_len(&mut self, len: usize) {
        self.file.set_len(len as u64).expect("set_len working copy");
        self.current_len = len;
    }

    /// Put the pristine file back.
    pub fn restore(&mut self) {
        self.set_len(0);
        self.write_at(0, &self.fx.bytes.clone());
    }

    /// Flip one bit, check, undo.
    pub fn flip(&mut self, region: &str, allowed: &[Outcome], offset: usize, bit: u8) {
        let pristine = self.fx.bytes[offset];
        self.write_at(offset, &[pristine ^ (1 << bit)]);
        let rw = self.tally.trials.is_multiple_of(self.rw_every);
        let label = format!("bit {bit} of byte {offset}");
        self.check(region, allowed, &label, rw);
        if rw {
            self.restore();
        } else {
            self.write_at(offset, &[pristine]);
        }
    }

    /// Open the working copy as it is and read everything; with `rw`, also open it
    /// read-write (which must choose the same commit), commit a change and reopen.
    pub fn check(&mut self, region: &str, allowed: &[Outcome], label: &str, rw: bool) {
        let fx = self.fx;
        self.tally.trials += 1;
        let observed = open_and_read(&self.path, fx.kind, Access::ReadOnly);
        let outcome = match classify(&observed, fx, Access::ReadOnly) {
            Ok(o) => o,
            Err(msg) => {
                self.tally
                    .violation(format!("{}: {region}: {label}: {msg}", fx.name));
                return;
            }
        };
        self.tally.record(region, outcome);
        if !allowed.is_empty() && !allowed.contains(&outcome) {
            self.tally.violation(format!(
                "{}: {region}: {label}: outcome {outcome:?}, expected one of {allowed:?}",
                fx.name
            ));
        }
        if rw && let Err(msg) = self.check_read_write(outcome) {
            self.tally
                .violation(format!("{}: {region}: {label}: {msg}", fx.name));
        }
    }

    /// `inspect` and a read-write open agree with the read-only outcome; after a commit
    /// through the read-write handle, the file holds the chosen commit plus that change.
    pub fn check_read_write(&mut self, outcome: Outcome) -> std::result::Result<(), String> {
        let fx = self.fx;
        self.tally.rw_trials += 1;
        let which = match outcome {
            Outcome::Newest | Outcome::NewestBadChunk => Some(Which::Newest),
            Outcome::Previous | Outcome::PreviousBadChunk => Some(Which::Previous),
            _ => None,
        };
        let info = panic::catch_unwind(|| inspect(&self.path))
            .map_err(|p| format!("inspect: PANIC: {}", panic_message(&*p)))?;
        match (&info, which) {
            (Ok(info), Some(w)) if info.generation == fx.expect(w).generation => {}
            (Err(_), None) => {}
            _ => return Err(format!("inspect disagrees with the open: {info:?}")),
        }
        let rw = classify(
            &open_and_read(&self.path, fx.kind, Access::ReadWrite),
            fx,
            Access::ReadWrite,
        )
        .map_err(|m| format!("read-write: {m}"))?;
        if rw != outcome {
            return Err(format!("read-write open: {rw:?}, read-only: {outcome:?}"));
        }
        let Some(which) = which else { return Ok(()) };
        if !continue_writing(&self.path, fx.kind)? {
            return Err("the second read-write open failed".into());
        }
        let expected = continued(fx.expect(which), fx.kind);
        match open_and_read(&self.path, fx.kind, Access::ReadOnly)? {
            Observed::OpenFailed(e) => Err(format!("reopen after a commit: {e:?}")),
            Observed::Opened(o) => {
                let bad = compare(&o, &expected).map_err(|m| format!("after a commit: {m}"))?;
                if outcome == Outcome::Newest && !bad.is_empty() {
                    return Err(format!("after a commit, chunks {bad:?} fail"));
                }
                if o.generation <= fx.expect(which).generation {
                    return Err(format!("after a commit, generation {}", o.generation));
                }
                Ok(())
            }
        }
    }
}

/// A region of bytes to flip and the outcomes the specification allows for it.
pub struct Region {
    pub name: String,
    pub ranges: Vec<Range<usize>>,
    pub allowed: Vec<Outcome>,
    /// Flip at most this many bits (seeded) in the default run; every bit with `CIMG_LONG`.
    pub sample: Option<usize>,
}

/// The regions of a fixture: slots, each referenced record's header and payload (by kind
/// and by which commits reference it), record padding and unreferenced bytes.
pub fn regions(fx: &Fixture) -> Vec<Region> {
    use Outcome::*;
    let mut out = Vec::new();
    let mut push = |name: String, ranges: Vec<Range<usize>>, allowed: &[Outcome], sample| {
        if !ranges.is_empty() {
            out.push(Region {
                name,
                ranges,
                allowed: allowed.to_vec(),
                sample,
            });
        }
    };
    let slot = |page: usize| page * SLOT_PAGE..page * SLOT_PAGE + SLOT_LEN;
    // Any single-bit error in a slot record fails its CRC (or its magic): the other slot.
    push(
        "slot record of the newest commit".into(),
        vec![slot(fx.newest.page)],
        &[Previous],
        None,
    );
    push(
        "slot record of the previous commit".into(),
        vec![slot(fx.previous.page)],
        &[Newest],
        None,
    );
    push(
        "slot pages [256, 4096) (ignored)".into(),
        vec![SLOT_LEN..SLOT_PAGE, SLOT_PAGE + SLOT_LEN..2 * SLOT_PAGE],
        &[Newest],
        Some(512),
    );
    let referenced = fx.referenced();
    let durable = |r: &Rec| r.offset < fx.newest.durable_end;
    // (kind, sharing, durable blob) → (header ranges, payload ranges)
    type Groups = BTreeMap<(Kind, Sharing, bool), (Vec<Range<usize>>, Vec<Range<usize>>)>;
    let mut groups = Groups::new();
    let mut padding = Vec::new();
    for (r, s) in &referenced {
        let g = groups
            .entry((r.kind, *s, r.kind == Kind::BLOB && durable(r)))
            .or_default();
        g.0.push(r.header());
        g.1.push(r.payload());
        padding.push(r.padding());
    }
    for ((kind, sharing, is_durable), (headers, payloads)) in groups {
        let who = match sharing {
            Sharing::Newest => "newest only",
            Sharing::Previous => "previous only",
            Sharing::Both => "both commits",
        };
        let blob_where = match (kind, is_durable) {
            (Kind::BLOB, true) => ", below durable_end",
            (Kind::BLOB, false) => ", unsynced",
            _ => "",
        };
        // What one flip may do, by what references the record (SPEC §4, §8, §9).
        let (header_ok, payload_ok): (&[Outcome], &[Outcome]) = match (kind, sharing, is_durable) {
            (_, Sharing::Previous, _) => (&[Newest], &[Newest]),
            (Kind::BLOB, _, true) => (&[Newest, NewestBadChunk], &[NewestBadChunk]),
            (_, Sharing::Newest, _) => (&[Newest, Previous], &[Previous]),
            (_, Sharing::Both, _) => (&[Newest, Corrupted], &[Corrupted]),
        };
        let name = |part: &str| format!("{} {part} ({who}{blob_where})", kind.name());
        push(name("header"), headers, header_ok, None);
        let sample = (kind == Kind::BLOB).then_some(700);
        push(name("payload"), payloads, payload_ok, sample);
    }
    push(
        "padding after referenced records".into(),
        padding,
        &[Newest],
        Some(512),
    );
    // Everything else in the record region: dead records, discarded bytes, preallocation.
    let mut covered: Vec<Range<usize>> = referenced
        .keys()
        .map(|r| r.offset..align64(r.end()))
        .collect();
    covered.sort_by_key(|r| r.start);
    let mut dead = Vec::new();
    let mut at = REGION_START;
    for r in covered {
        if r.start > at {
            dead.push(at..r.start);
        }
        at = at.max(r.end);
    }
    if at < fx.bytes.len() {
        dead.push(at..fx.bytes.len());
    }
    push(
        "unreferenced bytes (dead records, tail)".into(),
        dead,
        &[Newest],
        Some(512),
    );
    out
}

/// The bit positions to flip in a region: all, or a seeded sample.
pub fn bits_of(region: &Region, rng: &mut Rng) -> Vec<(usize, u8)> {
    let total: usize = region.ranges.iter().map(|r| r.len() * 8).sum();
    let nth = |mut k: usize| -> (usize, u8) {
        for r in &region.ranges {
            if k < r.len() * 8 {
                return (r.start + k / 8, (k % 8) as u8);
            }
            k -= r.len() * 8;
        }
        unreachable!("bit index below the total")
    };
    match region.sample {
        Some(n) if n < total && !long_run() => {
            let mut picked = HashSet::new();
            while picked.len() < n {
                picked.insert(rng.below(total));
            }
            let mut picked: Vec<usize> = picked.into_iter().collect();
            picked.sort_unstable();
            picked.into_iter().map(nth).collect()
        }
        _ => (0..total).map(nth).collect(),
    }
}

pub fn bit_flip_sweep(fx: &Fixture) {
    let started = Instant::now();
    let mut bench = Bench::new(fx, "flipped.cimg", 16);
    let mut rng = Rng::new(0xC0FF_EE00 + fx.bytes.len() as u64);
    for region in regions(fx) {
        for (offset, bit) in bits_of(&region, &mut rng) {
            bench.flip(&region.name, &region.allowed, offset, bit);
        }
    }
    let title = format!(
        "bit flips, {} ({} bytes, newest generation {} in slot {}, previous {} in slot {})",
        fx.name,
        fx.bytes.len(),
        fx.newest.generation,
        fx.newest.page,
        fx.previous.generation,
        fx.previous.page
    );
    bench.tally.finish(&title, started);
}

#[test]
fn every_bit_flip_in_the_image_file_is_detected_or_harmless() {
    bit_flip_sweep(&image_fixture());
}

#[test]
fn every_bit_flip_in_the_channel_file_is_detected_or_harmless() {
    bit_flip_sweep(&channel_fixture());
}

/// What a file truncated to `len` bytes must open as (SPEC §3 step 6, §9).
pub fn truncation_outcome(fx: &Fixture, len: usize) -> Outcome {
    if len >= fx.newest.committed_end {
        Outcome::Newest
    } else if len >= fx.previous.committed_end {
        Outcome::Previous
    } else if len < MAGIC.len() {
        Outcome::NotACompressedImage
    } else {
        Outcome::Corrupted
    }
}

/// Open the file truncated to each of `lengths` (ascending), growing the working copy
/// from the pristine bytes between opens.
pub fn truncation_sweep(fx: &Fixture, lengths: &[usize]) {
    let started = Instant::now();
    let mut bench = Bench::new(fx, "truncated.cimg", 64);
    bench.set_len(0);
    for &len in lengths {
        assert!(len >= bench.current_len, "lengths ascend");
        let from = bench.current_len;
        bench.write_at(from, &fx.bytes[from..len]);
        let expected = truncation_outcome(fx, len);
        let region = match len {
            0..SLOT_PAGE => "inside slot page A",
            SLOT_PAGE..REGION_START => "inside slot page B",
            l if l < fx.previous.committed_end => "records, before the previous committed_end",
            l if l < fx.newest.committed_end => "between the two committed_ends",
            _ => "at or after the newest committed_end",
        };
        // Read-write opens of truncated files are sampled away from the slot pages.
        let rw = len >= REGION_START && bench.tally.trials.is_multiple_of(bench.rw_every);
        bench.check(region, &[expected], &format!("length {len}"), rw);
        if rw {
            // The read-write check committed: put the truncated pristine bytes back.
            bench.restore();
            bench.set_len(len);
        }
    }
    let title = format!(
        "truncations, {} ({} lengths of 0..={}; committed_end previous {}, newest {})",
        fx.name,
        lengths.len(),
        fx.bytes.len(),
        fx.previous.committed_end,
        fx.newest.committed_end
    );
    bench.tally.finish(&title, started);
}

#[test]
fn the_channel_file_truncated_to_every_length_opens_at_a_commit_or_fails_typed() {
    let fx = channel_fixture();
    let lengths: Vec<usize> = (0..=fx.bytes.len()).collect();
    truncation_sweep(&fx, &lengths);
}

#[test]
fn the_image_file_truncated_near_every_boundary_opens_at_a_commit_or_fails_typed() {
    let fx = image_fixture();
    let len = fx.bytes.len();
    let mut lengths: BTreeSet<usize> = if long_run() {
        (0..=len).collect()
    } else {
        (0..=REGION_START + 64)
            .chain((0..=len).step_by(97))
            .collect()
    };
    let mut boundaries = vec![fx.previous.committed_end, fx.newest.committed_end, len];
    for r in fx.referenced().keys() {
        boundaries.extend([r.offset, r.payload().start, r.end()]);
    }
    for b in boundaries {
        lengths.extend(b.saturating_sub(64)..=(b + 64).min(len));
    }
    truncation_sweep(&fx, &lengths.into_iter().collect::<Vec<_>>());
}

/// Junk after the end of the file, or after `committed_end` once the tail is cut: the
/// newest commit, bit-exact; a read-write open then overwrites the junk with its commit.
pub fn junk_sweep(fx: &Fixture) {
    let started = Instant::now();
    let mut rng = Rng::new(42);
    let records = fx.bytes[REGION_START..fx.newest.committed_end].to_vec();
    let junks: Vec<(&str, Vec<u8>)> = vec![
        ("1 random byte", rng.bytes(1)),
        ("1 KiB random", rng.bytes(1024)),
        ("100 KiB random", rng.bytes(100 * 1024)),
        ("4 KiB zeros", vec![0; 4096]),
        ("64 KiB of 0xFF", vec![0xFF; 64 * 1024]),
        ("a copy of the file's records", records),
        ("a copy of the whole file", fx.bytes.clone()),
    ];
    let cuts = [
        ("file end", fx.bytes.len()),
        ("newest committed_end", fx.newest.committed_end),
        ("align64(committed_end)", align64(fx.newest.committed_end)),
    ];
    let mut bench = Bench::new(fx, "junk.cimg", 1);
    for (cut_name, cut) in cuts {
        for (junk_name, junk) in &junks {
            bench.restore();
            bench.set_len(cut);
            bench.write_at(cut, junk);
            let region = format!("cut at {cut_name}, + {junk_name}");
            bench.check(&region, &[Outcome::Newest], "junk", true);
        }
    }
    bench
        .tally
        .finish(&format!("junk after the end, {}", fx.name), started);
}

#[test]
fn junk_after_the_committed_end_is_never_read() {
    junk_sweep(&image_fixture());
    junk_sweep(&channel_fixture());
}

/// A torn tail: the file cut at `len` and refilled to its length with other bytes, as a
/// crash during the writes of the newest commit leaves it. Between the two committed_ends
/// the previous commit must be chosen (every byte of the newest commit's own records is
/// checked at open); beyond it nothing changes.
pub fn torn_tail_sweep(fx: &Fixture) {
    let started = Instant::now();
    let mut bench = Bench::new(fx, "torn.cimg", 8);
    let mut rng = Rng::new(7);
    let (prev_end, new_end) = (fx.previous.committed_end, fx.newest.committed_end);
    let step = if long_run() { 1 } else { 7 };
    for len in (prev_end..(new_end + 128).min(fx.bytes.len())).step_by(step) {
        bench.restore();
        let mut junk = rng.bytes(fx.bytes.len() - len);
        for (j, b) in junk.iter_mut().enumerate() {
            if *b == fx.bytes[len + j] {
                *b ^= 0x5A; // every byte differs from the pristine one
            }
        }
        bench.write_at(len, &junk);
        let (region, expected) = if len < new_end {
            ("torn inside the newest commit's records", Outcome::Previous)
        } else {
            ("torn after the newest committed_end", Outcome::Newest)
        };
        let rw = bench.tally.trials.is_multiple_of(bench.rw_every);
        bench.check(region, &[expected], &format!("torn at {len}"), rw);
    }
    bench
        .tally
        .finish(&format!("torn tails, {}", fx.name), started);
}

#[test]
fn a_torn_tail_falls_back_to_the_previous_commit() {
    torn_tail_sweep(&image_fixture());
    torn_tail_sweep(&channel_fixture());
}
