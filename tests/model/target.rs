//! The system under test (an image or a standalone channel) and the checks that compare
//! everything it shows with the model.

use std::path::Path;

use compressed_image::{AutoCompact, Channel, Durability, Error, Image, Sample, Stats, inspect};
use proptest::prelude::*;

use crate::Ctx;
use crate::common::format::{REGION_START, align64};
use crate::common::rng::Rng;
use crate::data::{Elem, MChan, Model, as_bytes, sums, zeroed};
use crate::{TestResult, same_bytes};

/// An image or a standalone channel.
pub enum Target<T: Sample> {
    Image(Image<T>),
    Channel(Channel<T>),
}

impl<T: Sample> Target<T> {
    pub fn channel(&self, pos: usize) -> compressed_image::Result<Channel<T>> {
        match self {
            Target::Image(i) => i.channel(pos),
            Target::Channel(c) => {
                assert_eq!(pos, 0, "a channel file has one channel");
                Ok(c.clone())
            }
        }
    }
    pub fn channels(&self) -> Vec<Channel<T>> {
        match self {
            Target::Image(i) => i.channels().unwrap(),
            Target::Channel(c) => vec![c.clone()],
        }
    }
    pub fn stats(&self) -> compressed_image::Result<Stats> {
        match self {
            Target::Image(i) => i.stats(),
            Target::Channel(c) => c.stats(),
        }
    }
    pub fn verify(&self) -> compressed_image::Result<compressed_image::Verification> {
        match self {
            Target::Image(i) => i.verify(),
            Target::Channel(c) => c.verify(),
        }
    }
    pub fn compact(&self) -> compressed_image::Result<compressed_image::Compaction> {
        match self {
            Target::Image(i) => i.compact(),
            Target::Channel(c) => c.compact(),
        }
    }
    pub fn sync(&self) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.sync(),
            Target::Channel(c) => c.sync(),
        }
    }
    pub fn refresh(&self) -> compressed_image::Result<bool> {
        match self {
            Target::Image(i) => i.refresh(),
            Target::Channel(c) => c.refresh(),
        }
    }
    pub fn save_as(&self, path: &Path) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.save_as(path),
            Target::Channel(c) => c.save_as(path),
        }
    }
    pub fn set_durability(&self, d: Durability) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.set_durability(d),
            Target::Channel(c) => c.set_durability(d),
        }
    }
    pub fn set_auto_compact(&self, a: Option<AutoCompact>) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.set_auto_compact(a),
            Target::Channel(c) => c.set_auto_compact(a),
        }
    }
    pub fn set_threads(&mut self, n: usize) -> compressed_image::Result {
        match self {
            Target::Image(i) => i.set_threads(n),
            Target::Channel(c) => c.set_threads(n),
        }
    }
    pub fn path(&self) -> Option<&Path> {
        match self {
            Target::Image(i) => i.path(),
            Target::Channel(c) => c.path(),
        }
    }
    pub fn open(path: &Path, image: bool, rw: bool) -> compressed_image::Result<Target<T>> {
        Ok(match (image, rw) {
            (true, true) => Target::Image(Image::open(path)?),
            (true, false) => Target::Image(Image::open_read_only(path)?),
            (false, true) => Target::Channel(Channel::open(path)?),
            (false, false) => Target::Channel(Channel::open_read_only(path)?),
        })
    }
}

/// What a target is compared with.
pub struct View<'a, T: Sample> {
    pub target: &'a Target<T>,
    pub model: &'a Model,
    /// Channel handles obtained earlier, by model uid (removed ones included).
    pub held: &'a [(u64, Channel<T>)],
    pub writable: bool,
    /// The file whose newest commit `inspect` must describe as the model (a writer's file).
    pub inspect: Option<&'a Path>,
    /// A batch of this thread is open: skip writes through removed handles.
    pub in_batch: bool,
    /// A directory for files that must not come into existence.
    pub scratch: &'a Path,
}

pub fn check_channel<T: Elem>(c: &Channel<T>, mc: &MChan, m: &Model, what: &str) -> TestResult {
    let size = m.size;
    let n = m.height.div_ceil(mc.rows);
    let chunk_bytes = mc.rows * m.width * size;
    ensure_eq!(c.dtype(), T::DTYPE, "{what}");
    ensure_eq!(c.width(), m.width, "{what}");
    ensure_eq!(c.height(), m.height, "{what}");
    ensure_eq!(c.num_chunks(), n, "{what}");
    ensure_eq!(c.chunk_size(), chunk_bytes, "{what}");
    ensure_eq!(c.chunk_elems(), mc.rows * m.width, "{what}");
    ensure_eq!(c.uncompressed_size(), m.width * m.height, "{what}");
    let g = c.geometry();
    ensure_eq!(g.rows_per_chunk(), mc.rows, "{what}");
    ensure_eq!(g.elem_size(), size, "{what}");
    ensure_eq!(c.codec(), mc.settings.codec, "{what}");
    ensure_eq!(c.level(), mc.settings.level, "{what}");
    let block = mc.settings.block_size.min(chunk_bytes);
    let block = if block > size {
        block / size * size
    } else {
        block
    };
    ensure_eq!(c.block_size(), block, "{what}");
    ensure_eq!(c.settings(), mc.settings.chunk_size(chunk_bytes), "{what}");
    let mut whole = Vec::with_capacity(m.width * m.height * size);
    for i in 0..n {
        let elems = mc.chunks[i].len() / size;
        ensure_eq!(c.chunk_elems_at(i).ctx(what)?, elems, "{what} chunk {i}");
        ensure_eq!(
            c.chunk_size_at(i).ctx(what)?,
            elems * size,
            "{what} chunk {i}"
        );
        ensure_eq!(c.is_lazy(i).ctx(what)?, mc.lazy[i], "{what}: is_lazy({i})");
        let got = c.get_chunk_vec(i).ctx(what)?;
        same_bytes(
            as_bytes(&got),
            &mc.chunks[i],
            &format!("{what}: get_chunk({i})"),
        )?;
        whole.extend_from_slice(&mc.chunks[i]);
    }
    expect_err!(c.chunk_elems_at(n), Error::IndexOutOfRange { .. }, "{what}");
    let stored = c.compressed_bytes().ctx(what)?;
    ensure!(
        sums(0, &mc.extra).contains(&stored),
        "{what}: compressed_bytes is {stored}, expected a total of {:?} (lazy {:?}; a lazy \
         chunk counts {size} bytes, a blob its length single- or multi-threaded)",
        mc.extra,
        mc.lazy
    );
    let all = c.get_decompressed().ctx(what)?;
    same_bytes(as_bytes(&all), &whole, &format!("{what}: get_decompressed"))?;
    let mut rows = vec![zeroed::<T>(); m.width * m.height];
    c.read_rows(0, &mut rows).ctx(what)?;
    same_bytes(as_bytes(&rows), &whole, &format!("{what}: read_rows"))?;
    // A few row windows, chosen by the contents (so a replay reads the same ones).
    let row_bytes = m.width * size;
    let mut rng = Rng::new(
        mc.uid
            ^ mc.chunks
                .iter()
                .map(|c| u64::from(c[0]) + c.len() as u64)
                .sum::<u64>(),
    );
    for _ in 0..4 {
        let first = rng.below(m.height);
        let count = 1 + rng.below(m.height - first);
        let mut out = vec![zeroed::<T>(); count * m.width];
        c.read_rows(first, &mut out).ctx(what)?;
        same_bytes(
            as_bytes(&out),
            &whole[first * row_bytes..(first + count) * row_bytes],
            &format!("{what}: read_rows({first}, {count} rows)"),
        )?;
    }
    let mut visited = 0;
    let mut problem = None;
    c.for_each_chunk(|chunk| {
        let i = chunk.index();
        let last = chunk.data().len() - 1;
        if i != visited
            || as_bytes(chunk.data()) != mc.chunks[i].as_slice()
            || (chunk.x(0), chunk.y(0)) != (0, i * mc.rows)
            || (chunk.x(last), chunk.y(last)) != (last % m.width, i * mc.rows + last / m.width)
        {
            problem.get_or_insert(format!("for_each_chunk: chunk {i} (visit {visited})"));
        }
        visited += 1;
        Ok(())
    })
    .ctx(what)?;
    if let Some(p) = problem {
        return Err(TestCaseError::fail(format!("{what}: {p}")));
    }
    ensure_eq!(visited, n, "{what}: for_each_chunk visits");
    Ok(())
}

/// A handle whose channel was removed: every call says so and nothing is written.
pub fn check_removed<T: Elem>(
    c: &Channel<T>,
    writable: bool,
    in_batch: bool,
    scratch: &Path,
) -> TestResult {
    let what = "removed channel handle";
    expect_err!(c.is_lazy(0), Error::ChannelRemoved, "{what}");
    expect_err!(c.is_lazy(0), Error::ChannelRemoved, "{what}");
    expect_err!(c.is_lazy(0), Error::ChannelRemoved, "{what}");
    expect_err!(c.compressed_bytes(), Error::ChannelRemoved, "{what}");
    expect_err!(c.get_decompressed(), Error::ChannelRemoved, "{what}");
    expect_err!(
        c.get_chunk(0, &mut [zeroed::<T>()]),
        Error::ChannelRemoved,
        "{what}"
    );
    expect_err!(
        c.for_each_chunk(|_| Ok(())),
        Error::ChannelRemoved,
        "{what}"
    );
    let copy = scratch.join("removed.cimg");
    expect_err!(c.save_as(&copy), Error::ChannelRemoved, "{what}");
    ensure!(!copy.exists(), "{what}: save_as made a file");
    if !writable {
        expect_err!(c.set_chunk(0, &[zeroed::<T>()]), Error::ReadOnly, "{what}");
    } else if !in_batch {
        expect_err!(
            c.set_chunk(0, &[zeroed::<T>()]),
            Error::ChannelRemoved,
            "{what}"
        );
        expect_err!(c.update_chunks(|_| Ok(())), Error::ChannelRemoved, "{what}");
        let mut batch = c.batch().ctx(what)?;
        expect_err!(
            batch.set_chunk(0, &[zeroed::<T>()]),
            Error::ChannelRemoved,
            "{what}"
        );
    }
    Ok(())
}

pub fn check_view<T: Elem>(v: &View<'_, T>, what: &str) -> TestResult {
    let m = v.model;
    let chans = v.target.channels();
    ensure_eq!(chans.len(), m.channels.len(), "{what}: channel count");
    for (pos, (c, mc)) in chans.iter().zip(&m.channels).enumerate() {
        ensure_eq!(c.is_writable(), v.writable, "{what}");
        check_channel(c, mc, m, &format!("{what}: channel {pos}"))?;
    }
    for (uid, c) in v.held {
        match m.find(*uid) {
            Some(mc) => {
                let what = format!("{what}: held handle of channel uid {uid}");
                let all = c.get_decompressed().ctx(&what)?;
                same_bytes(as_bytes(&all), &mc.chunks.concat(), &what)?;
                for i in 0..mc.lazy.len() {
                    ensure_eq!(c.is_lazy(i).ctx(&what)?, mc.lazy[i], "{what}: chunk {i}");
                }
                let stored = c.compressed_bytes().ctx(&what)?;
                ensure!(
                    sums(0, &mc.extra).contains(&stored),
                    "{what}: compressed_bytes {stored}"
                );
            }
            None => check_removed(c, v.writable, v.in_batch, v.scratch)?,
        }
    }
    if let Target::Image(img) = v.target {
        check_image(img, m, what)?;
    }
    // Space accounting (SPEC §12) and integrity.
    let s = v.target.stats().ctx(what)?;
    let total: usize = m.channels.iter().map(|c| c.lazy.len()).sum();
    let lazy: usize = m
        .channels
        .iter()
        .map(|c| c.lazy.iter().filter(|l| **l).count())
        .sum();
    let fill_bytes: usize = m
        .channels
        .iter()
        .flat_map(|c| c.lazy.iter().zip(&c.chunks))
        .filter(|(l, _)| **l)
        .map(|(_, c)| c.len())
        .sum();
    ensure_eq!(
        s.live_bytes + s.dead_bytes,
        (align64(s.committed_end as usize) - REGION_START) as u64,
        "{what}: stats {s:?}"
    );
    ensure_eq!(s.blob_chunks + s.fill_chunks, total, "{what}: stats {s:?}");
    ensure_eq!(s.fill_chunks, lazy, "{what}: stats {s:?}");
    ensure_eq!(s.fill_bytes, fill_bytes as u64, "{what}: stats {s:?}");
    ensure!(
        m.live_bytes().contains(&(s.live_bytes as usize)),
        "{what}: live bytes {}, expected one of {:?}",
        s.live_bytes,
        m.live_bytes()
    );
    ensure!(s.file_len >= s.committed_end, "{what}: stats {s:?}");
    let report = v.target.verify().ctx(what)?;
    ensure!(report.is_ok(), "{what}: verify found {:?}", report.problems);
    ensure_eq!(report.generation, s.generation, "{what}");
    ensure!(
        report.records > total - lazy,
        "{what}: verify checked {} records for {} blobs",
        report.records,
        total - lazy
    );
    if let Some(path) = v.inspect {
        let info = inspect(path).ctx(what)?;
        ensure_eq!(info.width, m.width, "{what}: inspect");
        ensure_eq!(info.height, m.height, "{what}: inspect");
        ensure_eq!(info.has_names, m.names_present, "{what}: inspect");
        ensure_eq!(info.channels.len(), m.channels.len(), "{what}: inspect");
        for (ci, mc) in info.channels.iter().zip(&m.channels) {
            ensure_eq!(ci.name, mc.name, "{what}: inspect");
            ensure_eq!(ci.dtype, T::DTYPE, "{what}: inspect");
            ensure_eq!(ci.codec, mc.settings.codec, "{what}: inspect");
            ensure_eq!(ci.level, mc.settings.level, "{what}: inspect");
            ensure_eq!(ci.geometry.rows_per_chunk(), mc.rows, "{what}: inspect");
            ensure_eq!(ci.geometry.width(), m.width, "{what}: inspect");
            ensure_eq!(ci.geometry.height(), m.height, "{what}: inspect");
        }
        ensure!(info.generation >= s.generation, "{what}: inspect {info:?}");
    }
    Ok(())
}

pub fn check_image<T: Elem>(img: &Image<T>, m: &Model, what: &str) -> TestResult {
    let n = m.channels.len();
    ensure_eq!(img.width(), m.width, "{what}");
    ensure_eq!(img.height(), m.height, "{what}");
    ensure_eq!(img.num_channels(), n, "{what}");
    let names: Vec<String> = if m.names_present {
        m.channels.iter().map(|c| c.name.clone()).collect()
    } else {
        Vec::new()
    };
    ensure_eq!(img.channel_names(), names, "{what}: names");
    let meta = img.metadata();
    ensure_eq!(meta, m.meta, "{what}: metadata");
    ensure_eq!(
        meta.to_string(),
        m.meta.to_string(),
        "{what}: metadata text"
    );
    for name in &names {
        let first = m.channels.iter().position(|c| &c.name == name);
        ensure_eq!(
            img.channel_index(name).ok(),
            first,
            "{what}: channel_index({name:?})"
        );
    }
    if !m.names_present {
        expect_err!(
            img.channel_index(""),
            Error::UnknownChannelName(_),
            "{what}"
        );
    }
    expect_err!(
        img.channel_index("\u{1}absent"),
        Error::UnknownChannelName(_),
        "{what}"
    );
    expect_err!(img.channel(n), Error::IndexOutOfRange { .. }, "{what}");
    let all = img.get_decompressed().ctx(what)?;
    ensure_eq!(all.len(), n, "{what}");
    for (pos, (got, mc)) in all.iter().zip(&m.channels).enumerate() {
        same_bytes(
            as_bytes(got),
            &mc.chunks.concat(),
            &format!("{what}: image get_decompressed channel {pos}"),
        )?;
    }
    let raw: usize = n * m.width * m.height * m.size;
    // Each channel's compressed_bytes was checked against the model above.
    let stored = img
        .channels()
        .unwrap()
        .iter()
        .map(|c| c.compressed_bytes())
        .sum::<compressed_image::Result<usize>>()
        .ctx(what)?;
    let ratio = if stored == 0 {
        1.0
    } else {
        raw as f64 / stored as f64
    };
    ensure_eq!(img.compression_ratio().ctx(what)?, ratio, "{what}");

    let common = |values: Vec<usize>| match values.split_first() {
        None => Some(0),
        Some((first, rest)) => rest.iter().all(|v| v == first).then_some(*first),
    };
    let chunk_sizes = m
        .channels
        .iter()
        .map(|c| c.rows * m.width * m.size)
        .collect();
    ensure_eq!(
        img.chunk_size().ok(),
        common(chunk_sizes),
        "{what}: chunk_size"
    );
    let blocks = img
        .channels()
        .unwrap()
        .iter()
        .map(|c| c.block_size())
        .collect::<Vec<_>>();
    ensure_eq!(img.block_size().ok(), common(blocks), "{what}: block_size");
    Ok(())
}
