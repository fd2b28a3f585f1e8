"""The numcodecs codec "roimc" and its use in zarr."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import roimc
from roimc.errors import InputError, UnsupportedError
from roimc.numcodecs_codec import Roimc

from conftest import REPO


def chunks(rng):
    """(id, array) pairs covering every shape and dtype rule of the codec."""
    return [
        ("u16-2d", rng.integers(0, 65536, size=(37, 53), dtype=np.uint16)),
        ("u8-2d", rng.integers(0, 256, size=(16, 16), dtype=np.uint8)),
        ("i16-2d", rng.integers(-32768, 32768, size=(9, 14), dtype=np.int16)),
        ("i8-1d", rng.integers(-128, 128, size=(41,), dtype=np.int8)),
        ("u16-0d", np.array(1234, dtype=np.uint16)),
        ("u8-rgb", rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)),
        ("u16-frames", rng.integers(0, 4096, size=(5, 8, 6), dtype=np.uint16)),
        ("u8-4d", rng.integers(0, 256, size=(2, 3, 5, 4), dtype=np.uint8)),
        ("u16-4d-wide", rng.integers(0, 4096, size=(2, 3, 5, 6), dtype=np.uint16)),
        ("bool", rng.random((6, 10)) < 0.3),
        ("u16-big-endian", rng.integers(0, 65536, size=(6, 7)).astype(">u2")),
        ("fortran", np.asfortranarray(rng.integers(0, 256, size=(8, 5, 3), dtype=np.uint8))),
        ("non-contiguous", rng.integers(0, 256, size=(20, 30), dtype=np.uint8)[::2, 1::3]),
    ]


def test_round_trip_every_chunk_kind(rng):
    codec = Roimc()
    for name, array in chunks(rng):
        data = codec.encode(array)
        back = codec.decode(data)
        assert back.shape == array.shape, name
        assert back.dtype == array.dtype, name
        assert np.array_equal(back, array), name
        if array.flags.f_contiguous and not array.flags.c_contiguous:
            assert back.flags.f_contiguous, name
        # the data is a complete .rmc file
        assert roimc.decode(data).size == array.size, name


def test_decode_into_out_and_from_buffers(rng):
    codec = Roimc(coder="huffman", tile_size=[8, 16])
    for name, array in chunks(rng):
        data = codec.encode(array)
        out = np.empty_like(array)
        assert codec.decode(data, out=out) is out
        assert np.array_equal(out, array), name
        flat = np.zeros(array.nbytes, dtype=np.uint8)          # numcodecs: byte for byte
        codec.decode(np.frombuffer(data, dtype=np.uint8), out=flat)
        assert flat.tobytes() == array.tobytes(order="A"), name
        assert np.array_equal(codec.decode(memoryview(data)), array), name
        assert np.array_equal(codec.decode(bytearray(data)), array), name
    with pytest.raises(InputError, match="bytes"):
        codec.decode(codec.encode(np.zeros((4, 4), np.uint8)), out=np.empty(3, np.uint8))


def test_bytes_input_is_coded_as_uint8():
    codec = Roimc()
    back = codec.decode(codec.encode(b"roimc codes bytes as a row"))
    assert back.dtype == np.uint8 and back.tobytes() == b"roimc codes bytes as a row"


def test_refused_chunks():
    codec = Roimc()
    with pytest.raises(UnsupportedError, match="at most 4 dimensions"):
        codec.encode(np.zeros((2, 2, 2, 2, 2), np.uint8))
    for dtype in (np.float32, np.uint32, np.int64):
        with pytest.raises(UnsupportedError, match="uint8, uint16, int8, int16 or bool"):
            codec.encode(np.zeros((4, 4), dtype))
    with pytest.raises(InputError):
        Roimc(coder="zip")
    with pytest.raises(InputError):
        Roimc(tile_size=0)


def test_config_round_trip():
    codec = Roimc(coder="huffman", tile_size=[32, 64], threads=2)
    config = codec.get_config()
    assert config == {"id": "roimc", "coder": "huffman", "tile_size": [32, 64], "threads": 2}
    again = Roimc.from_config(config)
    assert again == codec and again.get_config() == config
    assert Roimc.from_config({"id": "roimc"}) == Roimc()
    assert "huffman" in repr(codec)


def test_registry_lookup(rng):
    numcodecs = pytest.importorskip("numcodecs")
    codec = numcodecs.get_codec({"id": "roimc", "coder": "raw", "tile_size": 64})
    assert isinstance(codec, Roimc) and isinstance(codec, numcodecs.abc.Codec)
    assert codec.coder == "raw" and codec.tile_size == 64
    array = rng.integers(0, 256, size=(10, 12), dtype=np.uint8)
    assert np.array_equal(codec.decode(codec.encode(array)), array)


def test_works_without_numcodecs():
    code = ("import sys; sys.modules['numcodecs'] = None\n"
            "import numpy as np\n"
            "from roimc.numcodecs_codec import Roimc\n"
            "assert Roimc.__bases__ == (object,)\n"
            "c = Roimc.from_config(Roimc(coder='huffman').get_config())\n"
            "a = np.arange(60, dtype=np.uint16).reshape(3, 4, 5)\n"
            "assert np.array_equal(c.decode(c.encode(a)), a)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ----------------------------------------------------------------------------- zarr

def test_zarr_v2_compressor(rng, tmp_path):
    zarr = pytest.importorskip("zarr")
    data = rng.integers(0, 4096, size=(70, 90), dtype=np.uint16)
    z = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=data.shape, chunks=(32, 40),
                          dtype="uint16", zarr_format=2, compressors=Roimc())
    z[:] = data
    again = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    assert isinstance(again.compressors[0], Roimc)
    assert again.dtype == np.uint16
    assert np.array_equal(again[:], data)
    assert np.array_equal(again[5:50, 33:77], data[5:50, 33:77])


def test_zarr_v3_serializer(rng, tmp_path):
    zarr = pytest.importorskip("zarr")
    from roimc.numcodecs_codec import ZarrRoimc
    data = rng.integers(0, 256, size=(4, 30, 50), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns about codecs outside its specification
        z = zarr.create_array(store=str(tmp_path / "b.zarr"), shape=data.shape,
                              chunks=(2, 16, 32), dtype="uint8",
                              serializer=ZarrRoimc(coder="huffman", tile_size=[8, 16]),
                              compressors=None)
        z[:] = data
        again = zarr.open_array(str(tmp_path / "b.zarr"), mode="r")
        assert again.serializer == ZarrRoimc(coder="huffman", tile_size=[8, 16])
        assert np.array_equal(again[:], data)
        with pytest.raises(ValueError, match="uint8, uint16"):
            zarr.create_array(store={}, shape=(4, 4), dtype="float32", serializer=ZarrRoimc(),
                              compressors=None)


def test_module_import_does_not_import_zarr():
    code = "import sys, roimc.numcodecs_codec; print('zarr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
