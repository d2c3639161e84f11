//! The recording backend: it logs every write, `set_len` and fsync of a workload (with the
//! model state at the time), from which crash images are rebuilt.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use compressed_image::Backend;

use crate::common::format::{SLOT_LEN, SLOT_PAGE, SlotInfo, decode_slot, le64};
use crate::common::panic_message;
use crate::target::{Target, prepare, recovery_steps};
use crate::workload::{State, Step, Workload, diff};
use crate::write_image;

#[derive(Debug, Clone)]
pub enum IoOp {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
    Sync,
}

/// The generation of a slot write (a 256-byte write at the start of a slot page).
pub fn slot_gen(op: &IoOp) -> Option<u64> {
    match op {
        IoOp::Write { offset, bytes }
            if (*offset == 0 || *offset == SLOT_PAGE as u64) && bytes.len() == SLOT_LEN =>
        {
            Some(le64(bytes, 16))
        }
        _ => None,
    }
}

pub struct Entry {
    /// Which wrapped backend (file) it went through: 0 is the file opened, every
    /// compaction adds one.
    pub inst: usize,
    pub op: IoOp,
    /// The model state the running operation produces (what a slot written now shows).
    pub state: usize,
}

/// During a compaction: the file at the path must stay exactly as it was.
pub struct Watch {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub old_inst: usize,
}

#[derive(Default)]
pub struct Recorder {
    pub log: Mutex<Vec<Entry>>,
    /// Contents of each backend's file when it was wrapped.
    pub bases: Mutex<Vec<Vec<u8>>>,
    pub state: AtomicUsize,
    pub watch: Mutex<Option<Watch>>,
    pub watch_checks: AtomicUsize,
    pub violations: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn instances(&self) -> usize {
        self.bases.lock().unwrap().len()
    }
    pub fn len(&self) -> usize {
        self.log.lock().unwrap().len()
    }
    pub fn violation(&self, message: String) {
        self.violations.lock().unwrap().push(message);
    }
}

/// Passes every call to the real backend, then logs the mutation.
pub struct Recording {
    pub inner: Box<dyn Backend>,
    pub inst: usize,
    pub rec: Arc<Recorder>,
}

impl Recording {
    pub fn record(&self, op: IoOp) {
        if let Some(w) = &*self.rec.watch.lock().unwrap() {
            if self.inst == w.old_inst {
                self.rec
                    .violation(format!("compaction wrote the old file: {op:?}"));
            } else if fs::read(&w.path).ok().as_ref() != Some(&w.bytes) {
                self.rec
                    .violation("the old file changed during compaction's copy".into());
            } else {
                self.rec.watch_checks.fetch_add(1, SeqCst);
            }
        }
        let state = self.rec.state.load(SeqCst);
        self.rec.log.lock().unwrap().push(Entry {
            inst: self.inst,
            op,
            state,
        });
    }
}

impl Backend for Recording {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)?;
        self.record(IoOp::Write {
            offset,
            bytes: buf.to_vec(),
        });
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let before = self.inner.len()?;
        if len < before {
            self.rec.violation(format!(
                "set_len({len}) shrinks a file of {before} bytes in place"
            ));
        }
        self.inner.set_len(len)?;
        self.record(IoOp::SetLen(len));
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()?;
        self.record(IoOp::Sync);
        Ok(())
    }
}

pub fn recording(
    rec: &Arc<Recorder>,
) -> impl Fn(Box<dyn Backend>) -> Box<dyn Backend> + Send + Sync + 'static {
    let rec = rec.clone();
    move |inner| -> Box<dyn Backend> {
        let len = inner.len().expect("length of a wrapped file");
        let mut bytes = vec![0u8; len as usize];
        inner
            .read_exact_at(&mut bytes, 0)
            .expect("contents of a wrapped file");
        let mut bases = rec.bases.lock().unwrap();
        let inst = bases.len();
        bases.push(bytes);
        Box::new(Recording {
            inner,
            inst,
            rec: rec.clone(),
        })
    }
}

/// A compaction: the copy went through backend `new`, was synced at log index `sync_idx`
/// and renamed over the path before `compact()` returned at log length `end`.
pub struct Event {
    pub new: usize,
    pub sync_idx: usize,
    pub end: usize,
}

/// A workload run once, fault-free, through the recording backend.
pub struct Rec {
    pub w: Workload,
    pub states: Vec<State>,
    pub log: Vec<Entry>,
    pub bases: Vec<Vec<u8>>,
    pub events: Vec<Event>,
    /// Generation → model state, for every slot ever written (and the base file's).
    pub gens: HashMap<u64, usize>,
    pub base_gen: u64,
    pub watch_checks: usize,
}

/// The bounds on the commit a crash image may open at.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The commit whose slot was written last before the last completed fsync.
    pub lo: usize,
    pub lo_gen: u64,
    /// The commit whose slot was written last.
    pub hi: usize,
    pub hi_gen: u64,
}

/// One file at one crash point: what was durable and what may or may not have reached
/// the disk.
pub struct Point<'a> {
    pub b: Bounds,
    pub durable: Vec<u8>,
    pub pending: Vec<&'a IoOp>,
}

pub fn live_matches(t: &Target, s: &State, what: &str) {
    let o = t
        .observe()
        .unwrap_or_else(|e| panic!("{what}: reading: {e}"));
    assert!(s.matches(&o), "{what}: the handle disagrees with the model");
    t.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
}

pub fn record(w: &Workload, dir: &Path) -> Rec {
    let (base, states) = prepare(w, dir);
    let base_bytes = fs::read(&base).expect("read the base file");
    let path = dir.join(format!("{}-work.cimg", w.name));
    let _ = fs::remove_file(&path);
    fs::copy(&base, &path).expect("copy the base file");
    let rec = Arc::new(Recorder::default());
    let t = Target::open_with(w.kind, &path, recording(&rec))
        .unwrap_or_else(|e| panic!("{}: open: {e}", w.name));
    live_matches(&t, &states[0], &format!("{}: after open", w.name));
    let mut events = Vec::new();
    for (i, step) in w.steps.iter().enumerate() {
        let what = format!("{}: step {i} {step:?}", w.name);
        rec.state.store(i + 1, SeqCst);
        let start = rec.len();
        let old = rec.instances() - 1;
        if matches!(step, Step::Compact) {
            *rec.watch.lock().unwrap() = Some(Watch {
                path: path.clone(),
                bytes: fs::read(&path).expect("read the file"),
                old_inst: old,
            });
        }
        t.apply(w, step).unwrap_or_else(|e| panic!("{what}: {e}"));
        if matches!(step, Step::Compact) {
            *rec.watch.lock().unwrap() = None;
            let new = rec.instances() - 1;
            assert!(new > old, "{what}: compaction wrote no new file");
            let log = rec.log.lock().unwrap();
            assert!(
                log[start..].iter().all(|e| e.inst == new),
                "{what}: compaction touched another file"
            );
            let sync_idx = (start..log.len())
                .rev()
                .find(|&j| matches!(log[j].op, IoOp::Sync))
                .unwrap_or_else(|| panic!("{what}: the copy was never synced"));
            events.push(Event {
                new,
                sync_idx,
                end: log.len(),
            });
            drop(log);
            // After completion, the new file at the path opens with identical contents.
            let ro = Target::open(w.kind, &path, false)
                .unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
            live_matches(&ro, &states[i + 1], &format!("{what}: the compacted file"));
        }
        live_matches(&t, &states[i + 1], &what);
    }
    drop(t); // syncs (and writes a marker), logged too
    let ro = Target::open(w.kind, &path, false).expect("reopen the final file");
    live_matches(
        &ro,
        states.last().expect("a state"),
        &format!("{}: final file", w.name),
    );
    drop(ro);

    let violations = std::mem::take(&mut *rec.violations.lock().unwrap());
    assert!(violations.is_empty(), "{}: {violations:?}", w.name);
    let log = std::mem::take(&mut *rec.log.lock().unwrap());
    let bases = std::mem::take(&mut *rec.bases.lock().unwrap());

    // Generations: the base file's newest slot (and its pair, if it names the same
    // catalog) show state 0; every slot written shows the state its operation produced.
    let slots: Vec<SlotInfo> = (0..2).filter_map(|p| decode_slot(&base_bytes, p)).collect();
    let newest = *slots
        .iter()
        .max_by_key(|s| s.generation)
        .expect("the base file has a valid slot");
    let mut gens = HashMap::new();
    for s in &slots {
        if s.catalog_offset == newest.catalog_offset {
            gens.insert(s.generation, 0);
        }
    }
    for e in &log {
        if let Some(g) = slot_gen(&e.op)
            && let Some(prev) = gens.insert(g, e.state)
        {
            assert_eq!(prev, e.state, "{}: generation {g} written twice", w.name);
        }
    }
    Rec {
        w: w.clone(),
        states,
        log,
        bases,
        events,
        gens,
        base_gen: newest.generation,
        watch_checks: rec.watch_checks.load(SeqCst),
    }
}

pub fn put(img: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if img.len() < end {
        img.resize(end, 0); // a write past the end extends the file
    }
    img[start..end].copy_from_slice(bytes);
}

/// Apply one mutation to a file image. With `grow_only`, a `set_len` never shortens the
/// image (the library never shrinks a file in place; reordered growths keep the largest).
pub fn apply(img: &mut Vec<u8>, op: &IoOp, grow_only: bool) {
    match op {
        IoOp::Write { offset, bytes } => put(img, *offset, bytes),
        IoOp::SetLen(len) => {
            let len = *len as usize;
            if len > img.len() || !grow_only {
                img.resize(len, 0);
            }
        }
        IoOp::Sync => {}
    }
}

/// The byte ranges (relative to the write) of the `g`-byte sectors a write covers.
pub fn sectors(offset: u64, len: usize, g: u64) -> Vec<Range<usize>> {
    let end = offset + len as u64;
    let mut cuts = vec![offset];
    let mut b = (offset / g + 1) * g;
    while b < end {
        cuts.push(b);
        b += g;
    }
    cuts.push(end);
    cuts.windows(2)
        .map(|c| (c[0] - offset) as usize..(c[1] - offset) as usize)
        .collect()
}

impl Rec {
    /// Which files may be at the path after a crash with the first `k` log entries done:
    /// the old one until compaction's copy is synced, either one until `compact()` returns
    /// (the rename and the directory fsync happen in between), then the new one.
    pub fn instances_at(&self, k: usize) -> Vec<usize> {
        let mut cur = 0;
        for ev in &self.events {
            if k > ev.end {
                cur = ev.new;
            } else if k > ev.sync_idx {
                return vec![cur, ev.new];
            } else {
                break;
            }
        }
        vec![cur]
    }

    /// File `inst` after a crash with the first `k` log entries done: durable are its
    /// initial bytes and every mutation before its last completed fsync; the mutations
    /// after that may or may not have reached the disk.
    pub fn point(&self, inst: usize, k: usize) -> Point<'_> {
        let ops: Vec<(usize, &Entry)> = self.log[..k]
            .iter()
            .enumerate()
            .filter(|(_, e)| e.inst == inst)
            .collect();
        let last_sync = ops
            .iter()
            .rev()
            .find(|(_, e)| matches!(e.op, IoOp::Sync))
            .map(|(j, _)| *j);
        let slots: Vec<(usize, u64, usize)> = ops
            .iter()
            .filter_map(|(j, e)| slot_gen(&e.op).map(|g| (*j, g, e.state)))
            .collect();
        let base = (inst == 0).then_some((self.base_gen, 0));
        let (hi_gen, hi) = slots
            .last()
            .map(|&(_, g, s)| (g, s))
            .or(base)
            .expect("a file at the path has a commit");
        let (lo_gen, lo) = last_sync
            .and_then(|ls| {
                slots
                    .iter()
                    .rev()
                    .find(|(j, ..)| *j < ls)
                    .map(|&(_, g, s)| (g, s))
            })
            .or(base)
            .expect("a file at the path has a durable commit");
        let mut durable = self.bases[inst].clone();
        let mut pending = Vec::new();
        for (j, e) in ops {
            if matches!(e.op, IoOp::Sync) {
                continue;
            }
            if last_sync.is_some_and(|ls| j < ls) {
                apply(&mut durable, &e.op, false);
            } else {
                pending.push(&e.op);
            }
        }
        Point {
            b: Bounds {
                lo,
                lo_gen,
                hi,
                hi_gen,
            },
            durable,
            pending,
        }
    }
}

/// What a crash image opened at.
pub struct Opened {
    pub state: usize,
    pub generation: u64,
}

/// Open a crash image read-only and check it against the model and the bounds; then, if
/// asked, recover it read-write (and commit on it) and check again.
pub fn check_image(
    rec: &Rec,
    path: &Path,
    bytes: &[u8],
    b: &Bounds,
    exact: Option<u64>,
    rw: bool,
    write: Option<u64>,
) -> std::result::Result<Opened, String> {
    let w = &rec.w;
    write_image(path, bytes)?;
    let ro =
        Target::open(w.kind, path, false).map_err(|e| format!("read-only open failed: {e}"))?;
    let o = ro
        .observe()
        .map_err(|e| format!("reading the opened commit failed: {e}"))?;
    let c = *rec
        .gens
        .get(&o.generation)
        .ok_or_else(|| format!("opened generation {}, which no commit wrote", o.generation))?;
    if c < b.lo || c > b.hi {
        return Err(format!(
            "opened commit {c} (generation {}), outside [{}, {}] (generations {}..={})",
            o.generation, b.lo, b.hi, b.lo_gen, b.hi_gen
        ));
    }
    if let Some(g) = exact
        && o.generation != g
    {
        return Err(format!(
            "opened generation {}, expected exactly {g} (bounds {b:?})",
            o.generation
        ));
    }
    if !rec.states[c].matches(&o) {
        return Err(format!(
            "commit {c} reads wrong: {}",
            diff(w, &rec.states[c], &o)
        ));
    }
    ro.verify()?;
    drop(ro);
    if fs::read(path).map_err(|e| e.to_string())? != bytes {
        return Err("a read-only open changed the file".into());
    }
    if rw {
        let t = Target::open(w.kind, path, true)
            .map_err(|e| format!("read-write open (recovery) failed: {e}"))?;
        let o2 = t.observe().map_err(|e| format!("after recovery: {e}"))?;
        if !rec.states[c].matches(&o2) || o2.generation < o.generation {
            return Err(format!(
                "read-write open shows generation {} and {}, read-only showed {} (commit {c})",
                o2.generation,
                diff(w, &rec.states[c], &o2),
                o.generation
            ));
        }
        t.verify().map_err(|e| format!("after recovery: {e}"))?;
        let mut expected = rec.states[c].clone();
        if let Some(seed) = write {
            for step in recovery_steps(w, &expected, seed) {
                t.apply(w, &step)
                    .map_err(|e| format!("commit after recovery {step:?}: {e}"))?;
                expected = expected.after(w, &step);
            }
            t.sync().map_err(|e| format!("sync after recovery: {e}"))?;
        }
        drop(t);
        let t = Target::open(w.kind, path, false)
            .map_err(|e| format!("reopen after recovery failed: {e}"))?;
        let o3 = t
            .observe()
            .map_err(|e| format!("reopen after recovery: {e}"))?;
        if !expected.matches(&o3) {
            return Err(format!(
                "reopen after recovery: {}",
                diff(w, &expected, &o3)
            ));
        }
        t.verify()
            .map_err(|e| format!("reopen after recovery: {e}"))?;
    }
    Ok(Opened {
        state: c,
        generation: o.generation,
    })
}

/// Run `check_image`, turning a panic into a failure message.
pub fn check_caught(
    rec: &Rec,
    path: &Path,
    bytes: &[u8],
    b: &Bounds,
    exact: Option<u64>,
    recovery: (bool, Option<u64>),
) -> std::result::Result<Opened, String> {
    catch_unwind(AssertUnwindSafe(|| {
        check_image(rec, path, bytes, b, exact, recovery.0, recovery.1)
    }))
    .unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&*p))))
}
