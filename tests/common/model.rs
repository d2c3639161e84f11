//! The in-memory model of what a channel and an image hold: raw little-endian bytes of
//! every chunk and whether the library must store each one lazily, channel names and
//! settings, names and metadata of the image. Tests apply each operation to the library
//! and to the model, then compare everything observable with the model.

use std::ops::{Deref, DerefMut};

use compressed_image::Settings;
use serde_json::Value;

/// Whether every `size`-byte element of `bytes` is bit-identical: exactly the chunks the
/// library stores lazily, as a fill entry (SPEC §6 write rule).
pub fn uniform(bytes: &[u8], size: usize) -> bool {
    bytes.chunks_exact(size).all(|e| e == &bytes[..size])
}

/// One channel's contents: its geometry, and every chunk's bytes with its lazy flag.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelModel {
    pub width: usize,
    pub height: usize,
    /// Bytes of one element.
    pub elem: usize,
    /// Rows per chunk; the last chunk may have fewer.
    pub rows: usize,
    /// Raw little-endian bytes of every chunk.
    pub chunks: Vec<Vec<u8>>,
    /// Whether each chunk is lazy (FILL or DEFAULT).
    pub lazy: Vec<bool>,
}

impl ChannelModel {
    /// A lazy channel whose every element has the bytes `fill`.
    pub fn lazy(width: usize, height: usize, rows: usize, fill: &[u8]) -> ChannelModel {
        let n = height.div_ceil(rows);
        let chunks = (0..n)
            .map(|i| fill.repeat(rows.min(height - i * rows) * width))
            .collect();
        ChannelModel {
            width,
            height,
            elem: fill.len(),
            rows,
            chunks,
            lazy: vec![true; n],
        }
    }

    /// A channel written with these chunks, each lazy exactly when it is uniform.
    pub fn from_chunks(
        width: usize,
        height: usize,
        rows: usize,
        elem: usize,
        chunks: Vec<Vec<u8>>,
    ) -> ChannelModel {
        ChannelModel {
            width,
            height,
            elem,
            rows,
            lazy: chunks.iter().map(|c| uniform(c, elem)).collect(),
            chunks,
        }
    }

    /// A channel written with all its data at once.
    pub fn full(width: usize, height: usize, rows: usize, data: &[u8]) -> ChannelModel {
        let elem = data.len() / (width * height);
        let chunks = data
            .chunks(rows * width * elem)
            .map(<[u8]>::to_vec)
            .collect();
        ChannelModel::from_chunks(width, height, rows, elem, chunks)
    }

    pub fn num_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Elements of chunk `i`.
    pub fn chunk_elems(&self, i: usize) -> usize {
        self.rows.min(self.height - i * self.rows) * self.width
    }

    /// Chunk `i` written with `data`: lazy exactly when every element is bit-identical.
    pub fn set(&mut self, i: usize, data: &[u8]) {
        assert_eq!(data.len(), self.chunks[i].len(), "model chunk {i}");
        self.lazy[i] = uniform(data, self.elem);
        self.chunks[i] = data.to_vec();
    }

    /// Every element, row-major.
    pub fn whole(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// A channel of an image: its contents and what the image knows of it. `X` is what one
/// test tracks beside (nothing by default).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageChannel<X = ()> {
    /// Model identity (handles are matched to channels by it).
    pub uid: u64,
    pub name: String,
    /// The settings the channel was made with.
    pub settings: Settings,
    /// Whether any chunk was ever written (only then does the file hold a chunk table).
    pub has_table: bool,
    pub data: ChannelModel,
    pub extra: X,
}

impl<X> Deref for ImageChannel<X> {
    type Target = ChannelModel;
    fn deref(&self) -> &ChannelModel {
        &self.data
    }
}

impl<X> DerefMut for ImageChannel<X> {
    fn deref_mut(&mut self) -> &mut ChannelModel {
        &mut self.data
    }
}

/// What an image holds: channels in order, names and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageModel<X = ()> {
    pub width: usize,
    pub height: usize,
    /// Bytes of one element.
    pub size: usize,
    pub channels: Vec<ImageChannel<X>>,
    /// Whether the image has channel names (then every channel has one, maybe empty).
    pub names_present: bool,
    pub meta: Value,
}

impl<X> ImageModel<X> {
    /// An image without channels or metadata.
    pub fn new(width: usize, height: usize, size: usize) -> ImageModel<X> {
        ImageModel {
            width,
            height,
            size,
            channels: Vec::new(),
            names_present: false,
            meta: Value::Null,
        }
    }

    pub fn num_chunks(&self, pos: usize) -> usize {
        self.height.div_ceil(self.channels[pos].rows)
    }

    pub fn chunk_elems(&self, pos: usize, index: usize) -> usize {
        self.channels[pos].chunk_elems(index)
    }

    pub fn find(&self, uid: u64) -> Option<&ImageChannel<X>> {
        self.channels.iter().find(|c| c.uid == uid)
    }

    /// The names the image shows: every channel's, or none without names.
    pub fn names(&self) -> Vec<String> {
        if self.names_present {
            self.channels.iter().map(|c| c.name.clone()).collect()
        } else {
            Vec::new()
        }
    }

    /// A lazy channel whose every element has the bits `fill`.
    pub fn lazy_channel(
        &self,
        uid: u64,
        settings: Settings,
        rows: usize,
        name: String,
        fill: u64,
        extra: X,
    ) -> ImageChannel<X> {
        let e = fill.to_le_bytes()[..self.size].to_vec();
        ImageChannel {
            uid,
            name,
            settings,
            has_table: false,
            data: ChannelModel::lazy(self.width, self.height, rows, &e),
            extra,
        }
    }

    /// A channel added with all its data, split per chunk.
    pub fn data_channel(
        &self,
        uid: u64,
        settings: Settings,
        rows: usize,
        name: String,
        chunks: Vec<Vec<u8>>,
        extra: X,
    ) -> ImageChannel<X> {
        ImageChannel {
            uid,
            name,
            settings,
            has_table: true,
            data: ChannelModel::from_chunks(self.width, self.height, rows, self.size, chunks),
            extra,
        }
    }

    /// Add `channel` last; a name makes the image a named one.
    pub fn add(&mut self, name: Option<&str>, channel: ImageChannel<X>) {
        self.names_present |= name.is_some();
        self.channels.push(channel);
    }

    /// Chunk `index` of the channel at `pos` written with `bytes`.
    pub fn set_chunk(&mut self, pos: usize, index: usize, bytes: &[u8]) {
        let c = &mut self.channels[pos];
        c.data.set(index, bytes);
        c.has_table = true;
    }

    /// Every channel renamed (`names` has one name per channel).
    pub fn set_names(&mut self, names: &[String]) {
        assert_eq!(names.len(), self.channels.len(), "one name per channel");
        self.names_present = true;
        for (c, name) in self.channels.iter_mut().zip(names) {
            c.name = name.clone();
        }
    }
}
