//! Regression tests of the public API, one per behaviour: Debug output, commit generations,
//! thread counts, typed error kinds, the serde_json re-export, regions and row iteration.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use compressed_image::{
    AnyChannel, AnyImage, Argument, Channel, Error, Image, Region, Settings, serde_json,
};

/// A value that changes with position and compresses.
fn pattern(n: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) >> 20)
        .collect()
}

#[test]
fn debug_output_shows_path_dtype_and_size_not_internals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("debug.cimg");
    let c = Channel::<f32>::create_full(&path, 30, 20, 0.5, Settings::default()).unwrap();
    let outputs = [
        format!("{c:?}"),
        format!("{:?}", c.clone().into_any()),
        format!("{:?}", c.batch().unwrap()),
    ];
    for shown in &outputs {
        assert!(shown.contains("debug.cimg"), "{shown}");
        assert!(
            shown.contains("F32") || shown.contains("float32"),
            "{shown}"
        );
        assert!(shown.contains("30") && shown.contains("20"), "{shown}");
    }
    drop(c);

    let image = Image::<u16>::new(7, 9).unwrap();
    image
        .add_lazy_channel(1, None, Settings::default())
        .unwrap();
    let untyped = AnyImage::from(image.clone());
    let image_outputs = [
        format!("{image:?}"),
        format!("{untyped:?}"),
        format!("{:?}", image.batch().unwrap()),
    ];
    for shown in &image_outputs {
        assert!(shown.contains("path: None"), "{shown}");
        assert!(shown.contains("U16"), "{shown}");
        assert!(
            shown.contains("width: 7") && shown.contains("height: 9"),
            "{shown}"
        );
    }
    drop(image);
    let untyped_batch = format!("{:?}", untyped.batch().unwrap());
    assert!(
        untyped_batch.starts_with("AnyImageBatch"),
        "{untyped_batch}"
    );
    for shown in outputs.iter().chain(&image_outputs).chain([&untyped_batch]) {
        for internal in ["store", "Arc", "Mutex", "snapshot", "txn"] {
            assert!(!shown.contains(internal), "{internal} in {shown}");
        }
    }
}

#[test]
fn generation_advances_on_commit_and_reader_generations_on_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.cimg");
    let c =
        Channel::<u32>::create_full(&path, 16, 16, 0, Settings::default().chunk_size(256)).unwrap();
    let reader = Channel::<u32>::open_read_only(&path).unwrap();
    let start = c.generation();
    assert_eq!(reader.generation(), start);

    c.set_chunk(1, &pattern(64)).unwrap();
    assert_eq!(c.generation(), start + 1);
    let mut batch = c.batch().unwrap();
    batch.set_chunk(0, &pattern(64)).unwrap();
    batch.set_chunk(2, &pattern(64)).unwrap();
    batch.commit().unwrap();
    assert_eq!(c.generation(), start + 2, "a batch is one commit");
    // A failed write commits nothing.
    assert!(c.set_chunk(0, &[1, 2]).is_err());
    assert_eq!(c.generation(), start + 2);
    assert_eq!(c.generation(), c.stats().unwrap().generation);

    assert_eq!(reader.generation(), start, "a reader stays on its snapshot");
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.generation(), c.generation());

    // Image handles and their channel handles see the same commits.
    let image = Image::<u8>::new(4, 4).unwrap();
    let ch = image
        .add_lazy_channel(0, None, Settings::default())
        .unwrap();
    let g = image.generation();
    ch.set_chunk(0, &[3; 16]).unwrap();
    assert_eq!((image.generation(), ch.generation()), (g + 1, g + 1));
}

#[test]
fn set_threads_works_through_shared_references_and_clones_keep_their_own_count() {
    let data = pattern(64 * 64);
    let c = Channel::new(&data, 64, 64, Settings::default().chunk_size(64 * 4 * 8)).unwrap();
    let before = c.clone();
    let shared: &Channel<u32> = &c;
    shared.set_threads(3).unwrap();
    assert_eq!(c.threads(), 3);
    assert_ne!(before.threads(), 0);
    before.set_threads(1).unwrap();
    assert_eq!((c.threads(), before.threads()), (3, 1));
    let after = c.clone();
    assert_eq!(after.threads(), 3, "a clone starts with the count");
    // Any count gives the same data.
    assert_eq!(c.get_decompressed().unwrap(), data);
    assert_eq!(before.get_decompressed().unwrap(), data);
    match shared.set_threads(0) {
        Err(Error::InvalidArgument {
            what: Argument::ThreadCount,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(c.threads(), 3, "a refused count changes nothing");

    let any: &AnyChannel = &c;
    any.set_threads(2).unwrap();
    assert_eq!(c.threads(), 2);

    // An image hands its count to the channel handles it makes from then on.
    let image = Image::<u32>::new(64, 64).unwrap();
    let early = image.add_channel(&data, None, Settings::default()).unwrap();
    let count = early.threads() + 1;
    let shared_image: &Image<u32> = &image;
    shared_image.set_threads(count).unwrap();
    assert_eq!(image.threads(), count);
    assert_eq!(image.channel(0).unwrap().threads(), count);
    assert_eq!(
        early.threads(),
        count - 1,
        "handles made before keep their count"
    );
    assert_eq!(image.get_decompressed().unwrap(), [data]);
}

/// Environment variable that makes the thread-count test run as the measuring child.
const THREADS_CHILD: &str = "CIMG_HUGE_THREAD_COUNT_CHILD";

/// Threads of this process, from `/proc/self/status`.
fn threads_now() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Exit code of the measuring child when its thread count ran away.
const RUNAWAY: i32 = 86;

/// In a process of its own (so no other test's threads are counted): a thread count of
/// 40000 works for single-chunk reads and writes and whole-channel reads, and the process
/// never has 64 threads beyond what it started with. If it does, the child exits at once,
/// so a regression cannot exhaust the machine's process ids (and hang other programs whose
/// thread creation then fails).
#[test]
fn a_huge_thread_count_does_not_start_tens_of_thousands_of_threads() {
    if std::env::var_os(THREADS_CHILD).is_none() {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_huge_thread_count_does_not_start_tens_of_thousands_of_threads",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(THREADS_CHILD, "1")
            .output()
            .unwrap();
        let runaway = output.status.code() == Some(RUNAWAY);
        assert!(
            output.status.success(),
            "{}{}{}",
            if runaway {
                "the thread count ran away: "
            } else {
                ""
            },
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let baseline = threads_now();
    let limit = baseline + 64;
    let peak = Arc::new(AtomicUsize::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let now = threads_now();
                peak.fetch_max(now, Ordering::Relaxed);
                if now >= limit {
                    println!("{now} threads after starting with {baseline}");
                    std::process::exit(RUNAWAY);
                }
                std::thread::yield_now();
            }
        })
    };
    // Two chunks of 1 MiB in 4 KiB blocks: 256 blocks each, room for many threads.
    let (w, h) = (512, 1024);
    let settings = Settings::default().chunk_size(1 << 20).block_size(4096);
    let data: Vec<u32> = pattern(w * h);
    let c = Channel::new(&data, w, h, settings).unwrap();
    c.set_threads(40_000).unwrap();
    assert_eq!(c.threads(), 40_000, "threads() reports the count as set");
    let half = w * h / 2;
    assert_eq!(c.get_chunk_vec(0).unwrap(), data[..half]);
    let changed: Vec<u32> = data[half..].iter().map(|v| v ^ 0x5a5a).collect();
    c.set_chunk(1, &changed).unwrap();
    assert_eq!(c.get_chunk_vec(1).unwrap(), changed);
    assert_eq!(c.get_decompressed().unwrap()[..half], data[..half]);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed).max(threads_now());
    assert!(
        peak < limit,
        "{peak} threads after starting with {baseline}"
    );
}

#[test]
fn serde_json_re_export_builds_metadata_without_a_matching_dependency() {
    let image = Image::<u8>::new(2, 2).unwrap();
    let value: serde_json::Value = compressed_image::serde_json::json!({"k": [1, 2.5, null]});
    image.set_metadata(value.clone()).unwrap();
    assert_eq!(image.metadata(), value);
}

#[test]
fn invalid_argument_kinds_are_typed_not_worded() {
    let kind = |e: Error| match e {
        Error::InvalidArgument { what, .. } => what,
        other => panic!("{other:?}"),
    };
    // One 2.4 GB scanline: even one row per chunk is past c-blosc2's chunk limit (lazy, so
    // nothing is allocated).
    let row_past_the_limit = Channel::<f32>::zeros(600_000_000, 1, Settings::default());
    let what = kind(row_past_the_limit.unwrap_err());
    assert_eq!(what, Argument::ChunkSize);
    assert!(what.is_chunk_geometry());
    assert_eq!(what.to_string(), "chunk size");
    let c = Channel::<u8>::zeros(4, 4, Settings::default()).unwrap();
    assert_eq!(
        kind(c.set_chunk(0, &[1, 2]).unwrap_err()),
        Argument::BufferLength
    );
    assert_eq!(
        kind(Channel::new(&[1u8; 3], 2, 2, Settings::default()).unwrap_err()),
        Argument::DataLength
    );
    assert_eq!(
        kind(Channel::<u8>::zeros(0, 4, Settings::default()).unwrap_err()),
        Argument::ChannelSize
    );
    assert!(!Argument::DataLength.is_chunk_geometry());
    // Image-wide sizes of disagreeing channels are their own error, not an argument's.
    let image = Image::<u8>::new(8, 8).unwrap();
    image
        .add_lazy_channel(0, None, Settings::default())
        .unwrap();
    image
        .add_lazy_channel(0, None, Settings::default().chunk_size(16))
        .unwrap();
    assert!(matches!(
        image.chunk_size(),
        Err(Error::ChannelsDisagree {
            property: "chunk size"
        })
    ));
}

#[test]
fn channel_properties_answer_after_removal_and_chunk_operations_do_not() {
    let image = Image::<i16>::new(10, 6).unwrap();
    let settings = Settings::default().chunk_size(10 * 2 * 2).level(4);
    let c = image.add_lazy_channel(-1, Some("x"), settings).unwrap();
    image.remove_channel(0).unwrap();
    assert_eq!((c.width(), c.height(), c.num_chunks()), (10, 6, 3));
    assert_eq!((c.chunk_size(), c.chunk_elems(), c.level()), (40, 20, 4));
    assert_eq!(c.chunk_elems_at(2).unwrap(), 20);
    assert!(matches!(
        c.chunk_elems_at(3),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(c.is_lazy(0), Err(Error::ChannelRemoved)));
    assert!(matches!(c.get_chunk_vec(0), Err(Error::ChannelRemoved)));
    assert!(matches!(c.compressed_bytes(), Err(Error::ChannelRemoved)));
    assert!(matches!(
        c.read_rows(0, &mut [0; 10]),
        Err(Error::ChannelRemoved)
    ));
    // A channel like the removed one can still be made.
    assert_eq!(Channel::zeros_like(&c).unwrap().settings(), c.settings());
}

/// A tiny deterministic generator for the region model test.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn regions_read_and_write_like_a_row_major_model() {
    let (w, h) = (37, 29);
    // Five rows per chunk, so regions cross chunk boundaries and end mid-chunk.
    let settings = Settings::default().chunk_size(w * 4 * 5).block_size(64);
    let mut model = pattern(w * h);
    let c = Channel::new(&model, w, h, settings).unwrap();
    let mut rng = Lcg(7);
    for round in 0..60 {
        let (x, y) = (rng.below(w), rng.below(h));
        let region = Region::new(x, y, rng.below(w - x) + 1, rng.below(h - y) + 1);
        let got = c.read_region_vec(region).unwrap();
        let want: Vec<u32> = (y..y + region.height)
            .flat_map(|row| model[row * w + x..row * w + x + region.width].to_vec())
            .collect();
        assert_eq!(got, want, "round {round}: read {region:?}");

        let data: Vec<u32> = (0..region.len() as u32).map(|i| i * 3 + round).collect();
        let generation = c.generation();
        c.write_region(region, &data).unwrap();
        assert_eq!(c.generation(), generation + 1, "one commit per region");
        for (row, values) in data.chunks(region.width).enumerate() {
            let at = (y + row) * w + x;
            model[at..at + region.width].copy_from_slice(values);
        }
        assert_eq!(
            c.get_decompressed().unwrap(),
            model,
            "round {round}: write {region:?}"
        );
    }
    // Whole rows, and an empty region.
    c.write_region(Region::new(0, 3, w, 4), &vec![5; w * 4])
        .unwrap();
    model[3 * w..7 * w].fill(5);
    assert_eq!(c.read_region_vec(Region::new(0, 0, w, h)).unwrap(), model);
    c.write_region(Region::new(3, 3, 0, 5), &[]).unwrap();
    assert!(
        c.read_region_vec(Region::new(w, h, 0, 0))
            .unwrap()
            .is_empty()
    );

    // Bad regions change nothing.
    let generation = c.generation();
    let region_error = |e: Error| {
        matches!(
            e,
            Error::InvalidArgument {
                what: Argument::Region,
                ..
            }
        )
    };
    assert!(region_error(
        c.read_region_vec(Region::new(w - 2, 0, 3, 1)).unwrap_err()
    ));
    assert!(region_error(
        c.write_region(Region::new(0, h, 1, 1), &[1]).unwrap_err()
    ));
    assert!(region_error(
        c.write_region(Region::new(0, 0, 2, 2), &[1, 2, 3])
            .unwrap_err()
    ));
    assert!(region_error(
        c.read_region(Region::new(usize::MAX, 0, 2, 1), &mut [0; 2])
            .unwrap_err()
    ));
    assert_eq!(c.generation(), generation);
    assert_eq!(c.get_decompressed().unwrap(), model);

    // Images address the channel by position.
    let image = Image::<u32>::new(w, h).unwrap();
    image.add_channel(&model, None, settings).unwrap();
    image
        .write_region(0, Region::new(1, 1, 2, 2), &[9; 4])
        .unwrap();
    let mut out = [0; 6];
    image
        .read_region(0, Region::new(0, 1, 3, 2), &mut out)
        .unwrap();
    assert_eq!(out, [model[w], 9, 9, model[2 * w], 9, 9]);
    assert!(matches!(
        image.read_region(1, Region::new(0, 0, 1, 1), &mut [0]),
        Err(Error::IndexOutOfRange { .. })
    ));
}

#[test]
fn writing_a_region_through_a_read_only_handle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.cimg");
    drop(Channel::<u8>::create_full(&path, 8, 8, 1, Settings::default()).unwrap());
    let reader = Channel::<u8>::open_read_only(&path).unwrap();
    assert!(matches!(
        reader.write_region(Region::new(0, 0, 1, 1), &[2]),
        Err(Error::ReadOnly)
    ));
    assert_eq!(
        reader.read_region_vec(Region::new(6, 6, 2, 2)).unwrap(),
        [1; 4]
    );
}

#[test]
fn rows_mut_and_iter_mut_xy_write_by_coordinate() {
    let (w, h) = (13, 11);
    let settings = Settings::default().chunk_size(w * 2 * 3);
    let c = Channel::<u16>::zeros(w, h, settings).unwrap();
    c.update_chunks(|chunk| {
        for (y, row) in chunk.rows_mut() {
            for (x, v) in row.iter_mut().enumerate() {
                *v = (100 * y + x) as u16;
            }
        }
        Ok(())
    })
    .unwrap();
    let want: Vec<u16> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (100 * y + x) as u16))
        .collect();
    assert_eq!(c.get_decompressed().unwrap(), want);

    c.update_chunks(|chunk| {
        for (x, y, v) in chunk.iter_mut_xy() {
            if x == y {
                *v = u16::MAX;
            }
        }
        Ok(())
    })
    .unwrap();
    let got = c.get_decompressed().unwrap();
    for (i, v) in got.iter().enumerate() {
        let (x, y) = (i % w, i / w);
        assert_eq!(*v, if x == y { u16::MAX } else { want[i] }, "({x}, {y})");
    }

    // Reading rows leaves a chunk unmodified: nothing is written back.
    let generation = c.generation();
    c.update_chunks(|chunk| {
        assert_eq!(chunk.rows().len(), chunk.data().len() / w);
        assert!(!chunk.is_modified());
        Ok(())
    })
    .unwrap();
    assert_eq!(c.generation(), generation);
    c.for_each_chunk(|chunk| {
        for (y, row) in chunk.rows() {
            assert_eq!(row, &got[y * w..(y + 1) * w]);
        }
        Ok(())
    })
    .unwrap();
}
