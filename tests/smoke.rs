//! Quick end-to-end checks of the file-backed channel and image.

use compressed_image::*;

#[test]
fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.cimg");
    let data: Vec<f32> = (0..100 * 30).map(|i| i as f32).collect();
    let c = Channel::create(&path, &data, 100, 30, Settings::default().chunk_size(3200)).unwrap();
    assert_eq!(c.num_chunks(), 4);
    assert_eq!(c.get_decompressed().unwrap(), data);
    c.set_chunk(1, &[7.0; 800]).unwrap();
    assert!(c.is_lazy(1).unwrap());
    let r = Channel::<f32>::open_read_only(&path).unwrap();
    assert_eq!(r.get_chunk_vec(1).unwrap(), vec![7.0; 800]);
    c.set_chunk(2, &data[..800]).unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(r.get_chunk_vec(2).unwrap(), data[..800].to_vec());
    println!("{:?}", c.stats().unwrap());
    drop(c);
    let c = Channel::<f32>::open(&path).unwrap();
    assert_eq!(c.get_chunk_vec(2).unwrap(), data[..800].to_vec());
    assert!(matches!(
        Channel::<f32>::open(&path),
        Err(Error::Locked { .. })
    ));
    let img = Image::<u16>::new(64, 64).unwrap();
    let ch = img
        .add_lazy_channel(3, Some("R"), Settings::default())
        .unwrap();
    img.set_metadata(serde_json::json!({"a": 1})).unwrap();
    assert_eq!(img.channel_index("R").unwrap(), 0);
    img.remove_channel(0).unwrap();
    assert!(matches!(ch.is_lazy(0), Err(Error::ChannelRemoved)));
    let p2 = dir.path().join("img.cimg");
    img.save_as(&p2).unwrap();
    let img2 = Image::<u16>::open(&p2).unwrap();
    assert_eq!(img2.metadata(), serde_json::json!({"a": 1}));
}

#[test]
fn read_rows_matches_full_decode() {
    let data: Vec<u16> = (0..37 * 101).map(|i| (i * 7) as u16).collect();
    let c = Channel::new(
        &data,
        37,
        101,
        Settings::default().chunk_size(37 * 2 * 10).block_size(64),
    )
    .unwrap();
    for (first, n) in [(0, 1), (3, 20), (9, 2), (95, 6), (0, 101), (50, 0)] {
        let mut out = vec![0u16; n * 37];
        c.read_rows(first, &mut out).unwrap();
        assert_eq!(out, data[first * 37..(first + n) * 37], "{first} {n}");
    }
    assert!(c.read_rows(100, &mut [0u16; 74]).is_err());
}

#[test]
fn verify_reports_an_intact_file_and_a_damaged_blob() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cimg");
    let data: Vec<u8> = (0..64 * 64u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let c = Channel::create(
        &path,
        &data,
        64,
        64,
        Settings::default().level(0).chunk_size(1024),
    )
    .unwrap();
    let v = c.verify().unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.records, 1 + 1 + 4);
    drop(c);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(16)
        .position(|w| w == &data[1024..1040])
        .unwrap();
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let c = Channel::<u8>::open_read_only(&path).unwrap();
    let v = c.verify().unwrap();
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert!(v.problems[0].contains("chunk 1"), "{v:?}");
}

#[test]
fn inspect_reports_dtype_names_and_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.cimg");
    let img = Image::<i16>::create(&path, 30, 20).unwrap();
    img.add_lazy_channel(-1, Some("A"), Settings::default().codec(Codec::Zstd))
        .unwrap();
    img.add_lazy_channel(2, None, Settings::default()).unwrap();
    let info = inspect(&path).unwrap();
    assert_eq!((info.width, info.height, info.has_names), (30, 20, true));
    assert_eq!(info.channels.len(), 2);
    assert_eq!(info.channels[0].dtype, Dtype::I16);
    assert_eq!(info.channels[0].codec, Codec::Zstd);
    assert_eq!(info.channels[1].name, "");
    assert_eq!(info.channels[1].geometry.num_chunks(), 1);
}

#[test]
fn image_batch_commits_chunks_of_several_channels_at_once() {
    let img = Image::<u16>::new(8, 8).unwrap();
    let s = Settings::default().chunk_size(8 * 2 * 4);
    img.add_lazy_channel(0, Some("a"), s).unwrap();
    img.add_lazy_channel(0, Some("b"), s).unwrap();
    let generation = img.stats().unwrap().generation;
    let mut batch = img.batch().unwrap();
    batch.set_chunk(0, 1, &[5; 32]).unwrap();
    batch
        .set_chunk(1, 0, &(0..32).collect::<Vec<u16>>())
        .unwrap();
    assert!(matches!(
        batch.set_chunk(2, 0, &[0; 32]),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        batch.set_chunk(0, 0, &[0; 31]),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(
        img.channel(0).unwrap().get_chunk_vec(1).unwrap(),
        vec![0; 32],
        "not before commit"
    );
    batch.commit().unwrap();
    assert_eq!(img.stats().unwrap().generation, generation + 1);
    assert_eq!(
        img.channel(0).unwrap().get_chunk_vec(1).unwrap(),
        vec![5; 32]
    );
    assert_eq!(
        img.channel(1).unwrap().get_chunk_vec(0).unwrap(),
        (0..32).collect::<Vec<u16>>()
    );
}

#[test]
fn read_rows_across_a_block_boundary_with_any_thread_count() {
    let (w, h) = (1024, 16);
    let data: Vec<f32> = (0..w * h).map(|i| (i / w) as f32).collect();
    for threads in [1, 2, 4] {
        let c = Channel::new(&data, w, h, Settings::default()).unwrap();
        c.set_threads(threads).unwrap();
        for first in 0..=h - 8 {
            let mut out = vec![0.0f32; 8 * w];
            c.read_rows(first, &mut out).unwrap();
            assert_eq!(
                out,
                data[first * w..(first + 8) * w],
                "threads {threads}, first {first}"
            );
        }
    }
}
