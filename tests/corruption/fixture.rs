//! The two fixture files, and the expected contents of their two commits from an
//! independent model of what was written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use compressed_image::{Channel, Codec, Image, Result, Sample, Settings};
use serde_json::{Value, json};

use crate::common::format::{Commit, Rec, SLOT_LEN, SLOT_PAGE, parse_commit};
use crate::common::model::ChannelModel;
use crate::common::rng::Rng;
use crate::observe::{Access, Outcome, Which, classify, open_and_read};

/// Bytes of the rows `read_rows` is asked for: all but the first and the last.
pub fn inner_rows(c: &ChannelModel) -> Vec<u8> {
    let row = c.width * c.elem;
    c.whole()[row..(c.height - 1) * row].to_vec()
}

/// Everything observable about one commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    pub generation: u64,
    pub names: Vec<String>,
    pub metadata: Value,
    pub channels: Vec<ChannelModel>,
}

/// How a fixture file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `Image<f32>` with several channels.
    ImageF32,
    /// `Channel<u16>`, a single-channel file.
    ChannelU16,
}

/// A file with two valid commits in its slots, and what each holds.
pub struct Fixture {
    pub name: &'static str,
    pub kind: FileKind,
    pub bytes: Vec<u8>,
    pub newest: Commit,
    pub previous: Commit,
    pub expect_newest: Contents,
    pub expect_previous: Contents,
    pub dir: tempfile::TempDir,
}

/// Which commits reference a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sharing {
    Newest,
    Previous,
    Both,
}

impl Fixture {
    pub fn expect(&self, which: Which) -> &Contents {
        match which {
            Which::Newest => &self.expect_newest,
            Which::Previous => &self.expect_previous,
        }
    }

    /// Every referenced record with the commits that reference it.
    pub fn referenced(&self) -> BTreeMap<Rec, Sharing> {
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
    pub fn copy(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).expect("write working copy");
        path
    }
}

pub fn bytes_of<T: Sample>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// Smooth, compressible but not constant f32 data.
pub fn smooth(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.05 + seed).sin() * 100.0 + seed)
        .collect()
}

/// Incompressible-ish f32 data.
pub fn rough(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (rng.next() >> 40) as f32 / 1024.0 - 4096.0)
        .collect()
}

pub fn ramp16(n: usize, seed: u16) -> Vec<u16> {
    (0..n)
        .map(|i| (i as u16).wrapping_mul(31).wrapping_add(seed) % 1000)
        .collect()
}

/// The current commit as read through an open image (for checking the model).
pub fn image_contents(img: &Image<f32>, generation: u64) -> Contents {
    Contents {
        generation,
        names: img.channel_names(),
        metadata: img.metadata(),
        channels: img
            .channels()
            .unwrap()
            .iter()
            .map(|c| channel_data(c).expect("read the fixture"))
            .collect(),
    }
}

pub fn channel_data<T: Sample>(c: &Channel<T>) -> Result<ChannelModel> {
    let n = c.num_chunks();
    Ok(ChannelModel {
        width: c.width(),
        height: c.height(),
        rows: c.geometry().rows_per_chunk(),
        elem: size_of::<T>(),
        chunks: (0..n)
            .map(|i| c.get_chunk_vec(i).map(|v| bytes_of(&v)))
            .collect::<Result<_>>()?,
        lazy: (0..n).map(|i| c.is_lazy(i)).collect::<Result<_>>()?,
    })
}

/// Parse both slots of `bytes` and tell the newest commit from the previous one.
pub fn parse_both(bytes: &[u8]) -> (Commit, Commit) {
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
pub fn image_fixture() -> Fixture {
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
pub fn channel_fixture() -> Fixture {
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
pub fn finish_fixture(
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
