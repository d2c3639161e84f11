//! Rectangular regions of a channel: reads built on row reads, writes as one commit of
//! read-modify-written chunks.

use crate::any_channel::{AnyChannel, read_rows_unchecked};
use crate::chunk_codec::{prepare_chunk, read_chunk};
use crate::error::{Argument, Error, Result};
use crate::geometry::Geometry;

/// A rectangle of elements: columns `x .. x + width` of rows `y .. y + height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Region {
    /// First column.
    pub x: usize,
    /// First row.
    pub y: usize,
    /// Number of columns.
    pub width: usize,
    /// Number of rows.
    pub height: usize,
}

impl Region {
    /// The `width × height` region whose top-left element is at column `x`, row `y`.
    pub const fn new(x: usize, y: usize, width: usize, height: usize) -> Region {
        Region {
            x,
            y,
            width,
            height,
        }
    }

    /// Number of elements (`width × height`, saturating).
    pub const fn len(&self) -> usize {
        self.width.saturating_mul(self.height)
    }

    /// Whether the region holds no element.
    pub const fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// `Ok` when the region lies inside `g` and `buffer_len` bytes hold exactly its
    /// elements.
    fn check(&self, g: &Geometry, buffer_len: usize) -> Result {
        let Region {
            x,
            y,
            width,
            height,
        } = *self;
        let inside = x.checked_add(width).is_some_and(|end| end <= g.width())
            && y.checked_add(height).is_some_and(|end| end <= g.height());
        if !inside {
            return Err(Error::invalid(
                Argument::Region,
                format!("{width} x {height} at ({x}, {y})"),
                format!("a region inside the {} x {} channel", g.width(), g.height()),
            ));
        }
        // Inside the channel, so the product cannot overflow.
        let bytes = width * height * g.elem_size();
        if buffer_len != bytes {
            return Err(Error::invalid(
                Argument::Region,
                format!("a buffer of {buffer_len} bytes"),
                format!("exactly {bytes} bytes ({width} x {height} elements)"),
            ));
        }
        Ok(())
    }

    /// The region's rows split at chunk boundaries: `(chunk index, first row, rows)`.
    fn chunk_spans(self, g: &Geometry) -> impl Iterator<Item = (usize, usize, usize)> {
        let rows_per_chunk = g.rows_per_chunk();
        let end = self.y + self.height;
        let mut row = self.y;
        std::iter::from_fn(move || {
            (row < end).then(|| {
                let index = row / rows_per_chunk;
                let rows = (g.chunk_start_row(index) + rows_per_chunk).min(end) - row;
                let span = (index, row, rows);
                row += rows;
                span
            })
        })
    }

    /// The byte range of the region's columns within one scanline.
    fn columns(self, g: &Geometry) -> std::ops::Range<usize> {
        let size = g.elem_size();
        self.x * size..(self.x + self.width) * size
    }
}

impl AnyChannel {
    /// Read the elements of `region` into `out` (row-major, exactly `region.len()` elements
    /// in bytes), from one commit, decoding only the
    /// c-blosc2 blocks that hold the region's rows. Memory beyond `out` stays below one
    /// chunk.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (kind [`Argument::Region`]) for a region outside the
    /// channel or a wrong buffer length; as [`get_chunk_bytes`](Self::get_chunk_bytes).
    pub fn read_region_bytes(&self, region: Region, out: &mut [u8]) -> Result {
        let g = self.geometry();
        region.check(&g, out.len())?;
        let (snap, pos) = self.view()?;
        if region.is_empty() {
            return Ok(());
        }
        let row_bytes = g.width() * g.elem_size();
        if region.width == g.width() {
            return read_rows_unchecked(&snap, pos, region.y, out, self.threads());
        }
        let columns = region.columns(&g);
        let mut rows_buf = Vec::new();
        let mut out_rows = out.chunks_exact_mut(columns.len());
        for (_, row, rows) in region.chunk_spans(&g) {
            rows_buf.resize(rows * row_bytes, 0);
            read_rows_unchecked(&snap, pos, row, &mut rows_buf, self.threads())?;
            for (src, dst) in rows_buf.chunks_exact(row_bytes).zip(&mut out_rows) {
                dst.copy_from_slice(&src[columns.clone()]);
            }
        }
        Ok(())
    }

    /// Overwrite the elements of `region` with `data` (row-major, exactly `region.len()`
    /// elements in bytes): every chunk the region
    /// touches is read, changed and stored again, all in one commit. Chunks the region
    /// covers whole are not read.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (kind [`Argument::Region`]) for a region outside the
    /// channel or a wrong data length; [`Error::ReadOnly`]; [`Error::BatchInProgress`]; as
    /// [`set_chunk_bytes`](Self::set_chunk_bytes). Nothing changes unless every chunk is
    /// written.
    pub fn write_region_bytes(&self, region: Region, data: &[u8]) -> Result {
        let g = self.geometry();
        region.check(&g, data.len())?;
        if !self.store.is_writable() {
            return Err(Error::ReadOnly);
        }
        if region.is_empty() {
            self.view()?;
            return Ok(());
        }
        let mut txn = self.store.begin()?;
        // The writer is held from here on, so the current commit is the one the
        // transaction builds on.
        let (snap, pos) = self.view()?;
        let row_bytes = g.width() * g.elem_size();
        let columns = region.columns(&g);
        let mut data_rows = data.chunks_exact(columns.len());
        let mut chunk = Vec::new();
        for (index, row, rows) in region.chunk_spans(&g) {
            chunk.resize(g.chunk_bytes_at(index), 0);
            if rows * row_bytes != chunk.len() || region.width != g.width() {
                read_chunk(&snap, pos, index, &mut chunk, self.threads())?;
            }
            let first = (row - g.chunk_start_row(index)) * row_bytes;
            let target = &mut chunk[first..first + rows * row_bytes];
            for (dst, src) in target.chunks_exact_mut(row_bytes).zip(&mut data_rows) {
                dst[columns.clone()].copy_from_slice(src);
            }
            let prepared = prepare_chunk(self.desc(), index, &chunk, self.threads())?;
            txn.put(self.id(), index, &prepared)?;
        }
        txn.allow_write_ahead(self.threads() > 1);
        txn.commit()
    }
}
