import pickle

import numpy as np
import pytest

import compressed_image as ci
from compressed_image import Codec


def test_public_names():
    for name in ["Codec", "Channel", "Image"]:
        assert hasattr(ci, name)


@pytest.mark.extension
def test_module_of_classes_and_exceptions():
    assert ci.Channel.__module__ == "compressed_image"
    assert ci.Image.__module__ == "compressed_image"
    assert Codec.__module__ == "compressed_image"
    for name in ["CorruptedError", "LockedError", "ReadOnlyError", "ChannelRemovedError"]:
        assert getattr(ci, name).__module__ == "compressed_image"


def test_members_and_values():
    assert [Codec.blosclz.value, Codec.lz4.value, Codec.lz4hc.value, Codec.zstd.value] == [0, 1, 2, 3]
    assert [int(c) for c in (Codec.blosclz, Codec.lz4, Codec.lz4hc, Codec.zstd)] == [0, 1, 2, 3]
    assert Codec.lz4.name == "lz4"
    assert Codec.zstd.name == "zstd"
    assert list(Codec.__members__)[:4] == ["blosclz", "lz4", "lz4hc", "zstd"]
    assert Codec.__members__["lz4hc"] == Codec.lz4hc


def test_arithmetic_enum_behaviour():
    # As the pybind11 arithmetic enum of 1.0.1: int(), ordering among members, hash of the
    # value, no equality with plain ints.
    assert Codec.lz4 == Codec.lz4
    assert Codec.lz4 != Codec.zstd
    assert Codec.lz4 != 1
    assert Codec.blosclz < Codec.zstd and Codec.zstd >= Codec.lz4hc
    with pytest.raises(TypeError):
        Codec.lz4 < 2
    assert hash(Codec.zstd) == 3
    assert {Codec.lz4: "x"}[Codec.lz4] == "x"
    assert str(Codec.lz4) == "Codec.lz4"
    assert repr(Codec.zstd) == "<Codec.zstd: 3>"
    assert [0, 10, 20, 30][Codec.zstd] == 30  # __index__


def test_constructor_from_value():
    assert Codec(3) == Codec.zstd


@pytest.mark.extension
def test_unknown_codec_value_is_an_error():
    # 1.0.1 makes Codec(7) a bogus Codec.??? that compresses as blosclz.
    with pytest.raises(ValueError):
        Codec(7)


def test_pickle_codec():
    for c in (Codec.blosclz, Codec.lz4, Codec.lz4hc, Codec.zstd):
        assert pickle.loads(pickle.dumps(c)) == c


def test_plain_int_is_not_a_codec():
    data = np.zeros(4, np.uint8)
    with pytest.raises(TypeError):
        ci.Channel(data, 2, 2, 1)
    with pytest.raises(TypeError):
        ci.Channel(data, 2, 2, compression_codec=3)
    with pytest.raises(TypeError):
        ci.Channel.zeros(np.uint8, 2, 2, compression_codec=0)
    with pytest.raises(TypeError):
        ci.Channel(data, 2, 2, compression_codec=None)


@pytest.mark.parametrize("codec", ["blosclz", "lz4", "lz4hc", "zstd"])
def test_every_codec_round_trips(codec):
    codec = getattr(Codec, codec)
    data = (np.arange(64 * 32) % 251).astype(np.uint8).reshape(32, 64)
    c = ci.Channel(data, 64, 32, compression_codec=codec, compression_level=5, chunk_size=1024)
    assert c.compression() == codec
    assert c.compression_level() == 5
    np.testing.assert_array_equal(c.get_decompressed(), data)


@pytest.mark.extension
def test_zlib_codec():
    data = (np.arange(64 * 32) % 251).astype(np.uint8).reshape(32, 64)
    c = ci.Channel(data, 64, 32, compression_codec=Codec.zlib)
    assert c.compression() == Codec.zlib and int(Codec.zlib) == 4
    np.testing.assert_array_equal(c.get_decompressed(), data)
