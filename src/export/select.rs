//! Which channels of an image an export writes, and the names they get in the file.

use crate::error::{Error, Result};
use crate::format::Catalog;
use crate::import::ChannelSelection;

/// The positions in `catalog` of the selected channels, in the order of the request
/// (every channel, in order, for [`ChannelSelection::All`]). A name picks the first
/// channel of that name.
///
/// # Errors
/// [`Error::UnknownChannelName`], [`Error::IndexOutOfRange`].
pub(crate) fn positions(catalog: &Catalog, selection: &ChannelSelection) -> Result<Vec<usize>> {
    let count = catalog.channels.len();
    match selection {
        ChannelSelection::Names(names) => names
            .iter()
            .map(|name| {
                catalog
                    .channels
                    .iter()
                    .position(|c| catalog.names_present && c.name == *name)
                    .ok_or_else(|| Error::UnknownChannelName(name.clone()))
            })
            .collect(),
        ChannelSelection::Indices(indices) => indices
            .iter()
            .map(|&index| {
                if index < count {
                    Ok(index)
                } else {
                    Err(Error::IndexOutOfRange {
                        what: "channel",
                        index,
                        len: count,
                    })
                }
            })
            .collect(),
        ChannelSelection::All => Ok((0..count).collect()),
    }
}

/// The name of the channel at `pos` of an image of `count` unnamed channels, as the
/// importer names the channels of PNG and TIFF files: `Y`; `Y A`; `R G B`; `R G B A`;
/// then `channel4`, `channel5`…
fn default_name(count: usize, pos: usize) -> String {
    let names: &[&str] = match count {
        1 => &["Y"],
        2 => &["Y", "A"],
        _ => &["R", "G", "B", "A"],
    };
    names
        .get(pos)
        .map_or_else(|| format!("channel{pos}"), |n| n.to_string())
}

/// The name of every channel of `catalog` as an export writes it: its own name; for an
/// image without names, [`default_name`]; an empty name becomes `channel<position>`.
pub(crate) fn file_names(catalog: &Catalog) -> Vec<String> {
    let count = catalog.channels.len();
    (0..count)
        .map(|pos| {
            let name = &catalog.channels[pos].name;
            if !catalog.names_present {
                default_name(count, pos)
            } else if name.is_empty() {
                format!("channel{pos}")
            } else {
                name.clone()
            }
        })
        .collect()
}

/// The channels a preview shows when none are asked for, as OpenImageIO's viewers pick
/// them: `R G B` (with `A` when there is one), else `Y` (with `A`), else the first
/// channel. Names are those of [`file_names`]; the first channel of a name counts.
pub(crate) fn preview_positions(names: &[String]) -> Vec<usize> {
    let find = |wanted: &str| names.iter().position(|n| n == wanted);
    let alpha = find("A");
    if let (Some(r), Some(g), Some(b)) = (find("R"), find("G"), find("B")) {
        [r, g, b].into_iter().chain(alpha).collect()
    } else if let Some(y) = find("Y") {
        [y].into_iter().chain(alpha).collect()
    } else {
        vec![0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unnamed_channels_get_the_names_png_and_tiff_import_gives() {
        assert_eq!(default_name(1, 0), "Y");
        assert_eq!(default_name(2, 1), "A");
        assert_eq!(default_name(3, 2), "B");
        assert_eq!(default_name(4, 3), "A");
        assert_eq!(default_name(6, 5), "channel5");
    }

    #[test]
    fn a_preview_picks_rgba_then_y_then_the_first_channel() {
        let pick = |names: &[&str]| preview_positions(&strings(names));
        assert_eq!(pick(&["Z", "A", "B", "G", "R"]), [4, 3, 2, 1]);
        assert_eq!(pick(&["R", "G", "B"]), [0, 1, 2]);
        assert_eq!(pick(&["R", "G", "Y", "A"]), [2, 3]);
        assert_eq!(pick(&["diffuse.R", "diffuse.G", "diffuse.B"]), [0]);
    }
}
