//! An image's metadata, imported from an OpenEXR file, written back as OpenEXR header
//! attributes: the inverse of the importer's attribute listing.
//!
//! The data window keeps its origin (its size is the image's), the display window, pixel
//! aspect ratio and screen window are set, and every other entry becomes an attribute of
//! the same name, typed by its JSON value: a string is `string`, an array of strings
//! `stringvector`, an integer `int`, a number `float` (`double` when `float` would change
//! its shortest decimal form), two, three or four integers `v2i`, `v3i`, `box2i` (as
//! `[x_min, y_min, x_max, y_max]`), two, three, four, nine or sixteen numbers `v2f`,
//! `v3f`, `box2f`, `m33f`, `m44f`, and `{red, green, blue, white}` `chromaticities`;
//! `envmap`, `framesPerSecond` and `deepImageState` get their OpenEXR types. What the
//! writer decides itself (channels, compression, line order, block type, chunk count)
//! and what the import kept only a summary of (previews, opaque attributes, time and key
//! codes) is left out, as is any entry of another shape.

use exr::math::Vec2;
use exr::meta::attribute::{
    AttributeValue, Chromaticities, EnvironmentMap, FloatRect, IntegerBounds, Text,
};
use exr::meta::header::Header;
use serde_json::Value;

/// Entries the writer sets itself or cannot restore, and the importer's own entries (with
/// every `source:` entry).
const SKIPPED: [&str; 18] = [
    "channels",
    "compression",
    "lineOrder",
    "type",
    "tiles",
    "chunkCount",
    "version",
    "maxSamplesPerPixel",
    "dwaCompressionLevel",
    "dataWindow",
    "displayWindow",
    "pixelAspectRatio",
    "screenWindowCenter",
    "screenWindowWidth",
    "preview",
    "timeCode",
    "keyCode",
    "oiio:subimages",
];

/// Whether `metadata` came from an OpenEXR file (the importer's `source:format`).
pub(crate) fn from_openexr(metadata: &Value) -> bool {
    metadata["source:format"] == "openexr"
}

fn i32_of(v: &Value) -> Option<i32> {
    v.as_i64().and_then(|i| i32::try_from(i).ok())
}

fn f32_of(v: &Value) -> Option<f32> {
    v.as_f64().map(|f| f as f32)
}

fn ints<const N: usize>(v: &Value) -> Option<[i32; N]> {
    let items = v.as_array().filter(|a| a.len() == N)?;
    let mut out = [0; N];
    for (o, item) in out.iter_mut().zip(items) {
        *o = i32_of(item)?;
    }
    Some(out)
}

fn floats<const N: usize>(v: &Value) -> Option<[f32; N]> {
    let items = v.as_array().filter(|a| a.len() == N)?;
    let mut out = [0.0; N];
    for (o, item) in out.iter_mut().zip(items) {
        *o = f32_of(item)?;
    }
    Some(out)
}

fn v2f(v: &Value) -> Option<Vec2<f32>> {
    floats::<2>(v).map(|[x, y]| Vec2(x, y))
}

/// Inclusive bounds `[x_min, y_min, x_max, y_max]`, as the importer writes windows.
fn bounds(v: &Value) -> Option<IntegerBounds> {
    let [x0, y0, x1, y1] = ints::<4>(v)?;
    let size = |min: i32, max: i32| usize::try_from(i64::from(max) - i64::from(min) + 1).ok();
    Some(IntegerBounds::new((x0, y0), (size(x0, x1)?, size(y0, y1)?)))
}

fn text(s: &str) -> Option<Text> {
    Text::new_or_none(s)
}

fn chromaticities(v: &Value) -> Option<Chromaticities> {
    Some(Chromaticities {
        red: v2f(&v["red"])?,
        green: v2f(&v["green"])?,
        blue: v2f(&v["blue"])?,
        white: v2f(&v["white"])?,
    })
}

/// A number as `float`, or as `double` when `float` loses its shortest decimal form.
fn number(v: f64) -> AttributeValue {
    if (v as f32).to_string() == v.to_string() {
        AttributeValue::F32(v as f32)
    } else {
        AttributeValue::F64(v)
    }
}

/// An attribute from a JSON array, by its length and whether it holds integers.
fn array(items: &[Value], v: &Value) -> Option<AttributeValue> {
    if items.iter().all(Value::is_string) {
        return items
            .iter()
            .map(|s| text(s.as_str()?))
            .collect::<Option<Vec<Text>>>()
            .map(AttributeValue::TextVector);
    }
    if items.iter().all(|i| i32_of(i).is_some()) {
        return match items.len() {
            2 => ints::<2>(v).map(|[x, y]| AttributeValue::IntVec2(Vec2(x, y))),
            3 => ints::<3>(v).map(|[x, y, z]| AttributeValue::IntVec3((x, y, z))),
            4 => bounds(v).map(AttributeValue::IntegerBounds),
            _ => None,
        };
    }
    match items.len() {
        2 => v2f(v).map(AttributeValue::FloatVec2),
        3 => floats::<3>(v).map(|[x, y, z]| AttributeValue::FloatVec3((x, y, z))),
        4 => floats::<4>(v).map(|[x0, y0, x1, y1]| {
            AttributeValue::FloatRect(FloatRect {
                min: Vec2(x0, y0),
                max: Vec2(x1, y1),
            })
        }),
        9 => floats::<9>(v).map(AttributeValue::Matrix3x3),
        16 => floats::<16>(v).map(AttributeValue::Matrix4x4),
        _ => None,
    }
}

/// The attribute an entry named `name` becomes, if any.
fn attribute(name: &str, v: &Value) -> Option<AttributeValue> {
    match name {
        "envmap" => {
            return match v.as_str()? {
                "latlong" => Some(AttributeValue::EnvironmentMap(
                    EnvironmentMap::LatitudeLongitude,
                )),
                "cube" => Some(AttributeValue::EnvironmentMap(EnvironmentMap::Cube)),
                _ => None,
            };
        }
        "framesPerSecond" | "deepImageState" => {
            let [n, d] = ints::<2>(v)?;
            return Some(AttributeValue::Rational((n, u32::try_from(d).ok()?)));
        }
        _ => {}
    }
    match v {
        Value::String(s) => text(s).map(AttributeValue::Text),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Some(AttributeValue::I32(i)),
            None => n.as_f64().map(number),
        },
        Value::Array(items) => array(items, v),
        Value::Object(_) => chromaticities(v).map(AttributeValue::Chromaticities),
        _ => None,
    }
}

/// `name` as an OpenEXR attribute or channel name: non-empty Latin-1 text of at most 255
/// bytes, without NUL (names are NUL-terminated in the file).
pub(crate) fn file_name(name: &str) -> Option<Text> {
    text(name).filter(|t| (1..=255).contains(&t.bytes().len()) && !t.bytes().contains(&0))
}

/// Set `header`'s windows and attributes from `metadata` (see the module documentation).
/// The header's layer size must already be the image's.
pub(crate) fn apply(header: &mut Header, metadata: &Value) {
    let Some(entries) = metadata.as_object() else {
        return;
    };
    if let Some(data) = bounds(&metadata["dataWindow"]) {
        header.own_attributes.layer_position = data.position;
    }
    if let Some(display) = bounds(&metadata["displayWindow"]) {
        header.shared_attributes.display_window = display;
    }
    // OpenEXR rejects a ratio that is not a normal number within 1e-6 ..= 1e6.
    if let Some(aspect) =
        f32_of(&metadata["pixelAspectRatio"]).filter(|a| a.is_normal() && (1e-6..=1e6).contains(a))
    {
        header.shared_attributes.pixel_aspect = aspect;
    }
    if let Some(center) = v2f(&metadata["screenWindowCenter"]) {
        header.own_attributes.screen_window_center = center;
    }
    if let Some(width) = f32_of(&metadata["screenWindowWidth"]).filter(|w| *w >= 0.0) {
        header.own_attributes.screen_window_width = width;
    }
    header.own_attributes.layer_name = None;
    for (name, value) in entries {
        if SKIPPED.contains(&name.as_str()) || name.starts_with("source:") {
            continue;
        }
        if let (Some(name), Some(value)) = (file_name(name), attribute(name, value)) {
            header.own_attributes.other.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_values_become_typed_attributes() {
        let as_attr = |name: &str, v: Value| attribute(name, &v);
        assert_eq!(
            as_attr("owner", json!("me")),
            Some(AttributeValue::Text(Text::from("me")))
        );
        assert_eq!(as_attr("n", json!(7)), Some(AttributeValue::I32(7)));
        assert_eq!(as_attr("f", json!(1.5)), Some(AttributeValue::F32(1.5)));
        assert_eq!(as_attr("f", json!(1.1)), Some(AttributeValue::F32(1.1)));
        assert_eq!(
            as_attr("d", json!(0.123_456_789_012)),
            Some(AttributeValue::F64(0.123_456_789_012))
        );
        assert_eq!(
            as_attr("w", json!([10, -20, 76, 24])),
            Some(AttributeValue::IntegerBounds(IntegerBounds::new(
                (10, -20),
                (67, 45)
            )))
        );
        assert_eq!(
            as_attr("v", json!([1.0, 2.0])),
            Some(AttributeValue::FloatVec2(Vec2(1.0, 2.0)))
        );
        assert_eq!(
            as_attr("framesPerSecond", json!([24, 1])),
            Some(AttributeValue::Rational((24, 1)))
        );
        assert_eq!(
            as_attr("envmap", json!("cube")),
            Some(AttributeValue::EnvironmentMap(EnvironmentMap::Cube))
        );
        assert_eq!(as_attr("x", json!({"type": "blob", "bytes": 3})), None);
        assert_eq!(as_attr("x", json!([1, 2, 3, 4, 5])), None);
        assert_eq!(as_attr("x", json!(true)), None);
        assert_eq!(as_attr("x", json!("\u{263a}")), None);
    }

    #[test]
    fn windows_aspect_and_attributes_are_applied_and_writer_entries_skipped() {
        let mut header = Header::new(Text::from("x"), (67, 45), Default::default());
        let metadata = json!({
            "source:format": "openexr",
            "source:path": "/a.exr",
            "dataWindow": [10, -20, 76, 24],
            "displayWindow": [0, 0, 99, 79],
            "pixelAspectRatio": 2.0,
            "compression": "zip",
            "owner": "Jane",
        });
        apply(&mut header, &metadata);
        assert_eq!(header.own_attributes.layer_position, Vec2(10, -20));
        assert_eq!(
            header.shared_attributes.display_window,
            IntegerBounds::new((0, 0), (100, 80))
        );
        assert_eq!(header.shared_attributes.pixel_aspect, 2.0);
        assert_eq!(header.own_attributes.layer_name, None);
        let names: Vec<String> = header
            .own_attributes
            .other
            .keys()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(names, ["owner"]);
    }

    #[test]
    fn a_pixel_aspect_openexr_refuses_is_left_at_one() {
        let mut header = Header::new(Text::from("x"), (4, 4), Default::default());
        apply(&mut header, &json!({"pixelAspectRatio": 0.0}));
        assert_eq!(header.shared_attributes.pixel_aspect, 1.0);
    }
}
