//! Anonymous channels and images (created without a path): in memory by default, moved to
//! a temporary file past their threshold or on request, with the data exact throughout.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, MutexGuard};

use compressed_image::*;

/// Whether anonymous stores can be in memory here (on Linux only).
const MEMORY: bool = cfg!(target_os = "linux");

const WIDTH: usize = 512;
const ROWS_PER_CHUNK: usize = 8;
const CHUNKS: usize = 8;
const HEIGHT: usize = ROWS_PER_CHUNK * CHUNKS;
/// Full rewrites of the channel in the `set_chunk` loop.
const PASSES: u32 = 4;

/// Held by the tests that create stores with the process default, or change it.
static PROCESS_DEFAULT: Mutex<()> = Mutex::new(());

fn process_default_lock() -> MutexGuard<'static, ()> {
    PROCESS_DEFAULT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn settings() -> Settings {
    Settings::default().chunk_size(WIDTH * ROWS_PER_CHUNK * 4)
}

/// The elements of chunk `chunk` as written in pass `pass` (0: at creation): noise, so each
/// chunk compresses to about its raw size and the store grows by a known amount per pass.
fn chunk_values(chunk: usize, pass: u32) -> Vec<u32> {
    let mut state = ((chunk as u64) << 32 | u64::from(pass)) ^ 0x9e37_79b9_7f4a_7c15;
    (0..WIDTH * ROWS_PER_CHUNK)
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u32
        })
        .collect()
}

/// The whole channel as written in pass `pass`.
fn channel_values(pass: u32) -> Vec<u32> {
    (0..CHUNKS).flat_map(|c| chunk_values(c, pass)).collect()
}

/// The pass, at most `passes`, that wrote `data` as chunk `chunk`.
fn pass_of_up_to(chunk: usize, data: &[u32], passes: u32) -> u32 {
    (0..=passes)
        .find(|&pass| data == chunk_values(chunk, pass).as_slice())
        .unwrap_or_else(|| panic!("chunk {chunk} holds data no pass wrote"))
}

/// A new anonymous channel with the process default backing, made while no other test
/// changes that default.
fn new_channel() -> Channel<u32> {
    let _default = process_default_lock();
    new_channel_holding_the_lock()
}

/// [`new_channel`] for a test that already holds [`process_default_lock`].
fn new_channel_holding_the_lock() -> Channel<u32> {
    Channel::new(&channel_values(0), WIDTH, HEIGHT, settings()).unwrap()
}

fn temp_dir_backing(dir: PathBuf) -> AnonymousBacking {
    AnonymousBacking::TempFile { dir: Some(dir) }
}

#[test]
fn anonymous_channels_and_images_are_in_memory_by_default() {
    let _default = process_default_lock();
    assert_eq!(
        AnonymousBacking::process_default(),
        AnonymousBacking::auto()
    );
    let c = new_channel_holding_the_lock();
    assert_eq!(c.stats().unwrap().in_memory, MEMORY);
    assert_eq!(c.anonymous_backing(), Some(AnonymousBacking::auto()));
    assert_eq!(c.get_decompressed().unwrap(), channel_values(0));
    c.set_chunk(3, &chunk_values(3, 1)).unwrap();
    assert_eq!(c.get_chunk_vec(3).unwrap(), chunk_values(3, 1));

    let zeros = Channel::<f32>::zeros(64, 64, Settings::default()).unwrap();
    assert_eq!(zeros.stats().unwrap().in_memory, MEMORY);
    let image = AnyImage::new(64, 64).unwrap();
    assert_eq!(image.stats().unwrap().in_memory, MEMORY);
    assert_eq!(image.anonymous_backing(), Some(AnonymousBacking::auto()));
}

#[test]
fn the_process_default_applies_to_stores_created_after_it() {
    let _default = process_default_lock();
    let before = new_channel_holding_the_lock();
    AnonymousBacking::set_process_default(AnonymousBacking::TempFile { dir: None });
    let after = new_channel_holding_the_lock();
    AnonymousBacking::set_process_default(AnonymousBacking::auto());
    assert!(!after.stats().unwrap().in_memory);
    assert_eq!(
        after.anonymous_backing(),
        Some(AnonymousBacking::TempFile { dir: None })
    );
    assert_eq!(after.get_decompressed().unwrap(), channel_values(0));
    assert_eq!(before.stats().unwrap().in_memory, MEMORY);
    assert_eq!(
        new_channel_holding_the_lock().stats().unwrap().in_memory,
        MEMORY
    );
}

/// On drop (also when the writer's assertions fail): lets the snapshot holders go on and
/// stops the readers, so the scoped threads always end.
struct Release<'a> {
    go: Vec<Sender<()>>,
    stop: &'a AtomicBool,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        for go in &self.go {
            let _ = go.send(());
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Read the whole channel in a loop until `stop`, checking that each read shows one
/// commit of a `set_chunk` loop of at most `passes` passes in chunk order: chunks before
/// the one being rewritten are one pass ahead of those after it.
fn read_commits_until(c: &Channel<u32>, stop: &AtomicBool, passes: u32) {
    while !stop.load(Ordering::Relaxed) {
        let all = c.get_decompressed().unwrap();
        let seen: Vec<u32> = all
            .chunks(WIDTH * ROWS_PER_CHUNK)
            .enumerate()
            .map(|(chunk, data)| pass_of_up_to(chunk, data, passes))
            .collect();
        assert!(seen.windows(2).all(|w| w[0] >= w[1]), "{seen:?}");
        assert!(seen[0] - seen[CHUNKS - 1] <= 1, "{seen:?}");
    }
}

/// Visit `c` chunk by chunk from one snapshot taken now, pausing at the first chunk (after
/// signalling `held`) until `go`; returns the pass each chunk shows.
fn hold_snapshot(
    c: &Channel<u32>,
    held: Sender<()>,
    go: std::sync::mpsc::Receiver<()>,
    passes: u32,
) -> Vec<u32> {
    let mut seen = Vec::new();
    c.for_each_chunk(|chunk| {
        if chunk.index() == 0 {
            held.send(()).unwrap();
            go.recv().unwrap();
        }
        seen.push(pass_of_up_to(chunk.index(), chunk.data(), passes));
        Ok(())
    })
    .unwrap();
    seen
}

#[test]
fn a_set_chunk_loop_moves_out_of_memory_at_the_threshold_while_readers_read() {
    // Thresholds one chunk apart: the file grows in steps of several chunks, and a move in
    // a commit that does not grow the file is the case where a stale mapping would show.
    for extra_chunks in 0..3 {
        set_chunk_loop_with_readers(extra_chunks);
    }
}

/// Rewrite the channel `PASSES` times with a threshold of one and a half passes plus
/// `extra_chunks` chunks, while other threads read it and one holds the first snapshot.
fn set_chunk_loop_with_readers(extra_chunks: usize) {
    let dir = tempfile::tempdir().unwrap();
    let c = new_channel();
    let chunk_bytes = WIDTH * ROWS_PER_CHUNK * 4;
    let spill_above =
        c.stats().unwrap().committed_end + (chunk_bytes * (CHUNKS * 3 / 2 + extra_chunks)) as u64;
    let backing = AnonymousBacking::Auto {
        spill_above,
        dir: Some(dir.path().to_path_buf()),
    };
    c.set_anonymous_backing(backing.clone()).unwrap();
    assert_eq!(c.stats().unwrap().in_memory, MEMORY);

    let stop = AtomicBool::new(false);
    let (held_tx, held) = channel();
    let (go, go_rx) = channel();
    let mut moved_at = None;
    std::thread::scope(|s| {
        // Holds the snapshot of pass 0 from before the first rewrite to after the last.
        let c = &c;
        let holder = s.spawn(move || hold_snapshot(c, held_tx, go_rx, PASSES));
        // Read the whole channel, each read from one commit, all along.
        let readers: Vec<_> = (0..2)
            .map(|_| s.spawn(|| read_commits_until(c, &stop, PASSES)))
            .collect();

        let release = Release {
            go: vec![go],
            stop: &stop,
        };
        held.recv().unwrap();
        for pass in 1..=PASSES {
            for chunk in 0..CHUNKS {
                c.set_chunk(chunk, &chunk_values(chunk, pass)).unwrap();
                let stats = c.stats().unwrap();
                // In memory exactly while every record ends at or below the threshold.
                assert_eq!(
                    stats.in_memory,
                    MEMORY && stats.committed_end <= spill_above,
                    "pass {pass}, chunk {chunk}: {stats:?}"
                );
                if moved_at.is_none() && !stats.in_memory {
                    moved_at = Some(pass);
                }
            }
        }
        drop(release);
        assert_eq!(holder.join().unwrap(), vec![0; CHUNKS]);
        for reader in readers {
            reader.join().unwrap();
        }
    });
    // Memory: the move came in the second pass. Elsewhere the store never was in memory.
    assert_eq!(moved_at, Some(if MEMORY { 2 } else { 1 }));
    assert_eq!(c.get_decompressed().unwrap(), channel_values(PASSES));
    assert_eq!(c.anonymous_backing(), Some(backing));
    assert!(c.verify().unwrap().is_ok());

    // A compaction copies only the live records, which fit in memory again.
    c.compact().unwrap();
    assert_eq!(c.stats().unwrap().in_memory, MEMORY);
    assert_eq!(c.get_decompressed().unwrap(), channel_values(PASSES));
}

#[test]
fn a_temp_file_backing_holds_the_data_and_moves_back_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let c = new_channel();
    c.set_anonymous_backing(temp_dir_backing(dir.path().to_path_buf()))
        .unwrap();
    assert!(!c.stats().unwrap().in_memory);
    assert_eq!(c.get_decompressed().unwrap(), channel_values(0));
    for chunk in 0..CHUNKS {
        c.set_chunk(chunk, &chunk_values(chunk, 1)).unwrap();
    }
    c.compact().unwrap();
    assert!(
        !c.stats().unwrap().in_memory,
        "a compaction keeps the backing"
    );
    assert_eq!(c.get_decompressed().unwrap(), channel_values(1));

    c.set_anonymous_backing(AnonymousBacking::Memory).unwrap();
    assert_eq!(c.stats().unwrap().in_memory, MEMORY);
    assert_eq!(c.get_decompressed().unwrap(), channel_values(1));
    let copy = dir.path().join("copy.cimg");
    c.save_as(&copy).unwrap();
    let saved = Channel::<u32>::open_read_only(&copy).unwrap();
    assert_eq!(saved.get_decompressed().unwrap(), channel_values(1));
}

#[test]
fn a_named_file_refuses_an_anonymous_backing() {
    let dir = tempfile::tempdir().unwrap();
    let c = Channel::create(
        dir.path().join("a.cimg"),
        &channel_values(0),
        WIDTH,
        HEIGHT,
        settings(),
    )
    .unwrap();
    assert_eq!(c.anonymous_backing(), None);
    assert!(!c.stats().unwrap().in_memory);
    let err = c.set_anonymous_backing(AnonymousBacking::Memory);
    assert!(
        matches!(
            err,
            Err(Error::InvalidArgument {
                what: Argument::AnonymousBacking,
                ..
            })
        ),
        "{err:?}"
    );
}

/// `result` is the typed error of a temporary file that cannot be made in `dir`.
fn assert_temp_file_error(result: Result, dir: &std::path::Path) {
    match result {
        Err(Error::TempFile { dir: d, source }) => {
            assert_eq!(d, dir);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a temporary-file error, got {other:?}"),
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_move_to_a_missing_directory_fails_and_the_store_stays_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let c = new_channel();
    c.set_anonymous_backing(AnonymousBacking::Memory).unwrap();

    // On request: refused, nothing changed.
    assert_temp_file_error(
        c.set_anonymous_backing(temp_dir_backing(missing.clone())),
        &missing,
    );
    assert!(c.stats().unwrap().in_memory);
    assert_eq!(c.anonymous_backing(), Some(AnonymousBacking::Memory));
    c.set_chunk(0, &chunk_values(0, 1)).unwrap();

    // Past the threshold: the write that needs the move fails, the store keeps its data.
    // Records start 64-aligned: no record fits in the 64 bytes after the last one.
    let committed_end = c.stats().unwrap().committed_end;
    let spill_above = committed_end + 64;
    c.set_anonymous_backing(AnonymousBacking::Auto {
        spill_above,
        dir: Some(missing.clone()),
    })
    .unwrap();
    let generation = c.generation();
    assert_temp_file_error(c.set_chunk(1, &chunk_values(1, 1)), &missing);
    assert_eq!(c.generation(), generation);
    let stats = c.stats().unwrap();
    assert!(stats.in_memory);
    assert_eq!(stats.committed_end, committed_end);
    assert_eq!(c.get_chunk_vec(1).unwrap(), chunk_values(1, 0));
    assert_eq!(c.get_chunk_vec(0).unwrap(), chunk_values(0, 1));

    // Still usable: in memory without a threshold, the write goes through.
    c.set_anonymous_backing(AnonymousBacking::Memory).unwrap();
    c.set_chunk(1, &chunk_values(1, 1)).unwrap();
    assert_eq!(c.get_chunk_vec(1).unwrap(), chunk_values(1, 1));
    assert!(c.stats().unwrap().in_memory);
    assert!(c.verify().unwrap().is_ok());
}

#[test]
fn a_new_store_in_a_missing_directory_is_a_typed_error() {
    let _default = process_default_lock();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    AnonymousBacking::set_process_default(temp_dir_backing(missing.clone()));
    let result = Channel::new(&channel_values(0), WIDTH, HEIGHT, settings());
    AnonymousBacking::set_process_default(AnonymousBacking::auto());
    assert_temp_file_error(result.map(drop), &missing);
}

#[test]
fn a_long_edit_loop_keeps_an_anonymous_store_within_a_few_times_its_live_bytes() {
    let _default = process_default_lock();
    // 16 MiB of noise in 4 MiB chunks, rewritten 40 times: 640 MiB appended in all.
    let (width, height) = (1024, 4096);
    let values = |pass: u32| -> Vec<u32> {
        let mut x = pass.wrapping_mul(0x9e37_79b9) | 1;
        (0..width * height)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x
            })
            .collect()
    };
    let c = Channel::<u32>::new(&values(0), width, height, Settings::default()).unwrap();
    let chunk_len = c.chunk_size_at(0).unwrap() / 4;
    let mut largest = 0;
    for pass in 1..=40u32 {
        let data = values(pass);
        for (i, chunk) in data.chunks(chunk_len).enumerate() {
            c.set_chunk(i, chunk).unwrap();
        }
        let stats = c.stats().unwrap();
        largest = largest.max(stats.committed_end);
        assert!(
            stats.in_memory || !MEMORY,
            "pass {pass}: moved out of memory"
        );
        if pass % 10 == 0 {
            assert_eq!(c.get_decompressed().unwrap(), data, "pass {pass}");
        }
    }
    let live = c.stats().unwrap().live_bytes;
    // Dead bytes reach at most 2/3 of the store (or 64 MiB) before a compaction.
    assert!(
        largest <= 3 * live + (64 << 20) + (8 << 20),
        "the store reached {largest} bytes for {live} live bytes"
    );
    // Turned off, the same loop grows the store by every chunk written.
    c.set_auto_compact(None).unwrap();
    let before = c.stats().unwrap().committed_end;
    for pass in 41..=60u32 {
        for (i, chunk) in values(pass).chunks(chunk_len).enumerate() {
            c.set_chunk(i, chunk).unwrap();
        }
    }
    assert!(c.stats().unwrap().committed_end >= before + 20 * (16 << 20));
}

/// Full rewrites in the growth test: 32 × 128 KiB takes the store from a few KiB through
/// several doublings of its memory.
const GROWTH_PASSES: u32 = 32;

#[test]
fn growth_in_memory_keeps_held_snapshots_and_concurrent_reads_exact() {
    let c = new_channel();
    c.set_anonymous_backing(AnonymousBacking::Memory).unwrap();
    let (before, after) = rewrite_while_holding_snapshots(&c);
    assert_eq!(after.in_memory, MEMORY);
    // From a few hundred KiB to over 4 MiB: the bytes moved to larger memory several times.
    assert!(
        before.file_len < 1 << 20 && after.file_len > 4 << 20,
        "{before:?} {after:?}"
    );
}

#[test]
fn growth_in_memory_then_a_move_to_a_temp_file_keeps_held_snapshots_exact() {
    let dir = tempfile::tempdir().unwrap();
    let c = new_channel();
    let spill_above = 3 << 20;
    c.set_anonymous_backing(AnonymousBacking::Auto {
        spill_above,
        dir: Some(dir.path().to_path_buf()),
    })
    .unwrap();
    assert_eq!(c.stats().unwrap().in_memory, MEMORY);
    let (_, after) = rewrite_while_holding_snapshots(&c);
    assert!(
        !after.in_memory && after.committed_end > spill_above,
        "{after:?}"
    );
}

/// Rewrite `c` (at pass 0) `GROWTH_PASSES` times while two threads read it and others hold
/// the snapshots of passes 0, 8, 16 and 24 until the end; then check what every holder
/// read, the data, a verification, and a compaction in place while another snapshot is
/// held. Returns the stats from before and after the rewrites.
fn rewrite_while_holding_snapshots(c: &Channel<u32>) -> (Stats, Stats) {
    let before = c.stats().unwrap();
    let stop = AtomicBool::new(false);
    let after = std::thread::scope(|s| {
        let mut holders = Vec::new();
        let readers: Vec<_> = (0..2)
            .map(|_| s.spawn(|| read_commits_until(c, &stop, GROWTH_PASSES)))
            .collect();
        let mut release = Release {
            go: Vec::new(),
            stop: &stop,
        };
        for pass in 1..=GROWTH_PASSES {
            if pass % 8 == 1 {
                let (held_tx, held) = channel();
                let (go, go_rx) = channel();
                let holder = s.spawn(move || hold_snapshot(c, held_tx, go_rx, GROWTH_PASSES));
                held.recv().unwrap();
                release.go.push(go);
                holders.push((pass - 1, holder));
            }
            for chunk in 0..CHUNKS {
                c.set_chunk(chunk, &chunk_values(chunk, pass)).unwrap();
            }
        }
        let after = c.stats().unwrap();
        drop(release);
        for (pass, holder) in holders {
            assert_eq!(
                holder.join().unwrap(),
                vec![pass; CHUNKS],
                "held at pass {pass}"
            );
        }
        for reader in readers {
            reader.join().unwrap();
        }
        after
    });
    assert_eq!(c.get_decompressed().unwrap(), channel_values(GROWTH_PASSES));
    assert!(c.verify().unwrap().is_ok());

    // A compaction in place, with a snapshot from before it held across it.
    let (held_tx, held) = channel();
    let (go, go_rx) = channel();
    std::thread::scope(|s| {
        let holder = s.spawn(move || hold_snapshot(c, held_tx, go_rx, GROWTH_PASSES));
        held.recv().unwrap();
        let release = Release {
            go: vec![go],
            stop: &stop,
        };
        let compaction = c.compact().unwrap();
        assert!(compaction.reclaimed > 0, "{compaction:?}");
        assert_eq!(c.stats().unwrap().file_len, compaction.file_len_after);
        drop(release);
        assert_eq!(holder.join().unwrap(), vec![GROWTH_PASSES; CHUNKS]);
    });
    // Compacted, the live bytes fit in memory again.
    assert_eq!(c.stats().unwrap().in_memory, MEMORY);
    assert_eq!(c.get_decompressed().unwrap(), channel_values(GROWTH_PASSES));
    (before, after)
}
