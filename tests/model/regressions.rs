//! The first bugs the state machines found, each pinned by a plain test.

use std::mem::size_of;

use compressed_image::{Channel, Settings};

/// The compressed length of chunk 0 as a fresh thread stores it, optionally after the
/// same thread stored the one-row last chunk (with the same settings) first.
pub fn chunk0_len_in_fresh_thread(settings: Settings, after_short_chunk: bool) -> usize {
    std::thread::spawn(move || {
        let (w, h) = (256, 65); // 64 rows per chunk: chunk 1 is one row
        let data: Vec<f32> = (0..w * h)
            .map(|i| ((i % 977) as f32 * 0.5).sin().round())
            .collect();
        let c = Channel::<f32>::zeros(w, h, settings).unwrap();
        if after_short_chunk {
            c.set_chunk(1, &data[64 * w..]).unwrap();
        }
        let before = c.compressed_bytes().unwrap();
        c.set_chunk(0, &data[..64 * w]).unwrap();
        c.compressed_bytes().unwrap() + size_of::<f32>() - before
    })
    .join()
    .unwrap()
}

/// A chunk's compressed form depends on its bytes and its channel's settings only, not on
/// what the same thread compressed before: `block_size()` promises the requested block
/// size capped to the chunk. (Fails while the per-thread c-blosc2 compression context is
/// reused as is: `blosc2_compress_ctx` passes the block size it clamped to the previous,
/// shorter input back in as the requested one, so after a short last chunk every later
/// chunk with the same settings is cut into blocks of that size.)
#[test]
fn compressed_size_does_not_depend_on_earlier_chunks() {
    for block in [0, 32 * 1024] {
        let settings = Settings::default()
            .block_size(block)
            .chunk_size(64 * 256 * 4);
        let fresh = chunk0_len_in_fresh_thread(settings, false);
        let after = chunk0_len_in_fresh_thread(settings, true);
        assert_eq!(
            after, fresh,
            "block size {block}: a 64 KiB chunk stored in {fresh} bytes by a fresh thread takes \
             {after} bytes after the thread compressed the 1 KiB last chunk"
        );
    }
}

/// `read_rows` of a range that starts inside one c-blosc2 block and is exactly one block
/// long returns the rows of the next block instead. (Fails while partial reads go through
/// `blosc2_getitem_ctx` of c-blosc2 2.15.2, whose single-block shortcut in `_blosc_getitem`
/// decodes the last block of a multi-block range straight into the start of the output
/// when that block's length equals the requested length, overwriting the rows before it.)
#[test]
fn read_rows_across_a_block_boundary() {
    // Default settings: one 64 KiB chunk of 16 rows, in 32 KiB blocks of 8 rows.
    let (w, h) = (1024, 16);
    let data: Vec<f32> = (0..w * h).map(|i| (i / w) as f32).collect(); // row r holds r
    let c = Channel::new(&data, w, h, Settings::default()).unwrap();
    assert_eq!(c.block_size(), 8 * w * 4);
    for first in 0..=h - 8 {
        let mut out = vec![0.0f32; 8 * w];
        c.read_rows(first, &mut out).unwrap();
        let rows: Vec<f32> = out.chunks(w).map(|r| r[0]).collect();
        let want: Vec<f32> = (first..first + 8).map(|r| r as f32).collect();
        assert_eq!(rows, want, "read_rows({first}, 8 rows): the rows read");
    }
}
