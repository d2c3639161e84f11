//! Damaged files: bit flips, truncations, junk after the end and forged structures never
//! make the library panic, abort, fault or return wrong pixels. Two small but rich files
//! are built through the public API (an `Image<f32>` with three named channels, metadata,
//! blobs at levels 9 and 0, fill chunks with NaN payloads and −0.0, default chunks, a removed
//! channel and dead space; a `Channel<u16>` file), with both slots holding valid commits of
//! different generations. The expected contents of the newest commit and of the previous one
//! (in the other slot) come from an independent model of what was written. A small parser
//! written from `format/SPEC.md` (slots §3, records §4, catalog §5, tables §6) locates every
//! structure, so that each sweep targets exact bytes. After each damage the file is opened
//! (read-only; for a sample also read-write, followed by a commit) and read completely
//! (`get_chunk` of every chunk, `get_decompressed`, `read_rows`, names, metadata,
//! `verify()`, `inspect()`). Accepted outcomes: (a) the newest commit, bit-exact, except
//! chunks whose read fails with `ChecksumMismatch`/`Corrupted` and which `verify()` reports;
//! (b) the previous commit, bit-exact; (c) a typed open error (`Corrupted`,
//! `NotACompressedImage`, `UnsupportedVersion`). Where the specification determines the
//! outcome (e.g. a flip in the newest slot must fall back), the test requires that outcome.
//! Forged files (every CRC recomputed after a hostile edit of a slot, the catalog, a table
//! entry or a blosc2 header) must be refused with typed errors. Each sweep prints its
//! figures. The default run samples blob payloads, padding and dead space; `CIMG_LONG=1`
//! flips every bit of both files and truncates the larger one to every length too.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use compressed_image::{Channel, Codec, Error, Image, Result, Sample, Settings, inspect};
use serde_json::{Value, json};

#[macro_use]
mod common;

use common::child::{child_command_in_shell, child_role, protocol_line};
use common::format::{
    Commit, Kind, LAST_ALIGNED, MAGIC, REGION_START, Rec, SLOT_CRC_AT, SLOT_LEN, SLOT_PAGE,
    align64, crc32, le32, le64, parse_commit, put16, put32, put64,
};
use common::model::ChannelModel;
use common::rng::Rng;
use common::{long_run, panic_message};

// ---------------------------------------------------------------------------------------
// Expected contents: an independent model of what was written
// ---------------------------------------------------------------------------------------

/// Bytes of the rows `read_rows` is asked for: all but the first and the last.
fn inner_rows(c: &ChannelModel) -> Vec<u8> {
    let row = c.width * c.elem;
    c.whole()[row..(c.height - 1) * row].to_vec()
}

/// Everything observable about one commit.
#[derive(Debug, Clone, PartialEq)]
struct Contents {
    generation: u64,
    names: Vec<String>,
    metadata: Value,
    channels: Vec<ChannelModel>,
}

/// How a fixture file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// `Image<f32>` with several channels.
    ImageF32,
    /// `Channel<u16>`, a single-channel file.
    ChannelU16,
}

/// A file with two valid commits in its slots, and what each holds.
struct Fixture {
    name: &'static str,
    kind: FileKind,
    bytes: Vec<u8>,
    newest: Commit,
    previous: Commit,
    expect_newest: Contents,
    expect_previous: Contents,
    dir: tempfile::TempDir,
}

/// Which commits reference a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sharing {
    Newest,
    Previous,
    Both,
}

impl Fixture {
    fn expect(&self, which: Which) -> &Contents {
        match which {
            Which::Newest => &self.expect_newest,
            Which::Previous => &self.expect_previous,
        }
    }

    /// Every referenced record with the commits that reference it.
    fn referenced(&self) -> BTreeMap<Rec, Sharing> {
        let newest: BTreeSet<Rec> = self.newest.records().into_iter().collect();
        let previous: BTreeSet<Rec> = self.previous.records().into_iter().collect();
        newest
            .union(&previous)
            .map(|r| {
                let s = match (newest.contains(r), previous.contains(r)) {
                    (true, true) => Sharing::Both,
                    (true, false) => Sharing::Newest,
                    _ => Sharing::Previous,
                };
                (*r, s)
            })
            .collect()
    }

    /// A working copy of the pristine bytes in the fixture's directory.
    fn copy(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).expect("write working copy");
        path
    }
}

fn bytes_of<T: Sample>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// Smooth, compressible but not constant f32 data.
fn smooth(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.05 + seed).sin() * 100.0 + seed)
        .collect()
}

/// Incompressible-ish f32 data.
fn rough(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (rng.next() >> 40) as f32 / 1024.0 - 4096.0)
        .collect()
}

fn ramp16(n: usize, seed: u16) -> Vec<u16> {
    (0..n)
        .map(|i| (i as u16).wrapping_mul(31).wrapping_add(seed) % 1000)
        .collect()
}

/// The current commit as read through an open image (for checking the model).
fn image_contents(img: &Image<f32>, generation: u64) -> Contents {
    Contents {
        generation,
        names: img.channel_names(),
        metadata: img.metadata(),
        channels: img
            .channels()
            .iter()
            .map(|c| channel_data(c).expect("read the fixture"))
            .collect(),
    }
}

fn channel_data<T: Sample>(c: &Channel<T>) -> Result<ChannelModel> {
    let n = c.num_chunks()?;
    Ok(ChannelModel {
        width: c.width()?,
        height: c.height()?,
        rows: c.geometry()?.rows_per_chunk(),
        elem: size_of::<T>(),
        chunks: (0..n)
            .map(|i| c.get_chunk_vec(i).map(|v| bytes_of(&v)))
            .collect::<Result<_>>()?,
        lazy: (0..n).map(|i| c.is_lazy(i)).collect::<Result<_>>()?,
    })
}

/// Parse both slots of `bytes` and tell the newest commit from the previous one.
fn parse_both(bytes: &[u8]) -> (Commit, Commit) {
    let a = parse_commit(bytes, 0);
    let b = parse_commit(bytes, 1);
    assert_ne!(a.generation, b.generation);
    assert_ne!(
        a.catalog, b.catalog,
        "the slots must hold different commits"
    );
    if a.generation > b.generation {
        (a, b)
    } else {
        (b, a)
    }
}

/// An `Image<f32>`, 64 × 38, with three named channels (ids 0, 1, 3: channel 2 was removed),
/// metadata, zstd level-9 and lz4 level-0 blobs, blosclz with 512-byte blocks, FILL chunks
/// with NaN payloads and −0.0, DEFAULT chunks, a short last chunk, overwritten chunks (dead
/// space), a sync, then more commits that the sync did not cover.
fn image_fixture() -> Fixture {
    const W: usize = 64;
    const H: usize = 38;
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("image.cimg");
    let red_s = Settings::default()
        .codec(Codec::Zstd)
        .level(9)
        .chunk_size(W * 4 * 8);
    let green_s = Settings::default()
        .codec(Codec::Lz4)
        .level(0)
        .chunk_size(W * 4 * 8);
    let blue_s = Settings::default()
        .codec(Codec::Blosclz)
        .level(9)
        .block_size(512)
        .chunk_size(W * 4 * 16);
    let nan = f32::from_bits(0x7fc0_1234);
    let neg_nan = f32::from_bits(0xff80_0001);
    let elems = |rows: usize, i: usize| rows.min(H - i * rows) * W;

    let img = Image::<f32>::create(&path, W, H).expect("create image");
    let mut names = vec!["red".to_string()];
    let red = img
        .add_lazy_channel(-0.0, Some("red"), red_s)
        .expect("add red");
    let mut m_red = ChannelModel::lazy(W, H, 8, &(-0.0f32).to_le_bytes());
    let meta1 = json!({"camera": {"model": "X-1", "iso": 400}, "tags": ["a", "ß", "日本"], "exposure": 0.125});
    img.set_metadata(meta1.clone()).expect("metadata");
    let writes: [(usize, Vec<f32>); 3] = [
        (0, smooth(elems(8, 0), 0.0)),
        (1, vec![nan; elems(8, 1)]),
        (2, smooth(elems(8, 2), 2.0)),
    ];
    for (i, data) in writes {
        red.set_chunk(i, &data).expect("set red");
        m_red.set(i, &bytes_of(&data));
    }
    let mut green_data = rough(W * H, 7);
    green_data[2 * 8 * W..3 * 8 * W].fill(1.5); // chunk 2: FILL
    let green = img
        .add_channel(&green_data, Some("green"), green_s)
        .expect("add green");
    names.push("green".into());
    let mut m_green = ChannelModel::full(W, H, 8, &bytes_of(&green_data));
    img.add_channel(&smooth(W * H, 9.0), Some("tmp"), red_s)
        .expect("add tmp");
    img.remove_channel(2).expect("remove tmp");
    let mut blue_data = smooth(W * H, 5.0);
    blue_data[32 * W..].fill(-0.0); // chunk 2 (short, 6 rows): FILL −0.0
    let blue = img
        .add_channel(&blue_data, Some("blue"), blue_s)
        .expect("add blue");
    names.push("blue".into());
    let mut m_blue = ChannelModel::full(W, H, 16, &bytes_of(&blue_data));
    let red0 = smooth(elems(8, 0), 0.5);
    red.set_chunk(0, &red0).expect("overwrite red 0");
    m_red.set(0, &bytes_of(&red0));
    let green4 = rough(elems(8, 4), 99);
    green.set_chunk(4, &green4).expect("overwrite green 4");
    m_green.set(4, &bytes_of(&green4));
    let red3 = vec![neg_nan; elems(8, 3)];
    red.set_chunk(3, &red3).expect("red 3 fill");
    m_red.set(3, &bytes_of(&red3));
    img.sync().expect("sync");
    let previous = Contents {
        generation: 0,
        names: names.clone(),
        metadata: meta1,
        channels: vec![m_red.clone(), m_green.clone(), m_blue.clone()],
    };

    // Commits after the sync: their blobs lie past the newest slot's durable_end.
    let meta2 = json!({"camera": {"model": "X-2"}, "note": "second", "n": [1, 2, 3]});
    img.set_metadata(meta2.clone()).expect("metadata 2");
    let red2 = smooth(elems(8, 2), 3.0);
    red.set_chunk(2, &red2).expect("red 2");
    m_red.set(2, &bytes_of(&red2));
    {
        let mut batch = blue.batch().expect("batch");
        for i in 0..2 {
            let data = smooth(elems(16, i), 11.0 + i as f32);
            batch.set_chunk(i, &data).expect("batch chunk");
            m_blue.set(i, &bytes_of(&data));
        }
        batch.commit().expect("batch commit");
    }
    img.set_channel_names(&["red", "grün", ""]).expect("rename");
    let newest = Contents {
        generation: 0,
        names: vec!["red".into(), "grün".into(), String::new()],
        metadata: meta2,
        channels: vec![m_red, m_green, m_blue],
    };
    let generation = img.stats().expect("stats").generation;
    assert_eq!(
        image_contents(&img, 0),
        newest,
        "the model of the newest commit"
    );
    // The file as the writer left it, before the drop syncs and writes a marker slot.
    let bytes = fs::read(&path).expect("read fixture");
    drop((red, green, blue, img));
    finish_fixture(
        "image f32",
        FileKind::ImageF32,
        bytes,
        dir,
        generation,
        newest,
        previous,
    )
}

/// A `Channel<u16>` file, 50 × 23 in six chunks of 4 rows (the last of 3), lz4hc level 9,
/// default fill 7: blobs, a FILL of 0xFFFF, a DEFAULT chunk, dead space, a sync and commits
/// after it.
fn channel_fixture() -> Fixture {
    const W: usize = 50;
    const H: usize = 23;
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("channel.cimg");
    let s = Settings::default()
        .codec(Codec::Lz4hc)
        .level(9)
        .chunk_size(W * 2 * 4);
    let elems = |i: usize| 4usize.min(H - i * 4) * W;
    let c = Channel::<u16>::create_full(&path, W, H, 7, s).expect("create channel");
    let mut m = ChannelModel::lazy(W, H, 4, &7u16.to_le_bytes());
    let set = |i: usize, data: Vec<u16>, m: &mut ChannelModel| {
        c.set_chunk(i, &data).expect("set chunk");
        m.set(i, &bytes_of(&data));
    };
    set(0, ramp16(elems(0), 1), &mut m);
    set(1, vec![0xFFFF; elems(1)], &mut m);
    set(2, ramp16(elems(2), 2), &mut m);
    set(5, ramp16(elems(5), 5), &mut m);
    set(0, ramp16(elems(0), 3), &mut m);
    c.sync().expect("sync");
    let previous = Contents {
        generation: 0,
        names: vec![],
        metadata: Value::Null,
        channels: vec![m.clone()],
    };
    set(3, ramp16(elems(3), 4), &mut m);
    set(2, vec![0; elems(2)], &mut m);
    let newest = Contents {
        generation: 0,
        names: vec![],
        metadata: Value::Null,
        channels: vec![m],
    };
    assert_eq!(channel_data(&c).expect("read"), newest.channels[0]);
    let generation = c.stats().expect("stats").generation;
    let bytes = fs::read(&path).expect("read fixture");
    drop(c);
    finish_fixture(
        "channel u16",
        FileKind::ChannelU16,
        bytes,
        dir,
        generation,
        newest,
        previous,
    )
}

/// Parse the file, attach the slot generations to the expected contents and check that the
/// fixture opens at each commit as expected.
fn finish_fixture(
    name: &'static str,
    kind: FileKind,
    bytes: Vec<u8>,
    dir: tempfile::TempDir,
    generation: u64,
    mut expect_newest: Contents,
    mut expect_previous: Contents,
) -> Fixture {
    let (newest, previous) = parse_both(&bytes);
    assert_eq!(newest.generation, generation, "{name}: newest slot");
    assert!(previous.durable_end == previous.committed_end || previous.generation > 1);
    assert_eq!(
        newest.durable_end, previous.committed_end,
        "{name}: the newest commit follows the synced one"
    );
    expect_newest.generation = newest.generation;
    expect_previous.generation = previous.generation;
    let fx = Fixture {
        name,
        kind,
        bytes,
        newest,
        previous,
        expect_newest,
        expect_previous,
        dir,
    };
    // The parser agrees with the model: lazy chunks are FILL/DEFAULT entries, the rest blobs.
    for (which, commit) in [(Which::Newest, &fx.newest), (Which::Previous, &fx.previous)] {
        for (c, data) in commit.channels.iter().zip(&fx.expect(which).channels) {
            for (i, lazy) in data.lazy.iter().enumerate() {
                let blob = c.entries.get(i).is_some_and(|e| e.blob.is_some());
                assert_eq!(blob, !lazy, "{name}: chunk {i} of channel id {}", c.id);
            }
        }
    }
    // Pristine: the newest commit; with the newest slot zeroed: the previous one.
    let path = fx.copy("pristine.cimg", &fx.bytes);
    let outcome = classify(
        &open_and_read(&path, kind, Access::ReadOnly),
        &fx,
        Access::ReadOnly,
    );
    assert_eq!(outcome, Ok(Outcome::Newest), "{name}: pristine file");
    let mut older = fx.bytes.clone();
    let slot = fx.newest.page * SLOT_PAGE;
    older[slot..slot + SLOT_LEN].fill(0);
    let path = fx.copy("older.cimg", &older);
    let outcome = classify(
        &open_and_read(&path, kind, Access::ReadOnly),
        &fx,
        Access::ReadOnly,
    );
    assert_eq!(outcome, Ok(Outcome::Previous), "{name}: newest slot zeroed");
    fx
}

// ---------------------------------------------------------------------------------------
// Opening and reading everything
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

/// One channel as read through the API.
struct ObsChan {
    width: usize,
    height: usize,
    chunks: Vec<Result<Vec<u8>>>,
    whole: Result<Vec<u8>>,
    rows: Result<Vec<u8>>,
    lazy: Vec<bool>,
}

/// A file as read through the API after a successful open.
struct Obs {
    generation: u64,
    names: Vec<String>,
    metadata: Value,
    channels: Vec<ObsChan>,
    /// `Image::get_decompressed` (images only).
    image_whole: Option<Result<Vec<Vec<u8>>>>,
    problems: Vec<String>,
    verify_generation: u64,
}

enum Observed {
    OpenFailed(Error),
    Opened(Obs),
}

/// Read every chunk, the whole channel and all but the first and last rows.
fn observe_channel<T: Sample>(c: &Channel<T>) -> Result<ObsChan> {
    let n = c.num_chunks()?;
    let (width, height) = (c.width()?, c.height()?);
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

fn observe_image<T: Sample>(img: &Image<T>) -> Result<Obs> {
    let verification = img.verify()?;
    Ok(Obs {
        generation: img.stats()?.generation,
        names: img.channel_names(),
        metadata: img.metadata(),
        channels: img
            .channels()
            .iter()
            .map(observe_channel)
            .collect::<Result<_>>()?,
        image_whole: Some(
            img.get_decompressed()
                .map(|v| v.iter().map(|c| bytes_of(c)).collect()),
        ),
        problems: verification.problems,
        verify_generation: verification.generation,
    })
}

fn observe_single<T: Sample>(c: &Channel<T>) -> Result<Obs> {
    let verification = c.verify()?;
    Ok(Obs {
        generation: c.stats()?.generation,
        names: vec![],
        metadata: Value::Null,
        channels: vec![observe_channel(c)?],
        image_whole: None,
        problems: verification.problems,
        verify_generation: verification.generation,
    })
}

/// Open `path` and read everything. `Err` is a test failure: a panic, or an error from a
/// call that cannot fail on an open file (stats, verify, accessors). Read-only handles
/// read with one thread; read-write handles keep the default count, so whole-channel reads
/// go through the parallel path.
fn open_and_read(
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
                    Ok(mut img) => {
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
                    Ok(mut c) => {
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
fn continue_writing(path: &Path, kind: FileKind) -> std::result::Result<bool, String> {
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

fn continued_metadata() -> Value {
    json!({"continued": true})
}

fn continued_chunk(n: usize) -> Vec<u16> {
    ramp16(n, 777)
}

/// `expected` after [`continue_writing`].
fn continued(expected: &Contents, kind: FileKind) -> Contents {
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

// ---------------------------------------------------------------------------------------
// Classifying outcomes
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Outcome {
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
    const ALL: [Outcome; 7] = [
        Outcome::Newest,
        Outcome::NewestBadChunk,
        Outcome::Previous,
        Outcome::PreviousBadChunk,
        Outcome::Corrupted,
        Outcome::NotACompressedImage,
        Outcome::UnsupportedVersion,
    ];
    fn label(self) -> &'static str {
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
enum Which {
    Newest,
    Previous,
}

/// A chunk read error a damaged chunk may give.
fn chunk_error_ok(e: &Error, channel: usize, chunk: usize) -> bool {
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
fn compare(o: &Obs, e: &Contents) -> std::result::Result<Vec<(usize, usize)>, String> {
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
    if o.verify_generation != o.generation {
        return Err("verify() checked another generation".into());
    }
    Ok(bad)
}

/// Which commit an open at `generation` chose. A read-write open makes the chosen commit
/// durable and, when its slot has `durable_end < committed_end`, writes a marker slot of
/// the next generation with the same catalog (SPEC §10, "Opening for writing").
fn at_commit(fx: &Fixture, generation: u64, access: Access) -> Option<Which> {
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
fn classify(
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

// ---------------------------------------------------------------------------------------
// Sweeps: a working copy edited in place, outcomes tallied by region
// ---------------------------------------------------------------------------------------

/// Outcome counts per region, and every violation.
#[derive(Default)]
struct Tally {
    regions: Vec<String>,
    counts: BTreeMap<String, BTreeMap<Outcome, usize>>,
    trials: usize,
    rw_trials: usize,
    violations: Vec<String>,
}

impl Tally {
    fn record(&mut self, region: &str, outcome: Outcome) {
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

    fn violation(&mut self, msg: String) {
        if self.violations.len() < 200 {
            eprintln!("VIOLATION: {msg}");
        }
        self.violations.push(msg);
    }

    /// The outcome table.
    fn table(&self, title: &str, seconds: f64) -> String {
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
    fn finish(self, title: &str, started: Instant) {
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
struct Bench<'a> {
    fx: &'a Fixture,
    path: PathBuf,
    file: File,
    /// Bytes currently in the working copy.
    current_len: usize,
    tally: Tally,
    /// Every n-th trial also opens read-write, commits and reopens.
    rw_every: usize,
}

impl<'a> Bench<'a> {
    fn new(fx: &'a Fixture, name: &str, rw_every: usize) -> Bench<'a> {
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

    fn write_at(&mut self, at: usize, data: &[u8]) {
        self.file
            .seek(SeekFrom::Start(at as u64))
            .expect("seek working copy");
        self.file.write_all(data).expect("write working copy");
        self.current_len = self.current_len.max(at + data.len());
    }

    fn set_len(&mut self, len: usize) {
        self.file.set_len(len as u64).expect("set_len working copy");
        self.current_len = len;
    }

    /// Put the pristine file back.
    fn restore(&mut self) {
        self.set_len(0);
        self.write_at(0, &self.fx.bytes.clone());
    }

    /// Flip one bit, check, undo.
    fn flip(&mut self, region: &str, allowed: &[Outcome], offset: usize, bit: u8) {
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
    fn check(&mut self, region: &str, allowed: &[Outcome], label: &str, rw: bool) {
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
    fn check_read_write(&mut self, outcome: Outcome) -> std::result::Result<(), String> {
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
struct Region {
    name: String,
    ranges: Vec<Range<usize>>,
    allowed: Vec<Outcome>,
    /// Flip at most this many bits (seeded) in the default run; every bit with `CIMG_LONG`.
    sample: Option<usize>,
}

/// The regions of a fixture: slots, each referenced record's header and payload (by kind
/// and by which commits reference it), record padding and unreferenced bytes.
fn regions(fx: &Fixture) -> Vec<Region> {
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
fn bits_of(region: &Region, rng: &mut Rng) -> Vec<(usize, u8)> {
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

fn bit_flip_sweep(fx: &Fixture) {
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

// ---------------------------------------------------------------------------------------
// Truncation, junk after the end, torn tails
// ---------------------------------------------------------------------------------------

/// What a file truncated to `len` bytes must open as (SPEC §3 step 6, §9).
fn truncation_outcome(fx: &Fixture, len: usize) -> Outcome {
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
fn truncation_sweep(fx: &Fixture, lengths: &[usize]) {
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
fn junk_sweep(fx: &Fixture) {
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
fn torn_tail_sweep(fx: &Fixture) {
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

// ---------------------------------------------------------------------------------------
// Forged files: hostile edits with every CRC recomputed
// ---------------------------------------------------------------------------------------

/// A copy of a fixture being forged. Edits go to the newest commit; the `seal_*` methods
/// recompute the CRCs above an edited byte (blob → table → catalog → slot), so the
/// checksums pass and the structural checks are what must catch the edit. The copy ends at
/// the newest `committed_end`, so a read past it would leave the file.
struct Forge {
    b: Vec<u8>,
    c: Commit,
}

impl Forge {
    fn new(fx: &Fixture) -> Forge {
        Forge {
            b: fx.bytes[..fx.newest.committed_end].to_vec(),
            c: fx.newest.clone(),
        }
    }

    fn slot(&self) -> usize {
        self.c.page * SLOT_PAGE
    }

    /// CRC of the payload `r` names, written into its header; returned.
    fn seal_record(&mut self, r: Rec) -> u32 {
        let crc = crc32(&self.b[r.payload()]);
        put32(&mut self.b, r.offset + 28, crc);
        crc
    }

    fn seal_slot(&mut self) {
        let s = self.slot();
        let crc = crc32(&self.b[s..s + SLOT_CRC_AT]);
        put32(&mut self.b, s + SLOT_CRC_AT, crc);
    }

    fn seal_catalog(&mut self) {
        let crc = self.seal_record(self.c.catalog);
        let s = self.slot();
        put32(&mut self.b, s + 60, crc);
        self.seal_slot();
    }

    fn seal_table(&mut self, ch: usize) {
        let t = self.c.channels[ch].table.expect("channel with a table");
        let crc = self.seal_record(t);
        put32(&mut self.b, self.c.channels[ch].desc_at + 44, crc);
        self.seal_catalog();
    }

    fn seal_meta(&mut self) {
        let m = self.c.meta.expect("metadata record");
        let crc = self.seal_record(m);
        put32(&mut self.b, self.c.cat() + 44, crc);
        self.seal_catalog();
    }

    /// Reseal blob `i` of channel `ch` with payload length `len` (its entry, its header).
    fn seal_blob(&mut self, ch: usize, i: usize, len: usize) {
        let e = self.c.channels[ch].entries[i].clone();
        let r = Rec {
            len,
            ..e.blob.expect("blob entry")
        };
        put32(&mut self.b, r.offset + 24, len as u32);
        put32(&mut self.b, e.at + 16, len as u32);
        let crc = self.seal_record(r);
        put32(&mut self.b, e.at + 4, crc);
        self.seal_table(ch);
    }

    fn blob(&self, ch: usize, i: usize) -> Rec {
        self.c.channels[ch].entries[i].blob.expect("blob entry")
    }
}

/// What a forged file must do.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The newest commit is refused at open: with the other slot, the previous commit;
    /// alone, this open error.
    Refused(fn(&Error) -> bool),
    /// The newest commit opens; this chunk's reads fail with `Corrupted`, every other read
    /// is exact, and `verify()` names the chunk.
    ChunkRefused(usize, usize),
    /// The newest commit opens; reads are exact or fail typed; `verify()` reports an overlap.
    OverlapReported,
    /// Accepted as the newest commit, every read exact (fields a reader ignores).
    Accepted,
}

fn is_corrupted(e: &Error) -> bool {
    matches!(e, Error::Corrupted { .. })
}

fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::UnsupportedVersion { major: 2, .. })
}

/// Run one forged file, with and without the previous slot, read-only and read-write.
fn check_forged(
    fx: &Fixture,
    name: &str,
    forge: &Forge,
    expect: Expect,
) -> std::result::Result<String, String> {
    let mut notes = Vec::new();
    for wiped in [false, true] {
        let mut bytes = forge.b.clone();
        if wiped {
            let s = (1 - forge.c.page) * SLOT_PAGE;
            bytes[s..s + SLOT_LEN].fill(0);
        }
        let path = fx.copy("forged.cimg", &bytes);
        for access in [Access::ReadOnly, Access::ReadWrite] {
            let ctx = format!(
                "{name} ({access:?}, previous slot {})",
                if wiped { "wiped" } else { "intact" }
            );
            let observed = open_and_read(&path, fx.kind, access)?;
            match (expect, &observed) {
                (Expect::Refused(_), Observed::Opened(o)) if !wiped => {
                    if at_commit(fx, o.generation, access) != Some(Which::Previous) {
                        return Err(format!("{ctx}: opened at generation {}", o.generation));
                    }
                    let bad = compare(o, &fx.expect_previous).map_err(|m| format!("{ctx}: {m}"))?;
                    if !bad.is_empty() {
                        return Err(format!("{ctx}: previous commit with bad chunks {bad:?}"));
                    }
                }
                (Expect::Refused(matches), Observed::OpenFailed(e)) if wiped => {
                    if !matches(e) {
                        return Err(format!("{ctx}: wrong error {e:?}"));
                    }
                    if access == Access::ReadOnly {
                        notes.push(e.to_string());
                    }
                }
                (Expect::ChunkRefused(ch, i), Observed::Opened(o)) => {
                    if at_commit(fx, o.generation, access) != Some(Which::Newest) {
                        return Err(format!("{ctx}: opened at generation {}", o.generation));
                    }
                    let bad = compare(o, &fx.expect_newest).map_err(|m| format!("{ctx}: {m}"))?;
                    if bad != [(ch, i)] {
                        return Err(format!("{ctx}: unreadable chunks {bad:?}"));
                    }
                    match &o.channels[ch].chunks[i] {
                        Err(e @ Error::Corrupted { .. }) => {
                            if access == Access::ReadOnly && !wiped {
                                notes.push(e.to_string());
                            }
                        }
                        other => return Err(format!("{ctx}: chunk read {other:?}")),
                    }
                }
                (Expect::OverlapReported, Observed::Opened(o)) => {
                    if at_commit(fx, o.generation, access) != Some(Which::Newest) {
                        return Err(format!("{ctx}: opened at generation {}", o.generation));
                    }
                    if !o.problems.iter().any(|p| p.contains("overlaps")) {
                        return Err(format!("{ctx}: verify() reports {:?}", o.problems));
                    }
                    let mut failed = Vec::new();
                    for (pos, (oc, ec)) in o
                        .channels
                        .iter()
                        .zip(&fx.expect_newest.channels)
                        .enumerate()
                    {
                        for (k, (got, want)) in oc.chunks.iter().zip(&ec.chunks).enumerate() {
                            match got {
                                Ok(b) if b != want => {
                                    return Err(format!(
                                        "{ctx}: channel {pos} chunk {k}: WRONG BITS"
                                    ));
                                }
                                Ok(_) => {}
                                Err(e @ (Error::Corrupted { .. } | Error::Codec { .. })) => {
                                    failed.push(format!("channel {pos} chunk {k}: {e}"));
                                }
                                Err(e) => return Err(format!("{ctx}: chunk {k}: {e:?}")),
                            }
                        }
                    }
                    if access == Access::ReadOnly && !wiped {
                        notes.push(o.problems.join("; "));
                        notes.push(if failed.is_empty() {
                            "every chunk reads bit-exact".to_string()
                        } else {
                            failed.join("; ")
                        });
                    }
                }
                (Expect::Accepted, Observed::Opened(o)) => {
                    if at_commit(fx, o.generation, access) != Some(Which::Newest) {
                        return Err(format!("{ctx}: opened at generation {}", o.generation));
                    }
                    let bad = compare(o, &fx.expect_newest).map_err(|m| format!("{ctx}: {m}"))?;
                    if !bad.is_empty() {
                        return Err(format!("{ctx}: unreadable chunks {bad:?}"));
                    }
                }
                (_, Observed::OpenFailed(e)) => return Err(format!("{ctx}: open failed: {e:?}")),
                (_, Observed::Opened(o)) => {
                    return Err(format!("{ctx}: opened at generation {}", o.generation));
                }
            }
            // A read-write open may have written a marker slot: start again from the forgery.
            fs::write(&path, &bytes).expect("rewrite forged copy");
        }
    }
    notes.dedup();
    Ok(notes.join(" | "))
}

type Edit = Box<dyn Fn(&mut Forge)>;

/// Run every case; print what each produced; fail on any violation.
fn run_forgeries(fx: &Fixture, title: &str, cases: Vec<(String, Expect, Edit)>) {
    let mut report = format!(
        "\n== forged files ({title}), {}: {} cases\n",
        fx.name,
        cases.len()
    );
    let mut failures = Vec::new();
    for (name, expect, edit) in cases {
        let mut forge = Forge::new(fx);
        edit(&mut forge);
        match check_forged(fx, &name, &forge, expect) {
            Ok(note) => {
                let kind = match expect {
                    Expect::Refused(_) => "refused",
                    Expect::ChunkRefused(..) => "chunk refused",
                    Expect::OverlapReported => "overlap reported",
                    Expect::Accepted => "accepted",
                };
                let _ = writeln!(report, "  ok  {name:<58} {kind}: {note}");
            }
            Err(msg) => {
                let _ = writeln!(report, "  FAIL {name}: {msg}");
                failures.push(msg);
            }
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{title}: {failures:#?}");
}

/// The first channel whose table only the newest commit references (so that editing it
/// leaves the previous commit intact).
fn newest_only_table(fx: &Fixture) -> usize {
    let shared = fx.referenced();
    fx.newest
        .channels
        .iter()
        .position(|c| c.table.is_some_and(|t| shared[&t] == Sharing::Newest))
        .expect("a table only the newest commit references")
}

/// (channel position, chunk index).
type ChunkId = (usize, usize);

/// (channel, chunk) of blob entries of the newest commit: below durable_end, then past it.
fn blob_entries(fx: &Fixture) -> (Vec<ChunkId>, Vec<ChunkId>) {
    let mut durable = Vec::new();
    let mut unsynced = Vec::new();
    for (ch, c) in fx.newest.channels.iter().enumerate() {
        for (i, e) in c.entries.iter().enumerate() {
            if let Some(b) = e.blob {
                if b.offset < fx.newest.durable_end {
                    durable.push((ch, i));
                } else {
                    unsynced.push((ch, i));
                }
            }
        }
    }
    (durable, unsynced)
}

fn table_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let refused = Expect::Refused(is_corrupted);
    let ch = newest_only_table(fx);
    let c = &fx.newest.channels[ch];
    let i = c
        .entries
        .iter()
        .position(|e| e.blob.is_some())
        .expect("a blob entry");
    let fill = c.entries.iter().position(|e| e.kind == 2);
    let at = c.entries[i].at;
    let blob = c.entries[i].blob.expect("blob");
    let end = fx.newest.committed_end;
    let generation = fx.newest.generation;
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let mut entry = |name: String, field: usize, value: u64, width: usize| {
        let edit: Edit = Box::new(move |f: &mut Forge| {
            match width {
                1 => f.b[at + field] = value as u8,
                4 => put32(&mut f.b, at + field, value as u32),
                _ => put64(&mut f.b, at + field, value),
            }
            f.seal_table(ch);
        });
        cases.push((name, refused, edit));
    };
    for (what, offset) in [
        ("align64(committed_end)", align64(end) as u64),
        (
            "committed_end - 64 (payload runs past the end)",
            (end as u64 - 64) & !63,
        ),
        ("u64::MAX & !63 (offset + len overflows)", LAST_ALIGNED),
        ("u64::MAX - 63", u64::MAX - 63),
        ("0", 0),
        ("4096 (slot page B)", 4096),
        ("8128 (below the record region)", 8128),
        ("blob + 1 (unaligned)", blob.offset as u64 + 1),
    ] {
        entry(
            format!("ch {ch} entry {i}: blob offset {what}"),
            8,
            offset,
            8,
        );
    }
    for len in [
        0,
        31,
        u64::from(u32::MAX),
        u64::from(u32::MAX - 31),
        c.raw[i] as u64 + 33,
    ] {
        entry(format!("ch {ch} entry {i}: payload_len {len}"), 16, len, 4);
    }
    for raw in [
        0,
        c.raw[i] as u64 - 1,
        c.raw[i] as u64 + 1,
        u64::from(u32::MAX),
    ] {
        entry(format!("ch {ch} entry {i}: raw_len {raw}"), 20, raw, 4);
    }
    entry(format!("ch {ch} entry {i}: kind 3"), 0, 3, 1);
    entry(format!("ch {ch} entry {i}: flags 1"), 1, 1, 1);
    entry(format!("ch {ch} entry {i}: reserved byte 2"), 2, 1, 1);
    entry(format!("ch {ch} entry {i}: generation 0"), 24, 0, 8);
    entry(
        format!("ch {ch} entry {i}: generation = slot + 1"),
        24,
        generation + 1,
        8,
    );
    entry(
        format!("ch {ch} entry {i}: generation u64::MAX"),
        24,
        u64::MAX,
        8,
    );
    if let Some(k) = fill {
        let at = c.entries[k].at;
        let edit = |field: usize, value: u32| -> Edit {
            Box::new(move |f: &mut Forge| {
                put32(&mut f.b, at + field, value);
                f.seal_table(ch);
            })
        };
        cases.push((
            format!("ch {ch} FILL entry {k}: crc 1"),
            refused,
            edit(4, 1),
        ));
        cases.push((
            format!("ch {ch} FILL entry {k}: payload_len 8"),
            refused,
            edit(16, 8),
        ));
        cases.push((
            format!("ch {ch} FILL entry {k}: generation 0"),
            refused,
            edit(24, 0),
        ));
        let word = c.entries[k].word;
        if fx.kind == FileKind::ImageF32 {
            // f32 fill: bits above the element are ignored (SPEC §2 table).
            cases.push((
                format!("ch {ch} FILL entry {k}: bits above the element set"),
                Expect::Accepted,
                Box::new(move |f: &mut Forge| {
                    put64(&mut f.b, at + 8, word | 0xDEAD_BEEF_0000_0000);
                    f.seal_table(ch);
                }),
            ));
        }
    }
    if let Some(k) = c.entries.iter().position(|e| e.kind == 0) {
        let at = c.entries[k].at;
        cases.push((
            format!("ch {ch} DEFAULT entry {k}: a nonzero byte"),
            refused,
            Box::new(move |f: &mut Forge| {
                f.b[at + 30] = 1;
                f.seal_table(ch);
            }),
        ));
    }
    // Table header: huge entry count (aux) with the table CRC intact.
    let t = c.table.expect("table");
    cases.push((
        format!("ch {ch} table header: aux (n_chunks) u32::MAX"),
        refused,
        Box::new(move |f: &mut Forge| put32(&mut f.b, t.offset + 20, u32::MAX)),
    ));
    cases
}

/// Durable blob entries pointed at other records, and a blob extended over its neighbour.
fn overlap_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let (durable, unsynced) = blob_entries(fx);
    let referenced = fx.referenced();
    let all_blobs: Vec<(Rec, Sharing)> = referenced
        .iter()
        .filter(|(r, _)| r.kind == Kind::BLOB && r.offset < fx.newest.durable_end)
        .map(|(r, s)| (*r, *s))
        .collect();
    for &(ch, i) in &durable {
        let e = fx.newest.channels[ch].entries[i].clone();
        let own = e.blob.expect("blob");
        // Another durable record: wrong channel id or chunk index in its header. (A record
        // of the same chunk would pass: it is a valid, older version of that chunk.)
        let id = fx.newest.channels[ch].id;
        let other_chunk = |r: &Rec| {
            let h = &fx.bytes[r.header()];
            (le32(h, 16), le32(h, 20)) != (id, i as u32)
        };
        if let Some(&(other, _)) = all_blobs.iter().find(|(r, _)| other_chunk(r)) {
            cases.push((
                format!("ch {ch} entry {i} -> the blob record at {}", other.offset),
                Expect::ChunkRefused(ch, i),
                Box::new(move |f: &mut Forge| {
                    put64(&mut f.b, e.at + 8, other.offset as u64);
                    put32(&mut f.b, e.at + 16, other.len as u32);
                    put32(&mut f.b, e.at + 4, other.crc);
                    f.seal_table(ch);
                }),
            ));
        }
        // The middle of a long payload: no record header there.
        if own.len > 200 {
            let inside = align64(own.payload().start + 64);
            cases.push((
                format!("ch {ch} entry {i} -> inside its own payload ({inside})"),
                Expect::ChunkRefused(ch, i),
                Box::new(move |f: &mut Forge| {
                    put64(&mut f.b, e.at + 8, inside as u64);
                    put32(&mut f.b, e.at + 16, 64);
                    f.seal_table(ch);
                }),
            ));
        }
    }
    // A blob whose length (header, entry and blosc2 cbytes all agreeing, CRCs resealed)
    // reaches into the next referenced record.
    let newest_records: BTreeSet<Rec> = fx.newest.records().into_iter().collect();
    for &(ch, i) in durable.iter().chain(&unsynced) {
        let own = fx.newest.channels[ch].entries[i].blob.expect("blob");
        let Some(next) = newest_records.iter().find(|r| r.offset > own.offset) else {
            continue;
        };
        let len = next.offset + 8 - own.payload().start;
        if len > fx.newest.channels[ch].raw[i] + 32 {
            continue;
        }
        cases.push((
            format!(
                "ch {ch} blob {i} extended over the record at {}",
                next.offset
            ),
            Expect::OverlapReported,
            Box::new(move |f: &mut Forge| {
                let own = f.blob(ch, i);
                put32(&mut f.b, own.payload().start + 12, len as u32);
                f.seal_blob(ch, i, len);
            }),
        ));
        break;
    }
    cases
}

fn catalog_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let refused = Expect::Refused(is_corrupted);
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let cat = fx.newest.cat();
    let desc = fx.newest.channels[0].desc_at;
    let count = fx.newest.channels.len() as u32;
    let header = fx.newest.catalog.offset;
    let mut field = |name: &str, at: usize, value: u64, width: usize, also_aux: bool| {
        let edit: Edit = Box::new(move |f: &mut Forge| {
            match width {
                1 => f.b[at] = value as u8,
                4 => put32(&mut f.b, at, value as u32),
                _ => put64(&mut f.b, at, value),
            }
            if also_aux {
                put32(&mut f.b, header + 20, value as u32);
            }
            f.seal_catalog();
        });
        cases.push((name.to_string(), refused, edit));
    };
    field("catalog: width u64::MAX", cat, u64::MAX, 8, false);
    field("catalog: width 0", cat, 0, 8, false);
    field(
        "catalog: width + 1",
        cat,
        le64(&fx.bytes, cat) + 1,
        8,
        false,
    );
    field("catalog: height u64::MAX", cat + 8, u64::MAX, 8, false);
    field("catalog: height 1 << 40", cat + 8, 1 << 40, 8, false);
    field(
        "catalog: count u32::MAX (header aux too)",
        cat + 16,
        u64::from(u32::MAX),
        4,
        true,
    );
    field(
        "catalog: count + 1 (header aux too)",
        cat + 16,
        u64::from(count + 1),
        4,
        true,
    );
    field("catalog: count 0 (header aux too)", cat + 16, 0, 4, true);
    field("catalog: next_channel_id 0", cat + 20, 0, 4, false);
    field("catalog: flags bit 1", cat + 24, 3, 4, false);
    field(
        "catalog: names_len u32::MAX",
        cat + 28,
        u64::from(u32::MAX),
        4,
        false,
    );
    field(
        "catalog: names_len + 1",
        cat + 28,
        u64::from(le32(&fx.bytes, cat + 28) + 1),
        4,
        false,
    );
    field("descriptor 0: dtype 0", desc + 4, 0, 1, false);
    field("descriptor 0: dtype 10", desc + 4, 10, 1, false);
    field("descriptor 0: typesize 3", desc + 5, 3, 1, false);
    field("descriptor 0: codec 5", desc + 6, 5, 1, false);
    field("descriptor 0: level 10", desc + 7, 10, 1, false);
    field(
        "descriptor 0: block_size u32::MAX",
        desc + 8,
        u64::from(u32::MAX),
        4,
        false,
    );
    field("descriptor 0: rows_per_chunk 0", desc + 12, 0, 4, false);
    field(
        "descriptor 0: rows_per_chunk u32::MAX",
        desc + 12,
        u64::from(u32::MAX),
        4,
        false,
    );
    field(
        "descriptor 0: n_chunks u32::MAX",
        desc + 16,
        u64::from(u32::MAX),
        4,
        false,
    );
    field("descriptor 0: n_chunks 0", desc + 16, 0, 4, false);
    field("descriptor 0: flags 1", desc + 20, 1, 4, false);
    field(
        "descriptor 0: default_fill above the element",
        desc + 24,
        1 << 40,
        8,
        false,
    );
    field(
        "descriptor 0: name_offset u32::MAX",
        desc + 48,
        u64::from(u32::MAX),
        4,
        false,
    );
    field(
        "descriptor 0: name_len u32::MAX",
        desc + 52,
        u64::from(u32::MAX),
        4,
        false,
    );
    if fx.newest.channels[0].table.is_some() {
        field(
            "descriptor 0: table_len u32::MAX",
            desc + 40,
            u64::from(u32::MAX),
            4,
            false,
        );
        field(
            "descriptor 0: table_len u32::MAX - 31",
            desc + 40,
            u64::from(u32::MAX - 31),
            4,
            false,
        );
        field(
            "descriptor 0: table_offset past committed_end",
            desc + 32,
            align64(fx.newest.committed_end) as u64,
            8,
            false,
        );
        field(
            "descriptor 0: table_offset u64::MAX & !63",
            desc + 32,
            LAST_ALIGNED,
            8,
            false,
        );
    }
    if fx.newest.channels.len() > 1 {
        let second = fx.newest.channels[1].desc_at;
        field(
            "descriptor 1: the id of descriptor 0",
            second,
            u64::from(fx.newest.channels[0].id),
            4,
            false,
        );
        field(
            "descriptor 1: id u32::MAX",
            second,
            u64::from(u32::MAX),
            4,
            false,
        );
    }
    let names_len = le32(&fx.bytes, cat + 28) as usize;
    if names_len > 0 {
        let names = fx.newest.catalog.end() - names_len;
        field("names: invalid UTF-8", names, 0xFF, 1, false);
    }
    if let Some(m) = fx.newest.meta {
        field(
            "catalog: meta_len u32::MAX",
            cat + 40,
            u64::from(u32::MAX),
            4,
            false,
        );
        field(
            "catalog: meta_offset u64::MAX & !63",
            cat + 32,
            LAST_ALIGNED,
            8,
            false,
        );
        field(
            "catalog: meta_offset the catalog's own",
            cat + 32,
            fx.newest.catalog.offset as u64,
            8,
            false,
        );
        cases.push((
            "META: not JSON (CRC resealed)".into(),
            refused,
            Box::new(move |f: &mut Forge| {
                f.b[m.payload().start] = b'#';
                f.seal_meta();
            }),
        ));
        cases.push((
            "META: header channel_id 5".into(),
            refused,
            Box::new(move |f: &mut Forge| put32(&mut f.b, m.offset + 16, 5)),
        ));
    }
    cases.push((
        "catalog: header kind META".into(),
        refused,
        Box::new(move |f: &mut Forge| f.b[header + 4] = 3),
    ));
    cases.push((
        "catalog: header generation = slot + 1".into(),
        refused,
        Box::new(move |f: &mut Forge| {
            let g = f.c.generation + 1;
            put64(&mut f.b, header + 8, g);
        }),
    ));
    cases.push((
        "catalog: header reserved byte set".into(),
        Expect::Accepted,
        Box::new(move |f: &mut Forge| f.b[header + 6] = 0xAB),
    ));
    cases
}

fn slot_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let refused = Expect::Refused(is_corrupted);
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let end = fx.newest.committed_end as u64;
    let mut field = |name: &str, at: usize, value: u64, width: usize, expect: Expect| {
        let edit: Edit = Box::new(move |f: &mut Forge| {
            let s = f.slot();
            match width {
                1 => f.b[s + at] = value as u8,
                2 => put16(&mut f.b, s + at, value as u16),
                4 => put32(&mut f.b, s + at, value as u32),
                _ => put64(&mut f.b, s + at, value),
            }
            f.seal_slot();
        });
        cases.push((name.to_string(), expect, edit));
    };
    field("slot: major 2", 8, 2, 2, Expect::Refused(is_unsupported));
    field("slot: minor 9", 10, 9, 2, Expect::Accepted);
    field("slot: slot_len 255", 12, 255, 4, refused);
    field("slot: generation 0", 16, 0, 8, refused);
    field("slot: committed_end u64::MAX", 32, u64::MAX, 8, refused);
    field(
        "slot: committed_end file length + 1",
        32,
        end + 1,
        8,
        refused,
    );
    field("slot: committed_end 8191", 32, 8191, 8, refused);
    field(
        "slot: committed_end - 1 (catalog past it)",
        32,
        end - 1,
        8,
        refused,
    );
    field(
        "slot: durable_end > committed_end",
        40,
        end + 64,
        8,
        refused,
    );
    field("slot: durable_end 0", 40, 0, 8, refused);
    field("slot: catalog_offset 0", 48, 0, 8, refused);
    field("slot: catalog_offset 4096", 48, 4096, 8, refused);
    field(
        "slot: catalog_offset u64::MAX & !63",
        48,
        LAST_ALIGNED,
        8,
        refused,
    );
    field(
        "slot: catalog_offset u64::MAX - 31",
        48,
        u64::MAX - 31,
        8,
        refused,
    );
    field(
        "slot: catalog_offset + 1",
        48,
        fx.newest.catalog.offset as u64 + 1,
        8,
        refused,
    );
    field(
        "slot: catalog_offset of the previous catalog",
        48,
        fx.previous.catalog.offset as u64,
        8,
        refused,
    );
    field(
        "slot: catalog_len u32::MAX",
        56,
        u64::from(u32::MAX),
        4,
        refused,
    );
    field(
        "slot: catalog_len u32::MAX - 31",
        56,
        u64::from(u32::MAX - 31),
        4,
        refused,
    );
    field("slot: catalog_len 0", 56, 0, 4, refused);
    field(
        "slot: catalog_crc + 1",
        60,
        u64::from(fx.newest.catalog.crc.wrapping_add(1)),
        4,
        refused,
    );
    field("slot: a reserved byte set", 100, 0xAB, 1, Expect::Accepted);
    cases
}

/// blosc2 header fields (SPEC §8 step 4) that disagree with the table or the geometry, in
/// blobs below and past durable_end: the CRCs pass, the header check refuses the chunk.
fn blosc_header_cases(fx: &Fixture) -> Vec<(String, Expect, Edit)> {
    let mut cases: Vec<(String, Expect, Edit)> = Vec::new();
    let (durable, unsynced) = blob_entries(fx);
    let mut targets: Vec<(usize, usize)> = durable.iter().take(2).copied().collect();
    targets.extend(unsynced.first());
    for (ch, i) in targets {
        let b = fx.newest.channels[ch].entries[i].blob.expect("blob");
        let raw = fx.newest.channels[ch].raw[i] as u64;
        let p = b.payload().start;
        let header = &fx.bytes[p..p + 16];
        let (nbytes, cbytes) = (u64::from(le32(header, 4)), u64::from(le32(header, 12)));
        let (flags, typesize) = (u64::from(header[2]), u64::from(header[3]));
        let variants: Vec<(String, usize, u64, usize)> = vec![
            ("version 0".into(), 0, 0, 1),
            ("version 2 (Blosc1)".into(), 0, 2, 1),
            ("version 6".into(), 0, 6, 1),
            ("version 255".into(), 0, 255, 1),
            ("flags without bit 0".into(), 2, flags & !1, 1),
            ("flags without bit 2".into(), 2, flags & !4, 1),
            ("typesize 0".into(), 3, 0, 1),
            ("typesize 1".into(), 3, 1, 1),
            (format!("typesize {}", typesize * 2), 3, typesize * 2, 1),
            ("typesize 255".into(), 3, 255, 1),
            (format!("nbytes {}", nbytes + 1), 4, nbytes + 1, 4),
            (format!("nbytes {}", nbytes - 1), 4, nbytes - 1, 4),
            ("nbytes 0".into(), 4, 0, 4),
            ("nbytes u32::MAX".into(), 4, u64::from(u32::MAX), 4),
            ("blocksize 0".into(), 8, 0, 4),
            (format!("blocksize {}", raw + 1), 8, raw + 1, 4),
            ("blocksize u32::MAX".into(), 8, u64::from(u32::MAX), 4),
            (format!("cbytes {}", cbytes + 1), 12, cbytes + 1, 4),
            (format!("cbytes {}", cbytes - 1), 12, cbytes - 1, 4),
            ("cbytes 0".into(), 12, 0, 4),
            ("cbytes u32::MAX".into(), 12, u64::from(u32::MAX), 4),
        ];
        let place = if b.offset < fx.newest.durable_end {
            "durable"
        } else {
            "unsynced"
        };
        for (what, at, value, width) in variants {
            cases.push((
                format!("ch {ch} blob {i} ({place}): blosc2 {what}"),
                Expect::ChunkRefused(ch, i),
                Box::new(move |f: &mut Forge| {
                    if width == 1 {
                        f.b[p + at] = value as u8;
                    } else {
                        put32(&mut f.b, p + at, value as u32);
                    }
                    f.seal_blob(ch, i, b.len);
                }),
            ));
        }
        // A payload shorter than a blosc2 header, with length and CRC consistent (only for
        // a blob of the newest commit alone, so that the previous commit stays intact).
        if place == "unsynced" {
            cases.push((
                format!("ch {ch} blob {i} ({place}): payload of 16 bytes"),
                Expect::Refused(is_corrupted),
                Box::new(move |f: &mut Forge| f.seal_blob(ch, i, 16)),
            ));
        }
    }
    cases
}

#[test]
fn forged_table_entries_are_refused() {
    for fx in [image_fixture(), channel_fixture()] {
        let cases = table_cases(&fx);
        run_forgeries(&fx, "table entries", cases);
    }
}

#[test]
fn forged_overlapping_blobs_are_refused_or_reported() {
    let fx = image_fixture();
    let cases = overlap_cases(&fx);
    assert!(
        cases
            .iter()
            .any(|(_, e, _)| matches!(e, Expect::OverlapReported)),
        "the image fixture has a blob that can be extended over its neighbour"
    );
    run_forgeries(&fx, "overlapping blobs", cases);
    let fx = channel_fixture();
    let cases = overlap_cases(&fx);
    run_forgeries(&fx, "overlapping blobs", cases);
}

#[test]
fn forged_catalogs_with_huge_counts_and_lengths_are_refused() {
    for fx in [image_fixture(), channel_fixture()] {
        let cases = catalog_cases(&fx);
        run_forgeries(&fx, "catalog", cases);
    }
}

#[test]
fn forged_slots_with_huge_offsets_and_lengths_are_refused() {
    for fx in [image_fixture(), channel_fixture()] {
        let cases = slot_cases(&fx);
        run_forgeries(&fx, "slot", cases);
    }
}

#[test]
fn forged_blosc2_headers_that_disagree_with_the_table_are_refused() {
    for fx in [image_fixture(), channel_fixture()] {
        let cases = blosc_header_cases(&fx);
        run_forgeries(&fx, "blosc2 headers", cases);
    }
}

// ---------------------------------------------------------------------------------------
// Edge cases found by the sweeps, each on its own
// ---------------------------------------------------------------------------------------

/// The slot's generation is only bounded below (SPEC §3: `generation ≥ 1`). A slot of
/// generation `u64::MAX` (CRC valid) is read like any other; a read-write session on it
/// must then neither panic nor leave a file that no longer opens. Every open afterwards
/// must land on one of the commits the file held, with or without the session's change.
#[test]
fn a_slot_at_the_largest_generation_never_panics_and_never_makes_the_file_unreadable() {
    let mut failures = Vec::new();
    for fx in [image_fixture(), channel_fixture()] {
        let mut f = Forge::new(&fx);
        let s = f.slot();
        put64(&mut f.b, s + 16, u64::MAX);
        f.seal_slot();
        let path = fx.copy("generation-max.cimg", &f.b);
        // Read-only: the newest contents (at generation u64::MAX) or, if refused, the
        // previous commit; never a panic.
        match open_and_read(&path, fx.kind, Access::ReadOnly) {
            Err(msg) => failures.push(format!("{}: read-only open: {msg}", fx.name)),
            Ok(Observed::OpenFailed(e)) if is_corrupted(&e) => {}
            Ok(Observed::OpenFailed(e)) => {
                failures.push(format!("{}: read-only open: {e:?}", fx.name));
            }
            Ok(Observed::Opened(o)) => {
                let ok = [&fx.expect_newest, &fx.expect_previous]
                    .iter()
                    .any(|e| compare(&o, e).is_ok_and(|bad| bad.is_empty()));
                if !ok {
                    failures.push(format!("{}: read-only open: other contents", fx.name));
                }
            }
        }
        // A read-write session: open (which makes the commit durable and writes a marker
        // slot of the next generation), one commit, drop (sync, marker).
        match continue_writing(&path, fx.kind) {
            Err(msg) => failures.push(format!("{}: read-write session: {msg}", fx.name)),
            Ok(_) => {
                let candidates = [
                    fx.expect_newest.clone(),
                    fx.expect_previous.clone(),
                    continued(&fx.expect_newest, fx.kind),
                    continued(&fx.expect_previous, fx.kind),
                ];
                match open_and_read(&path, fx.kind, Access::ReadOnly) {
                    Err(msg) => failures.push(format!("{}: reopen: {msg}", fx.name)),
                    Ok(Observed::OpenFailed(e)) => failures.push(format!(
                        "{}: after a read-write session the file no longer opens: {e}",
                        fx.name
                    )),
                    Ok(Observed::Opened(o)) => {
                        if !candidates
                            .iter()
                            .any(|e| compare(&o, e).is_ok_and(|bad| bad.is_empty()))
                        {
                            failures.push(format!("{}: reopen: other contents", fx.name));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The memcpyed flag (blosc2 header byte 2, bit 1) set on a compressed chunk: the header
/// then claims `nbytes` raw bytes after the 32-byte header although `cbytes` (= the
/// payload length, which the table, the record header and the CRC all agree on) is
/// shorter. The header fields disagree with each other (a memcpyed chunk has `cbytes ==
/// nbytes + 32`), so the chunk must be refused before c-blosc2 reads it; in particular a
/// ranged read (`read_rows`, through `blosc2_getitem_ctx`) must not copy bytes from past
/// the payload.
#[test]
fn a_memcpyed_flag_on_a_compressed_chunk_never_reads_past_the_payload() {
    let fx = image_fixture();
    let mut f = Forge::new(&fx);
    let (durable, _) = blob_entries(&fx);
    // A compressed blob: its payload is shorter than its raw chunk.
    let (ch, i) = *durable
        .iter()
        .find(|&&(ch, i)| {
            let b = fx.newest.channels[ch].entries[i].blob.expect("blob");
            b.len + 64 < fx.newest.channels[ch].raw[i]
        })
        .expect("a compressed blob below durable_end");
    let b = f.blob(ch, i);
    let p = b.payload().start;
    f.b[p + 2] |= 0b10;
    f.seal_blob(ch, i, b.len);
    let path = fx.copy("memcpyed.cimg", &f.b);
    let mut img = Image::<f32>::open_read_only(&path).expect("the forged file opens");
    img.set_threads(1).expect("threads");
    let c = img.channel(ch).expect("channel");
    let data = &fx.expect_newest.channels[ch];
    let row = data.width * 4;
    let rows = data.chunks[i].len() / row;
    let first = i * data.rows;
    let mut failures = Vec::new();
    match c.get_chunk_vec(i) {
        Err(Error::Corrupted { .. } | Error::Codec { .. }) => {}
        other => failures.push(format!(
            "get_chunk: {:?}",
            other.map(|v| bytes_of(&v) == data.chunks[i])
        )),
    }
    // The last row of the chunk lies at payload offset 32 + (rows - 1) * row, past the
    // payload's end.
    let mut out = vec![0f32; data.width];
    match c.read_rows(first + rows - 1, &mut out) {
        Err(Error::Corrupted { .. } | Error::Codec { .. }) => {}
        Err(e) => failures.push(format!("read_rows: {e:?}")),
        Ok(()) => {
            let got = bytes_of(&out);
            let at = p + 32 + (rows - 1) * row;
            let past = at + got.len() > p + b.len;
            failures.push(format!(
                "read_rows of row {} returned Ok; bit-exact: {}; equal to the file bytes \
                 [{at}, {}) (the payload ends at {}): {} — an out-of-bounds read{}",
                first + rows - 1,
                got == data.chunks[i][(rows - 1) * row..],
                at + got.len(),
                p + b.len,
                got == f.b[at..at + got.len()],
                if past { " past the payload" } else { "" },
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "channel {ch} chunk {i} (payload [{p}, {}), cbytes {}, nbytes {}): {failures:#?}",
        p + b.len,
        b.len,
        data.chunks[i].len()
    );
}

/// A 13 KB file that is valid per SPEC §5.2: one u16 channel of 50 × 134,217,727 in
/// one-row chunks (the largest chunk count), without a table (every chunk DEFAULT). The
/// open must not abort the process however the library represents the chunks: it opens
/// (and reads chunk 5 as the default fill) or refuses with a typed error. The open runs
/// in a child process limited to 2 GiB of address space, so an allocation failure aborts
/// the child only.
#[cfg(target_os = "linux")]
#[test]
fn a_file_declaring_the_largest_chunk_count_opens_in_bounded_memory() {
    const NAME: &str = "a_file_declaring_the_largest_chunk_count_opens_in_bounded_memory";
    if let Some(path) = child_role(NAME) {
        let outcome = match Channel::<u16>::open_read_only(&path) {
            Ok(c) => match c.get_chunk_vec(5) {
                Ok(v) if v.iter().all(|&x| x == 7) => "opened".to_string(),
                other => format!("chunk 5: {other:?}"),
            },
            Err(e @ Error::Corrupted { .. }) => format!("refused: {e}"),
            Err(e) => format!("error: {e:?}"),
        };
        report!("{outcome}");
        return;
    }
    let fx = channel_fixture();
    let mut f = Forge::new(&fx);
    let height: u64 = 134_217_727;
    let cat = f.c.cat();
    put64(&mut f.b, cat + 8, height);
    let d = f.c.channels[0].desc_at;
    put32(&mut f.b, d + 12, 1); // rows_per_chunk
    put32(&mut f.b, d + 16, height as u32); // n_chunks
    f.b[d + 32..d + 48].fill(0); // no table
    f.seal_catalog();
    let path = fx.copy("largest-chunk-count.cimg", &f.b);
    let out = child_command_in_shell("ulimit -v 2097152", NAME, &path)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let outcome = stdout
        .lines()
        .find_map(|l| protocol_line(l).map(str::to_string));
    println!(
        "largest chunk count ({} bytes): child {}, {outcome:?}",
        f.b.len(),
        out.status
    );
    assert!(
        out.status.success()
            && outcome
                .as_deref()
                .is_some_and(|o| o == "opened" || o.starts_with("refused")),
        "the open of a valid {}-byte file declaring {height} chunks did not open or fail \
         typed within 2 GiB: child {}, outcome {outcome:?}\nstderr:\n{}",
        f.b.len(),
        out.status,
        stderr.lines().take(12).collect::<Vec<_>>().join("\n")
    );
}

/// The higher-generation commit of a pristine file's two slots.
fn newest_commit(b: &[u8]) -> Commit {
    let (x, y) = (parse_commit(b, 0), parse_commit(b, 1));
    if x.generation > y.generation { x } else { y }
}

/// Regression (fuzz finding F1, fuzz/README.md): `refresh` accepts exactly the commits
/// `open` accepts. A newer slot that differs from the durable commit only by a lower
/// durable end claims the durable commit's blobs as unsynced; one of them fails its CRC, so
/// `open` rejects that slot and falls back, and a refresh of the fallback must not take it
/// either (it once checked only blobs past the reader's own commit).
#[test]
fn refresh_never_moves_to_a_commit_open_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cimg");
    let data = ramp16(64 * 8, 3);
    let settings = Settings::default().chunk_size(64 * 2 * 4);
    let ch = Channel::<u16>::create_full(&path, 64, 8, 0, settings).unwrap();
    ch.set_chunk(0, &data[..256]).unwrap();
    ch.set_chunk(1, &data[256..]).unwrap();
    ch.sync().unwrap();
    drop(ch);
    let mut b = fs::read(&path).unwrap();
    let newest = newest_commit(&b);
    // The other page: a copy of the newest slot, one generation newer, nothing durable.
    let (from, to) = (newest.page * SLOT_PAGE, (1 - newest.page) * SLOT_PAGE);
    b.copy_within(from..from + SLOT_LEN, to);
    put64(&mut b, to + 16, newest.generation + 1);
    put64(&mut b, to + 40, REGION_START as u64);
    let crc = crc32(&b[to..to + SLOT_CRC_AT]);
    put32(&mut b, to + SLOT_CRC_AT, crc);
    // Damage the payload of chunk 1's blob (durable in the newest commit).
    let blob = newest.channels[0].entries[1]
        .blob
        .expect("chunk 1 is a blob");
    b[blob.payload().start + 40] ^= 1;
    fs::write(&path, &b).unwrap();

    let ch = Channel::<u16>::open_read_only(&path).unwrap();
    assert_eq!(ch.stats().unwrap().generation, newest.generation);
    assert!(!ch.refresh().unwrap(), "refresh took the rejected commit");
    assert_eq!(ch.stats().unwrap().generation, newest.generation);
    assert_eq!(ch.get_chunk_vec(0).unwrap(), data[..256]);
    assert!(matches!(
        ch.get_chunk_vec(1),
        Err(Error::ChecksumMismatch { chunk: 1, .. })
    ));
}

/// `ChecksumPolicy`: by default a blob is checksummed on its first read through a handle
/// and trusted afterwards; `EveryRead` checksums it on every read, so damage done while the
/// file is open is caught; `verify()` and a new handle check everything whatever the policy.
/// Level 0 stores the chunk raw, so a damaged byte still decodes and shows which read
/// trusted it.
#[test]
fn checksum_policy_decides_whether_later_reads_recheck_a_blob() {
    use compressed_image::ChecksumPolicy;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cimg");
    let data = ramp16(64 * 8, 5);
    let settings = Settings::default().chunk_size(64 * 2 * 4).level(0);
    let ch = Channel::<u16>::create(&path, &data, 64, 8, settings).unwrap();
    assert_eq!(ch.checksum_policy(), ChecksumPolicy::FirstRead);
    drop(ch);
    let b = fs::read(&path).unwrap();
    let newest = newest_commit(&b);
    let blob = newest.channels[0].entries[1]
        .blob
        .expect("chunk 1 is a blob");

    let first = Channel::<u16>::open_read_only(&path).unwrap();
    let every = Channel::<u16>::open_read_only(&path).unwrap();
    every.set_checksum_policy(ChecksumPolicy::EveryRead);
    assert_eq!(every.checksum_policy(), ChecksumPolicy::EveryRead);
    assert_eq!(first.get_chunk_vec(1).unwrap(), data[256..]);
    assert_eq!(every.get_chunk_vec(1).unwrap(), data[256..]);

    // Damage the last raw byte of the chunk in place (the mappings share the page cache).
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    let at = blob.payload().end - 1;
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(&[b[at] ^ 0x40]).unwrap();
    drop(f);

    assert!(matches!(
        every.get_chunk_vec(1),
        Err(Error::ChecksumMismatch { chunk: 1, .. })
    ));
    // The first-read handle verified this blob already and trusts it: exactly the damaged
    // element differs.
    let trusted = first.get_chunk_vec(1).unwrap();
    let differing: Vec<usize> = (0..trusted.len())
        .filter(|&i| trusted[i] != data[256 + i])
        .collect();
    assert_eq!(differing, [trusted.len() - 1]);
    for handle in [&first, &every] {
        let report = handle.verify().unwrap();
        assert!(
            !report.is_ok(),
            "verify must recheck every blob: {report:?}"
        );
    }
    let fresh = Channel::<u16>::open_read_only(&path).unwrap();
    assert!(matches!(
        fresh.get_chunk_vec(1),
        Err(Error::ChecksumMismatch { chunk: 1, .. })
    ));
}
