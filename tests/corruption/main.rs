//! Damaged files: bit flips, truncations, junk after the end and forged structures never
//! make the library panic, abort, fault or return wrong pixels. Two small but rich files
//! are built through the public API (an `Image<f32>` with three named channels, metadata,
//! blobs at levels 9 and 0, fill chunks with NaN payloads and −0.0, default chunks, a removed
//! channel and dead space; a `Channel<u16>` file), with both slots holding valid commits of
//! different generations. The expected contents of the newest commit and of the previous one
//! (in the other slot) come from an independent model of what was written. A small parser
//! written from `format/SPEC.md` (slots §3, records §4, catalog §5, tables §6) locates every
//! structure, so that each sweep targets exact bytes. After each damage the file is opened
//! (read-only; for a sample also read-write, followed by a commit) and read completely
//! (`get_chunk` of every chunk, `get_decompressed`, `read_rows`, names, metadata,
//! `verify()`, `inspect()`). Accepted outcomes: (a) the newest commit, bit-exact, except
//! chunks whose read fails with `ChecksumMismatch`/`Corrupted` and which `verify()` reports;
//! (b) the previous commit, bit-exact; (c) a typed open error (`Corrupted`,
//! `NotACompressedImage`, `UnsupportedVersion`). Where the specification determines the
//! outcome (e.g. a flip in the newest slot must fall back), the test requires that outcome.
//! Forged files (every CRC recomputed after a hostile edit of a slot, the catalog, a table
//! entry or a blosc2 header) must be refused with typed errors. Each sweep prints its
//! figures. The default run samples blob payloads, padding and dead space; `CIMG_LONG=1`
//! flips every bit of both files and truncates the larger one to every length too.
//!
//! The parser and the model are in the shared kit (`tests/common/`); here: `fixture` (the
//! two files and their expected commits), `observe` (open, read everything, classify),
//! `sweep` (flips, truncations, junk, torn tails), `forge` and `forge_cases` (hostile
//! edits with CRCs recomputed) and `edge_cases`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod edge_cases;
mod fixture;
mod forge;
mod forge_cases;
mod observe;
mod sweep;
