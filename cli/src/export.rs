//! `cimg export`: a .cimg file out as OpenEXR, TIFF or PNG (by the library), or one
//! channel as a .npy array; with a progress bar either way, and an interrupt leaving no
//! partial file.

use std::io::BufWriter;
use std::path::Path;

use compressed_image::{AnyImage, ChannelSelection, ImageFormat, Progress, WriteOptions};

use crate::Context;
use crate::args::ExportArgs;
use crate::describe::{channel_at, find_channel, open_read_only};
use crate::failure::{Failure, Outcome, Status};
use crate::npy::{write_beside, write_channel};
use crate::output::emit;

/// What the extension of OUT asks for.
enum Target {
    Image(ImageFormat),
    Npy,
}

/// The target `out`'s extension names.
fn target_of(out: &Path) -> Result<Target, Failure> {
    let extension = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if extension == "npy" {
        return Ok(Target::Npy);
    }
    ImageFormat::from_extension(&extension)
        .map(Target::Image)
        .ok_or_else(|| {
            Failure::usage(
                out,
                format!(
                    "unknown extension {extension:?}: give a file name ending in .exr, .tif, \
                     .tiff, .png or .npy"
                ),
            )
        })
}

/// The write options for `format`, refusing a compression the format does not have.
fn write_options(args: &ExportArgs, format: ImageFormat) -> Result<WriteOptions, Failure> {
    let mut options = WriteOptions::default().format(format);
    options.channels = args.channels.selection();
    let Some(compression) = args.compression else {
        return Ok(options);
    };
    let refuse = |known: &str| {
        let name = clap::ValueEnum::to_possible_value(&compression)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        Failure::usage(
            &args.out,
            format!("--compression {name} does not apply to this format ({known})"),
        )
    };
    Ok(match format {
        ImageFormat::OpenExr => options.exr_compression(compression.exr().ok_or_else(|| {
            refuse("OpenEXR: none, rle, zips, zip, piz, pxr24, b44, b44a, dwaa, dwab")
        })?),
        ImageFormat::Tiff => options.tiff_compression(
            compression
                .tiff()
                .ok_or_else(|| refuse("TIFF: none, lzw, deflate"))?,
        ),
        _ => return Err(refuse("PNG has no choice of compression")),
    })
}

/// Export the image and print what was written.
pub fn run(ctx: &Context, args: ExportArgs) -> Outcome {
    let (input, out) = (&args.input, &args.out);
    let target = target_of(out)?;
    let image = open_read_only(input)?;
    ctx.check_interrupt(out)?;
    let label = format!("export {}", out.display());
    let written = match target {
        Target::Npy => export_npy(ctx, &args, &image, label)?,
        Target::Image(format) => {
            let options = write_options(&args, format)?;
            let reporter = ctx.reporter(label);
            image
                .write_with_progress(out, &options, &reporter)
                .map_err(|e| Failure::writing(out, e))?;
            match format {
                ImageFormat::OpenExr => "OpenEXR",
                ImageFormat::Tiff => "TIFF",
                _ => "PNG",
            }
            .to_string()
        }
    };
    emit(&format!(
        "{}: {written}, {} x {}\n",
        out.display(),
        image.width(),
        image.height()
    ))?;
    Ok(Status::Success)
}

/// Write the selected channel of `image` as a .npy array, with a progress bar; what was
/// written, for the summary.
fn export_npy(
    ctx: &Context,
    args: &ExportArgs,
    image: &AnyImage,
    label: String,
) -> Result<String, Failure> {
    let (input, out) = (&args.input, &args.out);
    if args.compression.is_some() {
        return Err(Failure::usage(out, ".npy files take no --compression"));
    }
    let index = npy_channel(image, input, &args.channels.selection())?;
    let channel = channel_at(image, input, index)?;
    let reporter = ctx.reporter(label);
    let bytes = (channel.width() * channel.height() * channel.dtype().size()) as u64;
    reporter.start("export", bytes);
    let done = write_beside(out, "export", |temp| {
        write_channel(&channel, input, out, BufWriter::new(temp), &reporter)
    });
    reporter.finish();
    done?;
    Ok(format!("channel {index} as a .npy array"))
}

/// The one channel a .npy file gets: the one selected, or the image's only channel.
fn npy_channel(
    image: &AnyImage,
    input: &Path,
    selection: &ChannelSelection,
) -> Result<usize, Failure> {
    let one = |count: usize| {
        Failure::usage(
            input,
            format!(
                "a .npy file holds one channel, not {count}: choose it with --channels NAME \
                 or --channel-indices I"
            ),
        )
    };
    match selection {
        ChannelSelection::Names(names) if names.len() == 1 => find_channel(image, input, &names[0]),
        ChannelSelection::Names(names) => Err(one(names.len())),
        ChannelSelection::Indices(indices) if indices.len() == 1 => {
            let index = indices[0];
            if index < image.num_channels() {
                Ok(index)
            } else {
                find_channel(image, input, &index.to_string())
            }
        }
        ChannelSelection::Indices(indices) => Err(one(indices.len())),
        _ if image.num_channels() == 1 => Ok(0),
        _ => Err(one(image.num_channels())),
    }
}
