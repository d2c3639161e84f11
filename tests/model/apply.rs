//! The harness, applying one operation to the target and to the model.

use compressed_image::{AutoCompact, Channel, Durability, Error, Settings};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use crate::Ctx;
use crate::data::{Data, Edit, Elem, Model, as_bytes, elem_bytes, gen_bytes, to_elems, zeroed};
use crate::harness::{Harness, Reader, remove_file};
use crate::ops::{BadWrite, Gen, Op};
use crate::target::{Target, View, check_view};
use crate::{TestResult, same_bytes};

impl<T: Elem> Harness<T> {
    /// Apply one operation to the target and the model.
    pub fn apply(&mut self, op: &Op) -> TestResult<Gen> {
        self.step += 1;
        let nch = self.model.channels.len();
        let needs_channel = matches!(
            op,
            Op::SetChunk { .. }
                | Op::SetLastChunk { .. }
                | Op::Batch { .. }
                | Op::Update { .. }
                | Op::Remove { .. }
                | Op::ReadRows { .. }
                | Op::SaveChannelAs { .. }
        );
        if needs_channel && nch == 0 {
            return Ok(Gen::Same);
        }
        match op {
            Op::SetChunk { ch, idx, data } => {
                let pos = ch.index(nch);
                let i = idx.index(self.model.num_chunks(pos));
                self.set_chunk(pos, i, data)
            }
            Op::SetLastChunk { ch, data } => {
                let pos = ch.index(nch);
                let i = self.model.num_chunks(pos) - 1;
                self.set_chunk(pos, i, data)
            }
            Op::Batch {
                ch,
                writes,
                bad,
                probe,
                commit,
            } => self.batch(ch.index(nch), writes, bad.as_ref(), *probe, *commit),
            Op::Update {
                ch,
                mask,
                edits,
                fail_at,
            } => self.update(ch.index(nch), *mask, edits, fail_at.as_ref()),
            Op::Add(spec) => {
                self.add(spec)?;
                Ok(Gen::Grows)
            }
            Op::Remove { ch } => {
                let pos = ch.index(nch);
                self.img().remove_channel(pos).ctx("remove_channel")?;
                self.remove_at(pos);
                Ok(Gen::Grows)
            }
            Op::RemoveByName { pick, name } => {
                let name = match pick {
                    Some(p) if nch > 0 => self.model.channels[p.index(nch)].name.clone(),
                    _ => name.clone(),
                };
                let expected = self
                    .model
                    .channels
                    .iter()
                    .position(|c| self.model.names_present && c.name == name);
                let result = self.img().remove_channel_by_name(&name);
                match expected {
                    Some(pos) => {
                        result.ctx("remove_channel_by_name")?;
                        self.remove_at(pos);
                        Ok(Gen::Grows)
                    }
                    None => {
                        expect_err!(result, Error::UnknownChannelName(_), "remove {name:?}");
                        Ok(Gen::Same)
                    }
                }
            }
            Op::SetNames(names) => {
                let names: Vec<String> = (0..nch)
                    .map(|k| names.get(k).cloned().unwrap_or_default())
                    .collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                self.img()
                    .set_channel_names(&refs)
                    .ctx("set_channel_names")?;
                self.model.names_present = true;
                for (c, n) in self.model.channels.iter_mut().zip(names) {
                    c.name = n;
                }
                Ok(Gen::Grows)
            }
            Op::SetMetadata(v) => {
                self.img().set_metadata(v.clone()).ctx("set_metadata")?;
                self.model.meta = v.clone();
                Ok(Gen::Grows)
            }
            Op::ReadRows { ch, first, count } => {
                let pos = ch.index(nch);
                let (w, h) = (self.model.width, self.model.height);
                let first = first.index(h + 1);
                let mut out = vec![zeroed::<T>(); count * w];
                let result = self.handle(pos)?.read_rows(first, &mut out);
                if first + count <= h {
                    result.ctx("read_rows")?;
                    let whole = self.model.channels[pos].chunks.concat();
                    let s = self.model.size;
                    same_bytes(
                        as_bytes(&out),
                        &whole[first * w * s..(first + count) * w * s],
                        &format!("read_rows({first}, {count} rows)"),
                    )?;
                } else {
                    expect_err!(result, Error::InvalidArgument { .. }, "rows past the end");
                }
                Ok(Gen::Same)
            }
            Op::Sync => {
                self.t().sync().ctx("sync")?;
                Ok(Gen::Any)
            }
            Op::Reopen => {
                if self.path.is_none() {
                    return Ok(Gen::Same);
                }
                self.held.clear();
                self.target = None; // drops the writer (and syncs)
                let target = self.reopen_target(true)?;
                self.held = self.held_of(&target);
                self.target = Some(target);
                self.auto_zero = false; // a per-handle setting
                Ok(Gen::Any)
            }
            Op::OpenReader => {
                if self.path.is_none() {
                    return Ok(Gen::Same);
                }
                let target = self.reopen_target(false)?;
                let held = self.held_of(&target);
                self.reader = Some(Reader {
                    target,
                    held,
                    model: self.model.clone(),
                });
                Ok(Gen::Same)
            }
            Op::RefreshReader => {
                ensure!(!self.t().refresh().ctx("refresh")?, "a writer refreshed");
                if let Some(r) = &mut self.reader {
                    r.target.refresh().ctx("refresh")?;
                    r.model = self.model.clone();
                }
                Ok(Gen::Same)
            }
            Op::Compact => {
                let before = self.t().stats().ctx("stats")?;
                let report = self.t().compact().ctx("compact")?;
                let after = self.t().stats().ctx("stats")?;
                ensure_eq!(after.dead_bytes, 0, "after compact: {after:?}");
                ensure_eq!(
                    after.file_len,
                    after.committed_end,
                    "after compact: {after:?}"
                );
                ensure_eq!(after.live_bytes, before.live_bytes, "after compact");
                ensure_eq!(report.file_len_after, after.file_len, "compaction report");
                ensure_eq!(report.file_len_before, before.file_len, "compaction report");
                ensure_eq!(
                    report.reclaimed,
                    before.file_len.saturating_sub(after.file_len),
                    "compaction report"
                );
                ensure_eq!(self.t().path(), self.path.as_deref(), "path after compact");
                Ok(Gen::Grows)
            }
            Op::SaveAs { rw } => {
                let copy = self.copy_path();
                self.t().save_as(&copy).ctx("save_as")?;
                {
                    let target = Target::open(&copy, self.image, *rw).ctx("open copy")?;
                    let held = self.held_of(&target);
                    let view = View {
                        target: &target,
                        model: &self.model,
                        held: &held,
                        writable: *rw,
                        inspect: Some(&copy),
                        in_batch: false,
                        scratch: self.dir.path(),
                    };
                    check_view(&view, "save_as copy")?;
                    let s = target.stats().ctx("copy stats")?;
                    ensure_eq!(s.dead_bytes, 0, "save_as copy: {s:?}");
                }
                remove_file(&copy)?;
                Ok(Gen::Same)
            }
            Op::SaveChannelAs { ch } => {
                let pos = ch.index(nch);
                let copy = self.copy_path();
                self.handle(pos)?.save_as(&copy).ctx("channel save_as")?;
                {
                    let target = Target::Channel(
                        Channel::<T>::open_read_only(&copy).ctx("open channel copy")?,
                    );
                    let mut mc = self.model.channels[pos].clone();
                    mc.name.clear();
                    let model = Model {
                        channels: vec![mc],
                        names_present: false,
                        meta: Value::Null,
                        ..self.model.clone()
                    };
                    let view = View {
                        target: &target,
                        model: &model,
                        held: &[],
                        writable: false,
                        inspect: Some(&copy),
                        in_batch: false,
                        scratch: self.dir.path(),
                    };
                    check_view(&view, "channel save_as copy")?;
                    let s = target.stats().ctx("copy stats")?;
                    ensure_eq!(s.dead_bytes, 0, "channel copy: {s:?}");
                }
                remove_file(&copy)?;
                Ok(Gen::Same)
            }
            Op::Durability { immediate } => {
                let d = if *immediate {
                    Durability::Immediate
                } else {
                    Durability::OnSync
                };
                self.t().set_durability(d).ctx("set_durability")?;
                Ok(Gen::Same)
            }
            Op::AutoCompact { on } => {
                let auto = on.then_some(AutoCompact {
                    min_dead_ratio: 0.0,
                    min_dead_bytes: 0,
                });
                self.t().set_auto_compact(auto).ctx("set_auto_compact")?;
                self.auto_zero = *on;
                Ok(Gen::Same)
            }
            Op::Invalid(bad) => {
                let bytes = self.file_bytes()?;
                self.invalid(bad)?;
                if let Some(before) = bytes {
                    let after = self.file_bytes()?.expect("file-backed");
                    ensure!(before == after, "a failed call changed the file's bytes");
                }
                Ok(Gen::Same)
            }
        }
    }

    pub fn set_chunk(&mut self, pos: usize, i: usize, data: &Data) -> TestResult<Gen> {
        let bytes = gen_bytes::<T>(data, self.model.chunk_elems(pos, i), self.step);
        self.handle(pos)?
            .set_chunk(i, &to_elems::<T>(&bytes))
            .ctx("set_chunk")?;
        self.model_write(pos, i, bytes)?;
        Ok(Gen::Grows)
    }

    pub fn batch(
        &mut self,
        pos: usize,
        writes: &[(Index, Data)],
        bad: Option<&BadWrite>,
        probe: bool,
        commit: bool,
    ) -> TestResult<Gen> {
        let n = self.model.num_chunks(pos);
        let handle = self.handle(pos)?;
        let mut staged = Vec::new();
        {
            let mut batch = handle.batch().ctx("batch")?;
            for (k, (idx, data)) in writes.iter().enumerate() {
                let i = idx.index(n);
                let salt = self.step * 1000 + k as u64;
                let bytes = gen_bytes::<T>(data, self.model.chunk_elems(pos, i), salt);
                batch
                    .set_chunk(i, &to_elems::<T>(&bytes))
                    .ctx("batch.set_chunk")?;
                staged.push((i, bytes));
            }
            match bad {
                Some(BadWrite::WrongLen { idx, delta }) => {
                    let i = idx.index(n);
                    let len = (self.model.chunk_elems(pos, i) as isize + *delta as isize).max(0);
                    let data = vec![zeroed::<T>(); len as usize];
                    expect_err!(
                        batch.set_chunk(i, &data),
                        Error::InvalidArgument { .. },
                        "batch write of {len} elements to chunk {i}"
                    );
                }
                Some(BadWrite::OutOfRange { extra }) => {
                    let data = vec![zeroed::<T>(); self.model.chunk_elems(pos, 0)];
                    expect_err!(
                        batch.set_chunk(n + *extra as usize, &data),
                        Error::IndexOutOfRange { .. },
                        "batch write past the last chunk"
                    );
                }
                None => {}
            }
            if probe {
                self.probe_batch(pos, &handle)?;
            }
            if commit {
                batch.commit().ctx("batch.commit")?;
            }
        }
        if !commit || staged.is_empty() {
            return Ok(Gen::Same);
        }
        for (i, bytes) in staged {
            self.model_write(pos, i, bytes)?;
        }
        Ok(Gen::Grows)
    }

    /// While a batch is open: reads show the last commit; other writes of this thread are
    /// refused with `BatchInProgress`.
    pub fn probe_batch(&self, pos: usize, handle: &Channel<T>) -> TestResult {
        self.check(true, "during a batch")?;
        let chunk0 = to_elems::<T>(&self.model.channels[pos].chunks[0]);
        expect_err!(
            handle.set_chunk(0, &chunk0),
            Error::BatchInProgress,
            "in batch"
        );
        let other = self.t().channel(pos).ctx("channel")?;
        expect_err!(
            other.set_chunk(0, &chunk0),
            Error::BatchInProgress,
            "in batch"
        );
        expect_err!(other.batch(), Error::BatchInProgress, "in batch");
        expect_err!(self.t().compact(), Error::BatchInProgress, "in batch");
        if let Target::Image(img) = self.t() {
            expect_err!(
                img.set_metadata(json!(1)),
                Error::BatchInProgress,
                "in batch"
            );
            expect_err!(
                img.add_lazy_channel(zeroed::<T>(), None, Settings::default()),
                Error::BatchInProgress,
                "in batch"
            );
            expect_err!(img.remove_channel(pos), Error::BatchInProgress, "in batch");
        }
        Ok(())
    }

    pub fn update(
        &mut self,
        pos: usize,
        mask: u64,
        edits: &[Edit],
        fail_at: Option<&Index>,
    ) -> TestResult<Gen> {
        let n = self.model.num_chunks(pos);
        let fail = fail_at.map(|f| f.index(n));
        let handle = self.handle(pos)?;
        let mc = &self.model.channels[pos];
        let (width, size, step) = (self.model.width, self.model.size, self.step);
        let mut written = Vec::new();
        let mut problem = None;
        let mut visited = 0;
        let result = handle.update_chunks(|chunk| {
            let i = chunk.index();
            let last = chunk.data().len() - 1;
            if i != visited
                || as_bytes(chunk.data()) != mc.chunks[i].as_slice()
                || (chunk.x(0), chunk.y(0)) != (0, i * mc.rows)
                || (chunk.x(last), chunk.y(last)) != (last % width, i * mc.rows + last / width)
            {
                problem = Some(format!(
                    "update_chunks: chunk {i} (visit {visited}) differs"
                ));
                return Err(Error::Io(std::io::Error::other("model mismatch")));
            }
            visited += 1;
            if fail == Some(i) {
                return Err(Error::UnknownChannelName("abort".into()));
            }
            if mask >> (i % 64) & 1 == 0 {
                return Ok(());
            }
            let elems = chunk.data().len();
            let data = bytemuck::cast_slice_mut::<T, u8>(chunk.data_mut());
            match &edits[i % edits.len()] {
                Edit::Replace(d) => {
                    data.copy_from_slice(&gen_bytes::<T>(d, elems, step * 1000 + i as u64))
                }
                Edit::Poke { at, val } => {
                    let at = at.index(elems) * size;
                    data[at..at + size].copy_from_slice(&elem_bytes::<T>(val.bits::<T>()));
                }
                Edit::Touch => {}
            }
            written.push((i, data.to_vec()));
            Ok(())
        });
        if let Some(p) = problem {
            return Err(TestCaseError::fail(p));
        }
        if fail.is_some() {
            expect_err!(
                result,
                Error::UnknownChannelName(_),
                "update_chunks aborted"
            );
            return Ok(Gen::Same);
        }
        result.ctx("update_chunks")?;
        ensure_eq!(visited, n, "update_chunks visits");
        if written.is_empty() {
            return Ok(Gen::Same);
        }
        for (i, bytes) in written {
            self.model_write(pos, i, bytes)?;
        }
        Ok(Gen::Grows)
    }
}
