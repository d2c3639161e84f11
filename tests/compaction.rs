//! Compaction: a rewritten file reads the same bits, has no dead space and the minimal
//! size; other handles and other readers follow it; automatic compaction triggers at its
//! threshold.

use compressed_image::{AutoCompact, Channel, Image, Settings};

mod common;

use common::rng::Rng;

/// Poorly compressible values, the same for the same `seed`.
fn noise(seed: u32, n: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed.into());
    (0..n).map(|_| rng.below(1000) as f32).collect()
}

#[test]
fn compaction_keeps_every_bit_and_leaves_no_dead_space() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cimg");
    let settings = Settings::default().chunk_size(64 * 64 * 4);
    let c = Channel::<f32>::create_full(&path, 64, 64 * 8, f32::from_bits(0x7fc0_0042), settings)
        .unwrap();
    for round in 0..6 {
        for i in 0..8 {
            if i % 3 != 0 {
                c.set_chunk(i, &noise(round * 10 + i as u32, 64 * 64))
                    .unwrap();
            }
        }
    }
    c.set_chunk(3, &[-0.0; 64 * 64]).unwrap();
    let before = c.get_decompressed().unwrap();
    let stats = c.stats().unwrap();
    assert!(stats.dead_bytes > 0);
    let reader = Channel::<f32>::open_read_only(&path).unwrap();
    let other_handle = c.clone();

    let report = c.compact().unwrap();
    let after = c.stats().unwrap();
    assert_eq!(after.dead_bytes, 0);
    assert_eq!(
        after.file_len, after.committed_end,
        "no slack after compaction"
    );
    assert_eq!(after.live_bytes, stats.live_bytes);
    assert!(after.generation > stats.generation);
    assert_eq!(report.file_len_after, after.file_len);
    assert!(report.file_len_after < report.file_len_before);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&c.get_decompressed().unwrap()), bits(&before));
    assert_eq!(
        bits(&other_handle.get_decompressed().unwrap()),
        bits(&before)
    );
    assert!(c.verify().unwrap().is_ok());

    // The reader still reads its snapshot of the old file, then follows the new one.
    assert_eq!(bits(&reader.get_decompressed().unwrap()), bits(&before));
    c.set_chunk(0, &noise(99, 64 * 64)).unwrap();
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.get_chunk_vec(0).unwrap(), noise(99, 64 * 64));
    assert_eq!(
        reader.stats().unwrap().generation,
        c.stats().unwrap().generation
    );

    // Writes continue on the new file and survive reopening.
    drop((c, other_handle));
    let c = Channel::<f32>::open(&path).unwrap();
    assert_eq!(c.get_chunk_vec(0).unwrap(), noise(99, 64 * 64));
    assert_eq!(
        bits(&c.get_chunk_vec(5).unwrap()),
        bits(&before[5 * 4096..6 * 4096])
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "only the file and its lock remain: {names:?}"
    );
}

#[test]
fn automatic_compaction_triggers_at_the_threshold() {
    let img = Image::<f32>::new(64, 256).unwrap();
    let ch = img
        .add_channel(
            &noise(1, 64 * 256),
            Some("A"),
            Settings::default().chunk_size(64 * 64 * 4),
        )
        .unwrap();
    img.set_auto_compact(Some(AutoCompact {
        min_dead_ratio: 0.5,
        min_dead_bytes: 1,
    }))
    .unwrap();
    for round in 0..5 {
        ch.set_chunk(round % 4, &noise(round as u32 + 7, 64 * 64))
            .unwrap();
        let s = img.stats().unwrap();
        let committed = s.live_bytes + s.dead_bytes;
        assert!(
            (s.dead_bytes as f64) < 0.5 * committed as f64,
            "round {round}: {s:?}"
        );
    }
    assert_eq!(ch.get_chunk_vec(0).unwrap(), noise(11, 64 * 64));
}

#[test]
fn temporary_files_of_a_killed_writer_are_removed_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.cimg");
    let c = Channel::<u8>::create_full(&path, 16, 16, 1, Settings::default()).unwrap();
    drop(c);
    let stale = dir.path().join(".t.cimg.cimg-tmp-compact-abc123");
    let unrelated = dir.path().join(".u.cimg.cimg-tmp-compact-abc123");
    std::fs::write(&stale, b"left by a killed compaction").unwrap();
    std::fs::write(&unrelated, b"another file's").unwrap();
    let r = Channel::<u8>::open_read_only(&path).unwrap();
    assert!(stale.exists(), "readers never delete");
    drop(r);
    let _w = Channel::<u8>::open(&path).unwrap();
    assert!(!stale.exists());
    assert!(unrelated.exists());
}

#[test]
fn created_and_compacted_files_have_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.cimg");
    let c = Channel::<u8>::create_full(&path, 16, 16, 1, Settings::default()).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // Like File::create: 0o666 less the process umask (not tempfile's private 0o600).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask_line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    let umask = u32::from_str_radix(umask_line.split_whitespace().nth(1).unwrap(), 8).unwrap();
    assert_eq!(mode(&path), 0o666 & !umask);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    c.set_chunk(0, &[2; 256]).unwrap();
    c.compact().unwrap();
    assert_eq!(
        mode(&path),
        0o640,
        "compaction keeps the file's permissions"
    );
}
