"""What the Dask, xarray and Zarr tests share: a two-process cluster and image files."""

import sys

import cloudpickle
import numpy as np
import pytest
from distributed import Client, LocalCluster

import compressed_image as ci


@pytest.fixture(scope="module")
def client():
    """The default Dask client of a module's tests: a real cluster of two worker
    processes with one thread each."""
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster, Client(cluster) as c:
        yield c


def ramp(y0, y1, width, dtype=np.float32, x0=0):
    """Rows y0..y1 (columns x0..width) of a deterministic test image, exact in every dtype."""
    y = np.arange(y0, y1, dtype=np.int64)[:, None]
    x = np.arange(x0, width, dtype=np.int64)[None, :]
    return ((y * 7 + x * 3) % 251).astype(dtype)


def save_image(path, channels, names=None, metadata=None, chunk_size=None):
    """A file at `path` of `channels` (2-D arrays, any dtypes); returns the path."""
    height, width = channels[0].shape
    with ci.Image.create(path, [], width, height) as image:
        for i, data in enumerate(channels):
            name = names[i] if names else None
            kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
            image.add_channel(data, width, height, name, **kwargs)
        if metadata is not None:
            image.set_metadata(metadata)
    return str(path)


def ramp_block(block_info=None):
    """`map_blocks` body: the block of `ramp` at the block's location."""
    (y0, y1), (x0, x1) = block_info[None]["array-location"]
    return ramp(y0, y1, x1, x0=x0)


def fail_on_block(block, failing_row, block_info=None):
    """`map_blocks` body: the block unchanged, except the block holding `failing_row` raises."""
    (y0, y1), _ = block_info[0]["array-location"]
    if y0 <= failing_row < y1:
        raise ValueError(f"no data for row {failing_row}")
    return block


def read_all(path):
    """Every channel of the file at `path`, as numpy arrays."""
    with ci.Image.open(path, read_only=True) as image:
        return image.get_decompressed()


# Workers unpickle the functions above by value: they need not import the tests.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
