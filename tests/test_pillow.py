"""The Pillow plugin: Image.open / save of .rmc files."""
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageSequence

import roimc
import roimc.pillow_plugin  # noqa: F401  (registers the plugin; roimc's __init__ does it too)
from roimc.errors import CorruptDataError, UnsupportedError

from conftest import REPO


def write_rmc(path, array, **options):
    path.write_bytes(roimc.encode(array, **options))
    return path


@pytest.fixture
def gray8(rng):
    return rng.integers(0, 256, size=(23, 37), dtype=np.uint8)


def test_registered():
    assert Image.registered_extensions()[".rmc"] == "RMC"
    assert "RMC" in Image.OPEN and "RMC" in Image.SAVE and "RMC" in Image.SAVE_ALL


def test_open_8bit(tmp_path, gray8):
    path = write_rmc(tmp_path / "g.rmc", gray8)
    with Image.open(path) as im:
        assert im.format == "RMC"
        assert im.mode == "L"
        assert im.size == (37, 23)
        assert im.n_frames == 1 and not im.is_animated
        a = np.asarray(im)
    assert a.dtype == np.uint8 and np.array_equal(a, gray8)


def test_open_16bit_keeps_values_above_255(tmp_path, rng):
    array = rng.integers(0, 65536, size=(19, 31), dtype=np.uint16)
    array[0, 0] = 65535
    path = write_rmc(tmp_path / "g16.rmc", array)
    with Image.open(path) as im:
        assert im.mode == "I;16"
        assert im.size == (31, 19)
        assert im.getpixel((0, 0)) == 65535
        a = np.asarray(im)
    assert a.dtype == np.uint16 and a.max() > 255
    assert np.array_equal(a, array)


@pytest.mark.parametrize("channels,mode", [(2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_open_colour(tmp_path, rng, channels, mode):
    array = rng.integers(0, 256, size=(17, 29, channels), dtype=np.uint8)
    path = write_rmc(tmp_path / "c.rmc", array)
    with Image.open(path) as im:
        assert im.mode == mode and im.size == (29, 17)
        assert np.array_equal(np.asarray(im), array)


def test_open_file_object_and_header_only(tmp_path, gray8):
    data = roimc.encode(gray8)
    im = Image.open(io.BytesIO(data))
    assert im.size == (37, 23) and im.info["bits"] == 8
    im.verify()
    im = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(im), gray8)


def test_file_is_closed_after_load(tmp_path, gray8):
    path = write_rmc(tmp_path / "g.rmc", gray8)
    im = Image.open(path)
    fp = im.fp
    im.load()
    assert fp.closed
    assert np.array_equal(np.asarray(im), gray8)


@pytest.mark.parametrize("array", [np.zeros((4, 5), np.int16), np.zeros((4, 5), np.int8),
                                   np.zeros((4, 5, 3), np.uint16)],
                         ids=["int16", "int8", "rgb16"])
def test_unsupported_layouts_fail_on_open(tmp_path, array):
    path = write_rmc(tmp_path / "u.rmc", array)
    with pytest.raises(UnsupportedError, match="no PIL image mode.*roimc.read"):
        Image.open(path)


def test_damaged_header_fails_on_open(tmp_path, gray8):
    data = bytearray(roimc.encode(gray8))
    data[20] ^= 0xFF  # inside the HEAD payload
    path = tmp_path / "bad.rmc"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError):
        Image.open(path)


@pytest.mark.parametrize("framing", ["compact", "chunked"])
def test_both_framings_open(tmp_path, gray8, framing):
    path = write_rmc(tmp_path / "g.rmc", gray8, framing=framing)
    with Image.open(path) as im:
        assert im.size == (37, 23) and np.array_equal(np.asarray(im), gray8)


def test_damaged_compact_header_fails_on_open_or_load(tmp_path, gray8):
    """The compact HEAD has no CRC of its own: damage that leaves its fields readable is
    caught by the file CRC when the pixels are loaded."""
    data = roimc.encode(gray8)
    assert data[4] == 1   # the HEAD record: code, length, payload
    for pos in range(4, 6 + data[5]):
        for flip in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[pos] ^= flip
            path = tmp_path / "bad.rmc"
            path.write_bytes(bytes(damaged))
            with pytest.raises(roimc.RmcError):
                with Image.open(path) as im:
                    im.load()


def test_damaged_pixels_fail_on_load(tmp_path, gray8):
    data = bytearray(roimc.encode(gray8))
    data[-40] ^= 0xFF  # in the last tile / dsum, after the header
    path = tmp_path / "bad.rmc"
    path.write_bytes(bytes(data))
    im = Image.open(path)
    with pytest.raises(CorruptDataError):
        im.load()


@pytest.mark.parametrize("mode,shape,dtype", [("L", (21, 13), np.uint8),
                                              ("I;16", (21, 13), np.uint16),
                                              ("RGB", (21, 13, 3), np.uint8),
                                              ("RGBA", (21, 13, 4), np.uint8),
                                              ("LA", (21, 13, 2), np.uint8)])
def test_save_round_trip(tmp_path, rng, mode, shape, dtype):
    array = rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)
    im = Image.fromarray(array)
    assert im.mode == mode
    im.save(tmp_path / "s.rmc")
    back = roimc.decode((tmp_path / "s.rmc").read_bytes())
    assert back.dtype == dtype and np.array_equal(back, array)
    with Image.open(tmp_path / "s.rmc") as again:
        assert again.mode == mode
        assert np.array_equal(np.asarray(again), array)


def test_save_mode_I_as_uint16_with_options(tmp_path, rng):
    array = rng.integers(0, 65536, size=(9, 11)).astype(np.int32)
    im = Image.fromarray(array)
    assert im.mode == "I"
    buf = io.BytesIO()
    im.save(buf, format="RMC", coder="huffman", tile_size=8)
    back = roimc.decode(buf.getvalue())
    assert back.dtype == np.uint16 and np.array_equal(back, array)
    assert roimc.info(buf.getvalue())["tile"] == [8, 8]


@pytest.mark.parametrize("im", [Image.fromarray(np.full((3, 3), -1, np.int32)),
                                Image.new("P", (3, 3)), Image.new("F", (3, 3)),
                                Image.new("1", (3, 3))], ids=["I<0", "P", "F", "1"])
def test_save_refuses_what_it_cannot_keep(tmp_path, im):
    with pytest.raises(UnsupportedError, match="cannot write mode"):
        im.save(tmp_path / "x.rmc")


def test_multi_frame_seek(tmp_path, rng):
    frames = rng.integers(0, 256, size=(3, 6, 4), dtype=np.uint8)  # W = 4: frames, not RGBA
    path = write_rmc(tmp_path / "f.rmc", frames, channels_last=False)
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.is_animated and im.mode == "L" and im.size == (4, 6)
        for k in (0, 2, 1):
            im.seek(k)
            assert im.tell() == k
            assert np.array_equal(np.asarray(im), frames[k])
        seen = [np.asarray(f).copy() for f in ImageSequence.Iterator(im)]
        with pytest.raises(EOFError):
            im.seek(3)
    assert np.array_equal(np.stack(seen), frames)


def test_multi_frame_colour_and_save_all(tmp_path, rng):
    frames = rng.integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    path = write_rmc(tmp_path / "f.rmc", frames)
    extra = Image.fromarray(rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8))
    with Image.open(path) as im:
        im.seek(1)
        im.save(tmp_path / "all.rmc", save_all=True, append_images=[extra])
        assert im.tell() == 1
    back = roimc.decode((tmp_path / "all.rmc").read_bytes())
    assert back.shape == (3, 5, 7, 3)
    assert np.array_equal(back[:2], frames) and np.array_equal(back[2], np.asarray(extra))


def test_save_all_gray_frames_keep_their_layout(tmp_path, rng):
    frames = [Image.fromarray(rng.integers(0, 256, size=(5, 3), dtype=np.uint8))
              for _ in range(2)]
    frames[0].save(tmp_path / "g.rmc", save_all=True, append_images=frames[1:])
    back = roimc.decode((tmp_path / "g.rmc").read_bytes())
    assert back.shape == (2, 5, 3)  # (F, H, W), although W = 3
    with pytest.raises(UnsupportedError, match="different size"):
        frames[0].save(tmp_path / "x.rmc", save_all=True,
                       append_images=[Image.new("L", (4, 4))])


def test_other_formats_still_open(tmp_path, gray8):
    for fmt in ("PNG", "TIFF", "BMP"):
        buf = io.BytesIO()
        Image.fromarray(gray8).save(buf, format=fmt)
        buf.seek(0)
        with Image.open(buf) as im:
            assert im.format == fmt
            assert np.array_equal(np.asarray(im), gray8)


def test_plugin_import_is_cheap():
    code = ("import sys, roimc.pillow_plugin; "
            "print(sorted(m for m in ('torch', 'numcodecs', 'zarr', 'click') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.skipif("pillow_plugin" not in (REPO / "roimc" / "__init__.py").read_text(),
                    reason="roimc/__init__.py does not import the plugin yet")
def test_import_roimc_registers_the_plugin(tmp_path, gray8):
    path = write_rmc(tmp_path / "g.rmc", gray8)
    code = (f"import roimc; from PIL import Image; im = Image.open({str(path)!r}); "
            f"print(im.format, im.mode, im.size)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "RMC L (37, 23)"
