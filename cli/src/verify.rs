//! `cimg verify`: the library's full check of each file's newest commit.

use std::fmt::Write as _;
use std::path::Path;

use compressed_image::Verification;
use compressed_image::serde_json::{Value, json};
use indicatif::HumanBytes;

use crate::Context;
use crate::args::VerifyArgs;
use crate::describe::{channel_label, channel_name, open_read_only};
use crate::failure::{Failure, Outcome, Status};
use crate::output::{emit, emit_json};

/// Check every file; exit status 1 if any is damaged, 2 if any cannot be opened.
pub fn run(ctx: &Context, args: VerifyArgs) -> Outcome {
    let mut status = Status::Success;
    let mut entries = Vec::new();
    for path in &args.files {
        ctx.check_interrupt(path)?;
        match check(ctx, path) {
            Ok(report) => {
                if !report.verification.is_ok() {
                    status = status.max(Status::Failed);
                }
                if args.json {
                    entries.push(report.to_json());
                } else {
                    emit(&report.to_text())?;
                }
            }
            // An interruption ends the run: the files after it were not checked.
            Err(failure) if failure.status == Status::Interrupted => return Err(failure),
            Err(failure) => {
                status = status.max(failure.report());
                entries.push(json!({"path": path.display().to_string(), "ok": false, "error": failure.message}));
            }
        }
    }
    if args.json {
        emit_json(&Value::Array(entries))?;
    }
    Ok(status)
}

/// What `verify` found in one file, with the names of its channels.
struct Report {
    path: String,
    verification: Verification,
    names: Vec<String>,
}

fn check(ctx: &Context, path: &Path) -> Result<Report, Failure> {
    let image = open_read_only(path)?;
    let reporter = ctx.reporter(format!("verify {}", path.display()));
    let verification = image
        .verify_with_progress(&reporter)
        .map_err(|e| Failure::during(path, e))?;
    Ok(Report {
        path: path.display().to_string(),
        names: (0..image.num_channels())
            .map(|i| channel_name(&image, i))
            .collect(),
        verification,
    })
}

impl Report {
    fn name(&self, channel: usize) -> &str {
        self.names.get(channel).map_or("", String::as_str)
    }

    fn to_json(&self) -> Value {
        let v = &self.verification;
        let damaged: Vec<Value> = (v.damaged_chunks.iter())
            .map(|&(channel, chunk)| {
                json!({"channel": channel, "name": self.name(channel), "chunk": chunk})
            })
            .collect();
        json!({
            "path": self.path,
            "ok": v.is_ok(),
            "generation": v.generation,
            "records": v.records,
            "bytes_checked": v.bytes_checked,
            "problems": v.problems,
            "damaged_chunks": damaged,
        })
    }

    fn to_text(&self) -> String {
        let v = &self.verification;
        if v.is_ok() {
            return format!(
                "{}: ok (generation {}: {} records, {} checked)\n",
                self.path,
                v.generation,
                v.records,
                HumanBytes(v.bytes_checked)
            );
        }
        let mut text = format!(
            "{}: DAMAGED: {} problem{} in generation {}, the commit the file opens at\n",
            self.path,
            v.problems.len(),
            if v.problems.len() == 1 { "" } else { "s" },
            v.generation
        );
        for &(channel, chunk) in &v.damaged_chunks {
            let _ = writeln!(
                text,
                "  {} chunk {chunk}: unreadable",
                channel_label(channel, self.name(channel))
            );
        }
        for problem in &v.problems {
            let _ = writeln!(text, "  {problem}");
        }
        if !v.damaged_chunks.is_empty() {
            let _ = writeln!(
                text,
                "  every other chunk of generation {} reads",
                v.generation
            );
        }
        text
    }
}
