//! Pinned commits (format/SPEC.md §11): a `SnapshotId` taken from any handle opens exactly
//! that commit again, in another process too, while the writer goes on committing; a
//! compacted or replaced file gives `SnapshotUnavailable`, never another commit's data;
//! a damaged or forged id gives a typed error.

use compressed_image::{
    AnyChannel, AnyImage, Argument, Channel, Error, Image, Settings, SnapshotId,
};

#[macro_use]
mod common;

use common::child::{child_role, spawn};
use common::format::crc32;

/// 4 chunks of 8 rows × 32 `f32`.
const W: usize = 32;
const H: usize = 32;

fn settings() -> Settings {
    Settings::default().chunk_size(W * 4 * 8)
}

/// The whole channel as commit `g` writes it: distinct per generation and per element,
/// so every chunk is a compressed blob.
fn generation_data(g: u64) -> Vec<f32> {
    (0..W * H)
        .map(|i| (g * 10_000) as f32 + (i % 997) as f32)
        .collect()
}

/// The generation `data` was written by; panics unless all of it is that generation's.
fn generation_of(data: &[f32]) -> u64 {
    let g = (data[0] / 10_000.0) as u64;
    assert!(data == generation_data(g).as_slice(), "a mix of commits");
    g
}

fn commit(writer: &Channel<f32>, g: u64) {
    writer
        .write_region(
            compressed_image::Region::new(0, 0, W, H),
            &generation_data(g),
        )
        .unwrap();
}

/// A channel file with commit 1 written; its writer.
fn file_at_generation_1() -> (tempfile::TempDir, std::path::PathBuf, Channel<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pinned.cimg");
    let writer = Channel::<f32>::create_full(&path, W, H, 0.0, settings()).unwrap();
    commit(&writer, 1);
    (dir, path, writer)
}

/// Child: open the commit `CIMG_SNAPSHOT` names, then on every `read` command report the
/// generation it reads and whether `refresh` moved it.
#[test]
fn child_pinned_reader() {
    let Some(path) = child_role("child_pinned_reader") else {
        return;
    };
    let id: SnapshotId = std::env::var("CIMG_SNAPSHOT").unwrap().parse().unwrap();
    let reader = Channel::<f32>::open_snapshot(&path, &id).unwrap();
    assert!(reader.is_pinned() && !reader.is_writable());
    report!(
        "opened {}",
        generation_of(&reader.get_decompressed().unwrap())
    );
    while common::child::command() == "read" {
        let moved = reader.refresh().unwrap();
        let g = generation_of(&reader.get_decompressed().unwrap());
        report!("read {g} {moved} {}", reader.generation());
    }
}

#[test]
fn a_reader_in_another_process_stays_on_its_pinned_commit_while_the_writer_commits() {
    let (_dir, path, writer) = file_at_generation_1();
    let id = writer.snapshot_id();
    assert_eq!(id.generation(), writer.generation());
    commit(&writer, 2); // the pinned commit is no longer the newest when the child opens it
    let mut child = spawn(
        "child_pinned_reader",
        &path,
        &[("CIMG_SNAPSHOT", id.to_string())],
    );
    assert_eq!(child.expect("opened"), "1");
    for g in 3..8 {
        commit(&writer, g);
        if g % 2 == 0 {
            writer.sync().unwrap();
        }
        child.send("read");
        assert_eq!(child.expect("read"), format!("1 false {}", id.generation()));
    }
    child.finish();
    // The newest commit is what an ordinary reader sees.
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    assert_eq!(generation_of(&reader.get_decompressed().unwrap()), 7);
}

#[test]
fn every_handle_type_opens_a_pinned_commit_and_the_id_encodings_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.cimg");
    let image = Image::<u8>::create(&path, 4, 2).unwrap();
    image
        .add_channel(&[1; 8], Some("a"), Settings::default())
        .unwrap();
    let id = image.snapshot_id();
    image
        .add_channel(&[2; 8], Some("b"), Settings::default())
        .unwrap();
    image
        .set_metadata(serde_json::json!({"later": true}))
        .unwrap();

    let encoded = id.to_bytes();
    assert_eq!(SnapshotId::from_bytes(&encoded).unwrap(), id);
    assert_eq!(id.to_string().parse::<SnapshotId>().unwrap(), id);

    let any = AnyImage::open_snapshot(&path, &id).unwrap();
    assert_eq!(any.channel_names(), ["a"]);
    assert_eq!(any.metadata(), serde_json::Value::Null);
    assert_eq!(any.snapshot_id(), id);
    assert!(!any.refresh().unwrap());
    assert!(matches!(
        any.set_metadata(serde_json::Value::Null),
        Err(Error::ReadOnly)
    ));
    let typed = Image::<u8>::open_snapshot(&path, &id).unwrap();
    assert_eq!(typed.get_decompressed().unwrap(), [vec![1; 8]]);
    assert!(matches!(
        Image::<u16>::open_snapshot(&path, &id),
        Err(Error::ChannelDtypeMismatch { .. })
    ));
    // A channel file is an image of one channel: that commit has one.
    let channel = Channel::<u8>::open_snapshot(&path, &id).unwrap();
    assert_eq!(channel.get_decompressed().unwrap(), [1; 8]);
    assert!(matches!(
        AnyChannel::open_snapshot(&path, &image.snapshot_id()),
        Err(Error::InvalidArgument {
            what: Argument::ChannelFile,
            ..
        })
    ));
}

#[test]
fn a_compacted_or_replaced_file_no_longer_has_the_commit() {
    let (_dir, path, writer) = file_at_generation_1();
    let id = writer.snapshot_id();
    let pinned_before = Channel::<f32>::open_snapshot(&path, &id).unwrap();
    commit(&writer, 2);
    writer.compact().unwrap();
    let err = Channel::<f32>::open_snapshot(&path, &id).err();
    assert!(
        matches!(err, Some(Error::SnapshotUnavailable { generation, .. }) if generation == id.generation()),
        "{err:?}"
    );
    // A handle pinned before keeps the old file's commit.
    assert_eq!(generation_of(&pinned_before.get_decompressed().unwrap()), 1);
    // The compacted file's own commits can be pinned.
    let id = writer.snapshot_id();
    let pinned = Channel::<f32>::open_snapshot(&path, &id).unwrap();
    assert_eq!(generation_of(&pinned.get_decompressed().unwrap()), 2);
    // Another file created at the path (another file id).
    drop((writer, pinned, pinned_before));
    std::fs::remove_file(&path).unwrap();
    let other = Channel::<f32>::create_full(&path, W, H, 0.0, settings()).unwrap();
    commit(&other, 2);
    let err = Channel::<f32>::open_snapshot(&path, &id).err();
    assert!(
        matches!(err, Some(Error::SnapshotUnavailable { .. })),
        "{err:?}"
    );
}

/// `id`'s encoding after `edit`, with its CRC recomputed (a forgery, not damage).
fn forge(id: &SnapshotId, edit: impl FnOnce(&mut [u8])) -> SnapshotId {
    let mut b = id.to_bytes().to_vec();
    edit(&mut b);
    let crc = crc32(&b[..44]);
    b[44..].copy_from_slice(&crc.to_le_bytes());
    SnapshotId::from_bytes(&b).unwrap()
}

fn add(b: &mut [u8], at: usize, delta: u64) {
    let v = u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    b[at..at + 8].copy_from_slice(&v.wrapping_add(delta).to_le_bytes());
}

#[test]
fn a_damaged_or_forged_id_gives_a_typed_error() {
    let (_dir, path, writer) = file_at_generation_1();
    let id = writer.snapshot_id();
    commit(&writer, 2);
    let bytes = id.to_bytes();
    let invalid = |b: &[u8]| {
        matches!(
            SnapshotId::from_bytes(b),
            Err(Error::InvalidArgument {
                what: Argument::SnapshotId,
                ..
            })
        )
    };
    for at in 0..bytes.len() {
        let mut damaged = bytes;
        damaged[at] ^= 0x10;
        assert!(invalid(&damaged), "byte {at} flipped");
    }
    assert!(invalid(&bytes[..47]));
    assert!(invalid(&[bytes.as_slice(), &[0]].concat()));
    let mut version = bytes;
    version[0] = 2;
    assert!(invalid(&version));
    assert!(matches!(
        "not hex".parse::<SnapshotId>(),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        "é0".repeat(48).parse::<SnapshotId>(),
        Err(Error::InvalidArgument { .. })
    ));
    // Offsets: file id 4, generation 12, committed_end 20, catalog_offset 28, len 36, crc 40.
    let forgeries = [
        ("file id", forge(&id, |b| add(b, 4, 1))),
        ("a future generation", forge(&id, |b| add(b, 12, 100))),
        (
            "committed_end past the file",
            forge(&id, |b| add(b, 20, 1 << 40)),
        ),
        ("another catalog offset", forge(&id, |b| add(b, 28, 64))),
        ("another catalog length", forge(&id, |b| b[36] ^= 1)),
        ("another catalog checksum", forge(&id, |b| b[40] ^= 1)),
    ];
    for (what, forged) in forgeries {
        let err = Channel::<f32>::open_snapshot(&path, &forged).err();
        assert!(
            matches!(err, Some(Error::SnapshotUnavailable { .. })),
            "{what}: {err:?}"
        );
    }
    // Fields that name no commit at all are refused when decoded.
    let mut b = bytes.to_vec();
    b[12..20].copy_from_slice(&0u64.to_le_bytes());
    let crc = crc32(&b[..44]);
    b[44..].copy_from_slice(&crc.to_le_bytes());
    assert!(invalid(&b), "generation 0");
    // The real id still opens the real commit.
    let pinned = Channel::<f32>::open_snapshot(&path, &id).unwrap();
    assert_eq!(generation_of(&pinned.get_decompressed().unwrap()), 1);
}
