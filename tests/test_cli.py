"""The command line (python -m roimc.cli), run as a user would: round trips through PNG, TIFF
and .npy files, info, and one-line errors that leave no output file behind."""
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import roimc
from roimc import io as rio

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "roimc.cli", *map(str, args)],
                          capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120)


def assert_ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def assert_one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("roimc: error:"), result.stderr


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def png_bytes(array, colortype, bitdepth):
    """A PNG written by hand (Pillow cannot write every PNG flavour)."""
    a = np.asarray(array)
    h, w = a.shape[:2]
    dtype = ">u2" if bitdepth == 16 else "u1"
    raw = b"".join(b"\0" + a[y].astype(dtype).tobytes() for y in range(h))

    def chunk(t, p):
        return struct.pack(">I", len(p)) + t + p + struct.pack(">I", zlib.crc32(t + p))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bitdepth, colortype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def noise(shape, bits, seed=0, dtype=None):
    rng = np.random.default_rng(seed)
    dtype = dtype or (np.uint8 if bits <= 8 else np.uint16)
    y = np.indices(shape).sum(axis=0)
    return ((y * 7 + rng.integers(0, 9, size=shape)) % (1 << bits)).astype(dtype)


# --- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("name,array", [
    ("gray8", noise((37, 41), 8)),
    ("gray16", noise((29, 31), 16, 1)),
    ("gray12", noise((29, 31), 12, 2)),
    ("rgb8", noise((23, 19, 3), 8, 3)),
    ("rgba8", noise((23, 19, 4), 8, 4)),
    ("la8", noise((13, 11, 2), 8, 5)),
])
def test_png_round_trip(tmp_path, name, array):
    from PIL import Image
    src = tmp_path / f"{name}.png"
    Image.fromarray(array).save(src)
    assert np.array_equal(rio.read_image(src), array)
    rmc, back = tmp_path / f"{name}.rmc", tmp_path / f"{name}_back.png"
    result = cli("encode", src, rmc)
    assert_ok(result)
    assert " -> " in result.stdout
    assert np.array_equal(roimc.read(rmc), array)
    assert_ok(cli("decode", rmc, back))
    with Image.open(back) as im:
        out = np.asarray(im)
    if array.dtype == np.uint16:
        out = out.astype(np.uint16)
    assert out.shape == array.shape and np.array_equal(out, array)
    npy = tmp_path / f"{name}_back.npy"
    assert_ok(cli("decode", rmc, npy))
    loaded = np.load(npy)
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


def test_png_1bit_round_trip_keeps_samples(tmp_path):
    from PIL import Image
    a = noise((17, 23), 1).astype(bool)
    src = tmp_path / "mask.png"
    Image.fromarray(a).save(src)
    assert_ok(cli("encode", src, tmp_path / "mask.rmc"))
    info = json.loads(cli("info", tmp_path / "mask.rmc", "--json").stdout)
    assert info["bits"] == 1
    assert np.array_equal(roimc.read(tmp_path / "mask.rmc"), a.astype(np.uint8))


def test_palette_png_becomes_rgb(tmp_path):
    from PIL import Image
    rgb = noise((9, 12, 3), 8, 6)
    src = tmp_path / "pal.png"
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16).save(src)
    with Image.open(src) as im:
        expected = np.asarray(im.convert("RGB"))
    assert_ok(cli("encode", src, tmp_path / "pal.rmc"))
    assert np.array_equal(roimc.read(tmp_path / "pal.rmc"), expected)


@pytest.mark.parametrize("colortype,channels", [(2, 3), (6, 4), (4, 2)])
def test_16bit_colour_png_is_exact_or_refused(tmp_path, colortype, channels):
    """A 16-bit RGB / RGBA / gray+alpha PNG must not be silently reduced to 8 bits: either the
    samples come back exactly (uint16) or the input is refused with a one-line error."""
    a = noise((6, 7, channels), 16, 7).astype(np.uint16)
    a[0, 0] = 65535
    src = tmp_path / "deep.png"
    src.write_bytes(png_bytes(a, colortype, 16))
    try:
        got = roimc.read(src)
    except roimc.RmcError:
        got = None
    if got is not None:
        assert got.dtype == np.uint16 and got.shape == a.shape and np.array_equal(got, a)
    result = cli("encode", src, tmp_path / "deep.rmc")
    if result.returncode == 0:
        out = roimc.read(tmp_path / "deep.rmc")
        assert out.dtype == np.uint16 and np.array_equal(out, a)
    else:
        assert_one_line_error(result)
        assert not (tmp_path / "deep.rmc").exists()


def test_hand_written_16bit_gray_png_is_exact(tmp_path):
    a = noise((11, 13), 16, 8)
    a[0, 0], a[0, 1] = 0, 65535
    src = tmp_path / "g16.png"
    src.write_bytes(png_bytes(a, 0, 16))
    assert_ok(cli("encode", src, tmp_path / "g16.rmc"))
    out = roimc.read(tmp_path / "g16.rmc")
    assert out.dtype == np.uint16 and np.array_equal(out, a)


@pytest.mark.parametrize("array", [
    noise((4, 20, 30), 12, 9),                       # multi-frame 16-bit
    noise((3, 10, 12, 3), 8, 10),                    # multi-frame RGB
    noise((25, 27), 16, 11),
])
def test_tiff_round_trip(tmp_path, array):
    import tifffile
    src, rmc, back = tmp_path / "in.tif", tmp_path / "x.rmc", tmp_path / "back.tiff"
    tifffile.imwrite(src, array, photometric="rgb" if array.shape[-1] == 3 else "minisblack")
    assert np.array_equal(tifffile.imread(src), array)
    assert_ok(cli("encode", src, rmc))
    info = json.loads(cli("info", rmc, "--json").stdout)
    assert info["shape"] == list(array.shape)
    assert_ok(cli("decode", rmc, back))
    out = tifffile.imread(back)
    assert out.dtype == array.dtype and out.shape == array.shape and np.array_equal(out, array)


@pytest.mark.parametrize("array", [
    noise((2, 9, 10, 3), 16, 12),
    (noise((15, 16), 12, 13).astype(np.int16) - 2048),
    (noise((15, 16), 8, 14).astype(np.int16) - 128).astype(np.int8),
    noise((5, 6, 7), 3, 15),
])
def test_npy_round_trip(tmp_path, array):
    src, rmc, back = tmp_path / "in.npy", tmp_path / "x.rmc", tmp_path / "back.npy"
    np.save(src, array)
    assert_ok(cli("encode", src, rmc))
    assert_ok(cli("decode", rmc, back))
    out = np.load(back)
    assert out.dtype == array.dtype and out.shape == array.shape and np.array_equal(out, array)


def test_encode_options_reach_the_file(tmp_path):
    a = noise((40, 50), 10, 16)
    src, rmc = tmp_path / "in.npy", tmp_path / "x.rmc"
    np.save(src, a)
    assert_ok(cli("encode", src, rmc, "--coder", "huffman", "--tile-size", "16", "--threads", "1",
                  "--bits", "14"))
    info = json.loads(cli("info", rmc, "--json").stdout)
    assert info["tile"] == [16, 16] and info["tiles"] == 12 and info["bits"] == 14
    assert rmc.read_bytes() == roimc.encode(a, coder="huffman", tile_size=16, bits=14)


def test_frames_and_channels_flags(tmp_path):
    a = noise((5, 7, 3), 8, 17)
    src = tmp_path / "in.npy"
    np.save(src, a)
    assert_ok(cli("encode", src, tmp_path / "f.rmc", "--frames"))
    assert_ok(cli("encode", src, tmp_path / "c.rmc", "--channels"))
    f = json.loads(cli("info", tmp_path / "f.rmc", "--json").stdout)
    c = json.loads(cli("info", tmp_path / "c.rmc", "--json").stdout)
    assert (f["frames"], f["channels"]) == (5, 1)
    assert (c["frames"], c["channels"]) == (1, 3)
    assert np.array_equal(roimc.read(tmp_path / "f.rmc"), a)


# --- info ------------------------------------------------------------------------------------

def test_info_json(tmp_path):
    a = noise((2, 20, 30), 12, 18)
    a[0, 0, 0] = 4095
    np.save(tmp_path / "in.npy", a)
    assert_ok(cli("encode", tmp_path / "in.npy", tmp_path / "x.rmc"))
    result = cli("info", tmp_path / "x.rmc", "--json")
    assert_ok(result)
    info = json.loads(result.stdout)
    assert info["shape"] == [2, 20, 30]
    assert info["bits"] == 12 and info["mode"] == "lossless" and info["version"] == "1.4"
    assert info["dtype"] == "uint16" and info["frames"] == 2
    assert info["chunks"]["HEAD"]["count"] == 1 and info["chunks"]["TILE"]["count"] == 2
    assert info["chunks"]["IEND"]["count"] == 1
    assert info["bytes"] == (tmp_path / "x.rmc").stat().st_size
    assert info == roimc.info((tmp_path / "x.rmc").read_bytes())


def test_info_text(tmp_path):
    np.save(tmp_path / "in.npy", noise((20, 30, 3), 8, 19))
    assert_ok(cli("encode", tmp_path / "in.npy", tmp_path / "x.rmc"))
    result = cli("info", tmp_path / "x.rmc")
    assert_ok(result)
    for word in ("1.4", "lossless", "20 x 30 x 3", "uint8", "rct", "TILE", "HEAD", "bits",
                 "compact framing"):
        assert word in result.stdout


def test_framing_option(tmp_path):
    a = noise((20, 30), 8, 21)
    np.save(tmp_path / "in.npy", a)
    assert_ok(cli("encode", tmp_path / "in.npy", tmp_path / "c.rmc"))
    assert_ok(cli("encode", tmp_path / "in.npy", tmp_path / "p.rmc", "--framing", "chunked"))
    compact, chunked = (tmp_path / "c.rmc").read_bytes(), (tmp_path / "p.rmc").read_bytes()
    assert compact == roimc.encode(a) and chunked == roimc.encode(a, framing="chunked")
    assert len(compact) < len(chunked)
    assert "chunked framing" in cli("info", tmp_path / "p.rmc").stdout
    assert "--framing" in cli("encode", "--help").stdout
    bad = cli("encode", tmp_path / "in.npy", tmp_path / "x.rmc", "--framing", "png")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--framing" in bad.stderr
    assert not (tmp_path / "x.rmc").exists()


# --- errors ----------------------------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path):
    np.save(tmp_path / "good.npy", noise((10, 12), 8, 20))
    good = roimc.encode(noise((10, 12), 8, 20))
    (tmp_path / "good.rmc").write_bytes(good)
    (tmp_path / "trunc.rmc").write_bytes(good[:len(good) // 2])
    (tmp_path / "garbage.rmc").write_bytes(b"this is not an rmc file at all")
    (tmp_path / "text.png").write_text("not a PNG")
    (tmp_path / "text.tif").write_text("not a TIFF")
    (tmp_path / "text.npy").write_text("not a npy")
    (tmp_path / "pic.bmp").write_bytes(b"BM" + b"\0" * 60)
    np.save(tmp_path / "float.npy", np.zeros((4, 4), np.float32))
    np.save(tmp_path / "u32.npy", np.zeros((4, 4), np.uint32))
    np.save(tmp_path / "five.npy", np.zeros((1, 2, 3, 4, 2), np.uint8))
    np.save(tmp_path / "empty.npy", np.zeros((0, 4), np.uint8))
    np.save(tmp_path / "signed.npy", np.zeros((4, 4), np.int16) - 5)
    (tmp_path / "signed.rmc").write_bytes(roimc.encode(np.zeros((4, 4), np.int16) - 5))
    (tmp_path / "rgb16.rmc").write_bytes(roimc.encode(noise((4, 5, 3), 16, 21)))
    return tmp_path


@pytest.mark.parametrize("args,output", [
    (("encode", "missing.png", "out.rmc"), "out.rmc"),
    (("encode", "missing.npy", "out.rmc"), "out.rmc"),
    (("encode", "text.png", "out.rmc"), "out.rmc"),
    (("encode", "text.tif", "out.rmc"), "out.rmc"),
    (("encode", "text.npy", "out.rmc"), "out.rmc"),
    (("encode", "pic.bmp", "out.rmc"), "out.rmc"),
    (("encode", "good.rmc", "out.rmc"), "out.rmc"),
    (("encode", "float.npy", "out.rmc"), "out.rmc"),
    (("encode", "u32.npy", "out.rmc"), "out.rmc"),
    (("encode", "five.npy", "out.rmc"), "out.rmc"),
    (("encode", "empty.npy", "out.rmc"), "out.rmc"),
    (("encode", "good.npy", "out.png"), "out.png"),
    (("encode", "good.npy", "out.rmc", "--bits", "3"), "out.rmc"),
    (("encode", "good.npy", "nodir/out.rmc"), "nodir/out.rmc"),
    (("decode", "missing.rmc", "out.png"), "out.png"),
    (("decode", "trunc.rmc", "out.png"), "out.png"),
    (("decode", "trunc.rmc", "out.npy"), "out.npy"),
    (("decode", "garbage.rmc", "out.tif"), "out.tif"),
    (("decode", "good.rmc", "out.jpg"), "out.jpg"),
    (("decode", "good.rmc", "out.rmc"), "out.rmc"),
    (("decode", "good.rmc", "out"), "out"),
    (("decode", "signed.rmc", "out.png"), "out.png"),
    (("decode", "rgb16.rmc", "out.png"), "out.png"),
    (("decode", "good.rmc", "nodir/out.png"), "nodir/out.png"),
    (("info", "missing.rmc"), None),
    (("info", "trunc.rmc"), None),
    (("info", "garbage.rmc"), None),
    (("info", "text.png", "--json"), None),
])
def test_errors_are_one_line_and_leave_no_file(workdir, args, output):
    before = files_in(workdir)
    result = cli(*args, cwd=workdir)
    assert_one_line_error(result)
    assert result.returncode == 1
    if output:
        assert not (workdir / output).exists()
    assert files_in(workdir) == before       # no output, no temporary file left behind


@pytest.mark.parametrize("command,source,output", [
    ("encode", "good.npy", "exists.rmc"),
    ("decode", "good.rmc", "exists.png"),
    ("decode", "good.rmc", "exists.npy"),
])
def test_existing_output_needs_force(workdir, command, source, output):
    (workdir / output).write_bytes(b"precious")
    result = cli(command, source, output, cwd=workdir)
    assert_one_line_error(result)
    assert (workdir / output).read_bytes() == b"precious"
    for flag in ("-f", "--force"):
        (workdir / output).write_bytes(b"precious")
        assert_ok(cli(command, source, output, flag, cwd=workdir))
        assert (workdir / output).read_bytes() != b"precious"
    assert np.array_equal(roimc.read(workdir / output), noise((10, 12), 8, 20))


def test_failed_decode_keeps_existing_output_with_force(workdir):
    (workdir / "keep.png").write_bytes(b"precious")
    result = cli("decode", "trunc.rmc", "keep.png", "-f", cwd=workdir)
    assert_one_line_error(result)
    assert (workdir / "keep.png").read_bytes() == b"precious"


@pytest.mark.parametrize("command", [[], ["encode"], ["decode"], ["info"]])
def test_help(command):
    for flag in ("--help", "-h"):
        result = cli(*command, flag)
        assert_ok(result)
        assert "Usage" in result.stdout


@pytest.mark.parametrize("args", [("encode", "--tile-size", "8", "a.npy", "b.rmc"),
                                  ("encode", "a.npy"), ("bogus",), ("decode",),
                                  ("encode", "--coder", "zip", "a.npy", "b.rmc")])
def test_usage_errors_do_not_trace_back(tmp_path, args):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip() and not result.stdout.strip()
    assert files_in(tmp_path) == []


def test_encode_help_lists_options():
    out = cli("encode", "--help").stdout
    for option in ("--coder", "--tile-size", "--threads", "--bits", "--frames", "--force"):
        assert option in out


def test_python_dash_m_roimc_is_the_command_line(tmp_path):
    """`python -m roimc` runs the same command line, named roimc in its messages."""
    def run(*args):
        return subprocess.run([sys.executable, "-m", "roimc", *map(str, args)],
                              capture_output=True, text=True, env=ENV, timeout=120)
    sample = Path(roimc.__file__).parent / "samples" / "ct_small.png"
    r = run("encode", sample, tmp_path / "s.rmc")
    assert_ok(r)
    assert roimc.decode((tmp_path / "s.rmc").read_bytes()).shape == (128, 128)
    r = run("info", tmp_path / "missing.rmc")
    assert_one_line_error(r)
    assert r.stderr.startswith("roimc: error:")
    assert "Usage: roimc" in run("encode").stderr


def test_version():
    result = cli("--version")
    assert_ok(result)
    assert roimc.__version__ in result.stdout


def test_atomic_write_cleans_up_after_a_failing_writer(tmp_path):
    target = tmp_path / "out.bin"

    def writer(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError):
        rio.atomic_write(target, writer)
    assert files_in(tmp_path) == []
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        rio.atomic_write(target, writer)
    assert files_in(tmp_path) == ["out.bin"] and target.read_bytes() == b"old"


@pytest.mark.parametrize("ext", [".tif", ".tiff", ".npy", ".png"])
def test_library_write_and_read_image_files(tmp_path, ext):
    a = noise((3, 8, 9), 12, 24) if ext != ".png" else noise((8, 9), 12, 24)
    path = tmp_path / f"x{ext}"
    roimc.write(path, a)
    out = roimc.read(path)
    assert out.dtype == a.dtype and np.array_equal(out, a)
    assert files_in(tmp_path) == [path.name]


def test_outputs_get_the_usual_file_mode(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    roimc.write(tmp_path / "x.rmc", np.zeros((3, 3), np.uint8))
    assert (tmp_path / "x.rmc").stat().st_mode & 0o777 == 0o666 & ~mask
    np.save(tmp_path / "in.npy", np.zeros((3, 3), np.uint8))
    assert_ok(cli("encode", tmp_path / "in.npy", tmp_path / "y.rmc"))
    assert_ok(cli("decode", tmp_path / "y.rmc", tmp_path / "y.png"))
    for name in ("y.rmc", "y.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("frames", [2, 3, 4, 5])
def test_tiff_frame_stacks_are_not_tagged_as_colour(tmp_path, frames):
    """A (F, H, W) stack written as TIFF stays F gray frames, also when F is 3 or 4."""
    import tifffile
    a = noise((frames, 8, 9), 12, 25)
    roimc.write(tmp_path / "s.tif", a)
    with tifffile.TiffFile(tmp_path / "s.tif") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK
    assert np.array_equal(tifffile.imread(tmp_path / "s.tif"), a)


def test_write_rmc_failure_leaves_nothing(tmp_path):
    with pytest.raises(roimc.UnsupportedError):
        roimc.write(tmp_path / "x.rmc", np.zeros((3, 3), np.float64))
    with pytest.raises(roimc.UnsupportedError):
        roimc.write(tmp_path / "x.png", np.zeros((3, 3), np.int16))
    assert files_in(tmp_path) == []


# --- dependencies ----------------------------------------------------------------------------

def test_lossless_decode_does_not_import_torch(tmp_path):
    p = tmp_path / "x.rmc"
    p.write_bytes(roimc.encode(noise((20, 20, 3), 8, 22)))
    code = ("import sys, roimc; roimc.decode(open(sys.argv[1], 'rb').read()); "
            "roimc.info(open(sys.argv[1], 'rb').read()); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True,
                            env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr


def test_cli_decode_does_not_import_torch(tmp_path):
    p = tmp_path / "x.rmc"
    p.write_bytes(roimc.encode(noise((20, 20), 8, 23)))
    code = ("import sys, runpy; sys.argv = ['roimc', 'decode', sys.argv[1], sys.argv[2]]\n"
            "try:\n    runpy.run_module('roimc.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code, str(p), str(tmp_path / "o.npy")],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o.npy").exists()


# --- near-lossless and ROI -------------------------------------------------------------------

def _near_source(tmp_path):
    a = noise((37, 29), 8, seed=3)
    np.save(tmp_path / "a.npy", a)
    m = np.zeros((37, 29), np.uint8)
    m[5:20, 4:15] = 255
    from PIL import Image
    Image.fromarray(m).save(tmp_path / "m.png")
    return a, m != 0


def test_near_lossless_round_trip_with_mask_and_roi_out(tmp_path):
    a, m = _near_source(tmp_path)
    assert_ok(cli("encode", tmp_path / "a.npy", tmp_path / "a.rmc", "--mode", "near-lossless",
                  "--max-error", 4, "--roi", tmp_path / "m.png", "--roi-max-error", 1))
    assert_ok(cli("decode", tmp_path / "a.rmc", tmp_path / "b.npy", "--roi-out",
                  tmp_path / "back.png"))
    b = np.load(tmp_path / "b.npy")
    err = np.abs(b.astype(int) - a)
    assert err[m].max() <= 1 and err[~m].max() <= 4
    from PIL import Image
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png")) != 0, m)
    text = cli("info", tmp_path / "a.rmc")
    assert_ok(text)
    assert "near-lossless" in text.stdout and "ROI within 1, elsewhere within 4" in text.stdout
    assert f"{int(m.sum())} of {m.size} pixels" in text.stdout
    info = json.loads(cli("info", tmp_path / "a.rmc", "--json").stdout)
    assert info["max_error"] == 4 and info["roi_max_error"] == 1


def test_near_lossless_rectangles_and_no_roi(tmp_path):
    a, _ = _near_source(tmp_path)
    assert_ok(cli("encode", tmp_path / "a.npy", tmp_path / "r.rmc", "--mode", "near-lossless",
                  "--max-error", 2, "--roi", "0,0,3,3;10,10,5,2"))
    assert_ok(cli("encode", tmp_path / "a.npy", tmp_path / "n.rmc", "--mode", "near-lossless",
                  "--max-error", 0))
    assert np.array_equal(roimc.read(tmp_path / "n.rmc"), a)
    assert "every sample within 0" in cli("info", tmp_path / "n.rmc").stdout
    result = cli("decode", tmp_path / "n.rmc", tmp_path / "n.npy", "--roi-out",
                 tmp_path / "nm.png")
    assert_one_line_error(result)
    assert "no ROI mask" in result.stderr
    assert "n.npy" not in files_in(tmp_path) and "nm.png" not in files_in(tmp_path)


@pytest.mark.parametrize("args,message", [
    (["--mode", "near-lossless"], "needs --max-error"),
    (["--max-error", "2"], "needs --mode near-lossless"),
    (["--mode", "near-lossless", "--max-error", "2", "--roi-max-error", "1"], "needs --roi"),
    (["--mode", "near-lossless", "--max-error", "-1"], "max_error"),
    (["--mode", "near-lossless", "--max-error", "256"], "max_error"),
    (["--mode", "near-lossless", "--max-error", "2", "--roi", "0,0,30,1"], "outside"),
    (["--mode", "near-lossless", "--max-error", "2", "--roi", "missing.png"], "no such mask"),
    (["--mode", "near-lossless", "--max-error", "2", "--roi", "A"], "not binary"),
    (["--mode", "near-lossless", "--max-error", "2", "--roi", "S"], "shape"),
    (["--mode", "near-lossless", "--max-error", "2", "--coder", "huffman"], "near-lossless"),
])
def test_near_lossless_errors_are_one_line(tmp_path, args, message):
    a, _ = _near_source(tmp_path)
    from PIL import Image
    Image.fromarray(a).save(tmp_path / "A.png")                      # not a binary mask
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "S.png")   # wrong size
    args = [str(tmp_path / f"{x}.png") if x in ("A", "S") else x for x in args]
    args = [str(tmp_path / x) if x == "missing.png" else x for x in args]
    before = files_in(tmp_path)
    result = cli("encode", tmp_path / "a.npy", tmp_path / "x.rmc", *args)
    assert_one_line_error(result)
    assert message in result.stderr, result.stderr
    assert files_in(tmp_path) == before


def test_roi_out_is_checked_before_decoding(tmp_path):
    a, _ = _near_source(tmp_path)
    assert_ok(cli("encode", tmp_path / "a.npy", tmp_path / "a.rmc", "--mode", "near-lossless",
                  "--max-error", 1, "--roi", "0,0,2,2"))
    (tmp_path / "exists.png").write_bytes(b"x")
    for out, roi_out, message in (("b.npy", "exists.png", "exists"), ("b.npy", "m.tif", ".png"),
                                  ("b.png", "b.png", "differ")):
        result = cli("decode", tmp_path / "a.rmc", tmp_path / out, "--roi-out",
                     tmp_path / roi_out)
        assert_one_line_error(result)
        assert message in result.stderr
        assert "b.npy" not in files_in(tmp_path) and "b.png" not in files_in(tmp_path)


def test_output_to_a_reader_that_stopped_is_not_an_error(tmp_path):
    """`roimc info f | head`: a reader that closed its end before roimc wrote makes no
    message (roimc ends with status 1, as Python advises for a broken pipe)."""
    src = tmp_path / "a.npy"
    np.save(src, np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert cli("encode", src, tmp_path / "a.rmc").returncode == 0
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "roimc.cli", "info", tmp_path / "a.rmc"],
                                stdout=write, stderr=subprocess.PIPE, text=True, env=ENV,
                                timeout=120)
    finally:
        os.close(write)
    assert result.stderr == "" and result.returncode == 1
