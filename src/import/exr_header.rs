//! A raw scan of OpenEXR headers for the compression codes, for files whose compression
//! the `exr` crate does not know (it then reports only an invalid attribute).

use std::io::{BufRead, Read, Seek, SeekFrom};

/// Most parts scanned.
const MAX_PARTS: usize = 1 << 16;
/// Longest attribute name or type name (OpenEXR's long-name limit).
const MAX_NAME: usize = 255;
/// Largest attribute value skipped.
const MAX_VALUE: i64 = 1 << 30;

/// The name of a compression code: OpenImageIO's for those the `exr` crate decodes or
/// knows, OpenEXR's for the newer ones.
pub(crate) fn code_name(code: u8) -> String {
    const NAMES: [&str; 14] = [
        "none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab", "htj2k256",
        "htj2k32", "lj2k", "zstd",
    ];
    NAMES
        .get(usize::from(code))
        .map_or_else(|| format!("code {code}"), |n| n.to_string())
}

/// A NUL-terminated name of at most [`MAX_NAME`] bytes.
fn read_name(read: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut name = Vec::new();
    read.take(MAX_NAME as u64 + 1)
        .read_until(0, &mut name)
        .ok()?;
    (name.pop() == Some(0)).then_some(name)
}

/// The compression code of every header, in part order, as far as the headers parse.
pub(crate) fn compression_codes(read: &mut (impl BufRead + Seek)) -> Vec<u8> {
    let mut codes = Vec::new();
    let mut head = [0u8; 8];
    if read.seek(SeekFrom::Start(0)).is_err() || read.read_exact(&mut head).is_err() {
        return codes;
    }
    let multipart = head[5] & 0x10 != 0; // bit 12 of the version field
    for _ in 0..MAX_PARTS {
        let mut code = None;
        loop {
            let Some(name) = read_name(read) else {
                return codes;
            };
            if name.is_empty() {
                break; // end of this header
            }
            let mut size = [0u8; 4];
            if read_name(read).is_none() || read.read_exact(&mut size).is_err() {
                return codes;
            }
            let size = i64::from(i32::from_le_bytes(size));
            if !(0..=MAX_VALUE).contains(&size) {
                return codes;
            }
            if name == b"compression" && size == 1 {
                let mut value = [0u8; 1];
                if read.read_exact(&mut value).is_err() {
                    return codes;
                }
                code = Some(value[0]);
            } else if read.seek_relative(size).is_err() {
                return codes;
            }
        }
        codes.extend(code);
        // A multi-part file ends its headers with an empty one.
        let more = multipart
            && read
                .fill_buf()
                .is_ok_and(|b| b.first().is_some_and(|&b| b != 0));
        if !more {
            break;
        }
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(name: &str, kind: &str, value: &[u8]) -> Vec<u8> {
        let mut a = [name.as_bytes(), b"\0", kind.as_bytes(), b"\0"].concat();
        a.extend((value.len() as i32).to_le_bytes());
        a.extend(value);
        a
    }

    #[test]
    fn compression_codes_are_found_in_every_part() {
        let mut file = vec![0x76, 0x2f, 0x31, 0x01, 2, 0x10, 0, 0];
        for code in [3u8, 13] {
            file.extend(attribute("owner", "string", b"me"));
            file.extend(attribute("compression", "compression", &[code]));
            file.push(0);
        }
        file.push(0);
        let codes = compression_codes(&mut std::io::Cursor::new(file));
        assert_eq!(codes, [3, 13]);
        assert_eq!(code_name(13), "zstd");
        assert_eq!(code_name(99), "code 99");
    }
}
