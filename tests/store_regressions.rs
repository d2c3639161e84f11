//! Regression tests of the store and the chunk codec through the public API: failed opens
//! leave nothing behind and name their file, wide rows get chunks of their own, a sync
//! without a new commit is no change for readers, and a sync racing commits never shows an
//! older commit.

use std::io;
use std::path::{Path, PathBuf};

use compressed_image::{AnyChannel, Channel, Error, Image, Settings};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn lock_sidecar(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("listing")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every read-write open of `path`, each with its error.
fn read_write_opens(path: &Path) -> Vec<(&'static str, Error)> {
    let err = |r: compressed_image::Result<()>| r.expect_err("the open must fail");
    vec![
        (
            "Channel::<f32>::open",
            err(Channel::<f32>::open(path).map(drop)),
        ),
        ("AnyChannel::open", err(AnyChannel::open(path).map(drop))),
        (
            "Image::<f32>::open",
            err(Image::<f32>::open(path).map(drop)),
        ),
    ]
}

/// The `io::ErrorKind` of an [`Error::File`] naming `path`; panics for any other error.
fn file_error_kind(error: &Error, path: &Path) -> io::ErrorKind {
    match error {
        Error::File { path: p, source } => {
            assert_eq!(p, path, "{error}");
            assert!(
                error.to_string().contains(&*path.to_string_lossy()),
                "{error}"
            );
            source.kind()
        }
        other => panic!("expected Error::File for {}, got {other:?}", path.display()),
    }
}

#[test]
fn a_failed_read_write_open_of_a_missing_file_creates_nothing_and_names_the_file() {
    let dir = tempdir();
    let path = dir.path().join("missing.cimg");
    for (how, error) in read_write_opens(&path) {
        assert_eq!(
            file_error_kind(&error, &path),
            io::ErrorKind::NotFound,
            "{how}"
        );
        assert!(
            listing(dir.path()).is_empty(),
            "{how} left {:?}",
            listing(dir.path())
        );
    }
}

#[test]
fn a_failed_read_write_open_of_a_directory_creates_nothing_beside_it() {
    let dir = tempdir();
    let path = dir.path().join("a-directory");
    std::fs::create_dir(&path).expect("mkdir");
    for (how, error) in read_write_opens(&path) {
        assert_eq!(
            file_error_kind(&error, &path),
            io::ErrorKind::IsADirectory,
            "{how}"
        );
        assert_eq!(listing(dir.path()), ["a-directory"], "{how}");
    }
    let read_only = Channel::<f32>::open_read_only(&path).map(drop);
    let error = read_only.expect_err("a directory is no container");
    assert_eq!(file_error_kind(&error, &path), io::ErrorKind::IsADirectory);
}

#[test]
fn a_failed_read_write_open_of_a_foreign_file_removes_the_lock_it_took() {
    let dir = tempdir();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"not an image at all").expect("write");
    for (how, error) in read_write_opens(&path) {
        assert!(
            matches!(error, Error::NotACompressedImage),
            "{how}: {error:?}"
        );
        assert_eq!(listing(dir.path()), ["notes.txt"], "{how}");
    }
}

#[test]
fn a_failed_open_keeps_a_lock_sidecar_it_did_not_create() {
    let dir = tempdir();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"not an image at all").expect("write");
    std::fs::write(lock_sidecar(&path), b"").expect("sidecar");
    assert!(matches!(
        Channel::<f32>::open(&path),
        Err(Error::NotACompressedImage)
    ));
    assert!(lock_sidecar(&path).exists());
}

#[test]
fn a_successful_open_or_create_keeps_its_lock_sidecar() {
    let dir = tempdir();
    let path = dir.path().join("a.cimg");
    drop(Channel::<f32>::create_full(&path, 4, 4, 1.0, Settings::default()).expect("create"));
    assert!(lock_sidecar(&path).exists());
    std::fs::remove_file(lock_sidecar(&path)).expect("remove sidecar");
    drop(Channel::<f32>::open(&path).expect("open"));
    assert!(lock_sidecar(&path).exists());
}

#[test]
fn creating_in_a_missing_directory_creates_nothing_and_names_the_file() {
    let dir = tempdir();
    let path = dir.path().join("no-such-dir").join("a.cimg");
    let error = Channel::<f32>::create_full(&path, 4, 4, 1.0, Settings::default())
        .map(drop)
        .expect_err("no directory");
    assert_eq!(
        file_error_kind(&error, &lock_sidecar(&path)),
        io::ErrorKind::NotFound
    );
    assert!(listing(dir.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn a_missing_file_in_a_read_only_directory_is_not_found() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let locked_dir = dir.path().join("read-only");
    std::fs::create_dir(&locked_dir).expect("mkdir");
    std::fs::set_permissions(&locked_dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let path = locked_dir.join("missing.cimg");
    let errors = read_write_opens(&path);
    // Restore the permissions first, so the directory can be cleaned up whatever happens.
    std::fs::set_permissions(&locked_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for (how, error) in errors {
        assert_eq!(
            file_error_kind(&error, &path),
            io::ErrorKind::NotFound,
            "{how}"
        );
    }
    // (Run as root, the directory is writable anyway; then this is what catches a sidecar.)
    assert!(listing(&locked_dir).is_empty());
}

#[test]
fn rows_wider_than_the_chunk_size_get_one_row_per_chunk() {
    // 600,000 f64 = 4.8 MB per row, above the default 4 MiB chunk size.
    let (width, height) = (600_000, 2);
    let c = Channel::<f64>::zeros(width, height, Settings::default()).expect("zeros");
    assert_eq!(c.num_chunks(), height);
    assert_eq!(c.chunk_size(), width * 8);
    let row: Vec<f64> = (0..width).map(|i| i as f64 * 0.5).collect();
    c.set_chunk(1, &row).expect("set_chunk");
    assert_eq!(c.get_chunk_vec(1).unwrap(), row);
    assert_eq!(c.get_chunk_vec(0).unwrap(), vec![0.0; width]);

    // Any request below one scanline, stored in a file and read back.
    let dir = tempdir();
    let path = dir.path().join("wide.cimg");
    let data: Vec<u16> = (0..50u16).collect();
    for request in [0, 1, 19] {
        let s = Settings::default().chunk_size(request);
        drop(Channel::create(&path, &data, 10, 5, s).expect("create"));
        let c = Channel::<u16>::open_read_only(&path).expect("open");
        assert_eq!((c.num_chunks(), c.chunk_size()), (5, 20));
        assert_eq!(c.get_decompressed().unwrap(), data);
    }
}

#[test]
fn a_sync_without_a_new_commit_is_no_change_for_readers() {
    let dir = tempdir();
    let path = dir.path().join("a.cimg");
    let writer = Channel::<u16>::create_full(&path, 8, 8, 3, Settings::default().chunk_size(32))
        .expect("create");
    writer.set_chunk(1, &[9; 16]).expect("set_chunk");
    let reader = Channel::<u16>::open_read_only(&path).expect("open");
    assert_eq!(reader.get_chunk_vec(1).unwrap(), vec![9; 16]);
    let seen = reader.stats().unwrap().generation;
    writer.sync().expect("sync");
    writer.sync().expect("sync again");
    assert!(!reader.refresh().unwrap(), "nothing was committed");
    assert_eq!(reader.stats().unwrap().generation, seen);
    writer.set_chunk(2, &[5; 16]).expect("set_chunk");
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.get_chunk_vec(2).unwrap(), vec![5; 16]);
}

/// Elements that do not compress: every chunk is stored as a blob of about its raw size.
fn noise(n: usize, seed: u32) -> Vec<u32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
        .collect()
}

#[test]
fn a_set_chunk_loop_on_several_threads_reads_back_exactly_in_process_and_after_reopen() {
    // On more than one thread, each commit prepares the file for the next on a helper
    // thread; the chunks read back must be exactly the last ones written.
    let dir = tempdir();
    let path = dir.path().join("loop.cimg");
    let (width, height) = (1024, 4096); // 4 MiB chunks of 1024 rows: 4 chunks
    let c = Channel::<u32>::create_full(&path, width, height, 0, Settings::default()).unwrap();
    c.set_threads(2).unwrap();
    let chunk_len = c.chunk_size_at(0).unwrap() / 4;
    let mut latest = vec![Vec::new(); c.num_chunks()];
    for round in 0..12u32 {
        let index = (round as usize * 3) % latest.len();
        let data = noise(chunk_len, round + 1);
        c.set_chunk(index, &data).unwrap();
        latest[index] = data;
        let mut out = vec![0u32; chunk_len];
        for (i, expected) in latest.iter().enumerate().filter(|(_, d)| !d.is_empty()) {
            c.get_chunk(i, &mut out).unwrap();
            assert!(out == *expected, "round {round}, chunk {i}");
        }
    }
    drop(c);
    let reopened = Channel::<u32>::open_read_only(&path).unwrap();
    assert!(reopened.verify().unwrap().is_ok());
    let mut out = vec![0u32; chunk_len];
    for (i, expected) in latest.iter().enumerate() {
        reopened.get_chunk(i, &mut out).unwrap();
        assert!(out == *expected, "chunk {i} after reopen");
    }
}

#[test]
fn a_sync_racing_commits_on_other_threads_never_moves_the_generation_back() {
    // A sync publishes its marker slot for readers in this process; a commit made on another
    // thread between the fsync and that publication must not be replaced by the older marker.
    let dir = tempdir();
    let path = dir.path().join("race.cimg");
    let c = Channel::<u16>::create_full(&path, 8, 64, 0, Settings::default().chunk_size(16))
        .expect("create");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.sync().expect("sync");
            }
        });
        let watcher = s.spawn(|| {
            let mut seen = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let generation = c.generation();
                assert!(generation >= seen, "generation {generation} after {seen}");
                seen = generation;
            }
        });
        for round in 0..30_000u32 {
            let index = round as usize % c.num_chunks();
            c.set_chunk(index, &[round as u16; 8]).expect("set_chunk");
            assert_eq!(c.get_chunk_vec(index).unwrap(), vec![round as u16; 8]);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().expect("the generation never went back");
    });
    c.sync().expect("sync");
    let reopened = Channel::<u16>::open_read_only(&path).expect("reopen");
    assert_eq!(reopened.generation(), c.generation());
}
