//! [`ImageFileInfo`]: what a subimage of an image file holds, read from its header alone.

use std::path::Path;

use crate::any_image::AnyImage;
use crate::error::Result;
use crate::sample::Dtype;

/// The size, channels and element types of a subimage of an image file, as
/// [`AnyImage::read`] would import them, from the file's header: no pixel is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageFileInfo {
    /// The format: `"openexr"`, `"tiff"`, `"png"` or `"jpeg"`.
    pub format: &'static str,
    /// Width in pixels (of the data window, for OpenEXR).
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The channel names in the order an import presents them.
    pub channel_names: Vec<String>,
    /// Each channel's element type as the file stores it (what an import without
    /// [`ReadOptions::dtype`](crate::ReadOptions::dtype) keeps), in the same order.
    pub dtypes: Vec<Dtype>,
    /// How many subimages (OpenEXR parts, TIFF pages) the file has.
    pub subimages: usize,
}

impl AnyImage {
    /// Describe the subimage `subimage` of an image file without importing it: its size,
    /// channel names and element types and the file's subimage count. Only headers are
    /// read (a JPEG file is read whole, but not decoded).
    ///
    /// # Errors
    /// As [`AnyImage::read`] before it decodes pixels: [`Error::File`](crate::Error::File)
    /// when `path` cannot be opened, [`Error::ImageFile`](crate::Error::ImageFile) for an
    /// unknown format, a missing subimage, an unsupported or damaged header.
    pub fn read_info(path: impl AsRef<Path>, subimage: usize) -> Result<ImageFileInfo> {
        let source = super::source::open(path.as_ref(), subimage)?;
        let info = source.info();
        Ok(ImageFileInfo {
            format: info.format,
            width: info.width,
            height: info.height,
            channel_names: info.channels.iter().map(|c| c.name.clone()).collect(),
            dtypes: info.channels.iter().map(|c| c.dtype).collect(),
            subimages: info.subimages,
        })
    }
}
