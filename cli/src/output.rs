//! Standard output: results, as text or JSON. A write error (a closed pipe, a full disk)
//! is a failure reported like any other, never a panic.

use std::io::Write;

use compressed_image::serde_json::{self, Value};

use crate::failure::{Failure, Status};

/// Write `text` to standard output.
pub fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::general(format!("writing standard output: {e}"), Status::Failed))
}

/// Write `value` to standard output as pretty-printed JSON and a newline.
pub fn emit_json(value: &Value) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::general(format!("encoding JSON: {e}"), Status::Failed))?;
    text.push('\n');
    emit(&text)
}
