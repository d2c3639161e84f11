//! [`inspect`]: what a file holds, without knowing its element type in advance.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{SLOT_LEN, SLOT_PAGE, Slot};
use crate::geometry::Geometry;
use crate::sample::Dtype;
use crate::settings::Codec;
use crate::store::{Access, Store};

/// One channel as [`inspect`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Name (empty when the image has no names).
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Chunk layout.
    pub geometry: Geometry,
    /// Codec.
    pub codec: Codec,
    /// Compression level.
    pub level: u8,
}

/// The shape of a file's newest commit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInfo {
    /// Width of every channel.
    pub width: usize,
    /// Height of every channel.
    pub height: usize,
    /// Whether the channels have names.
    pub has_names: bool,
    /// The channels, in order.
    pub channels: Vec<ChannelInfo>,
    /// Generation of the commit described.
    pub generation: u64,
    /// Format version `(major, minor)` in the slot of that commit (this library reads
    /// major [`FORMAT_MAJOR`](crate::FORMAT_MAJOR), any minor).
    pub format_version: (u16, u16),
}

/// Open `path` read-only and describe its newest commit, including each channel's element
/// type: use it to pick the element type for [`Channel::open`](crate::Channel::open) or
/// [`Image::open`](crate::Image::open), or to find a file of several types, which
/// [`AnyImage::open`](crate::AnyImage::open) reads.
///
/// The file is memory-mapped during the call; the SIGBUS note of
/// [`AnyChannel::open`](crate::AnyChannel::open) applies.
///
/// # Errors
/// As [`AnyChannel::open_read_only`](crate::AnyChannel::open_read_only).
pub fn inspect(path: impl AsRef<Path>) -> Result<FileInfo> {
    let store = Store::open(path.as_ref(), Access::ReadOnly, &|_| Ok(()))?;
    let snap = store.snapshot();
    let c = &snap.catalog;
    let format_version = snap
        .map
        .get(snap.page as u64 * SLOT_PAGE, SLOT_LEN)
        .and_then(Slot::stated_version)
        .ok_or_else(|| Error::corrupted("slot page not mapped"))?;
    Ok(FileInfo {
        width: c.width,
        height: c.height,
        has_names: c.names_present,
        channels: c
            .channels
            .iter()
            .map(|d| ChannelInfo {
                name: d.name.clone(),
                dtype: d.dtype,
                geometry: d.geometry,
                codec: d.codec,
                level: d.level,
            })
            .collect(),
        generation: snap.slot.generation,
        format_version,
    })
}
