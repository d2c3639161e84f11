//! The streaming import over a scripted reader: bands come in order, each no larger than
//! the smallest chunk rounded to the reader's blocks, and chunks leave as they complete.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::source::{Source, SourceChannel, SourceInfo, whole_blocks};
use super::{ImportedChunk, ReadOptions, import_from};
use crate::error::Result;
use crate::progress::NoProgress;
use crate::sample::Dtype;
use crate::settings::Settings;

const WIDTH: usize = 8;
const HEIGHT: usize = 50;
/// The reader's block height (a strip, say).
const BLOCK_ROWS: usize = 3;

/// A reader of a `u8` and an `f32` channel whose element (x, y) is `y * WIDTH + x`
/// (wrapping for `u8`), recording the bands it is asked for.
struct Scripted {
    info: SourceInfo,
    bands: Vec<Range<usize>>,
    /// How many bands were read, for the post-process callback to see.
    bands_read: Arc<AtomicUsize>,
}

impl Scripted {
    fn new() -> Scripted {
        let channel = |name: &str, dtype| SourceChannel {
            name: name.into(),
            dtype,
        };
        Scripted {
            info: SourceInfo {
                format: "scripted",
                width: WIDTH,
                height: HEIGHT,
                channels: vec![channel("Y", Dtype::U8), channel("Z", Dtype::F32)],
                subimages: 1,
                metadata: serde_json::Map::new(),
            },
            bands: Vec::new(),
            bands_read: Arc::default(),
        }
    }
}

fn value(i: usize) -> f32 {
    i as f32
}

impl Source for Scripted {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn band_rows(&self, wanted: usize) -> usize {
        whole_blocks(wanted, BLOCK_ROWS)
    }

    fn read_band(
        &mut self,
        rows: Range<usize>,
        wanted: &[usize],
        out: &mut [Vec<u8>],
    ) -> super::error::FileResult {
        assert_eq!(
            rows.start,
            self.bands.last().map_or(0, |b| b.end),
            "bands in order"
        );
        let elems = (rows.start * WIDTH)..(rows.end * WIDTH);
        for (buffer, &channel) in out.iter_mut().zip(wanted) {
            let bytes: Vec<u8> = match channel {
                0 => elems.clone().map(|i| i as u8).collect(),
                _ => elems.clone().flat_map(|i| value(i).to_le_bytes()).collect(),
            };
            assert_eq!(buffer.len(), bytes.len(), "band buffer of the band's rows");
            buffer.copy_from_slice(&bytes);
        }
        self.bands.push(rows);
        self.bands_read.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn bands_are_the_smallest_chunk_in_whole_blocks_and_chunks_leave_as_they_complete() {
    // 160-byte chunks: 5 rows of f32, 20 rows of u8; bands of 6 rows (5 in blocks of 3).
    let options = ReadOptions::default().settings(Settings::default().chunk_size(160));
    let mut source = Scripted::new();
    let bands_read = source.bands_read.clone();
    // (channel, chunk index, first row, bands read when the chunk was handed on)
    let mut completed: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut post = |chunk: ImportedChunk<'_>| -> Result {
        let read = bands_read.load(Ordering::SeqCst);
        completed.push((chunk.channel(), chunk.index(), chunk.start_row(), read));
        Ok(())
    };
    let path = Path::new("scripted");
    let image = import_from(&mut source, path, &options, &mut post, &NoProgress).unwrap();

    let lengths: Vec<usize> = source.bands.iter().map(|b| b.len()).collect();
    assert!(
        lengths[..lengths.len() - 1].iter().all(|&n| n == 6),
        "{lengths:?}"
    );
    assert_eq!(lengths.iter().sum::<usize>(), HEIGHT);
    assert_eq!(completed.len(), 3 + 10, "3 chunks of u8, 10 of f32");
    for &(channel, index, start, read) in &completed {
        // Handed on right after the band holding the chunk's last row, not later.
        let rows = if channel == 0 { 20 } else { 5 };
        let last_row = (start + rows).min(HEIGHT) - 1;
        let band = source.bands.iter().position(|b| b.contains(&last_row));
        assert_eq!(Some(read - 1), band, "chunk {index} of channel {channel}");
    }

    let data = image.get_decompressed_bytes().unwrap();
    let expected_u8: Vec<u8> = (0..WIDTH * HEIGHT).map(|i| i as u8).collect();
    let expected_f32: Vec<u8> = (0..WIDTH * HEIGHT)
        .flat_map(|i| value(i).to_le_bytes())
        .collect();
    assert_eq!(data, [expected_u8, expected_f32]);
    assert_eq!(image.metadata()["source:format"], "scripted");
}
