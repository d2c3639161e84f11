//! Part 1, the power-loss sweep: crash images built from every prefix of the recorded I/O
//! log must open at a commit of the model, read bit-exactly and recover.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

use crate::common::format::{SLOT_LEN, SLOT_PAGE, decode_slot};
use crate::common::panic_message;
use crate::common::rng::Rng;
use crate::recording::{
    Bounds, Entry, IoOp, Point, Rec, Recorder, apply, check_caught, check_image, live_matches, put,
    record, recording, sectors, slot_gen,
};
use crate::target::{Target, recovery_steps};
use crate::workload::{Kind, workloads};
use crate::{Failures, config, digest, scratch, seeded_rng, write_image};

#[derive(Default)]
pub struct SweepStats {
    pub workloads: usize,
    pub log_entries: usize,
    pub points: usize,
    pub generated: usize,
    pub opened: usize,
    pub recovered: usize,
    pub written: usize,
    pub watch_checks: usize,
    pub fallbacks: usize,
}

impl SweepStats {
    /// Count one more sweep of `log_entries` log entries whose own counts are `run`.
    fn add_sweep(&mut self, log_entries: usize, run: &SweepStats) {
        self.workloads += 1;
        self.log_entries += log_entries;
        self.points += run.points;
        self.generated += run.generated;
        self.opened += run.opened;
        self.recovered += run.recovered;
        self.written += run.written;
        self.fallbacks += run.fallbacks;
    }
}

/// A crash image and what it must open at.
pub struct Variant {
    pub label: String,
    pub bytes: Vec<u8>,
    pub exact: Option<u64>,
}

pub struct Sweep<'a> {
    pub rec: &'a Rec,
    pub file: PathBuf,
    pub rng: Rng,
    pub seen: HashSet<(u64, usize, usize, Option<u64>)>,
    pub stats: SweepStats,
    pub failures: Failures,
}

impl<'a> Sweep<'a> {
    /// A sweep of `rec` writing its crash images to `file`, with no counts or failures yet.
    pub fn new(rec: &'a Rec, file: PathBuf, rng: Rng) -> Self {
        Sweep {
            rec,
            file,
            rng,
            seen: HashSet::new(),
            stats: SweepStats::default(),
            failures: Failures::default(),
        }
    }

    pub fn variants(&mut self, p: &Point<'_>) -> Vec<Variant> {
        let cfg = config();
        let mut out = vec![Variant {
            label: "(a) durable only".into(),
            bytes: p.durable.clone(),
            exact: Some(p.b.lo_gen),
        }];
        let n = p.pending.len();
        if n == 0 {
            return out;
        }
        let build = |keep: &[bool]| {
            let mut img = p.durable.clone();
            for (op, _) in p.pending.iter().zip(keep).filter(|(_, k)| **k) {
                apply(&mut img, op, false);
            }
            img
        };
        out.push(Variant {
            label: "every write in order (process crash)".into(),
            bytes: build(&vec![true; n]),
            exact: Some(p.b.hi_gen),
        });
        for s in 0..cfg.subsets {
            let num = [1, 2, 3][s % 3];
            let keep: Vec<bool> = (0..n).map(|_| self.rng.chance(num, 4)).collect();
            out.push(Variant {
                label: format!("(b) subset {s} (p = {num}/4) {}", mask(&keep)),
                bytes: build(&keep),
                exact: None,
            });
        }
        for g in [512u64, 4096] {
            let tearable: Vec<usize> = (0..n)
                .filter(|&i| match p.pending[i] {
                    IoOp::Write { offset, bytes } => sectors(*offset, bytes.len(), g).len() > 1,
                    _ => false,
                })
                .collect();
            if tearable.is_empty() {
                continue;
            }
            for t in 0..cfg.torn {
                let victim = tearable[self.rng.below(tearable.len())];
                let IoOp::Write { offset, bytes } = p.pending[victim] else {
                    unreachable!()
                };
                let secs = sectors(*offset, bytes.len(), g);
                let keep: Vec<bool> = (0..n).map(|_| self.rng.chance(1, 2)).collect();
                // A prefix of the sectors, and a scattered subset of them.
                let cut = 1 + self.rng.below(secs.len() - 1);
                let prefix: Vec<bool> = (0..secs.len()).map(|s| s < cut).collect();
                let mut scattered: Vec<bool> =
                    (0..secs.len()).map(|_| self.rng.chance(1, 2)).collect();
                scattered[self.rng.below(secs.len())] = true;
                let hole = self.rng.below(secs.len());
                scattered[hole] = false;
                for (how, parts) in [("prefix", prefix), ("scattered", scattered)] {
                    let mut img = p.durable.clone();
                    for (i, op) in p.pending.iter().enumerate() {
                        if i == victim {
                            for (s, r) in secs.iter().enumerate() {
                                if parts[s] {
                                    put(&mut img, offset + r.start as u64, &bytes[r.clone()]);
                                }
                            }
                        } else if keep[i] {
                            apply(&mut img, op, false);
                        }
                    }
                    out.push(Variant {
                        label: format!(
                            "(c) torn {t} at {g} B ({how} {} of pending write {victim} at \
                             {offset}) {}",
                            mask(&parts),
                            mask(&keep)
                        ),
                        bytes: img,
                        exact: None,
                    });
                }
            }
        }
        for s in 0..cfg.shuffles {
            let keep: Vec<usize> = (0..n).filter(|_| s == 0 || self.rng.chance(3, 4)).collect();
            let mut order = keep;
            self.rng.shuffle(&mut order);
            let mut img = p.durable.clone();
            for &i in &order {
                apply(&mut img, p.pending[i], true);
            }
            out.push(Variant {
                label: format!("(d) reordered {s}: {order:?}"),
                bytes: img,
                exact: None,
            });
        }
        out
    }

    /// Check the crash images of every crash point from `start` on.
    pub fn run(&mut self, start: usize) {
        let cfg = config();
        let rec = self.rec;
        let n = rec.log.len();
        for k in start..=n {
            self.stats.points += 1;
            for inst in rec.instances_at(k) {
                let p = rec.point(inst, k);
                for v in self.variants(&p) {
                    self.stats.generated += 1;
                    let key = (digest(&v.bytes), p.b.lo, p.b.hi, v.exact);
                    if !self.seen.insert(key) {
                        continue;
                    }
                    self.stats.opened += 1;
                    let rw = self.stats.opened.is_multiple_of(cfg.rw_every);
                    let write = self
                        .stats
                        .opened
                        .is_multiple_of(cfg.write_every)
                        .then_some(self.stats.opened as u64);
                    match check_caught(rec, &self.file, &v.bytes, &p.b, v.exact, (rw, write)) {
                        Ok(opened) => {
                            self.stats.recovered += usize::from(rw);
                            self.stats.written += usize::from(rw && write.is_some());
                            self.stats.fallbacks += usize::from(opened.state < p.b.hi);
                        }
                        Err(m) => self.failures.push(format!(
                            "{} crash point {k}/{n} (file {inst}, pending {}) {}: {m}",
                            rec.w.name,
                            p.pending.len(),
                            v.label
                        )),
                    }
                }
            }
        }
    }
}

/// A keep-mask as a short string of 0s and 1s.
pub fn mask(keep: &[bool]) -> String {
    let s: String = keep.iter().map(|&k| if k { '1' } else { '0' }).collect();
    if s.len() > 48 {
        format!("{}…", &s[..48])
    } else {
        s
    }
}

pub fn power_loss_sweep(kind: Kind) {
    let cfg = config();
    let started = Instant::now();
    let dir = scratch();
    let mut total = SweepStats::default();
    let mut failures = Failures::default();
    for (wi, w) in workloads(kind).into_iter().enumerate() {
        let rec = record(&w, dir.path());
        // The scripted workloads must exercise every kind of mutation.
        if wi == 0 {
            let has = |f: &dyn Fn(&IoOp) -> bool| rec.log.iter().any(|e| f(&e.op));
            assert!(has(&|op| matches!(op, IoOp::SetLen(_))), "no file growth");
            assert!(has(&|op| matches!(op, IoOp::Sync)), "no fsync");
            assert!(has(&|op| slot_gen(op).is_some()), "no slot write");
            assert!(!rec.events.is_empty(), "no compaction");
            assert!(rec.watch_checks > 0, "compaction's copy was not watched");
        }
        let mut sweep = Sweep::new(
            &rec,
            dir.path().join(format!("{}-crash.cimg", w.name)),
            seeded_rng(cfg.seed ^ digest(w.name.as_bytes())),
        );
        sweep.run(0);
        let s = &sweep.stats;
        println!(
            "power-loss sweep [{}]: {} log entries ({} files), {} crash points, {} crash images \
             ({} distinct opened, {} opened older than the newest slot written, {} recovered \
             read-write, {} with a commit after recovery), {} checks of the old file during \
             compaction",
            w.name,
            rec.log.len(),
            rec.bases.len(),
            s.points,
            s.generated,
            s.opened,
            s.fallbacks,
            s.recovered,
            s.written,
            rec.watch_checks
        );
        total.add_sweep(rec.log.len(), s);
        total.watch_checks += rec.watch_checks;
        failures.count += sweep.failures.count;
        failures.shown.extend(sweep.failures.shown);
    }
    println!(
        "power-loss sweep total [{kind:?}{}]: {} workloads, {} log entries, {} crash points, \
         {} crash images, {} distinct opened ({} fell back), {} recovered read-write, {} \
         written after recovery, {} compaction watch checks, {:.1} s",
        if cfg.long { ", long" } else { "" },
        total.workloads,
        total.log_entries,
        total.points,
        total.generated,
        total.opened,
        total.fallbacks,
        total.recovered,
        total.written,
        total.watch_checks,
        started.elapsed().as_secs_f64()
    );
    failures.assert_none("power-loss sweep");
}

#[test]
fn power_loss_at_every_io_of_channel_workloads_opens_a_valid_commit() {
    power_loss_sweep(Kind::Channel);
}

#[test]
fn power_loss_at_every_io_of_image_workloads_opens_a_valid_commit() {
    power_loss_sweep(Kind::Image);
}

/// The log of a restart after a process crash at crash point `k` of `rec` (before any
/// compaction): the crashed process's writes up to `k` (in the page cache, not synced),
/// then those of a new process that opens the file read-write (fsync, marker), commits
/// and closes it (fsync, marker). The result is a `Rec` of one file whose states are
/// `rec`'s plus the commits made after the restart, and the log index where the restart
/// begins.
pub fn restart(rec: &Rec, k: usize, dir: &Path, seed: u64) -> (Rec, usize) {
    let w = &rec.w;
    let p = rec.point(0, k);
    let mut img = p.durable.clone();
    for op in &p.pending {
        apply(&mut img, op, false);
    }
    let file = dir.join(format!("{}-restart.cimg", w.name));
    write_image(&file, &img).expect("write the image");
    let opened = p.b.hi; // a process crash loses nothing committed
    let r = Arc::new(Recorder::default());
    r.state.store(opened, SeqCst);
    let what = format!("{}: restart after a process crash at {k}", w.name);
    let t = Target::open_with(w.kind, &file, recording(&r))
        .unwrap_or_else(|e| panic!("{what}: open: {e}"));
    live_matches(&t, &rec.states[opened], &what);
    // Each commit of the restarted process is a new model state after `rec`'s.
    let mut states = rec.states.clone();
    let mut current = rec.states[opened].clone();
    for step in recovery_steps(w, &current, seed) {
        current = current.after(w, &step);
        r.state.store(states.len(), SeqCst);
        t.apply(w, &step)
            .unwrap_or_else(|e| panic!("{what}: {step:?}: {e}"));
        live_matches(&t, &current, &what);
        states.push(current.clone());
    }
    drop(t); // fsync and marker
    let mut log: Vec<Entry> = rec.log[..k]
        .iter()
        .filter(|e| e.inst == 0)
        .map(|e| Entry {
            inst: 0,
            op: e.op.clone(),
            state: e.state,
        })
        .collect();
    let start = log.len();
    log.extend(
        std::mem::take(&mut *r.log.lock().unwrap())
            .into_iter()
            .map(|e| Entry { inst: 0, ..e }),
    );
    // Generations above the opened one now name the restarted process's slots.
    let mut gens: HashMap<u64, usize> = rec
        .gens
        .iter()
        .filter(|(g, _)| **g <= p.b.hi_gen)
        .map(|(g, s)| (*g, *s))
        .collect();
    for e in &log[start..] {
        if let Some(g) = slot_gen(&e.op) {
            assert!(
                gens.insert(g, e.state).is_none(),
                "{what}: generation {g} reused"
            );
        }
    }
    let rec2 = Rec {
        w: w.clone(),
        states,
        log,
        bases: vec![rec.bases[0].clone()],
        events: Vec::new(),
        gens,
        base_gen: rec.base_gen,
        watch_checks: 0,
    };
    (rec2, start)
}

/// A process crash, a restart that recovers the file read-write (fsync, then a marker),
/// commits and closes it, and a power loss at every I/O of the restarted process: the
/// restart's fsync makes the crashed process's writes durable, so from then on the file
/// opens at the commit the restart found or at the restart's own commit.
#[test]
fn power_loss_while_restarting_after_a_process_crash_opens_a_valid_commit() {
    let cfg = config();
    let started = Instant::now();
    let dir = scratch();
    let mut total = SweepStats::default();
    let mut failures = Failures::default();
    for kind in [Kind::Channel, Kind::Image] {
        for w in workloads(kind) {
            let rec = record(&w, dir.path());
            let mut rng = seeded_rng(cfg.seed ^ 0x0A11 ^ digest(w.name.as_bytes()));
            let mut ks: Vec<usize> = (1..=rec.log.len())
                .filter(|&k| rec.instances_at(k) == [0] && !rec.point(0, k).pending.is_empty())
                .collect();
            rng.shuffle(&mut ks);
            for (i, &k) in ks.iter().take(cfg.restarts).enumerate() {
                let (rec2, start) = restart(&rec, k, dir.path(), 7000 + i as u64);
                let mut sweep = Sweep::new(
                    &rec2,
                    dir.path().join(format!("{}-restart-crash.cimg", w.name)),
                    seeded_rng(cfg.seed ^ k as u64),
                );
                sweep.run(start);
                let s = &sweep.stats;
                total.add_sweep(rec2.log.len() - start, s);
                for m in sweep.failures.shown {
                    failures.push(format!("restart after a process crash at {k}: {m}"));
                }
                failures.count += sweep.failures.count.saturating_sub(40);
            }
        }
    }
    println!(
        "power loss after a restart{}: {} restarts, {} log entries of restarted processes, \
         {} crash points, {} crash images, {} distinct opened ({} fell back), {} recovered \
         read-write again, {} written after that, {:.1} s",
        if cfg.long { " (long)" } else { "" },
        total.workloads,
        total.log_entries,
        total.points,
        total.generated,
        total.opened,
        total.fallbacks,
        total.recovered,
        total.written,
        started.elapsed().as_secs_f64()
    );
    assert!(total.workloads > 0);
    failures.assert_none("power loss after a restart");
}

/// redb's growth case: the slot of a commit that grew the file persisted, the `set_len`
/// and the records past the old length did not, so the slot's `committed_end` lies past
/// the end of the file. The open must fall back to an older commit.
#[test]
fn slot_past_the_end_of_a_file_whose_growth_was_lost_falls_back() {
    let dir = scratch();
    let mut cases = 0;
    let mut failures = Failures::default();
    for kind in [Kind::Channel, Kind::Image] {
        for w in workloads(kind) {
            let rec = record(&w, dir.path());
            let file = dir.path().join(format!("{}-growth.cimg", w.name));
            for (j, e) in rec.log.iter().enumerate() {
                let IoOp::SetLen(_) = e.op else { continue };
                let inst = e.inst;
                let Some(m) = (j + 1..rec.log.len())
                    .find(|&m| rec.log[m].inst == inst && slot_gen(&rec.log[m].op).is_some())
                else {
                    continue;
                };
                let k = m + 1;
                if !rec.instances_at(k).contains(&inst) {
                    continue;
                }
                let p = rec.point(inst, k);
                if !p.pending.iter().any(|op| std::ptr::eq(*op, &e.op)) {
                    continue; // the growth was synced before the slot
                }
                let mut img = p.durable.clone();
                let mut old_len = None;
                for op in &p.pending {
                    if std::ptr::eq(*op, &e.op) {
                        old_len = Some(img.len());
                    }
                    match (old_len, op) {
                        (None, _) => apply(&mut img, op, false),
                        (Some(l), IoOp::Write { offset, bytes }) if (*offset as usize) < l => {
                            let keep = bytes.len().min(l - *offset as usize);
                            put(&mut img, *offset, &bytes[..keep]);
                        }
                        _ => {} // the set_len and everything past the old end are lost
                    }
                }
                let slot_gen_m = slot_gen(&rec.log[m].op).expect("a slot write");
                let page = match &rec.log[m].op {
                    IoOp::Write { offset, .. } => *offset as usize / SLOT_PAGE,
                    _ => unreachable!(),
                };
                let slot = decode_slot(&img, page).expect("the slot persisted");
                assert_eq!(slot.generation, slot_gen_m);
                let what = format!("{} set_len at {j}, slot at {m}", w.name);
                if slot.committed_end <= img.len() as u64 {
                    // The growth was for a discarded batch; this slot is a later commit
                    // that reused the tail below the old end.
                    continue;
                }
                cases += 1;
                match check_caught(&rec, &file, &img, &p.b, None, (true, Some(cases as u64))) {
                    Ok(o) if o.generation == slot_gen_m => {
                        failures.push(format!("{what}: opened the slot past the end of the file"))
                    }
                    Ok(_) => {}
                    Err(m) => failures.push(format!("{what}: {m}")),
                }
            }
        }
    }
    println!("growth lost, slot persisted: {cases} crash images, each fell back");
    assert!(cases > 0, "no workload grew the file before a slot write");
    failures.assert_none("growth case");
}

/// Open a crash image whose slot `page` holds a torn write of generation `torn_gen`:
/// read-only (bounds, contents, `verify()`, nothing written), then read-write. Returns
/// whether the recovery replaced the torn page, which it may only do with a marker of the
/// commit it accepted.
pub fn check_torn_slot(
    rec: &Rec,
    file: &Path,
    img: &[u8],
    b: &Bounds,
    torn_gen: u64,
    page: usize,
) -> std::result::Result<bool, String> {
    let o = check_image(rec, file, img, b, None, false, None)?;
    if o.generation == torn_gen {
        return Err("the torn slot was chosen".into());
    }
    let chosen = (0..2)
        .filter_map(|p| decode_slot(img, p))
        .find(|s| s.generation == o.generation)
        .ok_or("the chosen slot is not in the file")?;
    let t = Target::open(rec.w.kind, file, true).map_err(|e| format!("recovery: {e}"))?;
    let seen = t.observe().map_err(|e| format!("after recovery: {e}"))?;
    if !rec.states[o.state].matches(&seen) {
        return Err("recovery shows another commit".into());
    }
    drop(t);
    let after = fs::read(file).map_err(|e| e.to_string())?;
    let at = page * SLOT_PAGE;
    if after[at..at + SLOT_LEN] == img[at..at + SLOT_LEN] {
        return Ok(false);
    }
    match decode_slot(&after, page) {
        Some(s)
            if s.catalog_offset == chosen.catalog_offset
                && s.committed_end == chosen.committed_end
                && s.durable_end == s.committed_end
                && s.generation > chosen.generation =>
        {
            Ok(true)
        }
        Some(s) => Err(format!(
            "recovery wrote {s:?} over the torn slot; the accepted commit is {chosen:?}"
        )),
        None => Err("recovery turned the torn page into another invalid slot".into()),
    }
}

/// A slot write torn in the middle (new first half, old second half: the CRC fails) is
/// never chosen and never "laundered": a read-only open writes nothing, and a read-write
/// open leaves the torn page as it is or overwrites it with a marker of the commit it
/// accepted, never with the torn slot under a fresh CRC.
#[test]
fn recovery_does_not_launder_a_torn_slot() {
    let dir = scratch();
    let mut cases = 0;
    let mut overwritten = 0;
    let mut failures = Failures::default();
    for kind in [Kind::Channel, Kind::Image] {
        for w in workloads(kind) {
            let rec = record(&w, dir.path());
            let file = dir.path().join(format!("{}-torn-slot.cimg", w.name));
            for (m, e) in rec.log.iter().enumerate() {
                let Some(torn_gen) = slot_gen(&e.op) else {
                    continue;
                };
                let IoOp::Write { offset, bytes } = &e.op else {
                    unreachable!()
                };
                let (inst, page) = (e.inst, *offset as usize / SLOT_PAGE);
                if !rec.instances_at(m + 1).contains(&inst) {
                    continue;
                }
                let before = rec.point(inst, m);
                let mut img = before.durable.clone();
                for op in &before.pending {
                    apply(&mut img, op, false);
                }
                let at = page * SLOT_PAGE;
                img[at..at + SLOT_LEN / 2].copy_from_slice(&bytes[..SLOT_LEN / 2]);
                if decode_slot(&img, page).is_some() {
                    continue; // the old slot had the same first half: not torn
                }
                cases += 1;
                let what = format!(
                    "{} slot write {m} (generation {torn_gen}, page {page})",
                    w.name
                );
                let b = rec.point(inst, m + 1).b;
                let result = catch_unwind(AssertUnwindSafe(|| {
                    check_torn_slot(&rec, &file, &img, &b, torn_gen, page)
                }))
                .unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&*p))));
                match result {
                    Ok(marker) => overwritten += usize::from(marker),
                    Err(m) => failures.push(format!("{what}: {m}")),
                }
            }
        }
    }
    println!(
        "torn slots: {cases} crash images; read-only opens wrote nothing; read-write \
         recovery left {} torn pages as they were and replaced {overwritten} with a marker \
         of the accepted commit",
        cases - overwritten
    );
    assert!(cases > 0);
    failures.assert_none("torn slot");
}
