//! The harness, making invalid calls, each of which must fail with the documented error and
//! change nothing (not even the file's bytes).

use std::path::Path;

use compressed_image::{AnyChannel, Channel, Durability, Error, Image, Sample, Settings};
use proptest::prelude::*;
use serde_json::json;

use crate::Ctx;
use crate::data::{Elem, to_elems, zeroed};
use crate::harness::Harness;
use crate::ops::{Bad, SettingsFault};
use crate::target::{Target, View, check_channel, check_view};
use crate::{TestResult, same_bytes};

impl<T: Elem> Harness<T> {
    pub fn bad_settings(&self, kind: &SettingsFault) -> Settings {
        match kind {
            SettingsFault::Level(l) => Settings::default().level(*l),
            SettingsFault::BlockTooBig => Settings::default().block_size(536_866_817),
        }
    }

    pub fn invalid(&mut self, bad: &Bad) -> TestResult {
        let nch = self.model.channels.len();
        let (w, h) = (self.model.width, self.model.height);
        match bad {
            Bad::WrongLen { ch, idx, delta } => {
                if nch == 0 {
                    return Ok(());
                }
                let pos = ch.index(nch);
                let i = idx.index(self.model.num_chunks(pos));
                let len = (self.model.chunk_elems(pos, i) as isize + *delta as isize).max(0);
                let data = vec![zeroed::<T>(); len as usize];
                let c = self.handle(pos)?;
                expect_err!(
                    c.set_chunk(i, &data),
                    Error::InvalidArgument { .. },
                    "{len} elements"
                );
                let mut batch = c.batch().ctx("batch")?;
                expect_err!(
                    batch.set_chunk(i, &data),
                    Error::InvalidArgument { .. },
                    "{len} elements"
                );
                batch.commit().ctx("empty commit")?;
            }
            Bad::OutOfRange { ch, extra } => {
                if nch == 0 {
                    return Ok(());
                }
                let pos = ch.index(nch);
                let n = self.model.num_chunks(pos);
                let i = n + *extra as usize;
                let c = self.handle(pos)?;
                let mut data = vec![zeroed::<T>(); self.model.chunk_elems(pos, 0)];
                match c.set_chunk(i, &data) {
                    Err(Error::IndexOutOfRange { index, len, .. }) => {
                        ensure_eq!((index, len), (i, n), "set_chunk({i})");
                    }
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "set_chunk({i}) of {n} chunks gave {other:?}"
                        )));
                    }
                }
                expect_err!(
                    c.get_chunk(i, &mut data),
                    Error::IndexOutOfRange { .. },
                    "get"
                );
                expect_err!(c.is_lazy(i), Error::IndexOutOfRange { .. }, "is_lazy");
                expect_err!(c.chunk_size_at(i), Error::IndexOutOfRange { .. }, "size");
                expect_err!(c.get_chunk_vec(i), Error::IndexOutOfRange { .. }, "get_vec");
            }
            Bad::ReadWrongLen { ch, idx, delta } => {
                if nch == 0 {
                    return Ok(());
                }
                let pos = ch.index(nch);
                let i = idx.index(self.model.num_chunks(pos));
                let len = (self.model.chunk_elems(pos, i) as isize + *delta as isize).max(0);
                let c = self.handle(pos)?;
                let mut out = vec![zeroed::<T>(); len as usize];
                expect_err!(
                    c.get_chunk(i, &mut out),
                    Error::InvalidArgument { .. },
                    "get {len}"
                );
                let len = ((w * h) as isize + *delta as isize).max(0);
                let mut out = vec![zeroed::<T>(); len as usize];
                expect_err!(
                    c.decompress_into(&mut out),
                    Error::InvalidArgument { .. },
                    "all {len}"
                );
            }
            Bad::Rows { ch } => {
                if nch == 0 {
                    return Ok(());
                }
                let c = self.handle(ch.index(nch))?;
                if w > 1 {
                    let mut out = vec![zeroed::<T>(); w + 1];
                    expect_err!(
                        c.read_rows(0, &mut out),
                        Error::InvalidArgument { .. },
                        "part row"
                    );
                }
                let mut out: Vec<T> = Vec::new();
                expect_err!(
                    c.read_rows(h + 1, &mut out),
                    Error::InvalidArgument { .. },
                    "past end"
                );
            }
            Bad::ChannelOutOfRange { extra } => {
                let img = self.img();
                let i = nch + *extra as usize;
                expect_err!(
                    img.channel(i),
                    Error::IndexOutOfRange { .. },
                    "channel({i})"
                );
                expect_err!(
                    img.remove_channel(i),
                    Error::IndexOutOfRange { .. },
                    "remove({i})"
                );
            }
            Bad::AddWrongLen { delta, name } => {
                let len = ((w * h) as isize + *delta as isize).max(0);
                let data = vec![zeroed::<T>(); len as usize];
                expect_err!(
                    self.img()
                        .add_channel(&data, name.as_deref(), Settings::default()),
                    Error::InvalidArgument { .. },
                    "add_channel of {len} elements"
                );
            }
            Bad::Settings { kind, lazy } => {
                let settings = self.bad_settings(kind);
                let data = vec![zeroed::<T>(); w * h];
                match self.t() {
                    Target::Image(img) => {
                        let r = if *lazy {
                            img.add_lazy_channel(zeroed::<T>(), Some("bad"), settings)
                        } else {
                            img.add_channel(&data, Some("bad"), settings)
                        };
                        expect_err!(r, Error::InvalidArgument { .. }, "{settings:?}");
                    }
                    Target::Channel(_) => {
                        let path = self.dir.path().join("bad.cimg");
                        let r = if *lazy {
                            Channel::create_full(&path, w, h, zeroed::<T>(), settings)
                        } else {
                            Channel::create(&path, &data, w, h, settings)
                        };
                        expect_err!(r, Error::InvalidArgument { .. }, "{settings:?}");
                        ensure!(!path.exists(), "a failed create made {}", path.display());
                        expect_err!(
                            Channel::new(&data, w, h, settings),
                            Error::InvalidArgument { .. },
                            "{settings:?}"
                        );
                    }
                }
            }
            Bad::NamesWrongCount { more } => {
                let count = if *more || nch == 0 { nch + 1 } else { nch - 1 };
                let names = vec!["x"; count];
                expect_err!(
                    self.img().set_channel_names(&names),
                    Error::InvalidArgument { .. },
                    "{count} names for {nch} channels"
                );
            }
            Bad::UnknownName(name) => {
                let m = &self.model;
                if m.names_present && m.channels.iter().any(|c| &c.name == name) {
                    return Ok(());
                }
                let img = self.img();
                expect_err!(
                    img.channel_by_name(name),
                    Error::UnknownChannelName(_),
                    "{name:?}"
                );
                expect_err!(
                    img.remove_channel_by_name(name),
                    Error::UnknownChannelName(_),
                    "{name:?}"
                );
            }
            Bad::SecondWriter => {
                let Some(path) = self.path.clone() else {
                    return Ok(());
                };
                expect_err!(
                    Image::<T>::open(&path),
                    Error::Locked { .. },
                    "second writer"
                );
                expect_err!(
                    Channel::<T>::open(&path),
                    Error::Locked { .. },
                    "second writer"
                );
                expect_err!(
                    AnyChannel::open(&path),
                    Error::Locked { .. },
                    "second writer"
                );
                expect_err!(
                    Image::<T>::create(&path, w, h),
                    Error::Locked { .. },
                    "create"
                );
                expect_err!(
                    Channel::<T>::create_full(&path, w, h, zeroed::<T>(), Settings::default()),
                    Error::Locked { .. },
                    "create"
                );
                expect_err!(
                    self.t().save_as(&path),
                    Error::Locked { .. },
                    "save_as onto itself"
                );
            }
            Bad::ReaderWrites => {
                if self.path.is_none() {
                    return Ok(());
                }
                let r = self.reopen_target(false)?;
                {
                    let held = self.held_of(&r);
                    let view = View {
                        target: &r,
                        model: &self.model,
                        held: &held,
                        writable: false,
                        inspect: None,
                        in_batch: false,
                        scratch: self.dir.path(),
                    };
                    check_view(&view, "fresh read-only handle")?;
                }
                let ro = "read-only handle";
                expect_err!(r.compact(), Error::ReadOnly, "{ro}");
                expect_err!(
                    r.set_durability(Durability::Immediate),
                    Error::ReadOnly,
                    "{ro}"
                );
                expect_err!(r.set_auto_compact(None), Error::ReadOnly, "{ro}");
                r.sync().ctx("read-only sync")?;
                if nch > 0 {
                    let c = r.channel(0).ctx(ro)?;
                    let data = to_elems::<T>(&self.model.channels[0].chunks[0]);
                    expect_err!(c.set_chunk(0, &data), Error::ReadOnly, "{ro}");
                    expect_err!(c.batch(), Error::ReadOnly, "{ro}");
                    expect_err!(c.update_chunks(|_| Ok(())), Error::ReadOnly, "{ro}");
                }
                if let Target::Image(img) = &r {
                    expect_err!(img.set_metadata(json!({"a": 1})), Error::ReadOnly, "{ro}");
                    expect_err!(
                        img.add_lazy_channel(zeroed::<T>(), None, Settings::default()),
                        Error::ReadOnly,
                        "{ro}"
                    );
                    expect_err!(img.remove_channel(0), Error::ReadOnly, "{ro}");
                    expect_err!(img.set_channel_names(&[]), Error::ReadOnly, "{ro}");
                }
            }
            Bad::WrongDtype => {
                let Some(path) = self.path.clone() else {
                    return Ok(());
                };
                if T::DTYPE == compressed_image::Dtype::U8 {
                    self.wrong_dtype::<i8>(&path)?;
                } else {
                    self.wrong_dtype::<u8>(&path)?;
                }
            }
            Bad::ZeroThreads => {
                let t = self.target.as_mut().expect("open");
                expect_err!(t.set_threads(0), Error::InvalidArgument { .. }, "0 threads");
                if nch > 0 {
                    let c = self.t().channel(0).ctx("channel")?;
                    let threads = c.threads();
                    expect_err!(c.set_threads(0), Error::InvalidArgument { .. }, "0 threads");
                    ensure_eq!(c.threads(), threads, "threads after set_threads(0)");
                }
            }
        }
        Ok(())
    }

    /// Opening the file as another element type is refused; untyped opens work.
    pub fn wrong_dtype<U: Sample>(&self, path: &Path) -> TestResult {
        let nch = self.model.channels.len();
        if self.image {
            let r = Image::<U>::open_read_only(path);
            if nch == 0 {
                ensure_eq!(
                    r.ctx("empty image as another type")?.num_channels(),
                    0,
                    "empty"
                );
            } else {
                match r {
                    Err(Error::ChannelDtypeMismatch {
                        expected, found, ..
                    }) => {
                        ensure_eq!((expected, found), (U::DTYPE, T::DTYPE), "dtype mismatch");
                    }
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "opening a {} image as {}: {:?}",
                            T::DTYPE,
                            U::DTYPE,
                            other.map(|_| ())
                        )));
                    }
                }
            }
            // A channel-file open of an image works exactly when it has one channel.
            let single = Channel::<T>::open_read_only(path);
            if nch == 1 {
                let c = single.ctx("one-channel image as a channel")?;
                check_channel(&c, &self.model.channels[0], &self.model, "image as channel")?;
            } else {
                expect_err!(
                    single,
                    Error::InvalidArgument { .. },
                    "{nch} channels as one"
                );
            }
        } else {
            match Channel::<U>::open_read_only(path) {
                Err(Error::DtypeMismatch { expected, found }) => {
                    ensure_eq!((expected, found), (U::DTYPE, T::DTYPE), "dtype mismatch");
                }
                other => {
                    return Err(TestCaseError::fail(format!(
                        "opening a {} channel as {}: {:?}",
                        T::DTYPE,
                        U::DTYPE,
                        other.map(|_| ())
                    )));
                }
            }
            let any = AnyChannel::open_read_only(path).ctx("untyped open")?;
            ensure_eq!(any.dtype(), T::DTYPE, "untyped open");
            let mut out = vec![0u8; self.model.width * self.model.height * self.model.size];
            any.decompress_into_bytes(&mut out).ctx("untyped read")?;
            same_bytes(
                &out,
                &self.model.channels[0].chunks.concat(),
                "untyped read",
            )?;
        }
        Ok(())
    }
}
