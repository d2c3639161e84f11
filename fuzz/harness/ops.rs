//! Target `ops_faults`: a sequence of write operations on a small image file, through a
//! backend whose chosen write, `set_len` or sync calls fail, checked against an in-memory
//! model of the image.
//!
//! Checked after every operation: a successful one shows exactly the model's next state
//! and a clean `verify`; an invalid one (bad index, length, settings or name count) fails
//! without I/O and changes nothing; an I/O error is the injected one, the handle then shows
//! the state before the call (or, when the call may have committed first — a failed sync
//! under `Durability::Immediate` or a failed automatic compaction — the state after it),
//! every write is `Error::Poisoned` (a failed compaction alone may leave the handle
//! usable), and a reopened file shows what the handle showed. A "torn" fault writes a
//! prefix of the buffer before failing; after one, the reopened file may also fall back to
//! any commit since the last one known durable.
//!
//! Input layout: element type, width, height, rows per chunk of the first channel, the
//! number of faults and each fault (kind, call number, torn prefix), then operations, an
//! opcode byte and its operands each, until the input ends.

use std::path::PathBuf;
use std::sync::Arc;

use compressed_image::{AutoCompact, Codec, Durability, Error, Image, Result, Sample, Settings};
use serde_json::{Value, json};

use super::common::Digest;
use super::common::fault::{self, Fault, Op, Target, Torn, assert_injected};
use super::common::model::ImageModel;
use super::{Input, noise, run_dir};
/// Most operations decoded from one input.
const MAX_OPS: usize = 48;
/// Most faults one input arms.
const MAX_FAULTS: usize = 3;
/// Largest width and height of the image.
const MAX_SIDE: usize = 24;

/// A write that must be refused once the handle is poisoned.
type Write<'a, T> = &'a dyn Fn(&Image<T>) -> Result;

/// What the image must hold.
type Model = ImageModel;

/// What a handle shows (and what the model says it must show).
#[derive(Debug, PartialEq)]
struct View {
    names: Vec<String>,
    metadata: Value,
    channels: Vec<VChan>,
}

#[derive(Debug, PartialEq)]
struct VChan {
    rows: usize,
    codec: Codec,
    level: u8,
    data: Digest,
    /// Whether each chunk is lazy: exactly the bitwise-uniform chunks (SPEC §6 write rule).
    lazy: Vec<bool>,
}

/// What a handle must show when the image holds `m`.
fn view(m: &Model) -> View {
    View {
        names: m.names(),
        metadata: m.meta.clone(),
        channels: m
            .channels
            .iter()
            .map(|c| VChan {
                rows: c.rows,
                codec: c.settings.codec,
                level: c.settings.level,
                data: Digest(c.whole()),
                lazy: c.lazy.clone(),
            })
            .collect(),
    }
}

fn observe<T: Sample>(img: &Image<T>) -> View {
    let data = img
        .get_decompressed()
        .expect("reads work, also after an I/O error");
    View {
        names: img.channel_names(),
        metadata: img.metadata(),
        channels: img
            .channels()
            .unwrap()
            .iter()
            .zip(data)
            .map(|(ch, data)| {
                let settings = ch.settings();
                VChan {
                    rows: ch.geometry().rows_per_chunk(),
                    codec: settings.codec,
                    level: settings.level,
                    data: Digest(bytemuck::cast_slice(&data).to_vec()),
                    lazy: (0..ch.num_chunks())
                        .map(|i| ch.is_lazy(i).expect("is_lazy"))
                        .collect(),
                }
            })
            .collect(),
    }
}

/// Fuzz entry point.
pub fn ops_faults(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 3 {
        0 => run::<u8>(&mut input),
        1 => run::<u16>(&mut input),
        _ => run::<f32>(&mut input),
    }
}

/// How an operation went, for the common checks.
struct Outcome {
    result: Result,
    /// The model after the operation if it succeeds; `None` when it must fail without I/O.
    intended: Option<Model>,
    /// The operation commits (so under `Immediate` or auto-compaction an I/O error may
    /// come after the commit was made).
    commits: bool,
}

struct Run<T: Sample> {
    _dir: tempfile::TempDir,
    path: PathBuf,
    fault: Arc<Fault>,
    width: usize,
    height: usize,
    model: Model,
    /// Every state committed since the last one known durable (that one first).
    history: Vec<Model>,
    img: Option<Image<T>>,
    immediate: bool,
    auto_compact: bool,
}

fn run<T: Sample>(input: &mut Input<'_>) {
    let width = 1 + input.below(MAX_SIDE);
    let height = 1 + input.below(MAX_SIDE);
    let rows = 1 + input.below(height);
    let mut targets = Vec::new();
    for _ in 0..input.below(MAX_FAULTS + 1) {
        let op = match input.u8() % 3 {
            0 => Op::Write,
            1 => Op::SetLen,
            _ => Op::Sync,
        };
        let k = usize::from(input.u8());
        let torn = input.u8();
        let torn = if op == Op::Write && torn % 4 == 3 {
            Torn::Prefix(usize::from(torn / 4) * 4)
        } else {
            Torn::Nothing
        };
        targets.push(Target {
            torn,
            ..Target::new(op, k)
        });
    }
    let dir = run_dir();
    let path = dir.path().join("ops.cimg");
    let size = T::DTYPE.size();
    let settings = Settings::default().chunk_size(rows * width * size);
    {
        let img = Image::<T>::create(&path, width, height).expect("create the image");
        img.add_lazy_channel(T::zeroed(), None, settings)
            .expect("add the first channel");
    }
    let mut model = Model::new(width, height, size);
    let first = model.lazy_channel(0, settings, rows, String::new(), 0, ());
    model.add(None, first);
    let mut run = Run::<T> {
        _dir: dir,
        path,
        fault: Fault::new(targets),
        width,
        height,
        history: vec![model.clone()],
        model,
        img: None,
        immediate: false,
        auto_compact: false,
    };
    run.reopen();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        run.step(input);
    }
    run.reopen();
    // A plain read-only open agrees, and the commit verifies completely.
    run.img = None;
    let ro = Image::<T>::open_read_only(&run.path).expect("read-only open");
    ro.set_threads(1).expect("1 thread");
    assert_eq!(observe(&ro), view(&run.model), "read-only open");
    let v = ro.verify().expect("verify");
    assert!(v.is_ok(), "{v:?}");
}

impl<T: Sample> Run<T> {
    fn size(&self) -> usize {
        T::DTYPE.size()
    }

    fn img(&self) -> &Image<T> {
        self.img.as_ref().expect("an open handle")
    }

    fn view(&self, m: &Model) -> View {
        view(m)
    }

    /// Drop the handle (its best-effort sync may meet a fault, which it ignores) and open
    /// the file again through the faulty backend until an open succeeds; the file must
    /// show the model (or, after a torn write, an earlier commit since the last durable).
    fn reopen(&mut self) {
        self.img = None;
        let mut img = None;
        for _ in 0..=MAX_FAULTS + 1 {
            let before = self.fault.hits();
            match Image::<T>::open_with_backend(&self.path, fault::wrap(&self.fault)) {
                Ok(opened) => {
                    img = Some(opened);
                    break;
                }
                Err(e) => {
                    assert_injected(&e, "open");
                    assert!(self.fault.hits() > before, "open failed without a fault");
                }
            }
        }
        let img = img.expect("an open succeeds once the faults are spent");
        img.set_threads(1).expect("1 thread");
        let shown = observe(&img);
        let torn = self.fault.take_torn();
        if shown != self.view(&self.model) {
            let earlier = self.history.iter().find(|m| self.view(m) == shown);
            match earlier {
                Some(m) if torn => self.model = m.clone(),
                _ => panic!(
                    "reopened file differs from the last commit (torn write: {torn})\n\
                     expected {:?}\n     got {shown:?}",
                    self.view(&self.model)
                ),
            }
        }
        // Opening for writing syncs: the state shown is durable now.
        self.history = vec![self.model.clone()];
        self.immediate = false;
        self.auto_compact = false;
        self.img = Some(img);
        self.check_file();
    }

    /// Checks that hold for every commit a handle shows.
    fn check_file(&self) {
        let img = self.img();
        let v = img.verify().expect("verify");
        assert!(v.is_ok(), "{v:?}");
        let s = img.stats().expect("stats");
        assert!(s.committed_end <= s.file_len, "{s:?}");
        assert_eq!(
            s.live_bytes + s.dead_bytes,
            s.committed_end.div_ceil(64) * 64 - 8192,
            "{s:?}"
        );
        let chunks: usize = self
            .model
            .channels
            .iter()
            .map(|c| self.height.div_ceil(c.rows))
            .sum();
        assert_eq!(s.blob_chunks + s.fill_chunks, chunks, "{s:?}");
    }

    /// Element bytes for a chunk of `elems` elements: a constant or noise.
    fn chunk_bytes(&self, input: &mut Input<'_>, elems: usize) -> Vec<u8> {
        let size = self.size();
        match input.u8() % 3 {
            0 => {
                let value: Vec<u8> = (0..size).map(|_| input.u8()).collect();
                value.repeat(elems)
            }
            _ => noise(u64::from(input.u16()), elems * size),
        }
    }

    /// Settings for a new channel (sometimes invalid) and the rows per chunk they give.
    fn settings(&self, input: &mut Input<'_>) -> (Settings, Option<usize>) {
        let codec = Codec::ALL[input.below(Codec::ALL.len())];
        let level = input.below(11) as u8;
        let block = [0, 16, 64, 256, 4096, 32768][input.below(6)];
        let rows = input.below(self.height + 3);
        let settings = Settings::default()
            .codec(codec)
            .level(level)
            .block_size(block)
            .chunk_size(rows * self.width * self.size());
        // A request below one scanline (rows 0) gives one scanline per chunk.
        (settings, (level <= 9).then_some(rows.clamp(1, self.height)))
    }

    fn name(&self, input: &mut Input<'_>) -> Option<String> {
        const NAMES: [&str; 6] = ["", "R", "G", "B", "é✓", "R"];
        let pick = input.u8();
        (!pick.is_multiple_of(3)).then(|| NAMES[usize::from(pick / 3) % NAMES.len()].to_string())
    }

    fn metadata(input: &mut Input<'_>) -> Value {
        match input.u8() % 5 {
            0 => Value::Null,
            1 => json!(input.u32()),
            2 => json!(format!("m{}", input.u8())),
            3 => {
                json!({"z": input.u8(), "a": [1, "two", null, true], "nested": {"k": input.u16()}})
            }
            _ => json!([input.u8(), input.u8()]),
        }
    }

    /// Decode and run one operation, then check it.
    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.u8() % 14;
        if op == 10 {
            self.reopen();
            return;
        }
        let before = self.model.clone();
        let fired_before = self.fault.hits();
        let generation_before = self.img().stats().expect("stats").generation;
        let size = self.size();
        let (w, h) = (self.width, self.height);
        let nch = self.model.channels.len();
        let img = self.img();
        let outcome = match op {
            // set_chunk (data or constant; sometimes a bad index or length)
            0 | 1 if nch > 0 => {
                let c = input.below(nch);
                let rows = self.model.channels[c].rows;
                let n = h.div_ceil(rows);
                let index = input.below(n + 1);
                let elems = if index < n {
                    rows.min(h - index * rows) * w
                } else {
                    1
                };
                let bad_len = input.u8().is_multiple_of(16);
                let elems_given = if bad_len { elems + 1 } else { elems };
                let bytes = self.chunk_bytes(input, elems_given);
                let data: Vec<T> = super::from_bytes(&bytes);
                let intended = (index < n && !bad_len).then(|| {
                    let mut m = before.clone();
                    m.set_chunk(c, index, &bytes);
                    m
                });
                let ch = img.channel(c).expect("channel");
                Outcome {
                    result: ch.set_chunk(index, &data),
                    intended,
                    commits: true,
                }
            }
            // A batch of chunk writes, committed or dropped.
            2 if nch > 0 => self.batch(input, &before),
            // update_chunks: change one element in the chunks the mask picks.
            3 if nch > 0 => {
                let c = input.below(nch);
                let mask = input.u8();
                let value: Vec<u8> = (0..size).map(|_| input.u8()).collect();
                let v: T = bytemuck::pod_read_unaligned(&value);
                let mut m = before.clone();
                for i in 0..m.num_chunks(c) {
                    if mask & (1 << (i % 8)) != 0 {
                        let mut chunk = m.channels[c].chunks[i].clone();
                        let j = (i * 7) % (chunk.len() / size);
                        chunk[j * size..(j + 1) * size].copy_from_slice(&value);
                        m.set_chunk(c, i, &chunk);
                    }
                }
                let ch = img.channel(c).expect("channel");
                let result = ch.update_chunks(|chunk| {
                    if mask & (1 << (chunk.index() % 8)) != 0 {
                        let i = chunk.index();
                        let data = chunk.data_mut();
                        let j = (i * 7) % data.len();
                        data[j] = v;
                    }
                    Ok(())
                });
                Outcome {
                    result,
                    intended: Some(m),
                    commits: true,
                }
            }
            // add_channel with data, or a lazy channel
            4 | 5 => {
                let name = self.name(input);
                let (settings, rows) = self.settings(input);
                let bytes = if op == 4 {
                    self.chunk_bytes(input, w * h)
                } else {
                    let value: Vec<u8> = (0..size).map(|_| input.u8()).collect();
                    value.repeat(w * h)
                };
                let intended = rows.map(|rows| {
                    let mut m = before.clone();
                    let chunks = bytes.chunks(rows * w * size).map(<[u8]>::to_vec).collect();
                    let name_or_empty = name.clone().unwrap_or_default();
                    let mut channel = m.data_channel(0, settings, rows, name_or_empty, chunks, ());
                    // Only a channel added with data has a chunk table.
                    channel.has_table = op == 4;
                    m.add(name.as_deref(), channel);
                    m
                });
                let result = if op == 4 {
                    let data: Vec<T> = super::from_bytes(&bytes);
                    img.add_channel(&data, name.as_deref(), settings)
                } else {
                    let value: T = bytemuck::pod_read_unaligned(&bytes[..size]);
                    img.add_lazy_channel(value, name.as_deref(), settings)
                };
                Outcome {
                    result: result.map(drop),
                    intended,
                    commits: true,
                }
            }
            6 => {
                let index = input.below(nch + 1);
                let intended = (index < nch).then(|| {
                    let mut m = before.clone();
                    m.channels.remove(index);
                    m
                });
                Outcome {
                    result: img.remove_channel(index),
                    intended,
                    commits: true,
                }
            }
            7 => {
                let value = Self::metadata(input);
                let mut m = before.clone();
                m.meta = value.clone();
                Outcome {
                    result: img.set_metadata(value),
                    intended: Some(m),
                    commits: true,
                }
            }
            8 => {
                let count = if input.u8().is_multiple_of(8) {
                    nch + 1
                } else {
                    nch
                };
                let names: Vec<String> = (0..count)
                    .map(|_| self.name(input).unwrap_or_default())
                    .collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let intended = (count == nch).then(|| {
                    let mut m = before.clone();
                    m.set_names(&names);
                    m
                });
                Outcome {
                    result: img.set_channel_names(&refs),
                    intended,
                    commits: true,
                }
            }
            9 => Outcome {
                result: img.sync(),
                intended: Some(before.clone()),
                commits: false,
            },
            11 => {
                let result = img.compact();
                if let Ok(c) = &result {
                    let s = img.stats().expect("stats");
                    assert_eq!(s.dead_bytes, 0, "{s:?}");
                    assert_eq!(s.file_len, s.committed_end, "{s:?}");
                    assert_eq!(c.file_len_after, s.file_len, "{c:?}");
                }
                Outcome {
                    result: result.map(drop),
                    intended: Some(before.clone()),
                    commits: false,
                }
            }
            12 => {
                let immediate = input.u8().is_multiple_of(2);
                let d = if immediate {
                    Durability::Immediate
                } else {
                    Durability::OnSync
                };
                img.set_durability(d).expect("set_durability");
                self.immediate = immediate;
                return;
            }
            13 => {
                let pick = input.u8();
                let auto = (!pick.is_multiple_of(3)).then(|| AutoCompact {
                    min_dead_ratio: f64::from(pick % 5) * 0.25,
                    min_dead_bytes: [0, 512, 8192][usize::from(pick / 5) % 3],
                });
                img.set_auto_compact(auto).expect("set_auto_compact");
                self.auto_compact = auto.is_some();
                return;
            }
            _ => return, // a channel operation on an image without channels
        };
        let fired = self.fault.hits() > fired_before;
        match outcome.result {
            Ok(()) => {
                assert!(!fired, "op {op}: an injected fault was swallowed");
                let intended = outcome
                    .intended
                    .unwrap_or_else(|| panic!("op {op}: an invalid operation succeeded"));
                self.model = intended;
                assert_eq!(observe(self.img()), self.view(&self.model), "op {op}");
                self.check_file();
                // Durable now: after a sync or a compaction, and after a commit under
                // `Immediate` — one that was made: a call with nothing to commit (an
                // empty batch, `update_chunks` changing nothing) syncs nothing, so
                // earlier unsynced commits stay unsynced.
                let committed = self.img().stats().expect("stats").generation > generation_before;
                if op == 9 || op == 11 || (self.immediate && outcome.commits && committed) {
                    self.history.clear();
                }
                if outcome.commits || self.history.is_empty() {
                    self.history.push(self.model.clone());
                }
            }
            Err(Error::Io(e)) => {
                let e = Error::Io(e);
                assert!(
                    fired,
                    "op {op}: an I/O error without an injected fault: {e:?}"
                );
                assert_injected(&e, &format!("op {op}"));
                self.after_io_error(op, &before, outcome.intended, outcome.commits);
            }
            Err(e) => {
                assert!(!fired, "op {op}: a fault fired but the call returned {e:?}");
                assert!(
                    outcome.intended.is_none(),
                    "op {op}: a valid operation failed: {e:?}"
                );
                assert!(
                    matches!(
                        e,
                        Error::InvalidArgument { .. } | Error::IndexOutOfRange { .. }
                    ),
                    "op {op}: {e:?}"
                );
                assert_eq!(observe(self.img()), self.view(&before), "op {op} changed");
            }
        }
    }

    /// A batch on one channel: staged writes (some invalid, refused without effect), a
    /// read and a nested write while it is open, then commit or drop.
    fn batch(&self, input: &mut Input<'_>, before: &Model) -> Outcome {
        let (w, h) = (self.width, self.height);
        let img = self.img();
        let c = input.below(before.channels.len());
        let rows = before.channels[c].rows;
        let n = h.div_ceil(rows);
        let ch = img.channel(c).expect("channel");
        let mut batch = match ch.batch() {
            Ok(b) => b,
            Err(e) => {
                return Outcome {
                    result: Err(e),
                    intended: None,
                    commits: false,
                };
            }
        };
        let mut m = before.clone();
        let entries = 1 + input.below(4);
        for _ in 0..entries {
            let index = input.below(n + 1);
            let elems = if index < n {
                rows.min(h - index * rows) * w
            } else {
                1
            };
            let bytes = self.chunk_bytes(input, elems);
            let data: Vec<T> = super::from_bytes(&bytes);
            let fired_before = self.fault.hits();
            match batch.set_chunk(index, &data) {
                Ok(()) => {
                    assert!(index < n, "batch staged chunk {index} of {n}");
                    m.set_chunk(c, index, &bytes);
                }
                Err(Error::Io(e)) => {
                    assert!(self.fault.hits() > fired_before, "batch I/O error: {e}");
                    drop(batch);
                    return Outcome {
                        result: Err(Error::Io(e)),
                        intended: Some(m),
                        commits: false,
                    };
                }
                Err(e) => {
                    assert!(index >= n, "batch refused a valid chunk: {e:?}");
                    assert!(matches!(e, Error::IndexOutOfRange { .. }), "{e:?}");
                }
            }
        }
        let flags = input.u8();
        if flags & 1 != 0 {
            // Another write on this thread while the batch is open is refused.
            assert!(matches!(
                img.set_metadata(json!("nested")),
                Err(Error::BatchInProgress)
            ));
        }
        if flags & 2 != 0 {
            // Readers see the last commit, not the staged chunks.
            assert_eq!(observe(img), self.view(before), "read during a batch");
        }
        if flags & 4 != 0 {
            drop(batch);
            return Outcome {
                result: Ok(()),
                intended: Some(before.clone()),
                commits: false,
            };
        }
        Outcome {
            result: batch.commit(),
            intended: Some(m),
            commits: true,
        }
    }

    /// After an injected I/O error: the handle shows the state before the call (or after
    /// it, when the call may have committed), refuses writes, and a reopen agrees.
    fn after_io_error(&mut self, op: u8, before: &Model, intended: Option<Model>, commits: bool) {
        let shown = observe(self.img());
        let may_commit = commits && (self.immediate || self.auto_compact);
        let intended = intended.filter(|_| may_commit);
        self.model = if shown == self.view(before) {
            before.clone()
        } else if let Some(m) = intended.filter(|m| self.view(m) == shown) {
            m
        } else {
            panic!(
                "op {op}: after the I/O error the handle shows neither the state before \
                 nor (may commit: {may_commit}) after the call:\nbefore {:?}\n shown {shown:?}",
                self.view(before)
            );
        };
        if self.model != *before {
            self.history.push(self.model.clone());
        }
        let img = self.img();
        // A compaction that failed leaves the old file untouched and may leave the handle
        // usable; any other failure poisons it.
        match img.remove_channel(usize::MAX) {
            Err(Error::Poisoned) => {
                let poisoned: [Write<'_, T>; 5] = [
                    &|i| i.set_metadata(json!(1)),
                    &|i| {
                        i.add_lazy_channel(T::zeroed(), None, Settings::default())
                            .map(drop)
                    },
                    &|i| i.sync(),
                    &|i| i.compact().map(drop),
                    &|i| i.set_channel_names(&[]),
                ];
                for (k, write) in poisoned.iter().enumerate() {
                    let e = write(img).err();
                    assert!(
                        matches!(e, Some(Error::Poisoned)),
                        "op {op}: write {k} after an I/O error: {e:?}"
                    );
                }
                if let Some(ch) = img.channels().unwrap().first() {
                    assert!(matches!(ch.batch().err(), Some(Error::Poisoned)));
                }
            }
            Err(Error::IndexOutOfRange { .. }) => {
                assert!(
                    op == 11 || self.auto_compact,
                    "op {op}: the handle is not poisoned after an I/O error"
                );
            }
            other => panic!("op {op}: unexpected {other:?}"),
        }
        assert_eq!(observe(img), shown, "op {op}: the handle changed");
        self.reopen();
    }
}
