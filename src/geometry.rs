//! Chunk geometry: how a `width × height` channel splits into chunks of whole scanlines.
//!
//! Rules (the original library's first and third, plus the cap its documentation promises):
//! 1. `rows_per_chunk = floor(floor(chunk_size / elem_size) / width)`; a request below one
//!    scanline (the original library fails on it) gives one scanline per chunk;
//! 2. capped to `height`, so a small channel has one chunk of exactly its size;
//! 3. the nominal chunk is `rows_per_chunk × width × elem_size` bytes; every chunk has
//!    that size except the last, which holds the remaining rows;
//! 4. one chunk must fit c-blosc2's buffer limit (`INT_MAX − 32` bytes), so a scanline
//!    longer than that is an error.

use crate::error::{Error, Result};

/// Largest uncompressed chunk c-blosc2 accepts (`BLOSC2_MAX_BUFFERSIZE`).
pub const MAX_CHUNK_BYTES: usize = i32::MAX as usize - 32;
/// Largest number of chunks a channel may have (its table must stay below 4 GiB).
pub const MAX_CHUNKS: usize = (u32::MAX as usize) / crate::format::TABLE_ENTRY_LEN;

/// The chunk layout of one channel. Invariant: every field was checked by [`Geometry::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    width: usize,
    height: usize,
    elem_size: usize,
    rows_per_chunk: usize,
}

impl Geometry {
    /// The layout of a `width × height` channel of `elem_size`-byte elements with the
    /// requested chunk size in bytes. A request smaller than one scanline (e.g. the default
    /// 4 MiB for a row of 600,000 `f64`, 4.8 MB) gives chunks of one scanline each.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when width or height is 0, when `width × height ×
    /// elem_size` overflows, when a chunk — at least one scanline — would exceed c-blosc2's
    /// 2 GiB limit, or when the channel needs more chunks than a table can hold.
    pub fn new(
        width: usize,
        height: usize,
        elem_size: usize,
        chunk_size: usize,
    ) -> Result<Geometry> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(
                crate::error::Argument::ChannelSize,
                format!("{width} x {height}"),
                "width and height of at least 1",
            ));
        }
        let row_bytes = width
            .checked_mul(elem_size)
            .ok_or_else(|| overflow(width, height, elem_size))?;
        row_bytes
            .checked_mul(height)
            .ok_or_else(|| overflow(width, height, elem_size))?;
        // A chunk holds whole scanlines, at least one: a smaller request cannot be honoured.
        let rows = ((chunk_size / elem_size) / width).max(1);
        let rows_per_chunk = rows.min(height);
        let chunk_bytes = rows_per_chunk * row_bytes;
        if chunk_bytes > MAX_CHUNK_BYTES {
            return Err(Error::invalid(
                crate::error::Argument::ChunkSize,
                format!("{chunk_bytes} bytes after alignment to scanlines"),
                format!("at most {MAX_CHUNK_BYTES} bytes (the c-blosc2 limit)"),
            ));
        }
        let geometry = Geometry {
            width,
            height,
            elem_size,
            rows_per_chunk,
        };
        if geometry.num_chunks() > MAX_CHUNKS {
            return Err(Error::invalid(
                crate::error::Argument::ChunkCount,
                geometry.num_chunks(),
                format!("at most {MAX_CHUNKS}"),
            ));
        }
        Ok(geometry)
    }

    /// Rebuild a geometry from stored fields, checking the same rules.
    pub(crate) fn from_rows(
        width: usize,
        height: usize,
        elem_size: usize,
        rows_per_chunk: usize,
    ) -> Result<Geometry> {
        if rows_per_chunk == 0 || rows_per_chunk > height {
            return Err(Error::corrupted(format!(
                "rows per chunk {rows_per_chunk} for height {height}"
            )));
        }
        let chunk_size = rows_per_chunk
            .checked_mul(width)
            .and_then(|n| n.checked_mul(elem_size));
        let g = Geometry::new(width, height, elem_size, chunk_size.unwrap_or(usize::MAX))
            .map_err(|e| Error::corrupted(format!("stored geometry: {e}")))?;
        if g.rows_per_chunk != rows_per_chunk {
            return Err(Error::corrupted("stored rows per chunk do not round-trip"));
        }
        Ok(g)
    }

    /// Width in elements.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Height in scanlines.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Element size in bytes.
    pub fn elem_size(&self) -> usize {
        self.elem_size
    }
    /// Scanlines in every chunk but the last.
    pub fn rows_per_chunk(&self) -> usize {
        self.rows_per_chunk
    }
    /// Number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.height.div_ceil(self.rows_per_chunk)
    }
    /// Elements in the whole channel.
    pub fn num_elems(&self) -> usize {
        self.width * self.height
    }
    /// Bytes of the whole channel uncompressed.
    pub(crate) fn num_bytes(&self) -> usize {
        self.num_elems() * self.elem_size
    }
    /// Nominal chunk size in elements (every chunk but possibly the last).
    pub fn chunk_elems(&self) -> usize {
        self.rows_per_chunk * self.width
    }
    /// Nominal chunk size in bytes.
    pub fn chunk_bytes(&self) -> usize {
        self.chunk_elems() * self.elem_size
    }
    /// First scanline of chunk `index` (saturating for an index past the end).
    pub fn chunk_start_row(&self, index: usize) -> usize {
        index.saturating_mul(self.rows_per_chunk)
    }
    /// Scanlines in chunk `index`; 0 for an index past the end.
    pub fn chunk_rows(&self, index: usize) -> usize {
        self.rows_per_chunk
            .min(self.height.saturating_sub(self.chunk_start_row(index)))
    }
    /// Elements in chunk `index`; 0 for an index past the end.
    pub fn chunk_elems_at(&self, index: usize) -> usize {
        self.chunk_rows(index) * self.width
    }
    /// Bytes in chunk `index`; 0 for an index past the end.
    pub fn chunk_bytes_at(&self, index: usize) -> usize {
        self.chunk_elems_at(index) * self.elem_size
    }
    /// `Ok` when `index` names a chunk.
    pub(crate) fn check_index(&self, index: usize) -> Result {
        if index >= self.num_chunks() {
            return Err(Error::IndexOutOfRange {
                what: "chunk",
                index,
                len: self.num_chunks(),
            });
        }
        Ok(())
    }
}

/// `Ok` when a `width × height` channel of `elem_size`-byte elements is non-empty and its
/// byte size fits in `usize`.
pub(crate) fn check_size(width: usize, height: usize, elem_size: usize) -> Result {
    if width == 0 || height == 0 {
        return Err(Error::invalid(
            crate::error::Argument::ChannelSize,
            format!("{width} x {height}"),
            "width and height of at least 1",
        ));
    }
    match width
        .checked_mul(elem_size)
        .and_then(|row| row.checked_mul(height))
    {
        Some(_) => Ok(()),
        None => Err(overflow(width, height, elem_size)),
    }
}

fn overflow(width: usize, height: usize, elem_size: usize) -> Error {
    Error::invalid(
        crate::error::Argument::ChannelSize,
        format!("{width} x {height} x {elem_size} bytes"),
        "a size that fits in memory addresses",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB4: usize = 4 * 1024 * 1024;

    /// Chunk sizes the original library produces with its default 4 MiB request, with the
    /// cap to the channel size it documents applied: (elem, w, h, chunk bytes, chunks, last
    /// bytes).
    #[test]
    fn geometry_matches_the_reference_table_with_the_cap() {
        let table: &[(usize, usize, usize, usize, usize, usize)] = &[
            (1, 1, 1, 1, 1, 1),
            (1, 10, 5, 50, 1, 50),
            (1, 123, 456, 56_088, 1, 56_088),
            (1, 1920, 1080, 2_073_600, 1, 2_073_600),
            (1, 2048, 2049, MIB4, 2, 2_048),
            (1, 8192, 8192, MIB4, 16, MIB4),
            (2, 10, 5, 100, 1, 100),
            (2, 2048, 2048, MIB4, 2, MIB4),
            (2, 2048, 2049, MIB4, 3, 4_096),
            (4, 10, 5, 200, 1, 200),
            (4, 123, 456, 224_352, 1, 224_352),
            (4, 1920, 1080, 4_193_280, 2, 4_101_120),
            (4, 4096, 4096, MIB4, 16, MIB4),
            (8, 123, 456, 448_704, 1, 448_704),
            (8, 1920, 1080, 4_193_280, 4, 4_008_960),
            (8, 8192, 8192, MIB4, 128, MIB4),
        ];
        for &(s, w, h, bytes, n, last) in table {
            let g = Geometry::new(w, h, s, MIB4).unwrap();
            assert_eq!(
                (g.chunk_bytes(), g.num_chunks(), g.chunk_bytes_at(n - 1)),
                (bytes, n, last),
                "{s} {w}x{h}"
            );
        }
    }

    #[test]
    fn small_requests_floor_to_scanlines() {
        // f32 10x5: request 40 -> 5 chunks of 40 B; 60 -> 40 B; 80 -> [80, 80, 40].
        assert_eq!(Geometry::new(10, 5, 4, 40).unwrap().num_chunks(), 5);
        assert_eq!(Geometry::new(10, 5, 4, 60).unwrap().chunk_bytes(), 40);
        let g = Geometry::new(10, 5, 4, 80).unwrap();
        let sizes: Vec<_> = (0..g.num_chunks()).map(|i| g.chunk_elems_at(i)).collect();
        assert_eq!(sizes, [20, 20, 10]);
        let g = Geometry::new(100, 30, 4, 3200).unwrap();
        let sizes: Vec<_> = (0..g.num_chunks()).map(|i| g.chunk_elems_at(i)).collect();
        assert_eq!(sizes, [800, 800, 800, 600]);
    }

    #[test]
    fn invalid_geometries_are_errors() {
        assert!(Geometry::new(0, 5, 4, MIB4).is_err());
        assert!(Geometry::new(5, 0, 4, MIB4).is_err());
        assert!(Geometry::new(usize::MAX / 2, 3, 4, MIB4).is_err());
        assert!(Geometry::new(100_000, 100_000, 1, 3_000_000_000).is_err());
    }

    #[test]
    fn rows_wider_than_the_requested_chunk_get_one_row_per_chunk() {
        // 600,000 f64 = 4.8 MB per row, above the default 4 MiB.
        let g = Geometry::new(600_000, 2, 8, MIB4).unwrap();
        assert_eq!(
            (g.rows_per_chunk(), g.num_chunks(), g.chunk_bytes()),
            (1, 2, 4_800_000)
        );
        // Requests below one scanline, 0 included.
        for request in [0, 1, 16, 39] {
            let g = Geometry::new(10, 5, 4, request).unwrap();
            assert_eq!((g.rows_per_chunk(), g.num_chunks()), (1, 5), "{request}");
        }
        assert_eq!(
            Geometry::new(5_000_000, 1, 1, MIB4).unwrap().chunk_bytes(),
            5_000_000
        );
        // One scanline above c-blosc2's 2 GiB chunk limit stays an error.
        assert!(Geometry::new(MAX_CHUNK_BYTES / 4 + 1, 1, 4, MIB4).is_err());
        assert!(Geometry::new(MAX_CHUNK_BYTES, 1, 1, MIB4).is_ok());
    }

    #[test]
    fn indices_past_the_end_have_no_rows_instead_of_panicking() {
        let g = Geometry::new(10, 5, 4, 80).unwrap();
        assert_eq!(
            (
                g.chunk_rows(3),
                g.chunk_elems_at(3),
                g.chunk_bytes_at(usize::MAX)
            ),
            (0, 0, 0)
        );
        assert_eq!(g.chunk_start_row(usize::MAX), usize::MAX);
    }
}
