//! Element type conversion of imported samples, as OpenImageIO converts when asked for a
//! type other than the file's:
//!
//! - integer → float: normalised, divided by the type's maximum (`u8` 255 → 1.0, `u16`
//!   65535 → 1.0, `i16` 32767 → 1.0; the most negative signed value comes out just
//!   below −1);
//! - float → integer: clamped to [0, 1] (unsigned) or [−1, 1] (signed), scaled by the
//!   type's maximum and rounded to nearest, halves away from zero (0.5 → `u8` 128); NaN
//!   becomes 0;
//! - integer → another integer: through the normalised value, so `u16` 65535 → `u8` 255
//!   and a negative value → 0 in an unsigned type;
//! - float → float: rounded to nearest where the target is narrower (`f32` → `f16`), exact
//!   otherwise.

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::sample::Dtype;

/// A sample type as the conversion sees it.
trait Element: bytemuck::Pod {
    /// The value on the common scale: normalised for integers, itself for floats.
    fn to_unit(self) -> f64;
    /// The element nearest to `unit` on the common scale (clamped and scaled for
    /// integers).
    fn from_unit(unit: f64) -> Self;
}

macro_rules! integer_element {
    ($($t:ty => $min_unit:expr),* $(,)?) => {$(
        impl Element for $t {
            fn to_unit(self) -> f64 {
                self as f64 / <$t>::MAX as f64
            }
            fn from_unit(unit: f64) -> Self {
                if unit.is_nan() {
                    return 0;
                }
                // `as` saturates, and the clamp keeps the product in range anyway.
                (unit.clamp($min_unit, 1.0) * <$t>::MAX as f64).round() as $t
            }
        }
    )*};
}

integer_element!(u8 => 0.0, u16 => 0.0, u32 => 0.0, i8 => -1.0, i16 => -1.0, i32 => -1.0);

impl Element for f16 {
    fn to_unit(self) -> f64 {
        self.to_f64()
    }
    fn from_unit(unit: f64) -> Self {
        f16::from_f64(unit)
    }
}

impl Element for f32 {
    fn to_unit(self) -> f64 {
        self as f64
    }
    fn from_unit(unit: f64) -> Self {
        unit as f32
    }
}

impl Element for f64 {
    fn to_unit(self) -> f64 {
        self
    }
    fn from_unit(unit: f64) -> Self {
        unit
    }
}

/// Convert elements of `S` (little-endian bytes, any alignment) into `out`.
fn convert_elements<S: Element, D: Element>(src: &[u8], out: &mut [u8]) {
    let from = src.chunks_exact(size_of::<S>());
    for (o, s) in out.chunks_exact_mut(size_of::<D>()).zip(from) {
        let value: S = bytemuck::pod_read_unaligned(s);
        o.copy_from_slice(bytemuck::bytes_of(&D::from_unit(value.to_unit())));
    }
}

/// Evaluates `$body` with `$T` naming the element type of `$dtype`.
macro_rules! with_element {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            Dtype::U8 => {
                type $T = u8;
                $body
            }
            Dtype::U16 => {
                type $T = u16;
                $body
            }
            Dtype::U32 => {
                type $T = u32;
                $body
            }
            Dtype::I8 => {
                type $T = i8;
                $body
            }
            Dtype::I16 => {
                type $T = i16;
                $body
            }
            Dtype::I32 => {
                type $T = i32;
                $body
            }
            Dtype::F16 => {
                type $T = f16;
                $body
            }
            Dtype::F32 => {
                type $T = f32;
                $body
            }
            Dtype::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

/// Convert `src` (elements of `from`, little-endian) into `out` (elements of `to`); the
/// two hold the same number of elements. Same types copy.
pub(crate) fn convert(src: &[u8], from: Dtype, out: &mut [u8], to: Dtype) {
    debug_assert_eq!(src.len() / from.size(), out.len() / to.size());
    if from == to {
        out.copy_from_slice(src);
        return;
    }
    if convert_halves(src, from, out, to) {
        return;
    }
    with_element!(from, S => with_element!(to, D => convert_elements::<S, D>(src, out)))
}

/// `f16` ⇄ `f32` a slice at a time (F16C where the CPU has it), when both buffers are
/// aligned for their elements and the machine is little-endian like the bytes; false when
/// it did nothing. Same results as the element path: widening is exact, narrowing rounds
/// to nearest, ties to even.
fn convert_halves(src: &[u8], from: Dtype, out: &mut [u8], to: Dtype) -> bool {
    if cfg!(target_endian = "big") {
        return false;
    }
    match (from, to) {
        (Dtype::F16, Dtype::F32) => {
            match (
                bytemuck::try_cast_slice::<u8, f16>(src),
                bytemuck::try_cast_slice_mut::<u8, f32>(out),
            ) {
                (Ok(halves), Ok(floats)) => halves.convert_to_f32_slice(floats),
                _ => return false,
            }
        }
        (Dtype::F32, Dtype::F16) => {
            match (
                bytemuck::try_cast_slice::<u8, f32>(src),
                bytemuck::try_cast_slice_mut::<u8, f16>(out),
            ) {
                (Ok(floats), Ok(halves)) => halves.convert_from_f32_slice(floats),
                _ => return false,
            }
        }
        _ => return false,
    }
    true
}

/// Call `visit` with every element of `src` (elements of `dtype`, little-endian) on the
/// common scale: integers normalised by their type's maximum (so negative for negative
/// signed values), floats as they are.
pub(crate) fn for_each_unit(src: &[u8], dtype: Dtype, mut visit: impl FnMut(f64)) {
    with_element!(dtype, S => {
        for s in src.chunks_exact(size_of::<S>()) {
            visit(bytemuck::pod_read_unaligned::<S>(s).to_unit());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converted<S: Element, D: Element + Default>(values: &[S], from: Dtype, to: Dtype) -> Vec<D> {
        let mut out = vec![D::default(); values.len()];
        convert(
            bytemuck::cast_slice(values),
            from,
            bytemuck::cast_slice_mut(&mut out),
            to,
        );
        out
    }

    // The expected values are what OpenImageIO 3.2's `read_image` returns for the same
    // conversions.
    #[test]
    fn floats_to_integers_clamp_scale_and_round_half_away() {
        let floats = [-0.5f32, 0.0, 0.5, 0.25, 1.0, 1.5];
        assert_eq!(
            converted::<f32, u8>(&floats, Dtype::F32, Dtype::U8),
            [0, 0, 128, 64, 255, 255]
        );
        assert_eq!(
            converted::<f32, i8>(&floats, Dtype::F32, Dtype::I8),
            [-64, 0, 64, 32, 127, 127]
        );
        assert_eq!(
            converted::<f32, u16>(&floats, Dtype::F32, Dtype::U16),
            [0, 0, 32768, 16384, 65535, 65535]
        );
        assert_eq!(
            converted::<f32, u8>(&[f32::NAN], Dtype::F32, Dtype::U8),
            [0]
        );
    }

    #[test]
    fn integers_to_floats_are_normalised() {
        let out = converted::<u8, f32>(&[0, 1, 128, 255], Dtype::U8, Dtype::F32);
        let expected = [0.0, 0.003_921_569, 0.501_960_8, 1.0];
        for (o, e) in out.iter().zip(expected) {
            assert!((o - e).abs() < 1e-7, "{out:?}");
        }
        assert_eq!(
            converted::<i16, f64>(&[32767, 0], Dtype::I16, Dtype::F64),
            [1.0, 0.0]
        );
    }

    #[test]
    fn integers_to_integers_go_through_the_normalised_value() {
        assert_eq!(
            converted::<u16, u8>(&[65535, 257, 0], Dtype::U16, Dtype::U8),
            [255, 1, 0]
        );
        assert_eq!(
            converted::<i16, u8>(&[-5, 32767], Dtype::I16, Dtype::U8),
            [0, 255]
        );
        assert_eq!(
            converted::<u8, u16>(&[255, 1], Dtype::U8, Dtype::U16),
            [65535, 257]
        );
    }

    #[test]
    fn floats_convert_exactly_where_representable() {
        let halves = [f16::from_f32(0.5), f16::from_f32(-2.0)];
        assert_eq!(
            converted::<f16, f32>(&halves, Dtype::F16, Dtype::F32),
            [0.5, -2.0]
        );
        assert_eq!(
            converted::<f32, f16>(&[0.1], Dtype::F32, Dtype::F16),
            [f16::from_f32(0.1)]
        );
        let same = [1u32, 2, 3];
        assert_eq!(converted::<u32, u32>(&same, Dtype::U32, Dtype::U32), same);
    }

    /// Bits of `to`'s elements, with every NaN as one value: hardware and software
    /// conversions may quiet a NaN's payload differently.
    fn canonical(bytes: &[u8], to: Dtype) -> Vec<u32> {
        match to {
            Dtype::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(bytes)
                .iter()
                .map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
                .collect(),
            _ => bytemuck::pod_collect_to_vec::<u8, f16>(bytes)
                .iter()
                .map(|v| {
                    if v.is_nan() {
                        u32::MAX
                    } else {
                        u32::from(v.to_bits())
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn slice_conversion_of_halves_matches_the_element_path_for_every_value() {
        let halves: Vec<u16> = (0..=u16::MAX).collect();
        // f32 values around every f16 boundary: each f16's own value, the midpoints to its
        // neighbours (ties to even) and one f32 step either side of them.
        let floats: Vec<f32> = halves
            .iter()
            .flat_map(|&h| {
                let v = f16::from_bits(h).to_f32();
                let mid =
                    (f64::from(v) + f64::from(f16::from_bits(h.wrapping_add(1)).to_f32())) / 2.0;
                let mid = mid as f32;
                [
                    v,
                    mid,
                    f32::from_bits(mid.to_bits().wrapping_add(1)),
                    f32::from_bits(mid.to_bits().wrapping_sub(1)),
                ]
            })
            .collect();
        for (src, from, to, n) in [
            (
                bytemuck::cast_slice::<u16, u8>(&halves),
                Dtype::F16,
                Dtype::F32,
                halves.len(),
            ),
            (
                bytemuck::cast_slice::<f32, u8>(&floats),
                Dtype::F32,
                Dtype::F16,
                floats.len(),
            ),
        ] {
            let mut fast = vec![0u32; n]; // u32: aligned for either target
            let fast = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut fast)[..n * to.size()];
            assert!(convert_halves(src, from, fast, to));
            let mut slow = vec![0u8; n * to.size()];
            with_element!(from, S => with_element!(to, D => convert_elements::<S, D>(src, &mut slow)));
            assert_eq!(
                canonical(fast, to),
                canonical(&slow, to),
                "{from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn unaligned_buffers_take_the_element_path() {
        let halves = [f16::from_f32(1.5), f16::from_f32(-0.25)];
        let mut words = [0u32; 2]; // 4-aligned, so byte 1 on is misaligned for f16
        let src = bytemuck::cast_slice_mut::<u32, u8>(&mut words);
        src[1..5].copy_from_slice(bytemuck::cast_slice(&halves));
        let mut out = vec![0u32; 3];
        let out_bytes = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut out)[..8];
        assert!(!convert_halves(
            &src[1..5],
            Dtype::F16,
            out_bytes,
            Dtype::F32
        ));
        convert(&src[1..5], Dtype::F16, out_bytes, Dtype::F32);
        assert_eq!(
            bytemuck::pod_collect_to_vec::<u8, f32>(out_bytes),
            [1.5, -0.25]
        );
    }
}
