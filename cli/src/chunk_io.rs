//! `cimg get` and `cimg set`: one chunk out to a .npy file, or in from one.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;

use crate::Context;
use crate::args::{ChunkArgs, GetArgs, SetArgs};
use crate::describe::{
    channel_at, channel_label, channel_name, find_channel, open_read_only, open_writable,
};
use crate::failure::{Failure, Outcome, Status};
use crate::npy::{ChunkAt, read_chunk, write_chunk};
use compressed_image::AnyImage;

/// The channel `at` names in `image` and its label for messages.
fn locate(
    image: &AnyImage,
    file: &Path,
    at: &ChunkArgs,
) -> Result<(compressed_image::AnyChannel, String), Failure> {
    let index = find_channel(image, file, &at.channel)?;
    Ok((
        channel_at(image, file, index)?,
        channel_label(index, &channel_name(image, index)),
    ))
}

/// Write the chunk to `--out` (replaced only once complete) or to standard output.
pub fn get(ctx: &Context, args: GetArgs) -> Outcome {
    let file = &args.file;
    let image = open_read_only(file)?;
    let (channel, label) = locate(&image, file, &args.at)?;
    let stdout = Path::new("-");
    let at = ChunkAt {
        file,
        label: &label,
        index: args.at.chunk,
        npy: args.out.as_deref().unwrap_or(stdout),
    };
    match &args.out {
        Some(out) => {
            let (temp, dir) = temp_beside(out)?;
            write_chunk(&channel, &at, BufWriter::new(temp.as_file()))?;
            ctx.check_interrupt(file)?;
            temp.persist(out).map_err(|e| {
                Failure::failed(out, format!("writing into {}: {}", dir.display(), e.error))
            })?;
        }
        None => {
            let out = std::io::stdout();
            if out.is_terminal() {
                return Err(Failure::general(
                    "refusing to write a binary .npy to a terminal: give --out F.npy or redirect",
                    Status::Failed,
                ));
            }
            let mut out = BufWriter::new(out.lock());
            write_chunk(&channel, &at, &mut out)?;
            out.flush().map_err(|e| {
                Failure::general(format!("writing standard output: {e}"), Status::Failed)
            })?;
        }
    }
    Ok(Status::Success)
}

/// A new file beside `path` that becomes `path` when persisted, with the permissions a
/// plainly created file gets; and the directory, for messages.
fn temp_beside(path: &Path) -> Result<(tempfile::NamedTempFile, &Path), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::Builder::new()
        .prefix(".cimg-get-")
        .suffix(".npy")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Failure::failed(path, format!("creating a file in {}: {e}", dir.display())))?;
    Ok((temp, dir))
}

/// Store the .npy array as the chunk, after checking it matches.
pub fn set(ctx: &Context, args: SetArgs) -> Outcome {
    let file = &args.file;
    let npy = File::open(&args.npy).map_err(|e| Failure::failed(&args.npy, e.to_string()))?;
    let image = open_writable(file)?;
    let (channel, label) = locate(&image, file, &args.at)?;
    let at = ChunkAt {
        file,
        label: &label,
        index: args.at.chunk,
        npy: &args.npy,
    };
    ctx.check_interrupt(file)?;
    read_chunk(&channel, &at, BufReader::new(npy))?;
    crate::output::emit(&format!(
        "{}: chunk {} of {label} replaced from {}\n",
        file.display(),
        args.at.chunk,
        args.npy.display()
    ))?;
    Ok(Status::Success)
}
