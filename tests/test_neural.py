"""Lossy and hybrid modes: shapes, bit depths and layouts come back; the 8 qualities give 8
distinct, increasing rates; hybrid ROIs are exact (or within their bound) on every sample and
never depend on the network's output; decoder ids are resolved and checked; damaged LATN and
DCID chunks are refused; the latent streams round-trip; tiled inference matches one pass;
training runs on the CPU."""
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import roimc  # noqa: E402
from roimc import container, core  # noqa: E402
from roimc.container import DCID, DSUM, HEAD, LATN, MASK, TILE  # noqa: E402
from roimc.errors import (CorruptDataError, InputError, MissingModelError,  # noqa: E402
                          RmcError, UnsupportedError)
from roimc.neural import codec, latent  # noqa: E402
from roimc.roi_mask import (METHOD_CONTEXT, METHOD_RUNS_BROTLI, mask_method,  # noqa: E402
                            pack_mask, unpack_mask)
from roimc.neural.models import DEFAULT_MODEL, MODELS  # noqa: E402

from test_latent import method_0_payload, method_2_payload  # noqa: E402
from test_near_lossless import make_mask, sample_bounds  # noqa: E402
from test_roundtrip import PRIMES, make_values  # noqa: E402

FEW = settings(max_examples=25, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SAMPLE = os.path.join(os.path.dirname(roimc.__file__), "samples", "ct_small.png")


def psnr(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mse = np.mean((a - b) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(max(a.max(), 1) ** 2 / mse)


def chunks_of(data):
    return [(c.ctype, c.payload) for c in container.parse(data)]


def rebuild(chunks):
    return container.pack(chunks)


@pytest.fixture(scope="module")
def ct():
    from roimc.io import read_image
    return read_image(SAMPLE)


@pytest.fixture(scope="module")
def smooth16():
    yy, xx = np.mgrid[0:70, 0:90]
    img = 1800 + 900 * np.sin(yy / 9.0) * np.cos(xx / 13.0)
    img[20:50, 30:60] += 600
    return img.astype(np.uint16)


# ------------------------------------------------------------------ lossy round trips

@pytest.mark.parametrize("shape,dtype,bits", [
    ((1, 1), np.uint8, 8), ((1, 37), np.uint8, 8), ((37, 1), np.uint16, 12),
    ((13, 7), np.uint8, 3), ((29, 31), np.uint16, 16), ((64, 48, 3), np.uint8, 8),
    ((3, 20, 24), np.uint16, 10), ((17, 19, 4), np.uint8, 8), ((11, 13, 2), np.uint16, 9),
    ((12, 12), np.int16, 12), ((9, 8), np.uint8, 1)])
def test_lossy_keeps_shape_dtype_and_range(shape, dtype, bits):
    values = make_values("smooth", shape, bits, 7)
    if np.dtype(dtype).kind == "i":
        values = values - (1 << (bits - 1))
    a = values.astype(dtype)
    data = roimc.encode(a, mode="lossy", neural_only=True, quality=5, bits=bits)
    out = roimc.decode(data)
    assert out.shape == a.shape and out.dtype == a.dtype
    assert out.min() >= a.min() and out.max() <= a.max()   # within the frame's range
    info = roimc.info(data)
    payload = next(c.payload for c in container.parse(data) if c.ctype == LATN)
    latent_method = latent.method(payload)
    assert info["mode"] == "lossy" and latent_method in (latent.METHOD_LATENT_DC,
                                                         latent.METHOD_LATENT, latent.METHOD_BROTLI)
    filt = [c for c in container.parse(data) if c.ctype == container.FILT]
    version = (1, 12) if filt else latent.VERSIONS[latent_method]
    assert info["version"] == "%d.%d" % version
    assert info["model"] == DEFAULT_MODEL and info["quality"] == 5
    assert "dsum" not in info["chunks"]


@pytest.mark.parametrize("neural_only", [True, False])
@pytest.mark.parametrize("value", [0, 1, 200, 255])
def test_lossy_constant_image_is_exact(value, neural_only):
    a = np.full((33, 21), value, np.uint8)
    data = roimc.encode(a, mode="lossy", neural_only=neural_only, quality=1)
    assert np.array_equal(roimc.decode(data), a)


def test_lossy_qualities_give_eight_increasing_rates(ct):
    sizes, quality = [], []
    for q in range(1, 9):
        data = roimc.encode(ct, mode="lossy", neural_only=True, quality=q)
        sizes.append(len(data))
        quality.append(psnr(ct, roimc.decode(data)))
    assert sizes == sorted(sizes) and len(set(sizes)) == 8, sizes
    assert quality[-1] > quality[0] + 6, quality
    assert quality[-1] > 38, quality


def test_lossy_reconstruction_is_close(smooth16):
    out = roimc.decode(roimc.encode(smooth16, mode="lossy", neural_only=True, quality=8))
    assert psnr(smooth16, out) > 30


def test_lossy_roi_spends_the_bits_inside(ct):
    h, w = ct.shape
    mask = np.zeros(ct.shape, bool)
    mask[h // 4:h // 2, w // 3:3 * w // 4] = True
    plain_data = roimc.encode(ct, mode="lossy", neural_only=True, quality=5)
    roi_data = roimc.encode(ct, mode="lossy", neural_only=True, quality=5, roi=mask)
    plain, weighted = roimc.decode(plain_data), roimc.decode(roi_data)
    assert len(roi_data) < 0.9 * len(plain_data)
    assert psnr(ct[mask], weighted[mask]) > psnr(ct[mask], plain[mask]) - 0.3
    assert psnr(ct[~mask], weighted[~mask]) < psnr(ct[~mask], plain[~mask])


def _latn_qualities(data):
    payload = next(c.payload for c in container.parse(data) if c.ctype == LATN)
    return list(payload[19:19 + roimc.info(data)["channels"]])


@pytest.mark.parametrize("window", [None, 16])
def test_lossy_colour_chroma_qualities_are_chosen_per_image(monkeypatch, window):
    """Luma at the asked quality, each chroma plane at Q - 2 ... Q + 1 as its rate and error
    decide: flat chroma (a grey image stored as RGB) and busy chroma get different offsets
    from the luma quality, which a fixed rule would not give. window: the choice measured on
    a central 16 x 16 window (as larger images are on CHOICE_SIDE), the file still whole."""
    from roimc.neural import codec
    if window:
        monkeypatch.setattr(codec, "CHOICE_SIDE", window)
    grey = make_values("smooth", (40, 48), 8, 3).astype(np.int32)
    rng = np.random.default_rng(1)
    busy = np.stack([grey + rng.integers(-40, 41, grey.shape), grey,
                     grey + rng.integers(-40, 41, grey.shape)], -1).clip(0, 255)
    offsets = set()
    for quality in (1, 5, 8):
        for a in (np.stack([grey] * 3, -1), busy):
            a = a.astype(np.uint8)
            data = roimc.encode(a, mode="lossy", neural_only=True, quality=quality)
            qs = _latn_qualities(data)
            assert qs[0] == quality and roimc.info(data)["quality"] == quality
            assert all(max(1, quality - 2) <= q <= min(8, quality + 1) for q in qs[1:]), qs
            assert roimc.decode(data).shape == a.shape
            offsets.update(q - quality for q in qs[1:])
    assert len(offsets) >= 2, offsets


def test_lossy_frames_are_coded_one_by_one():
    a = np.stack([make_values("smooth", (24, 40), 8, s) for s in range(3)]).astype(np.uint8)
    data = roimc.encode(a, mode="lossy", neural_only=True, quality=6)
    assert roimc.info(data)["chunks"]["LATN"]["count"] == 3
    out = roimc.decode(data)
    assert out.shape == a.shape
    for f in range(3):   # each frame is its own image, not its neighbour's
        assert psnr(a[f], out[f]) > psnr(a[f], out[(f + 1) % 3])


# ------------------------------------------------------------------ hybrid

@FEW
@given(h=st.sampled_from(PRIMES[:12] + [40]), w=st.sampled_from(PRIMES[:12] + [33]),
       bits=st.integers(1, 16), colour=st.booleans(),
       pattern=st.sampled_from(["noise", "constant", "smooth", "extremes"]),
       mask_kind=st.sampled_from(["random", "blob", "one", "rects", "full", "empty"]),
       m=st.integers(0, 3), neural_only=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_hybrid_roi_within_bound_on_every_sample(h, w, bits, colour, pattern, mask_kind, m,
                                                 neural_only,
                                                 seed):
    shape = (h, w, 3) if colour else (h, w)
    a = make_values(pattern, shape, bits, seed).astype(np.uint8 if bits <= 8 else np.uint16)
    mask = make_mask(mask_kind, h, w, seed)
    data = roimc.encode(a, mode="hybrid", neural_only=neural_only, roi=mask, roi_max_error=m,
                        quality=4, bits=bits)
    out = roimc.decode(data)
    assert out.shape == a.shape and out.dtype == a.dtype
    diff = np.abs(out.astype(np.int64) - a)
    inside = diff[mask]
    assert inside.size == 0 or inside.max() <= min(m, (1 << bits) - 1)
    if roimc.info(data)["mode"] != "lossless":   # a lossless file has no mask to store
        assert np.array_equal(roimc.read_mask(data), mask)


def test_hybrid_roi_never_reads_the_network(ct, monkeypatch):
    """The exact layer decodes bit-exactly whatever the synthesis returns (design note 1)."""
    mask = ct > np.percentile(ct, 60)
    data = roimc.encode(ct, mode="hybrid", neural_only=True, roi=mask, quality=2)
    good = roimc.decode(data)
    assert np.array_equal(good[mask], ct[mask])
    rng = np.random.default_rng(1)
    monkeypatch.setattr(codec, "synthesise",
                        lambda net, lat, q, h, w, dev: rng.random((h, w), np.float32))
    other = roimc.decode(data)
    assert np.array_equal(other[mask], ct[mask])
    assert not np.array_equal(other[~mask], good[~mask])


def test_hybrid_background_is_from_the_network(ct):
    h, w = ct.shape
    mask = np.zeros(ct.shape, bool)
    mask[h // 4:3 * h // 4, w // 4:3 * w // 4] = True
    data = roimc.encode(ct, mode="hybrid", neural_only=True, roi=mask, quality=8)
    out = roimc.decode(data)
    assert np.array_equal(out[mask], ct[mask])
    assert psnr(ct[~mask], out[~mask]) > 30
    info = roimc.info(data)
    assert info["mode"] == "hybrid" and info["roi_max_error"] == 0
    assert info["roi"]["pixels"] == mask.sum()


def test_hybrid_defaults_to_the_automatic_roi(ct):
    data = roimc.encode(ct, mode="hybrid", neural_only=True)
    mask = roimc.read_mask(data)
    from roimc.roi import auto_roi
    assert np.array_equal(mask, auto_roi(ct) > 0)
    assert np.array_equal(roimc.decode(data)[mask], ct[mask])
    assert roimc.info(data)["quality"] == roimc.api.DEFAULT_QUALITY


def test_hybrid_is_smaller_than_lossless_for_a_small_roi(ct):
    h, w = ct.shape
    mask = np.zeros(ct.shape, bool)
    mask[h // 3:h // 2, w // 3:w // 2] = True
    hybrid = roimc.encode(ct, mode="hybrid", neural_only=True, roi=mask, quality=4)
    assert len(hybrid) < 0.5 * len(roimc.encode(ct))


# ------------------------------------------------------------------ the bounded candidate

def mse(a, b, where=None):
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(np.mean(d ** 2 if where is None else d[where] ** 2))


def expand(mask, shape):
    """An (H, W) mask broadcast to an image of `shape` ((H, W), (H, W, C) or (F, H, W))."""
    if len(shape) == 2 or shape[-2:] == mask.shape:
        return np.broadcast_to(mask, shape)
    return np.broadcast_to(mask[..., None], shape)


def check_bounded_choice(a, data, neural, regions, **options):
    """`data` is no larger than the lossless file (with `options`), and either the network's
    file `neural` unchanged, or a smaller lossless or near-lossless file whose MSE is at most
    ERROR_SLACK times the network's in each region and whose every sample is within its
    bounds."""
    assert len(data) <= len(roimc.encode(a, **options))
    if data == neural:
        assert roimc.info(data)["mode"] in ("lossy", "hybrid")
        return "network"
    assert len(data) < len(neural)
    info, out, net = roimc.info(data), roimc.decode(data), roimc.decode(neural)
    for where in regions:
        if where is None or where.any():
            assert mse(a, out, where) <= roimc.api.ERROR_SLACK * mse(a, net, where)
    diff = np.abs(out.astype(np.int64) - a)
    if info["mode"] == "lossless":
        assert not diff.any()
        return "lossless"
    assert info["mode"] == "near-lossless"
    assert (diff <= expand(sample_bounds(info, roimc.read_mask(data)), a.shape)).all()
    return "bounded"


def test_lossy_keeps_the_smaller_of_network_and_bounded_coding(ct, smooth16):
    kinds = set()
    blocks = np.kron(np.arange(12).reshape(3, 4) * 20, np.ones((16, 16))).astype(np.uint8)
    for a in (ct, smooth16, blocks, make_values("noise", (40, 56), 8, 3).astype(np.uint8)):
        for q in (1, 5, 8):
            data = roimc.encode(a, mode="lossy", quality=q)
            neural = roimc.encode(a, mode="lossy", quality=q, neural_only=True)
            kinds.add(check_bounded_choice(a, data, neural, [None]))
    assert kinds == {"network", "bounded", "lossless"}


@FEW
@given(shape=st.sampled_from([(1, 1), (1, 23), (17, 1), (13, 29), (31, 37, 3), (3, 11, 19),
                              (19, 23, 4), (12, 12, 2)]),
       bits=st.integers(1, 16), signed=st.booleans(),
       pattern=st.sampled_from(["noise", "constant", "smooth", "extremes", "sparse"]),
       with_roi=st.booleans(), quality=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_lossy_default_file_is_never_worse_than_the_network(shape, bits, signed, pattern,
                                                            with_roi, quality, seed):
    values = make_values(pattern, shape, bits, seed)
    if signed:
        a = (values - (1 << (bits - 1))).astype(np.int8 if bits <= 8 else np.int16)
    else:
        a = values.astype(np.uint8 if bits <= 8 else np.uint16)
    h, w = shape[-2:] if len(shape) == 3 and shape[-1] > 4 else shape[:2]
    mask = make_mask("blob", h, w, seed) if with_roi else None
    options = dict(mode="lossy", quality=quality, bits=bits, roi=mask)
    data = roimc.encode(a, **options)
    neural = roimc.encode(a, neural_only=True, **options)
    out = roimc.decode(data)
    assert out.shape == a.shape and out.dtype == a.dtype
    where = [None] if mask is None else [expand(r, a.shape) for r in (mask, ~mask)]
    check_bounded_choice(a, data, neural, where, bits=bits)


def test_lossy_bounded_candidate_meets_the_roi_and_background_errors(ct):
    mask = np.zeros(ct.shape, bool)
    mask[30:90, 20:100] = True
    for q in (2, 6, 8):
        data = roimc.encode(ct, mode="lossy", quality=q, roi=mask)
        neural = roimc.encode(ct, mode="lossy", quality=q, roi=mask, neural_only=True)
        check_bounded_choice(ct, data, neural, [mask, ~mask])


@pytest.mark.parametrize("m", [0, 3])
def test_hybrid_bounded_candidate_keeps_the_roi_bound(ct, m):
    mask = ct > np.percentile(ct, 70)
    kinds = set()
    for q in (1, 8):
        data = roimc.encode(ct, mode="hybrid", quality=q, roi=mask, roi_max_error=m)
        neural = roimc.encode(ct, mode="hybrid", quality=q, roi=mask, roi_max_error=m,
                              neural_only=True)
        kinds.add(check_bounded_choice(ct, data, neural, [~mask]))
        out = roimc.decode(data)
        assert np.abs(out[mask].astype(np.int64) - ct[mask]).max() <= m
        assert np.array_equal(roimc.read_mask(data), mask)
    assert "bounded" in kinds


def _bg_psnr(a, out, background):
    a = np.asarray(a, np.float64)
    mse = np.mean((a[background] - np.asarray(out, np.float64)[background]) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(max(a.max(), 1) ** 2 / mse)


def test_lossless_file_is_kept_within_one_percent_of_the_smallest():
    """The encoder's choice among its candidates (api._bounded_instead) keeps the lossless
    file when it is at most 1 % larger than the smallest, and the smallest otherwise."""
    from roimc import api
    a = make_values("noise", (24, 30), 8, 3).astype(np.uint8)
    common = dict(threads=1, tile_size=api.DEFAULT_TILE, effort=api.DEFAULT_EFFORT, coder=None,
                  bits=None,
                  channels_last=None, metadata=None, ancillary=None)
    exact = roimc.encode(a)
    for size, kept_exact in ((len(exact) - 1, True), (int(len(exact) / 1.02), False)):
        other = bytes(size)   # stands for a smaller file; with a target it is never decoded
        out = api._bounded_instead(a, other, "lossy", None, 0, None, "cpu", common,
                                   targets=[0.0])
        assert out == (exact if kept_exact else other)


@pytest.mark.parametrize("target", [30.0, 38, 45.5, 60])
def test_hybrid_background_psnr_target_is_met_and_the_smallest_candidate(ct, target):
    """bg_psnr: the ROI exact, the background at least the target, and no candidate the
    encoder weighs (the network at each quality, near-lossless at each bound, lossless)
    that reaches the target is smaller."""
    h, w = ct.shape
    mask = np.zeros(ct.shape, bool)
    mask[h // 4:h // 2, w // 3:2 * w // 3] = True
    data = roimc.encode(ct, mode="hybrid", roi=mask, bg_psnr=target)
    out = roimc.decode(data)
    assert np.array_equal(out[mask], ct[mask])
    assert _bg_psnr(ct, out, ~mask) >= target
    sizes = [len(roimc.encode(ct))]
    for q in range(1, 9):
        d = roimc.encode(ct, mode="hybrid", roi=mask, quality=q, neural_only=True)
        if _bg_psnr(ct, roimc.decode(d), ~mask) >= target:
            sizes.append(len(d))
    for n in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64):
        d = roimc.encode(ct, mode="near-lossless", roi=mask, roi_max_error=0, max_error=n)
        if _bg_psnr(ct, roimc.decode(d), ~mask) >= target:
            sizes.append(len(d))
    assert len(data) <= 1.03 * min(sizes)       # the search may miss a bound by one step


def test_hybrid_background_psnr_between_two_bounds_takes_a_grade(ct):
    """A target between the background PSNRs of the post-filtered files of bounds N and
    N + 1 gives a graded file (N + 1 on some sixteenths of the background, or N - 1 or N with
    a dead zone, spec 8.7), post-filtered (spec 8.8): it reaches the target and is smaller
    than the file of bound N."""
    h, w = ct.shape
    mask = np.zeros(ct.shape, bool)
    mask[h // 4:h // 2, w // 3:2 * w // 3] = True
    n = 8
    files = [roimc.encode(ct, mode="near-lossless", roi=mask, max_error=b, post_filter=True)
             for b in (n, n + 1)]
    psnrs = [_bg_psnr(ct, roimc.decode(d), ~mask) for d in files]
    target = (psnrs[0] + psnrs[1]) / 2
    data = roimc.encode(ct, mode="hybrid", roi=mask, bg_psnr=target)
    out, info = roimc.decode(data), roimc.info(data)
    assert np.array_equal(out[mask], ct[mask])
    assert _bg_psnr(ct, out, ~mask) >= target
    assert info["mode"] == "near-lossless" and info["max_error"] in (n - 1, n)
    assert info["grade"] > 0 or info["deadzone"] > 0
    assert info["post_filter"] is not None
    assert len(data) < len(files[0])


def test_hybrid_background_psnr_target_keeps_the_roi_bound_and_colour(ct):
    rgb = np.stack([ct >> 8, ct >> 9, ct >> 10], -1).astype(np.uint8)
    mask = np.zeros(ct.shape, bool)
    mask[10:40, 20:70] = True
    for m in (0, 2):
        data = roimc.encode(rgb, mode="hybrid", roi=mask, roi_max_error=m, bg_psnr=42)
        out = roimc.decode(data)
        assert np.abs(out[mask].astype(int) - rgb[mask]).max() <= m
        assert _bg_psnr(rgb, out, ~mask) >= 42
    everything = roimc.encode(rgb, mode="hybrid", roi=np.ones(ct.shape, bool), bg_psnr=42)
    assert np.array_equal(roimc.decode(everything), rgb)


@pytest.mark.parametrize("options", [dict(mode="lossy", bg_psnr=40),
                                     dict(mode="near-lossless", max_error=1, bg_psnr=40),
                                     dict(mode="hybrid", bg_psnr=40, quality=3),
                                     dict(mode="hybrid", bg_psnr=40, neural_only=True),
                                     dict(mode="hybrid", bg_psnr=0),
                                     dict(mode="hybrid", bg_psnr=-3),
                                     dict(mode="hybrid", bg_psnr=float("nan")),
                                     dict(mode="hybrid", bg_psnr=250),
                                     dict(mode="hybrid", bg_psnr="40"),
                                     dict(mode="hybrid", bg_psnr=True)])
def test_bad_background_psnr_options(options):
    with pytest.raises(InputError):
        roimc.encode(np.zeros((8, 8), np.uint8), roi=np.eye(8, dtype=bool), **options)


def test_cli_background_psnr(tmp_path):
    from test_cli import assert_ok, assert_one_line_error, cli
    out = tmp_path / "hy.rmc"
    assert_ok(cli("encode", SAMPLE, out, "--mode", "hybrid", "--roi", "20,30,60,50",
                  "--bg-psnr", "44"))
    assert_ok(cli("decode", out, tmp_path / "hy.png"))
    for bad in (["--mode", "lossy", "--bg-psnr", "40"],
                ["--mode", "hybrid", "--bg-psnr", "40", "--quality", "2"],
                ["--mode", "hybrid", "--bg-psnr", "40", "--neural-only"],
                ["--mode", "hybrid", "--bg-psnr", "0"]):
        r = cli("encode", SAMPLE, tmp_path / "x.rmc", *bad)
        assert r.returncode != 0 and "Traceback" not in r.stderr and "--bg-psnr" in r.stderr
    assert_one_line_error(cli("encode", SAMPLE, tmp_path / "x.rmc", "--mode", "lossy",
                              "--bg-psnr", "40"))
    assert not (tmp_path / "x.rmc").exists()


def test_bounded_search_respects_its_budget(ct, monkeypatch):
    calls = []
    real = roimc.api._near_candidate
    monkeypatch.setattr(roimc.api, "_near_candidate",
                        lambda *args, **kw: calls.append(1) or real(*args, **kw))
    roimc.encode(ct, mode="lossy", quality=7)      # at a quality: bounds only, no grade
    assert 1 <= len(calls) <= roimc.api.BOUND_TRIES
    calls.clear()
    h, w = ct.shape
    mask = np.zeros(ct.shape, bool)
    mask[h // 4:h // 2, w // 3:2 * w // 3] = True
    roimc.encode(ct, mode="hybrid", roi=mask, bg_psnr=47)   # a target: bounds, then grades
    assert 1 <= len(calls) <= roimc.api.BOUND_TRIES + roimc.api.GRADE_TRIES


def test_cli_says_when_the_bounded_file_is_kept(tmp_path):
    from test_cli import assert_ok, cli
    out = tmp_path / "ct.rmc"
    r = cli("encode", SAMPLE, out, "--mode", "lossy", "--quality", "8")
    assert_ok(r)
    mode = roimc.info(out.read_bytes())["mode"]
    assert mode in ("near-lossless", "lossless")
    assert "--neural-only keeps the network's" in r.stdout
    r = cli("encode", SAMPLE, tmp_path / "n.rmc", "--mode", "lossy", "--quality", "8",
            "--neural-only")
    assert_ok(r)
    assert roimc.info((tmp_path / "n.rmc").read_bytes())["mode"] == "lossy"
    assert "--neural-only" not in r.stdout


# ------------------------------------------------------------------ options

@pytest.mark.parametrize("options,error", [
    (dict(mode="lossy", quality=0), InputError),
    (dict(mode="lossy", quality=9), InputError),
    (dict(mode="lossy", quality=2.5), InputError),
    (dict(mode="lossless", quality=3), InputError),
    (dict(mode="lossless", neural_only=True), InputError),
    (dict(mode="near-lossless", max_error=1, model="x"), InputError),
    (dict(mode="lossy", max_error=2), InputError),
    (dict(mode="lossy", roi_max_error=2), InputError),
    (dict(mode="hybrid", coder="huffman"), InputError),
    (dict(mode="lossy", device="tpu"), InputError),
    (dict(mode="lossy", model="no-such-model"), MissingModelError),
    (dict(mode="hybrid", roi=np.ones((3, 3), bool)), InputError),
])
@pytest.mark.parametrize("neural_only", [False, True])
def test_bad_options_are_refused(options, error, neural_only):
    """Refused whether or not the bounded candidate is tried."""
    if options["mode"] in ("lossy", "hybrid"):
        options = dict(options, neural_only=neural_only)
    with pytest.raises(error):
        roimc.encode(np.zeros((8, 8), np.uint8), **options)


def test_user_model_is_named_and_required(ct, tmp_path):
    path = tmp_path / "my_model.pt"
    path.write_bytes(open(codec.model_file()[1], "rb").read())
    data = roimc.encode(ct, mode="lossy", neural_only=True, quality=3, model=str(path))
    assert roimc.info(data)["model"] == "my_model"
    with pytest.raises(MissingModelError, match="my_model"):
        roimc.decode(data)
    out = roimc.decode(data, model=str(path))
    default = roimc.encode(ct, mode="lossy", neural_only=True, quality=3)
    assert np.array_equal(out, roimc.decode(default))
    other = tmp_path / "other.pt"
    other.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(MissingModelError, match="my_model"):
        roimc.decode(data, model=str(other))


def test_registry_hash_is_checked(monkeypatch):
    monkeypatch.setitem(MODELS, DEFAULT_MODEL, dict(MODELS[DEFAULT_MODEL], sha256="0" * 64))
    with pytest.raises(MissingModelError, match=DEFAULT_MODEL):
        codec.model_file()


def test_missing_decoder_names_the_id(ct):
    data = roimc.encode(ct, mode="lossy", neural_only=True, quality=1)
    chunks = chunks_of(data)
    chunks = [(t, codec.pack_dcid("ct-model-v9", "ab" * 32) if t == DCID else p)
              for t, p in chunks]
    with pytest.raises(MissingModelError, match="ct-model-v9"):
        roimc.decode(rebuild(chunks))


# ------------------------------------------------------------------ damage

@pytest.fixture(scope="module")
def lossy_file():
    a = make_values("smooth", (40, 56), 12, 3).astype(np.uint16)
    return roimc.encode(a, mode="lossy", neural_only=True, quality=4)


@pytest.fixture(scope="module")
def hybrid_file():
    a = make_values("smooth", (40, 56), 8, 4).astype(np.uint8)
    mask = make_mask("blob", 40, 56, 4)
    return roimc.encode(a, mode="hybrid", neural_only=True, roi=mask, quality=4)


def test_every_latn_truncation_is_refused(lossy_file):
    chunks = chunks_of(lossy_file)
    k = next(i for i, (t, _) in enumerate(chunks) if t == LATN)
    payload = chunks[k][1]
    for n in range(len(payload)):
        damaged = list(chunks)
        damaged[k] = (LATN, payload[:n])
        with pytest.raises(CorruptDataError):
            roimc.decode(rebuild(damaged))


def test_latn_byte_flips_never_crash(lossy_file):
    chunks = chunks_of(lossy_file)
    k = next(i for i, (t, _) in enumerate(chunks) if t == LATN)
    payload = chunks[k][1]
    rng = np.random.default_rng(5)
    for pos in list(range(min(len(payload), 40))) + list(rng.integers(0, len(payload), 60)):
        damaged = list(chunks)
        b = bytearray(payload)
        b[pos] ^= 1 << int(rng.integers(8))
        damaged[k] = (LATN, bytes(b))
        try:
            out = roimc.decode(rebuild(damaged))
        except RmcError:
            continue
        assert out.shape == (40, 56)


@pytest.mark.parametrize("edit", ["no_dcid", "two_dcid", "bad_dcid", "no_latn", "extra_latn",
                                  "tile", "dsum", "old_version", "rct"])
def test_lossy_structure_damage_is_refused(lossy_file, edit):
    chunks = chunks_of(lossy_file)
    head = container.Header.unpack(chunks[0][1])
    if edit == "no_dcid":
        chunks = [c for c in chunks if c[0] != DCID]
    elif edit == "two_dcid":
        chunks.insert(1, next(c for c in chunks if c[0] == DCID))
    elif edit == "bad_dcid":
        chunks = [(t, p[:-1] if t == DCID else p) for t, p in chunks]
    elif edit == "no_latn":
        chunks = [c for c in chunks if c[0] != LATN]
    elif edit == "extra_latn":
        chunks.insert(-1, next(c for c in chunks if c[0] == LATN))
    elif edit == "tile":
        chunks.insert(-1, (TILE, bytes(12)))
    elif edit == "dsum":
        chunks.insert(-1, (DSUM, bytes(4)))
    elif edit in ("old_version", "rct"):
        if edit == "old_version":
            head.version = (1, 1)
        else:
            head.transform, head.channels, head.dims = "rct", 3, container.DIM_CHANNELS
        chunks[0] = (HEAD, head.pack())
    with pytest.raises(CorruptDataError):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("edit", ["no_mask", "bounded", "no_tiles"])
def test_hybrid_structure_damage_is_refused(hybrid_file, edit):
    chunks = chunks_of(hybrid_file)
    if edit == "no_mask":
        chunks = [c for c in chunks if c[0] != container.MASK]
        chunks = [(t, p[:2] + p[:2] if t == container.NEAR else p) for t, p in chunks]
    elif edit == "bounded":
        chunks = [(t, struct.pack(">HH", 3, 0) if t == container.NEAR else p)
                  for t, p in chunks]
    else:
        chunks = [c for c in chunks if c[0] != TILE]
    with pytest.raises(CorruptDataError):
        roimc.decode(rebuild(chunks))


def _as_written_by_1_13(coder, version=None):
    """core.near_form as version 1.13 had it: coder 4's tiles in form 2 from 1.6 on."""
    if coder != core.CODER_CM2:
        return 0
    return 2 if version is None or tuple(version) >= (1, 6) else 1


def test_hybrid_exact_layer_is_coder_4_and_needs_version_1_5(monkeypatch):
    """The mask uses the mask coder (16E): version 1.8, and read as 1.7 it is refused. The
    exact layer uses coder 4's near-lossless form (spec 16A.12, 16A.13) and the latent
    the latent coder with the block means (16D.5): version 1.9, and read as 1.8 it is refused
    for the latent's method (E53); as method 2 (16D) it needs 1.7; the same file declaring 1.2
    to 1.6 is refused for the latent's method (E53, checked before any tile is decoded), and
    the exact layer alone declaring 1.2 to 1.4 for coder 4 (E27f): never decoded by another
    model. The file is written as 1.13 wrote it (the exact layer in form 2, 16A.13): from
    1.14 on the form-3 layer needs 1.14 itself (test_form_3_tiles_need_version_1_14)."""
    monkeypatch.setattr(core, "near_form", _as_written_by_1_13)
    monkeypatch.setattr(core, "CM2_OLS_VERSION", (1, 6))
    a = make_values("smooth", (40, 56), 8, 4).astype(np.uint8)
    hybrid_file = roimc.encode(a, mode="hybrid", neural_only=True,
                               roi=make_mask("blob", 40, 56, 4), quality=4)
    chunks = chunks_of(hybrid_file)
    head = container.Header.unpack(chunks[0][1])
    if head.version == (1, 12):   # the post-filter of the network's samples: left out here
        chunks = [c for c in chunks if c[0] != container.FILT]
        head.version = (1, 9)
        chunks[0] = (HEAD, head.pack())
    expected = roimc.decode(rebuild(chunks))
    k = next(i for i, (t, _) in enumerate(chunks) if t == LATN)
    assert latent.method(chunks[k][1]) == latent.METHOD_LATENT_DC and head.version == (1, 9)
    head.version = (1, 8)
    with pytest.raises(CorruptDataError, match="method 3"):
        roimc.decode(rebuild([(HEAD, head.pack())] + chunks[1:]))
    channels = codec.load(*codec.model_file()[1:]).config["latent"]
    lo, hi, qualities, lat = latent.unpack(chunks[k][1], 0, 255, 1, channels, 40, 56)
    chunks[k] = (LATN, method_2_payload(lo, hi, qualities, lat))
    assert np.array_equal(roimc.decode(rebuild([(HEAD, head.pack())] + chunks[1:])), expected)
    j = next(i for i, (t, _) in enumerate(chunks) if t == MASK)
    assert mask_method(chunks[j][1]) == METHOD_CONTEXT
    head.version = (1, 7)          # the mask coder is 1.8's (E45), checked before any tile
    with pytest.raises(UnsupportedError, match="MASK chunk method 1"):
        roimc.decode(rebuild([(HEAD, head.pack())] + chunks[1:]))
    mask = unpack_mask(chunks[j][1], head.height, head.width)
    chunks[j] = (MASK, pack_mask(mask, METHOD_RUNS_BROTLI))
    assert np.array_equal(roimc.decode(rebuild([(HEAD, head.pack())] + chunks[1:])), expected)
    assert {p[8] for t, p in chunks if t == TILE} == {4}
    for minor in (2, 3, 4, 5, 6):
        head.version = (1, minor)
        with pytest.raises(CorruptDataError, match="method 2"):
            roimc.decode(rebuild([(HEAD, head.pack())] + chunks[1:]))
    chunks[k] = (LATN, method_0_payload(lo, hi, qualities, lat))
    for minor in (2, 3, 4):
        head.version = (1, minor)
        with pytest.raises(CorruptDataError, match="coder 4"):
            roimc.decode(rebuild([(HEAD, head.pack())] + chunks[1:]))


# --- the post-filter of the network's samples (spec 8.8, format 1.12) ---------------------------

FILT = container.FILT


def _ct_filtered(ct, mode):
    """A lossy or hybrid file of the bundled CT slice that carries FILT, with its mask."""
    mask = None
    options = dict(mode=mode, neural_only=True, quality=6)
    if mode == "hybrid":
        yy, xx = np.indices(ct.shape)
        mask = (yy - 64) ** 2 + (xx - 64) ** 2 <= 25 ** 2
        options["roi"] = mask
    data = roimc.encode(ct, **options)
    assert FILT in [t for t, _ in chunks_of(data)]
    return data, mask


def _without_filt(data):
    """The same file without its FILT chunk, at the version of the latents (1.9) or of its
    tiles (1.14)."""
    chunks = [c for c in chunks_of(data) if c[0] != FILT]
    head = container.Header.unpack(chunks[0][1])
    if head.version < core.CM2_OLS_VERSION:    # a hybrid file's coder-4 tiles keep 1.14
        head.version = (1, 9)
    return rebuild([(HEAD, head.pack())] + chunks[1:])


@pytest.mark.parametrize("mode", ["lossy", "hybrid"])
def test_network_filter_is_spec_8_8_and_lowers_the_error(ct, mode):
    """A lossy or hybrid file with FILT (version 1.12, clip 0, before the first LATN)
    decodes to its file without FILT filtered by spec 8.8, sample for sample, outside the
    ROI and clamped to the LATN's frame range; its error there is lower, the ROI of the
    hybrid stays exact, and info names the filter."""
    from test_near_lossless import _spec_filter
    from roimc.codecs import postfilter
    data, mask = _ct_filtered(ct, mode)
    chunks = chunks_of(data)
    types = [t for t, _ in chunks]
    assert types.index(FILT) < types.index(LATN)
    info = roimc.info(data)
    assert info["version"] == ("1.14" if mode == "hybrid" else "1.12")
    assert info["post_filter"] == {"clip": 0}
    clip, [(shift, taps, bias)] = postfilter.unpack(chunks[types.index(FILT)][1],
                                                    container.Header.unpack(chunks[0][1]))
    lo, hi = struct.unpack_from(">HH", chunks[types.index(LATN)][1], 4)
    plain = roimc.decode(_without_filt(data))
    out = roimc.decode(data)
    expected = _spec_filter(plain.astype(np.int64), mask, 12, clip, shift, taps, bias, lo, hi)
    assert np.array_equal(out, expected)
    outside = np.ones(ct.shape, bool) if mask is None else ~mask
    err = lambda x: np.mean((x.astype(np.float64) - ct)[outside] ** 2)   # noqa: E731
    assert err(out) < err(plain)
    if mask is not None:
        assert np.array_equal(out[mask], ct[mask])


def test_network_filter_chunk_rules(ct):
    """In lossy and hybrid files: version 1.12 on (E49), at most one and before the first
    LATN (E41), clip 0 to 15 (E48)."""
    data, _ = _ct_filtered(ct, "lossy")
    chunks = chunks_of(data)
    head = container.Header.unpack(chunks[0][1])
    k = next(i for i, (t, _) in enumerate(chunks) if t == FILT)
    filt = chunks[k]
    head.version = (1, 11)
    with pytest.raises(UnsupportedError, match="FILT chunk in a lossy file of version 1.11"):
        roimc.decode(rebuild([(HEAD, head.pack())] + chunks[1:]))
    with pytest.raises(CorruptDataError, match="2 FILT chunks"):
        roimc.decode(rebuild(chunks[:k] + [filt] + chunks[k:]))
    moved = chunks[:k] + chunks[k + 1:]
    moved.insert(len(moved) - 1, filt)
    with pytest.raises(CorruptDataError, match="before the first LATN"):
        roimc.decode(rebuild(moved))
    for clip in (1, 15):   # any clip is valid; 16 is not
        edited = chunks[:k] + [(FILT, bytes([clip]) + filt[1][1:])] + chunks[k + 1:]
        assert roimc.decode(rebuild(edited)).shape == ct.shape
    with pytest.raises(CorruptDataError, match="clip of 16"):
        roimc.decode(rebuild(chunks[:k] + [(FILT, b"\x10" + filt[1][1:])] + chunks[k + 1:]))


def test_lossy_filter_never_costs_the_roi(ct):
    """A lossy file with an ROI carries FILT only where it lowers the ROI's error too."""
    h, w = ct.shape
    mask = np.zeros(ct.shape, bool)
    mask[h // 4:h // 2, w // 3:3 * w // 4] = True
    for q in (3, 6, 8):
        data = roimc.encode(ct, mode="lossy", neural_only=True, quality=q, roi=mask)
        if FILT in [t for t, _ in chunks_of(data)]:
            plain, out = roimc.decode(_without_filt(data)), roimc.decode(data)
            err = lambda x: np.mean((x.astype(np.float64) - ct)[mask] ** 2)   # noqa: E731
            assert err(out) <= err(plain)


@pytest.mark.parametrize("mode,quality", [("lossy", 6), ("lossy", 2), ("hybrid", 6),
                                          ("hybrid", 2)])
def test_encoder_renders_what_the_decoder_returns(ct, mode, quality):
    """The encoder's own rendering of a network's file (reused by the default and bg_psnr
    searches in place of a second synthesis) is the decoder's output, with and without
    FILT."""
    yy, xx = np.indices(ct.shape)
    mask = (yy - 64) ** 2 + (xx - 64) ** 2 <= 25 ** 2 if mode == "hybrid" else None
    data, _, decoded = roimc.api._encode(ct, mode=mode, neural_only=True, quality=quality,
                                         roi=mask, with_decoded=True)
    out = roimc.decode(data)
    assert decoded.dtype == out.dtype and np.array_equal(decoded, out)
    if quality == 6:
        assert FILT in [t for t, _ in chunks_of(data)]
    data, _, none = roimc.api._encode(ct, mode=mode, quality=quality, roi=mask,
                                      with_decoded=True)
    assert none is None and data == roimc.encode(ct, mode=mode, quality=quality, roi=mask)


def test_hybrid_exact_layer_checksum(hybrid_file):
    chunks = chunks_of(hybrid_file)
    chunks = [(t, bytes(4) if t == DSUM else p) for t, p in chunks]
    with pytest.raises(CorruptDataError, match="checksum"):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("ctype", [LATN, DCID])
def test_neural_chunks_in_lossless_files_are_unsupported(ctype):
    data = roimc.encode(np.zeros((4, 4), np.uint8))
    chunks = chunks_of(data)
    chunks.insert(1, (ctype, b"\x01\x02"))
    with pytest.raises(UnsupportedError):
        roimc.decode(rebuild(chunks))


# ------------------------------------------------------------------ the latent streams

@settings(max_examples=60, deadline=None)
@given(p=st.integers(1, 3), m=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 9),
       spread=st.sampled_from([0, 1, 3, 40, 3000, 32767]), seed=st.integers(0, 2**32 - 1))
def test_latent_pack_round_trip(p, m, h, w, spread, seed):
    rng = np.random.default_rng(seed)
    lat = rng.integers(-spread, spread + 1, size=(p, m, h, w)).astype(np.int32)
    q = [int(v) for v in rng.integers(1, 9, p)]
    payload = latent.pack(2, 5, 900, q, lat)
    lo, hi, qq, back = latent.unpack(payload, 2, 1023, p, m, h * 8, w * 8)
    assert (lo, hi, qq) == (5, 900, q) and np.array_equal(back, lat)


def test_latent_brotli_method_round_trip():
    lat = np.tile(np.arange(-3, 4, dtype=np.int32), (2, 4, 7, 1))   # brotli wins on this
    payload = latent.pack(0, 0, 255, [3, 3], lat)
    assert payload[latent._FIXED.size + 2] == latent.METHOD_BROTLI
    assert np.array_equal(latent.unpack(payload, 0, 255, 2, 4, 56, 56)[3], lat)
    with pytest.raises(CorruptDataError):
        latent.unpack(payload[:-1], 0, 255, 2, 4, 56, 56)


def test_latent_fields_are_checked():
    lat = np.zeros((1, 2, 3, 4), np.int32)
    payload = latent.pack(0, 0, 255, [1], lat)
    with pytest.raises(CorruptDataError):
        latent.unpack(payload, 1, 255, 1, 2, 24, 32)      # wrong frame
    with pytest.raises(CorruptDataError):
        latent.unpack(payload, 0, 255, 1, 3, 24, 32)      # model has 3 channels
    with pytest.raises(CorruptDataError):
        latent.unpack(payload, 0, 255, 1, 2, 25, 32)      # wrong latent height
    with pytest.raises(CorruptDataError):
        latent.unpack(payload, 0, 100, 1, 2, 24, 32)      # hi above the bits


# ------------------------------------------------------------------ tiled inference

def test_tiled_inference_matches_one_pass(monkeypatch):
    net = codec.load(*codec.model_file()[1:], device="cpu")
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:200, 0:264]
    plane = (0.5 + 0.3 * np.sin(yy / 11) * np.cos(xx / 7)
             + 0.05 * rng.random((200, 264))).astype(np.float32)
    weight = np.ones_like(plane)
    whole = codec.analyse(net, plane, weight, 5, "cpu")
    whole_out = codec.synthesise(net, whole, 5, 200, 264, "cpu")
    monkeypatch.setattr(codec, "ANALYSIS_TILE", 64)
    monkeypatch.setattr(codec, "SYNTHESIS_TILE", 8)
    tiled = codec.analyse(net, plane, weight, 5, "cpu")
    assert np.mean(tiled == whole) > 0.999
    tiled_out = codec.synthesise(net, whole, 5, 200, 264, "cpu")
    assert np.abs(tiled_out - whole_out).max() < 1e-3


# ------------------------------------------------------------------ CLI and training

@pytest.mark.parametrize("old_model", ["roimc-ae-v1", "roimc-ae-v2"])
def test_earlier_shipped_model_still_decodes(tmp_path, old_model):
    """Files name their decoder; the registry keeps every shipped model, so a file written with
    an earlier one decodes without --model while new files use the default."""
    from test_cli import assert_ok, cli
    from roimc.io import read_image
    assert DEFAULT_MODEL == "roimc-ae-v3"
    a = read_image(SAMPLE)
    old = roimc.encode(a, mode="lossy", neural_only=True, quality=4, model=old_model)
    new = roimc.encode(a, mode="lossy", neural_only=True, quality=4)
    assert old != new
    back_old, back_new = roimc.decode(old), roimc.decode(new)
    assert back_old.shape == back_new.shape == a.shape
    assert not np.array_equal(back_old, back_new)   # each file decoded by its own model
    path = tmp_path / "old.rmc"
    path.write_bytes(old)
    r = cli("info", path)
    assert_ok(r)
    assert f"decoder   {old_model}" in r.stdout


def test_cli_lossy_and_hybrid(tmp_path):
    from test_cli import assert_ok, assert_one_line_error, cli
    out = tmp_path / "ct.rmc"
    assert_ok(cli("encode", SAMPLE, out, "--mode", "lossy", "--quality", "3", "--neural-only"))
    assert_ok(cli("decode", out, tmp_path / "back.png", "--device", "cpu"))
    r = cli("info", out)
    assert_ok(r)
    assert f"decoder   {DEFAULT_MODEL}" in r.stdout and "quality 3" in r.stdout
    hy = tmp_path / "hy.rmc"
    assert_ok(cli("encode", SAMPLE, hy, "--mode", "hybrid", "--roi", "20,30,60,50",
                  "--neural-only"))
    assert_ok(cli("decode", hy, tmp_path / "hy.png", "--roi-out", tmp_path / "m.png"))
    assert "background from the network" in cli("info", hy).stdout
    assert_one_line_error(cli("encode", SAMPLE, tmp_path / "x.rmc", "--quality", "3"))
    r = cli("encode", SAMPLE, tmp_path / "x.rmc", "--mode", "lossy", "--quality", "9")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--quality" in r.stderr
    assert_one_line_error(cli("encode", SAMPLE, tmp_path / "x.rmc", "--mode", "lossy",
                              "--model", "nope"))
    assert not (tmp_path / "x.rmc").exists()


def test_train_codec_on_the_cpu(tmp_path):
    from PIL import Image
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(data / f"a{i}.png")
    out = tmp_path / "tiny.pt"
    from roimc.neural.train import train
    train(str(data), str(out), steps=3, batch=2, size=16, threads=1,
          config={"channels": 8, "latent": 4, "qualities": 8}, log=lambda m: None)
    a = rng.integers(0, 255, (20, 30), dtype=np.uint8)
    encoded = roimc.encode(a, mode="lossy", neural_only=True, quality=8, model=str(out))
    assert roimc.decode(encoded, model=str(out)).shape == a.shape
    # resumable: a second run of more steps continues from the checkpoint
    train(str(data), str(out), steps=4, batch=2, size=16, threads=1,
          config={"channels": 8, "latent": 4, "qualities": 8}, log=lambda m: None)
    assert os.path.exists(str(out) + ".json")


NEURAL_GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "neural")


@pytest.mark.parametrize("name", ["lossy_v16", "hybrid_v16"])
def test_files_of_earlier_versions_still_decode(name):
    """A lossy file (version 1.2) and a hybrid file (1.6) written by the encoder before the
    latent coder, whose LATN chunks use method 0, decode as they did then: the latent
    exactly (a wrong one would move samples by far more), the synthesis within one level of
    the output recorded then (floating point), and the hybrid ROI bit for bit."""
    data = open(os.path.join(NEURAL_GOLDEN, f"{name}.rmc"), "rb").read()
    then = np.load(os.path.join(NEURAL_GOLDEN, f"{name}.decoded.npy"), allow_pickle=False)
    payload = next(c.payload for c in container.parse(data) if c.ctype == LATN)
    assert latent.method(payload) == latent.METHOD_CORE
    assert roimc.info(data)["version"] == ("1.2" if name == "lossy_v16" else "1.6")
    out = roimc.decode(data)
    assert out.shape == then.shape and out.dtype == then.dtype
    assert np.abs(out.astype(np.int64) - then).max() <= 1
    if name == "hybrid_v16":
        from roimc.io import read_image
        original = np.asarray(read_image(os.path.join(os.path.dirname(roimc.__file__),
                                                      "samples", "ct_small.png")))
        mask = np.load(os.path.join(NEURAL_GOLDEN, "hybrid_v16.mask.npy"), allow_pickle=False)
        assert np.array_equal(out[mask], original[mask])
