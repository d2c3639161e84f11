//! Channel order and selection, as OpenImageIO presents a file.
//!
//! OpenEXR stores channels sorted by name; OpenImageIO presents them grouped by layer
//! (the name up to the last `.`), layers sorted by name (the unnamed layer first), and
//! inside a layer the well-known names first, in the order of [`SPECIAL`] (or of
//! [`SPECIAL_XYZ`] in a layer holding `X` and `Y` or `Z`: a position or a normal), then
//! the rest by name. TIFF, PNG and JPEG channels keep the order of the file.

use super::error::{FileResult, ImageFileError};
use super::options::ChannelSelection;

/// The names OpenImageIO puts first inside a layer, in this order (compared without
/// regard to case).
const SPECIAL: [&str; 20] = [
    "R", "Red", "G", "Green", "B", "Blue", "Y", "real", "imag", "A", "Alpha", "AR", "RA", "AG",
    "GA", "AB", "BA", "Z", "Depth", "Zback",
];

/// The layer (with its trailing dot) and the suffix of a channel name.
fn split_layer(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) => (&name[..=dot], &name[dot + 1..]),
        None => ("", name),
    }
}

/// The well-known names of a layer that holds coordinates (`X` and `Y` or `Z`).
const SPECIAL_XYZ: [&str; 21] = [
    "R", "Red", "G", "Green", "B", "Blue", "X", "Y", "Z", "real", "imag", "A", "Alpha", "AR", "RA",
    "AG", "GA", "AB", "BA", "Depth", "Zback",
];

/// Rank of a suffix in `special`; every other suffix ranks after them.
fn special_rank(special: &[&str], suffix: &str) -> usize {
    special
        .iter()
        .position(|s| s.eq_ignore_ascii_case(suffix))
        .unwrap_or(usize::MAX)
}

/// The positions of `names` (OpenEXR channel names) in the order OpenImageIO presents them.
pub(crate) fn exr_order(names: &[String]) -> Vec<usize> {
    let split: Vec<(&str, &str)> = names.iter().map(|n| split_layer(n)).collect();
    let has = |layer: &str, suffix: &str| {
        split
            .iter()
            .any(|(l, s)| *l == layer && s.eq_ignore_ascii_case(suffix))
    };
    let rank = |i: usize| {
        let (layer, suffix) = split[i];
        let xyz = has(layer, "X") && (has(layer, "Y") || has(layer, "Z"));
        special_rank(if xyz { &SPECIAL_XYZ } else { &SPECIAL }, suffix)
    };
    let ranks: Vec<usize> = (0..names.len()).map(rank).collect();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| {
        let ((layer_a, suffix_a), (layer_b, suffix_b)) = (split[a], split[b]);
        layer_a
            .cmp(layer_b)
            .then(ranks[a].cmp(&ranks[b]))
            .then_with(|| suffix_a.cmp(suffix_b))
    });
    order
}

/// The presented positions to import, for channels named `names` (in presented order):
/// every channel, or the requested ones sorted into presented order (duplicates kept).
///
/// # Errors
/// [`ImageFileError::NoSuchChannel`], [`ImageFileError::ChannelIndexOutOfRange`].
pub(crate) fn select(names: &[String], selection: &ChannelSelection) -> FileResult<Vec<usize>> {
    let mut picks = match selection {
        ChannelSelection::All => return Ok((0..names.len()).collect()),
        ChannelSelection::Names(wanted) => wanted
            .iter()
            .map(|w| {
                names
                    .iter()
                    .position(|n| n == w)
                    .ok_or_else(|| ImageFileError::NoSuchChannel(w.clone()))
            })
            .collect::<FileResult<Vec<usize>>>()?,
        ChannelSelection::Indices(wanted) => {
            if let Some(&index) = wanted.iter().find(|&&i| i >= names.len()) {
                return Err(ImageFileError::ChannelIndexOutOfRange {
                    index,
                    count: names.len(),
                });
            }
            wanted.clone()
        }
    };
    picks.sort_unstable();
    Ok(picks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn presented(stored: &[&str]) -> Vec<String> {
        let names = strings(stored);
        exr_order(&names)
            .into_iter()
            .map(|i| names[i].clone())
            .collect()
    }

    #[test]
    fn exr_channels_are_presented_by_layer_then_rgba_first() {
        // As OpenImageIO 3.2 lists a file holding these channels (sorted, as OpenEXR
        // stores them).
        let stored = [
            "A",
            "Alpha",
            "B",
            "G",
            "R",
            "Y",
            "Z",
            "a.R",
            "a.b.R",
            "disparityL.x",
            "disparityL.y",
            "id",
            "left.A",
            "left.B",
            "left.G",
            "left.R",
            "left.Z",
            "zeta",
        ];
        assert_eq!(
            presented(&stored),
            strings(&[
                "R",
                "G",
                "B",
                "Y",
                "A",
                "Alpha",
                "Z",
                "id",
                "zeta",
                "a.R",
                "a.b.R",
                "disparityL.x",
                "disparityL.y",
                "left.R",
                "left.G",
                "left.B",
                "left.A",
                "left.Z",
            ])
        );
    }

    #[test]
    fn special_names_match_without_case_and_coordinates_go_before_alpha() {
        // As OpenImageIO 3.2 lists them.
        assert_eq!(
            presented(&["a", "b", "g", "r"]),
            strings(&["r", "g", "b", "a"])
        );
        assert_eq!(
            presented(&["a", "b", "g", "r", "x", "y", "z"]),
            strings(&["r", "g", "b", "x", "y", "z", "a"])
        );
        assert_eq!(
            presented(&[
                "L.A", "L.Alpha", "L.B", "L.Depth", "L.R", "L.Y", "L.a", "L.y", "L.z"
            ]),
            strings(&[
                "L.R", "L.B", "L.Y", "L.y", "L.A", "L.a", "L.Alpha", "L.z", "L.Depth"
            ])
        );
    }

    #[test]
    fn a_subset_comes_back_in_presented_order_with_duplicates() {
        let names = strings(&["R", "G", "B", "A"]);
        let by_name = ChannelSelection::Names(strings(&["B", "R", "B"]));
        assert_eq!(select(&names, &by_name).unwrap(), [0, 2, 2]);
        let by_index = ChannelSelection::Indices(vec![3, 0]);
        assert_eq!(select(&names, &by_index).unwrap(), [0, 3]);
        assert_eq!(
            select(&names, &ChannelSelection::Names(vec![])).unwrap(),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn unknown_names_and_indices_are_typed_errors() {
        let names = strings(&["Y"]);
        let err = select(&names, &ChannelSelection::Names(strings(&["Z"]))).unwrap_err();
        assert!(matches!(err, ImageFileError::NoSuchChannel(n) if n == "Z"));
        let err = select(&names, &ChannelSelection::Indices(vec![1])).unwrap_err();
        assert!(matches!(
            err,
            ImageFileError::ChannelIndexOutOfRange { index: 1, count: 1 }
        ));
    }
}
