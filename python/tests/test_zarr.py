"""compressed_image.zarr_io: files to Zarr v3 groups and back, on a two-process cluster."""

import numpy as np
import pytest
import zarr
from dask_support import client, ramp, read_all, save_image

import compressed_image as ci
from compressed_image import zarr_io

pytestmark = pytest.mark.extension
__all__ = ["client"]  # the module-scoped cluster fixture


def _image_settings(path):
    with ci.Image.open(path, read_only=True) as image:
        return [
            (c.dtype, c.chunk_elems(), c.compression(), c.compression_level(), c.block_size())
            for c in image
        ], image.get_channel_names(), image.get_metadata()


def test_a_named_mixed_image_round_trips_exactly(client, tmp_path):
    channels = [ramp(0, 500, 120), ramp(0, 500, 120, np.uint16), ramp(0, 500, 120, np.float16)]
    metadata = {"camera": {"iso": 800}, "tags": ["a", 1], "z": None}
    source = save_image(tmp_path / "in.cimg", channels, names=["R", "id", "half"],
                        metadata=metadata, chunk_size=120 * 4 * 50)
    group = zarr_io.to_zarr(source, tmp_path / "out.zarr")

    assert list(group.attrs[zarr_io.ATTRS_KEY]["channels"]) == ["R", "id", "half"]
    r = group["R"]
    assert r.chunks == (50, 120) and r.dtype == np.float32 and r.metadata.zarr_format == 3
    (blosc,) = r.compressors
    with ci.Image.open(source, read_only=True) as image:
        block_size = image[0].block_size()  # the effective one: capped to the 24000-byte chunk
    assert (blosc.cname.value, blosc.clevel, blosc.shuffle.value, blosc.blocksize) == (
        "lz4", 9, "shuffle", block_size)
    np.testing.assert_array_equal(group["id"][:], channels[1])

    back = str(tmp_path / "back.cimg")
    zarr_io.from_zarr(tmp_path / "out.zarr", back)
    for got, want in zip(read_all(back), channels):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert _image_settings(back) == _image_settings(source)


def test_an_unnamed_image_from_an_open_handle_round_trips(client, tmp_path):
    data = ramp(0, 64, 64, np.int32)
    source = save_image(tmp_path / "u.cimg", [data, data + 1])
    with ci.Image.open(source, read_only=True) as image:
        group = zarr_io.to_zarr(image, str(tmp_path / "u.zarr"))
    assert sorted(k for k, _ in group.arrays()) == ["0", "1"]
    back = str(tmp_path / "u2.cimg")
    zarr_io.from_zarr(str(tmp_path / "u.zarr"), back, compression_codec=ci.Codec.zstd,
                      compression_level=3)
    with ci.Image.open(back, read_only=True) as image:
        assert image.get_channel_names() == [] and image.get_metadata() is None
        assert image[0].compression() == ci.Codec.zstd and image[0].compression_level() == 3
    for got, want in zip(read_all(back), [data, data + 1]):
        np.testing.assert_array_equal(got, want)


def test_a_group_from_elsewhere_is_read_with_its_keys_as_names(client, tmp_path):
    group = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w", zarr_format=3)
    group.create_array("b", shape=(40, 30), chunks=(16, 30), dtype=np.uint8)[:] = ramp(0, 40, 30, np.uint8)
    group.create_array("a", shape=(40, 30), chunks=(7, 10), dtype=np.float32)[:] = ramp(0, 40, 30)
    back = str(tmp_path / "plain.cimg")
    zarr_io.from_zarr(str(tmp_path / "plain.zarr"), back)
    with ci.Image.open(back, read_only=True) as image:
        assert image.get_channel_names() == ["a", "b"]
    got = read_all(back)
    np.testing.assert_array_equal(got[0], ramp(0, 40, 30))
    np.testing.assert_array_equal(got[1], ramp(0, 40, 30, np.uint8))
