//! Export of images as OpenEXR, TIFF and PNG files, and PNG previews, checked against
//! independent readers: `tests/image_export/read_back.py` reads what the export wrote
//! with OpenEXR's Python bindings, OpenImageIO, tifffile and Pillow, makes the files
//! the round trips start from (OpenEXR, OpenImageIO, Pillow, tifffile), and computes the
//! expected previews with numpy.
//!
//! The interpreter is found as for `tests/image_files.rs`: `$CIMG_IMAGE_PYTHON` if set;
//! else `<repo>/.venv-img/bin/python` when it has the packages; else a virtual
//! environment made once in the target directory (see `tests/common/python.rs`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use compressed_image::{
    AnyImage, Argument, Dtype, Error, ExrCompression, ImageFileError, ImageFormat, PreviewOptions,
    ReadOptions, SampleDepth, Settings, TiffCompression, Transfer, WriteOptions, f16,
};
use serde_json::{Value, json};

mod common;
#[path = "common/image_files.rs"]
mod image_files;
#[path = "common/python.rs"]
mod python_env;

use image_files::{IMAGE_PYTHON, dtype, listing, values};

use common::rng::Rng;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/image_export/read_back.py")
}

fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| IMAGE_PYTHON.python())
}

/// Run the script with `args`; panic with its output if it fails.
fn run_script(args: &[&std::ffi::OsStr]) {
    let mut command = Command::new(python());
    command.arg(script()).args(args);
    python_env::run_setup(command, "tests/image_export/read_back.py", "see its output");
}

/// The source files of the round trips, made once per version of the script.
fn sources() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let version = crc32fast::hash(&fs::read(script()).expect("read the script"));
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.join(format!("export-sources-{version:08x}"));
        fs::create_dir_all(tmp).expect("create the target's temporary directory");
        let lock = fs::File::create(tmp.join("export-sources.lock")).expect("create the lock");
        lock.lock().expect("lock the source files");
        if !dir.join("ready").exists() {
            let _ = fs::remove_dir_all(&dir);
            run_script(&["make".as_ref(), dir.as_os_str()]);
        }
        lock.unlock().expect("unlock the source files");
        dir
    })
}

/// A file as an independent reader decoded it.
#[derive(Debug)]
struct ReadBack {
    width: usize,
    height: usize,
    /// Name (or sample index), type and little-endian bytes of each channel.
    channels: Vec<(String, Dtype, Vec<u8>)>,
    attributes: Value,
}

impl ReadBack {
    fn channel(&self, name: &str) -> &(String, Dtype, Vec<u8>) {
        self.channels
            .iter()
            .find(|c| c.0 == name)
            .unwrap_or_else(|| panic!("no channel {name} in {:?}", self.names()))
    }

    fn names(&self) -> Vec<&str> {
        self.channels.iter().map(|c| c.0.as_str()).collect()
    }
}

/// Read each `(file, reader)` with the script, in one run.
fn read_back(files: &[(&Path, &str)]) -> Vec<ReadBack> {
    let dir = tempfile::tempdir().unwrap();
    let request: Vec<Value> = files
        .iter()
        .enumerate()
        .map(|(i, (path, reader))| {
            json!({"path": path, "reader": reader, "out": dir.path().join(format!("f{i}"))})
        })
        .collect();
    let request_path = dir.path().join("request.json");
    let result_path = dir.path().join("result.json");
    fs::write(&request_path, json!({ "files": request }).to_string()).unwrap();
    run_script(&[
        "read".as_ref(),
        request_path.as_os_str(),
        result_path.as_os_str(),
    ]);
    let result: Value = serde_json::from_slice(&fs::read(&result_path).unwrap()).unwrap();
    result["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| ReadBack {
            width: f["width"].as_u64().unwrap() as usize,
            height: f["height"].as_u64().unwrap() as usize,
            channels: f["channels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_string(),
                        dtype(c["dtype"].as_str().unwrap()),
                        fs::read(c["data"].as_str().unwrap()).unwrap(),
                    )
                })
                .collect(),
            attributes: f["attributes"].clone(),
        })
        .collect()
}

/// Small chunks (a few rows), so that every export spans several bands.
fn small_chunks(width: usize) -> Settings {
    Settings::default().chunk_size(width * 4 * 3)
}

const W: usize = 67;
const H: usize = 45;

/// `W × H` values of a smooth pattern plus some noise, scaled and offset.
fn smooth(rng: &mut Rng, scale: f64, offset: f64) -> Vec<f64> {
    (0..W * H)
        .map(|i| {
            let (x, y) = ((i % W) as f64, (i / W) as f64);
            let noise = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            offset + scale * (0.5 + 0.4 * (x / 7.0 + y / 11.0).sin()) + 0.02 * noise
        })
        .collect()
}

fn halves(values: &[f64]) -> Vec<f16> {
    values.iter().map(|&v| f16::from_f64(v)).collect()
}

fn floats(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

/// An image of `f16` colour and alpha, an `f32` depth with negative values, random `u32`
/// ids and a layer, in chunks of a few rows.
fn mixed_image() -> AnyImage {
    let mut rng = Rng::new(20261203);
    let settings = small_chunks(W);
    let image = AnyImage::new(W, H).unwrap();
    for (name, scale, offset) in [
        ("R", 1.0, 0.0),
        ("G", 2.0, 0.0),
        ("B", -1.0, 0.5),
        ("A", 0.5, 0.0),
    ] {
        let values = halves(&smooth(&mut rng, scale, offset));
        image.add_channel(&values, Some(name), settings).unwrap();
    }
    let depth = floats(&smooth(&mut rng, 1000.0, -200.0));
    image.add_channel(&depth, Some("Z"), settings).unwrap();
    let ids: Vec<u32> = (0..W * H).map(|_| rng.next() as u32).collect();
    image.add_channel(&ids, Some("id"), settings).unwrap();
    let diffuse = floats(&smooth(&mut rng, 3.0, 0.0));
    image
        .add_channel(&diffuse, Some("diffuse.R"), settings)
        .unwrap();
    image
}

/// Every channel of `image` by name: type and bytes.
fn by_name(image: &AnyImage) -> BTreeMap<String, (Dtype, Vec<u8>)> {
    image
        .channel_names()
        .into_iter()
        .zip(image.dtypes())
        .zip(image.get_decompressed_bytes().unwrap())
        .map(|((name, dtype), bytes)| (name, (dtype, bytes)))
        .collect()
}

/// The largest difference between `got` and `expected`, over `scale(expected)`.
fn worst(got: &[f64], expected: &[f64], scale: impl Fn(f64) -> f64) -> f64 {
    assert_eq!(got.len(), expected.len());
    got.iter()
        .zip(expected)
        .map(|(g, e)| (g - e).abs() / scale(*e))
        .fold(0.0, f64::max)
}

/// `file` read back by `readers` holds every channel of `expected`, by name, with its type
/// and bytes.
fn assert_same_channels(
    what: &str,
    expected: &BTreeMap<String, (Dtype, Vec<u8>)>,
    read: &ReadBack,
) {
    assert_eq!((read.width, read.height), (W, H), "{what}: size");
    let mut names = read.names();
    names.sort_unstable();
    let expected_names: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(names, expected_names, "{what}: channel names");
    for (name, (dtype, bytes)) in expected {
        let (_, got_dtype, got) = read.channel(name);
        assert_eq!(got_dtype, dtype, "{what}: type of {name}");
        assert!(got == bytes, "{what}: pixels of {name} differ");
    }
}

#[test]
fn lossless_openexr_round_trips_exactly_and_openexr_and_openimageio_read_the_same() {
    let image = mixed_image();
    let expected = by_name(&image);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for compression in [
        ExrCompression::None,
        ExrCompression::Rle,
        ExrCompression::Zips,
        ExrCompression::Zip,
        ExrCompression::Piz,
    ] {
        let path = dir.path().join(format!("{compression:?}.exr"));
        image
            .write(&path, &WriteOptions::default().exr_compression(compression))
            .unwrap();
        let again = AnyImage::read(&path, &ReadOptions::default()).unwrap();
        assert_eq!(by_name(&again), expected, "{compression:?}: read again");
        assert_eq!(
            again.channel_names(),
            ["R", "G", "B", "A", "Z", "id", "diffuse.R"],
            "presented as OpenImageIO presents them"
        );
        files.push(path);
    }
    let requests: Vec<(&Path, &str)> = files
        .iter()
        .flat_map(|p| [(p.as_path(), "openexr"), (p.as_path(), "oiio")])
        .collect();
    for ((path, reader), read) in requests.iter().zip(read_back(&requests)) {
        let what = format!("{} by {reader}", path.display());
        assert_same_channels(&what, &expected, &read);
    }
}

/// `image` written by OpenEXR itself with `compression` (OpenEXR's name), at `path`.
fn openexr_encode(image: &AnyImage, compression: &str, path: &Path, dir: &Path) {
    let channels: Vec<Value> = by_name(image)
        .iter()
        .enumerate()
        .map(|(k, (name, (dtype, bytes)))| {
            let data = dir.join(format!("source{k}.raw"));
            fs::write(&data, bytes).unwrap();
            json!({"name": name, "dtype": dtype.name(), "data": data})
        })
        .collect();
    let request = json!({
        "width": image.width(), "height": image.height(), "compression": compression,
        "channels": channels, "out": path,
    });
    let request_path = dir.join("encode.json");
    fs::write(&request_path, request.to_string()).unwrap();
    run_script(&["encode".as_ref(), request_path.as_os_str()]);
}

#[test]
fn lossy_openexr_loses_no_more_than_openexr_and_decodes_as_openexr_decodes_it() {
    let image = mixed_image();
    let expected = by_name(&image);
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (ExrCompression::Pxr24, "pxr24"),
        (ExrCompression::B44, "b44"),
        (ExrCompression::B44a, "b44a"),
        (ExrCompression::Dwaa, "dwaa"),
        (ExrCompression::Dwab, "dwab"),
    ];
    let mut requests = Vec::new();
    for (compression, name) in cases {
        let ours = dir.path().join(format!("{name}.exr"));
        image
            .write(&ours, &WriteOptions::default().exr_compression(compression))
            .unwrap();
        let theirs = dir.path().join(format!("{name}-openexr.exr"));
        openexr_encode(&image, name, &theirs, dir.path());
        requests.push(ours);
        requests.push(theirs);
    }
    let files: Vec<(&Path, &str)> = requests.iter().map(|p| (p.as_path(), "openexr")).collect();
    let read = read_back(&files);
    for (k, (_, name)) in cases.iter().enumerate() {
        let (ours, theirs) = (&read[2 * k], &read[2 * k + 1]);
        let decoded = by_name(&AnyImage::read(&requests[2 * k], &ReadOptions::default()).unwrap());
        for (channel, (dtype, source)) in &expected {
            let what = format!("{name} {channel}");
            let (_, our_dtype, our_pixels) = ours.channel(channel);
            assert_eq!(our_dtype, dtype, "{what}: type kept");
            assert!(
                decoded[channel].1 == *our_pixels,
                "{what}: decoded differently"
            );
            let source = values(source, *dtype);
            let error =
                |pixels: &[u8]| worst(&values(pixels, *dtype), &source, |e| e.abs().max(1.0));
            let (our_error, their_error) = (error(our_pixels), error(&theirs.channel(channel).2));
            // Exact where OpenEXR is exact; else within half as much again as OpenEXR's
            // own encoder loses on the same pixels.
            assert!(
                our_error <= 1.5 * their_error,
                "{what}: error {our_error}, OpenEXR's {their_error}"
            );
        }
    }
}

#[test]
fn openexr_keeps_half_float_and_uint_and_converts_other_types() {
    let image = AnyImage::new(W, H).unwrap();
    let mut rng = Rng::new(7);
    let settings = small_chunks(W);
    let bytes: Vec<u8> = (0..W * H).map(|_| rng.next() as u8).collect();
    let shorts: Vec<u16> = (0..W * H).map(|_| rng.next() as u16).collect();
    let signed: Vec<i16> = (0..W * H).map(|_| rng.next() as i16).collect();
    let doubles: Vec<f64> = smooth(&mut rng, 10.0, -5.0);
    image.add_channel(&bytes, Some("u8"), settings).unwrap();
    image.add_channel(&shorts, Some("u16"), settings).unwrap();
    image.add_channel(&signed, Some("i16"), settings).unwrap();
    image.add_channel(&doubles, Some("f64"), settings).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.exr");
    image.write(&path, &WriteOptions::default()).unwrap();
    let read = &read_back(&[(&path, "openexr")])[0];
    let as_f16 = |v: Vec<f64>| -> Vec<u8> {
        v.iter()
            .flat_map(|&v| f16::from_f64(v).to_le_bytes())
            .collect()
    };
    let as_f32 =
        |v: Vec<f64>| -> Vec<u8> { v.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect() };
    let expected = [
        (
            "u8",
            Dtype::F16,
            as_f16(bytes.iter().map(|&v| f64::from(v) / 255.0).collect()),
        ),
        (
            "u16",
            Dtype::F32,
            as_f32(shorts.iter().map(|&v| f64::from(v) / 65535.0).collect()),
        ),
        (
            "i16",
            Dtype::F32,
            as_f32(signed.iter().map(|&v| f64::from(v) / 32767.0).collect()),
        ),
        ("f64", Dtype::F32, as_f32(doubles)),
    ];
    for (name, dtype, data) in expected {
        let (_, got_dtype, got) = read.channel(name);
        assert_eq!(*got_dtype, dtype, "{name}");
        assert!(*got == data, "{name}: converted values differ");
    }
}

#[test]
fn openexr_attributes_read_from_a_file_are_written_back() {
    let source = sources().join("attributes.exr");
    let options = ReadOptions::default().settings(small_chunks(W));
    let imported = AnyImage::read(&source, &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.exr");
    imported.write(&path, &WriteOptions::default()).unwrap();
    let again = AnyImage::read(&path, &options).unwrap();
    assert_eq!(by_name(&again), by_name(&imported));
    assert_eq!(again.channel_names(), imported.channel_names());
    let keys = [
        "dataWindow",
        "displayWindow",
        "pixelAspectRatio",
        "owner",
        "comments",
        "myFloat",
        "myInt",
        "myVector",
        "screenWindowCenter",
        "screenWindowWidth",
    ];
    let (before, after) = (imported.metadata(), again.metadata());
    for key in keys {
        assert_eq!(after[key], before[key], "{key} read again");
    }
    let header = &read_back(&[(&path, "openexr")])[0].attributes;
    let original = &read_back(&[(&source, "openexr")])[0].attributes;
    for key in keys {
        assert_eq!(header[key], original[key], "{key} as OpenEXR reads it");
    }
    assert_eq!(header["dataWindow"], json!([10, -20, 76, 24]));
    assert_eq!(header["compression"], "ZIP_COMPRESSION");
}

#[test]
fn images_not_from_openexr_get_no_attributes_of_their_metadata() {
    let image = mixed_image();
    image
        .set_metadata(json!({"source:format": "png", "owner": "not written"}))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.exr");
    image.write(&path, &WriteOptions::default()).unwrap();
    let header = &read_back(&[(&path, "openexr")])[0].attributes;
    assert_eq!(header.get("owner"), None);
    assert_eq!(header["dataWindow"], json!([0, 0, W - 1, H - 1]));
}

/// Import `source`, export it as `name`, import that again: the same pixels and names.
fn round_trip(source: &Path, dir: &Path, name: &str, options: &WriteOptions) -> AnyImage {
    let imported = AnyImage::read(source, &ReadOptions::default()).unwrap();
    let path = dir.join(name);
    imported.write(&path, options).unwrap();
    let again = AnyImage::read(&path, &ReadOptions::default()).unwrap();
    assert_eq!(again.channel_names(), imported.channel_names(), "{name}");
    assert_eq!(again.dtypes(), imported.dtypes(), "{name}");
    assert_eq!(
        again.get_decompressed_bytes().unwrap(),
        imported.get_decompressed_bytes().unwrap(),
        "{name}: pixels"
    );
    imported
}

/// The channels of `image` as planes of samples, in order.
fn planes(image: &AnyImage) -> Vec<Vec<u8>> {
    image.get_decompressed_bytes().unwrap()
}

#[test]
fn png_and_tiff_round_trip_exactly_and_their_readers_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut checks: Vec<(PathBuf, &str, Vec<Vec<u8>>)> = Vec::new();
    for (source, name, options, reader) in [
        ("rgba16.png", "rgba16.png", WriteOptions::default(), "oiio"),
        (
            "rgba16.png",
            "rgba16.tif",
            WriteOptions::default(),
            "tifffile",
        ),
        (
            "gray-alpha.png",
            "gray-alpha.png",
            WriteOptions::default(),
            "pillow",
        ),
        (
            "gray-alpha.png",
            "gray-alpha.tif",
            WriteOptions::default(),
            "tifffile",
        ),
        ("rgb16.tif", "rgb16.png", WriteOptions::default(), "oiio"),
        (
            "rgb16.tif",
            "rgb16-lzw.tif",
            WriteOptions::default().tiff_compression(TiffCompression::Lzw),
            "tifffile",
        ),
        (
            "rgba8.tif",
            "rgba8-none.tif",
            WriteOptions::default().tiff_compression(TiffCompression::None),
            "tifffile",
        ),
        ("rgba8.tif", "rgba8.png", WriteOptions::default(), "pillow"),
        (
            "rgba8.tif",
            "rgba8-oiio.tif",
            WriteOptions::default(),
            "oiio",
        ),
    ] {
        let imported = round_trip(&sources().join(source), d, name, &options);
        checks.push((d.join(name), reader, planes(&imported)));
    }
    let requests: Vec<(&Path, &str)> = checks.iter().map(|(p, r, _)| (p.as_path(), *r)).collect();
    for ((path, reader, expected), read) in checks.iter().zip(read_back(&requests)) {
        let got: Vec<&Vec<u8>> = read.channels.iter().map(|c| &c.2).collect();
        let expected: Vec<&Vec<u8>> = expected.iter().collect();
        assert!(
            got == expected,
            "{} by {reader}: samples differ",
            path.display()
        );
    }
}

#[test]
fn tiff_tags_say_what_the_samples_are() {
    let dir = tempfile::tempdir().unwrap();
    let image = AnyImage::read(sources().join("rgba8.tif"), &ReadOptions::default()).unwrap();
    let rgba = dir.path().join("rgba.tif");
    image.write(&rgba, &WriteOptions::default()).unwrap();
    let gray_alpha = dir.path().join("ga.tif");
    let options = WriteOptions::default()
        .channel_indices([1, 3])
        .depth(SampleDepth::Sixteen)
        .tiff_compression(TiffCompression::Lzw);
    image.write(&gray_alpha, &options).unwrap();
    let gray = dir.path().join("gray.tif");
    let options = WriteOptions::default()
        .channel_names(["B"])
        .tiff_compression(TiffCompression::None);
    image.write(&gray, &options).unwrap();
    let read = read_back(&[
        (&rgba, "tifffile"),
        (&gray_alpha, "tifffile"),
        (&gray, "tifffile"),
    ]);
    let expected = [
        json!({"photometric": "RGB", "extrasamples": [2], "compression": "ADOBE_DEFLATE",
               "predictor": 2, "bitspersample": 8, "bigtiff": false}),
        json!({"photometric": "MINISBLACK", "extrasamples": [2], "compression": "LZW",
               "predictor": 2, "bitspersample": 16, "bigtiff": false}),
        json!({"photometric": "MINISBLACK", "extrasamples": [], "compression": "NONE",
               "predictor": 1, "bitspersample": 8, "bigtiff": false}),
    ];
    for (read, expected) in read.iter().zip(expected) {
        assert_eq!(read.attributes, expected);
    }
    // The selected channels, in the order asked for, 8 bits scaled to 16.
    let source = planes(&image);
    let widened: Vec<u8> = source[1]
        .iter()
        .flat_map(|&v| (u16::from(v) * 257).to_le_bytes())
        .collect();
    assert!(read[1].channels[0].2 == widened, "G as 16 bits");
    assert!(read[2].channels[0].2 == source[2], "B alone");
    let names = AnyImage::read(&gray_alpha, &ReadOptions::default())
        .unwrap()
        .channel_names();
    assert_eq!(names, ["Y", "A"], "the extra sample is alpha");
}

/// The sRGB encoding of a linear value.
fn srgb(v: f64) -> f64 {
    if v <= 0.003_130_8 {
        12.92 * v
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// `v` as a sample of `max`: NaN 0, clamped, encoded when `encode`, scaled, rounded.
fn expected_sample(v: f64, encode: bool, max: f64) -> u16 {
    if v.is_nan() {
        return 0;
    }
    let v = v.clamp(0.0, 1.0);
    let v = if encode { srgb(v) } else { v };
    (v * max).round() as u16
}

/// An RGBA `f32` image whose values cover below 0, [0, 1], above 1 and NaN.
fn float_rgba() -> (AnyImage, Vec<Vec<f32>>) {
    let mut rng = Rng::new(99);
    let image = AnyImage::new(W, H).unwrap();
    let mut planes = Vec::new();
    for name in ["R", "G", "B", "A"] {
        let mut values = floats(&smooth(&mut rng, 1.6, -0.3));
        values[rng.below(W * H)] = f32::NAN;
        values[0] = 0.5;
        image
            .add_channel(&values, Some(name), small_chunks(W))
            .unwrap();
        planes.push(values);
    }
    (image, planes)
}

#[test]
fn float_samples_are_clamped_srgb_encoded_and_rounded() {
    let (image, source) = float_rgba();
    let dir = tempfile::tempdir().unwrap();
    let png8 = dir.path().join("srgb8.png");
    let tif16 = dir.path().join("srgb16.tif");
    let linear8 = dir.path().join("linear8.png");
    let rgb16 = dir.path().join("rgb16.png");
    image
        .write(&png8, &WriteOptions::default().depth(SampleDepth::Eight))
        .unwrap();
    image.write(&tif16, &WriteOptions::default()).unwrap();
    let linear = WriteOptions::default()
        .depth(SampleDepth::Eight)
        .transfer(Transfer::Linear);
    image.write(&linear8, &linear).unwrap();
    let rgb = WriteOptions::default().channel_names(["R", "G", "B"]);
    image.write(&rgb16, &rgb).unwrap();
    let read = read_back(&[
        (&png8, "pillow"),
        (&tif16, "tifffile"),
        (&linear8, "pillow"),
        (&rgb16, "oiio"),
    ]);
    let cases = [
        (255.0, true, 4),
        (65535.0, true, 4),
        (255.0, false, 4),
        (65535.0, true, 3),
    ];
    for (((max, srgb_colour, samples), read), path) in cases
        .iter()
        .zip(&read)
        .zip([&png8, &tif16, &linear8, &rgb16])
    {
        assert_eq!(read.channels.len(), *samples, "{}", path.display());
        for (k, (_, dtype, got)) in read.channels.iter().enumerate() {
            let encode = *srgb_colour && k < 3;
            let expected: Vec<f64> = source[k]
                .iter()
                .map(|&v| f64::from(expected_sample(f64::from(v), encode, *max)))
                .collect();
            let got = values(got, *dtype);
            assert_eq!(got, expected, "{} sample {k}", path.display());
        }
    }
    // 0.5 is 188 with the sRGB curve, 128 linear; alpha stays linear.
    assert_eq!(read[0].channels[0].2[0], 188);
    assert_eq!(read[0].channels[3].2[0], 128);
    assert_eq!(read[2].channels[0].2[0], 128);
}

#[test]
fn integer_samples_are_scaled_to_the_depth() {
    let mut rng = Rng::new(5);
    let image = AnyImage::new(W, H).unwrap();
    let ids: Vec<u32> = (0..W * H).map(|_| rng.next() as u32).collect();
    let shorts: Vec<u16> = (0..W * H).map(|_| rng.next() as u16).collect();
    let bytes: Vec<u8> = (0..W * H).map(|_| rng.next() as u8).collect();
    image.add_channel(&ids, Some("Y"), small_chunks(W)).unwrap();
    image
        .add_channel(&shorts, Some("s"), small_chunks(W))
        .unwrap();
    image
        .add_channel(&bytes, Some("b"), small_chunks(W))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("u32.png");
    let narrow = dir.path().join("u16.png");
    let widened = dir.path().join("u8.tif");
    image
        .write(&wide, &WriteOptions::default().channel_names(["Y"]))
        .unwrap();
    let eight = WriteOptions::default()
        .channel_names(["s"])
        .depth(SampleDepth::Eight);
    image.write(&narrow, &eight).unwrap();
    let sixteen = WriteOptions::default()
        .channel_names(["b"])
        .depth(SampleDepth::Sixteen);
    image.write(&widened, &sixteen).unwrap();
    let read = read_back(&[
        (&wide, "pillow"),
        (&narrow, "pillow"),
        (&widened, "tifffile"),
    ]);
    let scaled = |v: f64, from: f64, to: f64| (v / from * to).round();
    let expected: [Vec<f64>; 3] = [
        ids.iter()
            .map(|&v| scaled(f64::from(v), f64::from(u32::MAX), 65535.0))
            .collect(),
        shorts
            .iter()
            .map(|&v| scaled(f64::from(v), 65535.0, 255.0))
            .collect(),
        bytes.iter().map(|&v| f64::from(v) * 257.0).collect(),
    ];
    for ((read, expected), what) in read.iter().zip(expected).zip(["u32", "u16", "u8"]) {
        let (_, dtype, got) = &read.channels[0];
        assert_eq!(values(got, *dtype), expected, "{what}");
    }
}

/// Write the raw planes of `channels` of `image`, ask numpy for the expected preview of
/// `size`, and return it (interleaved 8-bit samples).
fn numpy_preview(
    image: &AnyImage,
    channels: &[usize],
    size: (usize, usize),
    dir: &Path,
) -> Vec<u8> {
    let planes = image.get_decompressed_bytes().unwrap();
    let dtypes = image.dtypes();
    let request_channels: Vec<Value> = channels
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let data = dir.join(format!("plane{c}.raw"));
            fs::write(&data, &planes[c]).unwrap();
            let alpha = (channels.len() == 2 && k == 1) || (channels.len() == 4 && k == 3);
            json!({"data": data, "dtype": dtypes[c].name(), "alpha": alpha})
        })
        .collect();
    let out = dir.join("expected.raw");
    let request = json!({
        "width": image.width(), "height": image.height(),
        "out_width": size.0, "out_height": size.1,
        "channels": request_channels, "out": out,
    });
    let request_path = dir.join("preview.json");
    fs::write(&request_path, request.to_string()).unwrap();
    run_script(&["preview".as_ref(), request_path.as_os_str()]);
    fs::read(out).unwrap()
}

/// The largest difference between two sample buffers.
fn max_difference(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn a_preview_is_the_box_filtered_image_as_numpy_computes_it() {
    let mut rng = Rng::new(11);
    let (width, height) = (300, 200);
    let image = AnyImage::new(width, height).unwrap();
    let settings = Settings::default().chunk_size(width * 4 * 7);
    let noise = |rng: &mut Rng, n| -> Vec<f32> {
        (0..n)
            .map(|i| ((i % 97) as f32 / 60.0) + (rng.next() % 100) as f32 / 500.0 - 0.1)
            .collect()
    };
    image
        .add_channel(&noise(&mut rng, width * height), Some("Z"), settings)
        .unwrap();
    for name in ["B", "G", "R"] {
        image
            .add_channel(&noise(&mut rng, width * height), Some(name), settings)
            .unwrap();
    }
    let alpha: Vec<u16> = (0..width * height).map(|_| rng.next() as u16).collect();
    image.add_channel(&alpha, Some("A"), settings).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            PreviewOptions::default().max_size(64),
            vec![3, 2, 1, 4],
            (64, 43),
        ),
        (
            PreviewOptions::default().max_size(37).channel_names(["Z"]),
            vec![0],
            (37, 25),
        ),
        (
            PreviewOptions::default().channel_indices([4, 4]),
            vec![4, 4],
            (300, 200),
        ),
    ];
    let mut files = Vec::new();
    for (i, (options, channels, size)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("preview{i}.png"));
        image.preview(&path, options).unwrap();
        let expected = numpy_preview(&image, channels, *size, dir.path());
        files.push((path, expected));
    }
    let requests: Vec<(&Path, &str)> = files.iter().map(|(p, _)| (p.as_path(), "pillow")).collect();
    for (((path, expected), read), (_, channels, size)) in
        files.iter().zip(read_back(&requests)).zip(&cases)
    {
        assert_eq!((read.width, read.height), *size, "{}", path.display());
        assert_eq!(read.channels.len(), channels.len());
        let got: Vec<u8> = (0..size.0 * size.1)
            .flat_map(|i| read.channels.iter().map(move |c| c.2[i]))
            .collect();
        // numpy sums in another order: a mean on a rounding boundary may round the other
        // way.
        assert!(max_difference(&got, expected) <= 1, "{}", path.display());
    }
}

#[test]
fn a_preview_keeps_the_aspect_and_picks_channels_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let gray = AnyImage::new(40, 90).unwrap();
    let y: Vec<u8> = (0..40 * 90).map(|i| (i % 251) as u8).collect();
    gray.add_channel(&y, Some("X"), Settings::default())
        .unwrap();
    gray.add_channel(&y, Some("Y"), Settings::default())
        .unwrap();
    let small = dir.path().join("gray.png");
    gray.preview(&small, &PreviewOptions::default().max_size(30))
        .unwrap();
    let full = dir.path().join("full.png");
    gray.preview(&full, &PreviewOptions::default()).unwrap();
    let layers = AnyImage::new(8, 8).unwrap();
    for name in ["diffuse.R", "diffuse.G", "diffuse.B"] {
        layers
            .add_lazy_channel(0.25f32, Some(name), Settings::default())
            .unwrap();
    }
    let first = dir.path().join("first.png");
    layers.preview(&first, &PreviewOptions::default()).unwrap();
    let read = read_back(&[(&small, "pillow"), (&full, "pillow"), (&first, "pillow")]);
    assert_eq!((read[0].width, read[0].height), (13, 30));
    assert_eq!(read[0].attributes["mode"], "L", "Y alone");
    assert!(
        read[1].channels[0].2 == y,
        "a small u8 image is shown as it is"
    );
    assert_eq!(read[2].attributes["mode"], "L", "the first channel");
    let quarter = expected_sample(0.25, true, 255.0) as u8;
    assert!(read[2].channels[0].2.iter().all(|&v| v == quarter));
}

/// `err` is an image file error naming `path` whose kind `is_kind` accepts.
fn assert_file_error(err: Error, path: &Path, is_kind: impl Fn(&ImageFileError) -> bool) {
    match &err {
        Error::ImageFile { path: p, kind } if p == path && is_kind(kind) => {}
        other => panic!("unexpected error for {}: {other:?}", path.display()),
    }
}

#[test]
fn bad_requests_give_typed_errors_and_leave_no_file() {
    let image = mixed_image();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let default = WriteOptions::default();
    for name in ["x.bmp", "noextension", "x.jpg"] {
        let path = d.join(name);
        let err = image.write(&path, &default).unwrap_err();
        assert_file_error(err, &path, |k| {
            matches!(k, ImageFileError::UnknownExtension(_))
        });
    }
    let png = d.join("x.png");
    let err = image
        .write(&png, &default.clone().channel_names(Vec::<String>::new()))
        .unwrap_err();
    assert_file_error(err, &png, |k| matches!(k, ImageFileError::NoChannels));
    let err = AnyImage::new(3, 3)
        .unwrap()
        .write(&png, &default)
        .unwrap_err();
    assert_file_error(err, &png, |k| matches!(k, ImageFileError::NoChannels));
    let err = image.write(&png, &default).unwrap_err();
    assert_file_error(err, &png, |k| matches!(k, ImageFileError::Unsupported(_)));
    let err = image
        .write(&png, &default.clone().channel_names(["R", "nope"]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownChannelName(n) if n == "nope"),
        "{err}"
    );
    let err = image
        .write(&png, &default.clone().channel_indices([0, 7]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::IndexOutOfRange {
                index: 7,
                len: 7,
                ..
            }
        ),
        "{err}"
    );
    let err = image
        .preview(&png, &PreviewOptions::default().max_size(0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                what: Argument::PreviewSize,
                ..
            }
        ),
        "{err}"
    );
    let err = AnyImage::new(3, 3)
        .unwrap()
        .preview(&png, &PreviewOptions::default())
        .unwrap_err();
    assert_file_error(err, &png, |k| matches!(k, ImageFileError::NoChannels));
    assert_eq!(listing(d), Vec::<String>::new(), "nothing written");

    // Missing and non-directory parents: the temporary file cannot be made.
    let missing = d.join("missing").join("x.exr");
    let err = image.write(&missing, &default).unwrap_err();
    assert!(
        matches!(&err, Error::File { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
    fs::write(d.join("file"), b"").unwrap();
    let under_file = d.join("file").join("x.png");
    let err = image
        .preview(&under_file, &PreviewOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::File { .. }), "{err}");
}

#[test]
fn a_failed_export_keeps_the_file_it_would_replace() {
    let image = mixed_image();
    let dir = tempfile::tempdir().unwrap();
    let exr = dir.path().join("x.exr");
    fs::write(&exr, b"old contents").unwrap();
    // Found only once the header is built, after the temporary file was made.
    let twice = WriteOptions::default().channel_names(["R", "R"]);
    let err = image.write(&exr, &twice).unwrap_err();
    assert_file_error(
        err,
        &exr,
        |k| matches!(k, ImageFileError::DuplicateChannel(n) if n == "R"),
    );
    let five = WriteOptions::default().format(ImageFormat::Png);
    let err = image.write(&exr, &five).unwrap_err();
    assert_file_error(err, &exr, |k| matches!(k, ImageFileError::Unsupported(_)));
    assert_eq!(fs::read(&exr).unwrap(), b"old contents");
    assert_eq!(listing(dir.path()), ["x.exr"]);
    // A successful export replaces it; the format option wins over the extension.
    let png = WriteOptions::default()
        .format(ImageFormat::Png)
        .channel_names(["R", "G", "B"]);
    image.write(&exr, &png).unwrap();
    assert!(fs::read(&exr).unwrap().starts_with(b"\x89PNG"));
    assert_eq!(listing(dir.path()), ["x.exr"]);
}

#[test]
fn unnamed_images_get_the_names_their_layout_suggests() {
    let image = AnyImage::new(W, H).unwrap();
    for v in [0.1f32, 0.2, 0.3, 0.4, 0.5] {
        image
            .add_channel_bytes(
                Dtype::F32,
                &v.to_le_bytes().repeat(W * H),
                None,
                Settings::default(),
            )
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unnamed.exr");
    image.write(&path, &WriteOptions::default()).unwrap();
    let again = AnyImage::read(&path, &ReadOptions::default()).unwrap();
    assert_eq!(again.channel_names(), ["R", "G", "B", "A", "channel4"]);
    let path = dir.path().join("empty-name.exr");
    let named = AnyImage::new(W, H).unwrap();
    named
        .add_lazy_channel(1.0f32, Some(""), Settings::default())
        .unwrap();
    named
        .add_lazy_channel(2.0f32, Some("Z"), Settings::default())
        .unwrap();
    named.write(&path, &WriteOptions::default()).unwrap();
    let again = AnyImage::read(&path, &ReadOptions::default()).unwrap();
    assert_eq!(again.channel_names(), ["Z", "channel0"]);
}
