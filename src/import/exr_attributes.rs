//! OpenEXR header attributes as JSON metadata.

use exr::compression::Compression;
use exr::math::RoundingMode;
use exr::meta::attribute::{
    AttributeValue, BlockType, EnvironmentMap, IntegerBounds, LevelMode, LineOrder, Text,
    TileDescription,
};
use exr::meta::header::Header;
use serde_json::{Map, Value, json};

/// A compression method as OpenImageIO names it (its `compression` attribute).
pub(crate) fn compression_name(compression: Compression) -> &'static str {
    match compression {
        Compression::Uncompressed => "none",
        Compression::RLE => "rle",
        Compression::ZIP1 => "zips",
        Compression::ZIP16 => "zip",
        Compression::PIZ => "piz",
        Compression::PXR24 => "pxr24",
        Compression::B44 => "b44",
        Compression::B44A => "b44a",
        Compression::DWAA(_) => "dwaa",
        Compression::DWAB(_) => "dwab",
        Compression::HTJ2K256 => "htj2k256",
        Compression::HTJ2K32 => "htj2k32",
    }
}

fn text(t: &Text) -> Value {
    json!(String::from_utf8_lossy(t.bytes()))
}

/// An `f32` as JSON, by its shortest decimal form (`1.1`, not `1.100000023841858`).
fn float(v: f32) -> Value {
    json!(v.to_string().parse::<f64>().unwrap_or(f64::NAN))
}

fn floats(values: &[f32]) -> Value {
    Value::Array(values.iter().copied().map(float).collect())
}

/// A tile description with OpenEXR's names of its modes.
fn tiles(t: &TileDescription) -> Value {
    let mode = match t.level_mode {
        LevelMode::Singular => "ONE_LEVEL",
        LevelMode::MipMap => "MIPMAP_LEVELS",
        LevelMode::RipMap => "RIPMAP_LEVELS",
    };
    let rounding = match t.rounding_mode {
        RoundingMode::Down => "ROUND_DOWN",
        RoundingMode::Up => "ROUND_UP",
    };
    json!({
        "xSize": t.tile_size.0, "ySize": t.tile_size.1, "mode": mode, "roundingMode": rounding,
    })
}

/// Inclusive bounds `[x_min, y_min, x_max, y_max]`, as OpenEXR writes windows.
fn bounds(b: IntegerBounds) -> Value {
    let max = |pos: i32, size: usize| i64::from(pos) + size as i64 - 1;
    json!([
        b.position.0,
        b.position.1,
        max(b.position.0, b.size.0),
        max(b.position.1, b.size.1)
    ])
}

/// An attribute value as JSON; `None` for the channel list, which the image's channels
/// already describe.
fn attribute_json(value: &AttributeValue) -> Option<Value> {
    Some(match value {
        AttributeValue::ChannelList(_) => return None,
        AttributeValue::Compression(c) => json!(compression_name(*c)),
        AttributeValue::Chromaticities(c) => json!({
            "red": floats(&[c.red.0, c.red.1]), "green": floats(&[c.green.0, c.green.1]),
            "blue": floats(&[c.blue.0, c.blue.1]), "white": floats(&[c.white.0, c.white.1]),
        }),
        AttributeValue::LineOrder(order) => json!(match order {
            LineOrder::Increasing => "increasingY",
            LineOrder::Decreasing => "decreasingY",
            LineOrder::Unspecified => "randomY",
        }),
        AttributeValue::Matrix3x3(m) => floats(m),
        AttributeValue::Matrix4x4(m) => floats(m),
        AttributeValue::Rational((n, d)) => json!([n, d]),
        AttributeValue::TextVector(texts) => Value::Array(texts.iter().map(text).collect()),
        AttributeValue::Text(t) => text(t),
        AttributeValue::F64(v) => json!(v),
        AttributeValue::F32(v) => float(*v),
        AttributeValue::I32(v) => json!(v),
        AttributeValue::IntegerBounds(b) => bounds(*b),
        AttributeValue::FloatRect(r) => floats(&[r.min.0, r.min.1, r.max.0, r.max.1]),
        AttributeValue::IntVec2(v) => json!([v.0, v.1]),
        AttributeValue::FloatVec2(v) => floats(&[v.0, v.1]),
        AttributeValue::IntVec3((x, y, z)) => json!([x, y, z]),
        AttributeValue::FloatVec3((x, y, z)) => floats(&[*x, *y, *z]),
        AttributeValue::TileDescription(t) => tiles(t),
        AttributeValue::BlockType(kind) => json!(match kind {
            BlockType::ScanLine => "scanlineimage",
            BlockType::Tile => "tiledimage",
            BlockType::DeepScanLine => "deepscanline",
            BlockType::DeepTile => "deeptile",
        }),
        AttributeValue::EnvironmentMap(map) => json!(match map {
            EnvironmentMap::LatitudeLongitude => "latlong",
            EnvironmentMap::Cube => "cube",
        }),
        AttributeValue::Preview(p) => json!({ "width": p.size.0, "height": p.size.1 }),
        AttributeValue::Bytes { type_hint, bytes } => {
            json!({ "type": text(type_hint), "bytes": bytes.len() })
        }
        AttributeValue::Custom { kind, bytes } => {
            json!({ "type": text(kind), "bytes": bytes.len() })
        }
        // Time codes and key codes: their debug text.
        other => json!(format!("{other:?}")),
    })
}

/// The header attributes of a part, by OpenEXR name (sorted, as the header stores them).
pub(crate) fn header_metadata(header: &Header) -> Map<String, Value> {
    let mut attributes: Vec<(String, Value)> = header
        .all_named_attributes()
        .filter_map(|(name, value)| {
            attribute_json(&value).map(|v| (String::from_utf8_lossy(name).into_owned(), v))
        })
        .collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    attributes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_read_as_openexr_writes_them() {
        let bounds = IntegerBounds::new((10, -20), (67, 45));
        assert_eq!(
            attribute_json(&AttributeValue::IntegerBounds(bounds)),
            Some(json!([10, -20, 76, 24]))
        );
        assert_eq!(attribute_json(&AttributeValue::F32(1.1)), Some(json!(1.1)));
        assert_eq!(
            attribute_json(&AttributeValue::BlockType(BlockType::Tile)),
            Some(json!("tiledimage"))
        );
        assert_eq!(
            attribute_json(&AttributeValue::Compression(Compression::ZIP1)),
            Some(json!("zips"))
        );
        let channels =
            AttributeValue::ChannelList(exr::meta::attribute::ChannelList::new(Default::default()));
        assert_eq!(attribute_json(&channels), None);
    }
}
