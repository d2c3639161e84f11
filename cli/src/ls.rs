//! `cimg ls`: every chunk of a file and how it is stored, for debugging.

use std::fmt::Write as _;

use compressed_image::serde_json::{Value, json};
use compressed_image::{AnyChannel, ChunkStorage};
use indicatif::HumanBytes;

use crate::Context;
use crate::args::LsArgs;
use crate::describe::{
    channel_at, channel_label, channel_name, element_value, find_channel, open_read_only,
};
use crate::failure::{Failure, Outcome, Status};
use crate::output::{emit, emit_json};

/// List the chunks of every channel, or of the one asked for.
pub fn run(_ctx: &Context, args: LsArgs) -> Outcome {
    let path = &args.file;
    let image = open_read_only(path)?;
    let indices = match &args.channel {
        Some(spec) => vec![find_channel(&image, path, spec)?],
        None => (0..image.num_channels()).collect(),
    };
    let mut listings = Vec::new();
    for index in indices {
        let channel = channel_at(&image, path, index)?;
        let chunks = channel
            .chunk_storage()
            .map_err(|e| Failure::during(path, e))?;
        listings.push(Listing {
            index,
            name: channel_name(&image, index),
            channel,
            chunks,
        });
    }
    if args.json {
        emit_json(&json!({
            "path": path.display().to_string(),
            "channels": listings.iter().map(Listing::to_json).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut text = format!("{}\n", path.display());
        for listing in &listings {
            text.push_str(&listing.to_text());
        }
        emit(&text)?;
    }
    Ok(Status::Success)
}

/// One channel's chunks.
struct Listing {
    index: usize,
    name: String,
    channel: AnyChannel,
    chunks: Vec<ChunkStorage>,
}

/// A chunk's state: its kind, and for a fill or default chunk its value (text, JSON) and
/// raw bits.
enum State {
    Blob {
        offset: u64,
        compressed_len: usize,
        generation: u64,
    },
    Value {
        kind: &'static str,
        text: String,
        value: Value,
        bits: u64,
    },
}

impl Listing {
    /// Rows `[first, end)` of chunk `index`.
    fn rows(&self, index: usize) -> (usize, usize) {
        let g = self.channel.geometry();
        (
            g.chunk_start_row(index),
            g.chunk_start_row(index) + g.chunk_rows(index),
        )
    }

    fn state(&self, storage: ChunkStorage) -> State {
        let value = |kind, bits| {
            let (text, value) = element_value(self.channel.dtype(), bits);
            State::Value {
                kind,
                text,
                value,
                bits,
            }
        };
        match storage {
            ChunkStorage::Blob {
                offset,
                compressed_len,
                generation,
            } => State::Blob {
                offset,
                compressed_len,
                generation,
            },
            ChunkStorage::Fill { fill_bits } => value("fill", fill_bits),
            ChunkStorage::Default { fill_bits } => value("default", fill_bits),
            // A kind of storage this tool does not know yet.
            _ => value("unknown", 0),
        }
    }

    fn to_json(&self) -> Value {
        let chunks: Vec<Value> = (self.chunks.iter().enumerate())
            .map(|(index, &storage)| {
                let (first, end) = self.rows(index);
                let mut chunk = json!({"chunk": index, "rows": [first, end]});
                let details = match self.state(storage) {
                    State::Blob {
                        offset,
                        compressed_len,
                        generation,
                    } => json!({
                        "state": "blob",
                        "compressed_bytes": compressed_len,
                        "offset": offset,
                        "generation": generation,
                    }),
                    State::Value {
                        kind, value, bits, ..
                    } => json!({"state": kind, "value": value, "bits": bits}),
                };
                if let (Some(chunk), Value::Object(details)) = (chunk.as_object_mut(), details) {
                    chunk.extend(details);
                }
                chunk
            })
            .collect();
        json!({
            "index": self.index,
            "name": self.name,
            "dtype": self.channel.dtype().name(),
            "chunks": chunks,
        })
    }

    fn to_text(&self) -> String {
        let c = &self.channel;
        let mut text = format!(
            "{}: {}, {} x {}, {} chunks of {} rows\n  {:>7}  {:>15}  {:<8} stored\n",
            channel_label(self.index, &self.name),
            c.dtype(),
            c.width(),
            c.height(),
            c.num_chunks(),
            c.geometry().rows_per_chunk(),
            "chunk",
            "rows",
            "state"
        );
        for (index, &storage) in self.chunks.iter().enumerate() {
            let (first, end) = self.rows(index);
            let (kind, stored) = match self.state(storage) {
                State::Blob {
                    offset,
                    compressed_len,
                    generation,
                } => (
                    "blob",
                    format!(
                        "{} at offset {offset} (generation {generation})",
                        HumanBytes(compressed_len as u64)
                    ),
                ),
                State::Value { kind, text, .. } => (kind, format!("value {text}")),
            };
            let _ = writeln!(
                text,
                "  {index:>7}  {:>15}  {kind:<8} {stored}",
                format!("{first}..{end}")
            );
        }
        text
    }
}
