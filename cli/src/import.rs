//! `cimg import`: an OpenEXR, TIFF, PNG or JPEG file streamed into a new .cimg file, with
//! the library's progress of the import (the bytes stored, before compression).

use compressed_image::{AnyImage, ReadOptions, Settings};
use indicatif::HumanBytes;

use crate::Context;
use crate::args::ImportArgs;
use crate::describe::ratio;
use crate::failure::{Failure, Outcome, Status};
use crate::output::emit;

/// The compression settings the command line asks for, the library's defaults otherwise.
fn settings(args: &ImportArgs) -> Settings {
    let mut settings = Settings::default();
    if let Some(codec) = args.codec {
        settings = settings.codec(codec.into());
    }
    if let Some(level) = args.level {
        settings = settings.level(level);
    }
    if let Some(chunk_size) = args.chunk_size {
        settings = settings.chunk_size(chunk_size);
    }
    settings
}

/// Import the image file and print what was stored.
pub fn run(ctx: &Context, args: ImportArgs) -> Outcome {
    let (input, out) = (&args.image, &args.out);
    let failure = |e| Failure::importing(input, out, e);
    let mut options = ReadOptions::default()
        .subimage(args.subimage)
        .settings(settings(&args))
        .to_file(out);
    options.channels = args.channels.selection();
    options.dtype = args.dtype.dtype();
    ctx.check_interrupt(out)?;

    // An interrupt cancels the import, which then removes its temporary file.
    let reporter = ctx.reporter(format!("import {}", input.display()));
    let image = AnyImage::read_with_progress(input, &options, &reporter).map_err(failure)?;

    let during = |e| Failure::during(out, e);
    let mut compressed = 0;
    for channel in image.channels() {
        compressed += channel.compressed_bytes().map_err(during)? as u64;
    }
    let logical: u64 = image.dtypes().iter().map(|d| d.size() as u64).sum::<u64>()
        * (image.width() * image.height()) as u64;
    let names = image.channel_names().join(" ");
    let dtypes: Vec<String> = image.dtypes().iter().map(|d| d.to_string()).collect();
    emit(&format!(
        "{}: {} channel{} ({names}; {}), {} x {}, {} stored in {}, ratio {:.2}\n",
        out.display(),
        image.num_channels(),
        if image.num_channels() == 1 { "" } else { "s" },
        dtypes.join(" "),
        image.width(),
        image.height(),
        HumanBytes(logical),
        HumanBytes(compressed),
        ratio(logical, compressed)
    ))?;
    Ok(Status::Success)
}
