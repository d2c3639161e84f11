//! Progress observers: every long operation reports a total and advances that add up to
//! it, calls `finish` once, and stops with `Error::Cancelled` when the observer says so —
//! a cancelled compaction or `save_as` leaving every file as it was and no temporary file.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use compressed_image::{
    AnyImage, Channel, ChunkStorage, Dtype, Error, Progress, Settings, serde_json,
};

mod common;

use common::rng::Rng;

/// Records what an operation reports.
struct Recorder {
    /// The call of `advance` (counting from 1) that cancels, if any.
    stop_at: Option<u64>,
    starts: Mutex<Vec<(String, u64)>>,
    done: AtomicU64,
    calls: AtomicU64,
    finishes: AtomicUsize,
}

impl Recorder {
    fn new(stop_at: Option<u64>) -> Recorder {
        Recorder {
            stop_at,
            starts: Mutex::default(),
            done: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            finishes: AtomicUsize::new(0),
        }
    }

    /// The one `start` call, checked to be followed by exactly one `finish`.
    fn started(&self) -> (String, u64) {
        let starts = self.starts.lock().unwrap();
        assert_eq!(starts.len(), 1, "start calls: {starts:?}");
        assert_eq!(self.finishes.load(Ordering::SeqCst), 1, "finish calls");
        starts[0].clone()
    }

    /// Check a completed operation: it started `what` once, finished once, and its
    /// advances add up to its total, which is returned.
    fn completed(&self, what: &str) -> u64 {
        let (name, total) = self.started();
        assert_eq!(name, what);
        assert_eq!(
            self.done.load(Ordering::SeqCst),
            total,
            "advances of {what}"
        );
        total
    }
}

impl Progress for Recorder {
    fn start(&self, what: &str, total: u64) {
        self.starts.lock().unwrap().push((what.to_string(), total));
    }

    fn advance(&self, n: u64) -> ControlFlow<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.done.fetch_add(n, Ordering::SeqCst);
        if self.stop_at == Some(call) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn finish(&self) {
        self.finishes.fetch_add(1, Ordering::SeqCst);
    }
}

const WIDTH: usize = 128;
const HEIGHT: usize = 256;

/// Poorly compressible values, the same for the same `seed`.
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.below(100_000) as f32).collect()
}

/// An image file of two named channels (an f32 one from data, 32 chunks, some rewritten
/// so the file has dead space; a lazy u16 one with one chunk set) and metadata.
fn image_file(dir: &Path) -> PathBuf {
    let path = dir.join("image.cimg");
    let image = AnyImage::create(&path, WIDTH, HEIGHT).unwrap();
    let settings = Settings::default().chunk_size(WIDTH * 8 * 4);
    let depth = image
        .add_channel(&noise(1, WIDTH * HEIGHT), Some("depth"), settings)
        .unwrap();
    let id = image
        .add_lazy_channel(7u16, Some("id"), settings.chunk_size(WIDTH * 64 * 2))
        .unwrap();
    id.set_chunk(1, &(0..WIDTH as u16 * 64).collect::<Vec<_>>())
        .unwrap();
    for i in [2, 5, 9] {
        depth
            .set_chunk(i, &noise(i as u64 + 10, WIDTH * 8))
            .unwrap();
    }
    image
        .set_metadata(serde_json::json!({"camera": "left"}))
        .unwrap();
    assert!(image.stats().unwrap().dead_bytes > 0);
    path
}

/// Bytes of every compressed chunk of `image`.
fn blob_bytes(image: &AnyImage) -> u64 {
    image
        .channels()
        .iter()
        .flat_map(|c| c.chunk_storage().unwrap())
        .map(|s| match s {
            ChunkStorage::Blob { compressed_len, .. } => compressed_len as u64,
            _ => 0,
        })
        .sum()
}

/// A copy of `image` in `dir` under `name`, open for writing.
fn copy_of(image: &AnyImage, dir: &Path, name: &str) -> AnyImage {
    image.save_as(dir.join(name)).unwrap();
    AnyImage::open(dir.join(name)).unwrap()
}

/// The names in `dir`.
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_operation_advances_exactly_its_total_and_finishes_once() {
    let dir = tempfile::tempdir().unwrap();
    let image = AnyImage::open(image_file(dir.path())).unwrap();
    let copied = blob_bytes(&image);
    assert!(copied > 0);

    let verify = Recorder::new(None);
    let report = image.verify_with_progress(&verify).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(verify.completed("verify"), report.bytes_checked);

    let save = Recorder::new(None);
    image
        .save_as_with_progress(dir.path().join("copy.cimg"), &save)
        .unwrap();
    assert_eq!(save.completed("save_as"), copied);

    let save_channel = Recorder::new(None);
    (image.channel(1).unwrap())
        .save_as_with_progress(dir.path().join("id.cimg"), &save_channel)
        .unwrap();
    let channel_blobs = blob_bytes(&AnyImage::open_read_only(dir.path().join("id.cimg")).unwrap());
    assert_eq!(save_channel.completed("save_as"), channel_blobs);
    assert!(channel_blobs > 0 && channel_blobs < copied);

    // Decompression and compression on several threads at once, and on one.
    for threads in [1, 4] {
        image.set_threads(threads).unwrap();
        let decompress = Recorder::new(None);
        let all = image
            .get_decompressed_bytes_with_progress(&decompress)
            .unwrap();
        let bytes: usize = all.iter().map(Vec::len).sum();
        assert_eq!(decompress.completed("decompress"), bytes as u64);
        assert_eq!(all, image.get_decompressed_bytes().unwrap());

        let depth = Channel::<f32>::try_from_any(image.channel(0).unwrap()).unwrap();
        let one = Recorder::new(None);
        let mut out = vec![0.0f32; WIDTH * HEIGHT];
        depth.decompress_into_with_progress(&mut out, &one).unwrap();
        assert_eq!(one.completed("decompress"), (WIDTH * HEIGHT * 4) as u64);
        assert_eq!(out, depth.get_decompressed().unwrap());

        let data = noise(threads as u64, WIDTH * HEIGHT);
        let compress = Recorder::new(None);
        let added = image
            .add_channel_bytes_with_progress(
                Dtype::F32,
                bytemuck::cast_slice(&data),
                None,
                Settings::default().chunk_size(WIDTH * 4 * 4),
                &compress,
            )
            .unwrap();
        assert_eq!(compress.completed("compress"), (data.len() * 4) as u64);
        assert_eq!(added.num_chunks(), HEIGHT / 4);
    }

    let dead = image.stats().unwrap().dead_bytes;
    assert!(dead > 0);
    let compact = Recorder::new(None);
    let expected = blob_bytes(&image);
    let report = image.compact_with_progress(&compact).unwrap();
    assert_eq!(compact.completed("compact"), expected);
    // The file also loses its preallocated tail.
    assert!(report.reclaimed >= dead, "{report:?}, {dead} dead bytes");
    assert_eq!(image.stats().unwrap().dead_bytes, 0);
}

#[test]
fn an_operation_that_fails_its_argument_checks_reports_nothing() {
    let image = AnyImage::new(WIDTH, HEIGHT).unwrap();
    let recorder = Recorder::new(None);
    let err = image
        .add_channel_bytes_with_progress(Dtype::F32, &[0; 8], None, Settings::default(), &recorder)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let channel = image
        .add_channel_bytes(Dtype::U8, &[1; WIDTH * HEIGHT], None, Settings::default())
        .unwrap();
    let err = channel
        .decompress_into_bytes_with_progress(&mut [0; 3], &recorder)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(recorder.starts.lock().unwrap().is_empty());
    assert_eq!(recorder.finishes.load(Ordering::SeqCst), 0);
}

/// How many times `operation` calls `advance` when nothing cancels it.
fn count_calls(operation: impl FnOnce(&Recorder) -> compressed_image::Result) -> u64 {
    let count = Recorder::new(None);
    operation(&count).unwrap();
    count.calls.load(Ordering::SeqCst)
}

/// Run `operation` `calls` times, cancelling at each call of `advance` in turn, and check
/// after each run that it returned `Cancelled`, finished its observer once and left the
/// files in `dir` as they were (`check` looks at the rest).
fn cancel_at_every_call(
    calls: u64,
    dir: &Path,
    operation: impl Fn(&Recorder) -> compressed_image::Result,
    check: impl Fn(),
) {
    assert!(calls > 1, "{calls} calls");
    let listing = entries(dir);
    for stop_at in 1..=calls {
        let recorder = Recorder::new(Some(stop_at));
        let err = operation(&recorder).expect_err("cancelled");
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        recorder.started();
        assert_eq!(
            entries(dir),
            listing,
            "files after a cancel at call {stop_at}"
        );
        check();
    }
}

#[test]
fn a_cancelled_compaction_leaves_the_file_and_the_handle_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let path = image_file(dir.path());
    let image = AnyImage::open(&path).unwrap();
    // The copy has the same chunks, so the same number of calls (the last one is the
    // check right before the rename).
    let calls = count_calls(|p| {
        copy_of(&image, dir.path(), "count.cimg")
            .compact_with_progress(p)
            .map(drop)
    });
    assert!(calls > 32, "{calls} calls");
    let bytes = std::fs::read(&path).unwrap();
    let (generation, data) = (image.generation(), image.get_decompressed_bytes().unwrap());
    cancel_at_every_call(
        calls,
        dir.path(),
        |progress| image.compact_with_progress(progress).map(drop),
        || {
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
            assert_eq!(image.generation(), generation);
            assert_eq!(image.get_decompressed_bytes().unwrap(), data);
        },
    );
    // The handle still writes and compacts.
    image.set_metadata(serde_json::json!("after")).unwrap();
    image.compact().unwrap();
    assert_eq!(image.get_decompressed_bytes().unwrap(), data);
    assert_eq!(image.stats().unwrap().dead_bytes, 0);
}

#[test]
fn a_cancelled_save_as_leaves_no_file_and_keeps_the_one_it_would_replace() {
    let dir = tempfile::tempdir().unwrap();
    let image = AnyImage::open(image_file(dir.path())).unwrap();
    let fresh = dir.path().join("fresh.cimg");
    let calls = count_calls(|p| image.save_as_with_progress(&fresh, p));
    std::fs::remove_file(&fresh).unwrap();
    std::fs::remove_file(dir.path().join("fresh.cimg.lock")).unwrap();
    cancel_at_every_call(
        calls,
        dir.path(),
        |progress| image.save_as_with_progress(&fresh, progress),
        || assert!(!fresh.exists()),
    );

    let existing = dir.path().join("id.cimg");
    let channel = image.channel(1).unwrap();
    let calls = count_calls(|p| channel.save_as_with_progress(&existing, p));
    let before = std::fs::read(&existing).unwrap();
    cancel_at_every_call(
        calls,
        dir.path(),
        |progress| channel.save_as_with_progress(&existing, progress),
        || assert_eq!(std::fs::read(&existing).unwrap(), before),
    );
}

#[test]
fn cancelled_reads_and_writes_return_cancelled_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = AnyImage::open(image_file(dir.path())).unwrap();
    let generation = image.generation();
    let verify = |p: &Recorder| image.verify_with_progress(p).map(drop);
    cancel_at_every_call(count_calls(verify), dir.path(), verify, || {});
    for threads in [1, 4] {
        image.set_threads(threads).unwrap();
        let decompress = |p: &Recorder| image.get_decompressed_bytes_with_progress(p).map(drop);
        cancel_at_every_call(count_calls(decompress), dir.path(), decompress, || {});
    }

    let data = noise(5, WIDTH * HEIGHT);
    let add = |image: &AnyImage, p: &Recorder| {
        image
            .add_channel_bytes_with_progress(
                Dtype::F32,
                bytemuck::cast_slice(&data),
                Some("new"),
                Settings::default().chunk_size(WIDTH * 16 * 4),
                p,
            )
            .map(drop)
    };
    let calls = count_calls(|p| add(&copy_of(&image, dir.path(), "count.cimg"), p));
    let channels = image.num_channels();
    cancel_at_every_call(
        calls,
        dir.path(),
        |p| add(&image, p),
        || assert_eq!(image.num_channels(), channels),
    );
    assert_eq!(image.generation(), generation);
}
