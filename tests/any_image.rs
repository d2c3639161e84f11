//! `AnyImage`: images whose channels hold different element types (here f16, f32 and u32),
//! through a file, another process, batches, typed views, copies and channel removal.

use std::path::Path;
use std::process::Command;

use compressed_image::{
    AnyChannel, AnyImage, Argument, Channel, Dtype, Error, Image, Region, Settings, f16, inspect,
    serde_json,
};

const W: usize = 48;
const H: usize = 20;
/// Four rows per chunk for every element type: 5 chunks per channel.
const ROWS_PER_CHUNK: usize = 4;

fn settings<T>() -> Settings {
    Settings::default().chunk_size(W * ROWS_PER_CHUNK * size_of::<T>())
}

fn luma() -> Vec<f16> {
    (0..W * H).map(|i| f16::from_f32(i as f32 / 8.0)).collect()
}
fn depth() -> Vec<f32> {
    (0..W * H).map(|i| (i as f32).sqrt() - 3.5).collect()
}
fn ids() -> Vec<u32> {
    (0..W * H)
        .map(|i| (i as u32 / 7).wrapping_mul(2_654_435_761))
        .collect()
}

/// An image of three channels of different types, with names and metadata.
fn mixed(image: &AnyImage) {
    image
        .add_channel(&luma(), Some("luma"), settings::<f16>())
        .unwrap();
    image
        .add_channel(&depth(), Some("depth"), settings::<f32>())
        .unwrap();
    image
        .add_channel(&ids(), Some("id"), settings::<u32>())
        .unwrap();
    image
        .set_metadata(serde_json::json!({"camera": "left", "exposure": [1, 2]}))
        .unwrap();
}

fn bytes<T: bytemuck::Pod>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

fn expected_bytes() -> Vec<Vec<u8>> {
    vec![bytes(&luma()), bytes(&depth()), bytes(&ids())]
}

/// 64-bit FNV-1a: a digest both processes compute the same way.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What a reader sees in a mixed image: names, types, metadata and a digest per channel.
fn describe(image: &AnyImage) -> String {
    let data = image.get_decompressed_bytes().unwrap();
    let channels: Vec<String> = image
        .channel_names()
        .iter()
        .zip(image.dtypes())
        .zip(&data)
        .map(|((name, dtype), bytes)| format!("{name}:{dtype}:{:016x}", fnv1a(bytes)))
        .collect();
    format!("{} {}", channels.join(","), image.metadata())
}

#[test]
fn mixed_channels_round_trip_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.cimg");
    let image = AnyImage::create(&path, W, H).unwrap();
    mixed(&image);
    drop(image);

    let info = inspect(&path).unwrap();
    let dtypes: Vec<Dtype> = info.channels.iter().map(|c| c.dtype).collect();
    assert_eq!(dtypes, [Dtype::F16, Dtype::F32, Dtype::U32]);

    let image = AnyImage::open_read_only(&path).unwrap();
    assert_eq!((image.width(), image.height()), (W, H));
    assert_eq!(image.dtypes(), dtypes);
    assert_eq!(image.channel_names(), ["luma", "depth", "id"]);
    assert_eq!(image.metadata()["exposure"], serde_json::json!([1, 2]));
    assert_eq!(image.get_decompressed_bytes().unwrap(), expected_bytes());
    let luma_channel = Channel::<f16>::try_from_any(image.channel(0).unwrap()).unwrap();
    assert_eq!(luma_channel.get_decompressed().unwrap(), luma());
    let depth_channel = Channel::<f32>::try_from_any(image.channel_by_name("depth").unwrap());
    assert_eq!(depth_channel.unwrap().get_decompressed().unwrap(), depth());
    let id_channel = image.channel_by_name("id").unwrap();
    assert_eq!(id_channel.dtype(), Dtype::U32);
    assert_eq!(id_channel.num_chunks(), H / ROWS_PER_CHUNK);
    // A typed view of the wrong type is refused, naming what it holds.
    match Channel::<f32>::try_from_any(id_channel) {
        Err(Error::DtypeMismatch { expected, found }) => {
            assert_eq!((expected, found), (Dtype::F32, Dtype::U32));
        }
        other => panic!("{other:?}"),
    }
}

/// Environment variable handing the child process the file to describe.
const CHILD_PATH: &str = "CIMG_ANY_IMAGE_CHILD_PATH";
/// Marker of the child's answer on its stdout.
const ANSWER: &str = "@answer ";

#[test]
fn mixed_image_reads_the_same_in_another_process() {
    if let Some(path) = std::env::var_os(CHILD_PATH) {
        // The child: describe the file on stdout for the parent.
        let image = AnyImage::open_read_only(Path::new(&path)).unwrap();
        println!("{ANSWER}{}", describe(&image));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.cimg");
    let image = AnyImage::create(&path, W, H).unwrap();
    mixed(&image);
    image.sync().unwrap();
    let here = describe(&image);
    assert!(here.contains("luma:float16:") && here.contains("id:uint32:"));

    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mixed_image_reads_the_same_in_another_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PATH, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    let there = stdout
        .lines()
        .find_map(|line| line.find(ANSWER).map(|at| &line[at + ANSWER.len()..]))
        .unwrap_or_else(|| panic!("no answer from the child: {stdout}"));
    assert_eq!(there, here);
}

#[test]
fn a_batch_writes_channels_of_every_type_in_one_commit() {
    let image = AnyImage::new(W, H).unwrap();
    mixed(&image);
    let reader = image.clone();
    let generation = image.generation();
    let chunk = W * ROWS_PER_CHUNK;
    let mut batch = image.batch().unwrap();
    batch
        .set_chunk(0, 1, &vec![f16::from_f32(-1.5); chunk])
        .unwrap();
    batch
        .set_chunk(1, 4, &(0..chunk).map(|i| i as f32).collect::<Vec<_>>())
        .unwrap();
    batch
        .set_chunk_bytes(2, 0, &bytes(&vec![9u32; chunk]))
        .unwrap();
    // A chunk of the wrong type names the channel and stages nothing.
    match batch.set_chunk(2, 1, &vec![0.0f32; chunk]) {
        Err(Error::ChannelDtypeMismatch {
            channel,
            name,
            expected,
            found,
        }) => assert_eq!(
            (channel, name.as_str(), expected, found),
            (2, "id", Dtype::F32, Dtype::U32)
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        batch.set_chunk_bytes(3, 0, &[]),
        Err(Error::IndexOutOfRange { .. })
    ));
    // Nothing is visible before the commit.
    assert_eq!(reader.get_decompressed_bytes().unwrap(), expected_bytes());
    batch.commit().unwrap();
    assert_eq!(image.generation(), generation + 1, "one commit");

    let mut want = expected_bytes();
    let f16_bytes = 2;
    want[0][chunk * f16_bytes..2 * chunk * f16_bytes].copy_from_slice(&bytes(&vec![
        f16::from_f32(
            -1.5
        );
        chunk
    ]));
    want[1][4 * chunk * 4..]
        .copy_from_slice(&bytes(&(0..chunk).map(|i| i as f32).collect::<Vec<_>>()));
    want[2][..chunk * 4].copy_from_slice(&bytes(&vec![9u32; chunk]));
    assert_eq!(reader.get_decompressed_bytes().unwrap(), want);
    assert!(
        image.channel(0).unwrap().is_lazy(1).unwrap(),
        "a constant chunk is lazy"
    );
}

#[test]
fn opening_a_mixed_file_as_image_names_the_channel_and_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.cimg");
    mixed(&AnyImage::create(&path, W, H).unwrap());
    let before = std::fs::read(&path).unwrap();

    let check = |result: compressed_image::Result<Image<f32>>, channel: usize, name: &str| {
        let e = result.unwrap_err();
        match &e {
            Error::ChannelDtypeMismatch {
                channel: c,
                name: n,
                expected: Dtype::F32,
                found,
            } => {
                assert_eq!((*c, n.as_str()), (channel, name));
                let message = e.to_string();
                assert!(
                    message.contains(&format!("channel {channel}"))
                        && message.contains(name)
                        && message.contains(found.name()),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    };
    check(Image::<f32>::open(&path), 0, "luma");
    check(Image::<f32>::open_read_only(&path), 0, "luma");
    check(Image::<f32>::open_with_backend(&path, |b| b), 0, "luma");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a refused open wrote"
    );
    // The refused read-write opens released the writer lock.
    let image = AnyImage::open(&path).unwrap();
    image.remove_channel(0).unwrap();
    // Now the f32 channel comes first and the u32 one is the odd one out.
    drop(image);
    let e = Image::<f32>::open(&path).unwrap_err();
    assert!(
        matches!(&e, Error::ChannelDtypeMismatch { channel: 1, name, found: Dtype::U32, .. } if name == "id"),
        "{e:?}"
    );
}

#[test]
fn typed_and_untyped_images_convert_both_ways() {
    let typed = Image::<f32>::new(W, H).unwrap();
    typed
        .add_channel(&depth(), Some("a"), settings::<f32>())
        .unwrap();
    let any: AnyImage = typed.clone().into();
    assert_eq!(any.dtypes(), [Dtype::F32]);
    let back = Image::<f32>::try_from_any(any.clone()).unwrap();
    assert_eq!(back.get_decompressed().unwrap(), [depth()]);
    assert!(matches!(
        Image::<u32>::try_from_any(any.clone()),
        Err(Error::ChannelDtypeMismatch {
            channel: 0,
            found: Dtype::F32,
            ..
        })
    ));

    // A channel of another type added through the untyped handle: the typed handle
    // refuses it by name instead of mistyping it, and still serves the others.
    any.add_channel(&ids(), Some("b"), settings::<u32>())
        .unwrap();
    let is_b = |e: Error| matches!(&e, Error::ChannelDtypeMismatch { channel: 1, name, found: Dtype::U32, .. } if name == "b");
    assert!(is_b(typed.channel(1).unwrap_err()));
    assert!(is_b(typed.channel_by_name("b").unwrap_err()));
    assert!(is_b(typed.channels().unwrap_err()));
    assert!(is_b(typed.get_decompressed().unwrap_err()));
    assert!(is_b(Image::<f32>::try_from_any(any.clone()).unwrap_err()));
    assert_eq!(
        typed.channel(0).unwrap().get_decompressed().unwrap(),
        depth()
    );
    assert_eq!(typed.num_channels(), 2);

    any.remove_channel_by_name("b").unwrap();
    let typed_again = Image::<f32>::try_from_any(any).unwrap();
    assert_eq!(typed_again.channels().unwrap().len(), 1);
}

#[test]
fn save_as_and_compact_keep_a_mixed_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.cimg");
    let image = AnyImage::create(&path, W, H).unwrap();
    mixed(&image);
    // Overwrite chunks so the file has dead space to reclaim.
    let chunk = W * ROWS_PER_CHUNK;
    let depth_channel = Channel::<f32>::try_from_any(image.channel(1).unwrap()).unwrap();
    for index in 0..H / ROWS_PER_CHUNK {
        depth_channel
            .set_chunk(index, &depth()[index * chunk..(index + 1) * chunk])
            .unwrap();
    }
    assert!(image.stats().unwrap().dead_bytes > 0);

    let copy = dir.path().join("copy.cimg");
    image.save_as(&copy).unwrap();
    let copied = AnyImage::open_read_only(&copy).unwrap();
    assert_eq!(describe(&copied), describe(&image));
    assert_eq!(copied.stats().unwrap().dead_bytes, 0);

    let reader = AnyImage::open_read_only(&path).unwrap();
    image.compact().unwrap();
    assert_eq!(image.stats().unwrap().dead_bytes, 0);
    assert!(image.verify().unwrap().is_ok());
    assert_eq!(image.get_decompressed_bytes().unwrap(), expected_bytes());
    reader.refresh().unwrap();
    assert_eq!(describe(&reader), describe(&image));
    drop((image, reader, depth_channel));
    assert_eq!(
        AnyImage::open(&path)
            .unwrap()
            .get_decompressed_bytes()
            .unwrap(),
        expected_bytes()
    );
}

#[test]
fn removed_channels_of_a_mixed_image_keep_their_properties_but_lose_their_data() {
    let image = AnyImage::new(W, H).unwrap();
    mixed(&image);
    let depth_any: AnyChannel = image.channel(1).unwrap();
    let depth_typed = Channel::<f32>::try_from_any(depth_any.clone()).unwrap();
    image.remove_channel(1).unwrap();

    assert_eq!(image.dtypes(), [Dtype::F16, Dtype::U32]);
    assert_eq!(image.channel_names(), ["luma", "id"]);
    // Fixed properties still answer.
    assert_eq!(depth_any.dtype(), Dtype::F32);
    assert_eq!((depth_typed.width(), depth_typed.height()), (W, H));
    assert_eq!(depth_typed.settings(), settings::<f32>());
    // Anything that needs the chunk table says the channel is gone.
    let mut out = vec![0u8; depth_any.chunk_size()];
    assert!(matches!(
        depth_any.get_chunk_bytes(0, &mut out),
        Err(Error::ChannelRemoved)
    ));
    assert!(matches!(
        depth_typed.set_chunk(0, &vec![1.0; W * ROWS_PER_CHUNK]),
        Err(Error::ChannelRemoved)
    ));
    assert!(matches!(
        depth_typed.compressed_bytes(),
        Err(Error::ChannelRemoved)
    ));
    assert!(matches!(
        depth_typed.read_region_vec(Region::new(0, 0, 2, 2)),
        Err(Error::ChannelRemoved)
    ));
    // The others are intact.
    assert_eq!(
        image.get_decompressed_bytes().unwrap(),
        [bytes(&luma()), bytes(&ids())]
    );
}

#[test]
fn adding_channels_checks_the_data_before_changing_anything() {
    let image = AnyImage::new(W, H).unwrap();
    match image.add_channel_bytes(Dtype::U32, &[0; 7], None, Settings::default()) {
        Err(Error::InvalidArgument {
            what: Argument::DataLength,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    match image.add_channel(&[1u8; 3], None, Settings::default()) {
        Err(Error::InvalidArgument {
            what: Argument::DataLength,
            got,
            ..
        }) => assert_eq!(got, "3 elements"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        image.add_lazy_channel(0u16, None, Settings::default().level(12)),
        Err(Error::InvalidArgument {
            what: Argument::CompressionLevel,
            ..
        })
    ));
    assert_eq!(image.num_channels(), 0);
    assert!(image.channel_names().is_empty());

    let lazy = image
        .add_lazy_channel_bits(Dtype::I16, 0xfffe, Some("m"), Settings::default())
        .unwrap();
    let lazy = Channel::<i16>::try_from_any(lazy).unwrap();
    assert!(lazy.get_decompressed().unwrap().iter().all(|&v| v == -2));
}

#[test]
fn image_wide_sizes_of_a_mixed_image() {
    let image = AnyImage::new(W, H).unwrap();
    assert_eq!(image.chunk_size().unwrap(), 0);
    assert_eq!(image.compression_ratio().unwrap(), 1.0);
    mixed(&image);
    // Four rows of f16 and of f32 are different byte sizes.
    assert!(matches!(
        image.chunk_size(),
        Err(Error::ChannelsDisagree {
            property: "chunk size"
        })
    ));
    let raw: usize = [2, 4, 4].iter().map(|size| size * W * H).sum();
    let stored: usize = image
        .channels()
        .iter()
        .map(|c| c.compressed_bytes().unwrap())
        .sum();
    assert_eq!(
        image.compression_ratio().unwrap(),
        raw as f64 / stored as f64
    );
}
