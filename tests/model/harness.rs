//! The harness: the target under test, its handles and read-only snapshot beside the model,
//! and the run of one case from creation to the final reopen.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::mem::size_of;
use std::path::{Path, PathBuf};

use compressed_image::{Channel, Image, Sample};
use proptest::prelude::*;

use crate::Ctx;
use crate::TestResult;
use crate::common::model::uniform;
use crate::data::{Data, Elem, Len, MChan, Model, from_bits, gen_bytes, to_elems, zeroed};
use crate::ops::{AddContent, AddSpec, ChannelCase, Gen, ImageCase, Init, Op};
use crate::target::{Target, View, check_view};

/// Learns the compressed length of a chunk by storing it in a scratch channel with the
/// same settings and geometry, from a fresh thread (so that nothing compressed before can
/// influence it).
pub struct Oracle<T: Sample> {
    /// Compresses single-threaded.
    pub serial: Channel<T>,
    /// Compresses with two threads.
    pub parallel: Channel<T>,
    /// What each chunk of the two channels counts in `compressed_bytes` now.
    pub stored: Vec<Len>,
}

pub struct Reader<T: Sample> {
    pub target: Target<T>,
    pub held: Vec<(u64, Channel<T>)>,
    /// The model as of the reader's snapshot.
    pub model: Model,
}

pub struct Harness<T: Sample> {
    pub dir: tempfile::TempDir,
    /// The file, for file-backed targets.
    pub path: Option<PathBuf>,
    pub image: bool,
    pub target: Option<Target<T>>,
    pub held: Vec<(u64, Channel<T>)>,
    pub reader: Option<Reader<T>>,
    pub model: Model,
    pub oracles: HashMap<u64, Oracle<T>>,
    pub next_uid: u64,
    pub last_generation: u64,
    pub copies: usize,
    /// Op counter, used as salt for generated data.
    pub step: u64,
    /// Automatic compaction at zero dead bytes is on: after a commit, dead space is 0.
    pub auto_zero: bool,
}

impl<T: Elem> Harness<T> {
    pub fn t(&self) -> &Target<T> {
        self.target.as_ref().expect("target is open")
    }

    pub fn img(&self) -> &Image<T> {
        match self.t() {
            Target::Image(i) => i,
            Target::Channel(_) => panic!("image operation on a channel target"),
        }
    }

    /// A handle to the channel at `pos`: alternately one held since the channel was
    /// added (or the file opened) and a fresh one.
    pub fn handle(&self, pos: usize) -> TestResult<Channel<T>> {
        let uid = self.model.channels[pos].uid;
        if self.step.is_multiple_of(2)
            && let Some((_, c)) = self.held.iter().find(|(u, _)| *u == uid)
        {
            return Ok(c.clone());
        }
        self.t().channel(pos).ctx("channel(pos)")
    }

    pub fn stored_len(&mut self, pos: usize, index: usize, bytes: &[u8]) -> TestResult<Len> {
        let m = &self.model;
        if uniform(bytes, m.size) {
            return Ok((m.size, m.size));
        }
        let c = &m.channels[pos];
        let oracle = match self.oracles.entry(c.uid) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let serial = Channel::zeros(m.width, m.height, c.settings).ctx("oracle")?;
                serial.set_threads(1).ctx("oracle")?;
                let parallel = Channel::zeros_like(&serial).ctx("oracle")?;
                parallel.set_threads(2).ctx("oracle")?;
                e.insert(Oracle {
                    serial,
                    parallel,
                    stored: vec![(m.size, m.size); c.chunks.len()],
                })
            }
        };
        // A fresh thread has fresh c-blosc2 contexts: its result is the chunk's length as
        // the settings alone determine it.
        let elems = to_elems::<T>(bytes);
        let (serial, parallel) = (&oracle.serial, &oracle.parallel);
        let store = |c: &Channel<T>| -> compressed_image::Result<(usize, usize)> {
            let before = c.compressed_bytes()?;
            c.set_chunk(index, &elems)?;
            Ok((before, c.compressed_bytes()?))
        };
        let ((s0, s1), (p0, p1)) = std::thread::scope(|scope| {
            scope
                .spawn(|| Ok((store(serial)?, store(parallel)?)))
                .join()
                .expect("oracle thread")
        })
        .ctx("oracle")?;
        let (old_s, old_p) = oracle.stored[index];
        let len = (s1 + old_s - s0, p1 + old_p - p0);
        oracle.stored[index] = len;
        Ok(len)
    }

    /// Record in the model that chunk `index` of channel `pos` now holds `bytes`.
    pub fn model_write(&mut self, pos: usize, index: usize, bytes: Vec<u8>) -> TestResult {
        let stored = self.stored_len(pos, index, &bytes)?;
        self.model.set_chunk(pos, index, &bytes);
        self.model.channels[pos].extra[index] = stored;
        Ok(())
    }

    pub fn new_uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    /// Add a channel to the model (and learn its blob lengths); returns its uid.
    pub fn model_add(&mut self, mc: MChan) -> TestResult<u64> {
        let uid = mc.uid;
        self.model.channels.push(mc);
        let pos = self.model.channels.len() - 1;
        for i in 0..self.model.num_chunks(pos) {
            if !self.model.channels[pos].lazy[i] {
                let bytes = self.model.channels[pos].chunks[i].clone();
                self.model.channels[pos].extra[i] = self.stored_len(pos, i, &bytes)?;
            }
        }
        Ok(uid)
    }

    /// Whole-channel data of `specs` (chunk `i` gets `specs[i % len]`), split per chunk.
    pub fn gen_channel(&self, specs: &[Data], rows: usize) -> Vec<Vec<u8>> {
        let m = &self.model;
        (0..m.height.div_ceil(rows))
            .map(|i| {
                let n = rows.min(m.height - i * rows) * m.width;
                gen_bytes::<T>(&specs[i % specs.len()], n, self.step * 1000 + i as u64)
            })
            .collect()
    }

    pub fn add(&mut self, spec: &AddSpec) -> TestResult {
        let m = &self.model;
        let (settings, rows) = spec.settings.build(m.width, m.height, m.size);
        let name = spec.name.as_deref();
        let uid = self.new_uid();
        let (handle, mc) = match &spec.content {
            AddContent::Data(specs) => {
                let chunks = self.gen_channel(specs, rows);
                let data = to_elems::<T>(&chunks.concat());
                let handle = self
                    .img()
                    .add_channel(&data, name, settings)
                    .ctx("add_channel")?;
                let name = name.unwrap_or("").into();
                let stored = self.model.lazy_stored(rows);
                let mc = self
                    .model
                    .data_channel(uid, settings, rows, name, chunks, stored);
                (handle, mc)
            }
            AddContent::Lazy(v) => {
                let bits = v.bits::<T>();
                let handle = self
                    .img()
                    .add_lazy_channel(from_bits::<T>(bits), name, settings)
                    .ctx("add_lazy_channel")?;
                let mc = self.model.lazy_channel(
                    uid,
                    settings,
                    rows,
                    name.unwrap_or("").into(),
                    bits & (u64::MAX >> (64 - 8 * self.model.size)),
                    self.model.lazy_stored(rows),
                );
                (handle, mc)
            }
        };
        self.model.names_present |= name.is_some();
        self.model_add(mc)?;
        self.held.push((uid, handle));
        Ok(())
    }

    pub fn remove_at(&mut self, pos: usize) {
        let uid = self.model.channels.remove(pos).uid;
        self.oracles.remove(&uid);
        // Keep the handle (it must now say ChannelRemoved), but only the last few.
        let live: Vec<u64> = self.model.channels.iter().map(|c| c.uid).collect();
        let mut dead = self.held.iter().filter(|(u, _)| !live.contains(u)).count();
        self.held.retain(|(u, _)| {
            if live.contains(u) {
                return true;
            }
            dead -= 1;
            dead < 3
        });
    }

    pub fn reopen_target(&mut self, rw: bool) -> TestResult<Target<T>> {
        let path = self.path.clone().expect("file-backed");
        Target::open(&path, self.image, rw).ctx(if rw { "open" } else { "open_read_only" })
    }

    pub fn held_of(&self, target: &Target<T>) -> Vec<(u64, Channel<T>)> {
        self.model
            .channels
            .iter()
            .map(|c| c.uid)
            .zip(target.channels())
            .collect()
    }

    pub fn copy_path(&mut self) -> PathBuf {
        self.copies += 1;
        self.dir.path().join(format!("copy{}.cimg", self.copies))
    }

    pub fn check(&self, in_batch: bool, what: &str) -> TestResult {
        let view = View {
            target: self.t(),
            model: &self.model,
            held: &self.held,
            writable: true,
            inspect: self.path.as_deref(),
            in_batch,
            scratch: self.dir.path(),
        };
        check_view(&view, what)?;
        if let Some(r) = &self.reader {
            let view = View {
                target: &r.target,
                model: &r.model,
                held: &r.held,
                writable: false,
                inspect: None,
                in_batch,
                scratch: self.dir.path(),
            };
            check_view(&view, &format!("{what} (read-only handle)"))?;
        }
        Ok(())
    }

    pub fn generation(&self) -> TestResult<u64> {
        Ok(self.t().stats().ctx("stats")?.generation)
    }

    pub fn file_bytes(&self) -> TestResult<Option<Vec<u8>>> {
        self.path
            .as_ref()
            .map(|p| std::fs::read(p).map_err(|e| TestCaseError::fail(format!("read file: {e}"))))
            .transpose()
    }
}

impl<T: Elem> Harness<T> {
    /// Run `ops`, checking everything after each one, then reopen the file.
    pub fn run(mut self, ops: &[Op]) -> TestResult {
        self.check(false, "after creation")?;
        self.last_generation = self.generation()?;
        for (k, op) in ops.iter().enumerate() {
            let expect = self
                .apply(op)
                .map_err(|e| TestCaseError::fail(format!("op #{k} {op:?}: {e}")))?;
            let what = format!("after op #{k} {op:?}");
            self.check(false, &what)?;
            let generation = self.generation()?;
            match expect {
                Gen::Same => ensure_eq!(generation, self.last_generation, "{what}: generation"),
                Gen::Grows => ensure!(generation > self.last_generation, "{what}: generation"),
                Gen::Any => ensure!(generation >= self.last_generation, "{what}: generation"),
            }
            self.last_generation = generation;
            if self.auto_zero && expect == Gen::Grows {
                let s = self.t().stats().ctx("stats")?;
                ensure_eq!(s.dead_bytes, 0, "{what}: automatic compaction at 0: {s:?}");
            }
            if self.path.is_some() || matches!(op, Op::SaveAs { .. } | Op::SaveChannelAs { .. }) {
                no_temp_files(self.dir.path(), &what)?;
            }
        }
        // Everything committed is in the file once the writer is gone.
        if self.path.is_some() {
            self.held.clear();
            self.reader = None;
            self.target = None;
            let target = self.reopen_target(true)?;
            self.held = self.held_of(&target);
            self.target = Some(target);
            self.check(false, "after the final reopen")?;
        }
        no_temp_files(self.dir.path(), "at the end")?;
        Ok(())
    }
}

pub fn remove_file(path: &Path) -> TestResult {
    std::fs::remove_file(path).map_err(|e| TestCaseError::fail(format!("remove copy: {e}")))
}

/// No temporary file of a create, copy or compaction is left behind.
pub fn no_temp_files(dir: &Path, what: &str) -> TestResult {
    let entries = std::fs::read_dir(dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        ensure!(
            !name.contains("cimg-tmp"),
            "{what}: temporary file {name} left behind"
        );
    }
    Ok(())
}

pub fn harness<T: Elem>(
    width: usize,
    height: usize,
    file: bool,
    image: bool,
) -> TestResult<(Harness<T>, Option<PathBuf>)> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = file.then(|| {
        dir.path()
            .join(if image { "image.cimg" } else { "channel.cimg" })
    });
    Ok((
        Harness {
            dir,
            path: path.clone(),
            image,
            target: None,
            held: Vec::new(),
            reader: None,
            model: Model::new(width, height, size_of::<T>()),
            oracles: HashMap::new(),
            next_uid: 0,
            last_generation: 0,
            copies: 0,
            step: 0,
            auto_zero: false,
        },
        path,
    ))
}

pub fn run_image<T: Elem>(case: &ImageCase) -> TestResult {
    let (mut h, path) = harness::<T>(case.width, case.height, case.file, true)?;
    let (w, ht) = (case.width, case.height);
    if case.from_channels && !case.file && !case.initial.is_empty() {
        // Every channel gets the first one's settings; names only if all have one.
        let (settings, rows) = case.initial[0].settings.build(w, ht, h.model.size);
        let names: Vec<&str> = case
            .initial
            .iter()
            .filter_map(|a| a.name.as_deref())
            .collect();
        let names = if names.len() == case.initial.len() {
            names
        } else {
            Vec::new()
        };
        let mut chans = Vec::new();
        for (k, spec) in case.initial.iter().enumerate() {
            h.step += 1;
            let chunks = match &spec.content {
                AddContent::Data(specs) => h.gen_channel(specs, rows),
                AddContent::Lazy(v) => h.gen_channel(&[Data::Const(v.clone())], rows),
            };
            let uid = h.new_uid();
            let name = names.get(k).copied().unwrap_or("").to_string();
            let stored = h.model.lazy_stored(rows);
            chans.push(
                h.model
                    .data_channel(uid, settings, rows, name, chunks, stored),
            );
        }
        let data: Vec<Vec<T>> = chans
            .iter()
            .map(|c| to_elems::<T>(&c.chunks.concat()))
            .collect();
        let refs: Vec<&[T]> = data.iter().map(Vec::as_slice).collect();
        let img = Image::from_channels(&refs, w, ht, &names, settings).ctx("from_channels")?;
        h.model.names_present = !names.is_empty();
        for c in chans {
            h.model_add(c)?;
        }
        let held = h.held_of(&Target::Image(img.clone()));
        h.held = held;
        h.target = Some(Target::Image(img));
    } else {
        let img = match &path {
            Some(p) => Image::create(p, w, ht).ctx("Image::create")?,
            None => Image::new(w, ht).ctx("Image::new")?,
        };
        ensure_eq!(img.path(), path.as_deref(), "path");
        h.target = Some(Target::Image(img));
        for spec in &case.initial {
            h.step += 1;
            h.add(spec)?;
        }
    }
    h.run(&case.ops)
}

pub fn run_channel<T: Elem>(case: &ChannelCase) -> TestResult {
    let (mut h, path) = harness::<T>(case.width, case.height, case.file, false)?;
    let (w, ht) = (case.width, case.height);
    let (settings, rows) = case.settings.build(w, ht, h.model.size);
    let uid = h.new_uid();
    let (channel, mc) = match &case.init {
        Init::Data(specs) => {
            let chunks = h.gen_channel(specs, rows);
            let data = to_elems::<T>(&chunks.concat());
            let c = match &path {
                Some(p) => Channel::create(p, &data, w, ht, settings),
                None => Channel::new(&data, w, ht, settings),
            }
            .ctx("create channel")?;
            (
                c,
                h.model.data_channel(
                    uid,
                    settings,
                    rows,
                    String::new(),
                    chunks,
                    h.model.lazy_stored(rows),
                ),
            )
        }
        Init::Full(v) => {
            let bits = v.bits::<T>() & (u64::MAX >> (64 - 8 * h.model.size));
            let value = from_bits::<T>(bits);
            let c = match &path {
                Some(p) => Channel::create_full(p, w, ht, value, settings),
                None => Channel::full(w, ht, value, settings),
            }
            .ctx("create full channel")?;
            (
                c,
                h.model.lazy_channel(
                    uid,
                    settings,
                    rows,
                    String::new(),
                    bits,
                    h.model.lazy_stored(rows),
                ),
            )
        }
        Init::Zeros => {
            let c = match &path {
                Some(p) => Channel::create_full(p, w, ht, zeroed::<T>(), settings),
                None => Channel::zeros(w, ht, settings),
            }
            .ctx("create zeros channel")?;
            (
                c,
                h.model.lazy_channel(
                    uid,
                    settings,
                    rows,
                    String::new(),
                    0,
                    h.model.lazy_stored(rows),
                ),
            )
        }
    };
    ensure_eq!(channel.path(), path.as_deref(), "path");
    h.model_add(mc)?;
    h.held = vec![(uid, channel.clone())];
    h.target = Some(Target::Channel(channel));
    h.run(&case.ops)
}
