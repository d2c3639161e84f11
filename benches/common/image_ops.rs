//! The image-file operations of `examples/bench_driver.rs` (included by `#[path]`), for the
//! image-file benchmark `benches/harness/images.py`:
//!
//! ```text
//! bench_driver image --op import-anon|import-file|exr-decode|export --input PATH
//!                    [--output PATH] --threads N
//! ```
//!
//! - `import-anon`: `AnyImage::read` of the file into an anonymous image, each channel of
//!   its own type, default settings (LZ4 level 9, byte shuffle, 32 KiB blocks, 4 MiB
//!   chunks); timed: the call.
//! - `import-file`: the same into the named file `--output`; timed: the call and dropping
//!   the handle (the call has made the file durable and renamed it into place).
//! - `exr-decode`: the `exr` crate alone decoding the whole OpenEXR file into memory (its
//!   flat-layers reader, blocks decompressed in parallel): the floor of any OpenEXR import.
//! - `export`: `AnyImage::write` of the .cimg file `--input` to `--output`, the format
//!   from its extension with the default options (OpenEXR: ZIP; TIFF: Deflate with the
//!   predictor; PNG), after `set_threads(N)`; timed: the call (which makes the file durable).
//!
//! The imports and the `exr` crate have no thread argument: they use every CPU the process
//! may run on, which the harness limits to `N`; `available_parallelism` in the output shows
//! what they saw. Prints one JSON line `{"op", "threads", "seconds", "extra"}`, where
//! `extra` holds `vm_hwm_bytes` (the process's peak resident memory), the logical bytes
//! and, for the imports, the compressed bytes. Errors go to stderr (exit status 1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use compressed_image::{AnyImage, ReadOptions, WriteOptions};

/// One image-file operation.
pub struct ImageJob {
    op: String,
    input: PathBuf,
    output: Option<PathBuf>,
    threads: usize,
}

impl ImageJob {
    /// The job the `image` subcommand's options describe.
    pub fn from_options(opts: &BTreeMap<String, String>) -> Result<ImageJob, String> {
        let get = |k: &str| opts.get(k).cloned().ok_or(format!("missing --{k}"));
        let threads = super::thread_count(opts)?;
        let op = get("op")?;
        let output = opts.get("output").map(PathBuf::from);
        if output.is_none() && (op == "import-file" || op == "export") {
            return Err(format!("--op {op} needs --output"));
        }
        Ok(ImageJob {
            op,
            input: get("input")?.into(),
            output,
            threads,
        })
    }

    /// Run the operation; its JSON line.
    pub fn run(&self) -> Result<serde_json::Value, String> {
        let mut extra = BTreeMap::new();
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        extra.insert("available_parallelism", parallelism as f64);
        let seconds = match self.op.as_str() {
            "import-anon" => import(&self.input, &ReadOptions::default(), &mut extra)?,
            "import-file" => {
                let options = ReadOptions::default().to_file(self.output()?);
                import(&self.input, &options, &mut extra)?
            }
            "exr-decode" => exr_decode(&self.input, &mut extra)?,
            "export" => export(&self.input, self.output()?, self.threads, &mut extra)?,
            other => return Err(format!("unknown --op {other}")),
        };
        extra.insert("vm_hwm_bytes", super::proc_status_bytes("VmHWM:"));
        Ok(serde_json::json!({
            "op": self.op, "threads": self.threads, "seconds": seconds, "extra": extra,
        }))
    }

    fn output(&self) -> Result<&Path, String> {
        self.output.as_deref().ok_or("no --output".into())
    }
}

/// Seconds of `AnyImage::read` of `input` as `options` say (plus dropping the handle when
/// it is a named file); the logical and compressed bytes go to `extra`.
fn import(
    input: &Path,
    options: &ReadOptions,
    extra: &mut BTreeMap<&'static str, f64>,
) -> Result<f64, String> {
    let start = Instant::now();
    let image = AnyImage::read(input, options).map_err(|e| e.to_string())?;
    let mut seconds = start.elapsed().as_secs_f64();
    let mut compressed = 0;
    for channel in image.channels() {
        compressed += channel.compressed_bytes().map_err(|e| e.to_string())?;
    }
    let element_bytes: usize = image.dtypes().iter().map(|d| d.size()).sum();
    extra.insert("channels", image.num_channels() as f64);
    extra.insert(
        "logical_bytes",
        (element_bytes * image.width() * image.height()) as f64,
    );
    extra.insert("compressed_bytes", compressed as f64);
    extra.insert("image_threads", image.threads() as f64);
    if image.path().is_some() {
        let start = Instant::now();
        drop(image);
        seconds += start.elapsed().as_secs_f64();
    }
    Ok(seconds)
}

/// Seconds of the `exr` crate reading every channel of every part of `input` into memory.
fn exr_decode(input: &Path, extra: &mut BTreeMap<&'static str, f64>) -> Result<f64, String> {
    use exr::prelude::FlatSamples;
    let start = Instant::now();
    let image = exr::prelude::read_all_flat_layers_from_file(input).map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let bytes: usize = image
        .layer_data
        .iter()
        .flat_map(|layer| layer.channel_data.list.iter())
        .map(|channel| match &channel.sample_data {
            FlatSamples::F16(v) => v.len() * 2,
            FlatSamples::F32(v) => v.len() * 4,
            FlatSamples::U32(v) => v.len() * 4,
        })
        .sum();
    extra.insert("logical_bytes", bytes as f64);
    Ok(seconds)
}

/// Seconds of `AnyImage::write` of the .cimg file `input` to `output` on `threads` threads.
fn export(
    input: &Path,
    output: &Path,
    threads: usize,
    extra: &mut BTreeMap<&'static str, f64>,
) -> Result<f64, String> {
    let image = AnyImage::open_read_only(input).map_err(|e| e.to_string())?;
    image.set_threads(threads).map_err(|e| e.to_string())?;
    let start = Instant::now();
    image
        .write(output, &WriteOptions::default())
        .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let written = std::fs::metadata(output).map_err(|e| e.to_string())?.len();
    let element_bytes: usize = image.dtypes().iter().map(|d| d.size()).sum();
    extra.insert(
        "logical_bytes",
        (element_bytes * image.width() * image.height()) as f64,
    );
    extra.insert("output_bytes", written as f64);
    Ok(seconds)
}
