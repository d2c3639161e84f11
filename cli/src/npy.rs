//! One chunk as a NumPy `.npy` array of shape `(rows, width)`, C order: written from a
//! channel, and read back checked against the chunk before anything is stored.

use std::io::{Read, Write};
use std::path::Path;

use compressed_image::{AnyChannel, Channel, Dtype, Sample, f16};
use npyz::{AutoSerialize, DType, Deserialize, NpyFile, Order, WriterBuilder};

use crate::failure::Failure;

/// Run `$f::<T>($args)` with `T` the element type `$dtype` stands for.
macro_rules! with_element_type {
    ($dtype:expr, $path:expr, $f:ident($($args:expr),*)) => {
        match $dtype {
            Dtype::U8 => $f::<u8>($($args),*),
            Dtype::U16 => $f::<u16>($($args),*),
            Dtype::U32 => $f::<u32>($($args),*),
            Dtype::I8 => $f::<i8>($($args),*),
            Dtype::I16 => $f::<i16>($($args),*),
            Dtype::I32 => $f::<i32>($($args),*),
            Dtype::F16 => $f::<f16>($($args),*),
            Dtype::F32 => $f::<f32>($($args),*),
            Dtype::F64 => $f::<f64>($($args),*),
            other => Err(Failure::failed($path, format!("element type {other} is not supported"))),
        }
    };
}

/// What a chunk is called in messages, and the file its array goes to or comes from.
pub struct ChunkAt<'a> {
    /// The .cimg file.
    pub file: &'a Path,
    /// The channel, e.g. `channel 0 "depth"`.
    pub label: &'a str,
    /// The chunk's index.
    pub index: usize,
    /// The .npy file (or `-` for standard output).
    pub npy: &'a Path,
}

/// The shape `(rows, width)` of chunk `index` of `channel`.
fn chunk_shape(channel: &AnyChannel, at: &ChunkAt) -> Result<[u64; 2], Failure> {
    let elems = channel
        .chunk_elems_at(at.index)
        .map_err(|e| Failure::during(at.file, e))?;
    Ok([(elems / channel.width()) as u64, channel.width() as u64])
}

/// Write chunk `at.index` of `channel` to `out` as a .npy array.
pub fn write_chunk(channel: &AnyChannel, at: &ChunkAt, out: impl Write) -> Result<(), Failure> {
    with_element_type!(channel.dtype(), at.file, write_typed(channel, at, out))
}

fn write_typed<T: Sample + AutoSerialize>(
    channel: &AnyChannel,
    at: &ChunkAt,
    out: impl Write,
) -> Result<(), Failure> {
    let shape = chunk_shape(channel, at)?;
    let typed =
        Channel::<T>::try_from_any(channel.clone()).map_err(|e| Failure::during(at.file, e))?;
    let data = typed
        .get_chunk_vec(at.index)
        .map_err(|e| Failure::during(at.file, e))?;
    let write_error = |e: std::io::Error| Failure::failed(at.npy, format!("writing: {e}"));
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(out)
        .begin_nd()
        .map_err(write_error)?;
    writer.extend(data).map_err(write_error)?;
    writer.finish().map_err(write_error)
}

/// Read a .npy array from `input` and store it as chunk `at.index` of `channel`, once its
/// element type, order and shape are exactly the chunk's.
pub fn read_chunk(channel: &AnyChannel, at: &ChunkAt, input: impl Read) -> Result<(), Failure> {
    with_element_type!(channel.dtype(), at.file, read_typed(channel, at, input))
}

fn read_typed<T: Sample + AutoSerialize + Deserialize>(
    channel: &AnyChannel,
    at: &ChunkAt,
    input: impl Read,
) -> Result<(), Failure> {
    let shape = chunk_shape(channel, at)?;
    let refuse = |message: String| Failure::failed(at.npy, message);
    let npy = NpyFile::new(input).map_err(|e| refuse(format!("not a readable .npy file: {e}")))?;
    let found = npy.dtype();
    if !same_element_type(&found, &T::default_dtype()) {
        return Err(refuse(format!(
            "element type {} does not match {} of {}, which holds {}",
            dtype_text(&found),
            chunk_name(at),
            at.file.display(),
            channel.dtype()
        )));
    }
    if npy.shape() != shape {
        return Err(refuse(format!(
            "shape {} does not match {} of {}, which is {} (rows, width)",
            shape_text(npy.shape()),
            chunk_name(at),
            at.file.display(),
            shape_text(&shape)
        )));
    }
    if npy.order() != Order::C && shape[0] > 1 && shape[1] > 1 {
        return Err(refuse(
            "the array is in Fortran order; save a C-ordered one (numpy.ascontiguousarray)".into(),
        ));
    }
    let data: Vec<T> = npy
        .into_vec()
        .map_err(|e| refuse(format!("reading the array: {e}")))?;
    let typed =
        Channel::<T>::try_from_any(channel.clone()).map_err(|e| Failure::during(at.file, e))?;
    typed
        .set_chunk(at.index, &data)
        .map_err(|e| Failure::during(at.file, e))
}

/// Whether `found` is the plain element type `wanted` in either byte order.
fn same_element_type(found: &DType, wanted: &DType) -> bool {
    match (found, wanted) {
        (DType::Plain(found), DType::Plain(wanted)) => {
            (found.type_char(), found.size_field()) == (wanted.type_char(), wanted.size_field())
        }
        _ => false,
    }
}

/// `<f8`, as numpy spells a plain type; a structured type as its description.
fn dtype_text(dtype: &DType) -> String {
    match dtype {
        DType::Plain(plain) => plain.to_string(),
        other => other.descr(),
    }
}

fn chunk_name(at: &ChunkAt) -> String {
    format!("chunk {} of {}", at.index, at.label)
}

/// `(8, 128)`, as numpy prints a shape.
fn shape_text(shape: &[u64]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
