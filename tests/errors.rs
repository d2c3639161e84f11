//! Bad input gets a clear, typed [`Error`] — never a panic, an abort or undefined
//! behaviour — and the failed call leaves the channel, the image and the file exactly as
//! they were: the same generation, the same decompressed contents and, for files, the same
//! bytes (read with `std::fs::read` before and after). Damaged files are made by editing
//! the bytes of valid ones following `format/SPEC.md`; I/O failures are injected through
//! the [`Backend`] seam (`open_with_backend`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compressed_image::{
    AnyChannel, Backend, Channel, Dtype, Durability, Error, Image, MAX_CHUNK_BYTES, Result,
    Settings, f16,
};

mod common;

use common::Digest;
use common::fault::{Fault, INJECTED, Op, Target, assert_injected, wrap};
use common::format::{SLOT_CRC_AT, SLOT_PAGE, crc32, seal_slot, slot_generation};
use common::rng::noise;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Compressible, but not constant, bytes.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251 + i / 4096) as u8).collect()
}

/// The error of a call that must fail.
fn err<T>(result: Result<T>) -> Error {
    match result {
        Ok(_) => panic!("the call succeeded but an error was expected"),
        Err(e) => e,
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Names of the entries of `dir`, sorted.
fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Everything observable about a channel's current commit.
#[derive(Debug, PartialEq)]
struct ChannelState {
    generation: u64,
    data: Digest,
    lazy: Vec<bool>,
}

fn channel_state<T: compressed_image::Sample>(c: &Channel<T>) -> ChannelState {
    let data = c.get_decompressed().expect("decompress");
    ChannelState {
        generation: c.stats().expect("stats").generation,
        data: Digest(bytemuck::cast_slice(&data).to_vec()),
        lazy: (0..c.num_chunks())
            .map(|i| c.is_lazy(i).expect("is_lazy"))
            .collect(),
    }
}

/// Everything observable about an image's current commit.
#[derive(Debug, PartialEq)]
struct ImageState {
    generation: u64,
    names: Vec<String>,
    metadata: serde_json::Value,
    data: Vec<Digest>,
}

fn image_state(img: &Image<u8>) -> ImageState {
    ImageState {
        generation: img.stats().expect("stats").generation,
        names: img.channel_names(),
        metadata: img.metadata(),
        data: img
            .get_decompressed()
            .expect("decompress")
            .into_iter()
            .map(Digest)
            .collect(),
    }
}

/// Position of every occurrence of `needle` in `haystack`.
fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// A synced, closed channel file of 4 chunks of 128 KiB (u8, 1024 × 512), default settings.
fn channel_file(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let data = pattern(1024 * 512);
    let c = Channel::create(
        &path,
        &data,
        1024,
        512,
        Settings::default().chunk_size(128 * 1024),
    )
    .expect("create");
    assert_eq!(c.num_chunks(), 4);
    drop(c);
    (path, data)
}

/// Every way a read-write or read-only open can be attempted on `path`, with its result.
fn open_all_ways(path: &Path) -> Vec<(&'static str, Result<()>)> {
    let passthrough = |b: Box<dyn Backend>| b;
    vec![
        ("AnyChannel::open", AnyChannel::open(path).map(drop)),
        (
            "AnyChannel::open_read_only",
            AnyChannel::open_read_only(path).map(drop),
        ),
        (
            "AnyChannel::open_with_backend",
            AnyChannel::open_with_backend(path, passthrough).map(drop),
        ),
        ("Channel::<u8>::open", Channel::<u8>::open(path).map(drop)),
        (
            "Channel::<u8>::open_read_only",
            Channel::<u8>::open_read_only(path).map(drop),
        ),
        ("Image::<u8>::open", Image::<u8>::open(path).map(drop)),
        (
            "Image::<u8>::open_read_only",
            Image::<u8>::open_read_only(path).map(drop),
        ),
        (
            "Image::<u8>::open_with_backend",
            Image::<u8>::open_with_backend(path, passthrough).map(drop),
        ),
    ]
}

/// Write `bytes` to `path`, try every open, and check that each fails as `expected` says
/// and that no open changed a byte of the file.
fn assert_every_open_fails(path: &Path, bytes: &[u8], expected: impl Fn(&Error) -> bool) {
    fs::write(path, bytes).expect("write test file");
    for (how, result) in open_all_ways(path) {
        match result {
            Ok(()) => panic!("{how} opened a bad file ({} bytes)", bytes.len()),
            Err(e) => assert!(expected(&e), "{how} on a {}-byte file: {e:?}", bytes.len()),
        }
        assert!(
            fs::read(path).expect("read back") == bytes,
            "{how} changed the file"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The CRC helper itself
// ---------------------------------------------------------------------------------------

#[test]
fn crc32_helper_matches_the_check_value_and_the_slots_the_library_writes() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
    let dir = tempdir();
    let (path, _) = channel_file(dir.path(), "c.cimg");
    let bytes = fs::read(&path).unwrap();
    let mut checked = 0;
    for page in 0..2 {
        let start = page * SLOT_PAGE;
        if bytes[start..start + 8] == *b"\x89CIM\r\n\x1a\n" {
            let stored = u32::from_le_bytes(
                bytes[start + SLOT_CRC_AT..start + SLOT_CRC_AT + 4]
                    .try_into()
                    .unwrap(),
            );
            assert_eq!(crc32(&bytes[start..start + SLOT_CRC_AT]), stored);
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

// ---------------------------------------------------------------------------------------
// Invalid geometry and settings
// ---------------------------------------------------------------------------------------

/// Every constructor with the given size and settings; each must fail with
/// `InvalidArgument`, and none may leave a file behind.
fn assert_every_constructor_invalid(width: usize, height: usize, settings: Settings) {
    let dir = tempdir();
    let path = dir.path().join("c.cimg");
    let data = vec![
        1.0f32;
        width
            .checked_mul(height)
            .filter(|&n| n < 1 << 20)
            .unwrap_or(0)
    ];
    let results: Vec<(&str, Error)> = vec![
        (
            "Channel::zeros",
            err(Channel::<f32>::zeros(width, height, settings)),
        ),
        (
            "Channel::full",
            err(Channel::<f32>::full(width, height, 2.5, settings)),
        ),
        (
            "Channel::new",
            err(Channel::<f32>::new(&data, width, height, settings)),
        ),
        (
            "Channel::create",
            err(Channel::<f32>::create(
                &path, &data, width, height, settings,
            )),
        ),
        (
            "Channel::create_full",
            err(Channel::<f32>::create_full(
                &path, width, height, 2.5, settings,
            )),
        ),
        (
            "AnyChannel::create_full",
            err(AnyChannel::create_full(
                &path,
                Dtype::F32,
                width,
                height,
                0,
                settings,
            )),
        ),
    ];
    for (how, e) in results {
        assert!(
            matches!(e, Error::InvalidArgument { .. }),
            "{how}({width} x {height}, {settings:?}): {e:?}"
        );
    }
    assert!(!path.exists(), "a failed create left a file");
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}

#[test]
fn zero_width_is_invalid_argument() {
    assert_every_constructor_invalid(0, 10, Settings::default());
    assert!(matches!(
        err(Image::<f32>::new(0, 10)),
        Error::InvalidArgument { .. }
    ));
    let dir = tempdir();
    let path = dir.path().join("i.cimg");
    assert!(matches!(
        err(Image::<f32>::create(&path, 0, 10)),
        Error::InvalidArgument { .. }
    ));
    assert!(matches!(
        err(Image::<f32>::from_channels(
            &[],
            0,
            10,
            &[],
            Settings::default()
        )),
        Error::InvalidArgument { .. }
    ));
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}

#[test]
fn zero_height_is_invalid_argument() {
    assert_every_constructor_invalid(10, 0, Settings::default());
    assert_every_constructor_invalid(0, 0, Settings::default());
    assert!(matches!(
        err(Image::<f32>::new(10, 0)),
        Error::InvalidArgument { .. }
    ));
    let dir = tempdir();
    let path = dir.path().join("i.cimg");
    assert!(matches!(
        err(Image::<f32>::create(&path, 10, 0)),
        Error::InvalidArgument { .. }
    ));
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}

#[test]
fn size_overflow_is_invalid_argument() {
    let huge = usize::MAX / 2;
    // width × height overflows; width × 4 bytes overflows on its own; and w × h × 4.
    for (w, h) in [
        (huge, 3),
        (huge, 1),
        (3, huge),
        (1 << 20, 1 << 43),
        (huge, huge),
    ] {
        assert_every_constructor_invalid(w, h, Settings::default());
        assert!(
            matches!(err(Image::<f32>::new(w, h)), Error::InvalidArgument { .. }),
            "Image::new({w}, {h})"
        );
    }
    // A u8 image whose size fits but a wider element type does not.
    assert!(Image::<u8>::new(usize::MAX / 4, 2).is_ok());
    assert!(matches!(
        err(Image::<f64>::new(usize::MAX / 4, 2)),
        Error::InvalidArgument { .. }
    ));
}

#[test]
fn chunk_above_the_blosc2_limit_is_invalid_argument() {
    // Lazy, so nothing would be allocated even if the check were missing.
    let s = Settings::default().chunk_size(3_000_000_000);
    let e = err(Channel::<u8>::zeros(100_000, 100_000, s));
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    assert!(e.to_string().contains("3000000000"), "{e}");
    assert_every_constructor_invalid(100_000, 100_000, s);
    let img = Image::<u8>::new(100_000, 100_000).unwrap();
    assert!(matches!(
        err(img.add_lazy_channel(0, None, s)),
        Error::InvalidArgument { .. }
    ));
    assert_eq!(img.num_channels(), 0);

    // The limit itself: one scanline of exactly MAX_CHUNK_BYTES is accepted (lazily), one
    // byte more is not.
    let at_limit = Settings::default().chunk_size(MAX_CHUNK_BYTES);
    let c = Channel::<u8>::zeros(MAX_CHUNK_BYTES, 1, at_limit).unwrap();
    assert_eq!(c.chunk_size(), MAX_CHUNK_BYTES);
    assert!(matches!(
        err(Channel::<u8>::zeros(
            MAX_CHUNK_BYTES + 1,
            1,
            Settings::default().chunk_size(usize::MAX)
        )),
        Error::InvalidArgument { .. }
    ));
    // f32: 2^29 elements are 2 GiB, above the limit.
    assert!(matches!(
        err(Channel::<f32>::zeros(
            1 << 29,
            1,
            Settings::default().chunk_size(usize::MAX)
        )),
        Error::InvalidArgument { .. }
    ));
    // A huge requested chunk size on a small channel is capped, not an error.
    let c = Channel::<f32>::zeros(10, 10, Settings::default().chunk_size(usize::MAX)).unwrap();
    assert_eq!(c.chunk_size(), 400);
}

#[test]
fn level_above_nine_is_invalid_argument() {
    for level in [10, 11, 255] {
        let s = Settings::default().level(level);
        assert!(matches!(err(s.validate()), Error::InvalidArgument { .. }));
        assert_every_constructor_invalid(16, 16, s);
        let e = err(Channel::<u8>::zeros(16, 16, s));
        assert!(e.to_string().contains(&level.to_string()), "{e}");
        assert!(e.to_string().contains("0 to 9"), "{e}");

        let dir = tempdir();
        let path = dir.path().join("i.cimg");
        let img = Image::<u8>::create(&path, 16, 16).unwrap();
        img.add_lazy_channel(1, Some("a"), Settings::default())
            .unwrap();
        img.sync().unwrap();
        let state = image_state(&img);
        let bytes = fs::read(&path).unwrap();
        assert!(matches!(
            err(img.add_channel(&[7; 256], Some("b"), s)),
            Error::InvalidArgument { .. }
        ));
        assert!(matches!(
            err(img.add_lazy_channel(7, Some("b"), s)),
            Error::InvalidArgument { .. }
        ));
        assert!(matches!(
            err(Image::<u8>::from_channels(&[&[1; 256]], 16, 16, &[], s)),
            Error::InvalidArgument { .. }
        ));
        assert_eq!(image_state(&img), state);
        assert_eq!(img.num_channels(), 1);
        assert!(fs::read(&path).unwrap() == bytes, "file changed");
    }
    // 9 is the largest level accepted.
    assert!(Channel::<u8>::zeros(16, 16, Settings::default().level(9)).is_ok());
}

#[test]
fn zero_threads_is_invalid_argument_and_keeps_the_thread_count() {
    let c = Channel::<u8>::zeros(16, 16, Settings::default()).unwrap();
    c.set_threads(3).unwrap();
    let e = err(c.set_threads(0));
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    assert_eq!(c.threads(), 3);
    let any = c.clone().into_any();
    assert!(matches!(
        err(any.set_threads(0)),
        Error::InvalidArgument { .. }
    ));
    assert_eq!(any.threads(), 3);
    // The channel still works.
    c.set_chunk(0, &pattern(256)).unwrap();

    let img = Image::<u8>::new(16, 16).unwrap();
    img.set_threads(2).unwrap();
    let e = err(img.set_threads(0));
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    let ch = img.add_lazy_channel(0, None, Settings::default()).unwrap();
    assert_eq!(ch.threads(), 2, "the failed set_threads changed the count");
    assert_eq!(img.channel(0).unwrap().threads(), 2);
}

// ---------------------------------------------------------------------------------------
// Indices and buffer lengths
// ---------------------------------------------------------------------------------------

/// An f32 channel file 10 × 25 with chunks of 4 rows: chunks 0–5 hold 40 elements, the
/// last (6) holds 10.
fn seven_chunk_channel(path: &Path) -> Channel<f32> {
    let data: Vec<f32> = (0..250).map(|i| i as f32 * 0.5).collect();
    let c = Channel::create(path, &data, 10, 25, Settings::default().chunk_size(160)).unwrap();
    assert_eq!(c.num_chunks(), 7);
    assert_eq!(c.chunk_elems_at(3).unwrap(), 40);
    assert_eq!(c.chunk_elems_at(6).unwrap(), 10);
    c
}

#[test]
fn chunk_index_out_of_range_is_index_out_of_range() {
    let dir = tempdir();
    let path = dir.path().join("c.cimg");
    let c = seven_chunk_channel(&path);
    c.set_chunk(2, &[1.5; 40]).unwrap();
    c.sync().unwrap();
    let state = channel_state(&c);
    let bytes = fs::read(&path).unwrap();
    let is_oor = |e: &Error, index: usize| matches!(e, Error::IndexOutOfRange { what: "chunk", index: i, len: 7 } if *i == index);
    for index in [7, 8, 1000, usize::MAX] {
        let mut buf = vec![-1.0f32; 40];
        let e = err(c.get_chunk(index, &mut buf));
        assert!(is_oor(&e, index), "get_chunk({index}): {e:?}");
        assert!(buf.iter().all(|&v| v == -1.0), "get_chunk wrote the buffer");
        // The index is checked before the length.
        assert!(is_oor(&err(c.get_chunk(index, &mut [])), index));
        assert!(is_oor(&err(c.get_chunk_vec(index)), index));
        let e = err(c.set_chunk(
            index,
            &pattern(40).iter().map(|&b| b as f32).collect::<Vec<_>>(),
        ));
        assert!(is_oor(&e, index), "set_chunk({index}): {e:?}");
        assert!(is_oor(&err(c.set_chunk(index, &[])), index));
        assert!(is_oor(&err(c.set_chunk(index, &[3.0; 10])), index));
        assert!(is_oor(&err(c.chunk_size_at(index)), index));
        assert!(is_oor(&err(c.chunk_elems_at(index)), index));
        assert!(is_oor(&err(c.is_lazy(index)), index));
        assert!(is_oor(&err(c.get_chunk_bytes(index, &mut [0; 160])), index));
        assert!(is_oor(&err(c.set_chunk_bytes(index, &[0; 160])), index));
        let mut batch = c.batch().unwrap();
        assert!(is_oor(&err(batch.set_chunk(index, &[3.0; 40])), index));
        batch.commit().unwrap();
        assert_eq!(channel_state(&c), state);
    }
    // The same through a read-only handle.
    let ro = Channel::<f32>::open_read_only(&path).unwrap();
    assert!(is_oor(&err(ro.get_chunk(7, &mut [0.0; 40])), 7));
    assert!(is_oor(&err(ro.is_lazy(7)), 7));
    assert_eq!(channel_state(&c), state);
    assert!(fs::read(&path).unwrap() == bytes, "file changed");

    // Image channel indices.
    let img = Image::<u8>::new(4, 4).unwrap();
    img.add_lazy_channel(1, None, Settings::default()).unwrap();
    let state = image_state(&img);
    for index in [1, 2, usize::MAX] {
        let oor = |e: &Error| matches!(e, Error::IndexOutOfRange { what: "channel", index: i, len: 1 } if *i == index);
        assert!(oor(&err(img.channel(index))));
        assert!(oor(&err(img.remove_channel(index))));
    }
    assert_eq!(image_state(&img), state);
    assert_eq!(img.num_channels(), 1);
}

/// Buffer lengths that are wrong for a chunk of `n` elements (`nominal` = the full size).
fn wrong_lengths(n: usize, nominal: usize) -> Vec<usize> {
    let mut v = vec![0, 1, n - 1, n + 1, 2 * n, nominal + 1];
    if nominal != n {
        v.push(nominal); // the classic bug: a full-size buffer for the short last chunk
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn get_chunk_with_a_wrong_buffer_length_is_invalid_argument_and_writes_nothing() {
    let dir = tempdir();
    let path = dir.path().join("c.cimg");
    let c = seven_chunk_channel(&path);
    c.set_chunk(4, &[9.0; 40]).unwrap(); // a fill chunk too
    c.sync().unwrap();
    let state = channel_state(&c);
    let bytes = fs::read(&path).unwrap();
    for index in [0, 3, 4, 6] {
        let n = c.chunk_elems_at(index).unwrap();
        for len in wrong_lengths(n, 40) {
            let mut buf = vec![-7.0f32; len];
            let e = err(c.get_chunk(index, &mut buf));
            assert!(
                matches!(e, Error::InvalidArgument { .. }),
                "get_chunk({index}) with {len} elements: {e:?}"
            );
            assert!(buf.iter().all(|&v| v == -7.0), "a failed get_chunk wrote");
        }
        // Byte lengths that are not whole elements.
        let n_bytes = c.chunk_size_at(index).unwrap();
        for len in [n_bytes - 1, n_bytes + 1, n_bytes - 3] {
            let mut buf = vec![0xAAu8; len];
            assert!(matches!(
                err(c.get_chunk_bytes(index, &mut buf)),
                Error::InvalidArgument { .. }
            ));
            assert!(buf.iter().all(|&b| b == 0xAA));
        }
        // The right length works.
        assert_eq!(c.get_chunk_vec(index).unwrap().len(), n);
    }
    // Whole-channel and row reads with wrong lengths.
    for len in [0, 249, 251, 500] {
        let mut buf = vec![-7.0f32; len];
        assert!(matches!(
            err(c.decompress_into(&mut buf)),
            Error::InvalidArgument { .. }
        ));
        assert!(buf.iter().all(|&v| v == -7.0));
    }
    for (first, len) in [
        (0, 5),
        (0, 15),
        (24, 20),
        (25, 10),
        (usize::MAX, 10),
        (20, 60),
    ] {
        let mut buf = vec![-7.0f32; len];
        let e = err(c.read_rows(first, &mut buf));
        assert!(
            matches!(e, Error::InvalidArgument { .. }),
            "read_rows({first}, {len}): {e:?}"
        );
        assert!(buf.iter().all(|&v| v == -7.0));
    }
    assert_eq!(channel_state(&c), state);
    assert!(fs::read(&path).unwrap() == bytes, "file changed");
}

#[test]
fn set_chunk_with_a_wrong_buffer_length_is_invalid_argument_and_changes_nothing() {
    let dir = tempdir();
    let path = dir.path().join("c.cimg");
    let c = seven_chunk_channel(&path);
    c.sync().unwrap();
    let state = channel_state(&c);
    let bytes = fs::read(&path).unwrap();
    for index in [0, 3, 6] {
        let n = c.chunk_elems_at(index).unwrap();
        for len in wrong_lengths(n, 40) {
            // Non-uniform data (would be a blob) and uniform data (would be a fill entry).
            let varied: Vec<f32> = (0..len).map(|i| i as f32 + 0.25).collect();
            let uniform = vec![4.0f32; len];
            for data in [&varied, &uniform] {
                let e = err(c.set_chunk(index, data));
                assert!(
                    matches!(e, Error::InvalidArgument { .. }),
                    "set_chunk({index}) with {len} elements: {e:?}"
                );
                assert_eq!(channel_state(&c), state, "set_chunk({index}, {len})");
                let mut batch = c.batch().unwrap();
                let e = err(batch.set_chunk(index, data));
                assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
                batch.commit().unwrap();
                assert_eq!(channel_state(&c), state, "batch set_chunk({index}, {len})");
            }
        }
        let n_bytes = c.chunk_size_at(index).unwrap();
        for len in [n_bytes - 1, n_bytes + 1, n_bytes - 3] {
            let e = err(c.set_chunk_bytes(index, &noise(index as u64, len)));
            assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        }
        assert_eq!(channel_state(&c), state);
    }
    // A failed set_chunk inside a batch leaves the batch's earlier chunks staged.
    let mut batch = c.batch().unwrap();
    batch.set_chunk(1, &[5.0; 40]).unwrap();
    assert!(matches!(
        err(batch.set_chunk(6, &[5.0; 40])),
        Error::InvalidArgument { .. }
    ));
    drop(batch); // discarded
    assert_eq!(channel_state(&c), state);
    assert!(fs::read(&path).unwrap() == bytes, "file changed");
    drop(c);
    assert!(fs::read(&path).unwrap() == bytes, "file changed after drop");
    let c = Channel::<f32>::open(&path).unwrap();
    assert_eq!(channel_state(&c), state);
}

#[test]
fn data_length_other_than_width_times_height_is_invalid_argument() {
    let dir = tempdir();
    let path = dir.path().join("c.cimg");
    let s = Settings::default();
    for len in [0, 1, 99, 101, 200] {
        let data = vec![1u16; len];
        let e = err(Channel::<u16>::new(&data, 10, 10, s));
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        assert!(e.to_string().contains(&len.to_string()), "{e}");
        assert!(e.to_string().contains("100"), "{e}");
        assert!(matches!(
            err(Channel::<u16>::create(&path, &data, 10, 10, s)),
            Error::InvalidArgument { .. }
        ));
        assert!(!path.exists());
        assert!(matches!(
            err(Image::<u16>::from_channels(&[&data], 10, 10, &[], s)),
            Error::InvalidArgument { .. }
        ));
    }
    // Overflowing width × height with a short slice.
    assert!(matches!(
        err(Channel::<u8>::new(&[1, 2, 3], usize::MAX / 2, 3, s)),
        Error::InvalidArgument { .. }
    ));
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());

    // Image::add_channel on a file: nothing changes.
    let path = dir.path().join("i.cimg");
    let img = Image::<u8>::create(&path, 10, 10).unwrap();
    img.add_channel(&pattern(100), Some("a"), s).unwrap();
    img.set_metadata(serde_json::json!({"k": [1, 2]})).unwrap();
    img.sync().unwrap();
    let state = image_state(&img);
    let bytes = fs::read(&path).unwrap();
    for len in [0, 1, 99, 101, 1000] {
        let e = err(img.add_channel(&pattern(len), Some("b"), s));
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        assert_eq!(image_state(&img), state);
        assert_eq!(img.num_channels(), 1);
    }
    // Names: a count other than 0 or the channel count.
    assert!(matches!(
        err(Image::<u8>::from_channels(
            &[&pattern(100)],
            10,
            10,
            &["a", "b"],
            s
        )),
        Error::InvalidArgument { .. }
    ));
    assert!(matches!(
        err(img.set_channel_names(&[])),
        Error::InvalidArgument { .. }
    ));
    assert!(matches!(
        err(img.set_channel_names(&["x", "y"])),
        Error::InvalidArgument { .. }
    ));
    assert_eq!(image_state(&img), state);
    assert!(fs::read(&path).unwrap() == bytes, "file changed");
}

// ---------------------------------------------------------------------------------------
// Opening the wrong thing
// ---------------------------------------------------------------------------------------

#[test]
fn wrong_dtype_on_open_is_dtype_mismatch_and_releases_the_lock() {
    let dir = tempdir();
    let path = dir.path().join("c.cimg");
    let data: Vec<f32> = (0..64).map(|i| i as f32).collect();
    drop(Channel::create(&path, &data, 8, 8, Settings::default()).unwrap());
    let bytes = fs::read(&path).unwrap();
    let mismatch = |e: &Error, expected: Dtype| matches!(e, Error::DtypeMismatch { expected: x, found: Dtype::F32 } if *x == expected);
    assert!(mismatch(&err(Channel::<u16>::open(&path)), Dtype::U16));
    assert!(mismatch(
        &err(Channel::<u16>::open_read_only(&path)),
        Dtype::U16
    ));
    assert!(mismatch(&err(Channel::<f64>::open(&path)), Dtype::F64));
    assert!(mismatch(
        &err(Channel::<u32>::try_from_any(
            AnyChannel::open_read_only(&path).unwrap()
        )),
        Dtype::U32
    ));
    assert!(
        matches!(err(Image::<u16>::open(&path)), Error::ChannelDtypeMismatch { channel: 0, expected, .. } if expected == Dtype::U16)
    );
    assert!(
        matches!(err(Image::<i32>::open_read_only(&path)), Error::ChannelDtypeMismatch { channel: 0, expected, .. } if expected == Dtype::I32)
    );
    let msg = err(Channel::<u16>::open(&path)).to_string();
    assert!(
        msg.contains(&Dtype::U16.to_string()) && msg.contains(&Dtype::F32.to_string()),
        "{msg}"
    );
    assert!(fs::read(&path).unwrap() == bytes, "file changed");
    // The failed read-write opens released the writer lock.
    let c = Channel::<f32>::open(&path).unwrap();
    assert_eq!(c.get_decompressed().unwrap(), data);
    drop(c);

    // An image with an f32 channel opened as another element type.
    let ipath = dir.path().join("i.cimg");
    let img = Image::<f32>::create(&ipath, 8, 8).unwrap();
    img.add_channel(&data, Some("a"), Settings::default())
        .unwrap();
    img.add_lazy_channel(1.0, Some("b"), Settings::default())
        .unwrap();
    drop(img);
    let ibytes = fs::read(&ipath).unwrap();
    assert!(
        matches!(err(Image::<u8>::open(&ipath)), Error::ChannelDtypeMismatch { channel: 0, expected, .. } if expected == Dtype::U8)
    );
    assert!(
        matches!(err(Image::<f16>::open_read_only(&ipath)), Error::ChannelDtypeMismatch { channel: 0, expected, .. } if expected == Dtype::F16)
    );
    assert!(
        matches!(err(Image::<u8>::open_with_backend(&ipath, |b| b)), Error::ChannelDtypeMismatch { channel: 0, expected, .. } if expected == Dtype::U8)
    );
    // A two-channel image is not a channel file, whatever the element type.
    assert!(matches!(
        err(Channel::<f32>::open(&ipath)),
        Error::InvalidArgument { .. }
    ));
    assert!(matches!(
        err(AnyChannel::open_read_only(&ipath)),
        Error::InvalidArgument { .. }
    ));
    assert!(fs::read(&ipath).unwrap() == ibytes, "file changed");
    assert_eq!(Image::<f32>::open(&ipath).unwrap().num_channels(), 2);
}

/// A failed read-write open must not write either, even when the file was left by a writer
/// that never synced its last commit (whose open would otherwise write a marker slot).
#[test]
fn wrong_dtype_open_of_an_unsynced_file_does_not_write() {
    let dir = tempdir();
    let path = dir.path().join("c.cimg");
    let copy = dir.path().join("copy.cimg");
    let c = Channel::create(&path, &[1.0f32, 2.0, 3.0, 4.0], 2, 2, Settings::default()).unwrap();
    c.set_chunk(0, &[5.0, 6.0, 7.0, 8.0]).unwrap(); // committed, not synced
    fs::copy(&path, &copy).unwrap(); // as a crashed writer would leave it
    drop(c);
    let bytes = fs::read(&copy).unwrap();
    assert!(matches!(
        err(Channel::<u16>::open(&copy)),
        Error::DtypeMismatch { .. }
    ));
    assert!(matches!(
        err(Image::<u16>::open(&copy)),
        Error::ChannelDtypeMismatch { .. }
    ));
    assert!(
        fs::read(&copy).unwrap() == bytes,
        "a read-write open that failed with DtypeMismatch changed the file"
    );
    let c = Channel::<f32>::open_read_only(&copy).unwrap();
    assert_eq!(c.get_decompressed().unwrap(), vec![5.0, 6.0, 7.0, 8.0]);
}

#[test]
fn missing_file_is_io_not_found_and_is_not_created() {
    let dir = tempdir();
    let path = dir.path().join("missing.cimg");
    for (how, result) in open_all_ways(&path) {
        match result {
            Err(Error::File { source: e, .. }) => {
                assert_eq!(e.kind(), io::ErrorKind::NotFound, "{how}")
            }
            Err(e) => panic!("{how}: {e:?}"),
            Ok(()) => panic!("{how} opened a missing file"),
        }
        assert!(!path.exists(), "{how} created the file");
    }
}

#[test]
fn foreign_files_are_not_a_compressed_image() {
    let dir = tempdir();
    let path = dir.path().join("foreign");
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("random", noise(7, 10_000)),
        ("random, long", noise(8, 100_000)),
        (
            "text",
            b"P3\n# this is a text file, not ours\n2 2\n255\n0 0 0 255 255 255\n".repeat(300),
        ),
        ("short text", b"hello".to_vec()),
        ("one byte", vec![0x89]),
        ("zeros", vec![0; 8192]),
        ("png", {
            let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
            v.extend(noise(9, 9000));
            v
        }),
    ];
    // Our magic, shifted by one byte, is still not ours.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(b"\x89CIM\r\n\x1a\n");
    shifted.resize(9000, 0);
    cases.push(("shifted magic", shifted));
    for (what, bytes) in cases {
        assert_every_open_fails(&path, &bytes, |e| matches!(e, Error::NotACompressedImage));
        let e = err(Channel::<u8>::open_read_only(&path));
        assert!(
            e.to_string().contains("not a compressed-image"),
            "{what}: {e}"
        );
    }
}

#[test]
fn wrong_magic_in_both_slots_is_not_a_compressed_image() {
    let dir = tempdir();
    let (path, _) = channel_file(dir.path(), "c.cimg");
    let good = fs::read(&path).unwrap();
    let bad_path = dir.path().join("bad.cimg");
    for at in [0, 1, 3, 7] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x20;
        bytes[SLOT_PAGE + at] ^= 0x01;
        assert_every_open_fails(&bad_path, &bytes, |e| {
            matches!(e, Error::NotACompressedImage)
        });
    }
    // A CRLF-converted file (the magic's 0D 0A became 0A) is not ours either.
    let mut bytes = good.clone();
    for page in [0, 1] {
        let s = page * SLOT_PAGE;
        bytes[s + 4] = b'\n';
    }
    assert_every_open_fails(&bad_path, &bytes, |e| {
        matches!(e, Error::NotACompressedImage)
    });
    // The original still opens.
    assert!(Channel::<u8>::open_read_only(&path).is_ok());
}

#[test]
fn future_major_version_is_unsupported_version() {
    let dir = tempdir();
    let (path, _) = channel_file(dir.path(), "c.cimg");
    let good = fs::read(&path).unwrap();
    let bad_path = dir.path().join("future.cimg");
    for (major, minor) in [(2u16, 0u16), (2, 7), (0, 0), (u16::MAX, 1)] {
        let mut bytes = good.clone();
        for page in [0, 1] {
            let s = page * SLOT_PAGE;
            bytes[s + 8..s + 10].copy_from_slice(&major.to_le_bytes());
            bytes[s + 10..s + 12].copy_from_slice(&minor.to_le_bytes());
            seal_slot(&mut bytes, page);
        }
        assert_every_open_fails(
            &bad_path,
            &bytes,
            |e| matches!(e, Error::UnsupportedVersion { major: a, minor: b } if *a == major && *b == minor),
        );
        let e = err(Channel::<u8>::open_read_only(&bad_path));
        assert!(e.to_string().contains(&format!("{major}.{minor}")), "{e}");
    }
    // A future major in one slot and a damaged other slot: still UnsupportedVersion.
    let mut bytes = good.clone();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    seal_slot(&mut bytes, 0);
    bytes[SLOT_PAGE + 100] ^= 0xFF;
    assert_every_open_fails(&bad_path, &bytes, |e| {
        matches!(e, Error::UnsupportedVersion { major: 2, minor: 0 })
    });
    // Without fixing the CRC the version is never looked at: a damaged slot.
    let mut bytes = good.clone();
    for page in [0, 1] {
        bytes[page * SLOT_PAGE + 8] = 2;
    }
    assert_every_open_fails(&bad_path, &bytes, |e| matches!(e, Error::Corrupted { .. }));
}

// ---------------------------------------------------------------------------------------
// Damaged files
// ---------------------------------------------------------------------------------------

#[test]
fn truncated_file_is_an_error_never_a_crash() {
    let dir = tempdir();
    let path = dir.path().join("c.cimg");
    // Incompressible data at level 0, so the committed records reach well past 64 KiB.
    let data = noise(1, 300 * 400);
    let c = Channel::create(
        &path,
        &data,
        400,
        300,
        Settings::default().level(0).chunk_size(400 * 32),
    )
    .unwrap();
    c.sync().unwrap();
    let committed_end = c.stats().unwrap().committed_end as usize;
    drop(c);
    let full = fs::read(&path).unwrap();
    assert!(committed_end > 100_000 && committed_end <= full.len());
    let cut = dir.path().join("cut.cimg");
    for len in [
        0,
        7,
        100,
        255,
        4095,
        4096,
        4096 + 255,
        8191,
        8192,
        8192 + 100,
        committed_end / 2,
        committed_end - 1,
    ] {
        let bytes = &full[..len];
        let expected = |e: &Error| {
            if len < 8 {
                matches!(e, Error::NotACompressedImage)
            } else {
                matches!(e, Error::Corrupted { .. })
            }
        };
        assert_every_open_fails(&cut, bytes, expected);
    }
    // Cutting only the preallocated tail past the commit loses nothing.
    for len in [committed_end, full.len() - 1] {
        fs::write(&cut, &full[..len]).unwrap();
        let c = Channel::<u8>::open_read_only(&cut).unwrap();
        assert_eq!(
            Digest(c.get_decompressed().unwrap()),
            Digest(data.clone()),
            "cut at {len}"
        );
        assert!(
            fs::read(&cut).unwrap() == full[..len],
            "read-only open wrote"
        );
    }
}

#[test]
fn both_slots_corrupt_is_corrupted() {
    let dir = tempdir();
    let (path, _) = channel_file(dir.path(), "c.cimg");
    let good = fs::read(&path).unwrap();
    let bad_path = dir.path().join("bad.cimg");
    for (a, b) in [
        (8, 8),
        (9, 100),
        (16, 16),
        (32, 48),
        (100, 251),
        (251, 60),
        (252, 255),
    ] {
        let mut bytes = good.clone();
        bytes[a] ^= 0x01;
        bytes[SLOT_PAGE + b] ^= 0x80;
        assert_every_open_fails(&bad_path, &bytes, |e| matches!(e, Error::Corrupted { .. }));
        let e = err(Channel::<u8>::open_read_only(&bad_path));
        assert!(e.to_string().contains("corrupted"), "{e}");
    }
}

/// A channel file whose two slots hold different commits, copied while its writer is still
/// open (so no drop-time marker makes them equal). Returns the copy's bytes, the contents of
/// the older and the newer commit.
fn two_commit_file(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let path = dir.join("two.cimg");
    let w = 256;
    let data = pattern(w * 64);
    let c = Channel::create(&path, &data, w, 64, Settings::default().chunk_size(w * 16)).unwrap();
    c.set_chunk(0, &noise(2, w * 16)).unwrap();
    c.sync().unwrap(); // the commit above becomes durable, a marker goes to the other page
    let older = c.get_decompressed().unwrap();
    c.set_chunk(3, &noise(3, w * 16)).unwrap(); // overwrites the marker's page
    let newer = c.get_decompressed().unwrap();
    assert_ne!(older, newer);
    let bytes = fs::read(&path).unwrap();
    drop(c);
    (bytes, older, newer)
}

#[test]
fn one_corrupt_slot_falls_back_to_the_other_older_commit() {
    let dir = tempdir();
    let (bytes, older, newer) = two_commit_file(dir.path());
    let (g0, g1) = (slot_generation(&bytes, 0), slot_generation(&bytes, 1));
    assert_ne!(g0, g1);
    let (new_page, old_page) = if g0 > g1 { (0, 1) } else { (1, 0) };
    let (new_gen, old_gen) = (g0.max(g1), g0.min(g1));

    // The intact file opens at the newer commit.
    let p = dir.path().join("intact.cimg");
    fs::write(&p, &bytes).unwrap();
    let c = Channel::<u8>::open_read_only(&p).unwrap();
    assert_eq!(Digest(c.get_decompressed().unwrap()), Digest(newer.clone()));
    assert_eq!(c.stats().unwrap().generation, new_gen);
    drop(c);

    // A copy of the file with bit 2 of byte `at` of slot page `page` flipped, written as
    // `name`: a read-only open shows exactly `expected` at `generation` and leaves the file
    // as it was. Returns the copy's path.
    let check_damaged = |page: usize, at: usize, name: String, expected: &[u8], generation| {
        let mut damaged = bytes.clone();
        damaged[page * SLOT_PAGE + at] ^= 0x04;
        let p = dir.path().join(name);
        fs::write(&p, &damaged).unwrap();
        let c = Channel::<u8>::open_read_only(&p).unwrap();
        assert_eq!(
            Digest(c.get_decompressed().unwrap()),
            Digest(expected.to_vec()),
            "byte {at}"
        );
        assert_eq!(c.stats().unwrap().generation, generation);
        drop(c);
        assert!(fs::read(&p).unwrap() == damaged, "read-only open wrote");
        p
    };
    for at in [8, 16, 40, 63, 64, 200, 251, 253] {
        // Newest slot damaged: the older commit, exactly.
        let p = check_damaged(new_page, at, format!("new{at}.cimg"), &older, old_gen);
        let c = Channel::<u8>::open(&p).unwrap();
        assert_eq!(
            Digest(c.get_decompressed().unwrap()),
            Digest(older.clone()),
            "byte {at}, read-write"
        );
        // ... and it can continue from there.
        c.set_chunk(1, &noise(4, 256 * 16)).unwrap();
        drop(c);
        let mut expected = older.clone();
        expected[256 * 16..256 * 32].copy_from_slice(&noise(4, 256 * 16));
        assert_eq!(
            Channel::<u8>::open_read_only(&p)
                .unwrap()
                .get_decompressed()
                .unwrap(),
            expected
        );

        // Older slot damaged: the newer commit.
        check_damaged(old_page, at, format!("old{at}.cimg"), &newer, new_gen);
    }
}

/// A u8 channel file, 256 × 60, chunks of 8 rows (2048 bytes; the last has 4 rows), every
/// chunk incompressible and stored raw (level 0), then closed. Returns its path and data.
fn raw_blob_channel(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("raw.cimg");
    let mut data = Vec::new();
    for i in 0..8 {
        data.extend(noise(100 + i, if i < 7 { 2048 } else { 1024 }));
    }
    let c = Channel::create(
        &path,
        &data,
        256,
        60,
        Settings::default().level(0).chunk_size(2048),
    )
    .unwrap();
    assert_eq!(c.num_chunks(), 8);
    drop(c);
    (path, data)
}

#[test]
fn blob_crc_mismatch_fails_only_that_chunk() {
    let dir = tempdir();
    let (path, data) = raw_blob_channel(dir.path());
    let good = fs::read(&path).unwrap();
    let chunk = |i: usize| &data[i * 2048..(i * 2048 + 2048).min(data.len())];
    for victim in [0, 3, 7] {
        let found = find_all(&good, &chunk(victim)[..64]);
        assert_eq!(
            found.len(),
            1,
            "chunk {victim} located {} times",
            found.len()
        );
        let mut bytes = good.clone();
        bytes[found[0] + 500] ^= 0x10;
        let p = dir.path().join(format!("v{victim}.cimg"));
        fs::write(&p, &bytes).unwrap();
        for writable in [false, true] {
            let c = if writable {
                Channel::<u8>::open(&p).unwrap()
            } else {
                Channel::<u8>::open_read_only(&p).unwrap()
            };
            let generation = c.stats().unwrap().generation;
            for i in 0..8 {
                let result = c.get_chunk_vec(i);
                if i == victim {
                    let e = err(result);
                    assert!(
                        matches!(e, Error::ChecksumMismatch { channel: 0, chunk } if chunk == victim),
                        "chunk {i}: {e:?}"
                    );
                    assert!(e.to_string().contains(&format!("chunk {victim}")), "{e}");
                } else {
                    assert_eq!(result.unwrap(), chunk(i), "chunk {i}");
                }
            }
            // Whole-channel and row reads that touch the chunk fail the same way.
            assert!(matches!(
                err(c.get_decompressed()),
                Error::ChecksumMismatch { channel: 0, chunk } if chunk == victim
            ));
            let mut row = vec![0u8; 256];
            assert!(matches!(
                err(c.read_rows(victim * 8 + 1, &mut row)),
                Error::ChecksumMismatch { channel: 0, chunk } if chunk == victim
            ));
            let other_row = if victim == 0 { 20 } else { 0 };
            c.read_rows(other_row, &mut row).unwrap();
            assert_eq!(row, data[other_row * 256..other_row * 256 + 256]);
            let mut visited = 0;
            assert!(matches!(
                err(c.for_each_chunk(|_| {
                    visited += 1;
                    Ok(())
                })),
                Error::ChecksumMismatch { .. }
            ));
            assert_eq!(visited, victim);
            assert_eq!(c.stats().unwrap().generation, generation);
            drop(c);
            assert!(fs::read(&p).unwrap() == bytes, "reading changed the file");
        }
        // Rewriting the damaged chunk heals it.
        let c = Channel::<u8>::open(&p).unwrap();
        c.set_chunk(victim, chunk(victim)).unwrap();
        assert_eq!(Digest(c.get_decompressed().unwrap()), Digest(data.clone()));
    }
}

#[test]
fn blob_crc_mismatch_in_an_image_names_the_channel_position() {
    let dir = tempdir();
    let path = dir.path().join("img.cimg");
    let (w, h) = (128, 32);
    let s = Settings::default().level(0).chunk_size(w * 8);
    let img = Image::<u8>::create(&path, w, h).unwrap();
    let planes: Vec<Vec<u8>> = (0..3).map(|i| noise(200 + i, w * h)).collect();
    for (i, p) in planes.iter().enumerate() {
        img.add_channel(p, Some(&format!("c{i}")), s).unwrap();
    }
    img.remove_channel(0).unwrap(); // channel ids 1 and 2 are now at positions 0 and 1
    drop(img);
    let mut bytes = fs::read(&path).unwrap();
    let victim = 2; // chunk 2 of the channel at position 1 (the third one added)
    let needle = &planes[2][victim * w * 8..victim * w * 8 + 64];
    let found = find_all(&bytes, needle);
    assert_eq!(found.len(), 1);
    bytes[found[0] + 10] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let img = Image::<u8>::open_read_only(&path).unwrap();
    let e = err(img.channel(1).unwrap().get_chunk_vec(victim));
    assert!(
        matches!(
            e,
            Error::ChecksumMismatch {
                channel: 1,
                chunk: 2
            }
        ),
        "{e:?}"
    );
    assert!(matches!(
        err(img.get_decompressed()),
        Error::ChecksumMismatch {
            channel: 1,
            chunk: 2
        }
    ));
    assert_eq!(
        img.channel(0).unwrap().get_decompressed().unwrap(),
        planes[1]
    );
    assert_eq!(img.verify().unwrap().damaged_chunks, [(1, 2)]);
    for i in [0, 1, 3] {
        assert_eq!(
            img.channel(1).unwrap().get_chunk_vec(i).unwrap(),
            planes[2][i * w * 8..(i + 1) * w * 8]
        );
    }
    assert!(fs::read(&path).unwrap() == bytes);
}

// ---------------------------------------------------------------------------------------
// Locks and read-only handles
// ---------------------------------------------------------------------------------------

#[test]
fn second_writer_in_the_same_process_is_locked() {
    let dir = tempdir();
    let (path, data) = channel_file(dir.path(), "c.cimg");
    let c = Channel::<u8>::open(&path).unwrap();
    c.sync().unwrap();
    let state = channel_state(&c);
    let bytes = fs::read(&path).unwrap();
    let locked = |e: &Error| matches!(e, Error::Locked { path: p } if *p == path);
    assert!(locked(&err(Channel::<u8>::open(&path))));
    assert!(locked(&err(AnyChannel::open(&path))));
    assert!(locked(&err(Image::<u8>::open(&path))));
    assert!(locked(&err(AnyChannel::open_with_backend(&path, |b| b))));
    assert!(locked(&err(Image::<u8>::open_with_backend(&path, |b| b))));
    // Locked wins over a wrong element type: nothing is read.
    assert!(locked(&err(Channel::<f32>::open(&path))));
    let e = err(Channel::<u8>::open(&path));
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    // Readers are never locked out.
    let ro = Channel::<u8>::open_read_only(&path).unwrap();
    assert_eq!(Digest(ro.get_decompressed().unwrap()), Digest(data.clone()));
    assert_eq!(channel_state(&c), state);
    assert!(fs::read(&path).unwrap() == bytes, "file changed");
    // The writer still writes; once it is gone, another may open.
    c.set_chunk(1, &noise(5, 128 * 1024)).unwrap();
    drop(c);
    assert!(Channel::<u8>::open(&path).is_ok());
}

#[test]
fn creating_over_a_path_with_an_open_writer_is_locked() {
    let dir = tempdir();
    let (path, data) = channel_file(dir.path(), "c.cimg");
    let c = Channel::<u8>::open(&path).unwrap();
    c.sync().unwrap();
    let state = channel_state(&c);
    let bytes = fs::read(&path).unwrap();
    let entries = dir_entries(dir.path());
    let locked = |e: &Error| matches!(e, Error::Locked { path: p } if *p == path);
    let s = Settings::default();
    assert!(locked(&err(Channel::create(&path, &[1u8; 16], 4, 4, s))));
    assert!(locked(&err(Channel::<f32>::create_full(
        &path, 4, 4, 1.0, s
    ))));
    assert!(locked(&err(AnyChannel::create_full(
        &path,
        Dtype::U8,
        4,
        4,
        0,
        s
    ))));
    assert!(locked(&err(Image::<u8>::create(&path, 4, 4))));
    let other = Channel::<u8>::zeros(4, 4, s).unwrap();
    assert!(locked(&err(other.save_as(&path))));
    let img = Image::<u8>::new(4, 4).unwrap();
    assert!(locked(&err(img.save_as(&path))));
    // The file, its writer and the directory are untouched (no temporary files left).
    assert_eq!(channel_state(&c), state);
    assert!(fs::read(&path).unwrap() == bytes, "file changed");
    assert_eq!(dir_entries(dir.path()), entries);
    assert_eq!(Digest(c.get_decompressed().unwrap()), Digest(data.clone()));
    drop(c);
    // Without the writer, create replaces the file.
    Channel::create(&path, &[1u8; 16], 4, 4, s).unwrap();
}

#[test]
fn writes_through_read_only_handles_are_read_only() {
    let dir = tempdir();
    let path = dir.path().join("img.cimg");
    let img = Image::<u8>::create(&path, 32, 32).unwrap();
    img.add_channel(&pattern(1024), Some("a"), Settings::default())
        .unwrap();
    img.add_lazy_channel(3, Some("b"), Settings::default())
        .unwrap();
    img.set_metadata(serde_json::json!({"x": 1})).unwrap();
    drop(img);
    let bytes = fs::read(&path).unwrap();

    let ro = Image::<u8>::open_read_only(&path).unwrap();
    let state = image_state(&ro);
    let s = Settings::default();
    let read_only = |e: Error| assert!(matches!(e, Error::ReadOnly), "{e:?}");
    read_only(err(ro.add_channel(&pattern(1024), Some("c"), s)));
    read_only(err(ro.add_lazy_channel(1, None, s)));
    read_only(err(ro.remove_channel(0)));
    read_only(err(ro.remove_channel_by_name("b")));
    read_only(err(ro.set_metadata(serde_json::json!(null))));
    read_only(err(ro.set_channel_names(&["p", "q"])));
    read_only(err(ro.set_durability(Durability::Immediate)));
    let ch = ro.channel(0).unwrap();
    assert!(!ch.is_writable());
    read_only(err(ch.set_chunk(0, &pattern(1024))));
    read_only(err(ch.set_chunk(0, &[9; 1024])));
    read_only(err(ch.set_chunk_bytes(0, &pattern(1024))));
    read_only(err(ch.batch().map(drop)));
    let mut visited = false;
    read_only(err(ch.update_chunks(|c| {
        visited = true;
        c.data_mut()[0] ^= 1;
        Ok(())
    })));
    assert!(!visited);
    read_only(err(ch.set_durability(Durability::Immediate)));
    ro.sync().unwrap(); // a no-op for readers
    assert_eq!(image_state(&ro), state);

    // A read-only channel file.
    drop(ro);
    let cpath = dir.path().join("c.cimg");
    drop(Channel::create(&cpath, &pattern(64), 8, 8, s).unwrap());
    let cbytes = fs::read(&cpath).unwrap();
    let c = Channel::<u8>::open_read_only(&cpath).unwrap();
    let cstate = channel_state(&c);
    read_only(err(c.set_chunk(0, &pattern(64))));
    read_only(err(c.batch().map(drop)));
    assert_eq!(channel_state(&c), cstate);
    drop(c);
    assert!(fs::read(&path).unwrap() == bytes, "image file changed");
    assert!(fs::read(&cpath).unwrap() == cbytes, "channel file changed");
}

// ---------------------------------------------------------------------------------------
// Injected I/O failures (through the Backend seam)
// ---------------------------------------------------------------------------------------

type Step<'a, H> = &'a dyn Fn(&H) -> Result;

/// One fault-injection experiment on a file handle of type `H` whose observable state is `S`.
struct Matrix<'a, H, S> {
    name: &'a str,
    /// Open the copy through the fault-injecting backend (not yet armed).
    open: &'a dyn Fn(&Path, &Arc<Fault>) -> H,
    /// Open the copy normally after the failing handle is gone.
    reopen: &'a dyn Fn(&Path) -> H,
    state: &'a dyn Fn(&H) -> S,
    /// Runs before the fault is armed.
    setup: Step<'a, H>,
    /// The call that fails.
    act: Step<'a, H>,
    /// Writes that must return `Error::Poisoned` afterwards.
    poisoned: &'a [Step<'a, H>],
    /// Whether the failing call may already have committed (a failed fsync after the slot
    /// write): then the handle may show the new state, and the reopened file must agree.
    may_commit: bool,
}

impl<H, S: PartialEq + std::fmt::Debug> Matrix<'_, H, S> {
    /// For every mutating backend call that `act` makes (counted on a first, fault-free
    /// run), run `setup` then `act` on a fresh copy of `base` with exactly that call
    /// failing, and check: `act` returns the injected `Error::Io`; the handle still reads
    /// the state it had before `act`; every later write is `Error::Poisoned`; and after the
    /// handle is dropped a fresh open shows exactly that state. Returns how many faults
    /// were injected.
    fn run(&self, base: &Path, dir: &Path) -> usize {
        let name = self.name;
        let mut injected = 0;
        let mut mismatches = Vec::new();
        for op in [Op::Write, Op::SetLen, Op::Sync] {
            let path = dir.join(format!("{name}-measure.cimg"));
            fs::copy(base, &path).unwrap();
            let fault = Fault::disarmed([]);
            let h = (self.open)(&path, &fault);
            (self.setup)(&h).unwrap();
            fault.arm();
            (self.act)(&h).unwrap_or_else(|e| panic!("{name}: fault-free run failed: {e:?}"));
            let calls = fault.count(op);
            let intended = (self.state)(&h);
            drop(h);
            for k in 0..calls {
                let what = format!("{name}: {op:?} #{k} of {calls} fails");
                let path = dir.join(format!("{name}-{op:?}-{k}.cimg"));
                fs::copy(base, &path).unwrap();
                let fault = Fault::disarmed([Target::new(op, k)]);
                let h = (self.open)(&path, &fault);
                (self.setup)(&h).unwrap();
                let before = (self.state)(&h);
                fault.arm();
                let e = err((self.act)(&h));
                assert!(fault.fired(), "{what}: the fault was not reached");
                assert_injected(&e, &what);
                // Reads still work and show the state before the failed call (or, where the
                // call may have committed before failing, the state it intended).
                let shown = (self.state)(&h);
                if shown != before {
                    assert!(
                        self.may_commit && shown == intended,
                        "{what}: the handle changed"
                    );
                }
                for write in self.poisoned {
                    let e = err(write(&h));
                    assert!(matches!(e, Error::Poisoned), "{what}: {e:?}");
                }
                assert_eq!((self.state)(&h), shown, "{what}: the handle changed");
                drop(h);
                let h = (self.reopen)(&path);
                let after = (self.state)(&h);
                if after != shown {
                    mismatches.push(format!(
                        "{what}: the handle reported the error and shows {shown:?}, \
                         but the reopened file shows {after:?}"
                    ));
                }
                drop(h);
                injected += 1;
            }
        }
        assert!(
            mismatches.is_empty(),
            "{} of {injected} injected faults changed the file:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
        injected
    }
}

/// State of a channel without its generation (a reopen may add a marker commit).
fn channel_contents(c: &Channel<u8>) -> (Digest, Vec<bool>) {
    let s = channel_state(c);
    (s.data, s.lazy)
}

fn open_failing_channel(path: &Path, fault: &Arc<Fault>) -> Channel<u8> {
    Channel::try_from_any(AnyChannel::open_with_backend(path, wrap(fault)).unwrap()).unwrap()
}

fn reopen_channel(path: &Path) -> Channel<u8> {
    Channel::<u8>::open(path).unwrap()
}

const CHUNK: usize = 128 * 1024;

fn poisoned_channel_writes() -> Vec<Step<'static, Channel<u8>>> {
    vec![
        &|c| c.set_chunk(2, &noise(50, CHUNK)),
        &|c| c.set_chunk(0, &[1; CHUNK]),
        &|c| c.batch().map(drop),
        &|c| c.sync(),
        &|c| {
            c.update_chunks(|ch| {
                ch.data_mut()[0] = 0;
                Ok(())
            })
        },
    ]
}

fn run_channel_matrix(name: &str, setup: Step<'_, Channel<u8>>, act: Step<'_, Channel<u8>>) {
    run_channel_matrix_with(name, setup, act, false)
}

fn run_channel_matrix_with(
    name: &str,
    setup: Step<'_, Channel<u8>>,
    act: Step<'_, Channel<u8>>,
    may_commit: bool,
) {
    let dir = tempdir();
    let (base, _) = channel_file(dir.path(), "base.cimg");
    let poisoned = poisoned_channel_writes();
    let n = Matrix {
        name,
        open: &open_failing_channel,
        reopen: &reopen_channel,
        state: &channel_contents,
        setup,
        act,
        poisoned: &poisoned,
        may_commit,
    }
    .run(&base, dir.path());
    assert!(n > 0, "{name}: no fault was injected");
}

#[test]
fn io_error_in_set_chunk_after_a_durable_commit_poisons_and_keeps_that_commit() {
    run_channel_matrix("durable", &|_| Ok(()), &|c| {
        c.set_chunk(1, &noise(10, CHUNK))
    });
}

#[test]
fn io_error_in_set_chunk_after_an_unsynced_commit_poisons_and_keeps_that_commit() {
    run_channel_matrix("unsynced", &|c| c.set_chunk(2, &noise(11, CHUNK)), &|c| {
        c.set_chunk(1, &noise(10, CHUNK))
    });
}

#[test]
fn io_error_in_a_fill_set_chunk_poisons_and_keeps_the_previous_commit() {
    run_channel_matrix("fill", &|_| Ok(()), &|c| c.set_chunk(1, &[42; CHUNK]));
}

#[test]
fn io_error_in_a_batch_that_grows_the_file_poisons_and_keeps_the_previous_commit() {
    // Several incompressible chunks in one batch: the file must grow (set_len) on the way.
    run_channel_matrix("grow", &|_| Ok(()), &|c| {
        let mut b = c.batch()?;
        for i in 0..4 {
            b.set_chunk(i, &noise(20 + i as u64, CHUNK))?;
        }
        b.commit()
    });
}

#[test]
fn io_error_in_sync_poisons_and_keeps_the_last_commit() {
    run_channel_matrix("sync", &|c| c.set_chunk(1, &noise(12, CHUNK)), &|c| {
        c.sync()
    });
}

/// With `Durability::Immediate`, `set_chunk` syncs as part of the call. A fault before the
/// slot write leaves the previous commit; a failed fsync after it reports `Error::Io` for a
/// commit that was made but whose durability is unknown. Either way the handle and the
/// reopened file agree.
#[test]
fn io_error_in_an_immediate_durability_set_chunk_leaves_handle_and_file_agreeing() {
    run_channel_matrix_with(
        "immediate",
        &|c| c.set_durability(Durability::Immediate),
        &|c| c.set_chunk(1, &noise(13, CHUNK)),
        true,
    );
}

#[test]
fn the_fault_matrix_exercises_writes_set_len_and_sync() {
    // Guard against a matrix that silently injects nothing of some kind.
    let dir = tempdir();
    let (base, _) = channel_file(dir.path(), "base.cimg");
    let count = |setup: Step<'_, Channel<u8>>, act: Step<'_, Channel<u8>>| {
        let p = dir.path().join("probe.cimg");
        fs::copy(&base, &p).unwrap();
        let fault = Fault::disarmed([]);
        let c = open_failing_channel(&p, &fault);
        setup(&c).unwrap();
        fault.arm();
        act(&c).unwrap();
        let n = [Op::Write, Op::SetLen, Op::Sync].map(|op| fault.count(op));
        drop(c);
        n
    };
    // A blob commit appends records and writes a slot; an incompressible 128 KiB chunk
    // grows the preallocated file.
    let [writes, set_lens, syncs] = count(&|_| Ok(()), &|c| c.set_chunk(1, &noise(10, CHUNK)));
    assert!(
        writes >= 4 && set_lens >= 1 && syncs == 0,
        "{writes} {set_lens} {syncs}"
    );
    // sync = fsync, then a marker slot.
    let [writes, _, syncs] = count(&|c| c.set_chunk(1, &noise(12, CHUNK)), &|c| c.sync());
    assert!(writes >= 1 && syncs >= 1, "{writes} {syncs}");
    let [_, _, syncs] = count(&|c| c.set_durability(Durability::Immediate), &|c| {
        c.set_chunk(1, &noise(13, CHUNK))
    });
    assert!(syncs >= 1);
}

#[test]
fn io_error_in_the_sync_of_open_fails_the_open_and_changes_nothing() {
    let dir = tempdir();
    let (path, data) = channel_file(dir.path(), "c.cimg");
    let bytes = fs::read(&path).unwrap();
    let fault = Fault::disarmed([Target::new(Op::Sync, 0)]);
    fault.arm();
    let e = err(AnyChannel::open_with_backend(&path, wrap(&fault)));
    assert!(fault.fired());
    assert_injected(&e, "sync during open");
    let fault = Fault::disarmed([Target::new(Op::Sync, 0)]);
    fault.arm();
    let e = err(Image::<u8>::open_with_backend(&path, wrap(&fault)));
    assert_injected(&e, "sync during image open");
    assert!(fs::read(&path).unwrap() == bytes, "file changed");
    // The lock was released.
    let c = Channel::<u8>::open(&path).unwrap();
    assert_eq!(Digest(c.get_decompressed().unwrap()), Digest(data.clone()));
}

#[test]
fn io_error_in_the_sync_on_drop_is_ignored_and_the_commit_survives() {
    let dir = tempdir();
    let (path, _) = channel_file(dir.path(), "c.cimg");
    let fault = Fault::disarmed([Target::new(Op::Sync, 0)]);
    let c = open_failing_channel(&path, &fault);
    c.set_chunk(1, &noise(14, CHUNK)).unwrap();
    let contents = channel_contents(&c);
    fault.arm();
    drop(c); // the best-effort sync fails; no panic
    assert!(fault.fired());
    assert_eq!(channel_contents(&reopen_channel(&path)), contents);
}

fn image_file(dir: &Path) -> PathBuf {
    let path = dir.join("img.cimg");
    let img = Image::<u8>::create(&path, 256, 128).unwrap();
    let s = Settings::default().chunk_size(256 * 32);
    img.add_channel(&pattern(256 * 128), Some("r"), s).unwrap();
    img.add_lazy_channel(9, Some("g"), s).unwrap();
    img.set_metadata(serde_json::json!({"origin": "errors.rs", "n": [1, 2, 3]}))
        .unwrap();
    drop(img);
    path
}

/// Image state without its generation.
fn image_contents(img: &Image<u8>) -> (Vec<String>, serde_json::Value, Vec<Digest>) {
    let s = image_state(img);
    (s.names, s.metadata, s.data)
}

fn run_image_matrix(name: &str, act: Step<'_, Image<u8>>) {
    let dir = tempdir();
    let base = image_file(dir.path());
    let open =
        |p: &Path, fault: &Arc<Fault>| Image::<u8>::open_with_backend(p, wrap(fault)).unwrap();
    let reopen = |p: &Path| Image::<u8>::open(p).unwrap();
    let poisoned: Vec<Step<'_, Image<u8>>> = vec![
        &|img| img.set_metadata(serde_json::json!(1)),
        &|img| {
            img.add_lazy_channel(1, Some("z"), Settings::default())
                .map(drop)
        },
        &|img| img.remove_channel(0),
        &|img| img.set_channel_names(&["p", "q"]),
        &|img| img.channel(0)?.set_chunk(0, &noise(60, 256 * 32)),
        &|img| img.sync(),
    ];
    let n = Matrix {
        name,
        open: &open,
        reopen: &reopen,
        state: &image_contents,
        setup: &|_| Ok(()),
        act,
        poisoned: &poisoned,
        may_commit: false,
    }
    .run(&base, dir.path());
    assert!(n > 0, "{name}: no fault was injected");
}

#[test]
fn io_error_in_image_add_channel_leaves_the_image_as_before() {
    run_image_matrix("add", &|img| {
        img.add_channel(
            &noise(30, 256 * 128),
            Some("b"),
            Settings::default().chunk_size(256 * 32),
        )
        .map(drop)
    });
}

#[test]
fn io_error_in_image_add_lazy_channel_leaves_the_image_as_before() {
    run_image_matrix("add-lazy", &|img| {
        img.add_lazy_channel(5, Some("b"), Settings::default())
            .map(drop)
    });
}

#[test]
fn io_error_in_image_remove_channel_leaves_the_image_as_before() {
    run_image_matrix("remove", &|img| img.remove_channel(0));
}

#[test]
fn io_error_in_image_metadata_and_names_leaves_the_image_as_before() {
    run_image_matrix("meta", &|img| {
        img.set_metadata(serde_json::json!({"replaced": true}))
    });
    run_image_matrix("names", &|img| img.set_channel_names(&["x", "y"]));
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

#[test]
fn error_messages_name_the_values_involved() {
    let c = Channel::<f32>::zeros(10, 25, Settings::default().chunk_size(160)).unwrap();
    // Buffer length: 39 elements = 156 bytes, expected 160.
    let e = err(c.get_chunk(3, &mut [0.0; 39]));
    let msg = e.to_string();
    assert!(msg.contains("156") && msg.contains("160"), "{msg}");
    let e = err(c.set_chunk(6, &[1.0; 40]));
    let msg = e.to_string();
    assert!(msg.contains("160") && msg.contains("40"), "{msg}");
    // Index: the index and the count.
    let msg = err(c.get_chunk(9, &mut [0.0; 40])).to_string();
    assert!(
        msg.contains('9') && msg.contains('7') && msg.contains("chunk"),
        "{msg}"
    );
    // Size.
    let msg = err(Channel::<f32>::zeros(0, 25, Settings::default())).to_string();
    assert!(msg.contains("0 x 25"), "{msg}");
    // Threads.
    let c = c;
    let msg = err(c.set_threads(0)).to_string();
    assert!(msg.contains('0') && msg.contains("at least 1"), "{msg}");
    // Variants without values still say what happened.
    assert!(Error::ReadOnly.to_string().contains("read-only"));
    assert!(Error::Poisoned.to_string().contains("reopen"));
    let msg = Error::ChecksumMismatch {
        channel: 4,
        chunk: 11,
    }
    .to_string();
    assert!(msg.contains('4') && msg.contains("11"), "{msg}");
    let msg = Error::UnsupportedVersion { major: 3, minor: 2 }.to_string();
    assert!(msg.contains("3.2"), "{msg}");
    // The I/O error is the source.
    let e = Error::from(io::Error::other(INJECTED));
    assert!(std::error::Error::source(&e).is_some());
}
