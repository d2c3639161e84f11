//! `cimg import`: an OpenEXR, TIFF, PNG or JPEG file streamed into a new .cimg file, with
//! a progress bar fed by the library's per-chunk callback.

use std::ops::ControlFlow;

use compressed_image::{AnyImage, ChannelSelection, Error, Progress, ReadOptions, Settings};
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

/// Bytes the import stores before compression: every selected channel, at its stored
/// type. A selection naming an absent channel counts it as nothing (the import refuses
/// it anyway).
fn stored_bytes(info: &compressed_image::ImageFileInfo, options: &ReadOptions) -> u64 {
    let size_at = |position: usize| {
        let file_dtype = info.dtypes.get(position).copied();
        options.dtype.or(file_dtype).map_or(0, |d| d.size() as u64)
    };
    let element_bytes: u64 = match &options.channels {
        ChannelSelection::Names(names) => names
            .iter()
            .filter_map(|name| info.channel_names.iter().position(|n| n == name))
            .map(size_at)
            .sum(),
        ChannelSelection::Indices(indices) => indices.iter().map(|&i| size_at(i)).sum(),
        _ => (0..info.dtypes.len()).map(size_at).sum(),
    };
    element_bytes * (info.width * info.height) as u64
}

/// Import the image file and print what was stored.
pub fn run(ctx: &Context, args: ImportArgs) -> Outcome {
    let (input, out) = (&args.image, &args.out);
    let failure = |e| Failure::importing(input, out, e);
    let info = AnyImage::read_info(input, args.subimage).map_err(failure)?;
    let mut options = ReadOptions::default()
        .subimage(args.subimage)
        .settings(settings(&args))
        .to_file(out);
    options.channels = args.channels.selection();
    options.dtype = args.dtype.dtype();
    ctx.check_interrupt(out)?;

    let reporter = ctx.reporter(format!("import {}", input.display()));
    let total = stored_bytes(&info, &options);
    // Progress starts with the first chunk, once the output file is being written; each
    // chunk, converted and about to be compressed, is progress. An interrupt ends the
    // import, which then removes its temporary file.
    let mut started = false;
    let image = AnyImage::read_with(input, &options, |mut chunk| {
        if !started {
            reporter.start("import", total);
            started = true;
        }
        match reporter.advance(chunk.bytes_mut().len() as u64) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Error::Cancelled),
        }
    });
    if started {
        reporter.finish();
    }
    let image = image.map_err(failure)?;

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
