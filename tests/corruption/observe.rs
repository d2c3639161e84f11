//! Opening a damaged file and reading everything through the API, and sorting what was
//! seen into the accepted outcomes (the newest commit, the previous one, a typed error).

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use compressed_image::{Channel, Error, Image, Result, Sample};
use serde_json::{Value, json};

use crate::common::model::ChannelModel;
use crate::common::panic_message;
use crate::fixture::{Contents, FileKind, Fixture, bytes_of, inner_rows, ramp16};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// One channel as read through the API.
pub struct ObsChan {
    pub width: usize,
    pub height: usize,
    pub chunks: Vec<Result<Vec<u8>>>,
    pub whole: Result<Vec<u8>>,
    pub rows: Result<Vec<u8>>,
    pub lazy: Vec<bool>,
}

/// A file as read through the API after a successful open.
pub struct Obs {
    pub generation: u64,
    pub names: Vec<String>,
    pub metadata: Value,
    pub channels: Vec<ObsChan>,
    /// `Image::get_decompressed` (images only).
    pub image_whole: Option<Result<Vec<Vec<u8>>>>,
    pub problems: Vec<String>,
    /// `Verification::damaged_chunks`.
    pub damaged_chunks: Vec<(usize, usize)>,
    pub verify_generation: u64,
}

pub enum Observed {
    OpenFailed(Error),
    Opened(Obs),
}

/// Read every chunk, the whole channel and all but the first and last rows.
pub fn observe_channel<T: Sample>(c: &Channel<T>) -> Result<ObsChan> {
    let n = c.num_chunks();
    let (width, height) = (c.width(), c.height());
    let mut rows = vec![<T as bytemuck::Zeroable>::zeroed(); width * (height - 2)];
    let rows = c.read_rows(1, &mut rows).map(|()| bytes_of(&rows));
    Ok(ObsChan {
        width,
        height,
        chunks: (0..n)
            .map(|i| c.get_chunk_vec(i).map(|v| bytes_of(&v)))
            .collect(),
        whole: c.get_decompressed().map(|v| bytes_of(&v)),
        rows,
        lazy: (0..n).map(|i| c.is_lazy(i)).collect::<Result<_>>()?,
    })
}

pub fn observe_image<T: Sample>(img: &Image<T>) -> Result<Obs> {
    let verification = img.verify()?;
    Ok(Obs {
        generation: img.stats()?.generation,
        names: img.channel_names(),
        metadata: img.metadata(),
        channels: img
            .channels()
            .unwrap()
            .iter()
            .map(observe_channel)
            .collect::<Result<_>>()?,
        image_whole: Some(
            img.get_decompressed()
                .map(|v| v.iter().map(|c| bytes_of(c)).collect()),
        ),
        problems: verification.problems,
        damaged_chunks: verification.damaged_chunks,
        verify_generation: verification.generation,
    })
}

pub fn observe_single<T: Sample>(c: &Channel<T>) -> Result<Obs> {
    let verification = c.verify()?;
    Ok(Obs {
        generation: c.stats()?.generation,
        names: vec![],
        metadata: Value::Null,
        channels: vec![observe_channel(c)?],
        image_whole: None,
        problems: verification.problems,
        damaged_chunks: verification.damaged_chunks,
        verify_generation: verification.generation,
    })
}

/// Open `path` and read everything. `Err` is a test failure: a panic, or an error from a
/// call that cannot fail on an open file (stats, verify, accessors). Read-only handles
/// read with one thread; read-write handles keep the default count, so whole-channel reads
/// go through the parallel path.
pub fn open_and_read(
    path: &Path,
    kind: FileKind,
    access: Access,
) -> std::result::Result<Observed, String> {
    let run = || -> std::result::Result<Observed, String> {
        let read = |r: Result<Obs>| r.map(Observed::Opened).map_err(|e| format!("{e:?}"));
        let one_thread = access == Access::ReadOnly;
        match kind {
            FileKind::ImageF32 => {
                let opened = match access {
                    Access::ReadOnly => Image::<f32>::open_read_only(path),
                    Access::ReadWrite => Image::<f32>::open(path),
                };
                match opened {
                    Ok(img) => {
                        if one_thread {
                            img.set_threads(1).map_err(|e| format!("{e:?}"))?;
                        }
                        read(observe_image(&img))
                    }
                    Err(e) => Ok(Observed::OpenFailed(e)),
                }
            }
            FileKind::ChannelU16 => {
                let opened = match access {
                    Access::ReadOnly => Channel::<u16>::open_read_only(path),
                    Access::ReadWrite => Channel::<u16>::open(path),
                };
                match opened {
                    Ok(c) => {
                        if one_thread {
                            c.set_threads(1).map_err(|e| format!("{e:?}"))?;
                        }
                        read(observe_single(&c))
                    }
                    Err(e) => Ok(Observed::OpenFailed(e)),
                }
            }
        }
    };
    panic::catch_unwind(AssertUnwindSafe(run))
        .unwrap_or_else(|p| Err(format!("PANIC: {}", panic_message(&*p))))
}

/// Open read-write and commit one change: new metadata for an image, a new chunk 0 for a
/// channel. Returns whether the open succeeded.
pub fn continue_writing(path: &Path, kind: FileKind) -> std::result::Result<bool, String> {
    let run = || -> std::result::Result<bool, String> {
        match kind {
            FileKind::ImageF32 => match Image::<f32>::open(path) {
                Ok(img) => img
                    .set_metadata(continued_metadata())
                    .map(|()| true)
                    .map_err(|e| format!("commit after open: {e:?}")),
                Err(_) => Ok(false),
            },
            FileKind::ChannelU16 => match Channel::<u16>::open(path) {
                Ok(c) => c
                    .set_chunk(0, &continued_chunk(c.chunk_elems_at(0).unwrap_or(0)))
                    .map(|()| true)
                    .map_err(|e| format!("commit after open: {e:?}")),
                Err(_) => Ok(false),
            },
        }
    };
    panic::catch_unwind(AssertUnwindSafe(run))
        .unwrap_or_else(|p| Err(format!("PANIC: {}", panic_message(&*p))))
}

pub fn continued_metadata() -> Value {
    json!({"continued": true})
}

pub fn continued_chunk(n: usize) -> Vec<u16> {
    ramp16(n, 777)
}

/// `expected` after [`continue_writing`].
pub fn continued(expected: &Contents, kind: FileKind) -> Contents {
    let mut c = expected.clone();
    match kind {
        FileKind::ImageF32 => c.metadata = continued_metadata(),
        FileKind::ChannelU16 => {
            let n = c.channels[0].chunks[0].len() / 2;
            c.channels[0].set(0, &bytes_of(&continued_chunk(n)));
        }
    }
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// (a) the newest commit, every read exact.
    Newest,
    /// (a) the newest commit; some chunk reads fail with a typed error, reported by verify.
    NewestBadChunk,
    /// (b) the previous commit, every read exact.
    Previous,
    /// (b) the previous commit with unreadable chunks (never expected from one flip).
    PreviousBadChunk,
    /// (c) open fails with `Corrupted`.
    Corrupted,
    /// (c) open fails with `NotACompressedImage`.
    NotACompressedImage,
    /// (c) open fails with `UnsupportedVersion`.
    UnsupportedVersion,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Newest,
        Outcome::NewestBadChunk,
        Outcome::Previous,
        Outcome::PreviousBadChunk,
        Outcome::Corrupted,
        Outcome::NotACompressedImage,
        Outcome::UnsupportedVersion,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Newest => "newest",
            Outcome::NewestBadChunk => "newest+bad chunk",
            Outcome::Previous => "previous",
            Outcome::PreviousBadChunk => "previous+bad chunk",
            Outcome::Corrupted => "Corrupted",
            Outcome::NotACompressedImage => "NotACImage",
            Outcome::UnsupportedVersion => "Unsupported",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Newest,
    Previous,
}

/// A chunk read error a damaged chunk may give.
pub fn chunk_error_ok(e: &Error, channel: usize, chunk: usize) -> bool {
    match e {
        Error::ChecksumMismatch {
            channel: c,
            chunk: k,
        } => (*c, *k) == (channel, chunk),
        Error::Corrupted { .. } => true,
        _ => false,
    }
}

/// Compare an observation with the expected contents (generation aside). Returns the
/// chunks whose reads failed with an acceptable error; `Err` describes a violation.
pub fn compare(o: &Obs, e: &Contents) -> std::result::Result<Vec<(usize, usize)>, String> {
    if o.names != e.names {
        return Err(format!("names {:?}, expected {:?}", o.names, e.names));
    }
    if o.metadata != e.metadata {
        return Err(format!("metadata {}, expected {}", o.metadata, e.metadata));
    }
    if o.channels.len() != e.channels.len() {
        return Err(format!("{} channels", o.channels.len()));
    }
    let mut bad = Vec::new();
    for (pos, (oc, ec)) in o.channels.iter().zip(&e.channels).enumerate() {
        if (oc.width, oc.height) != (ec.width, ec.height) || oc.lazy != ec.lazy {
            return Err(format!(
                "channel {pos}: {}x{} lazy {:?}, expected {}x{} lazy {:?}",
                oc.width, oc.height, oc.lazy, ec.width, ec.height, ec.lazy
            ));
        }
        for (i, (got, want)) in oc.chunks.iter().zip(&ec.chunks).enumerate() {
            match got {
                Ok(b) if b == want => {}
                Ok(_) => {
                    return Err(format!(
                        "channel {pos} chunk {i}: WRONG BITS returned as Ok"
                    ));
                }
                Err(err) if chunk_error_ok(err, pos, i) => bad.push((pos, i)),
                Err(err) => return Err(format!("channel {pos} chunk {i}: error {err:?}")),
            }
        }
        let channel_bad = bad.iter().any(|&(p, _)| p == pos);
        for (what, got, want) in [
            ("get_decompressed", &oc.whole, ec.whole()),
            ("read_rows", &oc.rows, inner_rows(ec)),
        ] {
            match got {
                Ok(b) if *b == want => {}
                Ok(_) => return Err(format!("channel {pos} {what}: WRONG BITS returned as Ok")),
                Err(err)
                    if channel_bad
                        && matches!(
                            err,
                            Error::ChecksumMismatch { .. } | Error::Corrupted { .. }
                        ) => {}
                Err(err) => return Err(format!("channel {pos} {what}: error {err:?}")),
            }
        }
    }
    match &o.image_whole {
        None => {}
        Some(Ok(all)) => {
            let want: Vec<Vec<u8>> = e.channels.iter().map(ChannelModel::whole).collect();
            if *all != want {
                return Err("Image::get_decompressed: WRONG BITS returned as Ok".into());
            }
        }
        Some(Err(Error::ChecksumMismatch { .. } | Error::Corrupted { .. })) if !bad.is_empty() => {}
        Some(Err(err)) => return Err(format!("Image::get_decompressed: error {err:?}")),
    }
    if o.problems.is_empty() != bad.is_empty() {
        return Err(format!(
            "verify() reports {:?} but the unreadable chunks are {bad:?}",
            o.problems
        ));
    }
    for (pos, i) in &bad {
        let needle = format!("channel {pos} chunk {i}");
        if !o.problems.iter().any(|p| p.contains(&needle)) {
            return Err(format!("verify() does not name {needle}: {:?}", o.problems));
        }
    }
    if o.damaged_chunks != bad {
        return Err(format!(
            "verify() lists damaged chunks {:?} but the unreadable chunks are {bad:?}",
            o.damaged_chunks
        ));
    }
    if o.verify_generation != o.generation {
        return Err("verify() checked another generation".into());
    }
    Ok(bad)
}

/// Which commit an open at `generation` chose. A read-write open makes the chosen commit
/// durable and, when its slot has `durable_end < committed_end`, writes a marker slot of
/// the next generation with the same catalog (SPEC §10, "Opening for writing").
pub fn at_commit(fx: &Fixture, generation: u64, access: Access) -> Option<Which> {
    [(Which::Newest, &fx.newest), (Which::Previous, &fx.previous)]
        .into_iter()
        .find(|(_, c)| {
            generation == c.generation
                || (access == Access::ReadWrite
                    && c.durable_end < c.committed_end
                    && generation == c.generation + 1)
        })
        .map(|(w, _)| w)
}

/// Sort an observation into one of the accepted outcomes, or describe the violation.
pub fn classify(
    observed: &std::result::Result<Observed, String>,
    fx: &Fixture,
    access: Access,
) -> std::result::Result<Outcome, String> {
    let o = match observed {
        Err(msg) => return Err(msg.clone()),
        Ok(Observed::OpenFailed(e)) => {
            return match e {
                Error::Corrupted { .. } => Ok(Outcome::Corrupted),
                Error::NotACompressedImage => Ok(Outcome::NotACompressedImage),
                Error::UnsupportedVersion { .. } => Ok(Outcome::UnsupportedVersion),
                other => Err(format!("open failed with an unexpected error: {other:?}")),
            };
        }
        Ok(Observed::Opened(o)) => o,
    };
    let Some(which) = at_commit(fx, o.generation, access) else {
        return Err(format!(
            "opened at generation {}, neither the newest ({}) nor the previous ({})",
            o.generation, fx.newest.generation, fx.previous.generation
        ));
    };
    let bad = compare(o, fx.expect(which)).map_err(|m| format!("at the {which:?} commit: {m}"))?;
    Ok(match (which, bad.is_empty()) {
        (Which::Newest, true) => Outcome::Newest,
        (Which::Newest, false) => Outcome::NewestBadChunk,
        (Which::Previous, true) => Outcome::Previous,
        (Which::Previous, false) => Outcome::PreviousBadChunk,
    })
}
