//! Cross-check of format/SPEC.md: `format/reference_reader.py`, an independent reader
//! written from the specification alone (Python, python-blosc2), decodes every golden file
//! in `tests/data/v1/`, and its output must match what this library decodes, byte for
//! byte, and what its API reports (geometry, codec, chunk kinds, names, metadata, space
//! accounting). Damaged copies must be refused, or fall back to the same older commit, in
//! both readers.
//!
//! The interpreter is `$CIMG_PYTHON` if set; else `<repo>/.venv/bin/python` when that
//! environment exists and has `blosc2` and `numpy` (the project's test script creates
//! it); else a virtual environment this test makes once in the target directory
//! (`python3 -m venv`, then `pip install blosc2 numpy`), guarded by a file lock so that
//! parallel tests and test processes build it once. Without `python3` (with its `venv`
//! module) or without access to the Python package index the test fails with a message
//! saying what to install; it never skips.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use compressed_image::{AnyChannel, Error, Image, Sample, f16};
use serde_json::Value;

#[path = "common/python.rs"]
mod python_env;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter for the reference reader (see `common/python.rs`).
fn python() -> PathBuf {
    python_env::python()
}

/// Run the reference reader on `file`, dumping into `dir`. Returns (success, stderr).
fn run_reader(file: &Path, dir: &Path) -> (bool, String) {
    let out = Command::new(python())
        .arg(repo().join("format/reference_reader.py"))
        .arg(file)
        .arg("--dump-dir")
        .arg(dir)
        .output()
        .expect("cannot start the Python interpreter");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run the reference reader, which must succeed; returns the summary.
fn reference(file: &Path, dir: &Path) -> Value {
    let (ok, stderr) = run_reader(file, dir);
    assert!(
        ok,
        "reference reader failed on {}:\n{stderr}",
        file.display()
    );
    serde_json::from_slice(&fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

fn golden_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join("tests/data/v1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cimg"))
        .collect();
    files.sort();
    assert!(files.len() >= 11, "golden files missing: {files:?}");
    files
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Compare the reference summary and dumps with this library, reading as `Image<T>`.
fn compare<T: Sample>(file: &Path, summary: &Value, dump: &Path) {
    let f = file.file_name().unwrap().to_string_lossy();
    let image = Image::<T>::open_read_only(file).unwrap_or_else(|e| panic!("{f}: {e}"));
    let channels = image.channels().unwrap();
    let s_channels = summary["channels"].as_array().unwrap();
    assert_eq!(channels.len(), s_channels.len(), "{f}");

    // Names: the API lists them only when the catalog says they are present.
    let names: Vec<String> = summary["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    if summary["names_present"].as_bool().unwrap() {
        assert_eq!(image.channel_names(), names, "{f}");
    } else {
        assert!(image.channel_names().is_empty(), "{f}");
        assert!(names.iter().all(String::is_empty), "{f}: {names:?}");
    }
    // Metadata, key order included.
    let meta = image.metadata();
    assert_eq!(meta, summary["metadata"], "{f}");
    assert_eq!(meta.to_string(), summary["metadata"].to_string(), "{f}");
    if let Some(raw) = summary["metadata_raw"].as_str() {
        let parsed: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(parsed.to_string(), meta.to_string(), "{f}");
    }

    // Space accounting (SPEC §12) and the chosen commit.
    let stats = image.stats().unwrap();
    assert_eq!(stats.generation, num(&summary["generation"]), "{f}");
    assert_eq!(stats.committed_end, num(&summary["committed_end"]), "{f}");
    assert_eq!(stats.file_len, num(&summary["file_len"]), "{f}");
    assert_eq!(stats.live_bytes, num(&summary["live_bytes"]), "{f}");
    assert_eq!(stats.dead_bytes, num(&summary["dead_bytes"]), "{f}");

    let file_bytes = fs::read(file).unwrap();
    let (mut blobs, mut lazies, mut lazy_bytes) = (0, 0, 0u64);
    for (i, (c, s)) in channels.iter().zip(s_channels).enumerate() {
        let at = format!("{f} channel {i}");
        assert_eq!(c.width() as u64, num(&summary["width"]), "{at}");
        assert_eq!(c.height() as u64, num(&summary["height"]), "{at}");
        let dtype = c.dtype();
        assert_eq!(u64::from(dtype.code()), num(&s["dtype_code"]), "{at}");
        assert_eq!(dtype.size() as u64, num(&s["typesize"]), "{at}");
        assert_eq!(u64::from(c.codec().code()), num(&s["codec_code"]), "{at}");
        assert_eq!(c.codec().name(), s["codec"].as_str().unwrap(), "{at}");
        assert_eq!(u64::from(c.level()), num(&s["level"]), "{at}");
        assert_eq!(
            c.settings().block_size as u64,
            num(&s["block_size"]),
            "{at}"
        );
        let g = c.geometry();
        assert_eq!(g.rows_per_chunk() as u64, num(&s["rows_per_chunk"]), "{at}");
        assert_eq!(g.num_chunks() as u64, num(&s["n_chunks"]), "{at}");
        let expected = fs::read(dump.join(format!("{i}.bin"))).unwrap();
        // Chunk kinds and, per chunk, the SPEC's statements about the v1.0 writer.
        let chunks = s["chunks"].as_array().unwrap();
        let mut compressed = 0u64;
        for (k, e) in chunks.iter().enumerate() {
            let kind = e["kind"].as_str().unwrap();
            assert_eq!(c.is_lazy(k).unwrap(), kind != "blob", "{at} chunk {k}");
            let raw_len = c.chunk_size_at(k).unwrap() as u64;
            if kind == "blob" {
                blobs += 1;
                compressed += num(&e["payload_len"]);
                check_blob_header(&format!("{at} chunk {k}"), s, e, raw_len);
                if e["blosc"]["memcpyed"] == true {
                    // SPEC §4: the raw samples of a memcpyed chunk start at offset + 64.
                    let start = num(&e["offset"]) as usize + 64;
                    let first = k * g.chunk_bytes();
                    assert!(
                        file_bytes[start..start + raw_len as usize]
                            == expected[first..first + raw_len as usize],
                        "{at} chunk {k}: memcpyed samples not at offset + 64"
                    );
                }
            } else {
                lazies += 1;
                lazy_bytes += raw_len;
                compressed += dtype.size() as u64;
            }
        }
        assert_eq!(c.compressed_bytes().unwrap() as u64, compressed, "{at}");
        // The bytes.
        let mut ours = vec![0u8; g.num_elems() * g.elem_size()];
        c.decompress_into_bytes(&mut ours).unwrap();
        assert!(
            ours == expected,
            "{at}: bytes differ from the reference reader"
        );
    }
    assert_eq!(
        (stats.blob_chunks, stats.fill_chunks, stats.fill_bytes),
        (blobs, lazies, lazy_bytes),
        "{f}"
    );

    // A one-channel file is also a channel file.
    if channels.len() == 1 {
        let c = AnyChannel::open_read_only(file).unwrap();
        let mut ours = vec![0u8; c.uncompressed_size() * c.dtype().size()];
        c.decompress_into_bytes(&mut ours).unwrap();
        assert!(ours == fs::read(dump.join("0.bin")).unwrap(), "{f}");
    }
}

/// SPEC §5.4 says what the v1.0 writer puts in each blosc2 chunk; check it in the files.
fn check_blob_header(at: &str, channel: &Value, entry: &Value, raw_len: u64) {
    let b = &entry["blosc"];
    assert_eq!(num(&b["typesize"]), num(&channel["typesize"]), "{at}");
    assert_eq!(num(&b["nbytes"]), raw_len, "{at}");
    assert_eq!(num(&b["cbytes"]), num(&entry["payload_len"]), "{at}");
    // The byte-shuffle filter (code 1) in filter slot 5.
    assert_eq!(b["filters"][5], 1, "{at}: {b}");
    let level = num(&channel["level"]);
    if level == 0 {
        // Level 0 stores raw samples. c-blosc2 then writes codec bits 0 whatever the codec
        // (so the §5.4 column "codec bits" holds only for levels 1–9).
        assert_eq!(b["memcpyed"], true, "{at}: {b}");
    } else {
        let expected_bits = match channel["codec"].as_str().unwrap() {
            "blosclz" => 0,
            "lz4" | "lz4hc" => 1,
            "zlib" => 3,
            "zstd" => 4,
            other => panic!("{at}: codec {other}"),
        };
        assert_eq!(num(&b["codec_bits"]), expected_bits, "{at}: {b}");
    }
}

fn compare_any(file: &Path, summary: &Value, dump: &Path) {
    let code = num(&summary["channels"][0]["dtype_code"]);
    for c in summary["channels"].as_array().unwrap() {
        assert_eq!(num(&c["dtype_code"]), code, "mixed element types");
    }
    match code {
        1 => compare::<u8>(file, summary, dump),
        2 => compare::<u16>(file, summary, dump),
        3 => compare::<u32>(file, summary, dump),
        4 => compare::<i8>(file, summary, dump),
        5 => compare::<i16>(file, summary, dump),
        6 => compare::<i32>(file, summary, dump),
        7 => compare::<f16>(file, summary, dump),
        8 => compare::<f32>(file, summary, dump),
        9 => compare::<f64>(file, summary, dump),
        other => panic!("dtype code {other}"),
    }
}

#[test]
fn reference_reader_agrees_on_golden_files() {
    let files = golden_files();
    let tmp = tempfile::tempdir().unwrap();
    let mut summaries = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let dump = tmp.path().join(n.to_string());
        let summary = reference(file, &dump);
        compare_any(file, &summary, &dump);
        summaries.push(summary);
    }
    // What the golden set covers, as the independent reader sees it (SPEC §13).
    let all_chunks = || {
        summaries.iter().flat_map(|s| {
            s["channels"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|c| c["chunks"].as_array().unwrap().iter().map(move |e| (c, e)))
        })
    };
    for code in 1..=9 {
        assert!(
            summaries.iter().any(|s| s["channels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| num(&c["dtype_code"]) == code)),
            "dtype code {code}"
        );
    }
    for kind in ["blob", "fill", "default"] {
        assert!(all_chunks().any(|(_, e)| e["kind"] == kind), "{kind}");
    }
    for codec in ["blosclz", "lz4", "lz4hc", "zstd", "zlib"] {
        assert!(
            all_chunks().any(|(c, e)| c["codec"] == codec
                && e["kind"] == "blob"
                && e["blosc"]["memcpyed"] == false),
            "no really compressed {codec} chunk"
        );
    }
    assert!(all_chunks().any(|(_, e)| e["blosc"]["memcpyed"] == true));
    assert!(all_chunks().any(|(c, _)| c["has_table"] == false));
    assert!(summaries.iter().any(|s| num(&s["dead_bytes"]) > 0));
    assert!(
        summaries
            .iter()
            .any(|s| num(&s["durable_end"]) < num(&s["committed_end"]) && s["slot_page"] == "B")
    );
    assert!(
        summaries
            .iter()
            .any(|s| num(&s["file_len"]) > num(&s["committed_end"]))
    );
}

/// Copy `name` into `dir` with the bytes at `offset` XOR-ed with 0xFF.
fn damaged(name: &str, dir: &Path, offsets: &[u64]) -> PathBuf {
    let mut bytes = fs::read(repo().join("tests/data/v1").join(name)).unwrap();
    for &o in offsets {
        bytes[o as usize] ^= 0xFF;
    }
    let path = dir.join(format!("damaged-{}-{name}", offsets[0]));
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn reference_reader_agrees_on_damaged_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let commits = repo().join("tests/data/v1/commits_u16.cimg");
    let summary = reference(&commits, &tmp.path().join("intact"));
    assert_eq!(summary["slot_page"], "B");
    let chunks = summary["channels"][0]["chunks"].as_array().unwrap().clone();
    let durable_end = num(&summary["durable_end"]);

    // A torn newest slot (page B): both readers fall back to the commit in page A.
    let torn = damaged("commits_u16.cimg", tmp.path(), &[4096 + 100]);
    let s = reference(&torn, &tmp.path().join("torn"));
    assert_eq!(s["slot_page"], "A");
    assert!(num(&s["generation"]) < num(&summary["generation"]));
    compare_any(&torn, &s, &tmp.path().join("torn"));

    // A damaged blob of the unsynced part (at or after durable_end): the newest commit is
    // refused at open and both readers fall back to the older commit.
    let unsynced: Vec<u64> = chunks
        .iter()
        .filter(|e| e["kind"] == "blob" && num(&e["offset"]) >= durable_end)
        .map(|e| num(&e["offset"]) + 32 + num(&e["payload_len"]) - 1)
        .collect();
    assert!(!unsynced.is_empty());
    let bad = damaged("commits_u16.cimg", tmp.path(), &unsynced[..1]);
    let s = reference(&bad, &tmp.path().join("unsynced"));
    assert_eq!(s["slot_page"], "A");
    compare_any(&bad, &s, &tmp.path().join("unsynced"));

    // A damaged blob below durable_end: the file opens, that chunk alone is unreadable.
    let u8_file = repo().join("tests/data/v1/u8.cimg");
    let s = reference(&u8_file, &tmp.path().join("u8"));
    let first_blob = s["channels"][0]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["kind"] == "blob")
        .unwrap();
    let blob = &s["channels"][0]["chunks"][first_blob];
    let offset = num(&blob["offset"]);
    assert!(offset < num(&s["durable_end"]));
    let last_byte = offset + 32 + num(&blob["payload_len"]) - 1;
    let bad = damaged("u8.cimg", tmp.path(), &[last_byte]);
    let (ok, stderr) = run_reader(&bad, &tmp.path().join("bad-u8"));
    assert!(!ok);
    assert!(
        stderr.contains(&format!("ChecksumMismatch: channel 0 chunk {first_blob}")),
        "{stderr}"
    );
    let c = AnyChannel::open_read_only(&bad).unwrap();
    let mut out = vec![0u8; c.chunk_size_at(first_blob).unwrap()];
    assert!(matches!(
        c.get_chunk_bytes(first_blob, &mut out),
        Err(Error::ChecksumMismatch { channel: 0, chunk }) if chunk == first_blob
    ));
    let next = first_blob + 1;
    let mut out = vec![0u8; c.chunk_size_at(next).unwrap()];
    c.get_chunk_bytes(next, &mut out).unwrap();

    // Not a container at all: both refuse.
    let junk = tmp.path().join("junk.cimg");
    fs::write(&junk, vec![0u8; 9000]).unwrap();
    let (ok, stderr) = run_reader(&junk, &tmp.path().join("junk"));
    assert!(!ok && stderr.contains("NotACompressedImage"), "{stderr}");
    assert!(matches!(
        AnyChannel::open_read_only(&junk).map(drop),
        Err(Error::NotACompressedImage)
    ));
}
