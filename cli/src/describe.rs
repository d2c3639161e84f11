//! What several subcommands share: opening a file with errors a person can act on, naming
//! channels, finding a channel from the command line, and showing element values.

use std::path::Path;

use compressed_image::serde_json::{Value, json};
use compressed_image::{AnyChannel, AnyImage, Dtype, Error, f16};

use crate::failure::Failure;

/// Open `path` read-only as an image (a channel file is an image of one channel).
pub fn open_read_only(path: &Path) -> Result<AnyImage, Failure> {
    AnyImage::open_read_only(path).map_err(|e| Failure::opening(path, e))
}

/// Open `path` for writing.
pub fn open_writable(path: &Path) -> Result<AnyImage, Failure> {
    AnyImage::open(path).map_err(|e| Failure::opening(path, e))
}

/// The name of the channel at `index` (empty when the image has no names).
pub fn channel_name(image: &AnyImage, index: usize) -> String {
    image
        .channel_names()
        .get(index)
        .cloned()
        .unwrap_or_default()
}

/// `channel 2 "depth"`, or `channel 2` without a name.
pub fn channel_label(index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("channel {index}")
    } else {
        format!("channel {index} {name:?}")
    }
}

/// The channel `spec` names: the first channel with that name, else the channel at that
/// position when `spec` is a number.
pub fn find_channel(image: &AnyImage, path: &Path, spec: &str) -> Result<usize, Failure> {
    match image.channel_index(spec) {
        Ok(index) => return Ok(index),
        Err(Error::UnknownChannelName(_)) => {}
        Err(e) => return Err(Failure::during(path, e)),
    }
    match spec.parse::<usize>() {
        Ok(index) if index < image.num_channels() => Ok(index),
        _ => {
            let known: Vec<String> = (0..image.num_channels())
                .map(|i| channel_label(i, &channel_name(image, i)))
                .collect();
            Err(Failure::failed(
                path,
                format!(
                    "no channel {spec:?}; the file has {}",
                    if known.is_empty() {
                        "no channels".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ))
        }
    }
}

/// The channel at `index` (which [`find_channel`] found).
pub fn channel_at(image: &AnyImage, path: &Path, index: usize) -> Result<AnyChannel, Failure> {
    image.channel(index).map_err(|e| Failure::during(path, e))
}

/// An element of `dtype` from its raw bits (little-endian, zero-extended, as the library
/// reports fill values): as text, and as JSON (a number; a string for NaN and infinities,
/// which JSON cannot hold).
pub fn element_value(dtype: Dtype, bits: u64) -> (String, Value) {
    // The casts keep the low bytes: the element itself.
    let float = |x: f64, text: String| {
        let value = if x.is_finite() { json!(x) } else { json!(text) };
        (text, value)
    };
    match dtype {
        Dtype::U8 => integer(bits as u8),
        Dtype::U16 => integer(bits as u16),
        Dtype::U32 => integer(bits as u32),
        Dtype::I8 => integer(bits as u8 as i8),
        Dtype::I16 => integer(bits as u16 as i16),
        Dtype::I32 => integer(bits as u32 as i32),
        Dtype::F16 => {
            let x = f16::from_bits(bits as u16);
            float(x.to_f64(), x.to_string())
        }
        Dtype::F32 => {
            let x = f32::from_bits(bits as u32);
            float(f64::from(x), x.to_string())
        }
        Dtype::F64 => {
            let x = f64::from_bits(bits);
            float(x, x.to_string())
        }
        _ => (format!("bits {bits:#x}"), json!(bits)),
    }
}

fn integer<T: ToString + Into<Value> + Copy>(x: T) -> (String, Value) {
    (x.to_string(), x.into())
}

/// `x / y`, or 1 when `y` is 0 (nothing stored).
pub fn ratio(x: u64, y: u64) -> f64 {
    if y == 0 { 1.0 } else { x as f64 / y as f64 }
}
