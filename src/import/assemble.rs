//! Gathering decoded rows into chunks: each imported channel holds at most the one chunk
//! being filled; a chunk leaves as soon as its last row arrives.

use super::convert::convert;
use crate::geometry::Geometry;
use crate::sample::Dtype;

/// A chunk's bytes, aligned for every element type (so callbacks can view them typed).
pub(crate) struct ChunkBuf {
    words: Vec<u64>,
    len: usize,
}

impl ChunkBuf {
    fn zeroed(len: usize) -> ChunkBuf {
        ChunkBuf {
            words: vec![0; len.div_ceil(8)],
            len,
        }
    }
    pub(crate) fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }
}

/// A completed chunk of an imported channel.
pub(crate) struct FullChunk {
    /// Position of the channel in the imported image.
    pub channel: usize,
    /// Index of the chunk in the channel.
    pub index: usize,
    pub data: ChunkBuf,
}

/// Builds the chunks of one channel from its rows, which arrive in order.
pub(crate) struct ChunkAssembler {
    channel: usize,
    geometry: Geometry,
    dtype: Dtype,
    /// The chunk being filled, allocated at its first row.
    current: Option<ChunkBuf>,
    /// Rows received so far.
    rows_done: usize,
}

impl ChunkAssembler {
    /// An assembler for the channel at `channel` with `geometry`, storing `dtype`.
    pub(crate) fn new(channel: usize, geometry: Geometry, dtype: Dtype) -> ChunkAssembler {
        ChunkAssembler {
            channel,
            geometry,
            dtype,
            current: None,
            rows_done: 0,
        }
    }

    /// Append the next whole rows, `src` (elements of `from`), converted to the stored
    /// type; every chunk they complete goes to `done`.
    pub(crate) fn push_rows(&mut self, src: &[u8], from: Dtype, done: &mut Vec<FullChunk>) {
        let width = self.geometry.width();
        let (src_row, dst_row) = (width * from.size(), width * self.dtype.size());
        let rows_per_chunk = self.geometry.rows_per_chunk();
        let mut src = src;
        while !src.is_empty() {
            let index = self.rows_done / rows_per_chunk;
            let row_in_chunk = self.rows_done % rows_per_chunk;
            let chunk_rows = self.geometry.chunk_rows(index);
            let take = (src.len() / src_row).min(chunk_rows - row_in_chunk);
            let geometry = &self.geometry;
            let chunk = self
                .current
                .get_or_insert_with(|| ChunkBuf::zeroed(geometry.chunk_bytes_at(index)));
            let (rows, rest) = src.split_at(take * src_row);
            let target = &mut chunk.bytes_mut()[row_in_chunk * dst_row..][..take * dst_row];
            convert(rows, from, target, self.dtype);
            src = rest;
            self.rows_done += take;
            if row_in_chunk + take == chunk_rows
                && let Some(data) = self.current.take()
            {
                done.push(FullChunk {
                    channel: self.channel,
                    index,
                    data,
                });
            }
        }
    }

    /// Bytes held for the chunk being filled (0 between chunks).
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.words.capacity() * 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of `width` u16 elements numbered from `start`: element (x, y) holds `y * 100 + x`.
    fn rows(start: usize, count: usize, width: usize) -> Vec<u8> {
        (start..start + count)
            .flat_map(|y| (0..width).map(move |x| (y * 100 + x) as u16))
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    #[test]
    fn bands_of_any_height_make_each_chunk_once_in_order() {
        let (width, height) = (3, 10);
        // 4 rows per chunk: chunks of 4, 4 and 2 rows.
        let geometry = Geometry::new(width, height, 2, 4 * width * 2).unwrap();
        for band in [1, 3, 4, 7, 10] {
            let mut assembler = ChunkAssembler::new(5, geometry, Dtype::U16);
            let mut done = Vec::new();
            for start in (0..height).step_by(band) {
                let count = band.min(height - start);
                assembler.push_rows(&rows(start, count, width), Dtype::U16, &mut done);
            }
            let indices: Vec<usize> = done.iter().map(|c| c.index).collect();
            assert_eq!(indices, [0, 1, 2], "bands of {band} rows");
            for chunk in &done {
                assert_eq!(chunk.channel, 5);
                let start = geometry.chunk_start_row(chunk.index);
                let expected = rows(start, geometry.chunk_rows(chunk.index), width);
                assert_eq!(chunk.data.bytes(), expected, "bands of {band} rows");
            }
        }
    }

    #[test]
    fn an_assembler_never_holds_more_than_one_chunk() {
        let (width, height) = (64, 1000);
        let geometry = Geometry::new(width, height, 4, 10 * width * 4).unwrap();
        let chunk_bytes = geometry.chunk_bytes();
        let mut assembler = ChunkAssembler::new(0, geometry, Dtype::F32);
        let mut done = Vec::new();
        // Bands of 7 rows of u8, converted to f32.
        for start in (0..height).step_by(7) {
            let count = 7.min(height - start);
            assembler.push_rows(&vec![255u8; count * width], Dtype::U8, &mut done);
            assert!(assembler.held_bytes() <= chunk_bytes);
            // Every completed chunk is handed out at once, not accumulated.
            assert!(
                done.len() <= 1,
                "{} chunks completed by one band",
                done.len()
            );
            for chunk in done.drain(..) {
                let values: &[f32] = bytemuck::cast_slice(chunk.data.bytes());
                assert!(values.iter().all(|&v| v == 1.0));
                assert!(chunk.data.bytes().len() <= chunk_bytes);
            }
        }
        assert_eq!(assembler.held_bytes(), 0, "the last chunk was handed out");
    }
}
