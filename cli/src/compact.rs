//! `cimg compact`: reclaim dead space by rewriting the file (atomically, by the library).

use indicatif::HumanBytes;

use crate::Context;
use crate::args::CompactArgs;
use crate::describe::open_writable;
use crate::failure::{Failure, Outcome, Status};
use crate::output::emit;

/// Compact the file and print its size before and after.
pub fn run(ctx: &Context, args: CompactArgs) -> Outcome {
    let path = &args.file;
    let image = open_writable(path)?;
    let reporter = ctx.reporter(format!("compact {}", path.display()));
    let report = image
        .compact_with_progress(&reporter)
        .map_err(|e| Failure::during(path, e))?;
    emit(&format!(
        "{}: {} -> {} (reclaimed {})\n",
        path.display(),
        HumanBytes(report.file_len_before),
        HumanBytes(report.file_len_after),
        HumanBytes(report.reclaimed)
    ))?;
    Ok(Status::Success)
}
