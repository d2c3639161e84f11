//! Guards the public API contract of `compressed-image` against the original library's
//! documented and observed behaviour (constructors, geometry, lazy chunks, images, errors) and this crate's
//! documented deviations (see the crate docs): the chunk geometry table with the cap to
//! the channel size, lazy chunks and bit-exact fills, `compressed_bytes` accounting,
//! `*_like` constructors, round trips for every element type and codec, element-based
//! chunk coordinates, `update_chunks`/`for_each_chunk`, batches, concurrent reads,
//! `read_rows`, image names/metadata/handles/removal, and the file lifecycle (create,
//! open, read-only refresh, `save_as`, dtype checks, space accounting).
//!
//! Every expected number is either a row of the reference table or derived from first
//! principles (the geometry rules, `size_of::<T>()`, or values read back through the
//! public API) inside the test.

use std::mem::size_of;

use compressed_image::{
    AnyChannel, Channel, Codec, DEFAULT_BLOCK_SIZE, DEFAULT_CHUNK_SIZE, Dtype, Error, Image,
    Sample, Settings, f16,
};
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// `expr` (a `Result`) must be an `Err` matching `pat`.
macro_rules! assert_err {
    ($e:expr, $p:pat) => {
        match ($e).map(|_| ()) {
            Err($p) => {}
            other => panic!(
                "{}: expected Err({}), got {:?}",
                stringify!($e),
                stringify!($p),
                other
            ),
        }
    };
}

/// Element types with a deterministic, non-constant test pattern.
trait Gen: Sample + PartialEq {
    fn from_index(i: usize) -> Self;
}

/// A value derived from an index that varies but is not random (compressible).
fn mix(i: usize) -> usize {
    i.wrapping_mul(7) + (i >> 3)
}

impl Gen for u8 {
    fn from_index(i: usize) -> Self {
        (mix(i) % 251) as u8
    }
}
impl Gen for i8 {
    fn from_index(i: usize) -> Self {
        ((mix(i) % 251) as i16 - 125) as i8
    }
}
impl Gen for u16 {
    fn from_index(i: usize) -> Self {
        (mix(i) % 65_521) as u16
    }
}
impl Gen for i16 {
    fn from_index(i: usize) -> Self {
        ((mix(i) % 65_521) as i32 - 32_000) as i16
    }
}
impl Gen for u32 {
    fn from_index(i: usize) -> Self {
        (mix(i) as u32).wrapping_mul(2_654_435_761)
    }
}
impl Gen for i32 {
    fn from_index(i: usize) -> Self {
        (mix(i) as i32).wrapping_mul(-7)
    }
}
impl Gen for f16 {
    fn from_index(i: usize) -> Self {
        f16::from_f32((mix(i) % 2000) as f32 * 0.5 - 300.0)
    }
}
impl Gen for f32 {
    fn from_index(i: usize) -> Self {
        (mix(i) as f32).sin() * 1000.0
    }
}
impl Gen for f64 {
    fn from_index(i: usize) -> Self {
        (mix(i) as f64).sqrt()
    }
}

fn pattern<T: Gen>(n: usize) -> Vec<T> {
    (0..n).map(T::from_index).collect()
}

/// A second pattern, different from [`pattern`] at every index where it matters.
fn pattern2<T: Gen>(n: usize) -> Vec<T> {
    (0..n).map(|i| T::from_index(i * 3 + 11)).collect()
}

/// Bit-exact equality (NaN payloads and −0.0 included).
fn same_bits<T: Sample>(a: &[T], b: &[T]) -> bool {
    bytemuck::cast_slice::<T, u8>(a) == bytemuck::cast_slice::<T, u8>(b)
}

/// (nominal chunk bytes, nominal chunk elements, number of chunks, last chunk bytes).
fn observed<T: Sample>(c: &Channel<T>) -> (usize, usize, usize, usize) {
    let n = c.num_chunks();
    (
        c.chunk_size(),
        c.chunk_elems(),
        n,
        c.chunk_size_at(n - 1).unwrap(),
    )
}

/// Sizes of every chunk in elements.
fn chunk_elem_sizes<T: Sample>(c: &Channel<T>) -> Vec<usize> {
    (0..c.num_chunks())
        .map(|i| c.chunk_elems_at(i).unwrap())
        .collect()
}

fn generation<T: Sample>(c: &Channel<T>) -> u64 {
    c.stats().unwrap().generation
}

/// Round up to the 64-byte record alignment of the format (SPEC §12).
fn align64(n: u64) -> u64 {
    n.div_ceil(64) * 64
}

/// Start of the record region: two 4 KiB slot pages (SPEC §12's "8192").
const REGION_START: u64 = 8192;

// ---------------------------------------------------------------------------------------
// Geometry: whole scanlines per chunk, the nominal size rounded down to whole rows
// ---------------------------------------------------------------------------------------

/// Seed-behaviour §5.2, measured with the original library (lazy `zeros`, 4 MiB request):
/// (element size, W, H, chunk_size(), chunk_elems(), num_chunks, last chunk bytes).
const REFERENCE_TABLE: &[(usize, usize, usize, usize, usize, usize, usize)] = &[
    (1, 1, 1, 4_194_304, 4_194_304, 1, 1),
    (1, 10, 5, 4_194_300, 4_194_300, 1, 50),
    (1, 123, 456, 4_194_300, 4_194_300, 1, 56_088),
    (1, 1920, 1080, 4_193_280, 4_193_280, 1, 2_073_600),
    (1, 2048, 2049, 4_194_304, 4_194_304, 2, 2_048),
    (1, 8192, 8192, 4_194_304, 4_194_304, 16, 4_194_304),
    (2, 10, 5, 4_194_300, 2_097_150, 1, 100),
    (2, 2048, 2048, 4_194_304, 2_097_152, 2, 4_194_304),
    (2, 2048, 2049, 4_194_304, 2_097_152, 3, 4_096),
    (4, 10, 5, 4_194_280, 1_048_570, 1, 200),
    (4, 123, 456, 4_194_300, 1_048_575, 1, 224_352),
    (4, 1920, 1080, 4_193_280, 1_048_320, 2, 4_101_120),
    (4, 4096, 4096, 4_194_304, 1_048_576, 16, 4_194_304),
    (8, 123, 456, 4_193_808, 524_226, 1, 448_704),
    (8, 1920, 1080, 4_193_280, 524_160, 4, 4_008_960),
    (8, 8192, 8192, 4_194_304, 524_288, 128, 4_194_304),
];

/// The geometry this crate must give for a reference row: the reference value, except
/// that a nominal chunk larger than the channel is capped to the channel (our documented
/// deviation). Also checks that the reference row itself obeys the §5.1 rules.
fn expected_with_cap(row: (usize, usize, usize, usize, usize, usize, usize)) -> [usize; 4] {
    let (s, w, h, chunk_size, chunk_elems, n, last) = row;
    let row_bytes = w * s;
    let rows = (DEFAULT_CHUNK_SIZE / s) / w;
    // The reference row follows the rules of §5.1 (no cap).
    assert_eq!(chunk_size, rows * row_bytes, "reference rule 2: {row:?}");
    assert_eq!(chunk_elems * s, chunk_size, "reference elems: {row:?}");
    assert_eq!(n, h.div_ceil(rows), "reference rule 4: {row:?}");
    assert_eq!(
        last,
        (h - (n - 1) * rows) * row_bytes,
        "reference rule 5: {row:?}"
    );
    if rows >= h {
        let total = h * row_bytes;
        [total, h * w, 1, total]
    } else {
        [chunk_size, chunk_elems, n, last]
    }
}

fn check_reference_rows<T: Gen>() {
    let s = size_of::<T>();
    let mut rows = 0;
    for &row in REFERENCE_TABLE.iter().filter(|r| r.0 == s) {
        rows += 1;
        let (_, w, h, ..) = row;
        let want = expected_with_cap(row);
        let lazy = Channel::<T>::zeros(w, h, Settings::default()).unwrap();
        let (cs, ce, n, last) = observed(&lazy);
        assert_eq!([cs, ce, n, last], want, "{} {w}x{h} zeros", T::DTYPE);
        assert_eq!(lazy.dtype(), T::DTYPE);
        assert_eq!((lazy.width(), lazy.height()), (w, h));
        assert_eq!(lazy.uncompressed_size(), w * h, "elements, not bytes");
        assert_eq!(chunk_elem_sizes(&lazy).iter().sum::<usize>(), w * h);
        assert_eq!(lazy.chunk_elems_at(n - 1).unwrap() * s, last);
        assert_err!(lazy.chunk_size_at(n), Error::IndexOutOfRange { .. });
        assert_err!(lazy.chunk_elems_at(n), Error::IndexOutOfRange { .. });
        let g = lazy.geometry();
        assert_eq!((g.width(), g.height(), g.elem_size()), (w, h, s));
        assert_eq!(g.num_chunks(), n);
        // §5.1 rule 7: the eager constructor gives identical geometry (sizes we can afford
        // to compress in a test).
        if w * h * s <= 20 * 1024 * 1024 {
            let data = pattern::<T>(w * h);
            let eager = Channel::new(&data, w, h, Settings::default()).unwrap();
            assert_eq!(
                observed(&eager),
                (cs, ce, n, last),
                "{} {w}x{h} new",
                T::DTYPE
            );
            assert_eq!(chunk_elem_sizes(&eager), chunk_elem_sizes(&lazy));
        }
    }
    assert!(rows > 0, "no reference rows for {}", T::DTYPE);
}

#[test]
fn geometry_matches_reference_table_with_cap_u8() {
    check_reference_rows::<u8>();
    // The documented example of the cap: u8 10x5 is one 50-byte chunk, not 4,194,300.
    let c = Channel::<u8>::zeros(10, 5, Settings::default()).unwrap();
    assert_eq!((c.chunk_size(), c.num_chunks()), (50, 1));
}

#[test]
fn geometry_matches_reference_table_with_cap_u16() {
    check_reference_rows::<u16>();
}

#[test]
fn geometry_matches_reference_table_with_cap_f16() {
    check_reference_rows::<f16>();
}

#[test]
fn geometry_matches_reference_table_with_cap_f32() {
    check_reference_rows::<f32>();
}

#[test]
fn geometry_matches_reference_table_with_cap_i32() {
    check_reference_rows::<i32>();
}

#[test]
fn geometry_matches_reference_table_with_cap_f64() {
    check_reference_rows::<f64>();
}

#[test]
fn small_chunk_requests_floor_to_whole_scanlines() {
    // §5.2 "More": f32 10x5, request 40 -> 5 chunks of 40 B; 60 -> 5 x 40 B;
    // 80 -> [80, 80, 40] B = [20, 20, 10] elements.
    let c = Channel::<f32>::zeros(10, 5, Settings::default().chunk_size(40)).unwrap();
    assert_eq!(observed(&c), (40, 10, 5, 40));
    let c = Channel::<f32>::zeros(10, 5, Settings::default().chunk_size(60)).unwrap();
    assert_eq!(observed(&c), (40, 10, 5, 40));
    let c = Channel::<f32>::zeros(10, 5, Settings::default().chunk_size(80)).unwrap();
    assert_eq!(chunk_elem_sizes(&c), [20, 20, 10]);
    let bytes: Vec<usize> = (0..3).map(|i| c.chunk_size_at(i).unwrap()).collect();
    assert_eq!(bytes, [80, 80, 40]);

    // full(float32, 7.0, 100, 30, chunk_size=3200) -> [800, 800, 800, 600] elements.
    let c = Channel::<f32>::full(100, 30, 7.0, Settings::default().chunk_size(3200)).unwrap();
    assert_eq!(chunk_elem_sizes(&c), [800, 800, 800, 600]);
    // Same geometry eagerly.
    let data = pattern::<f32>(3000);
    let e = Channel::new(&data, 100, 30, Settings::default().chunk_size(3200)).unwrap();
    assert_eq!(chunk_elem_sizes(&e), [800, 800, 800, 600]);

    // §5.1 rule 2: a request not a multiple of the element size is floored
    // (f32, 1001 -> 1000 with W = 10; tall enough that the cap does not apply).
    let c = Channel::<f32>::zeros(10, 100, Settings::default().chunk_size(1001)).unwrap();
    assert_eq!(c.chunk_size(), 1000);
    assert_eq!(c.num_chunks(), 100usize.div_ceil(1000 / 40));
}

#[test]
fn invalid_geometry_and_settings_are_errors() {
    // Width 0, height 0, level 10: errors (a chunk below one scanline is one scanline:
    // tests/store_regressions.rs).
    assert_err!(
        Channel::<u8>::zeros(0, 5, Settings::default()),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        Channel::<u8>::zeros(5, 0, Settings::default()),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        Channel::<u8>::zeros(10, 5, Settings::default().level(10)),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        Channel::new(&[0u8; 49], 10, 5, Settings::default()),
        Error::InvalidArgument { .. }
    );
    assert_err!(Image::<u8>::new(0, 5), Error::InvalidArgument { .. });
}

// ---------------------------------------------------------------------------------------
// compressed_bytes / uncompressed_size: the original counts one element per lazy chunk
// ---------------------------------------------------------------------------------------

fn lazy_bytes<T: Sample>(w: usize, h: usize) -> (usize, usize) {
    let c = Channel::<T>::zeros(w, h, Settings::default()).unwrap();
    let n = c.num_chunks();
    assert!((0..n).all(|i| c.is_lazy(i).unwrap()));
    assert_eq!(c.uncompressed_size(), w * h);
    (c.compressed_bytes().unwrap(), n * size_of::<T>())
}

#[test]
fn compressed_bytes_counts_one_element_per_lazy_chunk() {
    // The reference's measured values where our cap does not change the chunk count:
    // zeros(u8,1,1) -> 1; zeros(u16,2048,2049) -> 6; zeros(f32,8192,8192) -> 256;
    // zeros(f64,8192,8192) -> 1024; zeros(u16,1920,1080) -> 2.
    for (got, want) in [
        lazy_bytes::<u8>(1, 1),
        lazy_bytes::<u16>(2048, 2049),
        lazy_bytes::<f32>(8192, 8192),
        lazy_bytes::<f64>(8192, 8192),
        lazy_bytes::<u16>(1920, 1080),
        // f32 1920x1080 has 2 chunks (546 rows each); u8 10x5 is one capped chunk.
        lazy_bytes::<f32>(1920, 1080),
        lazy_bytes::<u8>(10, 5),
    ] {
        assert_eq!(got, want);
    }
    assert_eq!(lazy_bytes::<f32>(8192, 8192).0, 64 * 4);
    assert_eq!(lazy_bytes::<u8>(1, 1).0, 1);

    // full(f32, 7.0, 100, 30, chunk 3200): 4 lazy chunks -> 16 bytes (reference: 16); a
    // non-constant chunk becomes a blob (at least a 32-byte blosc2 header) and the other
    // three still count 4 bytes each.
    let c = Channel::<f32>::full(100, 30, 7.0, Settings::default().chunk_size(3200)).unwrap();
    assert_eq!(c.compressed_bytes().unwrap(), 16);
    let ramp: Vec<f32> = (0..800).map(|i| i as f32).collect();
    c.set_chunk(0, &ramp).unwrap();
    assert!(!c.is_lazy(0).unwrap());
    let after = c.compressed_bytes().unwrap();
    assert!(
        after >= 3 * 4 + 32,
        "blob of chunk 0 counts its bytes: {after}"
    );
    // A constant chunk costs one element, not a blosc2 chunk (documented re-lazify).
    c.set_chunk(1, &[7.0; 800]).unwrap();
    assert_eq!(c.compressed_bytes().unwrap(), after);
    assert!(c.is_lazy(1).unwrap());
    assert_eq!(c.uncompressed_size(), 3000);
}

// ---------------------------------------------------------------------------------------
// Lazy chunks: fill values that read as the value and store nothing
// ---------------------------------------------------------------------------------------

#[test]
fn untouched_lazy_chunk_reads_as_fill() {
    let c = Channel::<f32>::full(100, 30, 7.0, Settings::default().chunk_size(3200)).unwrap();
    for i in 0..c.num_chunks() {
        assert!(c.is_lazy(i).unwrap());
        let mut out = vec![0.0f32; c.chunk_elems_at(i).unwrap()];
        c.get_chunk(i, &mut out).unwrap();
        assert!(out.iter().all(|&v| v == 7.0), "chunk {i}");
    }
    // After one chunk is materialised, the others still read as the fill.
    c.set_chunk(2, &pattern::<f32>(800)).unwrap();
    let all = c.get_decompressed().unwrap();
    assert!(all[..1600].iter().all(|&v| v == 7.0));
    assert_eq!(all[1600..2400], pattern::<f32>(800)[..]);
    assert!(all[2400..].iter().all(|&v| v == 7.0));
    assert_err!(c.get_chunk_vec(4), Error::IndexOutOfRange { .. });
    assert_err!(c.is_lazy(4), Error::IndexOutOfRange { .. });
    // A wrong buffer length is an error (also for a lazy chunk).
    assert_err!(
        c.get_chunk(0, &mut [0.0; 799]),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        c.get_chunk(3, &mut [0.0; 800]),
        Error::InvalidArgument { .. }
    );

    let z = Channel::<i16>::zeros(33, 17, Settings::default().chunk_size(33 * 2 * 5)).unwrap();
    assert!(z.get_decompressed().unwrap().iter().all(|&v| v == 0));
}

#[test]
fn full_keeps_nan_payload_and_negative_zero_bit_exactly() {
    let settings = Settings::default().chunk_size(40 * 4 * 3);
    let nan = f32::from_bits(0x7fc0_1234);
    let c = Channel::<f32>::full(40, 10, nan, settings).unwrap();
    assert!(
        c.get_decompressed()
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == 0x7fc0_1234)
    );
    assert!(
        c.get_chunk_vec(3)
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == 0x7fc0_1234)
    );

    let c = Channel::<f32>::full(40, 10, -0.0, settings).unwrap();
    assert!(
        c.get_decompressed()
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == (-0.0f32).to_bits())
    );

    let c = Channel::<f64>::full(40, 10, -0.0, settings).unwrap();
    assert!(
        c.get_decompressed()
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == (-0.0f64).to_bits())
    );
    let nan64 = f64::from_bits(0x7ff8_0000_dead_beef);
    let c = Channel::<f64>::full(40, 10, nan64, settings).unwrap();
    assert!(
        c.get_chunk_vec(0)
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == nan64.to_bits())
    );

    let nan16 = f16::from_bits(0x7e01);
    let c = Channel::<f16>::full(40, 10, nan16, settings).unwrap();
    assert!(
        c.get_decompressed()
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == 0x7e01)
    );

    // full_like keeps the bits too.
    let like = Channel::full_like(&Channel::<f32>::zeros(40, 10, settings).unwrap(), nan).unwrap();
    assert!(
        like.get_decompressed()
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == 0x7fc0_1234)
    );
}

#[test]
fn set_chunk_with_bitwise_constant_data_makes_the_chunk_lazy() {
    let (w, h) = (40, 10);
    let settings = Settings::default().chunk_size(w * 4 * 3);
    let data = pattern::<f32>(w * h);
    let c = Channel::new(&data, w, h, settings).unwrap();
    let n = c.num_chunks();
    assert!(
        (0..n).all(|i| !c.is_lazy(i).unwrap()),
        "real data is stored as blobs"
    );

    let nan = f32::from_bits(0x7fc0_1234);
    let len1 = c.chunk_elems_at(1).unwrap();
    c.set_chunk(1, &vec![nan; len1]).unwrap();
    assert!(c.is_lazy(1).unwrap());
    assert!(
        c.get_chunk_vec(1)
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == nan.to_bits())
    );

    let last = n - 1;
    let len_last = c.chunk_elems_at(last).unwrap();
    c.set_chunk(last, &vec![-0.0f32; len_last]).unwrap();
    assert!(c.is_lazy(last).unwrap());
    assert!(
        c.get_chunk_vec(last)
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == (-0.0f32).to_bits())
    );

    // Other chunks are untouched.
    let all = c.get_decompressed().unwrap();
    let ce = c.chunk_elems();
    assert!(same_bits(&all[..ce], &data[..ce]));
    assert!(same_bits(&all[2 * ce..last * ce], &data[2 * ce..last * ce]));

    // Lazy chunks count one element each in compressed_bytes.
    let blobs_only: usize = {
        let fresh = Channel::new(&data, w, h, settings).unwrap();
        fresh.compressed_bytes().unwrap()
    };
    assert!(c.compressed_bytes().unwrap() < blobs_only);
    assert_eq!(c.stats().unwrap().fill_chunks, 2);
    assert_eq!(c.stats().unwrap().blob_chunks, n - 2);

    // Integer types: constant non-zero chunks also become lazy.
    let u = Channel::new(&pattern::<u16>(w * h), w, h, settings).unwrap();
    u.set_chunk(0, &vec![0xbeef_u16; u.chunk_elems_at(0).unwrap()])
        .unwrap();
    assert!(u.is_lazy(0).unwrap());
    assert!(u.get_chunk_vec(0).unwrap().iter().all(|&v| v == 0xbeef));
}

#[test]
fn chunk_mixing_positive_and_negative_zero_is_not_constant() {
    let (w, h) = (16, 8);
    let c = Channel::<f32>::zeros(w, h, Settings::default().chunk_size(w * 4 * 4)).unwrap();
    let mut mixed = vec![0.0f32; c.chunk_elems_at(0).unwrap()];
    mixed[5] = -0.0;
    assert!(mixed.iter().all(|&v| v == 0.0), "values compare equal ...");
    c.set_chunk(0, &mixed).unwrap();
    assert!(
        !c.is_lazy(0).unwrap(),
        "... but bits differ: stored as a blob"
    );
    let back = c.get_chunk_vec(0).unwrap();
    assert!(same_bits(&back, &mixed));
    assert_eq!(back[5].to_bits(), (-0.0f32).to_bits());
    assert_eq!(back[4].to_bits(), 0);
    assert!(c.is_lazy(1).unwrap());
}

#[test]
fn whole_channel_reads_agree_on_every_kind_of_chunk() {
    // Zero fills (which a read into fresh zeroed memory may skip), a fill of -0.0 (zero as
    // a value, not as bits), another fill and compressed data, in every whole-channel path.
    let (w, h) = (16, 40);
    let settings = Settings::default().chunk_size(w * 4 * 8);
    let c = Channel::<f32>::zeros(w, h, settings).unwrap();
    let n = c.chunk_elems_at(0).unwrap();
    c.set_chunk(1, &vec![-0.0f32; n]).unwrap();
    c.set_chunk(2, &vec![2.5f32; n]).unwrap();
    c.set_chunk(3, &pattern::<f32>(n)).unwrap();
    assert_eq!(
        (0..5).map(|i| c.is_lazy(i).unwrap()).collect::<Vec<_>>(),
        [true, true, true, false, true]
    );
    let mut expected = vec![0.0f32; w * h];
    expected[n..2 * n].fill(-0.0);
    expected[2 * n..3 * n].fill(2.5);
    expected[3 * n..4 * n].copy_from_slice(&pattern::<f32>(n));
    for threads in [1, 2] {
        c.set_threads(threads).unwrap();
        assert!(same_bits(&c.get_decompressed().unwrap(), &expected));
        let mut dirty = vec![7.0f32; w * h];
        c.decompress_into(&mut dirty).unwrap();
        assert!(
            same_bits(&dirty, &expected),
            "a zero fill overwrites what `out` held"
        );
        let image = Image::<f32>::new(w, h).unwrap();
        let lazy = image.add_lazy_channel(0.0, None, settings).unwrap();
        for index in 1..4 {
            lazy.set_chunk(index, &expected[index * n..(index + 1) * n])
                .unwrap();
        }
        image.set_threads(threads).unwrap();
        assert!(same_bits(&image.get_decompressed().unwrap()[0], &expected));
    }
}

// ---------------------------------------------------------------------------------------
// zeros_like / full_like: same geometry and settings, lazy content
// ---------------------------------------------------------------------------------------

#[test]
fn zeros_like_and_full_like_copy_size_and_settings() {
    // Reference: full_like(src zstd L3 block 40 chunk 80, 3) -> 3 chunks, 12 bytes, and
    // copies chunk 80, block 40, zstd, level 3 (f32 10x5).
    let src_settings = Settings::default()
        .codec(Codec::Zstd)
        .level(3)
        .block_size(40)
        .chunk_size(80);
    let src = Channel::new(&pattern::<f32>(50), 10, 5, src_settings).unwrap();
    let like = Channel::full_like(&src, 3.0).unwrap();
    assert_eq!(like.num_chunks(), 3);
    assert_eq!(like.compressed_bytes().unwrap(), 3 * size_of::<f32>());
    assert_eq!(like.chunk_size(), 80);
    assert_eq!(like.block_size(), 40);
    assert_eq!(like.codec(), Codec::Zstd);
    assert_eq!(like.level(), 3);
    assert!(like.get_decompressed().unwrap().iter().all(|&v| v == 3.0));

    for src in [
        src,
        // A capped chunk, a block request larger than the chunk, another codec.
        Channel::<f32>::zeros(
            13,
            7,
            Settings::default()
                .codec(Codec::Blosclz)
                .level(1)
                .block_size(1 << 20),
        )
        .unwrap(),
        // Automatic block size, several chunks with a short last one.
        Channel::new(
            &pattern::<f32>(31 * 17),
            31,
            17,
            Settings::default()
                .codec(Codec::Lz4hc)
                .level(0)
                .block_size(0)
                .chunk_size(31 * 4 * 5),
        )
        .unwrap(),
    ] {
        for like in [
            Channel::zeros_like(&src).unwrap(),
            Channel::full_like(&src, -2.5).unwrap(),
        ] {
            assert_eq!(like.width(), src.width());
            assert_eq!(like.height(), src.height());
            assert_eq!(like.codec(), src.codec());
            assert_eq!(like.level(), src.level());
            assert_eq!(like.block_size(), src.block_size());
            assert_eq!(like.settings(), src.settings());
            assert_eq!(observed(&like), observed(&src));
            assert_eq!(chunk_elem_sizes(&like), chunk_elem_sizes(&src));
            let n = like.num_chunks();
            assert!((0..n).all(|i| like.is_lazy(i).unwrap()));
        }
        let z = Channel::zeros_like(&src).unwrap();
        assert!(z.get_decompressed().unwrap().iter().all(|&v| v == 0.0));
    }
}

// ---------------------------------------------------------------------------------------
// Round trips (every dtype, codec, level; short last chunk; block size)
// ---------------------------------------------------------------------------------------

/// The block size c-blosc2 uses for a full chunk: the request capped to the chunk and
/// floored to whole elements when above one element; 0 stays 0 (automatic).
fn effective_block(request: usize, chunk_bytes: usize, elem: usize) -> usize {
    let b = request.min(chunk_bytes);
    if b > elem { b / elem * elem } else { b }
}

fn round_trip<T: Gen>() {
    let s = size_of::<T>();
    let (w, h) = (37, 29);
    let rows = 4; // 29 = 7 x 4 + 1: seven full chunks and a one-row last chunk
    let chunk = w * s * rows;
    let data = pattern::<T>(w * h);
    let other = pattern2::<T>(w * h);
    for codec in Codec::ALL {
        for level in [0u8, 9] {
            for block in [0, 101, DEFAULT_BLOCK_SIZE] {
                let what = format!("{} {codec} level {level} block {block}", T::DTYPE);
                let settings = Settings::default()
                    .codec(codec)
                    .level(level)
                    .block_size(block)
                    .chunk_size(chunk);
                let c = Channel::new(&data, w, h, settings).unwrap();
                assert_eq!(c.num_chunks(), h.div_ceil(rows), "{what}");
                assert_eq!(c.chunk_elems_at(h / rows).unwrap(), w, "{what}: short last");
                assert_eq!(c.codec(), codec, "{what}");
                assert_eq!(c.level(), level, "{what}");
                assert_eq!(c.block_size(), effective_block(block, chunk, s), "{what}");
                assert!(same_bits(&c.get_decompressed().unwrap(), &data), "{what}");
                let ce = c.chunk_elems();
                for i in 0..c.num_chunks() {
                    let part = &data[i * ce..(i * ce + ce).min(data.len())];
                    assert!(same_bits(&c.get_chunk_vec(i).unwrap(), part), "{what} {i}");
                    assert!(!c.is_lazy(i).unwrap(), "{what} {i}");
                }
                // Rewrite every chunk (the short last one included) and read back.
                for i in 0..c.num_chunks() {
                    let part = &other[i * ce..(i * ce + ce).min(other.len())];
                    c.set_chunk(i, part).unwrap();
                }
                assert!(same_bits(&c.get_decompressed().unwrap(), &other), "{what}");
            }
        }
    }
}

#[test]
fn round_trip_u8_every_codec_and_level() {
    round_trip::<u8>();
}
#[test]
fn round_trip_i8_every_codec_and_level() {
    round_trip::<i8>();
}
#[test]
fn round_trip_u16_every_codec_and_level() {
    round_trip::<u16>();
}
#[test]
fn round_trip_i16_every_codec_and_level() {
    round_trip::<i16>();
}
#[test]
fn round_trip_u32_every_codec_and_level() {
    round_trip::<u32>();
}
#[test]
fn round_trip_i32_every_codec_and_level() {
    round_trip::<i32>();
}
#[test]
fn round_trip_f16_every_codec_and_level() {
    round_trip::<f16>();
}
#[test]
fn round_trip_f32_every_codec_and_level() {
    round_trip::<f32>();
}
#[test]
fn round_trip_f64_every_codec_and_level() {
    round_trip::<f64>();
}

#[test]
fn block_size_reports_the_effective_value() {
    // f32 10x5: one capped 200-byte chunk.
    let bs = |block: usize| {
        Channel::<f32>::zeros(10, 5, Settings::default().block_size(block))
            .unwrap()
            .block_size()
    };
    assert_eq!(bs(0), 0, "0 = automatic");
    assert_eq!(bs(1 << 20), 200, "capped to the chunk");
    assert_eq!(bs(DEFAULT_BLOCK_SIZE), 200, "the default is capped too");
    assert_eq!(bs(101), 100, "floored to whole elements");
    assert_eq!(bs(64), 64);
    // A large channel keeps the default 32 KiB block.
    let big = Channel::<f32>::zeros(4096, 4096, Settings::default()).unwrap();
    assert_eq!(big.block_size(), DEFAULT_BLOCK_SIZE);
    // set_threads never changes the block size (unlike update_nthreads, §12 bug 16).
    let c = Channel::<f32>::zeros(64, 64, Settings::default().block_size(128)).unwrap();
    c.set_threads(2).unwrap();
    assert_eq!(c.block_size(), 128);
    assert_eq!(c.threads(), 2);
}

#[test]
fn set_chunk_checks_index_and_exact_length_before_changing_anything() {
    let (w, h) = (100, 30);
    let data = pattern::<f32>(w * h);
    let c = Channel::new(&data, w, h, Settings::default().chunk_size(3200)).unwrap();
    let gen0 = generation(&c);
    // §8: non-last wrong length, last shorter / longer / over nominal / empty, bad index.
    assert_err!(c.set_chunk(2, &[1.0; 799]), Error::InvalidArgument { .. });
    assert_err!(c.set_chunk(3, &[1.0; 500]), Error::InvalidArgument { .. });
    assert_err!(c.set_chunk(3, &[1.0; 700]), Error::InvalidArgument { .. });
    assert_err!(c.set_chunk(3, &[1.0; 800]), Error::InvalidArgument { .. });
    assert_err!(c.set_chunk(3, &[1.0; 900]), Error::InvalidArgument { .. });
    assert_err!(c.set_chunk(3, &[]), Error::InvalidArgument { .. });
    assert_err!(c.set_chunk(4, &[1.0; 800]), Error::IndexOutOfRange { .. });
    assert_eq!(chunk_elem_sizes(&c), [800, 800, 800, 600]);
    assert_eq!(c.uncompressed_size(), w * h);
    assert_eq!(c.get_decompressed().unwrap(), data);
    assert_eq!(generation(&c), gen0, "no commit on a rejected write");
}

// ---------------------------------------------------------------------------------------
// update_chunks / for_each_chunk: element coordinates x(i), y(i) of every chunk
// ---------------------------------------------------------------------------------------

#[test]
fn chunk_coordinates_are_in_elements_for_f32() {
    // §5.3: float, W = 100, 8 rows per chunk: chunk 1, local 0 -> y = 8 (the original
    // library reports 32).
    let c = Channel::<f32>::zeros(100, 30, Settings::default().chunk_size(3200)).unwrap();
    let rows = c.geometry().rows_per_chunk();
    assert_eq!(rows, 8);
    let mut seen = Vec::new();
    c.update_chunks(|chunk| {
        seen.push((chunk.index(), chunk.x(0), chunk.y(0)));
        if chunk.index() == 1 {
            assert_eq!((chunk.x(150), chunk.y(150)), (50, rows + 1));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, [(0, 0, 0), (1, 0, 8), (2, 0, 16), (3, 0, 24)]);
    let mut seen = Vec::new();
    c.for_each_chunk(|chunk| {
        seen.push((chunk.index(), chunk.x(0), chunk.y(0)));
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, [(0, 0, 0), (1, 0, 8), (2, 0, 16), (3, 0, 24)]);
}

#[test]
fn update_chunks_writes_only_modified_chunks_in_one_commit() {
    let (w, h) = (10, 20);
    let rows = 4;
    let c = Channel::<f32>::zeros(w, h, Settings::default().chunk_size(w * 4 * rows)).unwrap();
    let n = c.num_chunks();
    assert_eq!(n, h / rows);
    let gen0 = generation(&c);
    let mut visited = Vec::new();
    c.update_chunks(|chunk| {
        let index = chunk.index();
        visited.push(index);
        assert_eq!(
            chunk.y(0),
            index * rows,
            "chunk {index} starts at row index*rows"
        );
        if index == 1 || index == 3 {
            let len = chunk.data().len();
            let coords: Vec<(usize, usize)> = (0..len).map(|i| (chunk.x(i), chunk.y(i))).collect();
            for (v, (x, y)) in chunk.data_mut().iter_mut().zip(coords) {
                *v = (y * 1000 + x) as f32;
            }
            assert!(chunk.is_modified());
        } else {
            // Reading does not mark the chunk modified.
            assert!(chunk.data().iter().all(|&v| v == 0.0));
            assert!(!chunk.is_modified());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(visited, (0..n).collect::<Vec<_>>());
    assert_eq!(generation(&c), gen0 + 1, "one commit for the whole update");
    for i in 0..n {
        assert_eq!(c.is_lazy(i).unwrap(), i != 1 && i != 3, "chunk {i}");
    }
    let all = c.get_decompressed().unwrap();
    for y in 0..h {
        for x in 0..w {
            let chunk = y / rows;
            let want = if chunk == 1 || chunk == 3 {
                (y * 1000 + x) as f32
            } else {
                0.0
            };
            assert_eq!(all[y * w + x], want, "({x}, {y})");
        }
    }

    // Nothing modified: every chunk keeps its storage and nothing is committed.
    let gen1 = generation(&c);
    c.update_chunks(|chunk| {
        let _ = chunk.data();
        Ok(())
    })
    .unwrap();
    assert_eq!(generation(&c), gen1);
    for i in 0..n {
        assert_eq!(c.is_lazy(i).unwrap(), i != 1 && i != 3, "chunk {i}");
    }
}

#[test]
fn update_chunks_error_commits_nothing() {
    let (w, h) = (10, 20);
    let c = Channel::<f32>::zeros(w, h, Settings::default().chunk_size(w * 4 * 4)).unwrap();
    let gen0 = generation(&c);
    let result = c.update_chunks(|chunk| {
        if chunk.index() == 2 {
            return Err(Error::UnknownChannelName("stop".into()));
        }
        chunk.data_mut().fill(5.0);
        Ok(())
    });
    match result {
        Err(Error::UnknownChannelName(name)) => assert_eq!(name, "stop"),
        other => panic!("the closure's error is returned, got {other:?}"),
    }
    assert_eq!(generation(&c), gen0);
    assert!(c.get_decompressed().unwrap().iter().all(|&v| v == 0.0));
    assert!((0..c.num_chunks()).all(|i| c.is_lazy(i).unwrap()));
    // The channel is writable afterwards (the failed update released the writer).
    c.set_chunk(0, &[1.0; 40]).unwrap();
    assert_eq!(generation(&c), gen0 + 1);
}

fn for_each_chunk_sees_every_element<T: Gen>() {
    let (w, h) = (23, 19);
    let s = size_of::<T>();
    let data = pattern::<T>(w * h);
    let c = Channel::new(&data, w, h, Settings::default().chunk_size(w * s * 4)).unwrap();
    let mut count = 0;
    let mut indices = Vec::new();
    c.for_each_chunk(|chunk| {
        indices.push(chunk.index());
        for (i, v) in chunk.data().iter().enumerate() {
            let (x, y) = (chunk.x(i), chunk.y(i));
            assert!(x < w && y < h);
            assert!(
                same_bits(&[*v], &[data[y * w + x]]),
                "{} ({x}, {y})",
                T::DTYPE
            );
            count += 1;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(count, w * h);
    assert_eq!(indices, (0..c.num_chunks()).collect::<Vec<_>>());
}

#[test]
fn for_each_chunk_sees_every_element_with_right_coordinates() {
    for_each_chunk_sees_every_element::<u8>();
    for_each_chunk_sees_every_element::<u16>();
    for_each_chunk_sees_every_element::<f32>();
    for_each_chunk_sees_every_element::<f64>();
}

// ---------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------

#[test]
fn batch_commits_many_chunks_as_one_commit() {
    let (w, h) = (16, 12);
    let data = pattern::<f32>(w * h);
    let c = Channel::new(&data, w, h, Settings::default().chunk_size(w * 4 * 3)).unwrap();
    let ce = c.chunk_elems();
    let n = c.num_chunks();
    let gen0 = generation(&c);
    let new: Vec<Vec<f32>> = (0..n)
        .map(|i| (0..ce).map(|j| (i * 100 + j) as f32).collect())
        .collect();
    let other_handle = c.clone();
    {
        let mut batch = c.batch().unwrap();
        for (i, chunk) in new.iter().enumerate() {
            batch.set_chunk(i, chunk).unwrap();
        }
        // Reads before the commit see the old data, through any handle.
        assert_eq!(c.get_decompressed().unwrap(), data);
        assert_eq!(other_handle.get_chunk_vec(1).unwrap(), data[ce..2 * ce]);
        assert_eq!(generation(&c), gen0);
        batch.commit().unwrap();
    }
    assert_eq!(generation(&c), gen0 + 1, "one commit for the batch");
    assert_eq!(c.get_decompressed().unwrap(), new.concat());
    assert_eq!(other_handle.get_chunk_vec(2).unwrap(), new[2]);
}

#[test]
fn dropped_batch_is_discarded() {
    let (w, h) = (16, 12);
    let data = pattern::<f32>(w * h);
    let c = Channel::new(&data, w, h, Settings::default().chunk_size(w * 4 * 3)).unwrap();
    let gen0 = generation(&c);
    {
        let mut batch = c.batch().unwrap();
        batch.set_chunk(0, &[9.0; 48]).unwrap();
        batch.set_chunk(1, &pattern2::<f32>(48)).unwrap();
    }
    assert_eq!(generation(&c), gen0);
    assert_eq!(c.get_decompressed().unwrap(), data);
    assert!(!c.is_lazy(0).unwrap());
    // The file is writable again and later commits are intact.
    c.set_chunk(0, &[9.0; 48]).unwrap();
    assert_eq!(generation(&c), gen0 + 1);
    assert_eq!(c.get_chunk_vec(0).unwrap(), vec![9.0; 48]);
    assert_eq!(c.get_chunk_vec(1).unwrap(), data[48..96]);
}

#[test]
fn batch_rejects_bad_chunks_and_keeps_the_rest() {
    let c = Channel::<f32>::zeros(10, 10, Settings::default().chunk_size(160)).unwrap();
    let mut batch = c.batch().unwrap();
    batch.set_chunk(0, &[1.0; 40]).unwrap();
    assert_err!(
        batch.set_chunk(1, &[1.0; 39]),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        batch.set_chunk(3, &[1.0; 40]),
        Error::IndexOutOfRange { .. }
    );
    batch.commit().unwrap();
    assert_eq!(c.get_chunk_vec(0).unwrap(), vec![1.0; 40]);
    assert_eq!(c.get_chunk_vec(1).unwrap(), vec![0.0; 40]);
}

#[test]
fn write_while_batch_open_on_same_thread_is_batch_in_progress() {
    let c = Channel::<f32>::zeros(10, 10, Settings::default().chunk_size(160)).unwrap();
    let clone = c.clone();
    let batch = c.batch().unwrap();
    assert_err!(c.set_chunk(0, &[1.0; 40]), Error::BatchInProgress);
    assert_err!(clone.set_chunk(1, &[1.0; 40]), Error::BatchInProgress);
    assert_err!(c.batch(), Error::BatchInProgress);
    assert_err!(
        c.update_chunks(|chunk| {
            chunk.data_mut().fill(1.0);
            Ok(())
        }),
        Error::BatchInProgress
    );
    drop(batch);
    c.set_chunk(0, &[1.0; 40]).unwrap();
    assert_eq!(c.get_chunk_vec(0).unwrap(), vec![1.0; 40]);

    // Through an image: a batch on one channel blocks image writes on the same thread.
    let img = Image::<u8>::new(8, 8).unwrap();
    let ch = img.add_lazy_channel(0, None, Settings::default()).unwrap();
    let batch = ch.batch().unwrap();
    assert_err!(img.set_metadata(json!({"a": 1})), Error::BatchInProgress);
    assert_err!(
        img.add_lazy_channel(1, None, Settings::default()),
        Error::BatchInProgress
    );
    drop(batch);
    img.set_metadata(json!({"a": 1})).unwrap();
}

#[test]
fn write_from_another_thread_waits_for_the_open_batch() {
    let c = Channel::<u8>::zeros(10, 10, Settings::default().chunk_size(50)).unwrap();
    let gen0 = generation(&c);
    let mut batch = c.batch().unwrap();
    batch.set_chunk(0, &[1; 50]).unwrap();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| c.set_chunk(0, &[2; 50]));
        std::thread::sleep(std::time::Duration::from_millis(50));
        batch.commit().unwrap();
        writer.join().unwrap().unwrap();
    });
    // The other thread's write was serialised after the batch.
    assert_eq!(c.get_chunk_vec(0).unwrap(), vec![2; 50]);
    assert_eq!(generation(&c), gen0 + 2);
}

// ---------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------

#[test]
fn concurrent_get_chunk_from_four_threads_is_correct() {
    let (w, h) = (128, 96);
    let data = pattern::<f32>(w * h);
    let settings = Settings::default().chunk_size(w * 4 * 8).block_size(512);
    let c = Channel::new(&data, w, h, settings).unwrap();
    c.set_chunk(3, &vec![4.5; c.chunk_elems_at(3).unwrap()])
        .unwrap();
    let mut expected = data.clone();
    let ce = c.chunk_elems();
    expected[3 * ce..4 * ce].fill(4.5);
    let n = c.num_chunks();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (c, expected) = (&c, &expected);
                scope.spawn(move || {
                    let mut buf = vec![0.0f32; ce];
                    for round in 0..20 {
                        for k in 0..n {
                            let i = (k + t + round) % n;
                            let len = c.chunk_elems_at(i).unwrap();
                            c.get_chunk(i, &mut buf[..len]).unwrap();
                            assert_eq!(buf[..len], expected[i * ce..i * ce + len], "chunk {i}");
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn set_threads_zero_is_invalid() {
    let c = Channel::<f32>::zeros(8, 8, Settings::default()).unwrap();
    let before = c.threads();
    assert!(before >= 1);
    assert_err!(c.set_threads(0), Error::InvalidArgument { .. });
    assert_eq!(c.threads(), before);
    let any: AnyChannel = c.clone().into_any();
    assert_err!(any.set_threads(0), Error::InvalidArgument { .. });
    let img = Image::<f32>::new(8, 8).unwrap();
    assert_err!(img.set_threads(0), Error::InvalidArgument { .. });
    img.set_threads(3).unwrap();
    img.add_lazy_channel(0.0, None, Settings::default())
        .unwrap();
    assert_eq!(
        img.channel(0).unwrap().threads(),
        3,
        "image handles inherit threads"
    );
}

#[test]
fn multithreaded_decompress_equals_single_threaded() {
    let (w, h) = (256, 200);
    let data = pattern::<f32>(w * h);
    let settings = Settings::default().chunk_size(w * 4 * 16).block_size(1024);
    let c1 = Channel::new(&data, w, h, settings).unwrap();
    c1.set_threads(1).unwrap();
    let c4 = c1.clone();
    c4.set_threads(4).unwrap();
    assert!(c1.num_chunks() > 4);
    let one = c1.get_decompressed().unwrap();
    let four = c4.get_decompressed().unwrap();
    assert_eq!(one, data);
    assert_eq!(four, one);
    let mut into = vec![0.0f32; w * h];
    c4.decompress_into(&mut into).unwrap();
    assert_eq!(into, data);
    for i in 0..c1.num_chunks() {
        assert_eq!(c4.get_chunk_vec(i).unwrap(), c1.get_chunk_vec(i).unwrap());
    }
    // Chunks compressed with several threads decode to the same data.
    let other = pattern2::<f32>(w * h);
    let ce = c4.chunk_elems();
    for i in 0..c4.num_chunks() {
        let end = (i * ce + ce).min(w * h);
        c4.set_chunk(i, &other[i * ce..end]).unwrap();
    }
    assert_eq!(c1.get_decompressed().unwrap(), other);
    assert_err!(
        c1.decompress_into(&mut vec![0.0; w * h - 1]),
        Error::InvalidArgument { .. }
    );
}

// ---------------------------------------------------------------------------------------
// read_rows
// ---------------------------------------------------------------------------------------

fn read_rows_matches<T: Gen>() {
    let (w, h) = (13, 50);
    let s = size_of::<T>();
    let rows_per_chunk = 7;
    let settings = Settings::default()
        .chunk_size(w * s * rows_per_chunk)
        .block_size(32);
    let c = Channel::new(&pattern::<T>(w * h), w, h, settings).unwrap();
    // Make one chunk lazy so a range crosses blob -> fill -> blob.
    let fill = T::from_index(3);
    c.set_chunk(2, &vec![fill; c.chunk_elems_at(2).unwrap()])
        .unwrap();
    assert!(c.is_lazy(2).unwrap());
    let all = c.get_decompressed().unwrap();
    for (first, n) in [
        (0, h),
        (5, 3),
        (6, 2),
        (6, 9),
        (13, 15),
        (14, 7),
        (20, 30),
        (48, 2),
        (49, 1),
        (0, 1),
        (10, 0),
    ] {
        let mut out = vec![T::zeroed(); n * w];
        c.read_rows(first, &mut out).unwrap();
        assert!(
            same_bits(&out, &all[first * w..(first + n) * w]),
            "{} rows {first}..{}",
            T::DTYPE,
            first + n
        );
    }
    assert_err!(
        c.read_rows(49, &mut vec![T::zeroed(); 2 * w]),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        c.read_rows(0, &mut vec![T::zeroed(); w + 1]),
        Error::InvalidArgument { .. }
    );
}

#[test]
fn read_rows_across_chunk_boundaries_equals_get_decompressed() {
    read_rows_matches::<u8>();
    read_rows_matches::<i16>();
    read_rows_matches::<f32>();
    read_rows_matches::<f64>();
}

// ---------------------------------------------------------------------------------------
// Image: names (all or none), metadata, channel handles, removal
// ---------------------------------------------------------------------------------------

#[test]
fn new_image_is_empty_with_null_metadata() {
    let img = Image::<f32>::new(12, 7).unwrap();
    assert_eq!((img.width(), img.height(), img.num_channels()), (12, 7, 0));
    assert!(img.channel_names().is_empty());
    assert!(img.channels().unwrap().is_empty());
    assert_eq!(img.metadata(), serde_json::Value::Null);
    assert_eq!(img.compression_ratio().unwrap(), 1.0);
    assert_eq!(img.chunk_size().unwrap(), 0);
    assert_eq!(img.block_size().unwrap(), 0);
    assert!(img.get_decompressed().unwrap().is_empty());
    assert!(img.path().is_none());
    assert_err!(img.channel(0), Error::IndexOutOfRange { .. });
}

#[test]
fn image_channel_names_are_optional_and_complete() {
    let (w, h) = (8, 4);
    let img = Image::<u8>::new(w, h).unwrap();
    let s = Settings::default();
    img.add_channel(&pattern::<u8>(w * h), None, s).unwrap();
    img.add_lazy_channel(1, None, s).unwrap();
    assert_eq!(img.num_channels(), 2);
    assert!(
        img.channel_names().is_empty(),
        "no names until one is given"
    );
    assert_err!(img.channel_index(""), Error::UnknownChannelName(_));

    // Naming a channel in an unnamed image names the others "".
    img.add_lazy_channel(2, Some("G"), s).unwrap();
    assert_eq!(img.channel_names(), ["", "", "G"]);
    // An unnamed channel in a named image gets "".
    img.add_lazy_channel(3, None, s).unwrap();
    assert_eq!(img.channel_names(), ["", "", "G", ""]);
    assert_eq!(img.channel_index("G").unwrap(), 2);
    assert_eq!(img.channel_index("").unwrap(), 0, "first match");
    assert_eq!(
        img.channel_by_name("G").unwrap().get_chunk_vec(0).unwrap(),
        vec![2; w * h]
    );

    // A named image from the start.
    let named = Image::<u8>::new(w, h).unwrap();
    named.add_lazy_channel(1, Some("R"), s).unwrap();
    named.add_lazy_channel(2, None, s).unwrap();
    assert_eq!(named.channel_names(), ["R", ""]);
}

#[test]
fn duplicate_names_resolve_to_first_match() {
    let (w, h) = (8, 4);
    let img = Image::<u16>::new(w, h).unwrap();
    for v in [10u16, 20, 30] {
        img.add_lazy_channel(v, None, Settings::default()).unwrap();
    }
    img.set_channel_names(&["A", "A", "B"]).unwrap();
    assert_eq!(img.channel_names(), ["A", "A", "B"]);
    assert_eq!(img.channel_index("A").unwrap(), 0);
    assert_eq!(img.channel_index("B").unwrap(), 2);
    assert_eq!(
        img.channel_by_name("A").unwrap().get_chunk_vec(0).unwrap(),
        vec![10; w * h]
    );
    assert_eq!(
        img.channel_by_name("B").unwrap().get_chunk_vec(0).unwrap(),
        vec![30; w * h]
    );

    // Unknown names.
    assert_err!(img.channel_index("Z"), Error::UnknownChannelName(_));
    assert_err!(img.channel_by_name("Z"), Error::UnknownChannelName(_));
    assert_err!(
        img.remove_channel_by_name("Z"),
        Error::UnknownChannelName(_)
    );
    match img.channel_index("Z") {
        Err(Error::UnknownChannelName(name)) => assert_eq!(name, "Z"),
        other => panic!("{other:?}"),
    }
    assert_eq!(img.num_channels(), 3);

    // Removing by a duplicate name removes the first match.
    img.remove_channel_by_name("A").unwrap();
    assert_eq!(img.channel_names(), ["A", "B"]);
    assert_eq!(
        img.channel(0).unwrap().get_chunk_vec(0).unwrap(),
        vec![20; w * h]
    );
}

#[test]
fn set_channel_names_with_wrong_count_is_invalid() {
    let img = Image::<u8>::new(4, 4).unwrap();
    img.add_lazy_channel(0, None, Settings::default()).unwrap();
    img.add_lazy_channel(0, None, Settings::default()).unwrap();
    assert_err!(img.set_channel_names(&["A"]), Error::InvalidArgument { .. });
    assert_err!(
        img.set_channel_names(&["A", "B", "C"]),
        Error::InvalidArgument { .. }
    );
    assert!(img.channel_names().is_empty(), "unchanged after the error");
    img.set_channel_names(&["A", "B"]).unwrap();
    assert_err!(img.set_channel_names(&[]), Error::InvalidArgument { .. });
    assert_eq!(img.channel_names(), ["A", "B"]);
}

#[test]
fn image_metadata_round_trips_json_and_null_removes_it() {
    let img = Image::<f32>::new(4, 4).unwrap();
    assert_eq!(img.metadata(), serde_json::Value::Null);
    let meta = json!({
        "compression": "zip",
        "oiio:ColorSpace": "linear",
        "nested": {"list": [1, 2.5, "three", null, {"deep": [true, false]}], "n": -7},
        "zeta": 1,
        "alpha": 2
    });
    img.set_metadata(meta.clone()).unwrap();
    assert_eq!(img.metadata(), meta);
    // Order is preserved (ordered JSON, as nlohmann::ordered_json).
    let keys: Vec<String> = img
        .metadata()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        ["compression", "oiio:ColorSpace", "nested", "zeta", "alpha"]
    );
    img.set_metadata(json!([1, 2, 3])).unwrap();
    assert_eq!(img.metadata(), json!([1, 2, 3]));
    img.set_metadata(serde_json::Value::Null).unwrap();
    assert_eq!(img.metadata(), serde_json::Value::Null);
}

#[test]
fn image_channel_handles_write_through() {
    let (w, h) = (20, 9);
    let settings = Settings::default().chunk_size(w * 4 * 4);
    let img = Image::<f32>::new(w, h).unwrap();
    let a = img
        .add_channel(&pattern::<f32>(w * h), Some("a"), settings)
        .unwrap();
    let b = img.add_lazy_channel(1.0, Some("b"), settings).unwrap();

    // Set through the handle returned by add_*; read through the image.
    let new0: Vec<f32> = (0..80).map(|i| i as f32 * 0.5).collect();
    a.set_chunk(0, &new0).unwrap();
    assert_eq!(img.channel(0).unwrap().get_chunk_vec(0).unwrap(), new0);
    assert_eq!(img.get_decompressed().unwrap()[0][..80], new0[..]);
    assert_eq!(a.get_decompressed().unwrap()[..80], new0[..]);

    // Set through a handle from image.channel(i); read through the other handles.
    let b2 = img.channel_by_name("b").unwrap();
    b2.set_chunk(2, &[6.0; 20]).unwrap();
    assert_eq!(b.get_chunk_vec(2).unwrap(), vec![6.0; 20]);
    assert!(b.is_lazy(2).unwrap());
    let planes = img.get_decompressed().unwrap();
    assert_eq!(planes.len(), 2);
    assert_eq!(planes[1][160..], [6.0; 20]);
    assert!(planes[1][..160].iter().all(|&v| v == 1.0));
    // Batches and updates through image handles write through too.
    b.update_chunks(|chunk| {
        if chunk.index() == 0 {
            chunk.data_mut().fill(9.0);
        }
        Ok(())
    })
    .unwrap();
    assert!(
        img.channel(1)
            .unwrap()
            .get_chunk_vec(0)
            .unwrap()
            .iter()
            .all(|&v| v == 9.0)
    );
    // Channels keep the image's size.
    assert_eq!((a.width(), a.height()), (w, h));
    assert_err!(
        img.add_channel(&pattern::<f32>(w * h - 1), None, settings),
        Error::InvalidArgument { .. }
    );
    assert_eq!(img.num_channels(), 2);
}

#[test]
fn removed_channel_handle_returns_channel_removed() {
    let (w, h) = (8, 6);
    let img = Image::<i32>::new(w, h).unwrap();
    let s = Settings::default();
    let ha = img
        .add_channel(&pattern::<i32>(w * h), Some("a"), s)
        .unwrap();
    let hb = img
        .add_channel(&pattern2::<i32>(w * h), Some("b"), s)
        .unwrap();
    let hc = img.add_lazy_channel(7, Some("c"), s).unwrap();
    let hb_again = img.channel(1).unwrap();

    img.remove_channel(1).unwrap();
    assert_eq!(img.num_channels(), 2);
    assert_eq!(img.channel_names(), ["a", "c"]);
    for h in [&hb, &hb_again] {
        assert_err!(h.is_lazy(0), Error::ChannelRemoved);
        assert_err!(h.is_lazy(0), Error::ChannelRemoved);
        assert_err!(h.get_chunk_vec(0), Error::ChannelRemoved);
        assert_err!(h.get_decompressed(), Error::ChannelRemoved);
        assert_err!(h.set_chunk(0, &[1; 48]), Error::ChannelRemoved);
        assert_err!(h.compressed_bytes(), Error::ChannelRemoved);
        assert_eq!(Channel::zeros_like(h).unwrap().settings(), h.settings());
    }
    // Other handles still work, reads and writes.
    assert_eq!(ha.get_decompressed().unwrap(), pattern::<i32>(w * h));
    assert_eq!(hc.get_decompressed().unwrap(), vec![7; w * h]);
    hc.set_chunk(0, &pattern::<i32>(w * h)).unwrap();
    assert_eq!(
        img.channel(1).unwrap().get_decompressed().unwrap(),
        pattern::<i32>(w * h)
    );
    assert_eq!(
        img.channel_by_name("c")
            .unwrap()
            .get_decompressed()
            .unwrap(),
        pattern::<i32>(w * h)
    );

    // Adding after a removal does not revive the removed handle.
    img.add_lazy_channel(3, Some("d"), s).unwrap();
    assert_err!(hb.is_lazy(0), Error::ChannelRemoved);

    // remove_channel(len) is out of range, not an off-by-one removal.
    let len = img.num_channels();
    match img.remove_channel(len) {
        Err(Error::IndexOutOfRange { index, len: l, .. }) => assert_eq!((index, l), (len, len)),
        other => panic!("{other:?}"),
    }
    assert_eq!(img.num_channels(), len);
}

#[test]
fn remove_channel_works_on_unnamed_image() {
    let img = Image::<u8>::new(4, 4).unwrap();
    for v in [1u8, 2, 3] {
        img.add_lazy_channel(v, None, Settings::default()).unwrap();
    }
    img.remove_channel(0).unwrap();
    assert_eq!(img.num_channels(), 2);
    assert!(img.channel_names().is_empty());
    let planes = img.get_decompressed().unwrap();
    assert_eq!(planes, vec![vec![2; 16], vec![3; 16]]);
    img.remove_channel(1).unwrap();
    img.remove_channel(0).unwrap();
    assert_eq!(img.num_channels(), 0);
    assert_err!(img.remove_channel(0), Error::IndexOutOfRange { .. });
}

#[test]
fn image_compression_ratio_is_bytes_over_bytes() {
    let (w, h) = (64, 64);
    let img = Image::<u16>::new(w, h).unwrap();
    assert_eq!(img.compression_ratio().unwrap(), 1.0, "empty image");
    img.add_lazy_channel(3, None, Settings::default()).unwrap();
    img.add_lazy_channel(4, None, Settings::default()).unwrap();
    // Two lazy one-chunk channels: raw 2 x 64 x 64 x 2 bytes over 2 x 2 stored bytes.
    let raw = (2 * w * h * size_of::<u16>()) as f64;
    assert_eq!(img.compression_ratio().unwrap(), raw / 4.0);

    img.add_channel(&pattern::<u16>(w * h), None, Settings::default())
        .unwrap();
    let (mut raw, mut stored) = (0usize, 0usize);
    for c in img.channels().unwrap() {
        raw += c.uncompressed_size() * size_of::<u16>();
        stored += c.compressed_bytes().unwrap();
    }
    assert_eq!(raw, 3 * w * h * 2);
    assert_eq!(img.compression_ratio().unwrap(), raw as f64 / stored as f64);
}

#[test]
fn image_chunk_and_block_size_need_agreeing_channels() {
    let (w, h) = (32, 32);
    let img = Image::<f32>::new(w, h).unwrap();
    assert_eq!(img.chunk_size().unwrap(), 0);
    assert_eq!(img.block_size().unwrap(), 0);
    let s = Settings::default().chunk_size(w * 4 * 8).block_size(256);
    img.add_lazy_channel(0.0, None, s).unwrap();
    img.add_lazy_channel(1.0, None, s).unwrap();
    assert_eq!(img.chunk_size().unwrap(), w * 4 * 8);
    assert_eq!(img.block_size().unwrap(), 256);
    // Same chunk, different block: only block_size fails.
    img.add_lazy_channel(2.0, None, s.block_size(512)).unwrap();
    assert_eq!(img.chunk_size().unwrap(), w * 4 * 8);
    assert_err!(img.block_size(), Error::ChannelsDisagree { .. });
    // A different chunk size too.
    img.add_lazy_channel(3.0, None, s.chunk_size(w * 4 * 4))
        .unwrap();
    assert_err!(img.chunk_size(), Error::ChannelsDisagree { .. });
    // Removing the odd ones out makes them agree again.
    img.remove_channel(3).unwrap();
    img.remove_channel(2).unwrap();
    assert_eq!(img.chunk_size().unwrap(), w * 4 * 8);
    assert_eq!(img.block_size().unwrap(), 256);
}

#[test]
fn from_channels_checks_names_count() {
    let (w, h) = (6, 5);
    let r = pattern::<u8>(w * h);
    let g = pattern2::<u8>(w * h);
    let s = Settings::default();
    assert_err!(
        Image::from_channels(&[&r, &g], w, h, &["R"], s),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        Image::from_channels(&[&r, &g], w, h, &["R", "G", "B"], s),
        Error::InvalidArgument { .. }
    );
    let unnamed = Image::from_channels(&[&r, &g], w, h, &[], s).unwrap();
    assert!(unnamed.channel_names().is_empty());
    assert_eq!(
        unnamed.get_decompressed().unwrap(),
        vec![r.clone(), g.clone()]
    );
    let named = Image::from_channels(&[&r, &g], w, h, &["R", "G"], s).unwrap();
    assert_eq!(named.channel_names(), ["R", "G"]);
    assert_eq!(
        named
            .channel_by_name("G")
            .unwrap()
            .get_decompressed()
            .unwrap(),
        g
    );
    assert_err!(
        Image::from_channels(&[&r[..w * h - 1]], w, h, &[], s),
        Error::InvalidArgument { .. }
    );
}

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

#[test]
fn create_then_open_after_drop_shows_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cimg");
    let (w, h) = (33, 21);
    let settings = Settings::default()
        .codec(Codec::Zstd)
        .level(5)
        .block_size(96)
        .chunk_size(33 * 8 * 4);
    let data = pattern::<f64>(w * h);
    let c = Channel::create(&path, &data, w, h, settings).unwrap();
    assert_eq!(c.path(), Some(path.as_path()));
    c.set_chunk(1, &vec![-0.0; c.chunk_elems_at(1).unwrap()])
        .unwrap();
    let expected = c.get_decompressed().unwrap();
    let (geometry, block, lazy): (_, _, Vec<bool>) = (
        c.geometry(),
        c.block_size(),
        (0..c.num_chunks()).map(|i| c.is_lazy(i).unwrap()).collect(),
    );
    drop(c);
    let c = Channel::<f64>::open(&path).unwrap();
    assert!(c.is_writable());
    assert!(same_bits(&c.get_decompressed().unwrap(), &expected));
    assert_eq!(c.geometry(), geometry);
    assert_eq!((c.codec(), c.level()), (Codec::Zstd, 5));
    assert_eq!(c.block_size(), block);
    let lazy_now: Vec<bool> = (0..c.num_chunks()).map(|i| c.is_lazy(i).unwrap()).collect();
    assert_eq!(lazy_now, lazy);
    assert_eq!(c.dtype(), Dtype::F64);

    // A lazy file via create_full, reopened.
    let p2 = dir.path().join("lazy.cimg");
    let nan = f32::from_bits(0x7fc0_1234);
    drop(Channel::create_full(&p2, 4096, 4096, nan, Settings::default()).unwrap());
    let l = Channel::<f32>::open(&p2).unwrap();
    assert_eq!(l.compressed_bytes().unwrap(), l.num_chunks() * 4);
    assert!(
        l.get_chunk_vec(5)
            .unwrap()
            .iter()
            .all(|v| v.to_bits() == 0x7fc0_1234)
    );
}

#[test]
fn read_only_handle_sees_commits_only_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.cimg");
    let (w, h) = (16, 16);
    let data = pattern::<u16>(w * h);
    let writer = Channel::create(
        &path,
        &data,
        w,
        h,
        Settings::default().chunk_size(16 * 2 * 4),
    )
    .unwrap();
    let reader = Channel::<u16>::open_read_only(&path).unwrap();
    assert!(!reader.is_writable());
    assert_eq!(reader.get_decompressed().unwrap(), data);
    assert!(!reader.refresh().unwrap(), "nothing new yet");

    let new1 = pattern2::<u16>(64);
    writer.set_chunk(1, &new1).unwrap();
    // Not visible before refresh, however often we look.
    for _ in 0..3 {
        assert_eq!(reader.get_chunk_vec(1).unwrap(), data[64..128]);
        assert_eq!(reader.get_decompressed().unwrap(), data);
    }
    assert!(reader.stats().unwrap().generation < writer.stats().unwrap().generation);
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.get_chunk_vec(1).unwrap(), new1);
    assert_eq!(
        reader.stats().unwrap().generation,
        writer.stats().unwrap().generation
    );
    assert!(!reader.refresh().unwrap(), "already at the newest commit");

    // A batch becomes visible only after commit and refresh.
    let mut batch = writer.batch().unwrap();
    batch.set_chunk(2, &[5; 64]).unwrap();
    assert!(!reader.refresh().unwrap(), "an open batch is not a commit");
    batch.commit().unwrap();
    assert_eq!(reader.get_chunk_vec(2).unwrap(), data[128..192]);
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.get_chunk_vec(2).unwrap(), vec![5; 64]);

    // The reader cannot write; the writer's refresh is a no-op.
    assert_err!(reader.set_chunk(0, &[1; 64]), Error::ReadOnly);
    assert_err!(reader.batch(), Error::ReadOnly);
    assert!(!writer.refresh().unwrap());
    // A second writer is locked out; readers are not.
    assert_err!(Channel::<u16>::open(&path), Error::Locked { .. });
    Channel::<u16>::open_read_only(&path).unwrap();
}

#[test]
fn save_as_of_anonymous_channel_is_compact_and_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.cimg");
    let (w, h) = (40, 30);
    let settings = Settings::default()
        .codec(Codec::Lz4hc)
        .level(7)
        .block_size(200)
        .chunk_size(40 * 4 * 7);
    let c = Channel::new(&pattern::<f32>(w * h), w, h, settings).unwrap();
    // History: rewrites, a lazy chunk, a NaN fill.
    c.set_chunk(0, &pattern2::<f32>(280)).unwrap();
    c.set_chunk(1, &[f32::from_bits(0x7fc0_1234); 280]).unwrap();
    c.set_chunk(0, &pattern::<f32>(280)).unwrap();
    assert!(
        c.stats().unwrap().dead_bytes > 0,
        "the source has dead space"
    );
    c.save_as(&path).unwrap();
    assert!(c.path().is_none(), "the handle stays on its own file");

    let d = Channel::<f32>::open(&path).unwrap();
    assert!(same_bits(
        &d.get_decompressed().unwrap(),
        &c.get_decompressed().unwrap()
    ));
    assert_eq!(d.geometry(), c.geometry());
    assert_eq!(d.settings(), c.settings());
    assert_eq!(d.block_size(), c.block_size());
    assert_eq!(d.compressed_bytes().unwrap(), c.compressed_bytes().unwrap());
    for i in 0..c.num_chunks() {
        assert_eq!(d.is_lazy(i).unwrap(), c.is_lazy(i).unwrap(), "chunk {i}");
    }
    let (src, copy) = (c.stats().unwrap(), d.stats().unwrap());
    assert_eq!(copy.blob_chunks, src.blob_chunks);
    assert_eq!(copy.fill_chunks, src.fill_chunks);
    assert_eq!(copy.fill_bytes, src.fill_bytes);
    // The source keeps working after save_as, and the copy is independent of it.
    c.set_chunk(2, &[1.0; 280]).unwrap();
    assert_ne!(d.get_chunk_vec(2).unwrap(), vec![1.0; 280]);
    // "Without dead space" (AnyChannel::save_as, SPEC §12).
    assert_eq!(copy.dead_bytes, 0, "save_as writes no dead space: {copy:?}");
}

#[test]
fn save_as_of_fully_lazy_channel_has_no_dead_space() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lazy.cimg");
    let c = Channel::<u8>::full(100, 100, 9, Settings::default().chunk_size(1000)).unwrap();
    c.save_as(&path).unwrap();
    let d = Channel::<u8>::open(&path).unwrap();
    assert_eq!(d.get_decompressed().unwrap(), vec![9; 10_000]);
    assert_eq!(d.stats().unwrap().dead_bytes, 0);
}

#[test]
fn save_as_of_image_channel_writes_a_one_channel_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.cimg");
    let (w, h) = (10, 10);
    let img = Image::<u16>::new(w, h).unwrap();
    let s = Settings::default().chunk_size(w * 2 * 3);
    img.add_channel(&pattern::<u16>(w * h), Some("R"), s)
        .unwrap();
    img.add_channel(&pattern2::<u16>(w * h), Some("G"), s)
        .unwrap();
    img.add_lazy_channel(5, Some("B"), s).unwrap();
    img.set_metadata(json!({"k": "v"})).unwrap();

    let g = img.channel_by_name("G").unwrap();
    g.save_as(&path).unwrap();
    let one = Channel::<u16>::open(&path).unwrap();
    assert_eq!(one.get_decompressed().unwrap(), pattern2::<u16>(w * h));
    assert_eq!(one.geometry(), g.geometry());
    drop(one);
    let as_image = Image::<u16>::open(&path).unwrap();
    assert_eq!(as_image.num_channels(), 1);
    assert_eq!(
        as_image.get_decompressed().unwrap(),
        vec![pattern2::<u16>(w * h)]
    );
    // The removed channel cannot be saved.
    img.remove_channel(1).unwrap();
    assert_err!(
        g.save_as(dir.path().join("gone.cimg")),
        Error::ChannelRemoved
    );
}

#[test]
fn image_save_as_and_open_keep_names_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.cimg");
    let (w, h) = (12, 9);
    let s = Settings::default().chunk_size(w * 4 * 2);
    let img = Image::<f32>::new(w, h).unwrap();
    img.add_channel(&pattern::<f32>(w * h), Some("A"), s)
        .unwrap();
    img.add_lazy_channel(-0.0, Some(""), s).unwrap();
    img.add_channel(&pattern2::<f32>(w * h), Some("A"), s.codec(Codec::Zlib))
        .unwrap();
    let meta = json!({"b": [1, {"c": null}], "a": "x"});
    img.set_metadata(meta.clone()).unwrap();
    img.channel(0).unwrap().set_chunk(1, &[2.0; 24]).unwrap();
    let before = img.get_decompressed().unwrap();
    img.save_as(&path).unwrap();

    let back = Image::<f32>::open(&path).unwrap();
    assert_eq!(back.channel_names(), ["A", "", "A"]);
    assert_eq!(back.metadata(), meta);
    assert_eq!((back.width(), back.height()), (w, h));
    let after = back.get_decompressed().unwrap();
    assert_eq!(after.len(), 3);
    for (a, b) in after.iter().zip(&before) {
        assert!(same_bits(a, b));
    }
    assert_eq!(back.channel(2).unwrap().codec(), Codec::Zlib);
    assert_eq!(back.channel_index("A").unwrap(), 0);
    // "Without dead space" (Image::save_as, SPEC §12).
    let stats = back.stats().unwrap();
    assert_eq!(
        stats.dead_bytes, 0,
        "save_as writes no dead space: {stats:?}"
    );
}

#[test]
fn image_create_then_open_after_drop_keeps_channels_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (12, 9);
    let s = Settings::default().chunk_size(w * 4 * 2);
    let p2 = dir.path().join("created.cimg");
    {
        let img = Image::<f32>::create(&p2, w, h).unwrap();
        img.add_lazy_channel(1.0, None, s).unwrap();
        img.set_metadata(json!({"x": 1})).unwrap();
    }
    let back = Image::<f32>::open(&p2).unwrap();
    assert_eq!(back.num_channels(), 1);
    assert!(back.channel_names().is_empty());
    assert_eq!(back.metadata(), json!({"x": 1}));
    assert_eq!(back.get_decompressed().unwrap(), vec![vec![1.0; w * h]]);
}

#[test]
fn opening_with_the_wrong_dtype_is_dtype_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u16.cimg");
    drop(Channel::<u16>::create_full(&path, 8, 8, 1, Settings::default()).unwrap());
    match Channel::<f32>::open(&path) {
        Err(Error::DtypeMismatch { expected, found }) => {
            assert_eq!((expected, found), (Dtype::F32, Dtype::U16));
        }
        other => panic!("{other:?}"),
    }
    assert_err!(
        Channel::<f32>::open_read_only(&path),
        Error::DtypeMismatch { .. }
    );
    assert_err!(Channel::<i16>::open(&path), Error::DtypeMismatch { .. });
    assert_err!(
        Image::<f32>::open(&path),
        Error::ChannelDtypeMismatch { .. }
    );
    // The failed opens did not keep the file locked.
    assert_eq!(
        Channel::<u16>::open(&path)
            .unwrap()
            .get_decompressed()
            .unwrap(),
        vec![1; 64]
    );
    // Untyped open reports the type.
    assert_eq!(
        AnyChannel::open_read_only(&path).unwrap().dtype(),
        Dtype::U16
    );
}

#[test]
fn opening_a_multi_channel_image_as_channel_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.cimg");
    {
        let img = Image::<u8>::create(&path, 4, 4).unwrap();
        img.add_lazy_channel(1, Some("a"), Settings::default())
            .unwrap();
        img.add_lazy_channel(2, Some("b"), Settings::default())
            .unwrap();
    }
    assert_err!(Channel::<u8>::open(&path), Error::InvalidArgument { .. });
    assert_err!(
        Channel::<u8>::open_read_only(&path),
        Error::InvalidArgument { .. }
    );
    assert_err!(AnyChannel::open(&path), Error::InvalidArgument { .. });
    // An empty image is not a channel either.
    let p0 = dir.path().join("zero.cimg");
    drop(Image::<u8>::create(&p0, 4, 4).unwrap());
    assert_err!(Channel::<u8>::open(&p0), Error::InvalidArgument { .. });
    // The image itself opens fine afterwards (the failed opens released the lock).
    assert_eq!(Image::<u8>::open(&path).unwrap().num_channels(), 2);
}

#[test]
fn stats_account_for_rewritten_chunks_as_dead_space() {
    let (w, h) = (64, 16);
    let data = pattern::<f32>(w * h);
    // One chunk, so compressed_bytes is exactly the blob's length.
    let c = Channel::new(&data, w, h, Settings::default()).unwrap();
    assert_eq!(c.num_chunks(), 1);
    let check = |what: &str| {
        let s = c.stats().unwrap();
        // SPEC §12: dead = align64(committed_end) - 8192 - live.
        assert_eq!(
            s.live_bytes + s.dead_bytes,
            align64(s.committed_end) - REGION_START,
            "{what}: {s:?}"
        );
        assert!(s.committed_end <= s.file_len, "{what}: {s:?}");
        let lazy: Vec<usize> = (0..c.num_chunks())
            .filter(|&i| c.is_lazy(i).unwrap())
            .collect();
        assert_eq!(s.fill_chunks, lazy.len(), "{what}");
        assert_eq!(s.blob_chunks, c.num_chunks() - lazy.len(), "{what}");
        let fill_bytes: usize = lazy.iter().map(|&i| c.chunk_size_at(i).unwrap()).sum();
        assert_eq!(s.fill_bytes, fill_bytes as u64, "{what}");
        s
    };
    let s0 = check("new");
    let blob0 = c.compressed_bytes().unwrap() as u64;
    assert!(
        s0.live_bytes >= blob0 + 32,
        "the live blob record is counted"
    );

    c.set_chunk(0, &pattern2::<f32>(w * h)).unwrap();
    let s1 = check("rewritten");
    assert_eq!(s1.generation, s0.generation + 1);
    // The old blob record (32-byte header + payload) is now dead.
    assert!(
        s1.dead_bytes >= s0.dead_bytes + blob0 + 32,
        "{s0:?} -> {s1:?}"
    );
    let blob1 = c.compressed_bytes().unwrap() as u64;
    // Live space changed by exactly the difference of the aligned blob records (the
    // catalog and table records keep their size).
    assert_eq!(
        s1.live_bytes as i64 - s0.live_bytes as i64,
        align64(32 + blob1) as i64 - align64(32 + blob0) as i64,
        "{s0:?} -> {s1:?}"
    );

    // Making the chunk lazy frees its blob from the live set.
    c.set_chunk(0, &vec![1.0; w * h]).unwrap();
    let s2 = check("lazy");
    assert!(s2.dead_bytes >= s1.dead_bytes + blob1 + 32);
    assert_eq!(s2.live_bytes, s1.live_bytes - align64(32 + blob1));
    assert_eq!(s2.fill_bytes, (w * h * 4) as u64);
}

#[test]
fn read_only_image_sees_new_channels_and_metadata_only_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.cimg");
    let writer = Image::<u8>::create(&path, 4, 4).unwrap();
    writer
        .add_lazy_channel(1, Some("a"), Settings::default())
        .unwrap();
    let reader = Image::<u8>::open_read_only(&path).unwrap();
    assert_eq!(reader.num_channels(), 1);
    assert!(writer.is_writable());
    assert!(!reader.is_writable());

    let b = writer
        .add_lazy_channel(2, Some("b"), Settings::default())
        .unwrap();
    writer.set_metadata(json!({"v": 2})).unwrap();
    assert_eq!(reader.num_channels(), 1);
    assert_eq!(reader.metadata(), serde_json::Value::Null);
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.channel_names(), ["a", "b"]);
    assert_eq!(reader.metadata(), json!({"v": 2}));
    let rb = reader.channel_by_name("b").unwrap();
    assert_eq!(rb.get_decompressed().unwrap(), vec![2; 16]);
    assert_err!(rb.set_chunk(0, &[3; 16]), Error::ReadOnly);
    assert_err!(
        rb.update_chunks(|chunk| {
            chunk.data_mut().fill(3);
            Ok(())
        }),
        Error::ReadOnly
    );
    assert_err!(reader.set_metadata(json!(1)), Error::ReadOnly);
    assert_err!(reader.remove_channel(0), Error::ReadOnly);

    // A removal seen through refresh makes the reader's handle ChannelRemoved.
    writer.remove_channel(1).unwrap();
    drop(b);
    assert_eq!(
        rb.get_decompressed().unwrap(),
        vec![2; 16],
        "old commit until refresh"
    );
    assert!(reader.refresh().unwrap());
    assert_err!(rb.get_decompressed(), Error::ChannelRemoved);
    assert_err!(rb.for_each_chunk(|_| Ok(())), Error::ChannelRemoved);
    assert_eq!(reader.num_channels(), 1);
}
