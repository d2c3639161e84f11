//! Every subcommand of the real `cimg` binary on files made through the library: the
//! JSON output checked against the library's own answers, exit statuses, damaged and
//! foreign files, and chunks round-tripped through .npy files, also ones numpy wrote.

mod common;

use std::path::Path;
use std::process::Command;

use common::format::{decode_slot, parse_commit};
use common::{
    Fixture, HEIGHT, WIDTH, assert_one_error_line, cimg, entries, json_of, noise_f32, run,
    stderr_of, stdout_of,
};
use compressed_image::serde_json::{self, Value, json};
use compressed_image::{AnyImage, Channel, ChunkStorage, Dtype, f16};
use predicates::prelude::*;

// ---------------------------------------------------------------------------------------
// info
// ---------------------------------------------------------------------------------------

#[test]
fn info_json_agrees_with_the_library_for_every_file_given() {
    let fx = Fixture::new();
    let second = fx.file("second.cimg");
    (fx.image()).channel(1).unwrap().save_as(&second).unwrap();
    let output = cimg()
        .args(["info", "--json"])
        .arg(&fx.path)
        .arg(&second)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let files = json_of(&output);
    let files = files.as_array().expect("an array, one entry per file");
    assert_eq!(files.len(), 2);

    for (entry, path) in files.iter().zip([&fx.path, &second]) {
        let image = AnyImage::open_read_only(path).unwrap();
        let stats = image.stats().unwrap();
        assert_eq!(entry["path"], json!(path));
        assert_eq!(entry["format_version"], "1.0");
        assert_eq!(entry["generation"], image.generation());
        assert_eq!(entry["width"], WIDTH);
        assert_eq!(entry["height"], HEIGHT);
        assert_eq!(entry["file_bytes"], stats.file_len);
        assert_eq!(entry["live_bytes"], stats.live_bytes);
        assert_eq!(entry["dead_bytes"], stats.dead_bytes);
        // serde_json parses floats to within an ulp.
        let ratio = entry["ratio"].as_f64().unwrap();
        assert!(
            (ratio - image.compression_ratio().unwrap()).abs() < 1e-12,
            "{ratio}"
        );
        assert_eq!(entry["metadata"], image.metadata());
        let channels = entry["channels"].as_array().unwrap();
        assert_eq!(channels.len(), image.num_channels());
        let (mut compressed, mut logical) = (0, 0);
        for (index, c) in channels.iter().enumerate() {
            let channel = image.channel(index).unwrap();
            let storage = channel.chunk_storage().unwrap();
            let count =
                |kind: fn(&ChunkStorage) -> bool| storage.iter().filter(|s| kind(s)).count();
            let names = image.channel_names();
            let size = channel.dtype().size();
            assert_eq!(c["index"], index);
            assert_eq!(c["name"], names.get(index).map_or("", String::as_str));
            assert_eq!(c["dtype"], channel.dtype().name());
            assert_eq!(
                (c["width"].clone(), c["height"].clone()),
                (json!(WIDTH), json!(HEIGHT))
            );
            assert_eq!(c["codec"], channel.codec().to_string());
            assert_eq!(c["level"], channel.level());
            assert_eq!(c["block_size"], channel.block_size());
            assert_eq!(c["chunk_size"], channel.chunk_size());
            assert_eq!(c["rows_per_chunk"], channel.chunk_elems() / WIDTH);
            assert_eq!(c["chunks"], channel.num_chunks());
            assert_eq!(
                c["blob_chunks"],
                count(|s| matches!(s, ChunkStorage::Blob { .. }))
            );
            assert_eq!(
                c["fill_chunks"],
                count(|s| matches!(s, ChunkStorage::Fill { .. }))
            );
            assert_eq!(
                c["default_chunks"],
                count(|s| matches!(s, ChunkStorage::Default { .. }))
            );
            assert_eq!(c["compressed_bytes"], channel.compressed_bytes().unwrap());
            assert_eq!(c["logical_bytes"], WIDTH * HEIGHT * size);
            compressed += channel.compressed_bytes().unwrap();
            logical += WIDTH * HEIGHT * size;
        }
        assert_eq!(entry["compressed_bytes"], compressed);
        assert_eq!(entry["logical_bytes"], logical);
    }
    // The fixture's id channel has one chunk of each kind.
    let id = &files[0]["channels"][1];
    assert_eq!(
        (
            &id["blob_chunks"],
            &id["fill_chunks"],
            &id["default_chunks"]
        ),
        (&json!(1), &json!(1), &json!(1))
    );
    assert!(files[0]["dead_bytes"].as_u64().unwrap() > 0);
    assert_eq!(files[1]["metadata"], Value::Null);
}

#[test]
fn info_text_shows_the_channels_sizes_and_metadata() {
    let fx = Fixture::new();
    cimg().arg("info").arg(&fx.path).assert().success().stdout(
        predicate::str::contains("format 1.0")
            .and(predicate::str::contains("64 x 48, 3 channels"))
            .and(predicate::str::contains(r#"channel 0 "depth": float32"#))
            .and(predicate::str::contains(r#"channel 1 "id": uint16"#))
            .and(predicate::str::contains(r#"channel 2 "alpha": float16"#))
            .and(predicate::str::contains("1 compressed, 1 fill, 1 default"))
            .and(predicate::str::contains(
                r#"metadata {"camera":"left","exposure":0.5}"#,
            ))
            .and(predicate::str::contains("dead")),
    );
}

#[test]
fn info_reports_an_unreadable_file_in_its_entry_and_exits_2() {
    let fx = Fixture::new();
    let text = fx.file("notes.txt");
    std::fs::write(&text, "not an image\n".repeat(1000)).unwrap();
    let output = cimg()
        .args(["info", "--json"])
        .arg(&text)
        .arg(&fx.path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let files = json_of(&output);
    assert_eq!(files[0]["path"], json!(text));
    assert!(
        files[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a compressed-image file"),
        "{files}"
    );
    assert_eq!(
        files[1]["width"], WIDTH,
        "the readable file is still described"
    );
    assert_one_error_line(&stderr_of(&output), &text);
}

#[test]
fn json_output_names_a_path_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let fx = Fixture::new();
    let odd = fx
        .dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"scan\xff.cimg"));
    std::fs::copy(&fx.path, &odd).unwrap();
    for command in ["info", "verify", "ls"] {
        let output = run(&[command, "--json"], &odd);
        assert!(output.status.success(), "{command}: {}", stderr_of(&output));
        let value = json_of(&output);
        let entry = if command == "ls" { &value } else { &value[0] };
        assert_eq!(entry["path"], odd.display().to_string(), "{command}");
    }
}

// ---------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------

#[test]
fn verify_of_an_intact_file_exits_0_with_the_library_figures() {
    let fx = Fixture::new();
    let expected = fx.image().verify().unwrap();
    let output = run(&["verify", "--json"], &fx.path);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report = &json_of(&output)[0];
    assert_eq!(report["ok"], true);
    assert_eq!(report["generation"], expected.generation);
    assert_eq!(report["records"], expected.records);
    assert_eq!(report["bytes_checked"], expected.bytes_checked);
    assert_eq!(report["problems"], json!([]));
    assert_eq!(report["damaged_chunks"], json!([]));
    cimg()
        .arg("verify")
        .arg(&fx.path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(": ok (generation"));
}

/// Flip one byte inside the blob of chunk `chunk` of the channel at position `channel`,
/// found by parsing the file's newest commit independently of the library.
fn damage_blob(path: &Path, channel: usize, chunk: usize) -> u64 {
    let mut bytes = std::fs::read(path).unwrap();
    let page = (0..2)
        .max_by_key(|&page| decode_slot(&bytes, page).map_or(0, |s| s.generation))
        .unwrap();
    let commit = parse_commit(&bytes, page);
    let blob = commit.channels[channel].entries[chunk]
        .blob
        .expect("the chunk is a blob");
    let target = blob.payload().start + blob.len / 2;
    bytes[target] ^= 0x40;
    std::fs::write(path, &bytes).unwrap();
    blob.offset as u64
}

#[test]
fn verify_of_a_damaged_blob_exits_1_and_names_the_chunk() {
    let fx = Fixture::new();
    let offset = damage_blob(&fx.path, 0, 3);
    // `ls` locates the same record.
    let listing = json_of(&run(&["ls", "--json"], &fx.path));
    assert_eq!(listing["channels"][0]["chunks"][3]["offset"], offset);

    let output = run(&["verify", "--json"], &fx.path);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let report = &json_of(&output)[0];
    let library = fx.image().verify().unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["generation"], library.generation);
    assert_eq!(
        report["damaged_chunks"],
        json!([{"channel": 0, "name": "depth", "chunk": 3}])
    );
    assert_eq!(report["problems"], json!(library.problems));

    cimg().arg("verify").arg(&fx.path).assert().code(1).stdout(
        predicate::str::contains("DAMAGED")
            .and(predicate::str::contains(
                r#"channel 0 "depth" chunk 3: unreadable"#,
            ))
            .and(predicate::str::contains(format!(
                "every other chunk of generation {} reads",
                library.generation
            ))),
    );
}

#[test]
fn verify_of_files_that_are_not_readable_exits_2_with_one_line_each() {
    let fx = Fixture::new();
    let text = fx.file("notes.txt");
    std::fs::write(&text, b"hello").unwrap();
    let missing = fx.file("missing.cimg");
    for path in [&text, &missing] {
        let output = cimg().arg("verify").arg(path).output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert_one_error_line(&stderr_of(&output), path);
        assert!(output.stdout.is_empty());
    }
    assert!(!missing.exists(), "verify creates nothing");
    // The worst outcome decides: intact, damaged and unreadable files together exit 2.
    let damaged = fx.file("damaged.cimg");
    std::fs::copy(&fx.path, &damaged).unwrap();
    damage_blob(&damaged, 2, 1);
    let output = cimg()
        .args(["verify", "--json"])
        .args([&fx.path, &damaged, &text])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let reports = json_of(&output);
    let ok: Vec<&Value> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["ok"])
        .collect();
    assert_eq!(ok, [&json!(true), &json!(false), &json!(false)]);
    assert_eq!(reports[1]["damaged_chunks"][0]["name"], "alpha");
    assert!(reports[2]["error"].is_string());
}

// ---------------------------------------------------------------------------------------
// compact
// ---------------------------------------------------------------------------------------

#[test]
fn compact_reclaims_the_dead_space_and_keeps_every_bit() {
    let fx = Fixture::new();
    let (before_len, data, dead) = {
        let image = fx.image();
        let stats = image.stats().unwrap();
        (
            stats.file_len,
            image.get_decompressed_bytes().unwrap(),
            stats.dead_bytes,
        )
    };
    assert!(dead > 0);
    let output = run(&["compact"], &fx.path);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let image = fx.image();
    let stats = image.stats().unwrap();
    assert_eq!(stats.dead_bytes, 0);
    assert_eq!(stats.file_len, std::fs::metadata(&fx.path).unwrap().len());
    assert_eq!(image.get_decompressed_bytes().unwrap(), data);
    assert!(image.verify().unwrap().is_ok());
    let human = |n: u64| indicatif_bytes(n);
    assert_eq!(
        stdout_of(&output),
        format!(
            "{}: {} -> {} (reclaimed {})\n",
            fx.path.display(),
            human(before_len),
            human(stats.file_len),
            human(before_len - stats.file_len)
        )
    );
    assert_eq!(entries(fx.dir.path()), ["image.cimg", "image.cimg.lock"]);
}

/// A byte count as `cimg` prints it: binary units, two decimals.
fn indicatif_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let (mut value, mut unit) = (n as f64 / 1024.0, 0);
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

#[test]
fn compact_of_a_file_another_program_writes_fails_and_changes_nothing() {
    let fx = Fixture::new();
    let writer = AnyImage::open(&fx.path).unwrap();
    let bytes = std::fs::read(&fx.path).unwrap();
    let output = run(&["compact"], &fx.path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr, &fx.path);
    assert!(stderr.contains("open for writing"), "{stderr}");
    assert_eq!(std::fs::read(&fx.path).unwrap(), bytes);
    drop(writer);
}

// ---------------------------------------------------------------------------------------
// ls
// ---------------------------------------------------------------------------------------

#[test]
fn ls_json_lists_every_chunk_as_the_library_stores_it() {
    let fx = Fixture::new();
    let image = fx.image();
    let listing = json_of(&run(&["ls", "--json"], &fx.path));
    let channels = listing["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 3);
    for (index, c) in channels.iter().enumerate() {
        let channel = image.channel(index).unwrap();
        assert_eq!(c["index"], index);
        assert_eq!(c["dtype"], channel.dtype().name());
        let rows = channel.chunk_elems() / WIDTH;
        let storage = channel.chunk_storage().unwrap();
        let chunks = c["chunks"].as_array().unwrap();
        assert_eq!(chunks.len(), storage.len());
        for (i, (chunk, storage)) in chunks.iter().zip(storage).enumerate() {
            assert_eq!(chunk["chunk"], i);
            assert_eq!(
                chunk["rows"],
                json!([i * rows, ((i + 1) * rows).min(HEIGHT)])
            );
            match storage {
                ChunkStorage::Blob {
                    offset,
                    compressed_len,
                    generation,
                } => {
                    assert_eq!(chunk["state"], "blob");
                    assert_eq!(chunk["offset"], offset);
                    assert_eq!(chunk["compressed_bytes"], compressed_len);
                    assert_eq!(chunk["generation"], generation);
                }
                ChunkStorage::Fill { fill_bits } => {
                    assert_eq!(chunk["state"], "fill");
                    assert_eq!(chunk["bits"], fill_bits);
                }
                ChunkStorage::Default { fill_bits } => {
                    assert_eq!(chunk["state"], "default");
                    assert_eq!(chunk["bits"], fill_bits);
                }
                other => panic!("unexpected storage {other:?}"),
            }
        }
    }
    // The id channel: default (7), blob, fill (3), with their values.
    let id = &channels[1]["chunks"];
    assert_eq!(
        (&id[0]["state"], &id[0]["value"]),
        (&json!("default"), &json!(7))
    );
    assert_eq!(id[1]["state"], "blob");
    assert_eq!(
        (&id[2]["state"], &id[2]["value"]),
        (&json!("fill"), &json!(3))
    );
}

#[test]
fn ls_of_one_channel_by_name_or_index_and_an_unknown_one() {
    let fx = Fixture::new();
    for spec in ["id", "1"] {
        let output = run(&["ls", "--channel", spec], &fx.path);
        assert!(output.status.success());
        let text = stdout_of(&output);
        assert!(
            text.contains(r#"channel 1 "id": uint16, 64 x 48, 3 chunks of 16 rows"#),
            "{text}"
        );
        assert!(text.contains("default  value 7"), "{text}");
        assert!(text.contains("fill     value 3"), "{text}");
        assert!(text.contains("blob"), "{text}");
        assert!(!text.contains("depth"), "{text}");
    }
    let output = run(&["ls", "--channel", "colour"], &fx.path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr, &fx.path);
    assert!(
        stderr.contains(r#"no channel "colour"; the file has channel 0 "depth", channel 1 "id", channel 2 "alpha""#),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// get and set
// ---------------------------------------------------------------------------------------

/// Run Python code with numpy; its standard output.
fn python(code: &str) -> String {
    let output = Command::new(common::python::python())
        .arg("-c")
        .arg(code)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A .npy file as numpy reads it: dtype, shape, and values as JSON numbers.
fn numpy_view(npy: &Path) -> Value {
    let out = python(&format!(
        "import json, numpy; a = numpy.load({:?}); \
         print(json.dumps({{'dtype': str(a.dtype), 'shape': list(a.shape), \
         'order': 'C' if a.flags['C_CONTIGUOUS'] else 'F', \
         'values': a.astype('float64').ravel().tolist()}}))",
        npy.display().to_string()
    ));
    serde_json::from_str(&out).unwrap()
}

/// The values of chunk `chunk` of the channel at `index` of the image at `path`, as f64.
fn chunk_values(path: &Path, index: usize, chunk: usize) -> Vec<f64> {
    fn values<T: compressed_image::Sample + Into<f64>>(
        channel: compressed_image::AnyChannel,
        chunk: usize,
    ) -> Vec<f64> {
        let typed = Channel::<T>::try_from_any(channel).unwrap();
        typed
            .get_chunk_vec(chunk)
            .unwrap()
            .into_iter()
            .map(Into::into)
            .collect()
    }
    let channel = AnyImage::open_read_only(path)
        .unwrap()
        .channel(index)
        .unwrap();
    match channel.dtype() {
        Dtype::F32 => values::<f32>(channel, chunk),
        Dtype::U16 => values::<u16>(channel, chunk),
        Dtype::F16 => Channel::<f16>::try_from_any(channel)
            .unwrap()
            .get_chunk_vec(chunk)
            .unwrap()
            .iter()
            .map(|x| x.to_f64())
            .collect(),
        other => panic!("no fixture channel holds {other}"),
    }
}

/// `cimg get|set --channel CHANNEL --chunk CHUNK`, then the other arguments.
fn chunk_command(sub: &str, channel: &str, chunk: usize) -> assert_cmd::Command {
    let mut command = cimg();
    command.args([sub, "--channel", channel, "--chunk", &chunk.to_string()]);
    command
}

/// `cimg get` of one chunk of `file` into `npy`.
fn get(file: &Path, channel: &str, chunk: usize, npy: &Path) -> std::process::Output {
    chunk_command("get", channel, chunk)
        .arg("--out")
        .arg(npy)
        .arg(file)
        .output()
        .unwrap()
}

/// `cimg set` of one chunk of `file` from `npy`.
fn set(file: &Path, channel: &str, chunk: usize, npy: &Path) -> std::process::Output {
    chunk_command("set", channel, chunk)
        .arg(file)
        .arg(npy)
        .output()
        .unwrap()
}

#[test]
fn get_writes_a_chunk_numpy_reads_exactly() {
    let fx = Fixture::new();
    // The last chunk of depth, a fill chunk of id (by index), a chunk of alpha (f16).
    for (channel, index, chunk, dtype) in [
        ("depth", 0, 5, "float32"),
        ("1", 1, 2, "uint16"),
        ("alpha", 2, 3, "float16"),
    ] {
        let npy = fx.file(&format!("{channel}-{chunk}.npy"));
        let output = get(&fx.path, channel, chunk, &npy);
        assert!(output.status.success(), "{}", stderr_of(&output));
        let values = chunk_values(&fx.path, index, chunk);
        let view = numpy_view(&npy);
        assert_eq!(view["dtype"], dtype);
        assert_eq!(view["shape"], json!([values.len() / WIDTH, WIDTH]));
        assert_eq!(view["order"], "C");
        assert_eq!(view["values"], json!(values), "{channel} chunk {chunk}");
    }
    assert_eq!(chunk_values(&fx.path, 1, 2), vec![3.0; WIDTH * 16]);
    // Without --out the array goes to standard output.
    let output = chunk_command("get", "depth", 5)
        .arg(&fx.path)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        output.stdout,
        std::fs::read(fx.file("depth-5.npy")).unwrap()
    );
}

#[test]
fn set_stores_an_array_numpy_wrote_and_get_returns_it() {
    let fx = Fixture::new();
    let (npy, back) = (fx.file("chunk.npy"), fx.file("back.npy"));
    // numpy computes a new chunk 4 of depth (8 rows) and 1 of alpha (12 rows, f16).
    for (channel, index, chunk, rows, dtype) in [
        ("depth", 0, 4, 8, "float32"),
        ("alpha", 2, 1, 12, "float16"),
    ] {
        python(&format!(
            "import numpy; a = (numpy.arange({rows} * {WIDTH}).reshape({rows}, {WIDTH}) / 8 - 3)\
             .astype({dtype:?}); numpy.save({:?}, a)",
            npy.display().to_string()
        ));
        let output = set(&fx.path, channel, chunk, &npy);
        assert!(output.status.success(), "{}", stderr_of(&output));
        assert!(stdout_of(&output).contains(&format!("chunk {chunk} of channel {index}")));
        let expected: Vec<f64> = (0..rows * WIDTH).map(|i| i as f64 / 8.0 - 3.0).collect();
        assert_eq!(chunk_values(&fx.path, index, chunk), expected, "{channel}");
        // And out again: numpy reads what it wrote.
        assert!(get(&fx.path, channel, chunk, &back).status.success());
        assert_eq!(numpy_view(&back), numpy_view(&npy));
    }
}

#[test]
fn get_then_set_of_every_chunk_changes_no_bit() {
    let fx = Fixture::new();
    let before = fx.image().get_decompressed_bytes().unwrap();
    let npy = fx.file("chunk.npy");
    for (channel, chunks) in [("depth", 6), ("id", 3), ("alpha", 4)] {
        for chunk in 0..chunks {
            assert!(get(&fx.path, channel, chunk, &npy).status.success());
            assert!(set(&fx.path, channel, chunk, &npy).status.success());
        }
    }
    let after = fx.image();
    assert_eq!(after.get_decompressed_bytes().unwrap(), before);
    // The id fill chunk went in as a constant array: still a fill.
    assert!(after.channel(1).unwrap().is_lazy(2).unwrap());
}

#[test]
fn set_refuses_a_wrong_shape_or_type_and_leaves_the_file_unchanged() {
    let fx = Fixture::new();
    let npy = fx.file("wrong.npy");
    let cases = [
        // (numpy expression, what stderr must say)
        (
            "numpy.zeros((7, 64), 'float32')",
            "shape (7, 64) does not match chunk 0 of channel 0 \"depth\"",
        ),
        (
            "numpy.zeros((8, 63), 'float32')",
            "shape (8, 63) does not match",
        ),
        ("numpy.zeros(512, 'float32')", "shape (512,) does not match"),
        (
            "numpy.zeros((8, 64), 'float64')",
            "element type <f8 does not match chunk 0 of channel 0 \"depth\"",
        ),
        (
            "numpy.zeros((8, 64), 'int32')",
            "element type <i4 does not match",
        ),
        (
            "numpy.asfortranarray(numpy.ones((8, 64), 'float32'))",
            "Fortran order",
        ),
    ];
    let bytes = std::fs::read(&fx.path).unwrap();
    let refused = |output: std::process::Output, path: &Path, message: &str| {
        assert_eq!(output.status.code(), Some(1), "{message}");
        let stderr = stderr_of(&output);
        assert_one_error_line(&stderr, path);
        assert!(stderr.contains(message), "{message}: {stderr}");
        assert_eq!(std::fs::read(&fx.path).unwrap(), bytes, "{message}");
    };
    for (array, message) in cases {
        python(&format!(
            "import numpy; numpy.save({:?}, {array})",
            npy.display().to_string()
        ));
        refused(set(&fx.path, "depth", 0, &npy), &npy, message);
    }
    std::fs::write(&npy, b"\x93NUMPY garbage").unwrap();
    refused(
        set(&fx.path, "id", 0, &npy),
        &npy,
        "not a readable .npy file",
    );
    let message = "chunk index 3 is out of range (there are 3)";
    refused(get(&fx.path, "id", 3, &npy), &fx.path, message);
    refused(set(&fx.path, "id", 3, &npy), &fx.path, message);
}

#[test]
fn get_on_a_channel_file_finds_channel_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cimg");
    let data = noise_f32(9, 16 * 10);
    let settings = compressed_image::Settings::default().chunk_size(16 * 4 * 4);
    drop(Channel::create(&path, &data, 16, 10, settings).unwrap());
    let npy = dir.path().join("c.npy");
    assert!(get(&path, "0", 2, &npy).status.success());
    let view = numpy_view(&npy);
    assert_eq!(view["shape"], json!([2, 16]), "the last chunk is 2 rows");
    let expected: Vec<f64> = data[8 * 16..].iter().map(|&x| f64::from(x)).collect();
    assert_eq!(view["values"], json!(expected));
}

// ---------------------------------------------------------------------------------------
// help, completions, command line
// ---------------------------------------------------------------------------------------

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in [
        "info",
        "verify",
        "compact",
        "ls",
        "get",
        "set",
        "completions",
    ] {
        cimg().args([sub, "--help"]).assert().success().stdout(
            predicate::str::contains("Example:")
                .and(predicate::str::contains(format!("cimg {sub}"))),
        );
    }
}

#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let output = cimg().args(["completions", shell]).output().unwrap();
        assert!(output.status.success());
        let script = stdout_of(&output);
        for sub in ["info", "verify", "compact", "ls", "get", "set"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
}

#[test]
fn a_wrong_command_line_exits_2() {
    cimg().assert().code(2);
    cimg().args(["info"]).assert().code(2);
    cimg()
        .args(["get", "x.cimg", "--chunk", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--channel"));
    cimg().args(["frobnicate"]).assert().code(2);
}
