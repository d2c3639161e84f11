"""Crate errors become Python exceptions by their type and kind (src/errors.rs), never by
their message text: the same class for every error of a kind, whatever it says."""

import errno
import os

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Channel, Image

pytestmark = pytest.mark.extension


def test_chunk_geometry_errors_are_runtime_errors():
    # A scanline above c-blosc2's 2 GiB chunk limit: the chunk-size kind (lazy: nothing
    # is allocated).
    with pytest.raises(RuntimeError) as size:
        Channel.zeros(np.uint8, 3_000_000_000, 1)
    # More chunks than a chunk table holds (2**28 one-row chunks): the chunk-count kind.
    with pytest.raises(RuntimeError) as count:
        Channel.zeros(np.uint8, 1, 2**28, chunk_size=1)
    for e in (size, count):
        assert not isinstance(e.value, ValueError)
    assert str(size.value) != str(count.value)


def test_other_invalid_arguments_are_value_errors():
    with pytest.raises(ValueError):
        Channel.zeros(np.float32, 0, 4)  # the channel-size kind
    img = Image(np.uint8, [np.zeros(4)] * 2, 2, 2)
    with pytest.raises(ValueError):
        img.set_channel_names(["only one"])  # the channel-names kind


def test_channels_that_disagree_are_a_runtime_error_as_in_1_0_1():
    # The default 4 MiB request is capped to each channel's size (64 and 128 bytes here),
    # and the block size to the chunk.
    img = Image([np.float16, np.uint32], [np.zeros((8, 4))] * 2, 4, 8)
    with pytest.raises(RuntimeError, match="^Validation Error: Channels in image do not all have the same chunk size$"):
        img.chunk_size()
    with pytest.raises(RuntimeError, match="^Validation Error: Channels in image do not all have the same block size$"):
        img.block_size()


def test_file_errors_are_the_errno_subclass_with_the_file_name(tmp_path):
    missing = tmp_path / "missing.cimg"
    for call in (
        lambda: Channel.open(missing),
        lambda: Channel.open(missing, read_only=True),
        lambda: Image.open(missing),
        lambda: Image.open(missing, read_only=True),
    ):
        with pytest.raises(FileNotFoundError) as e:
            call()
        assert e.value.errno == errno.ENOENT
        assert e.value.filename == str(missing)
    nowhere = tmp_path / "no" / "such" / "dir.cimg"
    with pytest.raises(FileNotFoundError) as e:
        Channel.create_full(nowhere, np.uint8, 0, 4, 4)
    assert e.value.filename is not None
    assert os.path.dirname(e.value.filename) == str(nowhere.parent)


def test_a_directory_is_not_a_channel_file(tmp_path):
    with pytest.raises(IsADirectoryError) as e:
        Channel.open(tmp_path)
    assert e.value.filename == str(tmp_path)


def test_handle_state_errors_keep_their_classes(tmp_path):
    p = tmp_path / "c.cimg"
    w = Channel.create_full(p, np.uint8, 1, 4, 4)
    with pytest.raises(ci.LockedError):
        Channel.open(p)
    r = Channel.open(p, read_only=True)
    with pytest.raises(ci.ReadOnlyError):
        r.set_chunk(0, np.zeros(16, np.uint8))
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.num_chunks()


def test_a_refused_stored_chunk_is_a_value_error():
    c = Channel.zeros(np.uint8, 4, 4)
    good = c.compress_chunk(0, np.arange(16, dtype=np.uint8))
    for bad in (good[:-1], b"x" * 60):
        with pytest.raises(ValueError) as e:
            c.set_stored_chunk(0, bad)
        assert type(e.value) is ValueError


def test_an_unavailable_snapshot_is_its_own_runtime_error(tmp_path):
    assert issubclass(ci.SnapshotUnavailableError, RuntimeError)
    p = tmp_path / "c.cimg"
    w = Channel.create_full(p, np.uint8, 1, 4, 4)
    sid = w.snapshot_id()
    w.set_chunk(0, np.arange(16, dtype=np.uint8))
    w.compact()
    with pytest.raises(ci.SnapshotUnavailableError) as e:
        Channel.open_snapshot(p, sid)
    assert str(p) in str(e.value)
    # A malformed id is a ValueError (an invalid argument), not that error.
    with pytest.raises(ValueError):
        Channel.open_snapshot(p, sid[:-2])
