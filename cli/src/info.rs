//! `cimg info`: what files hold, as text or JSON.

use std::fmt::Write as _;
use std::path::Path;

use compressed_image::serde_json::{Value, json};
use compressed_image::{AnyChannel, AnyImage, ChunkStorage, inspect};
use indicatif::HumanBytes;

use crate::Context;
use crate::args::InfoArgs;
use crate::describe::{channel_label, channel_name, open_read_only, ratio};
use crate::failure::{Failure, Outcome, Status};
use crate::output::{emit, emit_json};

/// Describe every file; JSON is printed once all are read.
pub fn run(ctx: &Context, args: InfoArgs) -> Outcome {
    let mut status = Status::Success;
    let mut entries = Vec::new();
    for path in &args.files {
        ctx.check_interrupt(path)?;
        match describe_file(path) {
            Ok(info) if args.json => entries.push(info.to_json()),
            Ok(info) => emit(&info.to_text())?,
            Err(failure) => {
                status = status.max(failure.report());
                entries.push(json!({"path": path.display().to_string(), "error": failure.message}));
            }
        }
    }
    if args.json {
        emit_json(&Value::Array(entries))?;
    }
    Ok(status)
}

/// One file's description.
struct FileInfo {
    path: String,
    format_version: (u16, u16),
    generation: u64,
    width: usize,
    height: usize,
    file_bytes: u64,
    live_bytes: u64,
    dead_bytes: u64,
    compressed_bytes: u64,
    logical_bytes: u64,
    ratio: f64,
    metadata: Value,
    channels: Vec<ChannelInfo>,
}

/// One channel's description.
struct ChannelInfo {
    index: usize,
    name: String,
    channel: AnyChannel,
    blob_chunks: usize,
    fill_chunks: usize,
    default_chunks: usize,
    compressed_bytes: u64,
    logical_bytes: u64,
}

fn describe_file(path: &Path) -> Result<FileInfo, Failure> {
    let format_version = inspect(path)
        .map_err(|e| Failure::opening(path, e))?
        .format_version;
    let image = open_read_only(path)?;
    let during = |e| Failure::during(path, e);
    let stats = image.stats().map_err(during)?;
    let channels = (0..image.num_channels())
        .map(|index| describe_channel(&image, index).map_err(during))
        .collect::<Result<Vec<_>, _>>()?;
    let compressed_bytes = channels.iter().map(|c| c.compressed_bytes).sum();
    let logical_bytes = channels.iter().map(|c| c.logical_bytes).sum();
    Ok(FileInfo {
        path: path.display().to_string(),
        format_version,
        generation: image.generation(),
        width: image.width(),
        height: image.height(),
        file_bytes: stats.file_len,
        live_bytes: stats.live_bytes,
        dead_bytes: stats.dead_bytes,
        compressed_bytes,
        logical_bytes,
        ratio: image.compression_ratio().map_err(during)?,
        metadata: image.metadata(),
        channels,
    })
}

fn describe_channel(image: &AnyImage, index: usize) -> compressed_image::Result<ChannelInfo> {
    let channel = image.channel(index)?;
    let (mut blob_chunks, mut fill_chunks, mut default_chunks) = (0, 0, 0);
    for storage in channel.chunk_storage()? {
        match storage {
            ChunkStorage::Blob { .. } => blob_chunks += 1,
            ChunkStorage::Fill { .. } => fill_chunks += 1,
            _ => default_chunks += 1,
        }
    }
    Ok(ChannelInfo {
        index,
        name: channel_name(image, index),
        blob_chunks,
        fill_chunks,
        default_chunks,
        compressed_bytes: channel.compressed_bytes()? as u64,
        logical_bytes: (channel.uncompressed_size() * channel.dtype().size()) as u64,
        channel,
    })
}

impl FileInfo {
    fn to_json(&self) -> Value {
        let (major, minor) = self.format_version;
        json!({
            "path": self.path,
            "format_version": format!("{major}.{minor}"),
            "generation": self.generation,
            "width": self.width,
            "height": self.height,
            "file_bytes": self.file_bytes,
            "live_bytes": self.live_bytes,
            "dead_bytes": self.dead_bytes,
            "compressed_bytes": self.compressed_bytes,
            "logical_bytes": self.logical_bytes,
            "ratio": self.ratio,
            "metadata": self.metadata,
            "channels": self.channels.iter().map(ChannelInfo::to_json).collect::<Vec<_>>(),
        })
    }

    fn to_text(&self) -> String {
        let (major, minor) = self.format_version;
        let mut text = format!(
            "{}: format {major}.{minor}, generation {}, {} x {}, {} channel{}\n",
            self.path,
            self.generation,
            self.width,
            self.height,
            self.channels.len(),
            if self.channels.len() == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            text,
            "  file {} ({} live, {} dead)\n  data {} stored in {}, ratio {:.2}",
            HumanBytes(self.file_bytes),
            HumanBytes(self.live_bytes),
            HumanBytes(self.dead_bytes),
            HumanBytes(self.logical_bytes),
            HumanBytes(self.compressed_bytes),
            self.ratio
        );
        if !self.metadata.is_null() {
            let _ = writeln!(text, "  metadata {}", self.metadata);
        }
        for c in &self.channels {
            text.push_str(&c.to_text());
        }
        text
    }
}

impl ChannelInfo {
    fn to_json(&self) -> Value {
        let c = &self.channel;
        json!({
            "index": self.index,
            "name": self.name,
            "dtype": c.dtype().name(),
            "width": c.width(),
            "height": c.height(),
            "codec": c.codec().to_string(),
            "level": c.level(),
            "block_size": c.block_size(),
            "chunk_size": c.chunk_size(),
            "rows_per_chunk": c.geometry().rows_per_chunk(),
            "chunks": c.num_chunks(),
            "blob_chunks": self.blob_chunks,
            "fill_chunks": self.fill_chunks,
            "default_chunks": self.default_chunks,
            "compressed_bytes": self.compressed_bytes,
            "logical_bytes": self.logical_bytes,
            "ratio": ratio(self.logical_bytes, self.compressed_bytes),
        })
    }

    fn to_text(&self) -> String {
        let c = &self.channel;
        let block = match c.block_size() {
            0 => "auto".to_string(),
            n => HumanBytes(n as u64).to_string(),
        };
        format!(
            "  {}: {}, {} x {}, {} level {}, block {block}\n    {} chunks of {} ({} rows): \
             {} compressed, {} fill, {} default; {} stored in {}, ratio {:.2}\n",
            channel_label(self.index, &self.name),
            c.dtype(),
            c.width(),
            c.height(),
            c.codec(),
            c.level(),
            c.num_chunks(),
            HumanBytes(c.chunk_size() as u64),
            c.geometry().rows_per_chunk(),
            self.blob_chunks,
            self.fill_chunks,
            self.default_chunks,
            HumanBytes(self.logical_bytes),
            HumanBytes(self.compressed_bytes),
            ratio(self.logical_bytes, self.compressed_bytes),
        )
    }
}
