//! The metadata every imported image gets, around what its reader found.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::source::SourceInfo;

/// The imported image's metadata: where it came from, then the reader's entries.
pub(crate) fn image_metadata(path: &Path, subimage: usize, info: &SourceInfo) -> Value {
    let mut map = Map::new();
    map.insert("source:format".into(), json!(info.format));
    map.insert("source:path".into(), json!(path.to_string_lossy()));
    map.insert("source:subimage".into(), json!(subimage));
    map.insert("oiio:subimages".into(), json!(info.subimages));
    for (key, value) in &info.metadata {
        map.entry(key.clone()).or_insert_with(|| value.clone());
    }
    Value::Object(map)
}

/// Record the length of an embedded blob (an ICC profile, EXIF data) as `<key>:bytes`,
/// when there is one (`len` > 0).
pub(crate) fn note_blob(map: &mut Map<String, Value>, key: &str, len: usize) {
    if len > 0 {
        map.insert(format!("{key}:bytes"), json!(len));
    }
}

/// A resolution as OpenImageIO names it: `XResolution`, `YResolution`, `ResolutionUnit`
/// (`"in"`, `"cm"` or `"none"`).
pub(crate) fn note_resolution(map: &mut Map<String, Value>, x: f64, y: f64, unit: &str) {
    map.insert("XResolution".into(), json!(x));
    map.insert("YResolution".into(), json!(y));
    map.insert("ResolutionUnit".into(), json!(unit));
}
