//! Encoding and decoding of the on-disk structures, one to one with `format/SPEC.md`.
//!
//! Nothing here touches a file: every function maps bytes to values and back, checking
//! each field as `SPEC.md` requires. All integers are little-endian.

#![forbid(unsafe_code)]

mod catalog;
mod record;
mod slot;
mod table;

pub(crate) use catalog::{Catalog, ChannelDesc, RecordRef};
pub(crate) use record::{
    RECORD_HEADER_LEN, RecordHeader, RecordKind, record_footprint, record_in_region, record_len,
};
pub(crate) use slot::{SLOT_LEN, Slot};
pub(crate) use table::TableEntry;

/// Major format version written and read by this library (SPEC §2).
pub const FORMAT_MAJOR: u16 = 1;
/// Minor format version written by this library.
pub const FORMAT_MINOR: u16 = 0;

/// File magic: PNG-style, catches 7-bit transfers and newline conversion (SPEC §2).
pub(crate) const MAGIC: [u8; 8] = *b"\x89CIM\r\n\x1a\n";
/// Size of one slot page; slot A sits at 0, slot B at `SLOT_PAGE`.
pub(crate) const SLOT_PAGE: u64 = 4096;
/// First byte of the record region.
pub(crate) const REGION_START: u64 = 2 * SLOT_PAGE;
/// Every record starts at a multiple of this.
pub(crate) const RECORD_ALIGN: u64 = 64;
/// Bytes of one chunk-table entry.
pub(crate) const TABLE_ENTRY_LEN: usize = 32;
/// A BLOB payload is a c-blosc2 chunk with the extended header, so at least this long
/// (SPEC §9) …
pub(crate) const BLOB_HEADER_LEN: usize = 32;
/// … and at most this much longer than the chunk's raw bytes (c-blosc2's
/// `BLOSC2_MAX_OVERHEAD`).
pub(crate) const BLOB_MAX_OVERHEAD: usize = 32;

/// Round `n` up to the record alignment.
pub(crate) fn align_up(n: u64) -> u64 {
    n.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// CRC-32/IEEE (reflected 0xEDB88320, init and final XOR 0xFFFFFFFF) — never CRC-32C.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Little-endian field writer over a growing buffer.
#[derive(Default)]
pub(crate) struct LeWriter(pub Vec<u8>);

impl LeWriter {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

/// Little-endian field reader over a byte slice whose length the caller checked.
pub(crate) struct LeReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> LeReader<'a> {
    /// Panics are impossible for in-bounds reads: callers check `bytes.len()` against the
    /// fixed layout before reading.
    pub fn new(bytes: &'a [u8]) -> Self {
        LeReader { bytes, pos: 0 }
    }
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let out = self.bytes[self.pos..self.pos + N]
            .try_into()
            .expect("length checked by caller");
        self.pos += N;
        out
    }
    pub fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    pub fn skip(&mut self, n: usize) {
        self.pos += n;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_is_crc32_ieee_not_castagnoli() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn magic_is_png_style() {
        assert_eq!(
            super::MAGIC,
            [0x89, b'C', b'I', b'M', 0x0D, 0x0A, 0x1A, 0x0A]
        );
    }
}
