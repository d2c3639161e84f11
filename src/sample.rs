//! Element types: the run-time [`Dtype`] tag and the sealed compile-time [`Sample`] trait.

use std::fmt;

use half::f16;

/// The element type of a channel, as stored in the file (catalog `dtype` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// IEEE 754 half precision ([`half::f16`])
    F16,
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl Dtype {
    /// Every element type, in file-code order.
    pub const ALL: [Dtype; 9] = [
        Dtype::U8,
        Dtype::U16,
        Dtype::U32,
        Dtype::I8,
        Dtype::I16,
        Dtype::I32,
        Dtype::F16,
        Dtype::F32,
        Dtype::F64,
    ];

    /// Size of one element in bytes.
    pub const fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 | Dtype::F16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    /// The code that stands for this type in the file format.
    pub const fn code(self) -> u8 {
        match self {
            Dtype::U8 => 1,
            Dtype::U16 => 2,
            Dtype::U32 => 3,
            Dtype::I8 => 4,
            Dtype::I16 => 5,
            Dtype::I32 => 6,
            Dtype::F16 => 7,
            Dtype::F32 => 8,
            Dtype::F64 => 9,
        }
    }

    /// The type a file code stands for, if any.
    pub fn from_code(code: u8) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.code() == code)
    }

    /// Lower-case name, as numpy spells it (`"float32"`, `"uint8"`…).
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::F16 => "float16",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A channel element type: plain old data with a fixed [`Dtype`].
///
/// Sealed: implemented for `u8`, `i8`, `u16`, `i16`, `u32`, `i32`, [`half::f16`], `f32`
/// and `f64` only, the types the file format defines.
pub trait Sample: bytemuck::Pod + Send + Sync + fmt::Debug + sealed::Sealed {
    /// The run-time tag of this type.
    const DTYPE: Dtype;
}

macro_rules! impl_sample {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Sample for $t {
            const DTYPE: Dtype = Dtype::$d;
        }
    )*};
}

impl_sample!(
    u8 => U8, u16 => U16, u32 => U32,
    i8 => I8, i16 => I16, i32 => I32,
    f16 => F16, f32 => F32, f64 => F64,
);

/// The raw bits of one element, zero-extended to 64 bits (the file's fill-value encoding).
pub(crate) fn fill_bits<T: Sample>(value: T) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..T::DTYPE.size()].copy_from_slice(bytemuck::bytes_of(&value));
    u64::from_le_bytes(bytes)
}

/// The little-endian byte pattern of a fill value for an element of `size` bytes.
pub(crate) fn fill_pattern(bits: u64, size: usize) -> [u8; 8] {
    let mut bytes = bits.to_le_bytes();
    bytes[size..].fill(0);
    bytes
}

/// If every element of `bytes` (elements of `size` bytes) is bit-identical, its bits.
pub(crate) fn uniform_bits(bytes: &[u8], size: usize) -> Option<u64> {
    let first = bytes.get(..size)?;
    // Every element equals the first exactly when the bytes equal themselves shifted by one
    // element: one memcmp over the chunk instead of one comparison call per element.
    if bytes.len().is_multiple_of(size) && bytes[size..] == bytes[..bytes.len() - size] {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(first);
        Some(u64::from_le_bytes(b))
    } else {
        None
    }
}

/// Fill `out` (elements of `size` bytes) with the element whose bits are `bits`.
pub(crate) fn fill_bytes(out: &mut [u8], bits: u64, size: usize) {
    let pattern = fill_pattern(bits, size);
    if pattern[..size].iter().all(|&b| b == pattern[0]) {
        out.fill(pattern[0]);
    } else {
        for e in out.chunks_exact_mut(size) {
            e.copy_from_slice(&pattern[..size]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_codes_round_trip() {
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_code(d.code()), Some(d));
        }
        assert_eq!(Dtype::from_code(0), None);
        assert_eq!(Dtype::from_code(10), None);
    }

    #[test]
    fn fill_bits_keep_nan_payload_and_negative_zero() {
        let nan = f32::from_bits(0x7fc0_1234);
        assert_eq!(fill_bits(nan), 0x7fc0_1234);
        assert_eq!(fill_bits(-0.0f64), 0x8000_0000_0000_0000);
        let mut out = [0u8; 8];
        fill_bytes(&mut out, fill_bits(nan), 4);
        let back: [f32; 2] = bytemuck::cast(out);
        assert_eq!(back[1].to_bits(), 0x7fc0_1234);
    }

    #[test]
    fn uniform_bits_compares_bits_not_values() {
        let zeros = [0.0f32, -0.0];
        assert_eq!(uniform_bits(bytemuck::cast_slice(&zeros), 4), None);
        let same = [1.5f32; 3];
        assert_eq!(
            uniform_bits(bytemuck::cast_slice(&same), 4),
            Some(1.5f32.to_bits() as u64)
        );
    }
}
