//! Test fixtures for the store's unit tests: small files of one `u8` channel whose blobs
//! are arbitrary bytes (the store never decodes them).

use std::path::{Path, PathBuf};

use super::{BlobRead, Snapshot, Store, StoredChunk};
use crate::format::{Catalog, ChannelDesc};
use crate::geometry::Geometry;
use crate::sample::Dtype;
use crate::settings::Codec;

/// Width of the fixture channel; one row per chunk.
pub(super) const WIDTH: usize = 100;
/// Height of the fixture channel: four chunks.
pub(super) const HEIGHT: usize = 4;
/// Id of the fixture channel.
pub(super) const ID: u32 = 0;

/// A catalog of one `u8` channel of `WIDTH × HEIGHT`, one row per chunk.
pub(super) fn catalog() -> Catalog {
    Catalog {
        width: WIDTH,
        height: HEIGHT,
        next_channel_id: ID + 1,
        names_present: false,
        meta: None,
        channels: vec![ChannelDesc {
            id: ID,
            dtype: Dtype::U8,
            codec: Codec::Lz4,
            level: 5,
            block_size: 0,
            geometry: Geometry::new(WIDTH, HEIGHT, 1, WIDTH).expect("valid geometry"),
            default_fill: 7,
            table: None,
            name: String::new(),
        }],
    }
}

/// A new named file at `path` holding [`catalog`], its first commit made and synced.
pub(super) fn create(path: &Path) -> Store {
    let (store, temp) = Store::create(Some(path), &catalog()).expect("create");
    store.finish_create(temp).expect("first commit");
    store
}

/// A file made by [`create`] as `a.cimg` in a new temporary directory, with its path; the
/// directory (and the file) live as long as the returned guard.
pub(super) fn create_temp() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("a.cimg");
    let store = create(&path);
    (dir, path, store)
}

/// A blob payload of `len` bytes (at least the 32 a blob needs) made from `seed`.
pub(super) fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

/// Commit `blob` as chunk `index` of the fixture channel.
pub(super) fn put_blob(store: &Store, index: usize, blob: &[u8]) {
    let mut txn = store.begin().expect("begin");
    txn.put(ID, index, StoredChunk::Blob(blob)).expect("put");
    txn.commit().expect("commit");
}

/// Chunk `index` of the fixture channel as the store holds it now, owned.
pub(super) fn stored(store: &Store, index: usize, read: BlobRead) -> crate::Result<Stored> {
    stored_in(&store.snapshot(), index, read)
}

/// Chunk `index` of the fixture channel in `snapshot`, owned.
pub(super) fn stored_in(
    snapshot: &Snapshot,
    index: usize,
    read: BlobRead,
) -> crate::Result<Stored> {
    Ok(match snapshot.stored_chunk(0, index, read)? {
        StoredChunk::Fill(bits) => Stored::Fill(bits),
        StoredChunk::Blob(bytes) => Stored::Blob(bytes.to_vec()),
    })
}

/// An owned [`StoredChunk`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stored {
    Fill(u64),
    Blob(Vec<u8>),
}
