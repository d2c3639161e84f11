//! Core benchmarks of `compressed-image`: chunk reads against raw c-blosc2 and `memcpy`,
//! whole-channel decompression, chunk writes and their commit and sync costs, opening a file
//! and reading a single scanline. See `benches/README.md` for what each one measures.
//!
//! Run with `cargo bench --bench core`.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Once;
use std::time::{Duration, Instant};

use blosc2_sys as sys;
use compressed_image::{Channel, Settings};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};

/// Width and height of the main test channel (f32, 64 MiB, 16 chunks of 4 MiB).
const SIDE: usize = 4096;
/// Width and height of the channel used by the `open` benchmarks (1 GiB, 256 chunks).
const BIG_SIDE: usize = 16384;
/// Every `BIG_STRIDE`-th chunk of the big channel holds compressed data; the rest are lazy.
const BIG_STRIDE: usize = 10;

// ---------------------------------------------------------------------------------------
// Deterministic "render-like" data
// ---------------------------------------------------------------------------------------

/// A 32-bit xorshift generator (Marsaglia): deterministic, no dependency.
struct XorShift32(u32);

impl XorShift32 {
    fn new(seed: u32) -> Self {
        XorShift32(seed | 1) // never zero
    }
    /// Uniform in [-0.5, 0.5).
    fn next_centered(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }
}

/// Rows `first_row .. first_row + rows` of a `width × height` f32 image that looks like a
/// rendered frame: smooth sin/cos gradients, a soft light falloff and low-amplitude noise.
/// Every row depends only on its own index, so any band of rows is reproducible alone.
fn render_like_rows(width: usize, height: usize, first_row: usize, rows: usize) -> Vec<f32> {
    use std::f32::consts::TAU;
    let (w, h) = (width as f32, height as f32);
    // The terms are separable in x and y, so precompute them per column.
    let cols: Vec<[f32; 5]> = (0..width)
        .map(|x| {
            let u = x as f32 / w;
            let du = u - 0.35;
            [
                (TAU * 1.5 * u + 0.7).sin(),
                (TAU * 0.6 * u).cos(),
                (TAU * 0.6 * u).sin(),
                (-du * du / 0.08).exp(),
                u,
            ]
        })
        .collect();
    let mut out = Vec::with_capacity(width * rows);
    for y in first_row..first_row + rows {
        let v = y as f32 / h;
        let dv = v - 0.4;
        let cy = (TAU * 1.1 * v).cos();
        let (s2, c2) = (TAU * 0.9 * v).sin_cos();
        let light_y = (-dv * dv / 0.08).exp();
        let mut rng = XorShift32::new((y as u32).wrapping_mul(0x9E37_79B9) ^ 0x85EB_CA6B);
        out.extend(cols.iter().map(|&[sx, cx, sxx, light_x, u]| {
            // cos(a + b) = cos a cos b − sin a sin b: a diagonal gradient.
            let diagonal = cx * c2 - sxx * s2;
            let base = 0.5 + 0.25 * sx * cy + 0.15 * diagonal + 0.1 * u;
            let light = 0.8 * light_x * light_y;
            base + light + 0.004 * rng.next_centered()
        }));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Raw c-blosc2, with the parameters the crate uses (src/blosc/ffi.rs)
// ---------------------------------------------------------------------------------------

/// `blosc2_init` once, from this process's first benchmark setup.
fn blosc_init() {
    static INIT: Once = Once::new();
    // SAFETY: `blosc2_init` has no preconditions and returns early once the library is
    // initialised (the crate calls it too). It runs during single-threaded benchmark setup,
    // while no other thread is inside c-blosc2: every crate call made so far has returned.
    INIT.call_once(|| unsafe { sys::blosc2_init() });
}

/// An owned c-blosc2 context; the pointer is non-null and freed once, in `Drop`.
struct RawCtx(NonNull<sys::blosc2_context>);

impl Drop for RawCtx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `blosc2_create_*ctx`, is owned by `self` and is not
        // used after this call.
        unsafe { sys::blosc2_free_ctx(self.0.as_ptr()) }
    }
}

impl RawCtx {
    /// A compression context: lz4, level 9, typesize 4, 32 KiB blocks, automatic split,
    /// byte shuffle in filter slot 5, one thread. The crate's default `Settings` for f32.
    fn lz4_f32_compressor() -> RawCtx {
        blosc_init();
        // SAFETY: returns a plain struct of default values; no preconditions.
        let mut cparams = unsafe { sys::blosc2_get_blosc2_cparams_defaults() };
        cparams.compcode = sys::BLOSC_LZ4 as u8;
        cparams.clevel = 9;
        cparams.typesize = 4;
        cparams.blocksize = 32 * 1024;
        cparams.splitmode = sys::BLOSC_AUTO_SPLIT as i32;
        cparams.filters = [0, 0, 0, 0, 0, sys::BLOSC_SHUFFLE as u8];
        cparams.nthreads = 1;
        // SAFETY: `cparams` is fully initialised: the library's defaults (null pointer
        // fields) with plain values set above. The result is checked for null.
        let ptr = unsafe { sys::blosc2_create_cctx(cparams) };
        RawCtx(NonNull::new(ptr).expect("blosc2_create_cctx failed"))
    }

    /// A decompression context with one thread.
    fn decompressor() -> RawCtx {
        blosc_init();
        // SAFETY: returns a plain struct of default values; no preconditions.
        let mut dparams = unsafe { sys::blosc2_get_blosc2_dparams_defaults() };
        dparams.nthreads = 1;
        // SAFETY: `dparams` is fully initialised (defaults plus a thread count). The result
        // is checked for null.
        let ptr = unsafe { sys::blosc2_create_dctx(dparams) };
        RawCtx(NonNull::new(ptr).expect("blosc2_create_dctx failed"))
    }

    /// Compress `src` into a new, exactly sized vector.
    fn compress(&mut self, src: &[u8]) -> Vec<u8> {
        let cap = src.len() + sys::BLOSC2_MAX_OVERHEAD as usize;
        let mut dst = Vec::<u8>::with_capacity(cap);
        let src_len = i32::try_from(src.len()).expect("chunk below 2 GiB");
        let cap_i32 = i32::try_from(cap).expect("chunk below 2 GiB");
        // SAFETY: the context is live and used by this thread only (`&mut self`); `src` is
        // readable for `src_len` bytes; `dst` has `cap` bytes of spare capacity and c-blosc2
        // writes at most `destsize` bytes; the buffers are distinct allocations.
        let written = unsafe {
            sys::blosc2_compress_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                src_len,
                dst.as_mut_ptr().cast(),
                cap_i32,
            )
        };
        assert!(written > 0, "blosc2_compress_ctx returned {written}");
        let written = written as usize;
        assert!(written <= cap);
        // SAFETY: c-blosc2 initialised the first `written` bytes (its return value), and
        // `written <= cap <= dst.capacity()`.
        unsafe { dst.set_len(written) };
        dst
    }

    /// Decompress the blosc2 chunk `src` into `dst` (exactly its uncompressed length).
    fn decompress(&mut self, src: &[u8], dst: &mut [u8]) {
        let src_len = i32::try_from(src.len()).expect("chunk below 2 GiB");
        let dst_len = i32::try_from(dst.len()).expect("chunk below 2 GiB");
        // SAFETY: the context is live and used by this thread only (`&mut self`); `src` is a
        // complete chunk produced by `compress` above, readable for `src_len` bytes; `dst` is
        // writable for `dst_len` bytes, which c-blosc2 never exceeds; a shared and an
        // exclusive slice cannot overlap.
        let n = unsafe {
            sys::blosc2_decompress_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                src_len,
                dst.as_mut_ptr().cast(),
                dst_len,
            )
        };
        assert_eq!(n, dst_len, "blosc2_decompress_ctx");
    }

    /// Decode items `start .. start + dst.len() / 4` of the f32 chunk `src` into `dst`,
    /// touching only the blocks that hold them (what the crate's `read_rows` calls).
    fn get_items_f32(&mut self, src: &[u8], start: usize, dst: &mut [u8]) {
        let src_len = i32::try_from(src.len()).expect("chunk below 2 GiB");
        let dst_len = i32::try_from(dst.len()).expect("chunk below 2 GiB");
        let start = i32::try_from(start).expect("chunk below 2 GiB");
        let nitems = dst_len / 4;
        // SAFETY: as for `decompress`; c-blosc2 checks `start + nitems` against the chunk
        // header's `nbytes` and writes at most `destsize` bytes.
        let n = unsafe {
            sys::blosc2_getitem_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                src_len,
                start,
                nitems,
                dst.as_mut_ptr().cast(),
                dst_len,
            )
        };
        assert_eq!(n, dst_len, "blosc2_getitem_ctx");
    }
}

/// The compressed chunks of `fx`, made by c-blosc2 directly with the crate's parameters.
fn raw_chunks(fx: &Fixture) -> Vec<Vec<u8>> {
    let mut cctx = RawCtx::lz4_f32_compressor();
    (0..fx.num_chunks)
        .map(|i| cctx.compress(bytemuck::cast_slice(fx.chunk(i))))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// The 4096 × 4096 f32 render-like image and its chunk layout under the default settings.
struct Fixture {
    data: Vec<f32>,
    chunk_elems: usize,
    num_chunks: usize,
}

impl Fixture {
    fn new() -> Fixture {
        let data = render_like_rows(SIDE, SIDE, 0, SIDE);
        let chunk_elems = Settings::default().chunk_size / size_of::<f32>();
        assert_eq!(data.len() % chunk_elems, 0);
        Fixture {
            num_chunks: data.len() / chunk_elems,
            data,
            chunk_elems,
        }
    }
    fn chunk(&self, index: usize) -> &[f32] {
        &self.data[index * self.chunk_elems..(index + 1) * self.chunk_elems]
    }
    fn total_bytes(&self) -> u64 {
        (self.data.len() * size_of::<f32>()) as u64
    }
    /// A new channel file holding the image, with the default settings.
    fn create_file(&self, path: &Path) -> Channel<f32> {
        let c = Channel::create(path, &self.data, SIDE, SIDE, Settings::default())
            .expect("create channel file");
        assert_eq!(c.num_chunks().unwrap(), self.num_chunks);
        c
    }
}

fn mib(bytes: impl Into<f64>) -> f64 {
    bytes.into() / (1024.0 * 1024.0)
}

/// Settings for benchmarks whose single iteration takes tens to hundreds of milliseconds.
fn slow(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
}

// ---------------------------------------------------------------------------------------
// 1. Chunk reads: file-backed channel vs raw c-blosc2 vs memcpy
// ---------------------------------------------------------------------------------------

fn bench_get_chunk(c: &mut Criterion) {
    blosc_init();
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("get_chunk.cimg");
    drop(fx.create_file(&path)); // dropping the writer syncs the file
    let mut channel = Channel::<f32>::open_read_only(&path).unwrap();
    channel.set_threads(1).unwrap();

    // The same chunks, compressed by c-blosc2 directly with the crate's parameters.
    let raw = raw_chunks(&fx);
    let raw_total: usize = raw.iter().map(Vec::len).sum();
    assert_eq!(
        raw_total,
        channel.compressed_bytes().unwrap(),
        "raw c-blosc2 chunks differ in size from the crate's: parameters differ"
    );
    eprintln!(
        "fixture: {SIDE}x{SIDE} f32, {} chunks of {:.0} MiB, compressed {:.2} MiB (ratio {:.2})",
        fx.num_chunks,
        mib(fx.chunk_elems as f64 * 4.0),
        mib(raw_total as f64),
        fx.total_bytes() as f64 / raw_total as f64
    );

    let mut dctx = RawCtx::decompressor();
    let mut buf = vec![0f32; fx.chunk_elems];
    // Correctness of every path before timing it.
    for (i, blob) in raw.iter().enumerate() {
        channel.get_chunk(i, &mut buf).unwrap();
        assert!(buf == fx.chunk(i), "channel chunk {i} differs");
        dctx.decompress(blob, bytemuck::cast_slice_mut(&mut buf));
        assert!(buf == fx.chunk(i), "raw chunk {i} differs");
    }

    let mut group = c.benchmark_group("get_chunk_all");
    group.throughput(Throughput::Bytes(fx.total_bytes()));
    slow(&mut group);
    group.bench_function("channel_file_1t", |b| {
        b.iter(|| {
            for i in 0..fx.num_chunks {
                channel.get_chunk(i, &mut buf).unwrap();
            }
            black_box(&buf);
        });
    });
    group.bench_function("raw_blosc2_1t", |b| {
        b.iter(|| {
            for blob in &raw {
                dctx.decompress(blob, bytemuck::cast_slice_mut(&mut buf));
            }
            black_box(&buf);
        });
    });
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            for i in 0..fx.num_chunks {
                buf.copy_from_slice(black_box(fx.chunk(i)));
            }
            black_box(&buf);
        });
    });
    // Not a read path: only the CRC-32 that every chunk read verifies over its compressed
    // blob (crc32fast, as the crate uses). Same throughput basis (uncompressed bytes) so
    // times compare directly.
    group.bench_function("crc32_of_blobs_only", |b| {
        b.iter(|| {
            for blob in &raw {
                black_box(crc32fast::hash(black_box(blob)));
            }
        });
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// 2. Whole-channel decompression
// ---------------------------------------------------------------------------------------

fn bench_get_decompressed(c: &mut Criterion) {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decompressed.cimg");
    drop(fx.create_file(&path));
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    assert!(reader.get_decompressed().unwrap() == fx.data);

    let mut group = c.benchmark_group("get_decompressed");
    group.throughput(Throughput::Bytes(fx.total_bytes()));
    slow(&mut group);
    for threads in [1, 2] {
        let mut channel = reader.clone();
        channel.set_threads(threads).unwrap();
        // Allocates and returns the 64 MiB vector; its drop is not timed.
        group.bench_function(format!("threads_{threads}"), |b| {
            b.iter_with_large_drop(|| channel.get_decompressed().unwrap());
        });
        // The same decode into one reused 64 MiB buffer: no allocation, no page faults.
        let mut out = vec![0f32; fx.data.len()];
        group.bench_function(format!("decompress_into_reused_threads_{threads}"), |b| {
            b.iter(|| channel.decompress_into(&mut out).unwrap());
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------
// 3. Chunk writes: one commit per chunk, one batch, and the cost of sync
// ---------------------------------------------------------------------------------------

fn rewrite_all(channel: &Channel<f32>, fx: &Fixture) {
    for i in 0..fx.num_chunks {
        channel.set_chunk(i, fx.chunk(i)).unwrap();
    }
}

fn bench_set_chunk(c: &mut Criterion) {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();

    let mut group = c.benchmark_group("set_chunk_all");
    group.throughput(Throughput::Bytes(fx.total_bytes()));
    slow(&mut group);

    // Baseline: c-blosc2 compression alone, same parameters, one thread, into owned vectors.
    let mut cctx = RawCtx::lz4_f32_compressor();
    group.bench_function("raw_blosc2_compress_1t", |b| {
        b.iter(|| {
            for i in 0..fx.num_chunks {
                black_box(cctx.compress(bytemuck::cast_slice(fx.chunk(i))));
            }
        });
    });
    drop(cctx);

    // Baseline: appending the same compressed bytes to a file with plain `write_all` (what
    // a commit must at least do besides compressing). Synced untimed after each sample.
    let raw = raw_chunks(&fx);
    let mut file = std::fs::File::create(dir.path().join("append.bin")).unwrap();
    group.bench_function("append_blobs_only", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for blob in &raw {
                    file.write_all(blob).unwrap();
                }
            }
            let elapsed = start.elapsed();
            file.sync_data().unwrap();
            elapsed
        });
    });
    drop((raw, file));

    // Each writer gets a fresh file (writes append; the file grows by the compressed size per
    // rewrite). After each sample the file is synced, untimed, so dirty pages from one sample
    // are not written back during the next: the timed part is compress + append + commit.
    {
        let mut channel = fx.create_file(&dir.path().join("commit.cimg"));
        channel.set_threads(1).unwrap();
        group.bench_function("commit_each_1t", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    rewrite_all(&channel, &fx);
                }
                let elapsed = start.elapsed();
                channel.sync().unwrap();
                elapsed
            });
        });
    }
    {
        let mut channel = fx.create_file(&dir.path().join("batch.cimg"));
        channel.set_threads(1).unwrap();
        group.bench_function("one_batch_1t", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut batch = channel.batch().unwrap();
                    for i in 0..fx.num_chunks {
                        batch.set_chunk(i, fx.chunk(i)).unwrap();
                    }
                    batch.commit().unwrap();
                }
                let elapsed = start.elapsed();
                channel.sync().unwrap();
                elapsed
            });
        });
    }
    group.finish();

    // Durability: only `sync()` is timed, each time after an untimed rewrite of every chunk
    // (one commit per chunk), so each sync flushes one full rewrite: ~the compressed size.
    let mut group = c.benchmark_group("sync_after_rewrite");
    group.throughput(Throughput::Bytes(fx.total_bytes()));
    slow(&mut group);
    let mut channel = fx.create_file(&dir.path().join("sync.cimg"));
    channel.set_threads(1).unwrap();
    channel.sync().unwrap();
    group.bench_function("sync", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                rewrite_all(&channel, &fx);
                let start = Instant::now();
                channel.sync().unwrap();
                elapsed += start.elapsed();
            }
            elapsed
        });
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// 4. Opening a 256-chunk file, and refresh with nothing new
// ---------------------------------------------------------------------------------------

fn bench_open(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.cimg");
    {
        let writer =
            Channel::<f32>::create_full(&path, BIG_SIDE, BIG_SIDE, 0.0, Settings::default())
                .unwrap();
        let g = writer.geometry().unwrap();
        assert_eq!(g.num_chunks(), 256);
        let mut batch = writer.batch().unwrap();
        for i in (0..g.num_chunks()).step_by(BIG_STRIDE) {
            let rows = render_like_rows(BIG_SIDE, BIG_SIDE, g.chunk_start_row(i), g.chunk_rows(i));
            batch.set_chunk(i, &rows).unwrap();
        }
        batch.commit().unwrap();
        writer.sync().unwrap();
        let stats = writer.stats().unwrap();
        eprintln!(
            "open fixture: {BIG_SIDE}x{BIG_SIDE} f32, 256 chunks, {} blobs, file {:.1} MiB",
            stats.blob_chunks,
            mib(stats.file_len as f64)
        );
    }

    let mut group = c.benchmark_group("open_256_chunks");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("open_read_only", |b| {
        // The handle's drop (unmap, close) is not timed.
        b.iter_with_large_drop(|| Channel::<f32>::open_read_only(&path).unwrap());
    });
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    group.bench_function("refresh_unchanged", |b| {
        b.iter(|| assert!(!reader.refresh().unwrap()));
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// 5. One scanline: read_rows vs decoding its whole chunk
// ---------------------------------------------------------------------------------------

fn bench_one_row(c: &mut Criterion) {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.cimg");
    drop(fx.create_file(&path));
    let mut channel = Channel::<f32>::open_read_only(&path).unwrap();
    channel.set_threads(1).unwrap();
    let g = channel.geometry().unwrap();
    // A row in the middle of chunk 5.
    let chunk = 5;
    let row = g.chunk_start_row(chunk) + g.rows_per_chunk() / 2 + 3;
    let mut row_buf = vec![0f32; SIDE];
    let mut chunk_buf = vec![0f32; fx.chunk_elems];
    channel.read_rows(row, &mut row_buf).unwrap();
    let expected = &fx.data[row * SIDE..(row + 1) * SIDE];
    assert!(row_buf == expected);
    // The same chunk compressed by c-blosc2 directly, for the raw baselines.
    let blob = RawCtx::lz4_f32_compressor().compress(bytemuck::cast_slice(fx.chunk(chunk)));
    let row_in_chunk = (row - g.chunk_start_row(chunk)) * SIDE;
    let mut dctx = RawCtx::decompressor();
    dctx.get_items_f32(&blob, row_in_chunk, bytemuck::cast_slice_mut(&mut row_buf));
    assert!(row_buf == expected);

    let mut group = c.benchmark_group("one_row");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Bytes((SIDE * size_of::<f32>()) as u64));
    group.bench_function("read_rows_1row", |b| {
        b.iter(|| channel.read_rows(black_box(row), &mut row_buf).unwrap());
    });
    group.bench_function("raw_blosc2_getitem_1row", |b| {
        b.iter(|| {
            dctx.get_items_f32(
                &blob,
                black_box(row_in_chunk),
                bytemuck::cast_slice_mut(&mut row_buf),
            );
        });
    });
    // The CRC-32 of the chunk's compressed blob, which every read of the chunk verifies
    // (throughput basis: the row, so the time compares with `read_rows_1row`).
    group.bench_function("crc32_of_blob_only", |b| {
        b.iter(|| black_box(crc32fast::hash(black_box(&blob))));
    });
    group.throughput(Throughput::Bytes(
        (fx.chunk_elems * size_of::<f32>()) as u64,
    ));
    group.bench_function("get_chunk_containing_1t", |b| {
        b.iter(|| channel.get_chunk(black_box(chunk), &mut chunk_buf).unwrap());
    });
    group.finish();
}

fn main() {
    // What `criterion_group!` + `criterion_main!` expand to, written out so the generated
    // public function does not trip the crate's `missing_docs` lint.
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_get_chunk(&mut c);
    bench_get_decompressed(&mut c);
    bench_set_chunk(&mut c);
    bench_open(&mut c);
    bench_one_row(&mut c);
    c.final_summary();
}
