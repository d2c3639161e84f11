//! Multi-process behaviour of channel files (format/SPEC.md §10–§11), tested with real
//! processes: the single-writer lock, readers that keep their snapshot until `refresh()`,
//! single-writer/multi-reader consistency under continuous commits, readers that follow a
//! file growing past their mapping, and a writer killed with SIGKILL.
//!
//! Child processes are this test binary run again on one `child_*` test, as
//! `common::child` describes: they report through protocol lines on stdout and take
//! commands on stdin.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use compressed_image::{Channel, Error, Settings};

#[macro_use]
mod common;

use common::child::{Child, child_role, command, env_u64, spawn};
use common::rng::Rng;

// ---------------------------------------------------------------------------------------
// Data

/// Geometry of the small channels: 4 chunks of 16 rows × 256 `f32` (16 KiB each).
const W: usize = 256;
const H: usize = 64;
const CHUNK_ELEMS: usize = W * 16;

fn small_settings() -> Settings {
    Settings::default().chunk_size(CHUNK_ELEMS * 4)
}

/// Chunk contents of generation `g`: every element is `g`; in odd generations the last
/// element of each chunk is `-g`, so the chunk is a compressed blob rather than a fill
/// entry (even generations exercise fill entries).
fn generation_chunk(g: u64) -> Vec<f32> {
    let mut chunk = vec![g as f32; CHUNK_ELEMS];
    if g % 2 == 1 {
        chunk[CHUNK_ELEMS - 1] = -(g as f32);
    }
    chunk
}

/// Write generation `g` to every chunk in one commit.
fn commit_generation(channel: &Channel<f32>, g: u64) {
    let chunk = generation_chunk(g);
    let mut batch = channel.batch().expect("batch");
    for index in 0..channel.num_chunks() {
        batch.set_chunk(index, &chunk).expect("stage chunk");
    }
    batch.commit().expect("commit");
}

/// The generation a whole-channel read comes from; panics unless every chunk is exactly
/// `generation_chunk(g)` for one `g`.
fn generation_of(data: &[f32]) -> u64 {
    let g = data[0] as u64;
    let expected = generation_chunk(g);
    for (index, chunk) in data.chunks(CHUNK_ELEMS).enumerate() {
        assert!(
            chunk == expected.as_slice(),
            "chunk {index} is not from generation {g} (first {}, last {}): a torn read",
            chunk[0],
            chunk[CHUNK_ELEMS - 1],
        );
    }
    g
}

/// Incompressible chunk contents for the growth test, seeded by the chunk.
fn noise_chunk(index: usize, len: usize) -> Vec<u32> {
    let mut rng = Rng::new(index as u64 + 1);
    (0..len).map(|_| (rng.next() >> 16) as u32).collect()
}

// ---------------------------------------------------------------------------------------
// (a) One writer per file

/// Child: try to open the file for writing; `CIMG_EXPECT` says whether that must fail with
/// `Locked` or succeed (then chunk 1 is set to 7.0).
#[test]
fn child_second_writer() {
    let Some(path) = child_role("child_second_writer") else {
        return;
    };
    match (
        std::env::var("CIMG_EXPECT").as_deref(),
        Channel::<f32>::open(&path),
    ) {
        (Ok("locked"), Err(Error::Locked { path: locked })) => {
            assert_eq!(locked, path);
            report!("locked");
        }
        (Ok("ok"), Ok(channel)) => {
            channel
                .set_chunk(1, &[7.0; CHUNK_ELEMS])
                .expect("set_chunk");
            report!("wrote");
        }
        (expect, result) => panic!("expected {expect:?}, got {:?}", result.map(|_| ())),
    }
}

#[test]
fn second_writer_in_another_process_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.cimg");
    let writer = Channel::<f32>::create_full(&path, W, H, 0.0, small_settings()).unwrap();
    writer.set_chunk(0, &[1.0; CHUNK_ELEMS]).unwrap();

    let mut child = spawn(
        "child_second_writer",
        &path,
        &[("CIMG_EXPECT", "locked".into())],
    );
    child.expect("locked");
    child.finish();
    // The first writer is unaffected.
    writer.set_chunk(2, &[2.0; CHUNK_ELEMS]).unwrap();
    drop(writer);

    let mut child = spawn(
        "child_second_writer",
        &path,
        &[("CIMG_EXPECT", "ok".into())],
    );
    child.expect("wrote");
    child.finish();
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    for (index, value) in [(0, 1.0), (1, 7.0), (2, 2.0), (3, 0.0)] {
        assert_eq!(
            reader.get_chunk_vec(index).unwrap(),
            vec![value; CHUNK_ELEMS]
        );
    }
}

// ---------------------------------------------------------------------------------------
// (b) Readers keep their snapshot until refresh()

/// Child: open read-only, report the generation, wait for `go`, then report what it reads
/// before and after `refresh()`.
#[test]
fn child_snapshot_reader() {
    let Some(path) = child_role("child_snapshot_reader") else {
        return;
    };
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    report!(
        "opened {}",
        generation_of(&reader.get_decompressed().unwrap())
    );
    assert_eq!(command(), "go");
    report!(
        "before {}",
        generation_of(&reader.get_decompressed().unwrap())
    );
    let changed = reader.refresh().unwrap();
    report!(
        "after {changed} {}",
        generation_of(&reader.get_decompressed().unwrap())
    );
    let changed = reader.refresh().unwrap();
    report!("again {changed}");
}

#[test]
fn reader_sees_old_commit_until_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.cimg");
    let writer = Channel::<f32>::create_full(&path, W, H, 0.0, small_settings()).unwrap();
    commit_generation(&writer, 1);

    let mut child = spawn("child_snapshot_reader", &path, &[]);
    assert_eq!(child.expect("opened"), "1");
    commit_generation(&writer, 2); // committed, not synced: visible to other processes
    commit_generation(&writer, 3);
    child.send("go");
    assert_eq!(child.expect("before"), "1");
    assert_eq!(child.expect("after"), "true 3");
    assert_eq!(child.expect("again"), "false");
    child.finish();
}

// ---------------------------------------------------------------------------------------
// (c) Single writer, multiple readers

/// Child: commit generations 1, 2, … for `CIMG_MILLIS` ms, syncing every 64 commits.
#[test]
fn child_swmr_writer() {
    let Some(path) = child_role("child_swmr_writer") else {
        return;
    };
    let duration = Duration::from_millis(env_u64("CIMG_MILLIS"));
    let writer = Channel::<f32>::open(&path).unwrap();
    report!("ready");
    let start = Instant::now();
    let mut g = 0;
    while start.elapsed() < duration {
        g += 1;
        commit_generation(&writer, g);
        if g % 64 == 0 {
            writer.sync().unwrap();
        }
    }
    writer.sync().unwrap();
    report!("done {g}");
}

/// Child: for `CIMG_MILLIS` ms, `refresh()` and read the whole channel;
/// every read must be one generation, never older than the one before.
#[test]
fn child_swmr_reader() {
    let Some(path) = child_role("child_swmr_reader") else {
        return;
    };
    let duration = Duration::from_millis(env_u64("CIMG_MILLIS"));
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    let start = Instant::now();
    let (mut reads, mut refreshes) = (0u64, 0u64);
    let mut last = generation_of(&reader.get_decompressed().unwrap());
    let mut seen = BTreeSet::from([last]);
    while start.elapsed() < duration {
        let changed = reader.refresh().unwrap();
        let g = generation_of(&reader.get_decompressed().unwrap());
        assert!(g >= last, "went back from generation {last} to {g}");
        // A refresh may also move to a sync's marker commit, with the same data.
        assert!(
            changed || g == last,
            "data changed from {last} to {g} without refresh"
        );
        refreshes += u64::from(changed);
        reads += 1;
        seen.insert(g);
        last = g;
    }
    report!("counts {reads} {refreshes} {} {last}", seen.len());
}

#[test]
fn swmr_readers_always_see_one_generation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("swmr.cimg");
    let writer = Channel::<f32>::create_full(&path, W, H, 0.0, small_settings()).unwrap();
    assert_eq!(writer.num_chunks(), 4);
    drop(writer);

    let mut writer = spawn(
        "child_swmr_writer",
        &path,
        &[("CIMG_MILLIS", "3000".into())],
    );
    writer.expect("ready");
    let mut readers: Vec<Child> = (0..2)
        .map(|_| {
            spawn(
                "child_swmr_reader",
                &path,
                &[("CIMG_MILLIS", "3200".into())],
            )
        })
        .collect();
    let done = writer.expect("done");
    let last: u64 = done.parse().unwrap();
    writer.finish();
    assert!(last >= 10, "the writer made only {last} commits");
    for (i, reader) in readers.iter_mut().enumerate() {
        let counts = reader.expect("counts");
        reader.finish();
        let n: Vec<u64> = counts.split(' ').map(|v| v.parse().unwrap()).collect();
        let [reads, refreshes, distinct, newest] = n[..] else {
            panic!("bad counts line `{counts}`")
        };
        println!(
            "reader {i}: {reads} reads, {refreshes} refreshes, {distinct} generations, newest {newest} of {last}"
        );
        assert!(reads >= 20, "reader {i} read only {reads} times");
        assert!(
            distinct >= 2,
            "reader {i} saw only {distinct} generation(s)"
        );
        assert!(newest <= last);
    }
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    assert_eq!(generation_of(&reader.get_decompressed().unwrap()), last);
}

// ---------------------------------------------------------------------------------------
// (d) A reader follows the file past its mapping

/// Growth test channel: 1024 × 1024 `u32` in 64 chunks of 16 rows (64 KiB).
const GROW_W: usize = 1024;
const GROW_H: usize = 1024;

/// Child: open read-only, read the lazy channel, wait for `go`; then the old snapshot
/// must still read as zeros, and after `refresh()` every chunk must be the noise.
#[test]
fn child_growth_reader() {
    let Some(path) = child_role("child_growth_reader") else {
        return;
    };
    let reader = Channel::<u32>::open_read_only(&path).unwrap();
    let n = reader.num_chunks();
    assert!(reader.get_decompressed().unwrap().iter().all(|&v| v == 0));
    report!("opened {}", reader.stats().unwrap().file_len);
    assert_eq!(command(), "go");
    // The old snapshot: still lazy zeros, through the old mapping.
    for index in 0..n {
        assert!(reader.is_lazy(index).unwrap());
        assert!(reader.get_chunk_vec(index).unwrap().iter().all(|&v| v == 0));
    }
    assert!(reader.refresh().unwrap());
    for index in 0..n {
        let expected = noise_chunk(index, reader.chunk_elems_at(index).unwrap());
        assert_eq!(
            reader.get_chunk_vec(index).unwrap(),
            expected,
            "chunk {index}"
        );
    }
    let whole = reader.get_decompressed().unwrap();
    assert_eq!(
        whole[..reader.chunk_elems()],
        noise_chunk(0, reader.chunk_elems())
    );
    report!("refreshed {}", reader.stats().unwrap().file_len);
}

#[test]
fn reader_follows_file_growth_past_its_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.cimg");
    let settings = Settings::default().chunk_size(GROW_W * 16 * 4);
    let writer = Channel::<u32>::create_full(&path, GROW_W, GROW_H, 0, settings).unwrap();
    let n = writer.num_chunks();
    assert_eq!(n, 64);

    let mut child = spawn("child_growth_reader", &path, &[]);
    let mapped: u64 = child.expect("opened").parse().unwrap();
    for index in 0..n {
        let chunk = noise_chunk(index, writer.chunk_elems_at(index).unwrap());
        writer.set_chunk(index, &chunk).unwrap();
    }
    let grown = writer.stats().unwrap().file_len;
    assert!(
        grown > 16 * mapped && grown > 4 << 20,
        "the file grew only from {mapped} to {grown} bytes"
    );
    child.send("go");
    let seen: u64 = child.expect("refreshed").parse().unwrap();
    assert!(seen >= grown);
    child.finish();
}

// ---------------------------------------------------------------------------------------
// (e) A writer killed with SIGKILL

/// Child: commit generations 1, 2, … (syncing every 100) and report each after its
/// commit returns, until killed (or 60 s pass).
#[test]
fn child_killed_writer() {
    let Some(path) = child_role("child_killed_writer") else {
        return;
    };
    let writer = Channel::<f32>::open(&path).unwrap();
    let start = Instant::now();
    let mut g = 0;
    while start.elapsed() < Duration::from_secs(60) {
        g += 1;
        commit_generation(&writer, g);
        report!("committed {g}");
        if g % 100 == 0 {
            writer.sync().unwrap();
        }
    }
}

#[test]
fn writer_killed_mid_loop_leaves_last_reported_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.cimg");
    drop(Channel::<f32>::create_full(&path, W, H, 0.0, small_settings()).unwrap());

    let mut child = spawn("child_killed_writer", &path, &[]);
    let mut reported = 0u64;
    while reported < 250 {
        reported = child.expect("committed").parse().unwrap();
    }
    // Let it run on a little, so that the kill lands at no particular point of the loop.
    std::thread::sleep(Duration::from_millis(u64::from(std::process::id() % 16)));
    let (status, lines) = child.kill_and_drain(); // SIGKILL, mid-loop
    assert!(!status.success());
    // Lines the child printed before it died are still in the pipe.
    for line in lines {
        if let Some(g) = line.strip_prefix("committed ") {
            reported = reported.max(g.parse().unwrap());
        }
    }

    // The kernel released the lock with the process: a new writer gets in.
    let writer = Channel::<f32>::open(&path).unwrap();
    let g = generation_of(&writer.get_decompressed().unwrap());
    println!("child reported generation {reported}, the file opens at generation {g}");
    assert!(
        g == reported || g == reported + 1,
        "reported {reported}, file has {g}"
    );
    // And it writes on top of the recovered commit.
    commit_generation(&writer, g + 1);
    drop(writer);
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    assert_eq!(generation_of(&reader.get_decompressed().unwrap()), g + 1);
}
