"""Near-lossless mode: every decoded sample within its bound (max_error outside the ROI,
roi_max_error inside) on every sample, for random images, masks, bounds, layouts and
tilings, with coder 4 (the default, format 1.6; its 1.5 form still decodes), coder 3 (format
1.2) and coder 0; coder 4 keeps samples at 0 and at the largest value exact; bound 0 is
bit-exact (coder 0 writes the lossless coder-0 stream); the spec's own decoder
(tests/spec_cm_near.py) agrees with the C core for coders 3 and 4; damaged NEAR/MASK chunks
and near-lossless tiles are refused."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roimc
from roimc import container, core
from roimc.container import HEAD, MASK, NEAR, TILE
from roimc.roi_mask import METHOD_CONTEXT, mask_method

import spec_cm_near
from test_roundtrip import make_values, PRIMES

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=50, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

sides = st.one_of(st.sampled_from(PRIMES), st.integers(1, 47))
patterns = st.sampled_from(["noise", "constant", "ramp", "smooth", "extremes", "sparse",
                            "stripes"])
mask_kinds = st.sampled_from(["none", "random", "blob", "empty", "full", "one", "rects"])
near_coders = st.sampled_from(["cm2", "cm2", "cm", "golomb"])
CM_FORMS = [(core.CODER_CM, 0), (core.CODER_CM2, 1), (core.CODER_CM2, 2),
            (core.CODER_CM2, 3)]   # (coder, form)
tile_sizes = st.sampled_from([512, 16, (7, 5), (1, 64), 3])
seeds = st.integers(0, 2**32 - 1)


# spec 8.7: a grade G raises the background bound where this, at the sample's position
# in its tile (y mod 4, x mod 4), is below G
GRADE_ORDER = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])


def tile_bound(mask, n, m, grade, h, w, deadzone=0):
    """(H, W) bound of a tile's samples: m where `mask` is set, else n + deadzone, + 1 where
    the grade raises it (spec 8.1, 8.7)."""
    bound = n + deadzone + (GRADE_ORDER[np.arange(h)[:, None] % 4, np.arange(w)[None, :] % 4]
                            < grade).astype(np.int64)
    return bound if mask is None else np.where(mask, m, bound)


def sample_bounds(info, mask):
    """(H, W) bound of every pixel of a near-lossless file from its info (spec 8.1, 8.7, 8.8):
    roi_max_error where `mask` is set, else max_error plus the dead zone and the post-filter's
    clip, plus 1 where the grade raises it."""
    (h, w), (th, tw) = (info["height"], info["width"]), info["tile"]
    order = GRADE_ORDER[np.arange(h)[:, None] % th % 4, np.arange(w)[None, :] % tw % 4]
    clip = (info.get("post_filter") or {}).get("clip", 0)
    bound = info["max_error"] + (info["deadzone"] or 0) + (order < (info["grade"] or 0)) + clip
    return bound if mask is None else np.where(mask, info["roi_max_error"], bound)


def make_mask(kind, h, w, seed):
    rng = np.random.default_rng(seed)
    if kind == "none":
        return None
    if kind == "random":
        return rng.random((h, w)) < rng.random()
    if kind == "empty":
        return np.zeros((h, w), bool)
    if kind == "full":
        return np.ones((h, w), bool)
    if kind == "one":                       # a one-pixel ROI
        m = np.zeros((h, w), bool)
        m[rng.integers(h), rng.integers(w)] = True
        return m
    if kind == "blob":
        yy, xx = np.indices((h, w))
        cy, cx, r = rng.integers(h), rng.integers(w), rng.integers(1, max(h, w) + 1)
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    m = np.zeros((h, w), bool)              # rectangles
    for _ in range(rng.integers(1, 4)):
        y, x = rng.integers(h), rng.integers(w)
        m[y:y + rng.integers(1, h + 1), x:x + rng.integers(1, w + 1)] = True
    return m


def bounds_of(mask, n, m, shape, channels=False):
    """The per-sample bound broadcast to `shape`: (H, W) or (F, H, W), or with channels=True
    (H, W, C) or (F, H, W, C)."""
    if mask is None:
        return np.full(shape, n)
    b = np.where(mask, m, n)
    return np.broadcast_to(b[..., None] if channels else b, shape)


def check_bounded(array, n, m=0, mask=None, **options):
    roi = mask if mask is not None else None
    kwargs = dict(mode="near-lossless", max_error=n, **options)
    if roi is not None:
        kwargs.update(roi=roi, roi_max_error=m)
    data = roimc.encode(array, **kwargs)
    out = roimc.decode(data)
    assert out.dtype == array.dtype and out.shape == array.shape
    err = np.abs(out.astype(np.int64) - array.astype(np.int64))
    colour = options.get("channels_last", array.ndim == 4 or (array.ndim == 3
                                                             and 2 <= array.shape[-1] <= 4))
    assert np.all(err <= bounds_of(mask, n, m, array.shape, colour)), (err.max(), n, m)
    info = roimc.info(data)
    assert info["mode"] == "near-lossless"
    if mask is not None:
        assert np.array_equal(roimc.read_mask(data), mask)
        assert info["roi"]["pixels"] == int(mask.sum())
    else:
        assert roimc.read_mask(data) is None and info["roi"] is None
    return data, out


bits_and_bounds = st.integers(1, 16).flatmap(lambda b: st.tuples(
    st.just(b),
    st.one_of(st.integers(0, min(8, (1 << b) - 1)), st.integers(0, (1 << b) - 1)),
    st.one_of(st.integers(0, min(3, (1 << b) - 1)), st.integers(0, (1 << b) - 1))))


@FAST
@given(h=sides, w=sides, bnm=bits_and_bounds, pattern=patterns, kind=mask_kinds,
       tile=tile_sizes, seed=seeds, coder=near_coders)
def test_bound_holds_on_every_sample_gray(h, w, bnm, pattern, kind, tile, seed, coder):
    bits, n, m = bnm
    a = make_values(pattern, (h, w), bits, seed).astype(np.uint8 if bits <= 8 else np.uint16)
    data, out = check_bounded(a, n, m, make_mask(kind, h, w, seed + 1), tile_size=tile,
                              bits=bits if seed % 2 else None, coder=coder)
    if coder == "cm2":      # form 2: samples at 0 and at the largest value decode exactly
        ends = (a == 0) | (a == (1 << roimc.info(data)["bits"]) - 1)
        assert np.array_equal(out[ends], a[ends])


@FEW
@given(h=st.integers(1, 29), w=st.integers(1, 29), channels=st.sampled_from([2, 3, 4]),
       bnm=bits_and_bounds, pattern=patterns, kind=mask_kinds, seed=seeds,
       frames=st.sampled_from([0, 1, 2]))
def test_bound_holds_on_every_channel_and_frame(h, w, channels, bnm, pattern, kind, seed,
                                                frames):
    bits, n, m = bnm
    shape = (h, w, channels) if not frames else (frames, h, w, channels)
    a = make_values(pattern, shape, bits, seed).astype(np.uint8 if bits <= 8 else np.uint16)
    data, _ = check_bounded(a, n, m, make_mask(kind, h, w, seed + 1), tile_size=16,
                            effort=[2, 5][seed % 2])
    assert roimc.info(data)["transform"] == "none"


@FEW
@given(h=sides, w=sides, bnm=bits_and_bounds, pattern=patterns, kind=mask_kinds, seed=seeds,
       signed=st.booleans())
def test_bound_holds_for_stacks_and_signed(h, w, bnm, pattern, kind, seed, signed):
    bits, n, m = bnm
    v = make_values(pattern, (2, h, w), bits, seed)
    if signed:
        dtype = np.int8 if bits <= 8 else np.int16
        a = (v - (1 << (bits - 1))).astype(dtype)
    else:
        a = v.astype(np.uint8 if bits <= 8 else np.uint16)
    check_bounded(a, n, m, make_mask(kind, h, w, seed + 1), tile_size=(7, 11),
                  channels_last=False)


@FAST
@given(h=sides, w=sides, bits=st.integers(1, 16), pattern=patterns, kind=mask_kinds,
       seed=seeds, coder=near_coders)
def test_bound_zero_is_bit_exact(h, w, bits, pattern, kind, seed, coder):
    a = make_values(pattern, (h, w), bits, seed).astype(np.uint8 if bits <= 8 else np.uint16)
    _, out = check_bounded(a, 0, 0, make_mask(kind, h, w, seed + 1), coder=coder)
    assert np.array_equal(out, a)


@FAST
@given(h=st.integers(1, 40), w=st.integers(1, 40), bits=st.integers(1, 17),
       planes=st.integers(1, 4), pattern=patterns, seed=seeds)
def test_core_near_zero_writes_the_lossless_stream(h, w, bits, planes, pattern, seed):
    v = make_values(pattern, (planes, h, w), bits, seed).astype(np.int32)
    mask = np.random.default_rng(seed).random((h, w)) < 0.5
    stream, recon = core.encode_tile_near(v, [bits] * planes, core.CODER_GOLOMB, mask, 0, 0)
    assert stream == core.encode_tile(v, [bits] * planes, core.CODER_GOLOMB)
    assert np.array_equal(recon, v)


@FAST
@given(h=st.integers(1, 30), w=st.integers(1, 30), bnm=bits_and_bounds, pattern=patterns,
       kind=mask_kinds, seed=seeds,
       coder=st.sampled_from([core.CODER_GOLOMB, core.CODER_CM, core.CODER_CM2]))
def test_core_decoder_reproduces_the_encoders_reconstruction(h, w, bnm, pattern, kind, seed,
                                                             coder):
    bits, n, m = bnm
    v = make_values(pattern, (1, h, w), bits, seed).astype(np.int32)
    mask = make_mask(kind, h, w, seed + 1)
    stream, recon = core.encode_tile_near(v, [bits], coder, mask, n, m)
    out = core.decode_tile_near(stream, w, h, [bits], coder, mask, n, m)
    assert np.array_equal(out, recon)
    assert np.all(np.abs(out - v)[0] <= bounds_of(mask, n, m, (h, w)))


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_every_bound_of_small_depths_exhaustively(bits):
    """All bounds 0..maxval, for noise, extremes and a ramp, with a random ROI."""
    rng = np.random.default_rng(bits)
    top = 1 << bits
    for n in (range(top) if bits < 8 else [0, 1, 2, 3, 4, 8, 16, 100, 127, 128, 200, 254, 255]):
        m = int(rng.integers(0, top))
        for a in (rng.integers(0, top, (9, 13)), np.where(rng.random((9, 13)) < .5, 0, top - 1),
                  (np.indices((9, 13)).sum(axis=0) % top)):
            mask = rng.random((9, 13)) < 0.4
            check_bounded(a.astype(np.uint8), n, m, mask)


def test_extremes_single_pixels_and_lines():
    for shape in [(1, 1), (1, 97), (97, 1), (2, 2)]:
        for bits in (1, 8, 16):
            a = make_values("noise", shape, bits, 7).astype(np.uint8 if bits <= 8 else np.uint16)
            top = (1 << bits) - 1
            for n, m in [(0, 0), (top, 0), (0, top), (top, top), (top // 2, 1)]:
                mask = np.zeros(shape, bool)
                mask.flat[0] = True
                check_bounded(a, n, m, mask)
                check_bounded(a, n)


def test_bound_near_the_dynamic_range_gives_tiny_files():
    a = make_values("noise", (64, 64), 8, 3).astype(np.uint8)
    data, out = check_bounded(a, 255)
    assert len(data) < 200
    data, out = check_bounded(a, 128)
    assert len(data) < 1200


def test_bound_above_the_stored_bits_is_stored_clamped():
    a = (np.arange(100).reshape(10, 10) % 100).astype(np.uint8)      # 7 stored bits
    data = roimc.encode(a, mode="near-lossless", max_error=200)
    assert roimc.info(data)["max_error"] == 127
    assert np.abs(roimc.decode(data).astype(int) - a).max() <= 127


def test_real_images_with_their_masks(corpus_dir):
    from PIL import Image
    masks = sorted((corpus_dir / "val").glob("*.roi.png"))
    if not masks:
        pytest.skip("no masks in the corpus")
    for mpath in masks[:2]:
        a = np.asarray(Image.open(str(mpath).replace(".roi.png", ".png")))
        mask = np.asarray(Image.open(mpath)) != 0
        for n, m in [(1, 0), (4, 0), (8, 2)]:
            data, _ = check_bounded(a, n, m, mask)
            assert len(data) < len(roimc.encode(a))


def test_roi_makes_files_between_the_two_uniform_bounds():
    a = make_values("smooth", (64, 64), 10, 5).astype(np.uint16)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    exact = len(roimc.encode(a, mode="near-lossless", max_error=0))
    loose = len(roimc.encode(a, mode="near-lossless", max_error=6))
    mixed = len(roimc.encode(a, mode="near-lossless", max_error=6, roi=mask))
    assert loose < mixed < exact + 200


def test_raw_coder_and_raw_fallback_are_exact():
    a = make_values("noise", (20, 20), 8, 1).astype(np.uint8)
    data = roimc.encode(a, mode="near-lossless", max_error=3, coder="raw")
    assert np.array_equal(roimc.decode(data), a)
    tiles = [c for c in container.parse(data) if c.ctype == TILE]
    assert all(t.payload[8] == core.CODER_RAW for t in tiles)


# --- option errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("options,error", [
    (dict(mode="near-lossless"), roimc.InputError),
    (dict(mode="near-lossless", max_error=-1), roimc.InputError),
    (dict(mode="near-lossless", max_error=256), roimc.InputError),
    (dict(mode="near-lossless", max_error=1.5), roimc.InputError),
    (dict(mode="near-lossless", max_error="2"), roimc.InputError),
    (dict(mode="near-lossless", max_error=2, roi_max_error=1), roimc.InputError),
    (dict(mode="near-lossless", max_error=2, roi="0,0,2,2", roi_max_error=-3), roimc.InputError),
    (dict(mode="near-lossless", max_error=2, coder="huffman"), roimc.InputError),
    (dict(mode="near-lossless", max_error=2, coder="lz"), roimc.InputError),
    (dict(max_error=2), roimc.InputError),
    (dict(roi="0,0,2,2"), roimc.InputError),
])
def test_bad_near_options(options, error):
    with pytest.raises(error):
        roimc.encode(np.zeros((8, 8), np.uint8), **options)


def test_max_error_range_follows_the_dtype():
    a = np.zeros((4, 4), np.uint16)
    roimc.encode(a, mode="near-lossless", max_error=65535)
    with pytest.raises(roimc.InputError):
        roimc.encode(a, mode="near-lossless", max_error=65536)


# --- damaged files ---------------------------------------------------------------------------

def _near_file(mask=True):
    a = make_values("smooth", (23, 19), 8, 2).astype(np.uint8)
    m = make_mask("blob", 23, 19, 3) if mask else None
    kwargs = dict(roi=m, roi_max_error=1) if mask else {}
    return a, roimc.encode(a, mode="near-lossless", max_error=3, **kwargs)


def _version(info):
    return tuple(int(v) for v in info["version"].split("."))


def _tile_version(data):
    """The version a near-lossless file's tiles need: 1.14 with a coder-4 tile, 1.2 with a
    coder-3 one, else 1.0 (a method-1 MASK can raise it to 1.8)."""
    coders = {p[8] for t, p in _chunks(data) if t == TILE}
    least = (1, 14) if core.CODER_CM2 in coders else (1, 2) if core.CODER_CM in coders else (1, 0)
    masks = [p for t, p in _chunks(data) if t == MASK]
    if masks and mask_method(masks[0]) == METHOD_CONTEXT:
        least = max(least, (1, 8))
    return least


def _chunks(data):
    return [(c.ctype, c.payload) for c in container.parse(data)]


def _rebuild(chunks):
    return container.pack(chunks)


def _replace(data, ctype, payload):
    return _rebuild([(t, payload if t == ctype else p) for t, p in _chunks(data)])


def test_intact_file_decodes():
    a, data = _near_file()
    out = roimc.decode(data)
    assert np.abs(out.astype(int) - a).max() <= 3


@pytest.mark.parametrize("ctype, payload", [
    (NEAR, p) for p in (b"", b"\x00\x03", b"\x00\x03\x00\x01\x00", b"\x01\x00\x00\x01",
                        b"\x00\x03\x00\x09", b"\xff\xff\x00\x00")] + [
    (container.GRAD, p) for p in (b"", b"\x07", b"\x00\x00", b"\x10\x00", b"\xff\x01",
                                  b"\x07\x00\x00", b"\x07\xff")])
def test_bad_near_or_grad_chunk_is_refused(ctype, payload):
    _, data = _graded_file() if ctype == container.GRAD else _near_file()
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(_replace(data, ctype, payload))


def test_near_chunk_without_mask_needs_equal_bounds():
    _, data = _near_file(mask=False)
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(_replace(data, NEAR, b"\x00\x03\x00\x00"))


def test_missing_duplicated_or_late_chunks_are_refused():
    _, data = _near_file()
    chunks = _chunks(data)
    no_near = [c for c in chunks if c[0] != NEAR]
    two_masks = chunks[:3] + [c for c in chunks if c[0] == MASK] + chunks[3:]
    late_mask = [c for c in chunks if c[0] != MASK]
    late_mask.insert(len(late_mask) - 2, [c for c in chunks if c[0] == MASK][0])
    no_mask = [c for c in chunks if c[0] != MASK]          # bounds differ: mask needed
    for bad in (no_near, two_masks, late_mask, no_mask):
        with pytest.raises(roimc.CorruptDataError):
            roimc.decode(_rebuild(bad))


def test_near_chunks_in_a_lossless_file_are_unsupported():
    _, data = _near_file()
    lossless = _chunks(roimc.encode(np.zeros((23, 19), np.uint8)))
    for extra in [c for c in _chunks(data) if c[0] in (NEAR, MASK)]:
        with pytest.raises(roimc.UnsupportedError):
            roimc.decode(_rebuild(lossless[:1] + [extra] + lossless[1:]))


def test_near_file_with_rct_is_refused():
    from roimc.container import Header
    rgb = make_values("smooth", (9, 9, 3), 8, 1).astype(np.uint8)
    data = roimc.encode(rgb, mode="near-lossless", max_error=2)
    chunks = _chunks(data)
    h = Header.unpack(chunks[0][1])
    h.transform = "rct"
    chunks[0] = (HEAD, h.pack())
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(_rebuild(chunks))


def test_damaged_mask_payloads_are_refused():
    _, data = _near_file()
    payload = dict(_chunks(data))[MASK]
    rng = np.random.default_rng(4)
    bad = [payload[:5], payload[:9], payload[:-1], payload[:9] + b"garbage",
           payload + b"\x00", b"\x00" * 9, payload[:8] + b"\x01" + payload[9:]]
    bad.append(payload[:4] + (24).to_bytes(4, "big") + payload[8:])      # wrong height
    bad.append((20).to_bytes(4, "big") + payload[4:])                    # wrong width
    for _ in range(40):
        b = bytearray(payload)
        b[int(rng.integers(9, len(b)))] ^= 1 << int(rng.integers(8))
        bad.append(bytes(b))
    refused = 0
    for p in bad:
        try:
            out = roimc.decode(_replace(data, MASK, p))
        except (roimc.CorruptDataError, roimc.UnsupportedError):
            refused += 1
        else:                      # a flip that still gives a mask: dsum must catch a change
            assert out is not None
    assert refused >= len(bad) - 5


def _assert_damaged_tile_refused(data, seed, trials):
    """Truncate (odd trials) or flip one bit of (even trials) the first TILE chunk's payload
    past its header; every such file must be refused."""
    chunks = _chunks(data)
    i = next(k for k, c in enumerate(chunks) if c[0] == TILE)
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        p = bytearray(chunks[i][1])
        if trial % 2:
            p = p[:int(rng.integers(9, len(p)))]
        else:
            p[int(rng.integers(9, len(p)))] ^= 1 << int(rng.integers(8))
        bad = list(chunks)
        bad[i] = (TILE, bytes(p))
        with pytest.raises(roimc.FormatError):
            roimc.decode(_rebuild(bad))


def test_truncated_and_flipped_near_tiles_are_refused_or_checked():
    a, data = _near_file()
    _assert_damaged_tile_refused(data, seed=5, trials=60)


def test_huffman_tile_in_a_near_file_is_unsupported():
    _, data = _near_file()
    chunks = _chunks(data)
    i = next(k for k, c in enumerate(chunks) if c[0] == TILE)
    p = bytearray(chunks[i][1])
    p[8] = core.CODER_HUFFMAN
    chunks[i] = (TILE, bytes(p))
    with pytest.raises(roimc.UnsupportedError):
        roimc.decode(_rebuild(chunks))


def test_c_core_refuses_bad_near_arguments():
    v = np.zeros((1, 4, 4), np.int32)
    with pytest.raises(roimc.InputError):
        core.encode_tile_near(v, [3], 0, None, 8, 0)       # above maxval 7
    with pytest.raises(roimc.InputError):
        core.encode_tile_near(v, [3], 0, None, 0, -1)
    with pytest.raises(roimc.UnsupportedError):
        core.encode_tile_near(v, [3], core.CODER_HUFFMAN, None, 1, 1)
    with pytest.raises(roimc.InputError):
        core.encode_tile_near(v, [3], 0, np.zeros((3, 4)), 1, 1)


# --- coder 3's near-lossless form (spec 16A.10, format 1.2) -----------------------------------

SPEC = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _weights(kind, planes, rng, t=None):
    if kind == "none":
        return None
    if kind == "fit":
        from roimc.codecs import predictor
        return [predictor.fit(t, p) for p in range(planes)]
    return [rng.integers(-32768, 32768, size=10 if p == 0 else 15).astype(np.int16)
            for p in range(planes)]


grades = st.one_of(st.just(0), st.integers(1, 15))
deadzones = st.one_of(st.just(0), st.integers(1, 3))


@SPEC
@given(h=st.integers(1, 11), w=st.integers(1, 11), planes=st.integers(1, 3),
       bnm=bits_and_bounds, pattern=patterns, kind=mask_kinds, seed=seeds,
       weights=st.sampled_from(["none", "random"]), cf=st.sampled_from(CM_FORMS), grade=grades,
       deadzone=deadzones)
def test_spec_decoder_agrees_with_the_c_core(h, w, planes, bnm, pattern, kind, seed, weights,
                                             cf, grade, deadzone):
    """tests/spec_cm_near.py, written from spec/rmc-v1.md alone, decodes every stream the C
    encoder writes (coder 3, coder 4 in forms 1, 2 and 3; graded or not, with a dead zone or
    not, which the decoder does not need) to the C encoder's reconstruction."""
    coder, form = cf
    bits, n, m = bnm
    deadzone = min(deadzone, (1 << bits) - 1 - n)
    grade = grade if n + deadzone < (1 << bits) - 1 else 0
    rng = np.random.default_rng(seed)
    v = make_values(pattern, (planes, h, w), bits, seed).astype(np.int32)
    mask = make_mask(kind, h, w, seed + 1)
    stream, recon = core.encode_tile_near_cm(v, [bits] * planes, _weights(weights, planes, rng),
                                             mask, n, m, coder, form, grade=grade,
                                             deadzone=deadzone)
    out = spec_cm_near.decode_tile(stream, w, h, [bits] * planes,
                                   None if mask is None else mask.astype(int).tolist(), n, m,
                                   form=form, grade=grade)
    assert np.array_equal(np.array(out, dtype=np.int32), recon)


def test_spec_worked_example_21_7():
    v = np.array([[[0, 0], [0, 5]]], np.int32)
    stream, recon = core.encode_tile_near(v, [3], core.CODER_CM, None, 1, 1)
    assert stream == bytes.fromhex("0000D21505FE") and recon.tolist() == [[[0, 0], [0, 6]]]
    mask = np.array([[0, 0], [0, 1]], bool)
    stream, recon = core.encode_tile_near(v, [3], core.CODER_CM, mask, 1, 0)
    assert stream == bytes.fromhex("0000CD2B8A3E00") and recon.tolist() == v.tolist()
    assert spec_cm_near.decode_tile(stream, 2, 2, [3], [[0, 0], [0, 1]], 1, 0) == [[[0, 0], [0, 5]]]


@FAST
@given(h=st.integers(1, 40), w=st.integers(1, 40), planes=st.integers(1, 4),
       bnm=bits_and_bounds, pattern=patterns, kind=mask_kinds, seed=seeds,
       weights=st.sampled_from(["none", "random", "fit"]), cf=st.sampled_from(CM_FORMS),
       grade=grades, deadzone=deadzones)
def test_cm_core_bound_holds_with_any_weights(h, w, planes, bnm, pattern, kind, seed, weights,
                                              cf, grade, deadzone):
    """The bound never depends on the predictor: fitted, absent or random weights; every
    sample within its own bound, raised by the grade where it picks and by the dead zone
    outside the ROI (spec 8.7); form 2 keeps 0 and MAXVAL exact even with a dead zone."""
    coder, form = cf
    bits, n, m = bnm
    top = (1 << bits) - 1
    deadzone = min(deadzone, top - n)
    grade = grade if n + deadzone < top else 0
    rng = np.random.default_rng(seed)
    v = make_values(pattern, (planes, h, w), bits, seed).astype(np.int32)
    mask = make_mask(kind, h, w, seed + 1)
    stream, recon = core.encode_tile_near_cm(v, [bits] * planes,
                                             _weights(weights, planes, rng, v), mask, n, m,
                                             coder, form, grade=grade, deadzone=deadzone)
    out = core.decode_tile_near(stream, w, h, [bits] * planes, coder, mask, n, m, form, grade)
    assert np.array_equal(out, recon)
    assert np.all(np.abs(out - v) <= tile_bound(mask, n, m, grade, h, w, deadzone)[None])
    if form == 2:
        ends = (v == 0) | (v == top)
        assert np.array_equal(out[ends], v[ends])


@pytest.mark.parametrize("coder, form", CM_FORMS)
@pytest.mark.parametrize("bits", [1, 2, 3, 8, 12, 16, 17])
def test_cm_extreme_bounds_and_constant_and_noise_images(bits, coder, form):
    """Bounds 0, 1, MAXVAL/2, MAXVAL - 1, MAXVAL on noise, extremes, constants; with the ROI
    exact or loose; 1x1, 1xN, Nx1 and prime shapes."""
    top = (1 << bits) - 1
    rng = np.random.default_rng(bits)
    for shape in [(1, 1), (1, 37), (37, 1), (13, 17)]:
        for pattern in ("noise", "extremes", "constant", "smooth"):
            v = make_values(pattern, (1,) + shape, bits, bits).astype(np.int32)
            for n, m in [(0, 0), (1, 0), (top // 2, 0), (max(top - 1, 0), top), (top, top),
                         (top, 0), (0, top)]:
                mask = rng.random(shape) < 0.5
                stream, recon = core.encode_tile_near(v, [bits], coder, mask, n, m, form)
                out = core.decode_tile_near(stream, shape[1], shape[0], [bits], coder,
                                            mask, n, m, form)
                assert np.array_equal(out, recon)
                bound = np.where(mask, m, n)
                assert np.all(np.abs(out[0] - v[0]) <= bound), (shape, pattern, n, m)
                assert out.min() >= 0 and out.max() <= top
                if form == 2:       # 0 and MAXVAL decode exactly
                    ends = (v[0] == 0) | (v[0] == top)
                    assert np.array_equal(out[0][ends], v[0][ends]), (shape, pattern, n, m)


@pytest.mark.parametrize("coder, form", CM_FORMS)
def test_cm_bound_of_the_whole_range_codes_almost_nothing(coder, form):
    """Forms 2 and 3 also keep the samples at 0 and 255 exact; without them they code as
    little."""
    v = make_values("noise", (1, 64, 64), 8, 3).astype(np.int32)
    if form >= 2:
        v = np.clip(v, 1, 254)
    stream, recon = core.encode_tile_near(v, [8], coder, None, 255, 255, form)
    assert len(stream) <= 7                       # n[0], and the range coder's 5 bytes
    assert np.all(recon == 0)
    stream, _ = core.encode_tile_near(v, [8], coder, None, 128, 128, form)
    assert len(stream) < 700


@pytest.mark.parametrize("coder", ["cm", "cm2"])
def test_cm_bound_zero_is_exact_and_as_small_as_lossless(coder):
    a = make_values("smooth", (64, 64), 10, 4).astype(np.uint16)
    near = roimc.encode(a, mode="near-lossless", max_error=0, coder=coder)
    assert np.array_equal(roimc.decode(near), a)
    assert len(near) < 1.03 * len(roimc.encode(a, coder=coder)) + 40


@pytest.mark.parametrize("effort", [2, 5, 7, 9])
def test_near_lossless_defaults_to_coder_4_and_version_1_14(effort):
    a = make_values("smooth", (40, 40), 8, 6).astype(np.uint8)
    data = roimc.encode(a, mode="near-lossless", max_error=2, effort=effort)
    assert roimc.info(data)["version"] == "1.14"
    assert {t.payload[8] for t in container.parse(data) if t.ctype == TILE} == {core.CODER_CM2}
    cm = roimc.encode(a, mode="near-lossless", max_error=2, coder="cm")
    assert roimc.info(cm)["version"] == "1.2"
    assert {t.payload[8] for t in container.parse(cm) if t.ctype == TILE} == {core.CODER_CM}
    golomb = roimc.encode(a, mode="near-lossless", max_error=2, coder="golomb")
    assert roimc.info(golomb)["version"] == "1.0"
    assert {t.payload[8] for t in container.parse(golomb) if t.ctype == TILE} == {0}
    assert roimc.info(roimc.encode(a, mode="near-lossless", max_error=2, effort=1))[
        "version"] == "1.0"
    raw = roimc.encode(a, mode="near-lossless", max_error=2, coder="raw")
    assert roimc.info(raw)["version"] == "1.0" and np.array_equal(roimc.decode(raw), a)


@pytest.mark.parametrize("coder,minors", [("cm", (0, 1)), ("cm2", (0, 1, 2, 3, 4))])
def test_cm_near_tile_in_an_older_version_is_refused(coder, minors):
    """E27c: coder 3 in a mode-1 file whose version_minor is below 2; E27f: coder 4 below 5."""
    from roimc.container import Header
    a = make_values("smooth", (20, 20), 8, 6).astype(np.uint8)
    chunks = _chunks(roimc.encode(a, mode="near-lossless", max_error=2, coder=coder))
    for minor in minors:
        h = Header.unpack(chunks[0][1])
        h.version = (1, minor)
        with pytest.raises(roimc.CorruptDataError, match=f"coder {core.CODERS[coder]}"):
            roimc.decode(_rebuild([(HEAD, h.pack())] + chunks[1:]))


def test_form_3_tiles_need_version_1_14():
    """Coder 4's tiles of a 1.14 file are form 3 (16A.14); the same file declaring 1.6 to 1.13
    reads them as form 2 (16A.13) and decodes other samples, which its dsum refuses (E25b),
    and as 1.5 as form 1 (16A.12). Decoding the stream by form 3 gives the file's samples."""
    from roimc.container import Header
    a = make_values("smooth", (24, 21), 8, 6).astype(np.uint8)
    data = roimc.encode(a, mode="near-lossless", max_error=2)
    chunks = _chunks(data)
    assert roimc.info(data)["version"] == "1.14"
    out = roimc.decode(data)
    assert np.abs(out.astype(int) - a).max() <= 2
    tile = next(p for t, p in chunks if t == TILE)
    assert tile[8] == core.CODER_CM2
    stream, bits = bytes(tile[9:]), [roimc.info(data)["bits"]]
    assert np.array_equal(core.decode_tile_near(stream, 21, 24, bits, core.CODER_CM2, None, 2, 2,
                                                3)[0], out)
    for form in (1, 2):
        try:
            other = core.decode_tile_near(stream, 21, 24, bits, core.CODER_CM2, None, 2, 2, form)
        except roimc.CorruptDataError:
            continue
        assert not np.array_equal(other[0], out)
    for minor in (5, 6, 13):
        h = Header.unpack(chunks[0][1])
        h.version = (1, minor)
        with pytest.raises(roimc.CorruptDataError):
            roimc.decode(_rebuild([(HEAD, h.pack())] + chunks[1:]))


def test_coders_4_and_3_are_smaller_than_coder_0_on_real_images(corpus_dir):
    from PIL import Image
    for name in ("mr_ch2_ax100.png", "ct_small.png", "us_aloka_rgb.png"):
        path = corpus_dir / "val" / name
        if not path.exists():
            continue
        a = np.asarray(Image.open(path))
        for n in (1, 4):
            size = {c: len(roimc.encode(a, mode="near-lossless", max_error=n, coder=c))
                    for c in ("cm2", "cm", "golomb")}
            assert size["cm"] < 0.95 * size["golomb"], (name, n, size)
            assert size["cm2"] < size["cm"], (name, n, size)


def _cm_stream(coder, form):
    v = make_values("smooth", (2, 23, 19), 9, 11).astype(np.int32)
    mask = make_mask("blob", 23, 19, 4)
    stream, recon = core.encode_tile_near(v, [9, 9], coder, mask, 3, 1, form)
    return v, mask, stream, recon


@pytest.mark.parametrize("coder, form", CM_FORMS)
def test_cm_every_truncation_and_trailing_byte_is_refused(coder, form):
    v, mask, stream, _ = _cm_stream(coder, form)
    for cut in range(len(stream)):
        with pytest.raises(roimc.CorruptDataError):
            core.decode_tile_near(stream[:cut], 19, 23, [9, 9], coder, mask, 3, 1, form)
    for extra in (b"\x00", b"\x01", b"\xff\xff"):
        with pytest.raises(roimc.CorruptDataError):
            core.decode_tile_near(stream + extra, 19, 23, [9, 9], coder, mask, 3, 1, form)


@pytest.mark.parametrize("coder, form", CM_FORMS)
def test_cm_byte_flips_are_refused_or_stay_in_range(coder, form):
    v, mask, stream, recon = _cm_stream(coder, form)
    rng = np.random.default_rng(8)
    refused = 0
    for _ in range(300):
        b = bytearray(stream)
        b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
        try:
            out = core.decode_tile_near(bytes(b), 19, 23, [9, 9], coder, mask, 3, 1, form)
        except roimc.CorruptDataError:
            refused += 1
        else:
            assert out.min() >= 0 and out.max() < 512
    assert refused >= 250


@pytest.mark.parametrize("coder, form", CM_FORMS)
def test_cm_random_streams_and_wrong_parameters_do_not_crash(coder, form):
    rng = np.random.default_rng(9)
    v, mask, stream, _ = _cm_stream(coder, form)
    for _ in range(200):
        data = rng.integers(0, 256, size=int(rng.integers(0, 64))).astype(np.uint8).tobytes()
        try:
            core.decode_tile_near(data, 7, 5, [int(rng.integers(1, 17))], coder, None,
                                  int(rng.integers(0, 2)), 0, form)
        except roimc.CorruptDataError:
            pass
    for bits, n, m in [([8, 8], 3, 1), ([9, 9], 1, 3), ([9, 9], 3, 3), ([10, 10], 3, 1)]:
        try:
            out = core.decode_tile_near(stream, 19, 23, bits, coder, mask, n, m, form)
        except roimc.CorruptDataError:
            pass
        else:
            assert out.min() >= 0 and out.max() < (1 << bits[0])


def test_cm_near_weight_checks():
    v = np.zeros((1, 4, 4), np.int32)
    with pytest.raises(roimc.InputError):
        core.encode_tile_near_cm(v, [8], [np.zeros(9, np.int16)], None, 1, 1)
    with pytest.raises(roimc.InputError):
        core.encode_tile_near_cm(v, [3], None, None, 8, 8)
    stream, _ = core.encode_tile_near_cm(v, [8], [np.zeros(10, np.int16)], None, 1, 1)
    bad = bytearray(stream)
    bad[0] = 9                                        # E32b
    with pytest.raises(roimc.CorruptDataError):
        core.decode_tile_near(bytes(bad), 4, 4, [8], core.CODER_CM, None, 1, 1)


def test_damaged_coder_0_near_tiles_are_refused():
    a = make_values("smooth", (23, 19), 8, 2).astype(np.uint8)
    data = roimc.encode(a, mode="near-lossless", max_error=3, coder="golomb")
    _assert_damaged_tile_refused(data, seed=6, trials=40)


# --- the graded background bound (spec 8.7, format 1.10) ---------------------------------------

GRAD = container.GRAD


@FAST
@given(h=sides, w=sides, bits=st.integers(1, 16), pattern=patterns, kind=mask_kinds,
       tile=tile_sizes, seed=seeds, grade=st.integers(0, 15), deadzone=deadzones,
       rgb=st.booleans(), coder=st.sampled_from(["cm2", "cm"]))
def test_graded_files_keep_every_bound(h, w, bits, pattern, kind, tile, seed, grade, deadzone,
                                       rgb, coder):
    """Every sample within its own bound, N + D outside the ROI and N + D + 1 at the tile
    positions the grade picks; the file is 1.10 with one GRAD chunk; odd tiles, 1 x N,
    primes, every depth, RGB."""
    top = (1 << bits) - 1
    n = int(np.random.default_rng(seed).integers(0, top)) if top > 1 else 0
    if grade == deadzone == 0:
        grade = 1
    shape = (h, w, 3) if rgb else (h, w)
    a = make_values(pattern, shape, bits, seed).astype(np.uint16 if bits > 8 else np.uint8)
    mask = make_mask(kind, h, w, seed + 1)
    roi = dict(roi=mask, roi_max_error=0) if mask is not None else {}
    data = roimc.encode(a, mode="near-lossless", max_error=n, grade=grade, deadzone=deadzone,
                        tile_size=tile, bits=bits, coder=coder, **roi)
    info, out = roimc.info(data), roimc.decode(data)
    bound = sample_bounds(info, mask)
    diff = np.abs(out.astype(np.int64) - a)
    assert (diff <= (bound[..., None] if rgb else bound)).all()
    grads = [p for t, p in _chunks(data) if t == GRAD]
    dz = min(deadzone, top - n)                     # no room: cut (the same promise)
    g = grade if n + dz + 1 <= top else 0
    if mask is not None and mask.all():             # no background: dropped
        g = dz = 0
    least = _tile_version(data)
    if g or dz:
        assert _version(info) == max((1, 10), least) and grads == [bytes([g, dz])]
    else:
        assert not grads and _version(info) == least
    assert (info["grade"], info["deadzone"]) == (g, dz)


def test_dead_zone_trades_a_little_error_for_bytes():
    """Smooth noise at bound 3: a dead zone of 1 gives a smaller file whose background errs
    up to 4, the ROI staying exact; decoding does not depend on it."""
    a = make_values("smooth", (60, 50), 8, 4).astype(np.uint8)
    a = (a.astype(int) + np.random.default_rng(4).integers(0, 9, a.shape)).clip(0, 255)
    a = a.astype(np.uint8)
    mask = make_mask("blob", 60, 50, 5)
    plain = roimc.encode(a, mode="near-lossless", max_error=3, roi=mask)
    dead = roimc.encode(a, mode="near-lossless", max_error=3, roi=mask, deadzone=1)
    assert len(dead) < len(plain)
    diff = np.abs(roimc.decode(dead).astype(int) - a)
    assert diff[mask].max() == 0 and diff[~mask].max() == 4
    assert roimc.info(dead)["deadzone"] == 1 and roimc.info(dead)["grade"] == 0


def test_grade_raises_the_bound_exactly_where_the_pattern_says():
    """Noise at bound 2: the raised positions reach errors of 3, the others never do; grade 0
    writes the file of 1.9 (no GRAD), byte for byte."""
    a = make_values("noise", (64, 48), 8, 5).astype(np.uint8)
    plain = roimc.encode(a, mode="near-lossless", max_error=2, tile_size=(32, 24))
    assert roimc.encode(a, mode="near-lossless", max_error=2, grade=0,
                        tile_size=(32, 24)) == plain
    assert GRAD not in [t for t, _ in _chunks(plain)]
    sizes = [len(plain)]
    for g in (1, 6, 11, 15):
        data = roimc.encode(a, mode="near-lossless", max_error=2, grade=g, tile_size=(32, 24))
        diff = np.abs(roimc.decode(data).astype(int) - a)
        raised = sample_bounds(roimc.info(data), None) == 3
        assert raised.sum() == g * a.size // 16
        assert diff[~raised].max() <= 2 and diff[raised].max() == 3
        sizes.append(len(data))
    # more raised sixteenths, fewer bytes (grade 1 may not pay for its 13-byte chunk)
    assert sizes[1:] == sorted(sizes[1:], reverse=True) and sizes[-1] < sizes[0]


def _graded_file(mask=True):
    a = make_values("smooth", (23, 19), 8, 2).astype(np.uint8)
    m = make_mask("blob", 23, 19, 3) if mask else None
    kwargs = dict(roi=m, roi_max_error=0) if mask else {}
    return a, roimc.encode(a, mode="near-lossless", max_error=3, grade=7, **kwargs)


def _with_version(data, minor):
    chunks = _chunks(data)
    header = container.Header.unpack(chunks[0][1])
    header.version = (1, minor)
    return _rebuild([(HEAD, header.pack())] + chunks[1:])


def test_grad_chunk_rules_are_enforced():
    a, data = _graded_file()
    assert np.abs(roimc.decode(data).astype(int) - a).max() == 4
    chunks = _chunks(data)
    grad = next(c for c in chunks if c[0] == GRAD)
    with pytest.raises(roimc.UnsupportedError, match="GRAD chunk in a file of version 1.9"):
        roimc.decode(_with_version(data, 9))             # E47
    with pytest.raises(roimc.CorruptDataError, match="GRAD chunks"):
        roimc.decode(_rebuild(chunks[:2] + [grad] + chunks[2:]))   # two
    tiles = [i for i, c in enumerate(chunks) if c[0] == TILE]
    moved = [c for c in chunks if c[0] != GRAD]
    moved.insert(tiles[-1], grad)
    with pytest.raises(roimc.CorruptDataError, match="before the first TILE"):
        roimc.decode(_rebuild(moved))
    top = (1 << roimc.info(data)["bits"]) - 1
    with pytest.raises(roimc.CorruptDataError, match="raises the bound"):   # N + 1 > MAXVAL
        roimc.decode(_replace(data, NEAR, struct.pack(">HH", top, 0)))
    lossless = roimc.encode(a)
    with pytest.raises(roimc.UnsupportedError, match="GRAD"):     # E40
        roimc.decode(_rebuild(_chunks(lossless)[:1] + [grad] + _chunks(lossless)[1:]))


def test_graded_file_refuses_coder_0_tiles():
    a = make_values("smooth", (23, 19), 8, 2).astype(np.uint8)
    data = roimc.encode(a, mode="near-lossless", max_error=3, coder="golomb")
    chunks = _chunks(data)
    graded = _with_version(_rebuild(chunks[:2] + [(GRAD, b"\x05\x00")] + chunks[2:]), 10)
    with pytest.raises(roimc.UnsupportedError, match="no graded near-lossless form"):   # E46
        roimc.decode(graded)


@pytest.mark.parametrize("options", [
    dict(mode="near-lossless", max_error=2, grade=16),
    dict(mode="near-lossless", max_error=2, grade=-1),
    dict(mode="near-lossless", max_error=2, grade=2.5),
    dict(mode="near-lossless", max_error=2, grade=True),
    dict(mode="near-lossless", max_error=2, grade=3, coder="golomb"),
    dict(mode="lossless", grade=3),
    dict(mode="lossy", quality=3, grade=3),
    dict(mode="near-lossless", max_error=2, deadzone=256),
    dict(mode="near-lossless", max_error=2, deadzone=-1),
    dict(mode="near-lossless", max_error=2, deadzone=True),
    dict(mode="near-lossless", max_error=2, deadzone=1, coder="golomb"),
    dict(mode="lossless", deadzone=1),
])
def test_grade_option_errors(options):
    a = make_values("smooth", (9, 11), 8, 1).astype(np.uint8)
    with pytest.raises(roimc.InputError):
        roimc.encode(a, **options)


def test_info_and_cli_name_the_grade(tmp_path):
    from test_cli import assert_ok, cli
    a, data = _graded_file(mask=False)
    info = roimc.info(data)
    assert info["max_error"] == 3 and info["grade"] == 7 and info["deadzone"] == 0
    path = tmp_path / "g.rmc"
    path.write_bytes(data)
    r = cli("info", path)
    assert_ok(r)
    assert "every sample within 3 (4 on 7/16 of the samples)" in r.stdout
    path.write_bytes(roimc.encode(a, mode="near-lossless", max_error=3, grade=2, deadzone=1))
    r = cli("info", path)
    assert_ok(r)
    assert "every sample within 4 (5 on 2/16 of the samples)" in r.stdout


# --- the post-filter of the background (spec 8.8, format 1.11) ---------------------------------

FILT = container.FILT


def _spec_filter(plane, mask, bits, clip, shift, taps, bias, lo=0, hi=None):
    """Spec 8.8 sample by sample: the reference the vectorised filter must match (clip 0:
    none; results clamped to lo..hi, hi None: the largest coded value)."""
    h, w = plane.shape
    maxval = (1 << bits) - 1 if hi is None else hi
    offsets = [(0, 1), (0, 2), (1, -2), (1, -1), (1, 0), (1, 1), (1, 2),
               (2, -2), (2, -1), (2, 0), (2, 1), (2, 2)]

    def v(y, x):
        return int(plane[min(max(y, 0), h - 1)][min(max(x, 0), w - 1)])
    out = plane.astype(np.int64).copy()
    for y in range(h):
        for x in range(w):
            if mask is not None and mask[y][x]:
                continue
            t = bias + sum(wk * (v(y + dy, x + dx) + v(y - dy, x - dx) - 2 * v(y, x))
                           for wk, (dy, dx) in zip(taps, offsets))
            corr = (t + ((1 << shift) >> 1)) >> shift
            if clip:
                corr = min(max(corr, -clip), clip)
            out[y, x] = min(max(v(y, x) + corr, lo), maxval)
    return out


@FEW
@given(h=sides, w=sides, bits=st.integers(1, 16), kind=mask_kinds, seed=seeds,
       clip=st.integers(0, 15), shift=st.integers(0, 15),
       taps=st.lists(st.integers(-127, 127), min_size=12, max_size=12),
       bias=st.integers(-32768, 32767), frame_range=st.booleans())
def test_post_filter_matches_the_spec_sample_by_sample(h, w, bits, kind, seed, clip, shift,
                                                      taps, bias, frame_range):
    """The banded filter (bands of 3 rows here) equals spec 8.8's formula everywhere: edges
    repeated, ROI untouched, corrections clipped (clip 0, lossy and hybrid files: not),
    results clamped to 0..MAXVAL or to a frame's range lo..hi; any taps, 1 x N, primes,
    every depth."""
    import unittest.mock
    from roimc.codecs import postfilter
    plane = make_values("noise" if seed % 2 else "smooth", (h, w), bits, seed)
    mask = make_mask(kind, h, w, seed + 1)
    lo, hi = (int(plane.min()), int(plane.max())) if frame_range else (0, (1 << bits) - 1)
    with unittest.mock.patch.object(postfilter, "_BAND", 3):
        got = postfilter.filtered(plane, mask, hi, clip, shift, taps, bias, lo)
    assert np.array_equal(got, _spec_filter(plane, mask, bits, clip, shift, taps, bias, lo,
                                            hi))


def _noisy(shape, seed, bits=8):
    """Smooth content plus noise: the quantisation error a filter can reduce."""
    a = make_values("smooth", shape, bits, seed)
    noise = np.random.default_rng(seed).normal(0, 4 << max(0, bits - 8), a.shape)
    return np.clip(a + np.round(noise), 0, (1 << bits) - 1)


@FEW
@given(h=sides, w=sides, bits=st.integers(1, 16), kind=mask_kinds, seed=seeds,
       rgb=st.booleans(), grade=st.integers(0, 15), deadzone=deadzones)
def test_post_filtered_files_keep_bound_plus_clip(h, w, bits, kind, seed, rgb, grade,
                                                   deadzone):
    """With post_filter every ROI sample keeps its bound, every other sample is within its
    bound plus the stored clip; a file with FILT is 1.11, and one without it is byte for
    byte the file without post_filter. The reconstruction the encoder returns with the file
    (which the bound searches of lossy and hybrid modes measure) is the decoded image."""
    top = (1 << bits) - 1
    n = int(np.random.default_rng(seed).integers(0, min(top, 12) + 1))
    shape = (h, w, 3) if rgb else (h, w)
    a = _noisy(shape, seed, bits).astype(np.uint16 if bits > 8 else np.uint8)
    mask = make_mask(kind, h, w, seed + 1)
    options = dict(mode="near-lossless", max_error=n, grade=grade, deadzone=deadzone,
                   bits=bits)
    if mask is not None:
        options.update(roi=mask, roi_max_error=0)
    data, kept = roimc.api._encode(a, post_filter=True, **options)
    info, out = roimc.info(data), roimc.decode(data)
    assert kept.dtype == out.dtype and np.array_equal(kept, out)
    assert data == roimc.encode(a, post_filter=True, **options)
    bound = sample_bounds(info, mask)
    diff = np.abs(out.astype(np.int64) - a)
    assert (diff <= (bound[..., None] if rgb else bound)).all()
    if mask is not None:
        assert (diff[mask] == 0).all()
    filt = [p for t, p in _chunks(data) if t == FILT]
    if filt:
        assert _version(info) == max((1, 11), _tile_version(data))
        assert len(filt[0]) == 1 + 15 * (3 if rgb else 1)
        assert 1 <= info["post_filter"]["clip"] <= 4
    else:
        assert info["post_filter"] is None
        assert data == roimc.encode(a, **options)


def _ct():
    from roimc.io import read_image
    return np.asarray(read_image(Path(roimc.__file__).parent / "samples" / "ct_small.png"))


def test_post_filter_lowers_the_background_error():
    """The bundled CT slice at bound 8 outside a disc: the filter lowers the background's
    squared error by a sixth or more for a few more bytes; the ROI stays exact and the
    errors stay within 8 + clip."""
    a = _ct()
    yy, xx = np.indices(a.shape)
    mask = (yy - 64) ** 2 + (xx - 64) ** 2 <= 30 ** 2
    plain = roimc.encode(a, mode="near-lossless", max_error=8, roi=mask)
    filtered = roimc.encode(a, mode="near-lossless", max_error=8, roi=mask, post_filter=True)
    clip = roimc.info(filtered)["post_filter"]["clip"]
    e0 = roimc.decode(plain).astype(float) - a
    e1 = roimc.decode(filtered).astype(float) - a
    assert np.mean(e1[~mask] ** 2) < 5 / 6 * np.mean(e0[~mask] ** 2)
    assert (e1[mask] == 0).all() and np.abs(e1).max() <= 8 + clip
    assert len(plain) < len(filtered) <= len(plain) + 12 + 16


def test_post_filter_is_left_out_where_it_cannot_help():
    """Lossless (bound 0) and an all-ROI image: nothing to correct, no FILT chunk."""
    a = _noisy((20, 30), 7).astype(np.uint8)
    for options in (dict(max_error=0), dict(max_error=3, roi=np.ones((20, 30), bool))):
        data = roimc.encode(a, mode="near-lossless", post_filter=True, **options)
        assert FILT not in [t for t, _ in _chunks(data)]


def _filtered_file():
    a = _ct()[:40, :36]
    mask = make_mask("blob", 40, 36, 2)
    data = roimc.encode(a, mode="near-lossless", max_error=8, roi=mask, post_filter=True)
    assert FILT in [t for t, _ in _chunks(data)]
    return a, data


@pytest.mark.parametrize("payload", [b"", b"\x02", b"\x02" + bytes(14), b"\x02" + bytes(16),
                                     b"\x00" + bytes(15), b"\x10" + bytes(15),
                                     b"\x02\x10" + bytes(14)])
def test_bad_filt_payload_is_refused(payload):                     # E48
    _, data = _filtered_file()
    with pytest.raises(roimc.CorruptDataError, match="FILT"):
        roimc.decode(_replace(data, FILT, payload))


def test_filt_chunk_rules_are_enforced():
    a, data = _filtered_file()
    chunks = _chunks(data)
    filt = next(c for c in chunks if c[0] == FILT)
    with pytest.raises(roimc.UnsupportedError, match="FILT chunk in a near-lossless file of version 1.10"):
        roimc.decode(_with_version(data, 10))            # E49
    with pytest.raises(roimc.CorruptDataError, match="FILT chunks"):
        roimc.decode(_rebuild(chunks[:2] + [filt] + chunks[2:]))   # two (E41)
    moved = [c for c in chunks if c[0] != FILT]
    moved.insert(len(moved) - 1, filt)                   # after the TILE (E41)
    with pytest.raises(roimc.CorruptDataError, match="before the first TILE"):
        roimc.decode(_rebuild(moved))
    lossless = _chunks(roimc.encode(a))
    with pytest.raises(roimc.UnsupportedError, match="FILT"):     # E40
        roimc.decode(_rebuild(lossless[:1] + [filt] + lossless[1:]))
    # a 1.10 reader: FILT is an unknown critical chunk
    import unittest.mock
    known = container.KNOWN_CRITICAL - {FILT}
    with unittest.mock.patch.object(container, "KNOWN_CRITICAL", known):
        with pytest.raises(roimc.UnsupportedError, match="FILT"):
            roimc.decode(data)


def test_filt_with_other_taps_still_decodes_within_bound_plus_clip():
    """Any taps are a valid stream: the bound plus the clip still holds outside the ROI and
    the ROI stays exact (the dsum chunk, which covered the encoder's taps, is dropped)."""
    a, data = _filtered_file()
    mask = roimc.read_mask(data)
    chunks = [c for c in _chunks(data) if c[0] != container.DSUM]
    rng = np.random.default_rng(1)
    for _ in range(5):
        payload = bytes([int(rng.integers(1, 16)), int(rng.integers(0, 16))]) + \
            rng.integers(0, 256, 14, dtype=np.uint8).tobytes()
        out = roimc.decode(_rebuild([(t, payload if t == FILT else p) for t, p in chunks]))
        diff = np.abs(out.astype(int) - a)
        assert (diff[mask] == 0).all() and diff.max() <= 8 + payload[0]


@pytest.mark.parametrize("options", [
    dict(mode="lossless", post_filter=True),
    dict(mode="lossy", quality=3, post_filter=True),
    dict(mode="near-lossless", max_error=2, post_filter=1),
    dict(mode="near-lossless", max_error=2, post_filter="yes"),
])
def test_post_filter_option_errors(options):
    a = make_values("smooth", (9, 11), 8, 1).astype(np.uint8)
    with pytest.raises(roimc.InputError):
        roimc.encode(a, **options)


def test_info_and_cli_name_the_post_filter(tmp_path):
    from test_cli import assert_ok, cli
    _, data = _filtered_file()
    clip = roimc.info(data)["post_filter"]["clip"]
    path = tmp_path / "f.rmc"
    path.write_bytes(data)
    r = cli("info", path)
    assert_ok(r)
    assert f"elsewhere within {8 + clip}, post-filtered" in r.stdout


# --- golden near-lossless vectors (tests/golden/near, made by tests/golden/make_golden.py) ---

NEAR_GOLDEN = Path(__file__).resolve().parent / "golden" / "near"
NEAR_VECTORS = json.loads((NEAR_GOLDEN / "vectors.json").read_text())


def _golden(name):
    def load(suffix):
        return np.load(NEAR_GOLDEN / f"{name}{suffix}", allow_pickle=False)
    mask = load(".mask.npy") if NEAR_VECTORS[name]["mask"] else None
    return load(".npy"), load(".decoded.npy"), mask, (NEAR_GOLDEN / f"{name}.rmc").read_bytes()


def chunk_payload(name, ctype):
    data = (NEAR_GOLDEN / f"{name}.rmc").read_bytes()
    return next(c.payload for c in container.parse(data) if c.ctype == ctype)


def test_near_golden_set_is_complete():
    assert sorted(p.stem for p in NEAR_GOLDEN.glob("*.rmc")) == sorted(NEAR_VECTORS)
    versions = {v["version"] for v in NEAR_VECTORS.values()}
    assert versions == {"1.0", "1.2", "1.5", "1.6", "1.8", "1.10", "1.11", "1.14"}
    assert {v["version"] for v in NEAR_VECTORS.values() if v.get("frozen")} == {
        "1.2", "1.5", "1.6", "1.8", "1.10", "1.11"}
    methods = {NEAR_VECTORS[n]["version"]: mask_method(chunk_payload(n, MASK))
               for n in NEAR_VECTORS if NEAR_VECTORS[n]["mask"]}
    assert methods["1.8"] == 1 and methods["1.0"] == methods["1.2"] == 0   # both MASK methods


@pytest.mark.parametrize("name", sorted(NEAR_VECTORS))
def test_near_golden_file_decodes_to_its_reconstruction(name):
    array, decoded, mask, data = _golden(name)
    meta = NEAR_VECTORS[name]
    assert len(data) == meta["bytes"] and roimc.info(data)["version"] == meta["version"]
    for threads in (1, 2):
        out = roimc.decode(data, threads=threads)
        assert out.dtype == decoded.dtype and np.array_equal(out, decoded)
    bound = sample_bounds(roimc.info(data), mask)
    bound = bound[..., None] if array.ndim == 3 else bound
    assert np.all(np.abs(decoded.astype(int) - array) <= bound)
    assert roimc.info(data)["grade"] == meta["options"].get("grade", 0)
    assert roimc.info(data)["deadzone"] == meta["options"].get("deadzone", 0)
    assert (roimc.info(data)["post_filter"] is not None) == meta["options"].get("post_filter",
                                                                                 False)
    if mask is not None:
        assert np.array_equal(roimc.read_mask(data), mask)


@pytest.mark.parametrize("name", sorted(n for n, v in NEAR_VECTORS.items() if not v.get("frozen")))
def test_near_encoder_reproduces_golden_bytes(name):
    array, _, mask, data = _golden(name)
    options = dict(NEAR_VECTORS[name]["options"])
    if mask is not None:
        options["roi"] = mask
    for threads in (1, 2):
        assert roimc.encode(array, threads=threads, **options) == data


def test_near_golden_form_2_keeps_the_extremes_and_needs_its_levels():
    """The version-1.6 coder-4 vectors decode their samples at 0 and MAXVAL exactly, and read
    as form 1 they decode to something else (their streams use the levels form 2 adds)."""
    names = [n for n, v in NEAR_VECTORS.items() if v["version"] == "1.6"]
    assert len(names) >= 4
    for name in names:
        array, decoded, mask, data = _golden(name)
        top = (1 << roimc.info(data)["bits"]) - 1
        ends = (array == 0) | (array == top)
        assert ends.sum() >= 20 and np.array_equal(decoded[ends], array[ends]), name
        head = container.parse(data)
        opts = NEAR_VECTORS[name]["options"]
        n, m = opts["max_error"], opts.get("roi_max_error", opts["max_error"])
        if n == 0 and m == 0:
            continue
        tiles = [c for c in head if c.ctype == TILE]
        bits = [roimc.info(data)["bits"]] * (array.shape[-1] if array.ndim == 3 else 1)
        h, w = array.shape[:2]
        if len(tiles) == 1 and tiles[0].payload[8] == core.CODER_CM2:
            stream = bytes(tiles[0].payload[9:])
            assert np.array_equal(core.decode_tile_near(stream, w, h, bits, core.CODER_CM2,
                                                        mask, n, m, 2).transpose(1, 2, 0)
                                  .reshape(decoded.shape), decoded)
            try:
                other = core.decode_tile_near(stream, w, h, bits, core.CODER_CM2, mask, n, m, 1)
            except roimc.CorruptDataError:
                continue
            assert not np.array_equal(other.transpose(1, 2, 0).reshape(decoded.shape), decoded)


def test_near_golden_covers_both_coders_weights_and_masks():
    coders, weighted = set(), False
    for name in NEAR_VECTORS:
        for c in container.parse(_golden(name)[3]):
            if c.ctype == TILE:
                coders.add(c.payload[8])
                weighted |= c.payload[8] == core.CODER_CM and c.payload[9] != 0
    assert {core.CODER_GOLOMB, core.CODER_CM, core.CODER_CM2} <= coders and weighted
    assert any(v["mask"] for v in NEAR_VECTORS.values())
