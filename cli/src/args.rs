//! The command line: global options and one variant per subcommand.
//!
//! A new subcommand (image import and export, a preview) is a variant of [`Command`] with
//! its own argument struct here and its own module beside `main.rs`, dispatched in
//! `main::run`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Inspect, check and repair compressed-image (.cimg) files.
#[derive(Debug, Parser)]
#[command(name = "cimg", version, after_help = EXIT_STATUS)]
pub struct Cli {
    /// No progress bars or progress lines on stderr (results and errors still print).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The exit statuses every subcommand shares (verify uses 1 for damage found).
const EXIT_STATUS: &str = "\
Exit status: 0 success; 1 the operation failed or `verify` found damage; 2 a file is not a
readable .cimg file (missing, another format, unsupported version, no valid commit) or the
command line is wrong; 130 interrupted (Ctrl-C or SIGTERM).";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe files: format, generation, channels, sizes, metadata.
    #[command(after_help = "\
Example:
  cimg info scan.cimg
  cimg info --json a.cimg b.cimg | jq '.[].channels[].name'

With --json, standard output is one JSON array with an object per FILE, in order: \"path\",
\"format_version\", \"generation\", \"width\", \"height\", \"file_bytes\", \"live_bytes\",
\"dead_bytes\", \"compressed_bytes\", \"logical_bytes\", \"ratio\", \"metadata\" and
\"channels\" (each with \"index\", \"name\", \"dtype\", \"width\", \"height\", \"codec\",
\"level\", \"block_size\", \"chunk_size\", \"rows_per_chunk\", \"chunks\", \"blob_chunks\",
\"fill_chunks\", \"default_chunks\", \"compressed_bytes\", \"logical_bytes\", \"ratio\"). A file
that cannot be read is {\"path\", \"error\"}. compressed_bytes counts each compressed chunk's
bytes plus one element per lazy chunk, as the library's compressed_bytes() does.")]
    Info(InfoArgs),

    /// Check every checksum and chunk header of files' newest commits.
    #[command(after_help = "\
Example:
  cimg verify scan.cimg && echo intact

Exit status 0 when every FILE is intact, 1 when damage was found (the damaged chunks are
listed; every other chunk of the commit reads), 2 when a FILE cannot be opened at all.
With --json, standard output is one JSON array with an object per FILE: \"path\", \"ok\",
\"generation\" (the commit checked, the one the file opens at), \"records\",
\"bytes_checked\", \"problems\" (strings) and \"damaged_chunks\" ({\"channel\", \"name\",
\"chunk\"}); a file that cannot be read is {\"path\", \"ok\": false, \"error\"}.")]
    Verify(VerifyArgs),

    /// Rewrite a file without dead space (atomically: a copy renamed over it).
    #[command(after_help = "\
Example:
  cimg compact scan.cimg

The live records are copied to a temporary file beside FILE, synced and renamed over it.
Interrupted (Ctrl-C) before the rename, FILE is left untouched and the temporary file is
removed; a second Ctrl-C ends the program at once, and the next open of FILE for writing
removes what it left.")]
    Compact(CompactArgs),

    /// List every chunk of a file and how it is stored (for debugging).
    #[command(after_help = "\
Example:
  cimg ls scan.cimg --channel depth

Each chunk is a compressed blob (its size, file offset and the generation that wrote it), a
fill (a lazy chunk of one value) or default (never written; the channel's default value).
With --json, standard output is {\"path\", \"channels\": [{\"index\", \"name\", \"dtype\",
\"chunks\": [{\"chunk\", \"rows\": [first, end), \"state\", ...}]}]}, where a blob has
\"compressed_bytes\", \"offset\" and \"generation\", and a fill or default has \"value\" and
\"bits\" (the element's raw bits).")]
    Ls(LsArgs),

    /// Write one chunk of a channel as a .npy array (rows x width).
    #[command(after_help = "\
Example:
  cimg get scan.cimg --channel depth --chunk 3 --out chunk3.npy
  python -c \"import numpy; print(numpy.load('chunk3.npy').shape)\"

Without --out the .npy goes to standard output (refused when that is a terminal).")]
    Get(GetArgs),

    /// Replace one chunk of a channel with a .npy array of exactly its type and shape.
    #[command(after_help = "\
Example:
  cimg get scan.cimg --channel depth --chunk 3 --out chunk3.npy
  python -c \"import numpy; a = numpy.load('chunk3.npy'); numpy.save('chunk3.npy', a * 2)\"
  cimg set scan.cimg --channel depth --chunk 3 chunk3.npy

The array must be C-ordered, of the channel's element type (either byte order) and of
shape (rows of the chunk, width); anything else is refused before the file changes.")]
    Set(SetArgs),

    /// Print a shell completion script.
    #[command(after_help = "\
Example:
  cimg completions bash > ~/.local/share/bash-completion/completions/cimg
  cimg completions zsh > ~/.zfunc/_cimg
  cimg completions fish > ~/.config/fish/completions/cimg.fish")]
    Completions(CompletionsArgs),
}

/// `cimg info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Files to describe.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print JSON (see below) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `cimg verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print JSON (see below) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `cimg compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The file to compact.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `cimg ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The file to list.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Only this channel: a name, or a position counted from 0 when no channel has that
    /// name.
    #[arg(long, value_name = "NAME|INDEX")]
    pub channel: Option<String>,
    /// Print JSON (see below) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Which chunk `get` and `set` work on.
#[derive(Debug, Args)]
pub struct ChunkArgs {
    /// The channel: a name, or a position counted from 0 when no channel has that name.
    #[arg(long, value_name = "NAME|INDEX")]
    pub channel: String,
    /// The chunk's index, counted from 0.
    #[arg(long, value_name = "I")]
    pub chunk: usize,
}

/// `cimg get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The .cimg file to read.
    #[arg(value_name = "IN.cimg")]
    pub file: PathBuf,
    #[command(flatten)]
    pub at: ChunkArgs,
    /// Where to write the .npy (replaced if it exists); standard output without it.
    #[arg(long, value_name = "F.npy")]
    pub out: Option<PathBuf>,
}

/// `cimg set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The .cimg file to change.
    #[arg(value_name = "IN.cimg")]
    pub file: PathBuf,
    #[command(flatten)]
    pub at: ChunkArgs,
    /// The .npy array to store.
    #[arg(value_name = "F.npy")]
    pub npy: PathBuf,
}

/// `cimg completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
