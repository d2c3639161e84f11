//! Process-level stress of the commit protocol and the multi-process rules (format/SPEC.md
//! §10–§12), with real processes and real `SIGKILL`s.
//!
//! * **Crash loop** (`killed_writer_loop_reopens_at_a_committed_state`): a child writer
//!   commits generations of a small two-channel image (blob, fill and incompressible chunks;
//!   batches and single-chunk commits; discarded batches; `sync()`; `compact()`), reporting
//!   every step on stdout. The parent kills it after a seeded random delay, reopens the file
//!   read-write and checks that it holds exactly the state after the last commit the child
//!   reported, or after the one it was making; that the generation did not go back; that
//!   `verify()` passes; and that a compaction killed before its rename leaves only its one
//!   temporary copy, which the next writer removes on open. The next child continues on the
//!   same file. 40 kills, about 2 s; `CIMG_LONG=1`: 1,000 (`CIMG_KILLS=n` and `CIMG_SEED=n`
//!   override).
//! * **SWMR** (`swmr_stress_readers_see_whole_commits`): one writer process commits rounds
//!   over a three-channel image (one batch per channel — the public API has no commit that
//!   spans channels — alternating blob and fill chunks, every 8th round incompressible so
//!   the file grows past the readers' mappings, a compaction every 30 rounds), first alone,
//!   then with four reader processes, then alone again. Readers `refresh()` and read the
//!   whole image in a loop: every read must be the state after one writer commit, and
//!   never older than the previous read. Second writers started during the run get
//!   `Locked`. Commit rates with and without readers are reported, not asserted; so are the
//!   writer thread's CPU, run-queue and off-CPU times, which tell CPU contention (readers
//!   and writer share the cores) from blocking. About 6 s; `CIMG_LONG=1`: about 3 minutes.
//!
//! Children are this test binary run again on one `child_*` test, as `common::child`
//! describes: they report through protocol lines on stdout (a pipe: lines printed before a
//! kill are still read) and take commands on stdin.
//! Run with `cargo test --release --test process_stress -- --nocapture` to see the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use compressed_image::{Error, Image, Settings};

#[macro_use]
mod common;

use common::child::{Child, TIMEOUT, child_role, command, env_u64, spawn};
use common::long_run;
use common::rng::Rng;

/// The two parent tests measure time and rates: run them one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Parse whitespace-separated numbers of a protocol line.
fn numbers(line: &str) -> Vec<u64> {
    line.split_whitespace()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad number in `{line}`"))
        })
        .collect()
}

/// Time the calling thread spent on a CPU and waiting for one (run queue), from
/// `/proc/thread-self/schedstat`; `None` where the kernel does not provide it.
fn schedstat() -> Option<(Duration, Duration)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (cpu, wait) = (fields.next()??, fields.next()??);
    Some((Duration::from_nanos(cpu), Duration::from_nanos(wait)))
}

// ---------------------------------------------------------------------------------------
// Data: every chunk is a function of (value, channel, chunk index)

/// How a chunk of value `g` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Every element is `g`: a fill entry.
    Fill,
    /// Every element is `g` but the last, which is `!g`: a small compressed blob.
    Blob,
    /// Element 0 is `g`, the rest incompressible noise: a blob as large as the chunk.
    Noise,
}

fn kind(g: u32, channel: usize, index: usize, noise_every: u32) -> Kind {
    if g == 0 {
        Kind::Fill // the lazy zeros of a new channel
    } else if g.is_multiple_of(noise_every) {
        Kind::Noise
    } else if (g as usize + channel + index).is_multiple_of(2) {
        Kind::Fill
    } else {
        Kind::Blob
    }
}

/// The contents of chunk `index` of `channel` holding value `g` (`len` elements).
fn chunk_data(g: u32, channel: usize, index: usize, len: usize, noise_every: u32) -> Vec<u32> {
    let mut data = vec![g; len];
    match kind(g, channel, index, noise_every) {
        Kind::Fill => {}
        Kind::Blob => data[len - 1] = !g,
        Kind::Noise => {
            let mut rng = Rng::new(u64::from(g) << 32 ^ (channel as u64) << 16 ^ index as u64);
            data[1..]
                .iter_mut()
                .for_each(|v| *v = (rng.next() >> 32) as u32);
        }
    }
    data
}

/// The value a chunk holds; an error unless it is exactly `chunk_data(value, …)`.
fn decode_chunk(
    channel: usize,
    index: usize,
    data: &[u32],
    noise_every: u32,
) -> Result<u32, String> {
    let g = data[0];
    let expected = chunk_data(g, channel, index, data.len(), noise_every);
    match data.iter().zip(&expected).position(|(a, b)| a != b) {
        None => Ok(g),
        Some(at) => Err(format!(
            "channel {channel} chunk {index} is not a chunk of value {g} ({:?}): element {at} is {}, expected {}",
            kind(g, channel, index, noise_every),
            data[at],
            expected[at]
        )),
    }
}

/// The value of every chunk of every channel (channel-major), read from one commit.
fn chunk_values(
    image: &Image<u32>,
    chunk_elems: usize,
    noise_every: u32,
) -> Result<Vec<Vec<u32>>, String> {
    let data = image
        .get_decompressed()
        .map_err(|e| format!("get_decompressed: {e}"))?;
    data.iter()
        .enumerate()
        .map(|(c, channel)| {
            channel
                .chunks(chunk_elems)
                .enumerate()
                .map(|(i, chunk)| decode_chunk(c, i, chunk, noise_every))
                .collect()
        })
        .collect()
}

/// The files in `dir` besides `name` and its `.lock` sidecar: its temporary files
/// (`.<name>.cimg-tmp-*`, SPEC §12), and any others.
fn temp_files(dir: &Path, name: &str) -> (Vec<String>, Vec<String>) {
    let prefix = format!(".{name}.cimg-tmp-");
    let (mut temps, mut other) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let file = entry.expect("dir entry").file_name();
        let file = file.to_string_lossy().into_owned();
        if file.starts_with(&prefix) {
            temps.push(file);
        } else if file != name && file != format!("{name}.lock") {
            other.push(file);
        }
    }
    (temps, other)
}

// ---------------------------------------------------------------------------------------
// 1. Real-kill crash loop

/// Crash-loop image: 2 channels of 128 × 60 `u32` in chunks of 8 rows (4 KiB); the last
/// chunk is short (4 rows).
const CRASH_W: usize = 128;
const CRASH_H: usize = 60;
const CRASH_CHANNELS: usize = 2;
const CRASH_CHUNK_ELEMS: usize = CRASH_W * 8;
const CRASH_CHUNKS: usize = CRASH_H.div_ceil(8);
/// Every 5th generation is incompressible, so the file keeps growing between compactions.
const CRASH_NOISE_EVERY: u32 = 5;

/// The crash-loop image's chunk values, flattened (`channel * CRASH_CHUNKS + index`).
fn crash_state(image: &Image<u32>) -> Result<Vec<u32>, String> {
    Ok(chunk_values(image, CRASH_CHUNK_ELEMS, CRASH_NOISE_EVERY)?.concat())
}

fn join(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Child: continue the file from its current state with generations g+1, g+2, … until
/// killed (or 60 s pass). Each generation writes every chunk of both channels, per channel
/// either as one batch or chunk by chunk; between generations it sometimes stages and drops
/// a batch, syncs or compacts. Every step is reported before it starts and after it ends.
#[test]
fn child_crash_writer() {
    let Some(path) = child_role("child_crash_writer") else {
        return;
    };
    let mut rng = Rng::new(env_u64("CIMG_SEED"));
    let image = Image::<u32>::open(&path).expect("open for writing");
    image.set_threads(1).unwrap();
    let state = crash_state(&image).expect("the file holds a consistent state");
    report!(
        "ready {} {}",
        image.stats().unwrap().generation,
        join(&state)
    );
    let generation = |image: &Image<u32>| image.stats().unwrap().generation;
    let channels = image.channels().unwrap();
    let mut g = state.iter().max().expect("chunks") + 1;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let chunk = |c: usize, i: usize, g: u32| {
            let len = channels[c].chunk_elems_at(i).unwrap();
            chunk_data(g, c, i, len, CRASH_NOISE_EVERY)
        };
        let batched = rng.below(10) < 6;
        for (c, channel) in channels.iter().enumerate() {
            if batched {
                report!("next {c} all {g}");
                let mut batch = channel.batch().unwrap();
                for i in 0..CRASH_CHUNKS {
                    batch.set_chunk(i, &chunk(c, i, g)).unwrap();
                }
                batch.commit().unwrap();
                report!("committed {}", generation(&image));
            } else {
                for i in 0..CRASH_CHUNKS {
                    report!("next {c} {i} {g}");
                    channel.set_chunk(i, &chunk(c, i, g)).unwrap();
                    report!("committed {}", generation(&image));
                }
            }
        }
        g += 1;
        match rng.below(20) {
            0 => {
                // Staged blobs of a batch that is dropped: never visible.
                report!("discarding");
                let mut batch = channels[1].batch().unwrap();
                for i in 0..CRASH_CHUNKS {
                    batch.set_chunk(i, &chunk(1, i, g + 1_000_000)).unwrap();
                }
                drop(batch);
                report!("discarded");
            }
            1..=3 => {
                report!("compacting");
                image.compact().unwrap();
                report!("compacted {}", generation(&image));
            }
            4..=8 => {
                report!("syncing");
                image.sync().unwrap();
                report!("synced {}", generation(&image));
            }
            _ => {}
        }
    }
}

/// The parent's knowledge of the crash-loop file, from the child's reports.
struct Model {
    /// Chunk values after the last commit the child reported.
    state: Vec<u32>,
    /// Chunk values after the commit the child announced and has not reported yet.
    pending: Option<Vec<u32>>,
    /// The newest generation reported (by the child or seen by the parent).
    generation: u64,
    /// The first word of the last line: where the child was when it died.
    phase: &'static str,
    commits: u64,
    syncs: u64,
    compactions: u64,
}

impl Model {
    fn report_generation(&mut self, g: u64, strictly_newer: bool, line: &str) {
        assert!(
            g > self.generation || (!strictly_newer && g == self.generation),
            "`{line}`: generation went from {} to {g}",
            self.generation
        );
        self.generation = g;
    }

    fn apply(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let word = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        self.phase = match word {
            "ready" => {
                assert_eq!(rest.len(), 2, "bad line `{line}`");
                let state: Vec<u32> = rest[1].split(',').map(|v| v.parse().unwrap()).collect();
                assert_eq!(state, self.state, "the child opened another state");
                self.report_generation(rest[0].parse().unwrap(), false, line);
                "ready"
            }
            "next" => {
                assert!(
                    self.pending.is_none(),
                    "`{line}` before the last commit ended"
                );
                let c: usize = rest[0].parse().unwrap();
                let g: u32 = rest[2].parse().unwrap();
                let mut next = self.state.clone();
                let chunks = match rest[1] {
                    "all" => 0..CRASH_CHUNKS,
                    i => {
                        let i: usize = i.parse().unwrap();
                        i..i + 1
                    }
                };
                chunks.for_each(|i| next[c * CRASH_CHUNKS + i] = g);
                self.pending = Some(next);
                "next"
            }
            "committed" => {
                self.state = self.pending.take().expect("a commit was announced");
                self.report_generation(rest[0].parse().unwrap(), true, line);
                self.commits += 1;
                "committed"
            }
            "synced" => {
                self.report_generation(rest[0].parse().unwrap(), false, line);
                self.syncs += 1;
                "synced"
            }
            "compacted" => {
                self.report_generation(rest[0].parse().unwrap(), true, line);
                self.compactions += 1;
                "compacted"
            }
            "syncing" => "syncing",
            "compacting" => "compacting",
            "discarding" => "discarding",
            "discarded" => "discarded",
            _ => panic!("unknown line `{line}`"),
        };
    }
}

#[test]
fn killed_writer_loop_reopens_at_a_committed_state() {
    let _serial = serial();
    let kills: u64 = match std::env::var("CIMG_KILLS") {
        Ok(n) => n.parse().expect("CIMG_KILLS is a number"),
        Err(_) if long_run() => 1000,
        Err(_) => 40,
    };
    let seed = std::env::var("CIMG_SEED").map_or(0x5EED_C1A5, |s| s.parse().expect("CIMG_SEED"));
    let dir = tempfile::tempdir().unwrap();
    let name = "crash.cimg";
    let path = dir.path().join(name);
    {
        let image = Image::<u32>::create(&path, CRASH_W, CRASH_H).unwrap();
        let settings = Settings::default().chunk_size(CRASH_CHUNK_ELEMS * 4);
        for c in 0..CRASH_CHANNELS {
            image
                .add_lazy_channel(0, Some(&format!("c{c}")), settings)
                .unwrap();
        }
        assert_eq!(image.channel(0).unwrap().num_chunks(), CRASH_CHUNKS);
    }

    let mut rng = Rng::new(seed);
    let mut model = Model {
        state: vec![0; CRASH_CHANNELS * CRASH_CHUNKS],
        pending: None,
        generation: 0,
        phase: "",
        commits: 0,
        syncs: 0,
        compactions: 0,
    };
    let mut phases: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut in_flight_kept, mut in_flight_lost, mut strays) = (0u64, 0u64, 0usize);
    let (mut max_file_len, mut generations_behind) = (0u64, 0u64);
    let start = Instant::now();
    for kill in 1..=kills {
        model.phase = "spawned";
        let mut child = spawn(
            "child_crash_writer",
            &path,
            &[("CIMG_SEED", rng.next().to_string())],
        );
        if rng.below(8) == 0 {
            // Now and then, kill it while it starts and opens the file (which syncs and may
            // write a marker slot).
            std::thread::sleep(Duration::from_millis(rng.below(6) as u64));
        } else {
            model.apply(&child.next_line(TIMEOUT));
            std::thread::sleep(Duration::from_millis(rng.below(51) as u64));
        }
        let (status, lines) = child.kill_and_drain();
        assert_eq!(
            status.signal(),
            Some(9),
            "kill {kill}: the child exited by itself ({status}); see its panic message above"
        );
        lines.iter().for_each(|line| model.apply(line));
        *phases.entry(model.phase).or_default() += 1;

        // A compaction killed before its rename leaves its temporary copy, and only that.
        let (temps, other) = temp_files(dir.path(), name);
        assert!(other.is_empty(), "kill {kill}: unexpected files {other:?}");
        assert!(
            temps.is_empty()
                || (temps.len() == 1
                    && temps[0].contains("-compact-")
                    && model.phase == "compacting"),
            "kill {kill} (in `{}`): temporary files {temps:?}",
            model.phase
        );
        strays += temps.len();

        // The kernel released the writer lock with the process: reopen for writing.
        let image = Image::<u32>::open(&path).unwrap_or_else(|e| {
            panic!("kill {kill} (in `{}`): reopening failed: {e}", model.phase)
        });
        let state = crash_state(&image)
            .unwrap_or_else(|e| panic!("kill {kill} (in `{}`): {e}", model.phase));
        if state == model.state {
            in_flight_lost += u64::from(model.pending.is_some());
        } else if model.pending.as_ref() == Some(&state) {
            in_flight_kept += 1; // the commit was made, only its report was lost
            model.state = state;
        } else {
            panic!(
                "kill {kill} (in `{}`): the file holds neither the last reported commit nor \
                 the one in flight\n  file:     {}\n  reported: {}\n  pending:  {:?}",
                model.phase,
                join(&state),
                join(&model.state),
                model.pending.as_deref().map(join)
            );
        }
        model.pending = None;
        let stats = image.stats().unwrap();
        // At most: the commit in flight (+1, or +2 for a compaction and its sync marker),
        // then the marker this open writes (+1).
        assert!(
            (model.generation..=model.generation + 3).contains(&stats.generation),
            "kill {kill} (in `{}`): reported generation {}, the file opens at {}",
            model.phase,
            model.generation,
            stats.generation
        );
        generations_behind = generations_behind.max(stats.generation - model.generation);
        model.generation = stats.generation;
        max_file_len = max_file_len.max(stats.file_len);
        let verification = image.verify().unwrap();
        assert!(
            verification.is_ok(),
            "kill {kill}: verify found {:?}",
            verification.problems
        );
        drop(image);

        // The writer that reopened the file removed the stray copy.
        let (temps, other) = temp_files(dir.path(), name);
        assert!(
            temps.is_empty() && other.is_empty(),
            "kill {kill}: files left after reopening: {temps:?} {other:?}"
        );
    }
    let elapsed = start.elapsed();

    // The file is still a good file for readers.
    let reader = Image::<u32>::open_read_only(&path).unwrap();
    assert_eq!(crash_state(&reader).unwrap(), model.state);
    assert!(reader.verify().unwrap().is_ok());
    let in_compaction = phases.get("compacting").copied().unwrap_or(0);
    println!(
        "crash loop: {kills} SIGKILLs survived in {:.1} s (seed {seed:#x}); the children \
         reported {} commits, {} syncs, {} compactions; final generation {}, values up to {}, \
         largest file {} KiB",
        elapsed.as_secs_f64(),
        model.commits,
        model.syncs,
        model.compactions,
        model.generation,
        model.state.iter().max().unwrap(),
        max_file_len / 1024
    );
    println!("crash loop: where the kills landed (last line read): {phases:?}");
    println!(
        "crash loop: commits in flight at the kill: {in_flight_kept} made it (report lost), \
         {in_flight_lost} did not; reopening was at most {generations_behind} generation(s) \
         past the last report"
    );
    println!(
        "crash loop: {in_compaction} kill(s) during a compaction left {strays} temporary \
         copy(ies) behind; the next writer removed each on open"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Single writer, multiple readers, under continuous commits

/// SWMR image: 3 channels of 256 × 256 `u32` in 8 chunks of 32 rows (32 KiB).
const SW_W: usize = 256;
const SW_H: usize = 256;
const SW_CHANNELS: usize = 3;
const SW_CHUNK_ELEMS: usize = SW_W * 32;
/// Every 8th round is incompressible (768 KiB of blobs): the file outgrows the mappings.
const SW_NOISE_EVERY: u32 = 8;
/// Sync after every 10th round, compact after every 30th.
const SW_SYNC_EVERY: u32 = 10;
const SW_COMPACT_EVERY: u32 = 30;
const READERS: usize = 4;

/// The writer's position: round `g` complete, and the first `k` channels of round `g + 1`
/// committed. Every commit moves it by one, so `3 g + k` counts commits.
fn swmr_position(values: &[Vec<u32>]) -> Result<(u32, usize), String> {
    let per_channel: Vec<u32> = values
        .iter()
        .enumerate()
        .map(|(c, chunks)| match chunks.iter().all(|&v| v == chunks[0]) {
            true => Ok(chunks[0]),
            false => Err(format!("channel {c} mixes chunks of rounds {chunks:?}")),
        })
        .collect::<Result<_, _>>()?;
    let low = *per_channel.iter().min().expect("channels");
    let k = per_channel.iter().take_while(|&&v| v == low + 1).count();
    if k < SW_CHANNELS && per_channel[k..].iter().all(|&v| v == low) {
        Ok((low, k))
    } else {
        Err(format!(
            "channels hold rounds {per_channel:?}: not the state after any one commit"
        ))
    }
}

/// Child: the writer. Opens the image, reports `ready`, then on `run MILLIS` commits rounds
/// for that long and reports `ran` with its figures; exits on `quit` or end of input.
#[test]
fn child_swmr_stress_writer() {
    let Some(path) = child_role("child_swmr_stress_writer") else {
        return;
    };
    let image = Image::<u32>::open(&path).expect("open for writing");
    image.set_threads(1).unwrap();
    let channels = image.channels().unwrap();
    let mut g = swmr_position(&chunk_values(&image, SW_CHUNK_ELEMS, SW_NOISE_EVERY).unwrap())
        .expect("a complete round")
        .0;
    report!("ready");
    loop {
        let line = command();
        let Some(millis) = line.strip_prefix("run ") else {
            assert!(
                line.is_empty() || line == "quit",
                "unknown command `{line}`"
            );
            break;
        };
        let duration = Duration::from_millis(millis.parse().unwrap());
        let sched_before = schedstat();
        let start = Instant::now();
        let (mut commits, mut rounds, mut compactions) = (0u64, 0u64, 0u64);
        let mut max_commit = Duration::ZERO;
        while start.elapsed() < duration {
            g += 1;
            for (c, channel) in channels.iter().enumerate() {
                let t = Instant::now();
                let mut batch = channel.batch().unwrap();
                for i in 0..channel.num_chunks() {
                    let len = channel.chunk_elems_at(i).unwrap();
                    batch
                        .set_chunk(i, &chunk_data(g, c, i, len, SW_NOISE_EVERY))
                        .unwrap();
                }
                batch.commit().unwrap();
                max_commit = max_commit.max(t.elapsed());
                commits += 1;
            }
            rounds += 1;
            if g.is_multiple_of(SW_SYNC_EVERY) {
                image.sync().unwrap();
            }
            if g.is_multiple_of(SW_COMPACT_EVERY) {
                image.compact().unwrap();
                compactions += 1;
            }
        }
        let wall = start.elapsed();
        let (cpu, queued) = match (sched_before, schedstat()) {
            (Some((c0, w0)), Some((c1, w1))) => (c1 - c0, w1 - w0),
            _ => (Duration::ZERO, Duration::ZERO),
        };
        report!(
            "ran {commits} {rounds} {compactions} {} {} {} {} {g} {}",
            wall.as_micros(),
            cpu.as_micros(),
            queued.as_micros(),
            max_commit.as_micros(),
            image.stats().unwrap().generation
        );
    }
}

/// Child: a reader. Until the file `CIMG_STOP` exists, `refresh()` and read the whole
/// image: every read must be the state after one commit, never older than the last read,
/// and unchanged while the generation is. Then one last refresh and read, and a report.
#[test]
fn child_swmr_stress_reader() {
    let Some(path) = child_role("child_swmr_stress_reader") else {
        return;
    };
    let stop = PathBuf::from(std::env::var_os("CIMG_STOP").expect("CIMG_STOP is set"));
    // A parent that died must not leave readers spinning forever.
    let deadline = Instant::now() + Duration::from_millis(env_u64("CIMG_MAX_MILLIS"));
    let image = Image::<u32>::open_read_only(&path).expect("open read-only");
    image.set_threads(1).unwrap();
    report!("ready");
    let inode = || std::fs::metadata(&path).map(|m| m.ino()).unwrap_or(0);
    let read = |image: &Image<u32>| {
        let values = chunk_values(image, SW_CHUNK_ELEMS, SW_NOISE_EVERY)
            .and_then(|v| swmr_position(&v))
            .unwrap_or_else(|e| panic!("a read that is not one commit: {e}"));
        (values, image.stats().unwrap())
    };
    let ((mut round, mut k), mut stats) = read(&image);
    let (mut reads, mut moved, mut changed, mut replaced, mut remapped) = (1u64, 0u64, 0, 0, 0);
    let mut rounds_seen = BTreeSet::from([round]);
    let mut last_inode = inode();
    loop {
        let stopping = stop.exists();
        assert!(Instant::now() < deadline, "the parent never said stop");
        let now_inode = inode();
        let refreshed = image.refresh().unwrap();
        let ((r, kk), s) = read(&image);
        let (before, after) = (
            3 * u64::from(round) + k as u64,
            3 * u64::from(r) + kk as u64,
        );
        assert!(
            s.generation >= stats.generation,
            "generation went back from {} to {}",
            stats.generation,
            s.generation
        );
        assert!(after >= before, "went back from commit {before} to {after}");
        assert!(
            s.generation > stats.generation || after == before,
            "content changed from commit {before} to {after} at generation {}",
            s.generation
        );
        assert!(refreshed || s.generation == stats.generation);
        // The file at the path was replaced (a compaction) since the last read.
        if now_inode != last_inode {
            replaced += 1;
        } else if inode() == now_inode && s.committed_end > stats.file_len {
            // The commit ends past the file length seen after the last refresh, so past
            // the old mapping: it was read through a new one.
            remapped += 1;
        }
        moved += u64::from(refreshed);
        changed += u64::from(after != before);
        reads += 1;
        rounds_seen.insert(r);
        (round, k, stats, last_inode) = (r, kk, s, now_inode);
        if stopping {
            break;
        }
    }
    report!(
        "counts {reads} {} {moved} {changed} {replaced} {remapped} {round} {k} {}",
        rounds_seen.len(),
        stats.generation
    );
}

/// Child: a second writer, which must be refused while the writer runs.
#[test]
fn child_swmr_stress_intruder() {
    let Some(path) = child_role("child_swmr_stress_intruder") else {
        return;
    };
    match Image::<u32>::open(&path) {
        Err(Error::Locked { path: locked }) => assert_eq!(locked, path),
        other => panic!("a second writer opened the file: {:?}", other.map(|_| ())),
    }
    // Creating a new file at the path needs the same lock (and must not replace the file).
    match Image::<u32>::create(&path, 8, 8) {
        Err(Error::Locked { .. }) => {}
        other => panic!("a second writer created the file: {:?}", other.map(|_| ())),
    }
    report!("locked");
}

/// One `ran` report of the writer.
#[derive(Debug, Clone, Copy)]
struct Run {
    commits: u64,
    rounds: u64,
    compactions: u64,
    wall: Duration,
    cpu: Duration,
    queued: Duration,
    max_commit: Duration,
    round: u32,
    generation: u64,
}

impl Run {
    fn parse(line: &str) -> Run {
        let n = numbers(line);
        let us = Duration::from_micros;
        Run {
            commits: n[0],
            rounds: n[1],
            compactions: n[2],
            wall: us(n[3]),
            cpu: us(n[4]),
            queued: us(n[5]),
            max_commit: us(n[6]),
            round: n[7] as u32,
            generation: n[8],
        }
    }

    fn rate(&self) -> f64 {
        self.commits as f64 / self.wall.as_secs_f64()
    }

    fn describe(&self, what: &str) -> String {
        let off_cpu = self.wall.saturating_sub(self.cpu + self.queued);
        format!(
            "{what}: {} commits ({} rounds, {} compactions) in {:.2} s = {:.0} commits/s; \
             {:.0} commits per CPU-second; writer thread on CPU {:.2} s, waiting for a CPU \
             {:.2} s, off CPU (fsync, page faults, blocking) {:.2} s; slowest commit {:.1} ms",
            self.commits,
            self.rounds,
            self.compactions,
            self.wall.as_secs_f64(),
            self.rate(),
            self.commits as f64 / self.cpu.as_secs_f64().max(1e-9),
            self.cpu.as_secs_f64(),
            self.queued.as_secs_f64(),
            off_cpu.as_secs_f64(),
            self.max_commit.as_secs_f64() * 1e3
        )
    }
}

#[test]
fn swmr_stress_readers_see_whole_commits() {
    let _serial = serial();
    let (alone_ms, shared_ms) = if long_run() {
        (10_000u64, 150_000u64)
    } else {
        (1_000, 4_000)
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("swmr.cimg");
    let stop = dir.path().join("stop");
    {
        let image = Image::<u32>::create(&path, SW_W, SW_H).unwrap();
        let settings = Settings::default().chunk_size(SW_CHUNK_ELEMS * 4);
        for name in ["r", "g", "b"] {
            image.add_lazy_channel(0, Some(name), settings).unwrap();
        }
        assert_eq!(image.channel(0).unwrap().num_chunks(), 8);
    }
    let run_timeout = |ms: u64| TIMEOUT + Duration::from_millis(ms);

    let mut writer = spawn("child_swmr_stress_writer", &path, &[]);
    writer.expect("ready");
    writer.send(&format!("run {alone_ms}"));
    let alone_before = Run::parse(&writer.expect_within("ran", run_timeout(alone_ms)));

    let reader_env = [
        ("CIMG_STOP", stop.display().to_string()),
        (
            "CIMG_MAX_MILLIS",
            (shared_ms + 5 * TIMEOUT.as_millis() as u64).to_string(),
        ),
    ];
    let mut readers: Vec<Child> = (0..READERS)
        .map(|_| spawn("child_swmr_stress_reader", &path, &reader_env))
        .collect();
    for reader in &readers {
        reader.expect("ready");
    }

    let shared_start = Instant::now();
    writer.send(&format!("run {shared_ms}"));
    // Second writers, at a quarter, half and three quarters of the shared run.
    let mut refused = 0;
    for quarter in 1..=3u32 {
        let at = Duration::from_millis(shared_ms) * quarter / 4;
        std::thread::sleep(at.saturating_sub(shared_start.elapsed()));
        let mut intruder = spawn("child_swmr_stress_intruder", &path, &[]);
        intruder.expect("locked");
        intruder.finish();
        refused += 1;
    }
    let shared = Run::parse(&writer.expect_within("ran", run_timeout(shared_ms)));

    std::fs::write(&stop, b"").unwrap();
    let mut totals = (0u64, 0u64, 0u64, 0u64, 0u64);
    for (i, reader) in readers.iter_mut().enumerate() {
        let counts = reader.expect("counts");
        reader.finish();
        let n = numbers(&counts);
        let [
            reads,
            distinct,
            moved,
            changed,
            replaced,
            remapped,
            round,
            k,
            generation,
        ] = n[..]
        else {
            panic!("bad counts line `{counts}`")
        };
        println!(
            "swmr reader {i}: {reads} whole-image reads verified, {distinct} rounds seen, \
             {moved} refreshes moved ({changed} to new content), {replaced} file \
             replacements (compactions) followed, {remapped} reads past the old mapping"
        );
        assert!(reads >= 10, "reader {i} read only {reads} times");
        assert!(distinct >= 2, "reader {i} saw only {distinct} round(s)");
        // The writer is idle now: the last refresh must reach its newest commit. Its last
        // sync may have written a marker slot of that commit (the next generation, the same
        // catalog), which a read-only handle does not move to (SPEC §11): the commit is the
        // same, so the generation is the writer's or the one before.
        assert_eq!(
            (round, k),
            (u64::from(shared.round), 0),
            "reader {i} did not reach the writer's last commit"
        );
        assert!(
            generation == shared.generation || generation + 1 == shared.generation,
            "reader {i} at generation {generation}, the writer at {}",
            shared.generation
        );
        totals.0 += reads;
        totals.1 += moved;
        totals.2 += changed;
        totals.3 += replaced;
        totals.4 += remapped;
    }

    writer.send(&format!("run {alone_ms}"));
    let alone_after = Run::parse(&writer.expect_within("ran", run_timeout(alone_ms)));
    writer.send("quit");
    writer.finish();

    let reader = Image::<u32>::open_read_only(&path).unwrap();
    let values = chunk_values(&reader, SW_CHUNK_ELEMS, SW_NOISE_EVERY).unwrap();
    assert_eq!(swmr_position(&values), Ok((alone_after.round, 0)));
    assert!(reader.verify().unwrap().is_ok());
    assert!(
        shared.commits >= 3,
        "the writer made only {} commits while readers ran",
        shared.commits
    );

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("swmr: {cores} CPU(s), {READERS} readers, {refused} second writers refused (Locked)");
    println!("{}", alone_before.describe("swmr writer alone (before)"));
    println!("{}", shared.describe("swmr writer with readers"));
    println!("{}", alone_after.describe("swmr writer alone (after)"));
    let alone_rate = (alone_before.commits + alone_after.commits) as f64
        / (alone_before.wall + alone_after.wall).as_secs_f64();
    println!(
        "swmr: commits/s with readers / alone = {:.0} / {:.0} = {:.2}; readers verified {} \
         reads in total, {} refreshes moved ({} to new content), {} compactions and {} \
         remaps followed; the writer reached round {} (generation {})",
        shared.rate(),
        alone_rate,
        shared.rate() / alone_rate,
        totals.0,
        totals.1,
        totals.2,
        totals.3,
        totals.4,
        alone_after.round,
        alone_after.generation
    );
}
