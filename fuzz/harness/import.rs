//! Target `import_file`: arbitrary bytes as an image file (OpenEXR, TIFF, PNG, JPEG, or
//! anything else), imported with options chosen by the first byte. The contract: the import
//! returns an image whose every channel decodes, or a typed error, and never panics; a
//! failed import into a named file leaves nothing behind.

use compressed_image::{AnyImage, Dtype, Error, ReadOptions, Settings};

use super::{BUDGET, Input, run_dir};

/// Fuzz entry point: the first byte chooses the options, the rest is the file.
pub fn import_file(data: &[u8]) {
    let mut input = Input::new(data);
    let choice = input.u8();
    let file = data.get(1..).unwrap_or(&[]);
    let dir = run_dir();
    let source = dir.path().join("input.img");
    std::fs::write(&source, file).expect("write the input file");
    let target = dir.path().join("out.cimg");
    let mut options = ReadOptions::default()
        .subimage(usize::from(choice & 1))
        // Small chunks: many bands and chunk boundaries even for tiny images.
        .settings(Settings::default().chunk_size(4096));
    options = match (choice >> 1) & 3 {
        0 => options,
        1 => options.dtype(Dtype::F32),
        2 => options.dtype(Dtype::U8),
        _ => options.channel_indices([0, 0]),
    };
    let to_file = choice & 0b1000 != 0;
    if to_file {
        options = options.to_file(&target);
    }
    match AnyImage::read(&source, &options) {
        Ok(image) => check_image(&image),
        Err(e) => {
            assert_import_error(&e);
            if to_file {
                let left: Vec<_> = std::fs::read_dir(dir.path())
                    .expect("list the run directory")
                    .map(|e| e.expect("entry").file_name())
                    .filter(|name| name != "input.img")
                    .collect();
                assert!(left.is_empty(), "a failed import left {left:?} ({e})");
            }
        }
    }
}

/// Every channel of an imported image decodes (within the harness's memory budget).
fn check_image(image: &AnyImage) {
    let channels = image.channels();
    assert!(!channels.is_empty(), "an imported image without channels");
    let (width, height) = (image.width(), image.height());
    assert!(
        width > 0 && height > 0,
        "an imported image of {width} x {height}"
    );
    let bytes: usize = channels
        .iter()
        .map(|c| width * height * c.dtype().size())
        .sum();
    if bytes <= BUDGET {
        let decoded = image
            .get_decompressed_bytes()
            .expect("an imported image decodes");
        assert_eq!(decoded.len(), channels.len());
    }
}

/// An error an import of a damaged, foreign or unsupported file may give.
fn assert_import_error(e: &Error) {
    match e {
        Error::ImageFile { .. } | Error::InvalidArgument { .. } => {}
        other => panic!("unexpected error importing a damaged file: {other:?}"),
    }
}
