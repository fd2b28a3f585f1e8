"""The latent coder (spec/rmc-v1.md 16D, LATN methods 2 and 3) and the LATN methods without
the network: exact round trips, agreement with a decoder written from the spec alone, damage,
arguments, versions and limits. Needs no PyTorch."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spec_latent
from golden import make_golden
from roimc import core
from roimc.errors import CorruptDataError, InputError
from roimc.neural import latent


def latent_plane(m, h, w, spread, seed, zeros=0.5):
    """An (m, h, w) int32 latent plane: Laplacian-like values of the given spread, a share
    `zeros` of them 0, and the extremes -32767 and 32767 when the spread reaches them."""
    rng = np.random.default_rng(seed)
    v = np.rint(rng.laplace(0, max(spread, 1e-9) / 3, size=(m, h, w)))
    v[rng.random((m, h, w)) < zeros] = 0
    if spread >= 32767 and v.size > 1:
        v.flat[0], v.flat[-1] = 32767, -32767
    return np.clip(v, -32767, 32767).astype(np.int32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.sampled_from([2, 3, 7, 16, 30, 64]), h=st.integers(1, 5), w=st.integers(1, 6),
       spread=st.sampled_from([0, 1, 3, 20, 300, 32767]), zeros=st.sampled_from([0, 0.5, 0.9]),
       seed=st.integers(0, 2**32 - 1))
def test_latent_coder_matches_the_spec(m, h, w, spread, zeros, seed):
    """The C core's latent coder (16D) round-trips exactly, and the decoder written from the
    spec alone reads its streams to the same values: every channel group, the escape and the
    extremes +-32767."""
    lat = latent_plane(m, h, w, spread, seed, zeros)
    stream = core.encode_latent(lat)
    assert np.array_equal(core.decode_latent(stream, lat[0], m), lat)
    assert np.array_equal(np.array(spec_latent.decode(stream, lat[0].tolist(), m)), lat)


def test_latent_coder_refuses_damage_like_the_spec():
    """Every truncation and byte change of a stream is refused, or decodes to the values the
    spec's decoder gives; neither crashes."""
    lat = latent_plane(5, 4, 5, 300, 7)
    stream = core.encode_latent(lat)
    for n in range(len(stream)):
        with pytest.raises(CorruptDataError):
            core.decode_latent(stream[:n], lat[0], 5)
        with pytest.raises(spec_latent.SpecError, match="E59"):
            spec_latent.decode(stream[:n], lat[0].tolist(), 5)
    with pytest.raises(CorruptDataError):
        core.decode_latent(stream + b"\0", lat[0], 5)
    rng = np.random.default_rng(3)
    for _ in range(120):
        bad = bytearray(stream)
        bad[int(rng.integers(len(bad)))] ^= int(rng.integers(1, 256))
        try:
            ours = core.decode_latent(bytes(bad), lat[0], 5)
        except CorruptDataError:
            ours = None
        try:
            theirs = np.array(spec_latent.decode(bytes(bad), lat[0].tolist(), 5))
        except spec_latent.SpecError:
            theirs = None
        assert (ours is None) == (theirs is None)
        assert ours is None or np.array_equal(ours, theirs)


def test_latent_coder_arguments_are_checked():
    lat = np.zeros((3, 2, 2), np.int32)
    for bad in (np.zeros((1, 2, 2), np.int32), np.zeros((65, 1, 1), np.int32),
                np.full((2, 2, 2), 32768, np.int32), np.full((2, 2, 2), -32768, np.int32)):
        with pytest.raises(InputError):
            core.encode_latent(bad)
    stream = core.encode_latent(lat)
    with pytest.raises(InputError):
        core.decode_latent(stream, np.full((2, 2), 40000), 3)   # channel 0 out of range
    with pytest.raises(InputError):
        core.decode_latent(stream, lat[0], 1)


def method_2_payload(lo, hi, qualities, lat, frame=0):
    """A LATN payload of method 2 (spec 8.5; what the 1.7 and 1.8 encoders wrote)."""
    return latent.coded_payload(frame, lo, hi, qualities, lat, latent.METHOD_LATENT)


def test_latent_method_2_needs_version_1_7_and_bounded_positions():
    lat = latent_plane(4, 3, 5, 40, 1)[None]
    payload = method_2_payload(0, 255, [4], lat)
    assert np.array_equal(latent.unpack(payload, 0, 255, 1, 4, 24, 40, (1, 7))[3], lat)
    for version in ((1, 2), (1, 6)):
        with pytest.raises(CorruptDataError, match="method 2"):
            latent.unpack(payload, 0, 255, 1, 4, 24, 40, version)
    huge = latent._FIXED.pack(0, 0, 255, 1, 4, 1 << 15, 1 << 14) + bytes([4, 2]) + bytes(9)
    with pytest.raises(CorruptDataError, match="2\\^28"):   # before any allocation
        latent.unpack(huge, 0, 255, 1, 4, 8 << 15, 8 << 14)


def method_0_payload(lo, hi, qualities, lat, frame=0):
    """A LATN payload of method 0 (spec 8.5; written by the encoders of versions 1.2-1.6)."""
    return latent.coded_payload(frame, lo, hi, qualities, lat, latent.METHOD_CORE)


@settings(max_examples=30, deadline=None)
@given(p=st.integers(1, 3), m=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 9),
       spread=st.sampled_from([0, 1, 40, 32767]), seed=st.integers(0, 2**32 - 1))
def test_latent_method_0_still_decodes(p, m, h, w, spread, seed):
    """Files of versions 1.2-1.6 hold method 0: it decodes in every version, 1.7 included."""
    rng = np.random.default_rng(seed)
    lat = rng.integers(-spread, spread + 1, size=(p, m, h, w)).astype(np.int32)
    q = [int(v) for v in rng.integers(1, 9, p)]
    payload = method_0_payload(5, 900, q, lat, frame=2)
    for version in ((1, 2), (1, 6), (1, 7)):
        lo, hi, qq, back = latent.unpack(payload, 2, 1023, p, m, h * 8, w * 8, version)
        assert (lo, hi, qq) == (5, 900, q) and np.array_equal(back, lat)


GOLDEN = Path(__file__).resolve().parent / "golden" / "latent"
VECTORS = json.loads((GOLDEN / "vectors.json").read_text())


def plane_streams(payload, planes, channels, h, w):
    """(form, the latent coder stream) of each plane of a method-2 or method-3 payload: form 0
    after its block-means group (checked against METHOD_2_CODERS), form 1 alone (16D.5)."""
    mv, out = memoryview(payload), []
    pos = latent._FIXED.size + planes
    method = payload[pos]
    pos += 1
    for k in range(planes):
        form = 0
        if method == latent.METHOD_LATENT_DC:
            form = payload[pos]
            pos += 1
        if form == 0:
            _, pos = latent._group_stream(mv, pos, k, (h, w), latent.METHOD_2_CODERS)
        n = int.from_bytes(payload[pos:pos + 4], "big")
        out.append((form, payload[pos + 4:pos + 4 + n]))
        pos += 4 + n
    assert pos == len(payload)
    return out


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_latent_golden_vectors(name):
    """Committed method-2 and method-3 payloads (tests/golden/make_golden.py) decode to their
    latents, by the C core and by the spec's decoder, and the encoder still writes exactly
    those bytes (method 2: as the method-2 body it builds)."""
    meta = VECTORS[name]
    lat = np.load(GOLDEN / f"{name}.npy", allow_pickle=False)
    payload = (GOLDEN / f"{name}.latn").read_bytes()
    assert list(lat.shape) == meta["shape"] and len(payload) == meta["bytes"]
    assert latent.method(payload) == meta["method"]
    p, m, h, w = lat.shape
    lo, hi, qualities, back = latent.unpack(payload, meta["frame"], 65535, p, m, h * 8, w * 8)
    assert (lo, hi, qualities) == (meta["lo"], meta["hi"], meta["qualities"])
    assert np.array_equal(back, lat)
    if meta["method"] == latent.METHOD_LATENT:
        assert method_2_payload(lo, hi, qualities, lat, meta["frame"]) == payload
    else:
        assert latent.pack(meta["frame"], lo, hi, qualities, lat) == payload
    for k, (form, stream) in enumerate(plane_streams(payload, p, m, h, w)):
        first = None if form else lat[k, 0].tolist()
        assert np.array_equal(np.array(spec_latent.decode(stream, first, m, (h, w))), lat[k])


def test_latent_golden_vectors_cover_both_methods_and_forms():
    forms = {(VECTORS[n]["method"], f) for n in VECTORS
             for f, _ in plane_streams((GOLDEN / f"{n}.latn").read_bytes(),
                                       *VECTORS[n]["shape"])}
    assert forms == {(2, 0), (3, 0), (3, 1)}


def test_latent_golden_vectors_cover_the_escape_and_the_extremes():
    lat = np.load(GOLDEN / "latent_extremes5.npy", allow_pickle=False)
    assert lat[:, 1:].max() == 32767 and lat[:, 1:].min() == -32767
    assert ((np.abs(lat[:, 1:]) >= 18) & (np.abs(lat[:, 1:]) < 32767)).any()


def test_block_means_may_use_coder_4_in_method_2_only():
    """Method 2's first group may be a coder-4 stream (spec 8.5); in method 0 that is E53."""
    lat = latent_plane(3, 6, 7, 40, 11)[None]
    y, x = np.mgrid[0:6, 0:7]
    lat[0, 0] = 50 + 4 * x + 3 * y + (x * y) % 3
    group = latent._channel_stream(lat[0, 0], (core.CODER_CM2,))
    rest = core.encode_latent(lat[0])
    head = latent._FIXED.pack(0, 0, 255, 1, 3, 6, 7) + bytes([2])
    payload = head + bytes([latent.METHOD_LATENT]) + group + len(rest).to_bytes(4, "big") + rest
    assert group[3] == core.CODER_CM2
    assert np.array_equal(latent.unpack(payload, 0, 255, 1, 3, 48, 56)[3], lat)
    old = method_0_payload(0, 255, [2], lat)
    i = latent._FIXED.size + 2
    coded = latent._channel_stream(lat[0, 0], (core.CODER_CM2,))
    first_len = len(latent._channel_stream(lat[0, 0]))
    bad = old[:i] + coded + old[i + first_len:]
    with pytest.raises(CorruptDataError, match="coder 4"):
        latent.unpack(bad, 0, 255, 1, 3, 48, 56, (1, 7))


# --- method 3: the block means after the other channels (16D.5) ------------------------------

def smooth_means(lat, seed):
    """lat with block means that change smoothly, as an image's do."""
    rng = np.random.default_rng(seed)
    _, h, w = lat.shape
    y, x = np.mgrid[0:h, 0:w]
    lat[0] = np.clip(200 + 9 * x - 6 * y + rng.integers(-2, 3, size=(h, w)), -32767, 32767)
    return lat


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.sampled_from([1, 2, 3, 7, 16, 36, 64]), h=st.integers(1, 5), w=st.integers(1, 6),
       spread=st.sampled_from([0, 1, 3, 20, 300, 32767]), smooth=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_block_means_coder_matches_the_spec(m, h, w, spread, smooth, seed):
    """Streams with the block means (16D.5) round-trip exactly in the C core, and the decoder
    written from the spec reads them to the same values: every channel count (the edge terms
    need channels up to 35), the escape, the extremes."""
    lat = latent_plane(m, h, w, spread, seed)
    if smooth:
        lat = smooth_means(lat, seed)
    stream = core.encode_latent(lat, dc=True)
    assert np.array_equal(core.decode_latent(stream, None, m, (h, w)), lat)
    assert np.array_equal(np.array(spec_latent.decode(stream, None, m, (h, w))), lat)


def test_block_means_stream_damage_is_refused_like_the_spec():
    lat = smooth_means(latent_plane(7, 4, 5, 300, 3), 3)
    lat[0, 1, 1] = 32767   # a residual that needs the escape
    stream = core.encode_latent(lat, dc=True)
    for n in range(len(stream)):
        with pytest.raises(CorruptDataError):
            core.decode_latent(stream[:n], None, 7, (4, 5))
        with pytest.raises(spec_latent.SpecError, match="E59"):
            spec_latent.decode(stream[:n], None, 7, (4, 5))
    rng = np.random.default_rng(5)
    for _ in range(60):
        bad = bytearray(stream)
        bad[rng.integers(0, len(bad))] ^= 1 << int(rng.integers(0, 8))
        try:
            ours = core.decode_latent(bytes(bad), None, 7, (4, 5))
        except CorruptDataError:
            with pytest.raises(spec_latent.SpecError, match="E59"):
                spec_latent.decode(bytes(bad), None, 7, (4, 5))
            continue
        assert np.array_equal(np.array(spec_latent.decode(bytes(bad), None, 7, (4, 5))), ours)


def test_block_means_coder_arguments():
    with pytest.raises(InputError):
        core.encode_latent(np.zeros((65, 2, 2), np.int32), dc=True)
    with pytest.raises(InputError):
        core.encode_latent(np.full((1, 2, 2), 32768, np.int32), dc=True)
    lat = latent_plane(1, 3, 3, 20, 1)
    assert np.array_equal(core.decode_latent(core.encode_latent(lat, dc=True), None, 1, (3, 3)),
                          lat)
    with pytest.raises(InputError):   # one channel has nothing to code without the means
        core.encode_latent(lat)


def test_method_3_keeps_the_shorter_form_per_plane_and_needs_version_1_9():
    """pack writes method 3 when a plane is shorter with its block means in the latent coder
    stream (form 1), keeping form 0 for the others, and method 2 when no plane is; method 3 is
    refused below 1.9 (E53), its form byte must be 0 or 1 (E52)."""
    smooth = make_golden.dct_latent(make_golden.smooth_image(96, 112), 3, 16)
    rough = latent_plane(16, 12, 14, 30, 9)
    rough[0] = 7   # constant block means: three bytes as a group (form 0)
    lat = np.stack([smooth, rough])
    payload = latent.pack(1, 0, 255, [3, 3], lat)
    assert latent.method(payload) == latent.METHOD_LATENT_DC
    assert [f for f, _ in plane_streams(payload, 2, 16, 12, 14)] == [1, 0]
    sizes = [(len(latent._method_2_plane(v)), len(latent._form_1_plane(v))) for v in lat]
    assert sizes[0][1] < sizes[0][0] and sizes[1][0] <= sizes[1][1]
    assert np.array_equal(latent.unpack(payload, 1, 255, 2, 16, 96, 112, (1, 9))[3], lat)
    for version in ((1, 2), (1, 7), (1, 8)):
        with pytest.raises(CorruptDataError, match="method 3"):
            latent.unpack(payload, 1, 255, 2, 16, 96, 112, version)
    bad = bytearray(payload)
    bad[latent._FIXED.size + 2 + 1] = 2
    with pytest.raises(CorruptDataError, match="form 2"):
        latent.unpack(bytes(bad), 1, 255, 2, 16, 96, 112)
    only_rough = latent.pack(0, 0, 255, [3], rough[None])
    assert latent.method(only_rough) == latent.METHOD_LATENT   # readable by 1.7
    assert only_rough == method_2_payload(0, 255, [3], rough[None])
