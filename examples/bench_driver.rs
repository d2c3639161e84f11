//! Rust worker of the side-by-side benchmark harness (`benches/harness/run.py`): measures
//! one metric of one system on one dataset and prints one JSON line. Systems: `memcpy` (the
//! limit), `blosc2-raw` (c-blosc2 on in-memory buffers, the upper bound for any container),
//! `cimg-file` (this crate, file-backed) and `cimg-anon` (this crate, anonymous file).
//!
//! ```text
//! bench_driver worker --system S --data PATH.raw --width W --height H --dtype f32|f16|u8|u32
//!                     --metric M --threads N --reps R --workdir DIR
//! bench_driver image --op OP --input PATH [--output PATH] --threads N
//! ```
//!
//! The `image` subcommand times one image-file import or export for the image-file
//! benchmark `benches/harness/images.py` (see `benches/common/image_ops.rs`).
//!
//! Every system uses the crate's default settings (LZ4 level 9, byte shuffle, 32 KiB blocks,
//! chunks of whole scanlines up to 4 MiB) and `--threads` threads: `set_threads(n)` on every
//! channel handle, `n` threads in the raw c-blosc2 contexts (`memcpy` has none). Constructors
//! have no thread argument: they use every CPU the process may run on, which the harness
//! limits to `n`. For the file-backed channel, `construct` and `rewrite` also report a
//! `*_durable` time: the same work followed by `sync()`.

#[path = "../benches/common/image_ops.rs"]
mod image_ops;
#[path = "../benches/common/raw_blosc.rs"]
mod raw_blosc;
#[path = "../benches/common/render.rs"]
mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use compressed_image::{AnyChannel, Channel, ChecksumPolicy, Dtype, Sample, Settings, f16};
use raw_blosc::RawCtx;

/// Chunk rows of a `width`-wide channel of `elem`-byte elements: whole scanlines up to 4 MiB.
fn rows_per_chunk(width: usize, elem: usize) -> usize {
    (Settings::default().chunk_size / (width * elem)).max(1)
}

/// The command line of one measurement.
struct Job {
    system: String,
    metric: String,
    data: PathBuf,
    width: usize,
    height: usize,
    dtype: Dtype,
    threads: usize,
    reps: usize,
    workdir: PathBuf,
}

/// One measurement's result: seconds (or bytes) per rep, free-form extras, and the values of
/// metrics measured on the way (the durable variants), per rep.
struct Outcome {
    unit: &'static str,
    values: Vec<f64>,
    extra: BTreeMap<&'static str, f64>,
    also: BTreeMap<&'static str, Vec<f64>>,
}

impl Outcome {
    fn seconds(values: Vec<f64>) -> Outcome {
        Outcome {
            unit: "s",
            values,
            extra: BTreeMap::new(),
            also: BTreeMap::new(),
        }
    }
}

/// The source image as raw bytes (in an allocation aligned for every element type, so the
/// typed API can borrow it), cut into chunks.
struct Source {
    words: Vec<u64>,
    len: usize,
    chunk_bytes: usize,
    elem: usize,
}

impl Source {
    fn read(path: &Path, len: usize, chunk_bytes: usize, elem: usize) -> Source {
        use std::io::Read;
        let mut file = std::fs::File::open(path).expect("open the dataset");
        let file_len = file.metadata().expect("dataset metadata").len();
        assert_eq!(file_len, len as u64, "dataset size");
        // Read straight into the aligned allocation: one copy of the data in memory.
        let mut words = vec![0u64; len.div_ceil(8)];
        let bytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len];
        file.read_exact(bytes).expect("read the dataset");
        Source {
            words,
            len,
            chunk_bytes,
            elem,
        }
    }
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
    fn num_chunks(&self) -> usize {
        self.len.div_ceil(self.chunk_bytes)
    }
    fn chunk(&self, i: usize) -> &[u8] {
        let end = ((i + 1) * self.chunk_bytes).min(self.len);
        &self.bytes()[i * self.chunk_bytes..end]
    }
}

fn time(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// 64 chunk indices from a fixed-seed xorshift.
fn random_indices(n: usize) -> Vec<usize> {
    let mut rng = render::XorShift32::new(0x5EED);
    (0..64)
        .map(|_| ((rng.next_centered() + 0.5) * n as f32) as usize % n)
        .collect()
}

// ---------------------------------------------------------------------------------------
// memcpy and raw c-blosc2
// ---------------------------------------------------------------------------------------

fn memcpy(job: &Job, src: &Source) -> Option<Outcome> {
    let n = src.num_chunks();
    let mut buf = vec![0u8; src.chunk_bytes];
    let stored: Vec<Vec<u8>> = (0..n).map(|i| src.chunk(i).to_vec()).collect();
    let read_all = |buf: &mut [u8]| {
        for (i, c) in stored.iter().enumerate() {
            buf[..c.len()].copy_from_slice(&stored[i]);
        }
    };
    let mut values = Vec::new();
    for _ in 0..job.reps {
        values.push(match job.metric.as_str() {
            "construct" => time(|| {
                std::hint::black_box((0..n).map(|i| src.chunk(i).to_vec()).collect::<Vec<_>>());
            }),
            "read_all" | "read_all_again" => time(|| read_all(&mut buf)),
            // A plain zeroed vector (4 KiB pages), as a caller's own buffer would be.
            "decompress" => time(|| {
                let mut out = vec![0u8; src.len];
                for (i, c) in stored.iter().enumerate() {
                    out[i * src.chunk_bytes..][..c.len()].copy_from_slice(c);
                }
                std::hint::black_box(out);
            }),
            "rewrite" => {
                let mut stored = stored.clone();
                time(|| {
                    for (i, c) in stored.iter_mut().enumerate() {
                        c.copy_from_slice(src.chunk(i));
                    }
                })
            }
            "random" => median(
                random_indices(n)
                    .into_iter()
                    .map(|i| time(|| buf[..stored[i].len()].copy_from_slice(&stored[i])))
                    .collect(),
            ),
            _ => return None,
        });
    }
    Some(Outcome::seconds(values))
}

fn blosc2_raw(job: &Job, src: &Source) -> Option<Outcome> {
    let n = src.num_chunks();
    let mut cctx = RawCtx::compressor(src.elem, job.threads);
    let mut dctx = RawCtx::decompressor(job.threads);
    let mut stored: Vec<Vec<u8>> = (0..n).map(|i| cctx.compress(src.chunk(i))).collect();
    let mut buf = vec![0u8; src.chunk_bytes];
    let mut values = Vec::new();
    for _ in 0..job.reps {
        values.push(match job.metric.as_str() {
            "construct" => time(|| {
                std::hint::black_box(
                    (0..n)
                        .map(|i| cctx.compress(src.chunk(i)))
                        .collect::<Vec<_>>(),
                );
            }),
            "read_all" | "read_all_again" => time(|| {
                for (i, c) in stored.iter().enumerate() {
                    dctx.decompress(c, &mut buf[..src.chunk(i).len()]);
                }
            }),
            "decompress" => time(|| {
                let mut out = vec![0u8; src.len];
                for (c, part) in stored.iter().zip(out.chunks_mut(src.chunk_bytes)) {
                    dctx.decompress(c, part);
                }
                std::hint::black_box(out);
            }),
            "rewrite" => time(|| {
                for (i, c) in stored.iter_mut().enumerate() {
                    *c = cctx.compress(src.chunk(i));
                }
            }),
            "random" => median(
                random_indices(n)
                    .into_iter()
                    .map(|i| time(|| dctx.decompress(&stored[i], &mut buf[..src.chunk(i).len()])))
                    .collect(),
            ),
            _ => return None,
        });
    }
    Some(Outcome::seconds(values))
}

// ---------------------------------------------------------------------------------------
// This crate
// ---------------------------------------------------------------------------------------

/// A channel of `src` at `path` (`None`: anonymous), created through the typed API.
fn create_channel<T: Sample>(src: &Source, path: Option<&Path>, job: &Job) -> AnyChannel {
    let data: &[T] = bytemuck::cast_slice(src.bytes());
    let settings = Settings::default();
    let channel = match path {
        Some(p) => Channel::<T>::create(p, data, job.width, job.height, settings),
        None => Channel::<T>::new(data, job.width, job.height, settings),
    };
    channel.expect("create the channel").into_any()
}

fn create_any(src: &Source, path: Option<&Path>, job: &Job) -> AnyChannel {
    match job.dtype {
        Dtype::F32 => create_channel::<f32>(src, path, job),
        Dtype::F16 => create_channel::<f16>(src, path, job),
        Dtype::U8 => create_channel::<u8>(src, path, job),
        Dtype::U32 => create_channel::<u32>(src, path, job),
        other => panic!("dtype {other:?} is not a harness dataset type"),
    }
}

/// Time of `get_decompressed` (a new vector of the whole channel).
fn get_decompressed<T: Sample>(ch: AnyChannel) -> f64 {
    let ch = Channel::<T>::try_from_any(ch).expect("the dataset's element type");
    time(|| {
        std::hint::black_box(ch.get_decompressed().unwrap());
    })
}

fn read_all(ch: &AnyChannel, buf: &mut [u8]) {
    for i in 0..ch.num_chunks() {
        let len = ch.chunk_size_at(i).unwrap();
        ch.get_chunk_bytes(i, &mut buf[..len]).unwrap();
    }
}

fn rewrite(ch: &AnyChannel, src: &Source) {
    for i in 0..src.num_chunks() {
        ch.set_chunk_bytes(i, src.chunk(i)).unwrap();
    }
}

/// `ch` working on `threads` threads.
fn on_threads(ch: AnyChannel, threads: usize) -> AnyChannel {
    ch.set_threads(threads).unwrap();
    ch
}

/// A scratch channel file, removed with its lock file however the measurement ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut lock = self.0.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(lock);
    }
}

fn cimg(job: &Job, src: &Source, file_backed: bool) -> Option<Outcome> {
    let scratch = Scratch(
        job.workdir
            .join(format!("bench-driver-{}.cimg", std::process::id())),
    );
    let path = scratch.0.clone();
    let file = file_backed.then_some(path.as_path());
    let mut extra = BTreeMap::new();
    let mut also = BTreeMap::new();
    // A channel to read from: a fresh read-only handle on a file, or the anonymous one.
    let reader = || -> AnyChannel {
        let ch = match file {
            Some(p) => AnyChannel::open_read_only(p).unwrap(),
            None => create_any(src, None, job),
        };
        on_threads(ch, job.threads)
    };
    if file.is_some() && job.metric != "construct" && job.metric != "lazy_rss" {
        drop(create_any(src, file, job)); // dropping the writer syncs
    }
    let mut buf = vec![0u8; src.chunk_bytes];
    let mut values = Vec::new();
    for _ in 0..job.reps {
        values.push(match job.metric.as_str() {
            "construct" => {
                let mut ch = None;
                let commit = time(|| ch = Some(create_any(src, file, job)));
                let ch = ch.unwrap();
                if file.is_some() {
                    let durable = commit + time(|| ch.sync().unwrap());
                    also.entry("construct_durable")
                        .or_insert_with(Vec::new)
                        .push(durable);
                }
                let bytes = ch.compressed_bytes().unwrap();
                extra.insert("compressed_bytes", bytes as f64);
                drop(ch);
                commit
            }
            "read_all" => {
                let ch = reader();
                time(|| read_all(&ch, &mut buf))
            }
            "read_all_again" => {
                let ch = reader();
                read_all(&ch, &mut buf);
                time(|| read_all(&ch, &mut buf))
            }
            "read_all_every_crc" => {
                let ch = reader();
                ch.set_checksum_policy(ChecksumPolicy::EveryRead);
                read_all(&ch, &mut buf);
                time(|| read_all(&ch, &mut buf))
            }
            "decompress" => {
                let ch = reader();
                match job.dtype {
                    Dtype::F32 => get_decompressed::<f32>(ch),
                    Dtype::F16 => get_decompressed::<f16>(ch),
                    Dtype::U8 => get_decompressed::<u8>(ch),
                    _ => get_decompressed::<u32>(ch),
                }
            }
            "rewrite" => {
                let ch = match file {
                    Some(p) => AnyChannel::open(p).unwrap(),
                    None => create_any(src, None, job),
                };
                let ch = on_threads(ch, job.threads);
                let t = time(|| rewrite(&ch, src));
                if file.is_some() {
                    let durable = t + time(|| ch.sync().unwrap());
                    also.entry("rewrite_durable")
                        .or_insert_with(Vec::new)
                        .push(durable);
                }
                t
            }
            "random" => {
                let ch = reader();
                median(
                    random_indices(src.num_chunks())
                        .into_iter()
                        .map(|i| {
                            let len = ch.chunk_size_at(i).unwrap();
                            time(|| ch.get_chunk_bytes(i, &mut buf[..len]).unwrap())
                        })
                        .collect(),
                )
            }
            "open" if file.is_some() => {
                let opens: Vec<f64> = (0..50)
                    .map(|_| {
                        time(|| {
                            let ch = AnyChannel::open_read_only(&path).unwrap();
                            std::hint::black_box(ch.num_chunks());
                        })
                    })
                    .collect();
                extra.insert("chunks", src.num_chunks() as f64);
                median(opens)
            }
            "lazy_rss" if file.is_some() => return Some(lazy_rss(&path)),
            "size_rewrites" if file.is_some() => {
                let ch = on_threads(AnyChannel::open(&path).unwrap(), job.threads);
                for _ in 0..6 {
                    rewrite(&ch, src);
                }
                ch.sync().unwrap();
                let after = std::fs::metadata(&path).unwrap().len() as f64;
                ch.compact().unwrap();
                extra.insert("after_rewrites", after);
                extra.insert(
                    "after_compact",
                    std::fs::metadata(&path).unwrap().len() as f64,
                );
                extra.insert("live", ch.stats().unwrap().live_bytes as f64);
                return Some(Outcome {
                    unit: "bytes",
                    values: vec![after],
                    extra,
                    also,
                });
            }
            _ => return None,
        });
    }
    Some(Outcome {
        unit: "s",
        values,
        extra,
        also,
    })
}

/// The bytes of the `key` line (in kB there, e.g. `RssAnon:`) of `/proc/self/status`, NaN
/// where it is missing.
fn proc_status_bytes(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib * 1024.0)
}

/// Anonymous resident memory of this process.
fn rss_anon() -> f64 {
    proc_status_bytes("RssAnon:")
}

/// Peak anonymous RSS while a lazy 16384² f32 channel file gets every 10th chunk set.
fn lazy_rss(path: &Path) -> Outcome {
    const SIDE: usize = 16384;
    let baseline = rss_anon();
    let ch = Channel::<f32>::create_full(path, SIDE, SIDE, 0.0, Settings::default()).unwrap();
    let mut peak = rss_anon();
    let g = ch.geometry();
    let mut set = 0;
    for i in (0..g.num_chunks()).step_by(10) {
        let rows = render::render_like_rows(SIDE, SIDE, g.chunk_start_row(i), g.chunk_rows(i));
        ch.set_chunk(i, &rows).unwrap();
        set += 1;
        peak = peak.max(rss_anon());
    }
    ch.sync().unwrap();
    peak = peak.max(rss_anon());
    drop(ch);
    let mut extra = BTreeMap::new();
    extra.insert("baseline", baseline);
    extra.insert("peak", peak);
    extra.insert("chunks_set", set as f64);
    Outcome {
        unit: "bytes",
        values: vec![peak - baseline],
        extra,
        also: BTreeMap::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

const USAGE: &str = "usage: bench_driver worker --system S --data PATH --width W --height H \
                     --dtype D --metric M --threads N --reps R --workdir DIR\n       \
                     bench_driver image --op OP --input PATH [--output PATH] --threads N";

/// `--key value` pairs after the subcommand.
fn options(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut opts = BTreeMap::new();
    for pair in args.chunks(2) {
        let [key, value] = pair else {
            return Err(format!("option {} has no value", pair[0]));
        };
        let key = key
            .strip_prefix("--")
            .ok_or(format!("not an option: {key}"))?;
        opts.insert(key.to_string(), value.clone());
    }
    Ok(opts)
}

/// `--threads`, at least 1.
fn thread_count(opts: &BTreeMap<String, String>) -> Result<usize, String> {
    let value = opts.get("threads").ok_or("missing --threads")?;
    match value.parse::<usize>() {
        Ok(0) => Err("--threads must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("--threads: {e}")),
    }
}

fn parse(opts: &BTreeMap<String, String>) -> Result<Job, String> {
    let get = |k: &str| opts.get(k).cloned().ok_or(format!("missing --{k}"));
    let num =
        |k: &str| -> Result<usize, String> { get(k)?.parse().map_err(|e| format!("--{k}: {e}")) };
    let dtype = match get("dtype")?.as_str() {
        "f32" => Dtype::F32,
        "f16" => Dtype::F16,
        "u8" => Dtype::U8,
        "u32" => Dtype::U32,
        other => return Err(format!("unsupported --dtype {other}")),
    };
    Ok(Job {
        system: get("system")?,
        metric: get("metric")?,
        data: get("data")?.into(),
        width: num("width")?,
        height: num("height")?,
        dtype,
        threads: thread_count(opts)?,
        reps: num("reps")?.max(1),
        workdir: get("workdir")?.into(),
    })
}

/// The `image` subcommand: one image-file operation, its JSON line on stdout.
fn image_main(opts: &BTreeMap<String, String>) -> ExitCode {
    let job = match image_ops::ImageJob::from_options(opts) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match job.run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let subcommand = args.first().map(String::as_str);
    let opts = match options(args.get(1..).unwrap_or_default()) {
        Ok(opts) if matches!(subcommand, Some("worker" | "image")) => opts,
        Ok(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if subcommand == Some("image") {
        return image_main(&opts);
    }
    let job = match parse(&opts) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let elem = job.dtype.size();
    let chunk_bytes = rows_per_chunk(job.width, elem) * job.width * elem;
    let src = Source::read(&job.data, job.width * job.height * elem, chunk_bytes, elem);
    let outcome = match job.system.as_str() {
        "memcpy" => memcpy(&job, &src),
        "blosc2-raw" => blosc2_raw(&job, &src),
        "cimg-file" => cimg(&job, &src, true),
        "cimg-anon" => cimg(&job, &src, false),
        other => {
            eprintln!("unknown --system {other}");
            return ExitCode::from(2);
        }
    };
    let line = match outcome {
        None => serde_json::json!({
            "system": job.system, "metric": job.metric,
            "skipped": "no such metric for this system",
        }),
        Some(o) => serde_json::json!({
            "system": job.system, "metric": job.metric, "threads": job.threads, "unit": o.unit,
            "values": o.values, "extra": o.extra, "also": o.also,
        }),
    };
    println!("{line}");
    ExitCode::SUCCESS
}
