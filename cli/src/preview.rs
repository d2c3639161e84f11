//! `cimg preview`: a PNG thumbnail of a .cimg file, by the library, with a progress bar
//! (the bytes of the image read); an interrupt leaves no partial file.

use compressed_image::PreviewOptions;

use crate::Context;
use crate::args::PreviewArgs;
use crate::describe::open_read_only;
use crate::failure::{Failure, Outcome, Status};
use crate::output::emit;

/// Write the preview and print its file name.
pub fn run(ctx: &Context, args: PreviewArgs) -> Outcome {
    let (input, out) = (&args.input, &args.out);
    if args.size == 0 {
        return Err(Failure::usage(out, "--size must be at least 1"));
    }
    let image = open_read_only(input)?;
    let mut options = PreviewOptions::default().max_size(args.size);
    if let Some(names) = &args.channel {
        options = options.channel_names(names.iter().cloned());
    }
    ctx.check_interrupt(out)?;
    let reporter = ctx.reporter(format!("preview {}", out.display()));
    image
        .preview_with_progress(out, &options, &reporter)
        .map_err(|e| Failure::writing(out, e))?;
    emit(&format!(
        "{}: preview of {}\n",
        out.display(),
        input.display()
    ))?;
    Ok(Status::Success)
}
