//! OpenEXR header attributes as JSON metadata.

use exr::compression::Compression;
use exr::math::Vec2;
use exr::meta::attribute::{AttributeValue, IntegerBounds, LineOrder, Text};
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

fn pair<T: Into<Value>>(v: Vec2<T>) -> Value {
    Value::Array(vec![v.0.into(), v.1.into()])
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
            "red": pair(c.red), "green": pair(c.green),
            "blue": pair(c.blue), "white": pair(c.white),
        }),
        AttributeValue::LineOrder(order) => json!(match order {
            LineOrder::Increasing => "increasingY",
            LineOrder::Decreasing => "decreasingY",
            LineOrder::Unspecified => "randomY",
        }),
        AttributeValue::Matrix3x3(m) => json!(m.to_vec()),
        AttributeValue::Matrix4x4(m) => json!(m.to_vec()),
        AttributeValue::Rational((n, d)) => json!([n, d]),
        AttributeValue::TextVector(texts) => Value::Array(texts.iter().map(text).collect()),
        AttributeValue::Text(t) => text(t),
        AttributeValue::F64(v) => json!(v),
        AttributeValue::F32(v) => json!(v),
        AttributeValue::I32(v) => json!(v),
        AttributeValue::IntegerBounds(b) => bounds(*b),
        AttributeValue::FloatRect(r) => json!([r.min.0, r.min.1, r.max.0, r.max.1]),
        AttributeValue::IntVec2(v) => pair(*v),
        AttributeValue::FloatVec2(v) => pair(*v),
        AttributeValue::IntVec3((x, y, z)) => json!([x, y, z]),
        AttributeValue::FloatVec3((x, y, z)) => json!([x, y, z]),
        AttributeValue::TileDescription(t) => json!({
            "xSize": t.tile_size.0, "ySize": t.tile_size.1,
            "mode": format!("{:?}", t.level_mode), "roundingMode": format!("{:?}", t.rounding_mode),
        }),
        AttributeValue::Preview(p) => json!({ "width": p.size.0, "height": p.size.1 }),
        AttributeValue::Bytes { type_hint, bytes } => {
            json!({ "type": text(type_hint), "bytes": bytes.len() })
        }
        AttributeValue::Custom { kind, bytes } => {
            json!({ "type": text(kind), "bytes": bytes.len() })
        }
        // Time codes, key codes, environment maps and block types: their debug text.
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
