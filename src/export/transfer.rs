//! Channel elements as PNG and TIFF integer samples of 8 or 16 bits.
//!
//! Each element is first put on the common scale of the importer's conversions — integers
//! normalised by their type's maximum, floats as they are — then:
//!
//! - NaN becomes 0 and the value is clamped to [0, 1] (negative integers become 0);
//! - a floating-point colour sample (every sample but the alpha of gray + alpha and RGBA)
//!   is encoded with the sRGB transfer function under [`Transfer::Srgb`] (the default):
//!   `12.92 v` up to `v = 0.0031308`, else `1.055 v^(1/2.4) − 0.055`. Alpha, integer
//!   samples (taken as already encoded) and [`Transfer::Linear`] stay as they are;
//! - the value is scaled by the sample's maximum (255 or 65535) and rounded to nearest,
//!   halves away from zero.
//!
//! So `u8` → 8 bits and `u16` → 16 bits are exact; `u8` → 16 bits multiplies by 257;
//! `u16` → 8 bits is `round(v / 257)`; `u32` → 16 bits is `round(v × 65535 / (2³² − 1))`
//! (about `v >> 16`); a float 0.5 is 188 in 8 bits with sRGB, 128 linear.

use rayon::prelude::*;

use super::options::{SampleDepth, Transfer};
use crate::import::convert::for_each_unit;
use crate::sample::Dtype;

/// The sRGB encoding of a linear value in [0, 1] (IEC 61966-2-1).
pub(crate) fn srgb_encode(linear: f64) -> f64 {
    if linear <= 0.003_130_8 {
        12.92 * linear
    } else {
        1.055 * linear.powf(1.0 / 2.4) - 0.055
    }
}

fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F16 | Dtype::F32 | Dtype::F64)
}

/// Whether sample `k` of a pixel of `count` samples is alpha (gray + alpha, RGBA).
pub(crate) fn is_alpha(count: usize, k: usize) -> bool {
    (count == 2 && k == 1) || (count == 4 && k == 3)
}

/// The depth chosen when none is asked for: 8 bits when every channel is `u8`, else 16.
pub(crate) fn automatic_depth(dtypes: &[Dtype]) -> SampleDepth {
    if dtypes.iter().all(|&d| d == Dtype::U8) {
        SampleDepth::Eight
    } else {
        SampleDepth::Sixteen
    }
}

/// A 16-bit sample as PNG stores it.
#[allow(
    clippy::big_endian_bytes,
    reason = "PNG stores 16-bit samples big-endian"
)]
fn png_sample(sample: u16) -> [u8; 2] {
    sample.to_be_bytes()
}

/// Turns values on the common scale into integer samples of one channel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quantizer {
    max: f64,
    srgb: bool,
}

impl Quantizer {
    /// For a channel of `dtype` written with samples of `max`; `colour` is false for alpha.
    pub(crate) fn new(dtype: Dtype, max: u16, transfer: Transfer, colour: bool) -> Quantizer {
        Quantizer {
            max: f64::from(max),
            srgb: colour && transfer == Transfer::Srgb && is_float(dtype),
        }
    }

    /// The sample for `unit`, a value on the common scale.
    pub(crate) fn sample(self, unit: f64) -> u16 {
        if unit.is_nan() {
            return 0;
        }
        let clamped = unit.clamp(0.0, 1.0);
        let encoded = if self.srgb {
            srgb_encode(clamped)
        } else {
            clamped
        };
        // In [0, max] by the clamp.
        (encoded * self.max).round() as u16
    }
}

/// How the channels of a band become interleaved pixels of PNG or TIFF samples.
pub(crate) struct PixelLayout {
    pub depth: SampleDepth,
    channels: Vec<(Dtype, Quantizer)>,
}

impl PixelLayout {
    pub(crate) fn new(dtypes: &[Dtype], depth: SampleDepth, transfer: Transfer) -> PixelLayout {
        let count = dtypes.len();
        let channels = dtypes
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                let colour = !is_alpha(count, k);
                (d, Quantizer::new(d, depth.max(), transfer, colour))
            })
            .collect();
        PixelLayout { depth, channels }
    }

    /// Samples per pixel.
    pub(crate) fn samples(&self) -> usize {
        self.channels.len()
    }

    /// Bytes of a row of `width` pixels.
    pub(crate) fn row_bytes(&self, width: usize) -> usize {
        width * self.samples() * self.depth.bytes()
    }

    /// The band's rows (one buffer per channel, elements of its type) as interleaved
    /// pixels; 16-bit samples big-endian (PNG) or little-endian (TIFF).
    pub(crate) fn pixels(&self, band: &[Vec<u8>], big_endian: bool) -> Vec<u8> {
        let planes: Vec<Vec<u16>> = band
            .par_iter()
            .zip(&self.channels)
            .map(|(bytes, &(dtype, quantizer))| {
                let mut plane = Vec::with_capacity(bytes.len() / dtype.size());
                for_each_unit(bytes, dtype, |unit| plane.push(quantizer.sample(unit)));
                plane
            })
            .collect();
        let pixels = planes.first().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(pixels * self.samples() * self.depth.bytes());
        for i in 0..pixels {
            for plane in &planes {
                let sample = plane[i];
                match (self.depth, big_endian) {
                    // At most 255 by the quantizer's maximum.
                    (SampleDepth::Eight, _) => out.push(sample as u8),
                    (SampleDepth::Sixteen, true) => out.extend(png_sample(sample)),
                    (SampleDepth::Sixteen, false) => out.extend(sample.to_le_bytes()),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    fn samples<T: bytemuck::Pod>(values: &[T], dtype: Dtype, depth: SampleDepth) -> Vec<u16> {
        let layout = PixelLayout::new(&[dtype], depth, Transfer::Srgb);
        let bytes = layout.pixels(&[bytemuck::cast_slice(values).to_vec()], false);
        match depth {
            SampleDepth::Eight => bytes.iter().map(|&b| u16::from(b)).collect(),
            SampleDepth::Sixteen => bytemuck::pod_collect_to_vec(&bytes),
        }
    }

    #[test]
    fn integers_are_scaled_through_the_normalised_value() {
        let eight = SampleDepth::Eight;
        let sixteen = SampleDepth::Sixteen;
        assert_eq!(samples(&[0u8, 1, 255], Dtype::U8, sixteen), [0, 257, 65535]);
        assert_eq!(
            samples(&[65535u16, 257, 128], Dtype::U16, eight),
            [255, 1, 0]
        );
        assert_eq!(
            samples(&[u32::MAX, 1 << 16, 0], Dtype::U32, sixteen),
            [65535, 1, 0]
        );
        assert_eq!(samples(&[-5i16, 32767], Dtype::I16, eight), [0, 255]);
    }

    #[test]
    fn floats_are_clamped_srgb_encoded_and_rounded() {
        let values = [-1.0f32, 0.0, 0.002, 0.5, 1.0, 7.0, f32::NAN];
        assert_eq!(
            samples(&values, Dtype::F32, SampleDepth::Eight),
            [0, 0, 7, 188, 255, 255, 0]
        );
        let halves = [f16::from_f32(0.5)];
        assert_eq!(samples(&halves, Dtype::F16, SampleDepth::Sixteen), [48_192]);
    }

    #[test]
    fn alpha_and_linear_transfer_skip_the_srgb_curve() {
        let layout = PixelLayout::new(
            &[Dtype::F32, Dtype::F32],
            SampleDepth::Eight,
            Transfer::Srgb,
        );
        let band = [0.5f32; 1].map(|v| bytemuck::bytes_of(&v).to_vec());
        let pixels = layout.pixels(&[band[0].clone(), band[0].clone()], false);
        assert_eq!(pixels, [188, 128]);
        let linear = PixelLayout::new(&[Dtype::F32], SampleDepth::Eight, Transfer::Linear);
        assert_eq!(linear.pixels(&band, false), [128]);
    }

    #[test]
    fn sixteen_bit_samples_are_in_the_requested_byte_order() {
        let layout = PixelLayout::new(&[Dtype::U16], SampleDepth::Sixteen, Transfer::Srgb);
        let band = [bytemuck::cast_slice(&[0x0102u16]).to_vec()];
        assert_eq!(layout.pixels(&band, true), [1, 2]);
        assert_eq!(layout.pixels(&band, false), [2, 1]);
    }
}
