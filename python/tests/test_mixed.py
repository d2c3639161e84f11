"""Images whose channels have different dtypes (not in compressed-image 1.0.1)."""

import json
import pickle

import numpy as np
import pytest

from compressed_image import Codec, Image

from conftest import ramp, run_python

pytestmark = pytest.mark.extension

H, W = 30, 40
DTYPES = [np.float16, np.float32, np.uint32]
NAMES = ["luma", "depth", "id"]


def planes():
    return [ramp(d, H, W) for d in DTYPES]


def mixed(**kw):
    return Image(DTYPES, planes(), W, H, NAMES, **kw)


def test_constructor_with_one_dtype_per_channel():
    img = mixed(chunk_size=W * 4 * 8)
    assert img.dtype is None
    assert img.dtypes == [np.dtype(d) for d in DTYPES]
    assert img.shape == (3, H, W)
    for i, (d, plane) in enumerate(zip(DTYPES, planes())):
        c = img[i]
        assert c.dtype == d
        assert img[NAMES[i]].dtype == d
        np.testing.assert_array_equal(c.get_decompressed(), plane)
        assert c.get_chunk(0).dtype == d
    got = img.get_decompressed()
    assert [a.dtype for a in got] == [np.dtype(d) for d in DTYPES]
    for a, plane in zip(got, planes()):
        np.testing.assert_array_equal(a, plane)


def test_each_channel_is_cast_to_its_own_dtype():
    src = np.full((H, W), 2.75)  # float64
    img = Image((np.float16, np.uint32), [src, src], W, H)
    a, b = img.get_decompressed()
    assert a.dtype == np.float16 and (a == 2.75).all()
    assert b.dtype == np.uint32 and (b == 2).all()


def test_dtype_list_must_match_the_channels():
    with pytest.raises(ValueError, match="one dtype per channel"):
        Image([np.float16, np.float32], planes(), W, H)
    with pytest.raises(ValueError, match="one dtype per channel"):
        Image([np.float16], [], W, H)
    with pytest.raises(ValueError, match="Unsupported dtype"):
        Image([np.float16, np.int64, np.uint32], planes(), W, H)


def test_mixed_image_takes_any_dtype_single_typed_image_only_its_own():
    img = mixed()
    img.add_channel(ramp(np.int8, H, W), W, H, "mask")
    assert img.dtypes[-1] == np.int8 and img[3].dtype == np.int8
    single = Image(np.float32, [planes()[1]], W, H)
    with pytest.raises(ValueError):
        single.add_channel(ramp(np.uint32, H, W), W, H)
    assert single.dtype == np.float32 and single.dtypes == [np.float32]


def test_saved_mixed_image_reads_back_in_another_process(tmp_path):
    path = tmp_path / "mixed.cimg"
    img = mixed(compression_codec=Codec.zstd)
    img.set_metadata({"colorspace": "ACEScg", "ids": [1, 2, 3]})
    img.save(path)
    child = run_python(
        """
        import json, sys
        import numpy as np
        from compressed_image import Image
        with Image.open(sys.argv[1], read_only=True) as img:
            out = {
                "dtype": str(img.dtype),
                "dtypes": [str(d) for d in img.dtypes],
                "channel_dtypes": [str(img[i].dtype) for i in range(len(img))],
                "names": img.get_channel_names(),
                "metadata": img.get_metadata(),
                "sums": [float(img[n].get_decompressed().astype(np.float64).sum()) for n in img.get_channel_names()],
            }
        print(json.dumps(out))
        """,
        path,
    )
    got = json.loads(child.stdout.strip().splitlines()[-1])
    assert got == {
        "dtype": "None",
        "dtypes": ["float16", "float32", "uint32"],
        "channel_dtypes": ["float16", "float32", "uint32"],
        "names": NAMES,
        "metadata": {"colorspace": "ACEScg", "ids": [1, 2, 3]},
        "sums": [float(p.astype(np.float64).sum()) for p in planes()],
    }


def test_open_without_dtype_infers_single_or_mixed(tmp_path):
    mixed().save(tmp_path / "m.cimg")
    Image(np.uint16, [ramp(np.uint16, H, W)] * 2, W, H).save(tmp_path / "s.cimg")
    with Image.open(tmp_path / "m.cimg") as m:
        assert m.dtype is None
        m.add_channel(ramp(np.float64, H, W), W, H, "extra")  # mixed: any dtype
    with Image.open(tmp_path / "s.cimg") as s:
        assert s.dtype == np.uint16
        with pytest.raises(ValueError):
            s.add_channel(ramp(np.float32, H, W), W, H)
    # Asking for one dtype checks every channel; a list must match them in order.
    with pytest.raises(ValueError, match="float16"):
        Image.open(tmp_path / "m.cimg", dtype=np.float32)
    with Image.open(tmp_path / "s.cimg", dtype=[np.uint16, np.uint16]) as s:
        assert s.dtype is None  # opened as mixed
        s.add_channel(ramp(np.float32, H, W), W, H)
    with pytest.raises(ValueError):
        Image.open(tmp_path / "s.cimg", dtype=[np.uint16])


def test_create_mixed_file_and_reopen(tmp_path):
    path = tmp_path / "c.cimg"
    with Image.create(path, [], W, H) as img:
        assert img.dtype is None and img.dtypes == []
        for d, plane, name in zip(DTYPES, planes(), NAMES):
            img.add_channel(plane, W, H, name)
    with pytest.raises(ValueError, match="one dtype per channel"):
        Image.create(tmp_path / "x.cimg", [np.float32], W, H)
    with Image.open(path, read_only=True) as img:
        assert img.dtypes == [np.dtype(d) for d in DTYPES]
        np.testing.assert_array_equal(img["id"].get_decompressed(), planes()[2])


def test_empty_image_file_opens_without_dtype(tmp_path):
    p = tmp_path / "empty.cimg"
    Image.create(p, np.int16, 4, 4).close()
    with Image.open(p) as img:  # nothing records a dtype: mixed
        assert img.dtype is None and len(img) == 0
    with Image.open(p, dtype=np.int16) as img:
        assert img.dtype == np.int16
        img.add_channel(np.zeros((4, 4), np.int16), 4, 4)
    with Image.open(p) as img:
        assert img.dtype == np.int16


def test_pickled_mixed_image_and_channel(tmp_path):
    path = tmp_path / "p.cimg"
    mixed().save(path)
    with Image.open(path, read_only=True) as img:
        again = pickle.loads(pickle.dumps(img))
        assert again.dtype is None and again.dtypes == img.dtypes
        ids = pickle.loads(pickle.dumps(img["id"]))
        assert ids.dtype == np.uint32
        np.testing.assert_array_equal(ids.get_decompressed(), planes()[2])
        again.close()
        ids.close()
    single = tmp_path / "s.cimg"
    Image.create(single, np.float32, W, H).close()
    with Image.open(single, read_only=True, dtype=np.float32) as img:
        again = pickle.loads(pickle.dumps(img))
        assert again.dtype == np.float32 and again.read_only
        again.close()


def test_image_statistics_count_each_channels_own_size(capsys):
    img = mixed()
    img.print_statistics()
    out = capsys.readouterr().out
    raw = sum(p.nbytes for p in planes())
    assert f"Uncompressed Size: {raw}\n" in out
    assert img.compression_ratio() == pytest.approx(
        raw / sum(c.compressed_bytes() for c in img.channels())
    )

