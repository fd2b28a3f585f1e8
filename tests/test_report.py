"""The visual comparison report: figures, layout, ROI split, the `compare` command."""
import math

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import roimc
from roimc import report
from roimc.errors import InputError
from roimc.report import colormap, compare, compare_command, layout_size, metrics


def save_png(path, array):
    Image.fromarray(array).save(path)
    return path


def save_rmc(path, array, **options):
    path.write_bytes(roimc.encode(array, **options))
    return path


# ----------------------------------------------------------------------------- metrics

def test_identical_is_exact(rng):
    a = rng.integers(0, 4096, size=(20, 30), dtype=np.uint16)
    m = metrics(a, a.copy())
    assert m["psnr"] == math.inf and m["exact"] is True and m["max_error"] == 0
    assert report.format_psnr(m["psnr"]) == "exact"
    assert m["peak"] == int(a.max())


def test_known_error():
    a = np.full((10, 10), 100, np.uint8)
    a[0, 0] = 200                       # peak 200
    b = a.copy()
    b[5, 5] += 10                       # one error of 10 in 100 samples: MSE 1
    m = metrics(a, b)
    assert m["max_error"] == 10 and not m["exact"]
    assert m["psnr"] == pytest.approx(10 * math.log10(200 ** 2 / 1.0))
    assert report.format_psnr(m["psnr"]) == "46.02 dB"


def test_roi_and_background_split():
    a = np.full((10, 10), 100, np.uint8)
    a[0, 0] = 200
    b = a.copy()
    b[7, 3] -= 10                       # error in the background only
    b[8, 8] += 4
    mask = np.zeros((10, 10), np.uint8)
    mask[:5] = 255                      # top half is the ROI
    m = metrics(a, b, mask)
    assert m["roi_pixels"] == 50
    assert m["psnr_roi"] == math.inf and m["max_error_roi"] == 0
    assert m["max_error_background"] == 10
    assert m["psnr_background"] == pytest.approx(10 * math.log10(200 ** 2 / (116 / 50)))
    assert m["psnr"] == pytest.approx(10 * math.log10(200 ** 2 / (116 / 100)))
    # an empty region has no figure
    m = metrics(a, b, np.zeros((10, 10), bool))
    assert m["psnr_roi"] is None and m["max_error_roi"] is None
    assert report.format_psnr(None) == "n/a"


def test_mask_broadcast_over_channels_and_frames(rng):
    a = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    b = a.copy()
    b[1, 2, 0] ^= 1
    mask = np.zeros((6, 8), bool)
    mask[1, 2] = True
    m = metrics(a, b, mask)
    assert m["roi_pixels"] == 3 and m["max_error_roi"] == 1 and m["psnr_background"] == math.inf
    frames = rng.integers(0, 256, size=(2, 6, 8), dtype=np.uint8)
    m = metrics(frames, frames, mask)
    assert m["roi_pixels"] == 2
    with pytest.raises(InputError, match="mask"):
        metrics(a, b, np.zeros((5, 5), bool))
    with pytest.raises(InputError, match="decodes"):
        metrics(a, a[:3])


def test_colormap_ends():
    c = colormap(np.array([0.0, 0.5, 1.0, 2.0]))
    assert c.dtype == np.uint8 and c.shape == (4, 3)
    assert tuple(c[0]) == (0, 0, 0) and tuple(c[2]) == tuple(c[3])
    assert c[2].sum() > c[1].sum() > 0


# ----------------------------------------------------------------------------- layout

def test_layout_size_by_hand():
    # 64 x 64 is enlarged 4x: panels 256 x 256
    assert report.panel_size(64, 64) == (256, 256)
    assert layout_size(64, 64) == (12 + 3 * (256 + 12),
                                   12 + 20 + 256 + 6 + 12 + 18 + 5 * 18 + 12)
    # 1100 x 600 is reduced 3x: panels 200 x 367
    assert report.panel_size(1100, 600) == (200, 367)
    # narrow images keep a minimal column width for the titles
    assert layout_size(300, 150)[0] == 12 + 3 * (200 + 12)


def test_report_png_layout_heat_map_and_outline(tmp_path):
    a = np.full((64, 64), 100, np.uint8)
    a[0, 0] = 200
    b = a.copy()
    b[10, 20] += 7
    mask = np.zeros((64, 64), np.uint8)
    mask[30:50, 30:50] = 255
    orig = save_png(tmp_path / "o.png", a)
    rmc = save_rmc(tmp_path / "d.rmc", b)
    roi = save_png(tmp_path / "roi.png", mask)
    figures = compare(orig, rmc, tmp_path / "r.png", roi_mask_path=roi)
    assert figures["max_error"] == 7 and figures["max_error_roi"] == 0
    assert figures["psnr_roi"] == math.inf
    assert figures["psnr_background"] == pytest.approx(10 * math.log10(200 ** 2 / (49 / 3696)))
    assert figures["bpp"] == pytest.approx(rmc.stat().st_size * 8 / 4096)
    with Image.open(tmp_path / "r.png") as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert im.size == layout_size(64, 64)
        px = np.asarray(im)
    top, cell, scale = 12 + 20, 256 + 12, 4
    # heat map (third panel): the erroneous pixel at the top of the scale, the rest black
    x3 = 12 + 2 * cell
    assert tuple(px[top + 10 * scale + 1, x3 + 20 * scale + 1]) == tuple(colormap(1.0))
    assert tuple(px[top + 5, x3 + 5]) == (0, 0, 0)
    # ROI outline in green on the original and the decoded panels, not inside the ROI
    for x0 in (12, 12 + cell):
        assert tuple(px[top + 30 * scale, x0 + 40 * scale]) == report.OUTLINE
        assert tuple(px[top + 40 * scale, x0 + 40 * scale]) == (100, 100, 100)


def test_report_16bit_rgb_and_frames(tmp_path, rng):
    a16 = rng.integers(1000, 3000, size=(40, 50), dtype=np.uint16)
    f = compare(save_png(tmp_path / "a16.png", a16), save_rmc(tmp_path / "a16.rmc", a16),
                tmp_path / "r16.png")
    assert f["exact"] and f["psnr"] == math.inf and f["dtype"] == "uint16"
    assert Image.open(tmp_path / "r16.png").size == layout_size(40, 50)
    rgb = rng.integers(0, 256, size=(30, 20, 3), dtype=np.uint8)
    f = compare(save_png(tmp_path / "c.png", rgb), save_rmc(tmp_path / "c.rmc", rgb),
                tmp_path / "rc.png")
    assert f["exact"] and f["shape"] == [30, 20, 3]
    frames = rng.integers(0, 256, size=(3, 16, 24), dtype=np.uint8)
    np.save(tmp_path / "f.npy", frames)
    wrong = frames.copy()
    wrong[2, 0, 0] ^= 0x80
    f = compare(tmp_path / "f.npy", save_rmc(tmp_path / "f.rmc", wrong), tmp_path / "rf.png")
    assert f["max_error"] == 128
    assert f["bpp"] == pytest.approx((tmp_path / "f.rmc").stat().st_size * 8 / (3 * 16 * 24))
    assert Image.open(tmp_path / "rf.png").size == layout_size(16, 24)


def test_report_errors(tmp_path, rng):
    a = rng.integers(0, 256, size=(12, 10), dtype=np.uint8)
    orig = save_png(tmp_path / "o.png", a)
    with pytest.raises(InputError, match="decodes to"):
        compare(orig, save_rmc(tmp_path / "x.rmc", a[:6]), tmp_path / "r.png")
    with pytest.raises(InputError, match="mask"):
        compare(orig, save_rmc(tmp_path / "y.rmc", a), tmp_path / "r.png",
                roi_mask_path=save_png(tmp_path / "m.png", np.zeros((5, 5), np.uint8)))
    assert not (tmp_path / "r.png").exists()


# ----------------------------------------------------------------------------- command

def test_command(tmp_path, rng):
    a = rng.integers(0, 256, size=(20, 24), dtype=np.uint8)
    mask = np.zeros_like(a)
    mask[5:10, 5:10] = 255
    orig = save_png(tmp_path / "o.png", a)
    rmc = save_rmc(tmp_path / "o.rmc", a)
    roi = save_png(tmp_path / "roi.png", mask)
    out = tmp_path / "report.png"
    runner = CliRunner()
    r = runner.invoke(compare_command, [str(orig), str(rmc), "--out", str(out), "--roi", str(roi)])
    assert r.exit_code == 0, r.output
    assert "PSNR exact (ROI exact, background exact), max |error| 0" in r.stdout
    assert Image.open(out).size == layout_size(20, 24)
    # an existing report is kept unless --force
    r = runner.invoke(compare_command, [str(orig), str(rmc), "--out", str(out)])
    assert r.exit_code == 1 and "exists (use --force" in r.stderr
    r = runner.invoke(compare_command, [str(orig), str(rmc), "--out", str(out), "-f"])
    assert r.exit_code == 0


@pytest.mark.parametrize("case", ["missing-original", "missing-rmc", "not-rmc", "shape",
                                  "bad-out", "bad-mask"])
def test_command_errors_are_one_line(tmp_path, rng, case):
    a = rng.integers(0, 256, size=(20, 24), dtype=np.uint8)
    orig = str(save_png(tmp_path / "o.png", a))
    rmc = str(save_rmc(tmp_path / "o.rmc", a))
    out = str(tmp_path / "report.png")
    extra = []
    if case == "missing-original":
        orig = str(tmp_path / "nope.png")
    elif case == "missing-rmc":
        rmc = str(tmp_path / "nope.rmc")
    elif case == "not-rmc":
        rmc = orig
    elif case == "shape":
        rmc = str(save_rmc(tmp_path / "s.rmc", a[:10]))
    elif case == "bad-out":
        out = str(tmp_path / "report.jpg")
    elif case == "bad-mask":
        (tmp_path / "m.png").write_bytes(b"not a png")
        extra = ["--roi", str(tmp_path / "m.png")]
    r = CliRunner().invoke(compare_command, [orig, rmc, "--out", out] + extra)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roimc: error: "), r.stderr
    assert "Traceback" not in r.output
    assert not (tmp_path / "report.png").exists()
