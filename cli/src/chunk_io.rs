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
use crate::npy::{ChunkAt, read_chunk, write_beside, write_chunk};
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
            write_beside(out, "get", |temp| {
                write_chunk(&channel, &at, BufWriter::new(temp))?;
                ctx.check_interrupt(file)
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
