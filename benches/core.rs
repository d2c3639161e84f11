//! Core benchmarks of `compressed-image`: chunk reads against raw c-blosc2 and `memcpy`,
//! whole-channel decompression, chunk writes and their commit and sync costs, opening a file
//! and reading a single scanline. See `benches/README.md` for what each one measures.
//!
//! Run with `cargo bench --bench core`.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use compressed_image::{Channel, Settings};
#[path = "common/render.rs"]
mod render;
use render::render_like_rows;
#[path = "common/raw_blosc.rs"]
mod raw_blosc;
use raw_blosc::{RawCtx, blosc_init};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};

/// Width and height of the main test channel (f32, 64 MiB, 16 chunks of 4 MiB).
const SIDE: usize = 4096;
/// Width and height of the channel used by the `open` benchmarks (1 GiB, 256 chunks).
const BIG_SIDE: usize = 16384;
/// Every `BIG_STRIDE`-th chunk of the big channel holds compressed data; the rest are lazy.
const BIG_STRIDE: usize = 10;

// ---------------------------------------------------------------------------------------
// Raw c-blosc2 (benches/common/raw_blosc.rs), with the parameters the crate uses
// ---------------------------------------------------------------------------------------

/// The compressed chunks of `fx`, made by c-blosc2 directly with the crate's parameters.
fn raw_chunks(fx: &Fixture) -> Vec<Vec<u8>> {
    let mut cctx = RawCtx::compressor(4, 1);
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
        assert_eq!(c.num_chunks(), self.num_chunks);
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
    let channel = Channel::<f32>::open_read_only(&path).unwrap();
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

    let mut dctx = RawCtx::decompressor(1);
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
    // The default policy: every blob was checksummed by the correctness pass above.
    group.bench_function("channel_file_verified_1t", |b| {
        b.iter(|| {
            for i in 0..fx.num_chunks {
                channel.get_chunk(i, &mut buf).unwrap();
            }
            black_box(&buf);
        });
    });
    channel.set_checksum_policy(compressed_image::ChecksumPolicy::EveryRead);
    group.bench_function("channel_file_crc_every_read_1t", |b| {
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
        let channel = reader.clone();
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
    let mut cctx = RawCtx::compressor(4, 1);
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
        let channel = fx.create_file(&dir.path().join("commit.cimg"));
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
        let channel = fx.create_file(&dir.path().join("batch.cimg"));
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
    let channel = fx.create_file(&dir.path().join("sync.cimg"));
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
        let g = writer.geometry();
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
    let channel = Channel::<f32>::open_read_only(&path).unwrap();
    channel.set_threads(1).unwrap();
    let g = channel.geometry();
    // A row in the middle of chunk 5.
    let chunk = 5;
    let row = g.chunk_start_row(chunk) + g.rows_per_chunk() / 2 + 3;
    let mut row_buf = vec![0f32; SIDE];
    let mut chunk_buf = vec![0f32; fx.chunk_elems];
    channel.read_rows(row, &mut row_buf).unwrap();
    let expected = &fx.data[row * SIDE..(row + 1) * SIDE];
    assert!(row_buf == expected);
    // The same chunk compressed by c-blosc2 directly, for the raw baselines.
    let blob = RawCtx::compressor(4, 1).compress(bytemuck::cast_slice(fx.chunk(chunk)));
    let row_in_chunk = (row - g.chunk_start_row(chunk)) * SIDE;
    let mut dctx = RawCtx::decompressor(1);
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

// ---------------------------------------------------------------------------------------
// 6. Hot paths alone: a commit without a blob, a table lookup, one chunk's CRC
// ---------------------------------------------------------------------------------------

fn bench_hot_paths(c: &mut Criterion) {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let channel = fx.create_file(&dir.path().join("hot.cimg"));
    let constant = vec![0.25f32; fx.chunk_elems];
    let mut group = c.benchmark_group("hot_paths");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(2));
    // A constant chunk is stored as a fill entry: no compression and no blob, so this is
    // the commit alone (new table, catalog and slot records, publication) plus the bitwise
    // constant check, one memcmp over the 4 MiB input: an upper bound of a commit's cost.
    group.bench_function("commit_fill_chunk", |b| {
        let mut i = 0;
        b.iter(|| {
            channel.set_chunk(i % fx.num_chunks, &constant).unwrap();
            i += 1;
        });
    });
    group.bench_function("table_lookup_is_lazy", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % fx.num_chunks;
            black_box(channel.is_lazy(i).unwrap())
        });
    });
    let blob = RawCtx::compressor(4, 1).compress(bytemuck::cast_slice(fx.chunk(3)));
    group.throughput(Throughput::Bytes(blob.len() as u64));
    group.bench_function("crc32_one_blob", |b| {
        b.iter(|| black_box(crc32fast::hash(black_box(&blob))));
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
    bench_hot_paths(&mut c);
    c.final_summary();
}
