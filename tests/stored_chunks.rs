//! Chunks compressed away from the writer (`compress_chunk`) and committed by it
//! (`set_stored_chunk`): they round-trip exactly as `set_chunk` stores, and every forged or
//! damaged field is refused with a typed error before anything is committed.

use compressed_image::{
    AnyImage, Channel, ChunkProblem, ChunkStorage, Error, Settings, StoredChunk,
};
use proptest::prelude::*;

#[macro_use]
mod common;

use common::format::crc32;

/// 64 × 20 `u16` in chunks of 8 rows: 8, 8 and a short last chunk of 4 rows.
const W: usize = 64;
const H: usize = 20;
const ROWS: usize = 8;

fn settings() -> Settings {
    Settings::default().chunk_size(W * 2 * ROWS)
}

fn noise(len: usize, seed: u16) -> Vec<u16> {
    (0..len)
        .map(|i| (i as u16).wrapping_mul(7919).wrapping_add(seed) % 977)
        .collect()
}

/// A named channel file of zeros, its writer and a read-only handle (the "worker").
fn writer_and_worker() -> (tempfile::TempDir, Channel<u16>, Channel<u16>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cimg");
    let writer = Channel::<u16>::create_full(&path, W, H, 0, settings()).unwrap();
    let worker = Channel::<u16>::open_read_only(&path).unwrap();
    (dir, writer, worker)
}

#[test]
fn a_chunk_compressed_on_a_read_only_handle_commits_as_set_chunk_stores_it() {
    let (_dir, writer, worker) = writer_and_worker();
    let by_set_chunk = Channel::<u16>::zeros(W, H, settings()).unwrap();
    for index in 0..writer.num_chunks() {
        let data = noise(writer.chunk_elems_at(index).unwrap(), index as u16);
        let stored = worker.compress_chunk(index, &data).unwrap();
        assert_eq!(stored.index(), index);
        assert_eq!(stored.raw_len(), data.len() * 2);
        writer.set_stored_chunk(index, &stored).unwrap();
        by_set_chunk.set_chunk(index, &data).unwrap();
        assert_eq!(writer.get_chunk_vec(index).unwrap(), data);
    }
    assert_eq!(
        writer.get_decompressed().unwrap(),
        by_set_chunk.get_decompressed().unwrap()
    );
    let lengths = |c: &Channel<u16>| -> Vec<Option<usize>> {
        let storage = c.chunk_storage().unwrap();
        storage
            .into_iter()
            .map(|s| match s {
                ChunkStorage::Blob { compressed_len, .. } => Some(compressed_len),
                _ => None,
            })
            .collect()
    };
    assert_eq!(lengths(&writer), lengths(&by_set_chunk));
    assert!(writer.verify().unwrap().is_ok());
}

#[test]
fn a_constant_chunk_is_a_fill_value_and_stays_lazy() {
    let (_dir, writer, worker) = writer_and_worker();
    let stored = worker.compress_chunk(1, &vec![513u16; W * ROWS]).unwrap();
    assert_eq!(stored.fill_bits(), Some(513));
    assert_eq!(stored.compressed(), None);
    writer.set_stored_chunk(1, &stored).unwrap();
    assert!(writer.is_lazy(1).unwrap());
    assert_eq!(writer.get_chunk_vec(1).unwrap(), vec![513u16; W * ROWS]);
}

#[test]
fn the_encoding_round_trips_and_commits_from_bytes() {
    let (_dir, writer, worker) = writer_and_worker();
    for (index, data) in [(0, noise(W * ROWS, 3)), (2, vec![9u16; W * 4])] {
        let stored = worker.compress_chunk(index, &data).unwrap();
        let bytes = stored.to_bytes();
        assert_eq!(StoredChunk::from_bytes(&bytes).unwrap(), stored);
        writer.set_stored_chunk_bytes(index, &bytes).unwrap();
        assert_eq!(writer.get_chunk_vec(index).unwrap(), data);
    }
}

#[test]
fn many_stored_chunks_commit_as_one() {
    let (_dir, writer, worker) = writer_and_worker();
    let chunks: Vec<(usize, StoredChunk)> = (0..writer.num_chunks())
        .map(|i| {
            let data = noise(worker.chunk_elems_at(i).unwrap(), 40 + i as u16);
            (i, worker.compress_chunk(i, &data).unwrap())
        })
        .collect();
    let generation = writer.generation();
    writer
        .set_stored_chunks(chunks.iter().map(|(i, c)| (*i, c)))
        .unwrap();
    assert_eq!(writer.generation(), generation + 1);
    for i in 0..writer.num_chunks() {
        let data = noise(worker.chunk_elems_at(i).unwrap(), 40 + i as u16);
        assert_eq!(writer.get_chunk_vec(i).unwrap(), data);
    }
    // One bad chunk among good ones: nothing is committed.
    let bad = worker.compress_chunk(0, &noise(W * ROWS, 1)).unwrap();
    let err = writer.set_stored_chunks([(0, &chunks[0].1), (1, &bad)]);
    assert!(
        matches!(
            err,
            Err(Error::InvalidStoredChunk {
                problem: ChunkProblem::Index {
                    expected: 1,
                    found: 0
                }
            })
        ),
        "{err:?}"
    );
    assert_eq!(writer.generation(), generation + 1);
}

#[test]
fn batches_take_stored_chunks() {
    let (_dir, writer, worker) = writer_and_worker();
    let data = noise(W * ROWS, 11);
    let stored = worker.compress_chunk(1, &data).unwrap();
    let mut batch = writer.batch().unwrap();
    batch.set_stored_chunk(1, &stored).unwrap();
    let err = batch.set_stored_chunk(0, &stored);
    assert!(
        matches!(err, Err(Error::InvalidStoredChunk { .. })),
        "{err:?}"
    );
    batch.commit().unwrap();
    assert_eq!(writer.get_chunk_vec(1).unwrap(), data);

    let image = AnyImage::new(W, H).unwrap();
    image.add_lazy_channel(0u16, Some("a"), settings()).unwrap();
    let mut batch = image.batch().unwrap();
    batch.set_stored_chunk(0, 1, &stored).unwrap();
    let err = batch.set_stored_chunk(1, 1, &stored);
    assert!(matches!(err, Err(Error::IndexOutOfRange { .. })), "{err:?}");
    batch.commit().unwrap();
    let channel = Channel::<u16>::try_from_any(image.channel(0).unwrap()).unwrap();
    assert_eq!(channel.get_chunk_vec(1).unwrap(), data);
}

/// Header field offsets of the encoding (see `StoredChunk`).
mod field {
    pub const KIND: usize = 5;
    pub const DTYPE: usize = 6;
    pub const INDEX: usize = 8;
    pub const WIDTH: usize = 16;
    pub const ROWS_PER_CHUNK: usize = 24;
    pub const ROWS: usize = 28;
    pub const PAYLOAD_LEN: usize = 32;
    pub const PAYLOAD_CRC: usize = 36;
    pub const HEADER_CRC: usize = 40;
    pub const HEADER_LEN: usize = 48;
}

/// Whether an error is the refusal of a stored chunk for a problem `problem` accepts.
type Refused = Box<dyn Fn(&Error) -> bool>;

fn is(problem: fn(&ChunkProblem) -> bool) -> Refused {
    Box::new(move |e: &Error| matches!(e, Error::InvalidStoredChunk { problem: p } if problem(p)))
}

/// `bytes` after `edit`, with the payload length and both CRCs recomputed: a forgery only
/// the channel checks see.
fn forge(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    edit(&mut b);
    let payload_len = (b.len() - field::HEADER_LEN) as u32;
    put_u32(&mut b, field::PAYLOAD_LEN, payload_len);
    let payload_crc = crc32(&b[field::HEADER_LEN..]);
    b[field::PAYLOAD_CRC..field::PAYLOAD_CRC + 4].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32(&b[..field::HEADER_CRC]);
    b[field::HEADER_CRC..field::HEADER_CRC + 4].copy_from_slice(&header_crc.to_le_bytes());
    b
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A blosc2 header field of the payload, at `at` bytes into the c-blosc2 chunk.
fn blosc(at: usize) -> usize {
    field::HEADER_LEN + at
}

#[test]
fn every_forged_or_damaged_field_is_refused_and_nothing_is_committed() {
    let (_dir, writer, worker) = writer_and_worker();
    let data = noise(W * ROWS, 5);
    let good = worker.compress_chunk(1, &data).unwrap().to_bytes();
    let fill = worker
        .compress_chunk(1, &vec![3u16; W * ROWS])
        .unwrap()
        .to_bytes();
    let raw_len = (W * ROWS * 2) as u32;
    type Case = (&'static str, Vec<u8>, Refused);
    let cases: Vec<Case> = vec![
        (
            "magic",
            forge(&good, |b| b[0] = b'X'),
            is(|p| matches!(p, ChunkProblem::Malformed { .. })),
        ),
        (
            "version",
            forge(&good, |b| b[4] = 2),
            is(|p| matches!(p, ChunkProblem::UnsupportedVersion(2))),
        ),
        (
            "kind",
            forge(&good, |b| b[field::KIND] = 7),
            is(|p| matches!(p, ChunkProblem::Malformed { .. })),
        ),
        (
            "dtype code",
            forge(&good, |b| b[field::DTYPE] = 42),
            is(|p| matches!(p, ChunkProblem::Malformed { .. })),
        ),
        (
            "reserved",
            forge(&good, |b| b[7] = 1),
            is(|p| matches!(p, ChunkProblem::Malformed { .. })),
        ),
        (
            "truncated",
            good[..good.len() - 1].to_vec(),
            is(|p| matches!(p, ChunkProblem::Malformed { .. })),
        ),
        (
            "short header",
            good[..20].to_vec(),
            is(|p| matches!(p, ChunkProblem::Malformed { .. })),
        ),
        (
            "a damaged header",
            {
                let mut b = good.clone();
                b[field::WIDTH] ^= 1;
                b
            },
            is(|p| matches!(p, ChunkProblem::HeaderChecksum)),
        ),
        (
            "a damaged payload",
            {
                let mut b = good.clone();
                let n = b.len();
                b[n - 1] ^= 1;
                b
            },
            is(|p| matches!(p, ChunkProblem::Checksum { .. })),
        ),
        (
            "dtype",
            forge(&good, |b| b[field::DTYPE] = 5),
            is(|p| matches!(p, ChunkProblem::Dtype { .. })),
        ),
        (
            "index",
            forge(&good, |b| b[field::INDEX] = 0),
            is(|p| {
                matches!(
                    p,
                    ChunkProblem::Index {
                        expected: 1,
                        found: 0
                    }
                )
            }),
        ),
        (
            "width",
            forge(&good, |b| b[field::WIDTH] = 32),
            is(|p| matches!(p, ChunkProblem::Geometry { .. })),
        ),
        (
            "rows per chunk",
            forge(&good, |b| put_u32(b, field::ROWS_PER_CHUNK, 4)),
            is(|p| matches!(p, ChunkProblem::Geometry { .. })),
        ),
        (
            "rows",
            forge(&good, |b| put_u32(b, field::ROWS, 4)),
            is(|p| matches!(p, ChunkProblem::Geometry { .. })),
        ),
        (
            "fill bits above the element",
            forge(&fill, |b| b[field::HEADER_LEN + 2] = 1),
            is(|p| matches!(p, ChunkProblem::FillBits(_))),
        ),
        (
            "blosc2 version",
            forge(&good, |b| b[blosc(0)] = 9),
            is(|p| matches!(p, ChunkProblem::BloscHeader(_))),
        ),
        (
            "blosc2 flags",
            forge(&good, |b| b[blosc(2)] &= !0b100),
            is(|p| matches!(p, ChunkProblem::BloscHeader(_))),
        ),
        (
            "blosc2 typesize",
            forge(&good, |b| b[blosc(3)] = 4),
            is(|p| matches!(p, ChunkProblem::BloscHeader(_))),
        ),
        (
            "blosc2 nbytes",
            forge(&good, |b| put_u32(b, blosc(4), raw_len - 2)),
            is(|p| matches!(p, ChunkProblem::BloscHeader(_))),
        ),
        (
            "blosc2 cbytes",
            forge(&good, |b| {
                let c = u32::from_le_bytes(b[blosc(12)..blosc(16)].try_into().unwrap());
                put_u32(b, blosc(12), c + 1)
            }),
            is(|p| matches!(p, ChunkProblem::BloscHeader(_))),
        ),
        (
            "blosc2 blocksize",
            forge(&good, |b| put_u32(b, blosc(8), 0)),
            is(|p| matches!(p, ChunkProblem::BloscHeader(_))),
        ),
        (
            "a lazy blosc2 chunk",
            forge(&good, |b| b[blosc(31)] |= 0b1000),
            is(|p| matches!(p, ChunkProblem::BloscHeader(_))),
        ),
        (
            "a blosc2 chunk cut short",
            forge(&good, |b| b.truncate(field::HEADER_LEN + 16)),
            is(|p| matches!(p, ChunkProblem::BloscHeader(_))),
        ),
    ];
    let before = (writer.generation(), writer.get_decompressed().unwrap());
    for (what, bytes, expected) in cases {
        let err = writer.set_stored_chunk_bytes(1, &bytes).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
        assert_eq!(
            (writer.generation(), writer.get_decompressed().unwrap()),
            before,
            "{what}: something was committed"
        );
    }
    writer.set_stored_chunk_bytes(1, &good).unwrap();
    assert_eq!(writer.get_chunk_vec(1).unwrap(), data);
}

#[test]
fn a_chunk_of_another_channel_is_refused() {
    let (_dir, writer, _) = writer_and_worker();
    // Same bytes per chunk, other element type.
    let signed = Channel::<i16>::zeros(W, H, settings()).unwrap();
    let stored = signed.compress_chunk(0, &vec![-1i16; W * ROWS]).unwrap();
    let err = writer.set_stored_chunk(0, &stored);
    assert!(
        matches!(
            err,
            Err(Error::InvalidStoredChunk {
                problem: ChunkProblem::Dtype { .. }
            })
        ),
        "{err:?}"
    );
    // Same chunk length, other layout: 128 × 4-row chunks.
    let wide = Channel::<u16>::zeros(2 * W, H, settings()).unwrap();
    let stored = wide.compress_chunk(0, &noise(W * ROWS, 2)).unwrap();
    assert_eq!(stored.raw_len(), W * ROWS * 2);
    let err = writer.set_stored_chunk(0, &stored);
    assert!(
        matches!(
            err,
            Err(Error::InvalidStoredChunk {
                problem: ChunkProblem::Geometry { .. }
            })
        ),
        "{err:?}"
    );
    // Read-only handles compress but never commit.
    let reader = Channel::<u16>::open_read_only(writer.path().unwrap()).unwrap();
    let stored = reader.compress_chunk(0, &noise(W * ROWS, 2)).unwrap();
    assert!(matches!(
        reader.set_stored_chunk(0, &stored),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(
        writer.set_stored_chunk(7, &stored),
        Err(Error::IndexOutOfRange { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let channel = Channel::<u16>::zeros(W, H, settings()).unwrap();
        if let Ok(stored) = StoredChunk::from_bytes(&bytes) {
            let _ = channel.set_stored_chunk(stored.index(), &stored);
        }
        let _ = channel.set_stored_chunk_bytes(1, &bytes);
    }

    #[test]
    fn forged_encodings_never_panic(
        edits in proptest::collection::vec((0usize..1200, any::<u8>()), 1..8),
        cut in 0usize..1200,
    ) {
        let channel = Channel::<u16>::zeros(W, H, settings()).unwrap();
        let good = channel.compress_chunk(1, &noise(W * ROWS, 9)).unwrap().to_bytes();
        let bytes = forge(&good, |b| {
            for (at, v) in &edits {
                let n = b.len();
                b[at % n] = *v;
            }
            b.truncate(field::HEADER_LEN + cut % (b.len() - field::HEADER_LEN + 1));
        });
        let generation = channel.generation();
        match channel.set_stored_chunk_bytes(1, &bytes) {
            Ok(()) => prop_assert_eq!(channel.generation(), generation + 1),
            Err(_) => prop_assert_eq!(channel.generation(), generation),
        }
    }
}
