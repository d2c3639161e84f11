//! What the tags of a TIFF page say: sample type, channel names, compression and the
//! metadata entries.

use std::io::{Read, Seek};

use serde_json::{Map, Value, json};
use tiff::decoder::Decoder;
use tiff::decoder::ifd::Value as TagValue;
use tiff::tags::Tag;

use super::error::{FileResult, ImageFileError};
use super::metadata::{note_blob, note_resolution};
use crate::sample::Dtype;

/// Compression codes this reader decodes, with OpenImageIO's names for them.
const DECODED: [(u16, &str); 7] = [
    (1, "none"),
    (5, "lzw"),
    (7, "jpeg"),
    (8, "zip"),
    (32946, "zip"),
    (32773, "packbits"),
    (50000, "zstd"),
];

/// Names of compression codes this reader refuses.
const REFUSED: [(u16, &str); 10] = [
    (2, "ccittrle"),
    (3, "ccittfax3"),
    (4, "ccittfax4"),
    (6, "ojpeg"),
    (32809, "thunderscan"),
    (34661, "jbig"),
    (34712, "jpeg2000"),
    (34887, "lerc"),
    (34925, "lzma"),
    (50001, "webp"),
];

pub(crate) fn tiff_error(e: tiff::TiffError) -> ImageFileError {
    use tiff::TiffError as E;
    match e {
        E::IoError(e) => e.into(),
        E::UnsupportedError(e) => ImageFileError::Unsupported(e.to_string()),
        other => ImageFileError::Decode(other.to_string()),
    }
}

/// An optional tag.
fn tag<R: Read + Seek>(decoder: &mut Decoder<R>, tag: Tag) -> FileResult<Option<TagValue>> {
    decoder.find_tag(tag).map_err(tiff_error)
}

/// An optional tag holding one or more unsigned integers.
pub(crate) fn tag_numbers<R: Read + Seek>(
    decoder: &mut Decoder<R>,
    tag: Tag,
) -> FileResult<Vec<u16>> {
    decoder
        .find_tag_unsigned_vec::<u16>(tag)
        .map(Option::unwrap_or_default)
        .map_err(tiff_error)
}

/// The compression's name, or the error refusing it.
pub(crate) fn compression(code: u16) -> FileResult<&'static str> {
    if let Some(&(_, name)) = DECODED.iter().find(|(c, _)| *c == code) {
        return Ok(name);
    }
    let name = REFUSED
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| format!("code {code}"), |(_, n)| n.to_string());
    Err(ImageFileError::UnsupportedCompression(name))
}

/// The element type of samples of `bits` bits in SampleFormat `format`, `samples` per
/// pixel: gray below 8 bits is imported as `u8` (scaled to the full range).
pub(crate) fn sample_dtype(format: u16, bits: usize, samples: usize) -> FileResult<Dtype> {
    Ok(match (format, bits) {
        (1, 1 | 2 | 4) if samples == 1 => Dtype::U8,
        (1, 8) => Dtype::U8,
        (1, 16) => Dtype::U16,
        (1, 32) => Dtype::U32,
        (2, 8) => Dtype::I8,
        (2, 16) => Dtype::I16,
        (2, 32) => Dtype::I32,
        (3, 16) => Dtype::F16,
        (3, 32) => Dtype::F32,
        (3, 64) => Dtype::F64,
        _ => {
            return Err(ImageFileError::Unsupported(format!(
                "{bits}-bit samples of sample format {format}"
            )));
        }
    })
}

/// OpenImageIO's names for the `samples` channels of a page: `Y` for a single channel,
/// else `R`, `G`, `B`, `channel3`, `channel4`…; the first channel is `Y` when it is the
/// only colour channel of a gray image; an extra sample marked as alpha is `A`.
pub(crate) fn channel_names(samples: usize, gray: bool, extra: &[u16]) -> Vec<String> {
    if samples == 1 {
        return vec!["Y".into()];
    }
    let mut names: Vec<String> = (0..samples)
        .map(|i| match i {
            0 => "R".into(),
            1 => "G".into(),
            2 => "B".into(),
            _ => format!("channel{i}"),
        })
        .collect();
    let colour = samples.saturating_sub(extra.len());
    if gray && colour == 1 {
        names[0] = "Y".into();
    }
    for (i, &kind) in extra.iter().enumerate() {
        // 1: associated alpha, 2: unassociated alpha.
        if matches!(kind, 1 | 2)
            && let Some(name) = names.get_mut(colour + i)
        {
            *name = "A".into();
        }
    }
    names
}

/// The metadata entries of a page, named as OpenImageIO names them.
pub(crate) fn page_metadata<R: Read + Seek>(
    decoder: &mut Decoder<R>,
    compression: &str,
    planar: bool,
) -> FileResult<Map<String, Value>> {
    let mut map = Map::new();
    map.insert("compression".into(), json!(compression));
    map.insert(
        "planarconfig".into(),
        json!(if planar { "separate" } else { "contig" }),
    );
    for (key, t) in [
        ("tiff:Compression", Tag::Compression),
        (
            "tiff:PhotometricInterpretation",
            Tag::PhotometricInterpretation,
        ),
        ("tiff:PlanarConfiguration", Tag::PlanarConfiguration),
    ] {
        if let Some(&number) = tag_numbers(decoder, t)?.first() {
            map.insert(key.into(), json!(number));
        }
    }
    for (key, t) in [
        ("ImageDescription", Tag::ImageDescription),
        ("Software", Tag::Software),
        ("DateTime", Tag::DateTime),
        ("Artist", Tag::Artist),
        ("Copyright", Tag::Copyright),
        ("HostComputer", Tag::HostComputer),
        ("Make", Tag::Make),
        ("Model", Tag::Model),
    ] {
        if let Some(TagValue::Ascii(text)) = tag(decoder, t)? {
            map.insert(key.into(), json!(text));
        }
    }
    let resolution = |v: Option<TagValue>| match v {
        Some(TagValue::Rational(n, d)) if d != 0 => Some(f64::from(n) / f64::from(d)),
        _ => None,
    };
    let x = resolution(tag(decoder, Tag::XResolution)?);
    let y = resolution(tag(decoder, Tag::YResolution)?);
    if let (Some(x), Some(y)) = (x, y) {
        let unit = match tag_numbers(decoder, Tag::ResolutionUnit)?.first() {
            Some(3) => "cm",
            Some(1) => "none",
            _ => "in", // the TIFF default
        };
        note_resolution(&mut map, x, y, unit);
    }
    let icc = match tag(decoder, Tag::IccProfile)? {
        Some(TagValue::List(bytes)) => bytes.len(),
        Some(_) => 1,
        None => 0,
    };
    note_blob(&mut map, "ICCProfile", icc);
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(samples: usize, gray: bool, extra: &[u16]) -> Vec<String> {
        channel_names(samples, gray, extra)
    }

    // As OpenImageIO 3.2 names the channels of files tifffile writes.
    #[test]
    fn tiff_channels_are_named_as_openimageio_names_them() {
        assert_eq!(names(1, true, &[]), ["Y"]);
        assert_eq!(names(2, true, &[]), ["R", "G"]);
        assert_eq!(names(2, true, &[2]), ["Y", "A"]);
        assert_eq!(names(3, false, &[]), ["R", "G", "B"]);
        assert_eq!(names(4, false, &[0]), ["R", "G", "B", "channel3"]);
        assert_eq!(names(5, false, &[2, 0]), ["R", "G", "B", "A", "channel4"]);
        assert_eq!(
            names(6, true, &[]),
            ["R", "G", "B", "channel3", "channel4", "channel5"]
        );
    }

    #[test]
    fn unknown_compressions_are_refused_by_name() {
        assert_eq!(compression(5).unwrap(), "lzw");
        assert!(matches!(
            compression(34887),
            Err(ImageFileError::UnsupportedCompression(n)) if n == "lerc"
        ));
        assert!(matches!(
            compression(9),
            Err(ImageFileError::UnsupportedCompression(n)) if n == "code 9"
        ));
    }
}
