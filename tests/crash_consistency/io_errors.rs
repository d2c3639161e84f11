//! Part 2, the I/O error countdown: the k-th write, `set_len` or fsync of a workload fails,
//! once or from then on; also faults in the recovery of a crashed file.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use compressed_image::Error;

use crate::common::fault::{self, EIO, ENOSPC, Failure, Fault, Op, Torn};
use crate::common::format::decode_slot;
use crate::common::panic_message;
use crate::recording::{Opened, Rec, apply, check_caught, record};
use crate::target::{Target, prepare};
use crate::workload::{Kind, State, Step, Workload, diff, workloads};
use crate::{Failures, config, digest, scratch, seeded_rng, write_image};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FErr {
    /// EIO, nothing written.
    Eio,
    /// ENOSPC, nothing written.
    Enospc,
    /// The first half of the buffer written, then ENOSPC (writes only).
    Short,
}

impl FErr {
    pub fn errno(self) -> i32 {
        match self {
            FErr::Eio => EIO,
            FErr::Enospc | FErr::Short => ENOSPC,
        }
    }
}

/// The `k`-th call of `op` fails with `err`; with `forever`, so does every later
/// mutating call.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub op: Op,
    pub k: usize,
    pub err: FErr,
    pub forever: bool,
}

impl Plan {
    /// The fault that carries out this plan.
    pub fn fault(self) -> fault::Target {
        fault::Target {
            op: self.op,
            k: self.k,
            failure: Failure::Errno(self.err.errno()),
            torn: if self.err == FErr::Short {
                Torn::Half
            } else {
                Torn::Nothing
            },
            forever: self.forever,
        }
    }
}

pub fn expect_injected(e: &Error, plan: Plan) -> std::result::Result<(), String> {
    plan.fault().check(e)
}

/// Temporary files (`.cimg-*`) left in `dir`.
pub fn strays(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".cimg-"))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Default)]
pub struct FaultStats {
    pub runs: usize,
    pub calls_failed: usize,
    pub in_open: usize,
    pub in_steps: usize,
    pub in_compaction: usize,
    pub usable_after_compaction: usize,
    pub in_drop: usize,
    pub short_fallbacks: usize,
}

/// Run `w` on a copy of `base` with `plan`'s fault; check the error, poisoning, the old
/// file after a failed compaction, and the reopened file. Returns the call counts.
pub fn run_fault(
    w: &Workload,
    base: &Path,
    path: &Path,
    states: &[State],
    plan: Option<Plan>,
    stats: &mut FaultStats,
) -> std::result::Result<[usize; 3], String> {
    let _ = fs::remove_file(path);
    fs::copy(base, path).map_err(|e| e.to_string())?;
    let ctl = Fault::new(plan.map(Plan::fault));
    let n = w.steps.len();
    let clean = plan.is_none_or(|p| p.err != FErr::Short);
    let mut last_synced = 0;
    let (lo, hi, exact) = match Target::open_with(w.kind, path, fault::wrap(&ctl)) {
        Err(e) => {
            let plan = plan.ok_or_else(|| format!("fault-free open failed: {e}"))?;
            if !ctl.fired() {
                return Err(format!("open failed without a fault: {e}"));
            }
            expect_injected(&e, plan).map_err(|m| format!("open: {m}"))?;
            stats.in_open += 1;
            (0, 0, vec![0])
        }
        Ok(t) => {
            let mut immediate = false;
            let mut failed = None;
            let mut compaction_fault = false;
            for (i, step) in w.steps.iter().enumerate() {
                let fired_before = ctl.fired();
                let old_file = match step {
                    Step::Compact => Some(fs::read(path).map_err(|e| e.to_string())?),
                    _ => None,
                };
                match t.apply(w, step) {
                    Ok(()) => {
                        if ctl.fired() && !fired_before {
                            return Err(format!(
                                "step {i} {step:?} returned Ok although a call in it failed"
                            ));
                        }
                        match step {
                            Step::Sync | Step::Compact => last_synced = i + 1,
                            Step::Immediate(on) => immediate = *on,
                            s if immediate && s.commits() => last_synced = i + 1,
                            _ => {}
                        }
                    }
                    Err(e) => {
                        let Some(plan) = plan else {
                            return Err(format!("fault-free step {i} {step:?} failed: {e}"));
                        };
                        if !ctl.fired() {
                            return Err(format!("step {i} {step:?} failed without a fault: {e}"));
                        }
                        expect_injected(&e, plan).map_err(|m| format!("step {i} {step:?}: {m}"))?;
                        if let Some(old_file) = old_file {
                            // The fault hit compaction's copy (compaction writes no other
                            // file): the old file is untouched and the handle keeps working
                            // on it. Observed: a failed compaction never poisons the handle,
                            // also when the fault is permanent and several compactions fail.
                            if !fired_before && ctl.first_instance() == Some(0) {
                                return Err("compaction failed in a call on the old file".into());
                            }
                            if fs::read(path).map_err(|e| e.to_string())? != old_file {
                                return Err("a failed compaction changed the old file".into());
                            }
                            let shown = t.observe().map_err(|e| e.to_string())?;
                            if !states[i].matches(&shown) {
                                return Err(
                                    "a failed compaction changed what the handle shows".into()
                                );
                            }
                            t.verify()?;
                            compaction_fault = true;
                            stats.in_compaction += 1;
                            continue;
                        }
                        let shown = t
                            .observe()
                            .map_err(|e| format!("read after the error: {e}"))?;
                        // The handle shows the commit before the step, or (a failed fsync
                        // after the slot write, `Immediate`) the one the step made.
                        let Some(si) = [i + 1, i].into_iter().find(|&c| states[c].matches(&shown))
                        else {
                            return Err(format!(
                                "after the failed step {i} the handle shows neither commit: {}",
                                diff(w, &states[i], &shown)
                            ));
                        };
                        t.expect_poisoned(w)
                            .map_err(|m| format!("step {i} {step:?}: {m}"))?;
                        failed = Some((i, si));
                        break;
                    }
                }
            }
            let fired_in_steps = ctl.fired();
            drop(t); // a read-write handle syncs on drop unless poisoned
            if compaction_fault && failed.is_none() {
                stats.usable_after_compaction += 1;
            }
            match failed {
                Some((i, shown)) => {
                    stats.in_steps += 1;
                    (last_synced, i + 1, vec![shown])
                }
                None => {
                    if ctl.fired() && !fired_in_steps {
                        stats.in_drop += 1;
                    }
                    (last_synced, n, vec![n])
                }
            }
        }
    };
    if plan.is_some() && !ctl.fired() {
        return Err("the fault was never reached".into());
    }
    stats.calls_failed += ctl.failed_calls();
    let dir = path.parent().expect("a directory");
    let left = strays(dir);
    if !left.is_empty() {
        return Err(format!("temporary files left behind: {left:?}"));
    }
    // After a clean error (nothing written) the file shows what the handle showed; a
    // short write may tear the slot page holding the newest unsynced commit, so then only
    // the bounds hold (at least the last synced commit, at most the one begun).
    let allowed: Vec<usize> = if clean { exact } else { (lo..=hi).collect() };
    let ro = Target::open(w.kind, path, false).map_err(|e| format!("reopen failed: {e}"))?;
    let o = ro
        .observe()
        .map_err(|e| format!("reading the reopened file: {e}"))?;
    let c = allowed
        .iter()
        .rev()
        .copied()
        .find(|&c| states[c].matches(&o))
        .ok_or_else(|| {
            format!(
                "the reopened file shows none of the commits {allowed:?}: {}",
                diff(w, &states[hi], &o)
            )
        })?;
    ro.verify().map_err(|e| format!("reopened: {e}"))?;
    drop(ro);
    if !clean && hi > 0 && c < hi - 1 {
        stats.short_fallbacks += 1;
    }
    let rw =
        Target::open(w.kind, path, true).map_err(|e| format!("read-write reopen failed: {e}"))?;
    let o = rw.observe().map_err(|e| e.to_string())?;
    if !states[c].matches(&o) {
        return Err(format!("read-write reopen: {}", diff(w, &states[c], &o)));
    }
    rw.verify().map_err(|e| format!("read-write reopen: {e}"))?;
    Ok(ctl.counts())
}

pub fn io_error_countdown(kind: Kind) {
    let started = Instant::now();
    let dir = scratch();
    let mut stats = FaultStats::default();
    let mut failures = Failures::default();
    for (wi, w) in workloads(kind).into_iter().enumerate() {
        let (base, states) = prepare(&w, dir.path());
        let path = dir.path().join(format!("{}-fault.cimg", w.name));
        let counts = run_fault(&w, &base, &path, &states, None, &mut FaultStats::default())
            .unwrap_or_else(|m| panic!("{}: fault-free run: {m}", w.name));
        if wi == 0 {
            assert!(
                counts.iter().all(|&c| c > 0),
                "{}: calls {counts:?}",
                w.name
            );
        }
        let before = stats.runs;
        for op in [Op::Write, Op::SetLen, Op::Sync] {
            let errs: &[FErr] = if op == Op::Write {
                &[FErr::Eio, FErr::Enospc, FErr::Short]
            } else {
                &[FErr::Eio, FErr::Enospc]
            };
            for &err in errs {
                for forever in [false, true] {
                    for k in 0..counts[op as usize] {
                        let plan = Plan {
                            op,
                            k,
                            err,
                            forever,
                        };
                        stats.runs += 1;
                        let r = catch_unwind(AssertUnwindSafe(|| {
                            run_fault(&w, &base, &path, &states, Some(plan), &mut stats)
                        }))
                        .unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&*p))));
                        if let Err(m) = r {
                            failures.push(format!("{} {plan:?}: {m}", w.name));
                        }
                    }
                }
            }
        }
        println!(
            "I/O error countdown [{}]: {} writes, {} set_len, {} fsyncs per run; {} faults \
             injected",
            w.name,
            counts[0],
            counts[1],
            counts[2],
            stats.runs - before
        );
    }
    println!(
        "I/O error countdown total [{kind:?}{}]: {} faults injected ({} failing calls): {} \
         in open, {} in a step (handle poisoned), {} failed compactions (old file untouched, \
         handle not poisoned; {} runs went on to finish the workload on it), {} in the sync \
         on drop (ignored); {} short writes tore the slot page of the newest unsynced commit \
         and the reopen fell back to an older commit; {:.1} s",
        if config().long { ", long" } else { "" },
        stats.runs,
        stats.calls_failed,
        stats.in_open,
        stats.in_steps,
        stats.in_compaction,
        stats.usable_after_compaction,
        stats.in_drop,
        stats.short_fallbacks,
        started.elapsed().as_secs_f64()
    );
    failures.assert_none("I/O error countdown");
}

#[test]
fn io_error_at_every_call_of_channel_workloads_surfaces_poisons_and_keeps_a_valid_commit() {
    io_error_countdown(Kind::Channel);
}

#[test]
fn io_error_at_every_call_of_image_workloads_surfaces_poisons_and_keeps_a_valid_commit() {
    io_error_countdown(Kind::Image);
}

/// Open the crash image `img` (which opens at `o`) read-write with `plan`'s fault in the
/// recovery: the open must fail with the injected `Error::Io`, the file must still open
/// read-only, read-write and read-only again at the same commit, and `verify()`.
pub fn check_open_fault(
    rec: &Rec,
    file: &Path,
    img: &[u8],
    o: &Opened,
    plan: Plan,
) -> std::result::Result<(), String> {
    let w = &rec.w;
    write_image(file, img)?;
    let ctl = Fault::new([plan.fault()]);
    match Target::open_with(w.kind, file, fault::wrap(&ctl)) {
        Ok(_) => return Err("the open succeeded".into()),
        Err(e) => expect_injected(&e, plan)?,
    }
    if !ctl.fired() {
        return Err("the fault was not reached".into());
    }
    // A failed fsync or a clean failed write changes nothing; a short write leaves half a
    // marker in the page that does not hold the chosen commit.
    let after = fs::read(file).map_err(|e| e.to_string())?;
    if (plan.op == Op::Sync || plan.err != FErr::Short) && after != img {
        return Err("a failed call changed the file".into());
    }
    for writable in [false, true, false] {
        let t = Target::open(w.kind, file, writable)
            .map_err(|e| format!("open (writable {writable}): {e}"))?;
        let seen = t.observe().map_err(|e| e.to_string())?;
        if !rec.states[o.state].matches(&seen) || seen.generation < o.generation {
            return Err(format!(
                "open (writable {writable}) shows generation {} and {}, expected commit {} \
                 (generation {})",
                seen.generation,
                diff(w, &rec.states[o.state], &seen),
                o.state,
                o.generation
            ));
        }
        t.verify()?;
    }
    Ok(())
}

/// A read-write open of a file left by a crash with unsynced data fsyncs it and writes a
/// marker. If that fsync or that write fails, the open returns `Error::Io` and the file
/// still opens afterwards, at the same commit.
#[test]
fn io_error_while_recovering_a_crashed_file_fails_the_open_and_keeps_the_commit() {
    let cfg = config();
    let dir = scratch();
    let mut images = 0;
    let mut faults = 0;
    let mut failures = Failures::default();
    for kind in [Kind::Channel, Kind::Image] {
        for w in workloads(kind) {
            let rec = record(&w, dir.path());
            let file = dir.path().join(format!("{}-reopen.cimg", w.name));
            let mut rng = seeded_rng(cfg.seed ^ 0x0FE4 ^ digest(w.name.as_bytes()));
            let mut ks: Vec<usize> = (0..=rec.log.len()).collect();
            rng.shuffle(&mut ks);
            // Crash images whose chosen commit is not yet marked durable.
            let mut found = Vec::new();
            for k in ks {
                if found.len() >= cfg.open_fault_images {
                    break;
                }
                let inst = *rec.instances_at(k).last().expect("a file");
                let p = rec.point(inst, k);
                if p.pending.is_empty() {
                    continue;
                }
                let mut img = p.durable.clone();
                for op in &p.pending {
                    if rng.chance(2, 3) {
                        apply(&mut img, op, false);
                    }
                }
                let Ok(o) = check_caught(&rec, &file, &img, &p.b, None, (false, None)) else {
                    continue; // the sweep reports it
                };
                let chosen = (0..2)
                    .filter_map(|pg| decode_slot(&img, pg))
                    .find(|s| s.generation == o.generation)
                    .expect("the chosen slot");
                if chosen.durable_end < chosen.committed_end {
                    found.push((k, img, o));
                }
            }
            for (k, img, o) in found {
                images += 1;
                for (op, err) in [
                    (Op::Sync, FErr::Eio),
                    (Op::Sync, FErr::Enospc),
                    (Op::Write, FErr::Eio),
                    (Op::Write, FErr::Enospc),
                    (Op::Write, FErr::Short),
                ] {
                    for forever in [false, true] {
                        faults += 1;
                        let plan = Plan {
                            op,
                            k: 0,
                            err,
                            forever,
                        };
                        let r = catch_unwind(AssertUnwindSafe(|| {
                            check_open_fault(&rec, &file, &img, &o, plan)
                        }))
                        .unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&*p))));
                        if let Err(m) = r {
                            failures.push(format!("{} crash point {k} {plan:?}: {m}", w.name));
                        }
                    }
                }
            }
        }
    }
    println!(
        "faults while recovering a crashed file: {images} crash images with unsynced data, \
         {faults} faults injected (first fsync or first write; EIO, ENOSPC, short; once or \
         forever)"
    );
    assert!(images > 0, "no crash image needed recovery");
    failures.assert_none("faults during recovery");
}
