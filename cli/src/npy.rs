//! One chunk as a NumPy `.npy` array of shape `(rows, width)`, C order: written from a
//! channel, and read back checked against the chunk before anything is stored.

use std::fs::File;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::Path;

use compressed_image::{AnyChannel, Channel, Dtype, Progress, Sample, f16};
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
    write_array(at.npy, &shape, out, std::iter::once(Ok(data)))
}

/// Write a .npy array of `shape` to `out` (the file `npy`, for messages) from `parts`,
/// consecutive runs of its elements in C order; the first failed part ends it.
fn write_array<T: AutoSerialize>(
    npy: &Path,
    shape: &[u64],
    out: impl Write,
    parts: impl Iterator<Item = Result<Vec<T>, Failure>>,
) -> Result<(), Failure> {
    let write_error = |e: std::io::Error| Failure::failed(npy, format!("writing: {e}"));
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .writer(out)
        .begin_nd()
        .map_err(write_error)?;
    for part in parts {
        writer.extend(part?).map_err(write_error)?;
    }
    writer.finish().map_err(write_error)
}

/// Write the whole of `channel` of the image `file` to `out` (the file `npy`) as a
/// `(height, width)` array, a chunk at a time, reporting each chunk's bytes to `progress`
/// (which may cancel).
pub fn write_channel(
    channel: &AnyChannel,
    file: &Path,
    npy: &Path,
    out: impl Write,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    with_element_type!(
        channel.dtype(),
        file,
        write_channel_typed(channel, file, npy, out, progress)
    )
}

fn write_channel_typed<T: Sample + AutoSerialize>(
    channel: &AnyChannel,
    file: &Path,
    npy: &Path,
    out: impl Write,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    let typed =
        Channel::<T>::try_from_any(channel.clone()).map_err(|e| Failure::during(file, e))?;
    let shape = [channel.height() as u64, channel.width() as u64];
    let chunks = (0..channel.num_chunks()).map(|index| {
        let data = typed
            .get_chunk_vec(index)
            .map_err(|e| Failure::during(file, e))?;
        match progress.advance(std::mem::size_of_val(data.as_slice()) as u64) {
            ControlFlow::Continue(()) => Ok(data),
            ControlFlow::Break(()) => Err(Failure::interrupted(npy)),
        }
    });
    write_array(npy, &shape, out, chunks)
}

/// Write a file at `path` through `write`: into a temporary file beside it (named
/// `.cimg-<what>-….npy`, with the permissions a plainly created file gets), renamed into
/// place only when `write` succeeded; otherwise the temporary file is removed and
/// whatever was at `path` stays.
pub fn write_beside(
    path: &Path,
    what: &str,
    write: impl FnOnce(&File) -> Result<(), Failure>,
) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::Builder::new()
        .prefix(&format!(".cimg-{what}-"))
        .suffix(".npy")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Failure::failed(path, format!("creating a file in {}: {e}", dir.display())))?;
    write(temp.as_file())?;
    temp.persist(path).map_err(|e| {
        Failure::failed(path, format!("writing into {}: {}", dir.display(), e.error))
    })?;
    Ok(())
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
