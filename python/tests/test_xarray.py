"""The xarray backend (engine="compressed_image") on a real two-process cluster."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from dask_support import client, ramp, read_all, save_image

from compressed_image import xarray_backend

pytestmark = pytest.mark.extension
__all__ = ["client"]  # the module-scoped cluster fixture

METADATA = {"colorspace": "ACEScg", "exposure": 1.5, "frame": 12, "lights": ["key", "fill"],
            "camera": {"fov": 40, "name": "A"}, "note": None, "mixed": [1, "a"]}


@pytest.fixture
def beauty(tmp_path):
    """A 300 x 200 file of a float32 and a uint16 channel, named, with metadata."""
    channels = [ramp(0, 300, 200), ramp(0, 300, 200, np.uint16)]
    return save_image(tmp_path / "beauty.cimg", channels, names=["R", "id"], metadata=METADATA,
                      chunk_size=200 * 4 * 32)


def test_open_dataset_computes_to_the_files_channels(client, beauty):
    ds = xr.open_dataset(beauty, engine="compressed_image")
    assert list(ds.data_vars) == ["R", "id"]
    assert ds["R"].dims == ("y", "x") and ds["id"].dtype == np.uint16
    expected = read_all(beauty)
    computed = ds.compute()
    for name, want in zip(["R", "id"], expected):
        np.testing.assert_array_equal(computed[name].values, want)
    np.testing.assert_array_equal(ds["id"][10:200:7, 3:150].values, expected[1][10:200:7, 3:150])


def test_chunked_open_reads_one_task_per_file_chunk(client, beauty):
    ds = xr.open_dataset(beauty, engine="compressed_image", chunks={})
    assert ds["R"].chunks == ((32,) * 9 + (12,), (200,))
    # One read task per chunk, plus the one holding the lazily indexed channel.
    assert len(dict(ds["R"].data.__dask_graph__())) == 11
    np.testing.assert_array_equal(ds["R"].compute().values, read_all(beauty)[0])
    assert ds["R"].encoding["preferred_chunks"] == {"y": 32, "x": 200}


def test_metadata_goes_into_attrs_and_comes_back(beauty):
    attrs = xr.open_dataset(beauty, engine="compressed_image").attrs
    assert attrs["colorspace"] == "ACEScg" and attrs["exposure"] == 1.5
    assert attrs["lights"] == ["key", "fill"]
    assert set(attrs) == {"colorspace", "exposure", "frame", "lights",
                          xarray_backend.METADATA_JSON_KEY}
    assert xarray_backend.metadata_from_attrs(attrs) == METADATA
    for other in (None, [1, 2], {"a": {"b": 1}}, {}):
        assert xarray_backend.metadata_from_attrs(xarray_backend.metadata_to_attrs(other)) == (
            other or None
        )


def test_open_mfdataset_stacks_frames(client, tmp_path):
    frames = [ramp(k, k + 120, 90) for k in range(3)]
    paths = [save_image(tmp_path / f"f{k}.cimg", [f], names=["Y"]) for k, f in enumerate(frames)]
    ds = xr.open_mfdataset(paths, engine="compressed_image", combine="nested", concat_dim="frame")
    assert ds["Y"].dims == ("frame", "y", "x")
    np.testing.assert_array_equal(ds["Y"].compute().values, np.stack(frames))


def test_the_engine_is_found_by_extension_or_magic(tmp_path, beauty):
    entry = xarray_backend.CompressedImageBackendEntrypoint()
    renamed = tmp_path / "beauty.bin"
    renamed.write_bytes(Path(beauty).read_bytes())
    other = tmp_path / "other.bin"
    other.write_bytes(b"not an image" * 1000)
    assert entry.guess_can_open(beauty) and entry.guess_can_open(str(renamed))
    assert not entry.guess_can_open(str(other))
    assert not entry.guess_can_open(str(tmp_path / "missing.nc"))
    assert list(xr.open_dataset(beauty).data_vars) == ["R", "id"]  # no engine= needed
    ds = xr.open_dataset(beauty, engine="compressed_image", channels=["id"], drop_variables=[])
    assert list(ds.data_vars) == ["id"]
