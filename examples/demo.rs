//! Out-of-core editing of a 4 GiB channel, read by a second process.
//!
//! The demo creates a lazy 32768 × 32768 `f32` channel file (4 GiB of elements, a few KiB
//! on disk), writes a procedural pattern into five of its 1024 chunks one chunk at a time,
//! reads them back, makes the commits durable with `sync()`, and then starts itself again
//! as a reader process that opens the file read-only while this process still holds it for
//! writing. Finally it prints the file's space accounting, compacts the file, and prints
//! its own peak memory, which stays near one chunk (4 MiB) however large the channel is.
//!
//! With `--exr PATH` it instead writes the same rings, in colour, as a 4096 × 2048 RGBA
//! half-float OpenEXR file, by the library's export: the image `scripts/demo` then hands
//! to the command-line tool `cimg` (import, info, verify, preview, export).
//!
//! ```text
//! cargo run --release --example demo                    # file in a temporary directory
//! cargo run --release --example demo -- a.cimg          # keep the file at a.cimg
//! cargo run --release --example demo -- --exr rings.exr # the image for cimg
//! ```

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use compressed_image::{AnyImage, Channel, Error, Settings, WriteOptions, f16};

type DemoResult<T = ()> = Result<T, Box<dyn StdError>>;

const WIDTH: usize = 32_768;
const HEIGHT: usize = 32_768;
/// Value of every element that was never written.
const FILL: f32 = 0.0;
/// The chunks the writer edits (spread over the channel, first and last included).
const EDITED: [usize; 5] = [0, 257, 512, 768, 1023];
/// A chunk nobody writes: it must read as `FILL` without being stored.
const LAZY: usize = 100;

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

fn main() -> DemoResult {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, path] if flag == "--reader" => reader(Path::new(path)),
        [flag, path] if flag == "--exr" => write_exr(Path::new(path)),
        [] => {
            let dir = tempfile::tempdir()?;
            writer(&dir.path().join("demo.cimg"))
        }
        [path] if !path.starts_with('-') => writer(Path::new(path)),
        _ => Err("usage: demo [PATH] | demo --exr PATH   (internally: demo --reader PATH)".into()),
    }
}

/// Concentric rings of `period / 2π` pixels around `(cx, cy)`: values in [-1, 1],
/// quantised to 1/64 so that they compress.
fn rings(x: usize, y: usize, (cx, cy): (f32, f32), period: f32) -> f32 {
    let (dx, dy) = (x as f32 - cx, y as f32 - cy);
    let r = (dx * dx + dy * dy).sqrt();
    ((r / period).sin() * 64.0).round() / 64.0
}

/// The pattern written into the edited chunks: rings around the centre of the channel
/// (the same function checks it).
fn pattern(x: usize, y: usize) -> f32 {
    rings(x, y, ((WIDTH / 2) as f32, (HEIGHT / 2) as f32), 300.0)
}

/// Size of the image `--exr` writes: 64 MiB of half floats.
const EXR_WIDTH: usize = 4096;
const EXR_HEIGHT: usize = 2048;

/// Write the rings in colour — red, green and blue rings around three centres, opaque
/// alpha — as an RGBA half-float OpenEXR file (ZIP), exported by the library from an
/// anonymous image.
fn write_exr(path: &Path) -> DemoResult {
    let t = Instant::now();
    let image = AnyImage::new(EXR_WIDTH, EXR_HEIGHT)?;
    let (w, h) = (EXR_WIDTH as f32, EXR_HEIGHT as f32);
    let centres = [
        ("R", (0.3 * w, 0.4 * h)),
        ("G", (0.5 * w, 0.6 * h)),
        ("B", (0.7 * w, 0.4 * h)),
    ];
    for (name, centre) in centres {
        let data: Vec<f16> = (0..EXR_WIDTH * EXR_HEIGHT)
            .map(|i| {
                let v = rings(i % EXR_WIDTH, i / EXR_WIDTH, centre, 40.0);
                f16::from_f32(0.5 + 0.5 * v)
            })
            .collect();
        image.add_channel(&data, Some(name), Settings::default())?;
    }
    let alpha = vec![f16::ONE; EXR_WIDTH * EXR_HEIGHT];
    image.add_channel(&alpha, Some("A"), Settings::default())?;
    image.write(path, &WriteOptions::default())?;
    println!(
        "wrote {} ({EXR_WIDTH} x {EXR_HEIGHT} RGBA half, {:.0} MiB of pixels, {:.1} MiB on disk) in {:.1?}",
        path.display(),
        (EXR_WIDTH * EXR_HEIGHT * 4 * size_of::<f16>()) as f64 / MIB,
        std::fs::metadata(path)?.len() as f64 / MIB,
        t.elapsed(),
    );
    Ok(())
}

/// Fill `buf` (chunk `index`, whole scanlines) with the pattern.
fn fill_pattern(buf: &mut [f32], first_row: usize) {
    for (i, v) in buf.iter_mut().enumerate() {
        *v = pattern(i % WIDTH, first_row + i / WIDTH);
    }
}

/// Number of elements of `buf` (starting at `first_row`) that differ from the pattern.
fn pattern_mismatches(buf: &[f32], first_row: usize) -> usize {
    buf.iter()
        .enumerate()
        .filter(|&(i, v)| v.to_bits() != pattern(i % WIDTH, first_row + i / WIDTH).to_bits())
        .count()
}

fn writer(path: &Path) -> DemoResult {
    let start = Instant::now();
    println!("compressed-image demo: {}", path.display());

    // 1. A lazy 4 GiB channel: every chunk is a fill entry, nothing is compressed.
    let t = Instant::now();
    let channel = Channel::<f32>::create_full(path, WIDTH, HEIGHT, FILL, Settings::default())?;
    let rows = channel.chunk_elems() / WIDTH;
    println!(
        "created {WIDTH} x {HEIGHT} f32 channel ({:.2} GiB logical) in {:.0?}: {} lazy chunks of {rows} rows ({:.0} MiB each)",
        logical_bytes() / GIB,
        t.elapsed(),
        channel.num_chunks(),
        channel.chunk_size() as f64 / MIB,
    );

    // 2. Edit a few chunks out of core: one chunk buffer, reused for writing and reading.
    let mut buf = vec![0.0f32; channel.chunk_elems()];
    for index in EDITED {
        let t = Instant::now();
        let first_row = index * rows;
        let chunk = &mut buf[..channel.chunk_elems_at(index)?];
        fill_pattern(chunk, first_row);
        let before = channel.compressed_bytes()?;
        channel.set_chunk(index, chunk)?; // compressed, appended, committed
        let stored = channel.compressed_bytes()? + size_of::<f32>() - before;
        chunk.fill(f32::NAN);
        channel.get_chunk(index, chunk)?; // decompressed straight from the mapping
        let bad = pattern_mismatches(chunk, first_row);
        if bad != 0 {
            return Err(format!("chunk {index}: {bad} elements differ after read-back").into());
        }
        println!(
            "  chunk {index:4} (rows {first_row:5}..{:5}): wrote {:.0} MiB as {:.2} MiB, read back ok ({:.0?})",
            first_row + rows,
            size_of_val(chunk) as f64 / MIB,
            stored as f64 / MIB,
            t.elapsed(),
        );
    }
    drop(buf);

    // 3. Make every commit durable.
    let t = Instant::now();
    channel.sync()?;
    println!("sync(): commits durable ({:.0?})", t.elapsed());

    // 4. A second process reads the file while this one still holds it for writing.
    println!("starting reader process ...");
    let status = Command::new(std::env::current_exe()?)
        .arg("--reader")
        .arg(path)
        .status()?;
    if !status.success() {
        return Err(format!("reader process failed: {status}").into());
    }

    // 5. Space accounting and memory.
    let s = channel.stats()?;
    println!("stats (generation {}):", s.generation);
    println!(
        "  file {:.2} MiB on disk for {:.2} GiB logical ({:.0}x smaller)",
        s.file_len as f64 / MIB,
        logical_bytes() / GIB,
        logical_bytes() / s.file_len as f64,
    );
    println!(
        "  live {:.2} MiB, dead {:.2} MiB (superseded tables)",
        s.live_bytes as f64 / MIB,
        s.dead_bytes as f64 / MIB,
    );
    println!(
        "  {} blob chunks, {} fill chunks ({:.2} GiB stand for the fill value)",
        s.blob_chunks,
        s.fill_chunks,
        s.fill_bytes as f64 / GIB,
    );
    let c = channel.compact()?;
    println!(
        "compact(): file {:.2} MiB -> {:.2} MiB ({:.2} MiB dead reclaimed)",
        c.file_len_before as f64 / MIB,
        c.file_len_after as f64 / MIB,
        c.reclaimed as f64 / MIB,
    );
    println!(
        "peak RSS of this process: {} (one chunk is {:.0} MiB); total {:.1?}",
        peak_rss(),
        channel.chunk_size() as f64 / MIB,
        start.elapsed(),
    );
    Ok(())
}

fn reader(path: &Path) -> DemoResult {
    let path: PathBuf = path.into();
    let channel = Channel::<f32>::open_read_only(&path)?;
    let s = channel.stats()?;
    println!(
        "  [reader pid {}] opened read-only at generation {}: {} x {} f32, {} chunks",
        std::process::id(),
        s.generation,
        channel.width(),
        channel.height(),
        channel.num_chunks(),
    );
    match Channel::<f32>::open(&path) {
        Err(Error::Locked { .. }) => {
            println!("  [reader] opening it for writing: Locked (the writer process holds it)")
        }
        Ok(_) => return Err("a second writer was let in".into()),
        Err(e) => return Err(e.into()),
    }
    let rows = channel.chunk_elems() / WIDTH;
    let mut buf = vec![0.0f32; channel.chunk_elems()];
    for index in EDITED {
        let chunk = &mut buf[..channel.chunk_elems_at(index)?];
        channel.get_chunk(index, chunk)?;
        let bad = pattern_mismatches(chunk, index * rows);
        if bad != 0 || channel.is_lazy(index)? {
            return Err(format!("reader: chunk {index} is wrong ({bad} elements differ)").into());
        }
        println!(
            "  [reader] chunk {index:4}: {} elements match the pattern, e.g. ({}, {}) = {}",
            chunk.len(),
            WIDTH / 2,
            index * rows,
            chunk[WIDTH / 2],
        );
    }
    let chunk = &mut buf[..channel.chunk_elems_at(LAZY)?];
    channel.get_chunk(LAZY, chunk)?;
    if !channel.is_lazy(LAZY)? || chunk.iter().any(|v| v.to_bits() != FILL.to_bits()) {
        return Err(format!("reader: chunk {LAZY} should be a lazy chunk of {FILL}").into());
    }
    println!(
        "  [reader] chunk {LAZY:4}: lazy (not stored), all {} elements read as {FILL}",
        chunk.len()
    );
    println!("  [reader] peak RSS: {}", peak_rss());
    Ok(())
}

fn logical_bytes() -> f64 {
    (WIDTH * HEIGHT * size_of::<f32>()) as f64
}

/// Peak resident set size of this process (`VmHWM` in /proc/self/status, Linux only).
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} MiB", kib / 1024.0))
        })
        .unwrap_or_else(|| "unknown (no /proc/self/status)".to_string())
}
