//! The command line: global options and one variant per subcommand.
//!
//! A new subcommand is a variant of [`Command`] with its own argument struct here and its
//! own module beside `main.rs`, dispatched in `main::run`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use compressed_image::{ChannelSelection, Codec, Dtype, ExrCompression, TiffCompression};

/// Inspect, check and repair compressed-image (.cimg) files; import and export image files.
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

    /// Import an OpenEXR, TIFF, PNG or JPEG file as a new .cimg file.
    #[command(after_help = "\
Example:
  cimg import render.exr render.cimg --channels R,G,B --dtype f16 --codec zstd --level 5

Channels are named and ordered as OpenImageIO presents the file (OpenEXR names grouped by
layer; Y, Y A, R G B, R G B A for the other formats); a subset keeps that order. The image
is streamed into a temporary file beside OUT.cimg, renamed into place only when complete:
a failed or interrupted (Ctrl-C) import leaves nothing behind, and the next import to
OUT.cimg removes what a killed one left. Prints one line: channels, size and ratio.")]
    Import(ImportArgs),

    /// Export a .cimg file as OpenEXR, TIFF or PNG (by OUT's extension), or one channel as .npy.
    #[command(after_help = "\
Example:
  cimg export render.cimg render.exr --compression piz
  cimg export scan.cimg scan.png --channels R,G,B
  cimg export scan.cimg depth.npy --channels depth

OpenEXR keeps f16, f32 and u32 channels (others become f16 or f32); PNG and TIFF take one to
four channels (gray, gray + alpha, RGB, RGBA) at 8 bits when all are u8, else 16, floats
sRGB-encoded. A .npy file holds one channel as a (height, width) array of its type. The file
appears only when complete; whatever was at OUT stays until then. Ctrl-C stops the export at
its next band of rows, removing the temporary file and leaving OUT as it was; a second
Ctrl-C ends the program at once, leaving a temporary file .OUT.cimg-tmp-export-... beside
OUT.")]
    Export(ExportArgs),

    /// Write a PNG thumbnail of a .cimg file.
    #[command(after_help = "\
Example:
  cimg preview render.cimg thumb.png --size 256
  cimg preview scan.cimg depth.png --channel depth

Without --channel the preview shows R G B (and A) when the image has them, else Y (and A),
else the first channel; each preview pixel is the mean of the pixels it covers, floats
sRGB-encoded to 8 bits. The file appears only when complete: Ctrl-C stops the preview and
leaves whatever was at OUT as it was.")]
    Preview(PreviewArgs),

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

/// Which channels to read or write: by name or by position, not both.
#[derive(Debug, Args)]
pub struct ChannelArgs {
    /// Only these channels, by name (comma-separated).
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        conflicts_with = "channel_indices"
    )]
    pub channels: Option<Vec<String>>,
    /// Only the channels at these positions, counted from 0 (comma-separated).
    #[arg(long, value_name = "INDICES", value_delimiter = ',')]
    pub channel_indices: Option<Vec<usize>>,
}

impl ChannelArgs {
    /// The selection the library takes.
    pub fn selection(&self) -> ChannelSelection {
        match (&self.channels, &self.channel_indices) {
            (Some(names), _) => ChannelSelection::names(names.iter().cloned()),
            (None, Some(indices)) => ChannelSelection::indices(indices.iter().copied()),
            (None, None) => ChannelSelection::All,
        }
    }
}

/// The element type imported channels are stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    /// Each channel's type in the file.
    Native,
    U8,
    U16,
    U32,
    I8,
    I16,
    I32,
    F16,
    F32,
    F64,
}

impl DtypeArg {
    /// The library's element type; `None` for `native`.
    pub fn dtype(self) -> Option<Dtype> {
        Some(match self {
            DtypeArg::Native => return None,
            DtypeArg::U8 => Dtype::U8,
            DtypeArg::U16 => Dtype::U16,
            DtypeArg::U32 => Dtype::U32,
            DtypeArg::I8 => Dtype::I8,
            DtypeArg::I16 => Dtype::I16,
            DtypeArg::I32 => Dtype::I32,
            DtypeArg::F16 => Dtype::F16,
            DtypeArg::F32 => Dtype::F32,
            DtypeArg::F64 => Dtype::F64,
        })
    }
}

/// The c-blosc2 codec of imported channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    Blosclz,
    Lz4,
    Lz4hc,
    Zstd,
    Zlib,
}

impl From<CodecArg> for Codec {
    fn from(codec: CodecArg) -> Codec {
        match codec {
            CodecArg::Blosclz => Codec::Blosclz,
            CodecArg::Lz4 => Codec::Lz4,
            CodecArg::Lz4hc => Codec::Lz4hc,
            CodecArg::Zstd => Codec::Zstd,
            CodecArg::Zlib => Codec::Zlib,
        }
    }
}

/// `cimg import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The image file (OpenEXR, TIFF, PNG or JPEG, recognised by its first bytes).
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// The .cimg file to make (replaced if it exists, once the import is complete).
    #[arg(value_name = "OUT.cimg")]
    pub out: PathBuf,
    /// The subimage: an OpenEXR part or a TIFF page, counted from 0.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub subimage: usize,
    #[command(flatten)]
    pub channels: ChannelArgs,
    /// Store every channel as this type (converted as OpenImageIO converts).
    #[arg(long, value_enum, default_value_t = DtypeArg::Native)]
    pub dtype: DtypeArg,
    /// Compression codec.
    #[arg(long, value_enum)]
    pub codec: Option<CodecArg>,
    /// Compression level, 0 to 9.
    #[arg(long, value_name = "N")]
    pub level: Option<u8>,
    /// Bytes per chunk of the stored type (rounded down to whole scanlines, at least one).
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<usize>,
}

/// How an exported OpenEXR or TIFF file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// No compression (OpenEXR, TIFF).
    None,
    /// OpenEXR: run-length.
    Rle,
    /// OpenEXR: deflate, one scanline per block.
    Zips,
    /// OpenEXR: deflate, 16 scanlines per block (the OpenEXR default).
    Zip,
    /// OpenEXR: wavelet.
    Piz,
    /// OpenEXR: f32 rounded to 24 bits (lossy).
    Pxr24,
    /// OpenEXR: f16 in 4x4 blocks (lossy).
    B44,
    /// OpenEXR: B44 with flat blocks smaller (lossy).
    B44a,
    /// OpenEXR: DCT, 32 scanlines (lossy for colour).
    Dwaa,
    /// OpenEXR: DCT, 256 scanlines (lossy for colour).
    Dwab,
    /// TIFF: LZW with predictor.
    Lzw,
    /// TIFF: deflate with predictor (the TIFF default).
    Deflate,
}

impl CompressionArg {
    /// The OpenEXR compression of this name, if OpenEXR has one.
    pub fn exr(self) -> Option<ExrCompression> {
        Some(match self {
            CompressionArg::None => ExrCompression::None,
            CompressionArg::Rle => ExrCompression::Rle,
            CompressionArg::Zips => ExrCompression::Zips,
            CompressionArg::Zip => ExrCompression::Zip,
            CompressionArg::Piz => ExrCompression::Piz,
            CompressionArg::Pxr24 => ExrCompression::Pxr24,
            CompressionArg::B44 => ExrCompression::B44,
            CompressionArg::B44a => ExrCompression::B44a,
            CompressionArg::Dwaa => ExrCompression::Dwaa,
            CompressionArg::Dwab => ExrCompression::Dwab,
            CompressionArg::Lzw | CompressionArg::Deflate => return None,
        })
    }

    /// The TIFF compression of this name, if TIFF has one.
    pub fn tiff(self) -> Option<TiffCompression> {
        match self {
            CompressionArg::None => Some(TiffCompression::None),
            CompressionArg::Lzw => Some(TiffCompression::Lzw),
            CompressionArg::Deflate => Some(TiffCompression::Deflate),
            _ => None,
        }
    }
}

/// `cimg export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The .cimg file to export.
    #[arg(value_name = "IN.cimg")]
    pub input: PathBuf,
    /// The file to write: .exr, .tif, .tiff, .png or .npy (replaced once complete).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    #[command(flatten)]
    pub channels: ChannelArgs,
    /// OpenEXR or TIFF compression.
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
}

/// `cimg preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The .cimg file to show.
    #[arg(value_name = "IN.cimg")]
    pub input: PathBuf,
    /// The PNG file to write (replaced once complete).
    #[arg(value_name = "OUT.png")]
    pub out: PathBuf,
    /// The longest side of the preview in pixels (a smaller image keeps its size).
    #[arg(long, value_name = "PIXELS", default_value_t = compressed_image::DEFAULT_PREVIEW_SIZE)]
    pub size: usize,
    /// The channel to show, or up to four comma-separated (gray, gray + alpha, RGB, RGBA).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub channel: Option<Vec<String>>,
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
