//! Measures an anonymous channel with its bytes in memory against the same channel with them
//! in an unlinked temporary file on disk: making it, reading it chunk by chunk right after (the
//! first read of each blob) and once more, and a `set_chunk` loop rewriting it.
//!
//! The channel is render-like: `f32`, 8192 × 8192 (256 MiB), smooth shading plus per-pixel
//! noise, in 4 MiB chunks (64) compressed with LZ4 level 9, byte shuffle and 32 KiB blocks.
//! One sample makes a fresh channel from one frame (`Channel::new`, default threads), reads
//! every chunk in order into one buffer twice on one thread, then runs one pass of `set_chunk`
//! rewriting every chunk with the next frame (default threads). Samples alternate between the
//! two backings; each line prints the median with the minimum and maximum.
//!
//! ```text
//! cargo run --release --example anon_backing [-- SAMPLES [TEMP_DIR]]   # 5, /var/tmp
//! ```
//!
//! Under disk load, another process writes all along: buffered, filling the page cache with
//! dirty pages (so the kernel throttles every writer of file pages, the temporary file's
//! included, but not memory), or with `oflag=direct` instead of `conv=fdatasync`, which
//! only keeps the disk busy:
//!
//! ```text
//! setsid sh -c 'while :; do dd if=/dev/zero of=/var/tmp/load bs=1M count=8000 conv=fdatasync status=none; done' &
//! LOAD=$!
//! cargo run --release --example anon_backing
//! kill -- -$LOAD; rm -f /var/tmp/load
//! ```
//!
//! Measured on a shared 2-core virtual machine (ext4 on a virtio disk, 24 GiB), two runs of
//! 5 samples each, median (min–max) in seconds; a pass appends 199 MiB (1.29:1):
//!
//! | disk | memory | temporary file |
//! |---|---|---|
//! | quiet | 0.123 (0.119–0.152), 0.123 (0.122–0.153) | 0.225 (0.112–0.297), 0.136 (0.114–0.282) |
//! | `oflag=direct` writer | 0.202 (0.156–0.243), 0.138 (0.122–0.209) | 0.182 (0.146–0.366), 0.118 (0.115–0.209) |
//! | buffered writer | 0.265 (0.209–0.325), 0.175 (0.150–0.374) | 0.774 (0.444–1.260), 0.245 (0.143–1.160) |
//!
//! A busy disk alone changes little; dirty pages from another writer throttle the
//! temporary file's writes (up to 3× slower, single passes above a second) but not memory.
//! (Those figures are from when memory was a memfd.)
//!
//! The first read after `Channel::new`, in memory, 7 interleaved runs of 3 samples each with
//! memory in a memfd and in process-private memory, on the same machine loaded by other
//! builds (load average 6–7): through the memfd the first read took 19–53 ms longer than the
//! second (run medians 0.064–0.154 s against 0.042–0.105 s), as each blob's pages were
//! mapped on first touch; in private memory at most 2 ms longer but for one run (16 ms),
//! 0.041–0.108 s against 0.041–0.092 s.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use compressed_image::{AnonymousBacking, Channel, Codec, Settings};

const WIDTH: usize = 8192;
const HEIGHT: usize = 8192;
const CHUNK_BYTES: usize = 4 << 20;
const ROWS_PER_CHUNK: usize = CHUNK_BYTES / (WIDTH * 4);

/// What one sample times, in order.
const STEPS: [&str; 4] = [
    "new",
    "first read (1 thread)",
    "read again (1 thread)",
    "set_chunk pass",
];

type BenchResult<T = ()> = Result<T, Box<dyn StdError>>;

fn main() -> BenchResult {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let samples: usize = args.first().map_or(Ok(5), |s| s.parse())?;
    let temp_dir = PathBuf::from(args.get(1).map_or("/var/tmp", String::as_str));
    let settings = Settings::default()
        .codec(Codec::Lz4)
        .level(9)
        .block_size(32 << 10)
        .chunk_size(CHUNK_BYTES);
    let frames = [render(0), render(1)];
    let backings = [
        ("memory", AnonymousBacking::Memory),
        (
            "temp file",
            AnonymousBacking::TempFile {
                dir: Some(temp_dir.clone()),
            },
        ),
    ];
    println!(
        "{WIDTH}x{HEIGHT} f32, {} chunks of {} MiB, LZ4 9, shuffle, 32 KiB blocks; temp files in {}",
        HEIGHT / ROWS_PER_CHUNK,
        CHUNK_BYTES >> 20,
        temp_dir.display()
    );
    let probe = Channel::new(&frames[1], WIDTH, HEIGHT, settings)?;
    println!(
        "one pass appends {:.0} MiB (compressed {:.2}:1)",
        probe.compressed_bytes()? as f64 / (1 << 20) as f64,
        (WIDTH * HEIGHT * 4) as f64 / probe.compressed_bytes()? as f64
    );
    drop(probe);
    let mut times = vec![vec![Vec::new(); STEPS.len()]; backings.len()];
    for _ in 0..samples {
        for ((_, backing), times) in backings.iter().zip(&mut times) {
            AnonymousBacking::set_process_default(backing.clone());
            for (step, time) in times.iter_mut().zip(sample(&frames, settings)?) {
                step.push(time);
            }
        }
    }
    for ((name, _), times) in backings.iter().zip(&mut times) {
        for (step, times) in STEPS.iter().zip(times) {
            times.sort();
            println!(
                "{name:>9} {step:>21}: median {:.4} s, min {:.4} s, max {:.4} s, {samples} samples",
                times[times.len() / 2].as_secs_f64(),
                times[0].as_secs_f64(),
                times[times.len() - 1].as_secs_f64(),
            );
        }
    }
    Ok(())
}

/// The times of [`STEPS`]: a fresh channel of `frames[0]`, two chunk-by-chunk reads of it on
/// one thread, then one `set_chunk` pass writing `frames[1]`.
fn sample(frames: &[Vec<f32>; 2], settings: Settings) -> BenchResult<[Duration; 4]> {
    let start = Instant::now();
    let channel = Channel::new(&frames[0], WIDTH, HEIGHT, settings)?;
    let made = start.elapsed();
    let threads = channel.threads();
    channel.set_threads(1)?;
    let first_read = timed_read(&channel)?;
    let read_again = timed_read(&channel)?;
    channel.set_threads(threads)?;
    let chunk_elems = channel.chunk_elems();
    let start = Instant::now();
    for (index, chunk) in frames[1].chunks(chunk_elems).enumerate() {
        channel.set_chunk(index, chunk)?;
    }
    Ok([made, first_read, read_again, start.elapsed()])
}

/// The time to decompress every chunk of `channel`, in order, into one buffer.
fn timed_read(channel: &Channel<f32>) -> BenchResult<Duration> {
    let mut out = vec![0f32; channel.chunk_elems()];
    let start = Instant::now();
    for index in 0..channel.num_chunks() {
        channel.get_chunk(index, &mut out)?;
    }
    Ok(start.elapsed())
}

/// Frame `frame` of a render: smooth shading with per-pixel sampling noise.
fn render(frame: u64) -> Vec<f32> {
    let mut out = Vec::with_capacity(WIDTH * HEIGHT);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let (u, v) = (x as f32 / WIDTH as f32, y as f32 / HEIGHT as f32);
            let shade = 0.5 + 0.4 * (6.0 * u).sin() * (4.0 * v).cos();
            let noise = (hash(frame, (y * WIDTH + x) as u64) >> 40) as f32 / (1u64 << 24) as f32;
            out.push(shade * (0.9 + 0.2 * noise));
        }
    }
    out
}

/// splitmix64 of `seed` and `i`.
fn hash(seed: u64, i: u64) -> u64 {
    let mut z = (seed << 40 ^ i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
