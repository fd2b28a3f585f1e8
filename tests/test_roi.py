"""Automatic ROI detection (roimc.roi): masks are binary, full-size and deterministic for any
shape, depth and layout; the classic method needs no torch; the shipped U-Net loads, its hash
is checked, and both methods cover the corpus masks; the `roi` and `train-roi` commands."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roimc import io as rio
from roimc.errors import InputError, MissingModelError
from roimc.roi import detect_roi, prep

from conftest import CORPUS

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

METHODS = ["classic", pytest.param("unet", marks=pytest.mark.skipif(
    not HAVE_TORCH, reason="torch is not installed"))]
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")


def disk_image(h=200, w=240, bits=12, inverted=False, seed=0):
    """A bright textured disk (the anatomy) on a dark noisy background, and the disk."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    disk = (y - h * 0.5) ** 2 + (x - w * 0.45) ** 2 < (min(h, w) * 0.3) ** 2
    top = (1 << bits) - 1
    img = 0.05 * top + 0.01 * top * rng.standard_normal((h, w))
    img[disk] = 0.6 * top + 0.15 * top * np.sin(x[disk] / 3.0)
    if inverted:
        img = top - img
    return np.clip(np.round(img), 0, top).astype(np.uint16 if bits > 8 else np.uint8), disk


def check_mask(mask, shape):
    assert mask.shape == shape
    assert mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}


# --- shapes, depths, layouts -----------------------------------------------------------------

SHAPES = [(1, 1), (1, 9), (9, 1), (2, 3), (13, 17), (31, 257), (257, 31), (127, 131)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES)
def test_any_shape_binary_full_size_deterministic(method, shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 4096, size=shape).astype(np.uint16)
    m1 = detect_roi(a, method=method, device="cpu")
    check_mask(m1, shape)
    assert np.array_equal(m1, detect_roi(a.copy(), method=method, device="cpu"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bits", [1, 2, 5, 8, 10, 12, 16])
def test_bit_depths_cover_the_anatomy(method, bits):
    img, disk = disk_image(bits=max(bits, 8))
    if bits < 8:          # few levels: the disk at the top level, the background at 0
        img = np.where(disk, (1 << bits) - 1, 0).astype(np.uint8)
    m = detect_roi(img, method=method, device="cpu")
    check_mask(m, img.shape)
    assert m[disk].all()
    assert m.sum() < 2.0 * disk.sum()


@pytest.mark.parametrize("method", METHODS)
def test_inverted_image(method):
    img, disk = disk_image(inverted=True)
    m = detect_roi(img, method=method, device="cpu")
    assert m[disk].all()
    assert m.sum() < 2.0 * disk.sum()


@pytest.mark.parametrize("method", METHODS)
def test_rgb_rgba_frames_and_dtypes(method):
    img, disk = disk_image(bits=8)
    rgb = np.stack([img, img // 2, img // 3], axis=-1)
    m = detect_roi(rgb, method=method, device="cpu")
    check_mask(m, img.shape)
    assert m[disk].all()
    rgba = np.concatenate([rgb, np.full(img.shape + (1,), 255, np.uint8)], axis=-1)
    assert np.array_equal(detect_roi(rgba, method=method, device="cpu"), m)
    for a in (img.astype(np.float32), img.astype(np.int16) - 100, img > 60):
        check_mask(detect_roi(a, method=method, device="cpu"), img.shape)
    # a stack of frames gets the union of the frames' masks
    shifted = np.roll(img, 60, axis=1)
    stack = np.stack([img, shifted])
    ms = detect_roi(stack, method=method, device="cpu")
    check_mask(ms, img.shape)
    assert ms[disk].all() and ms[np.roll(disk, 60, axis=1)].all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [0, 1, 255, 4095, 65535])
def test_constant_image_is_all_roi(method, value):
    a = np.full((40, 50), value, np.uint16)
    m = detect_roi(a, method=method, device="cpu")
    check_mask(m, a.shape)
    assert m.all()


def test_classic_keeps_burnt_in_markers():
    img, disk = disk_image(bits=8)
    img[5:15, 200:230] = 250          # a marker in the background corner
    m = detect_roi(img, method="classic")
    assert m[5:15, 200:230].all()


def test_large_image_is_reduced_and_back_to_full_size():
    img, disk = disk_image(h=1031, w=2053, bits=12)
    m = detect_roi(img, method="classic")
    check_mask(m, img.shape)
    assert m[disk].all()


def test_bad_inputs():
    with pytest.raises(InputError):
        detect_roi(np.zeros((4, 4)), method="nope")
    with pytest.raises(InputError):
        detect_roi(np.zeros((2, 3, 4, 5, 6), np.uint8), method="classic")
    with pytest.raises(InputError):
        detect_roi(np.array([[1.0, np.nan]]), method="classic")
    with pytest.raises(InputError):
        detect_roi(np.zeros((0, 5), np.uint8), method="classic")
    with pytest.raises(InputError):
        detect_roi(np.array([["a"]]), method="classic")


# --- Felzenszwalb-Huttenlocher segmentation and the training labels ---------------------------

def test_felzenszwalb_two_regions_deterministic():
    from roimc.roi.graph import felzenszwalb
    rng = np.random.default_rng(1)
    img = np.zeros((40, 60))
    img[:, 30:] = 1.0
    img += 0.01 * rng.standard_normal(img.shape)
    labels = felzenszwalb(img)
    assert labels.shape == img.shape and labels.dtype == np.int32
    assert labels.max() + 1 >= 2
    assert np.array_equal(labels, felzenszwalb(img.copy()))
    # numbered 0.. in raster order of first pixels, no segment straddles the step
    assert labels[0, 0] == 0
    assert set(np.unique(labels[:, :28])).isdisjoint(np.unique(labels[:, 32:]))
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (30, 30)])
def test_felzenszwalb_constant_and_tiny_images(shape):
    from roimc.roi.graph import felzenszwalb
    labels = felzenszwalb(np.full(shape, 0.3))
    assert labels.shape == shape and labels.dtype == np.int32
    assert (labels == 0).all()                          # a constant image is one segment
    rng = np.random.default_rng(0)
    noisy = felzenszwalb(rng.random(shape), min_size=1)
    assert noisy.shape == shape and noisy.min() == 0


def test_felzenszwalb_merge_threshold_and_min_size():
    from roimc.roi.graph import felzenszwalb
    img = np.zeros((30, 30))
    img[10:20, 10:20] = 1.0
    # a small k keeps the square apart; min_size larger than the square merges it away
    assert felzenszwalb(img, k=0.1, min_size=5, sigma=0).max() == 1
    assert felzenszwalb(img, k=0.1, min_size=200, sigma=0).max() == 0
    # a k far above the step joins everything in the first pass
    assert felzenszwalb(img, k=1e4, min_size=1, sigma=0).max() == 0
    with pytest.raises(ValueError):
        felzenszwalb(np.zeros((0, 3)))


@pytest.mark.parametrize("labels", ["graph", "otsu"])
def test_training_labels_binary_full_size_cover_the_disk(labels):
    from roimc.roi.classic import classic_label
    img, disk = disk_image()
    small = img.astype(np.float32)
    lab = classic_label(small, labels)
    assert lab.shape == img.shape and lab.dtype == np.bool_
    assert lab[disk].all() and lab.sum() < 1.3 * disk.sum()
    assert np.array_equal(lab, classic_label(small.copy(), labels))
    assert classic_label(np.full((20, 20), 7.0), labels).all()
    with pytest.raises(ValueError):
        classic_label(small, "nope")


def test_graph_label_takes_in_dark_textured_field():
    """A dark speckled field (an ultrasound sector) open to the image's lower edge, with one
    bright structure, on a dark noisy background: the Otsu foreground keeps little more than
    the structure, the graph label the whole textured field and nothing far from it."""
    from scipy import ndimage as ndi
    from roimc.roi.classic import classic_label
    rng = np.random.default_rng(3)
    h, w = 120, 160
    y, x = np.mgrid[0:h, 0:w]
    field = (x > 30) & (x < 130) & (y > 10)
    img = (0.02 + 0.005 * rng.standard_normal((h, w))).astype(np.float32)
    img[field] = np.abs(0.06 + 0.04 * rng.standard_normal(field.sum()))
    img[30:40, 60:100] = 0.9
    otsu = classic_label(img, "otsu")
    graph = classic_label(img, "graph")
    assert (graph >= otsu).all()
    assert otsu[field].mean() < 0.2
    assert graph[field].mean() > 0.99
    assert not graph[~ndi.binary_dilation(field, iterations=2)].any()


def test_block_downscale_and_upscale_round_trip():
    a = np.arange(7 * 11, dtype=np.float32).reshape(7, 11)
    k = 3
    small = prep.downscale(a, k)
    assert small.shape == (3, 4)
    assert prep.upscale(small > -1, k, a.shape).shape == a.shape


# --- the shipped U-Net -----------------------------------------------------------------------

@needs_torch
def test_shipped_weights_load_and_hash_matches():
    from roimc.registry import sha256_of
    from roimc.roi import models, unet
    entry = models.MODELS[unet.DEFAULT_MODEL]
    path = models.resolve(unet.DEFAULT_MODEL)
    assert sha256_of(path) == entry["sha256"]
    assert os.path.getsize(path) < 4 << 20
    net = unet.load(unet.DEFAULT_MODEL, "cpu")
    assert sum(p.numel() for p in net.parameters()) < 1_000_000


@needs_torch
def test_default_model_is_v2_and_v1_still_loads():
    from roimc.roi import models, unet
    assert unet.DEFAULT_MODEL == "roi-unet-v2"
    for model_id in models.MODELS:
        models.resolve(model_id)
    img, disk = disk_image()
    for model_id in models.MODELS:
        m = detect_roi(img, method="unet", device="cpu", model_id=model_id)
        assert m[disk].all()


def test_hash_mismatch_and_unknown_model_are_errors(monkeypatch, tmp_path):
    from roimc.roi import models
    monkeypatch.setitem(models.MODELS, "roi-unet-v1",
                        dict(models.MODELS["roi-unet-v1"], sha256="0" * 64))
    with pytest.raises(MissingModelError, match="roi-unet-v1"):
        models.resolve("roi-unet-v1")
    with pytest.raises(MissingModelError, match="unknown"):
        models.resolve("roi-unet-v0")
    monkeypatch.setattr(models, "WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(MissingModelError, match="not installed"):
        models.resolve("roi-unet-v1")


def test_unet_without_torch_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingModelError, match=r"pip install 'roimc\[neural\]'"):
        detect_roi(np.zeros((8, 8), np.uint8), method="unet")
    check_mask(detect_roi(np.zeros((8, 8), np.uint8), method="classic"), (8, 8))


@needs_torch
def test_cuda_request_without_cuda(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(InputError, match="CUDA"):
        detect_roi(np.zeros((8, 8), np.uint8), method="unet", device="cuda")
    rio.write_image(tmp_path / "in.png", disk_image()[0])
    r = cli("roi", tmp_path / "in.png", tmp_path / "m.png", "--device", "cuda")
    assert_one_line_error(r)
    assert "CUDA" in r.stderr and not (tmp_path / "m.png").exists()
    r = cli("roi", tmp_path / "in.png", tmp_path / "m.png", "--device", "cpu")
    assert r.returncode == 0, r.stderr


@needs_torch
def test_unet_runs_on_cuda_when_present():
    import torch
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    img, disk = disk_image()
    m = detect_roi(img, method="unet", device="cuda")
    assert m[disk].all()
    assert detect_roi(img, method="unet", device="auto").sum() == m.sum()


def masked_corpus_images():
    if not CORPUS.is_dir():
        return []
    return sorted(p for split in ("train", "val") for p in (CORPUS / split).glob("*.roi.png"))


@pytest.mark.parametrize("method", METHODS)
def test_recall_on_corpus_masks(method):
    masks = masked_corpus_images()
    if not masks:
        pytest.skip(f"corpus not found at {CORPUS}")
    for mp in masks:
        img = rio.read_image(str(mp).replace(".roi.png", ".png"))
        truth = rio.read_image(str(mp)) > 0
        m = detect_roi(img, method=method, device="cpu").astype(bool)
        recall = (m & truth).sum() / truth.sum()
        assert recall >= 0.99, (mp.name, recall)


@needs_torch
def test_shipped_unet_alone_covers_corpus_masks():
    """The network by itself (without the classic safety net) reaches the recall target."""
    masks = masked_corpus_images()
    if not masks:
        pytest.skip(f"corpus not found at {CORPUS}")
    from roimc.roi import unet
    for mp in masks:
        img = rio.read_image(str(mp).replace(".roi.png", ".png")).astype(np.float32)
        k = prep.block_factor(img.shape)
        small = unet.unet_small([prep.downscale(img, k)], device="cpu", safety_net=False)[0]
        m = prep.upscale(small, k, img.shape)
        truth = rio.read_image(str(mp)) > 0
        assert (m & truth).sum() / truth.sum() >= 0.99, mp.name


# --- near-lossless --roi auto ---------------------------------------------------------------

def test_encode_roi_auto_stores_the_detected_mask(tmp_path):
    import roimc
    img, disk = disk_image(h=96, w=120)
    data = roimc.encode(img, mode="near-lossless", max_error=3, roi="auto")
    mask = roimc.read_mask(data)
    expected = detect_roi(img, method="unet" if HAVE_TORCH else "classic", device="cpu")
    assert np.array_equal(np.asarray(mask).astype(bool), expected.astype(bool))
    out = roimc.decode(data)
    inside = expected.astype(bool)
    assert np.array_equal(out[inside], img[inside])            # the ROI is exact
    assert np.abs(out.astype(int) - img.astype(int)).max() <= 3
    src = tmp_path / "in.png"
    rio.write_image(src, img)
    r = cli("encode", src, tmp_path / "o.rmc", "--mode", "near-lossless", "--max-error", "3",
            "--roi", "auto")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.asarray(roimc.read_mask((tmp_path / "o.rmc").read_bytes())),
                          np.asarray(mask))


# --- command line ----------------------------------------------------------------------------

def cli(*args):
    return subprocess.run([sys.executable, "-m", "roimc.cli", *map(str, args)],
                          capture_output=True, text=True, env=ENV, timeout=300)


def assert_one_line_error(result):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roimc: error:"), result.stderr


def test_cli_roi_round_trip(tmp_path):
    img, disk = disk_image()
    src = tmp_path / "in.png"
    rio.write_image(src, img)
    method = "unet" if HAVE_TORCH else "classic"
    r = cli("roi", src, tmp_path / "mask.png", "--overlay", tmp_path / "ov.png",
            "--method", method)
    assert r.returncode == 0, r.stderr
    mask = rio.read_image(tmp_path / "mask.png")
    assert mask.shape == img.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255} and (mask[disk] == 255).all()
    assert np.array_equal(mask // 255, detect_roi(img, method=method, device="cpu"))
    ov = rio.read_image(tmp_path / "ov.png")
    assert ov.shape == img.shape + (3,)
    # an existing output is kept without -f
    before = (tmp_path / "mask.png").read_bytes()
    assert_one_line_error(cli("roi", src, tmp_path / "mask.png", "--method", "classic"))
    assert (tmp_path / "mask.png").read_bytes() == before
    r = cli("roi", src, tmp_path / "mask.npy", "--method", "classic", "-f")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "mask.npy").shape == img.shape


def test_cli_roi_errors(tmp_path):
    assert_one_line_error(cli("roi", tmp_path / "missing.png", tmp_path / "m.png"))
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    assert_one_line_error(cli("roi", tmp_path / "bad.png", tmp_path / "m.png"))
    rio.write_image(tmp_path / "in.png", disk_image()[0])
    assert_one_line_error(cli("roi", tmp_path / "in.png", tmp_path / "m.rmc"))
    assert_one_line_error(cli("roi", tmp_path / "in.png", tmp_path / "m.jpg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "in.png"]


def test_cli_roi_classic_does_not_import_torch(tmp_path):
    rio.write_image(tmp_path / "in.png", disk_image()[0])
    code = ("import sys, runpy; sys.argv = ['roimc', 'roi', sys.argv[1], sys.argv[2], "
            "'--method', 'classic']\n"
            "try:\n    runpy.run_module('roimc.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "in.png"),
                        str(tmp_path / "m.png")], capture_output=True, text=True, env=ENV,
                       timeout=120)
    assert r.returncode == 0, r.stderr


@needs_torch
def test_cli_train_roi_tiny_run(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        img, disk = disk_image(h=64, w=80, seed=i)
        rio.write_image(data / f"img_{i}.png", img)
    rio.write_image(data / "img_0.roi.png", (disk * 255).astype(np.uint8))
    out = tmp_path / "w.pt"
    r = cli("train-roi", "--data", data, "--out", out, "--steps", "2", "--batch", "2",
            "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert out.exists() and "sha256" in r.stdout
    import torch
    state = torch.load(out, weights_only=True)
    assert state["config"]["steps"] == 2
