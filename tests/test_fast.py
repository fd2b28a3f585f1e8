"""Coder 5 (linear prediction, static rANS, run mode; spec 16C) and the efforts' choice
between coders 4 and 5."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roimc
from roimc import container, core
from roimc.codecs import lossless, predictor

import spec_fast

FAST = core.CODER_FAST
SOME = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOLDEN = Path(__file__).parent / "golden"


def smooth(shape, bits, seed):
    rng = np.random.default_rng(seed)
    v = np.cumsum(np.cumsum(rng.integers(-2, 3, size=shape), axis=-1), axis=-2)
    return ((v + (1 << (bits - 1))) % (1 << bits)).astype(np.int32)


def samples(kind, shape, bits, rng):
    top = 1 << bits
    if kind == "noise":
        return rng.integers(0, top, size=shape).astype(np.int32)
    if kind == "smooth":
        return smooth(shape, bits, int(rng.integers(1 << 30)))
    if kind == "constant":
        return np.full(shape, rng.integers(0, top), np.int32)
    # flat background with a textured patch: run mode, interruptions and regular samples
    t = np.zeros(shape, np.int32)
    h, w = shape[1:]
    y0, x0 = h // 3, w // 4
    y1, x1 = min(h, y0 + max(1, h // 3)), min(w, x0 + max(1, w // 2))
    t[:, y0:y1, x0:x1] = rng.integers(0, top, size=(shape[0], y1 - y0, x1 - x0))
    return t


def weights_for(t, how, rng):
    if how == "none":
        return None
    if how == "fit":
        return [predictor.fit(t, p) for p in range(t.shape[0])]
    return [rng.integers(-32768, 32768, size=10 if p == 0 else 15).astype(np.int16)
            for p in range(t.shape[0])]


@SOME
@given(h=st.integers(1, 40), w=st.integers(1, 40), planes=st.integers(1, 4),
       bits=st.integers(1, 17), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["noise", "smooth", "constant", "patch"]),
       weights=st.sampled_from(["none", "fit", "random"]))
def test_fast_tile_roundtrip(h, w, planes, bits, seed, kind, weights):
    """Every shape, depth 1-17, 1-4 planes, any stored weights: bit-exact."""
    rng = np.random.default_rng(seed)
    t = samples(kind, (planes, h, w), bits, rng)
    wts = weights_for(t, weights, rng)
    stream = core.encode_tile_cm(t, [bits] * planes, wts, FAST)
    assert np.array_equal(core.decode_tile(stream, w, h, [bits] * planes, FAST), t)
    if wts is None:
        assert core.encode_tile(t, [bits] * planes, FAST) == stream


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 9), w=st.integers(1, 9), planes=st.integers(1, 3),
       bits=st.integers(1, 17), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["noise", "smooth", "constant", "patch"]),
       weights=st.sampled_from(["none", "fit", "random"]))
def test_spec_decoder_agrees_with_the_core(h, w, planes, bits, seed, kind, weights):
    """The Python decoder written from spec 16C reads the core's streams to the same samples."""
    rng = np.random.default_rng(seed)
    t = samples(kind, (planes, h, w), bits, rng)
    stream = core.encode_tile_cm(t, [bits] * planes, weights_for(t, weights, rng), FAST)
    assert np.array_equal(np.array(spec_fast.decode(stream, w, h, [bits] * planes)), t)


@pytest.mark.parametrize("name", ["fast_gray16", "fast_runs_gray12", "fast_nofit_gray8",
                                  "fast_rgb8_multitile"])
def test_spec_decoder_reads_the_golden_vectors(name):
    data = (GOLDEN / f"{name}.rmc").read_bytes()
    chunks = container.parse(data)
    header = container.Header.unpack(chunks[0].payload)
    expected = roimc.decode(data)
    bits = lossless.plane_bits(header)
    checked = 0
    for chunk, (index, y0, y1, x0, x1) in zip([c for c in chunks if c.ctype == container.TILE],
                                              lossless._tiles(header)):
        coder, stream = lossless.tile_stream(chunk, 0, index)
        if coder != FAST:     # a small tile the coder would expand is stored raw
            continue
        checked += 1
        t = np.array(spec_fast.decode(bytes(stream), x1 - x0, y1 - y0, bits))
        assert np.array_equal(t, core.decode_tile(stream, x1 - x0, y1 - y0, bits, FAST))
    assert checked and json.loads((GOLDEN / "vectors.json").read_text())[name]["shape"] == \
        list(expected.shape)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (1, 97), (97, 1), (2, 2), (13, 31),
                                   (61, 7)])
@pytest.mark.parametrize("bits", [1, 2, 7, 8, 12, 16, 17])
def test_fast_odd_shapes_and_depths(shape, bits):
    rng = np.random.default_rng(bits * 1000 + shape[0] * 31 + shape[1])
    for kind in ("noise", "smooth", "constant", "patch"):
        t = samples(kind, (3,) + shape, bits, rng)
        s = core.encode_tile_cm(t, [bits] * 3, weights_for(t, "fit", rng), FAST)
        assert np.array_equal(core.decode_tile(s, shape[1], shape[0], [bits] * 3, FAST), t)


def test_runs_longer_than_the_run_limit():
    """Runs are capped at 2^18 - 1 samples; a longer one continues after a regular sample."""
    w = (1 << 18) + 1000
    t = np.zeros((1, 2, w), np.int32)
    t[0, 1, 5] = 3
    s = core.encode_tile(t, [2], FAST)
    assert np.array_equal(core.decode_tile(s, w, 2, [2], FAST), t)
    assert len(s) < 80


def test_flat_areas_cost_far_below_a_bit():
    t = np.zeros((1, 256, 256), np.int32)
    t[0, 100:120, 100:140] = smooth((1, 20, 40), 12, 3)[0]
    s = core.encode_tile(t, [12], FAST)
    assert len(s) * 8 / t.size < 0.2


def _stream():
    t = smooth((2, 19, 23), 10, 5)
    t[:, :4] = 0     # a run or two
    return t, core.encode_tile_cm(t, [10, 10], [predictor.fit(t, 0), predictor.fit(t, 1)], FAST)


def test_header_fields_are_checked():
    t, s = _stream()
    with pytest.raises(roimc.CorruptDataError):      # predictor count
        core.decode_tile(bytes([9]) + s[1:], 23, 19, [10, 10], FAST)
    a = 1 + 20 + 1 + 30
    rlen = int.from_bytes(s[a:a + 4], "big")
    for bad in (0, 2, rlen + 1, rlen - 1):             # rANS length
        with pytest.raises(roimc.CorruptDataError):
            core.decode_tile(s[:a] + bad.to_bytes(4, "big") + s[a + 4:], 23, 19, [10, 10], FAST)
    with pytest.raises(roimc.CorruptDataError):      # initial state below 2^16
        core.decode_tile(s[:a + 4] + b"\0\0\0\0" + s[a + 8:], 23, 19, [10, 10], FAST)


def test_coder5_needs_version_1_4():
    a = smooth((1, 30, 30), 12, 2)[0].astype(np.uint16)
    data = roimc.encode(a, coder="fast")
    assert roimc.info(data)["version"] == "1.4"
    chunks = [(c.ctype, c.payload) for c in container.parse(data)]
    head = bytearray(chunks[0][1])
    head[1] = 3
    chunks[0] = (container.HEAD, bytes(head))
    with pytest.raises(roimc.CorruptDataError, match="coder 5"):
        roimc.decode(container.pack(chunks))


def test_coder5_is_lossless_only():
    a = np.zeros((8, 8), np.uint8)
    for mode, extra in (("near-lossless", dict(max_error=1)), ("hybrid", {})):
        with pytest.raises(roimc.InputError):
            roimc.encode(a, mode=mode, coder="fast", **extra)
    with pytest.raises(roimc.RmcError):
        core.decode_tile_near(b"\0" * 8, 4, 4, [8], FAST, None, 1, 1)


@pytest.mark.parametrize("kind,bits", [("noise", 16), ("smooth", 8), ("patch", 12)])
def test_auto_keeps_coder4_only_where_it_saves_a_sixteenth(kind, bits):
    rng = np.random.default_rng(bits)
    t = samples(kind, (1, 48, 64), bits, rng)
    a = t[0].astype(np.uint16 if bits > 8 else np.uint8)
    data = roimc.encode(a, effort=3, tile_size=1024)
    used = [c.payload[8] for c in container.parse(data) if c.ctype == container.TILE]
    wts = [predictor.fit(t, 0, 20000)]
    s5 = core.encode_tile_cm(t, [bits], wts, FAST)
    s4 = core.encode_tile_cm(t, [bits], wts, core.CODER_CM2)
    expected = core.CODER_CM2 if 16 * len(s4) <= 15 * len(s5) else FAST
    if min(len(s4), len(s5)) > -(-t.size * bits // 8):
        expected = core.CODER_RAW
    assert used == [expected]
    assert np.array_equal(roimc.decode(data), a)


def test_efforts_7_to_9_keep_coder4():
    a = samples("noise", (1, 20, 20), 16, np.random.default_rng(1))[0].astype(np.uint16)
    a[:10] = 1000
    used = {c.payload[8] for c in container.parse(roimc.encode(a, effort=7))
            if c.ctype == container.TILE}
    assert used == {core.CODER_CM2}


def test_spec_worked_example_21_8():
    t = np.array([[[0, 0], [0, 5]]], np.int32)
    s = core.encode_tile(t, [3], FAST)
    assert s == bytes.fromhex("00 00000004 00000100 00514000000000008200")
    assert np.array_equal(core.decode_tile(s, 2, 2, [3], FAST), t)
    assert spec_fast.decode(s, 2, 2, [3]) == [[[0, 0], [0, 5]]]


@pytest.mark.parametrize("effort", [2, 5, 7, 9])
def test_near_lossless_at_every_effort_uses_coder4(effort):
    """Efforts whose lossless coder is auto or cm2 code near-lossless tiles with coder 4's
    near-lossless form."""
    a = smooth((1, 20, 24), 8, effort)[0].astype(np.uint8)
    data = roimc.encode(a, mode="near-lossless", max_error=1, effort=effort)
    assert {c.payload[8] for c in container.parse(data) if c.ctype == container.TILE} <= \
        {core.CODER_CM2, core.CODER_RAW}
    assert np.abs(roimc.decode(data).astype(int) - a).max() <= 1
