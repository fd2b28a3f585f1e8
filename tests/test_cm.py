"""Coders 3 and 4 (blended prediction, context modelling, range coding; coder 4 is coder 3
with its second model), the stored linear predictor, the palette transform and the effort
levels."""
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roimc
from roimc import container, core
from roimc.codecs import palette, predictor

CMS = (core.CODER_CM, core.CODER_CM2)
STORED = CMS + (core.CODER_FAST,)   # the coders with a stored predictor header (16A.1, 16C.1)
SOME = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def smooth(shape, bits, seed):
    rng = np.random.default_rng(seed)
    v = np.cumsum(np.cumsum(rng.integers(-2, 3, size=shape), axis=-1), axis=-2)
    return (v + (1 << (bits - 1))) % (1 << bits)


def chunk_list(data):
    return [(c.ctype, c.payload) for c in container.parse(data)]


# --- tile streams ------------------------------------------------------------------------------

@SOME
@given(h=st.integers(1, 40), w=st.integers(1, 40), planes=st.integers(1, 4),
       bits=st.integers(1, 17), seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(
           ["noise", "smooth", "constant"]), weights=st.sampled_from(["none", "fit", "random"]),
       coder=st.sampled_from(CMS))
def test_cm_tile_roundtrip_with_any_weights(h, w, planes, bits, seed, kind, weights, coder):
    """Exactness never depends on the predictor: fitted, absent or random weights all decode."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        t = rng.integers(0, 1 << bits, size=(planes, h, w))
    elif kind == "smooth":
        t = smooth((planes, h, w), bits, seed)
    else:
        t = np.full((planes, h, w), rng.integers(0, 1 << bits))
    t = t.astype(np.int32)
    if weights == "none":
        wts = None
    elif weights == "fit":
        wts = [predictor.fit(t, p) for p in range(planes)]
    else:
        wts = [rng.integers(-32768, 32768, size=10 if p == 0 else 15).astype(np.int16)
               for p in range(planes)]
    stream = core.encode_tile_cm(t, [bits] * planes, wts, coder)
    out = core.decode_tile(stream, w, h, [bits] * planes, coder)
    assert np.array_equal(out, t)
    if wts is None:
        assert core.encode_tile(t, [bits] * planes, coder) == stream


@pytest.mark.parametrize("shape", [(1, 1), (1, 97), (97, 1), (2, 2), (13, 31), (1, 2)])
@pytest.mark.parametrize("bits", [1, 2, 8, 16, 17])
def test_cm2_odd_shapes_and_depths_roundtrip(shape, bits):
    rng = np.random.default_rng(bits * 1000 + shape[0] * 31 + shape[1])
    for t in (rng.integers(0, 1 << bits, size=(3,) + shape),
              smooth((3,) + shape, bits, bits), np.full((3,) + shape, (1 << bits) - 1)):
        t = t.astype(np.int32)
        wts = [predictor.fit(t, p) for p in range(3)]
        s = core.encode_tile_cm(t, [bits] * 3, wts, core.CODER_CM2)
        assert np.array_equal(core.decode_tile(s, shape[1], shape[0], [bits] * 3,
                                               core.CODER_CM2), t)


def test_cm2_is_its_own_model():
    """Coders 3 and 4 share the stream layout, not the model: the same samples give other
    bytes, and a coder-4 stream read as coder 3 is refused or decodes to other samples."""
    t = smooth((1, 40, 40), 10, 8).astype(np.int32)
    s3, s4 = (core.encode_tile_cm(t, [10], None, c) for c in CMS)
    assert s3 != s4 and s3[0] == s4[0] == 0
    try:
        out = core.decode_tile(s4, 40, 40, [10], core.CODER_CM)
        assert not np.array_equal(out, t)
    except roimc.CorruptDataError:
        pass


def test_cm_wrong_weight_count_is_an_input_error():
    t = np.zeros((1, 4, 4), np.int32)
    with pytest.raises(roimc.InputError):
        core.encode_tile_cm(t, [8], [np.zeros(9, np.int16)])


def _stream(coder=core.CODER_CM):
    t = smooth((2, 19, 23), 10, 5).astype(np.int32)
    t[:, :3] = 0      # flat rows: coder 5's run mode
    return t, core.encode_tile_cm(t, [10, 10], [predictor.fit(t, 0), predictor.fit(t, 1)], coder)


@pytest.mark.parametrize("coder", STORED)
def test_cm_every_truncation_and_trailing_byte_is_refused(coder):
    t, s = _stream(coder)
    for n in range(len(s)):
        with pytest.raises(roimc.CorruptDataError):
            core.decode_tile(s[:n], 23, 19, [10, 10], coder)
    for extra in (b"\0", b"\1", b"\0\0\0\0\0"):
        with pytest.raises(roimc.CorruptDataError):
            core.decode_tile(s + extra, 23, 19, [10, 10], coder)


@pytest.mark.parametrize("coder", CMS)
def test_cm_header_fields_are_checked(coder):
    t, s = _stream(coder)
    for bad in (bytes([9]) + s[1:], bytes([16]) + s[1:]):      # predictor sizes other than 0/10
        with pytest.raises(roimc.CorruptDataError):
            core.decode_tile(bad, 23, 19, [10, 10], coder)
    start = 1 + 20 + 1 + 30                                      # the range coder's first byte
    assert s[start] == 0
    bad = s[:start] + b"\1" + s[start + 1:]
    with pytest.raises(roimc.CorruptDataError):
        core.decode_tile(bad, 23, 19, [10, 10], coder)


@pytest.mark.parametrize("coder", STORED)
def test_cm_byte_flips_never_crash_and_never_pass_silently_wrong(coder):
    """A damaged stream is refused or decodes to other samples; the container's CRCs and the
    dsum chunk catch the latter in files. Here only the C core runs: it must not crash."""
    t, s = _stream(coder)
    rnd = random.Random(3)
    refused = 0
    for _ in range(400):
        b = bytearray(s)
        for _ in range(rnd.randint(1, 3)):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        try:
            core.decode_tile(bytes(b), 23, 19, [10, 10], coder)
        except roimc.CorruptDataError:
            refused += 1
    assert refused > 300


@pytest.mark.parametrize("coder", STORED)
def test_cm_random_streams_do_not_crash(coder):
    rnd = random.Random(11)
    for _ in range(300):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 200)))
        try:
            core.decode_tile(data, rnd.randint(1, 20), rnd.randint(1, 20), [rnd.randint(1, 17)],
                             coder)
        except roimc.CorruptDataError:
            pass


def test_cm_flat_regions_cost_far_below_one_bit():
    a = np.full((256, 256), 1234, np.uint16)
    a[100:140, 30:200] = 3000
    data = roimc.encode(a, coder="cm", effort=3)
    assert 8 * len(data) / a.size < 0.06                 # container and edges included
    tile = max(len(c[1]) for c in chunk_list(roimc.encode(np.full((256, 256), 7, np.uint16),
                                                           coder="cm", effort=3))
               if c[0] == container.TILE)
    assert 8 * tile / 65536 < 0.01


# --- predictor ----------------------------------------------------------------------------------

def test_predictor_padding_matches_the_spec_rule():
    p = np.arange(12).reshape(3, 4)
    pad = predictor.padded(p)
    assert pad.shape == (5, 8)
    assert (pad[:2] == 0).all()                       # rows above: the first sample
    assert list(pad[2, :2]) == [0, 0] and list(pad[3, :2]) == [0, 0] and list(pad[4, :2]) == [4, 4]
    assert list(pad[3, 6:]) == [7, 7]


def test_predictor_fit_gives_int16_weights_of_the_right_size():
    t = smooth((2, 40, 40), 12, 1).astype(np.int32)
    w0, w1 = predictor.fit(t, 0), predictor.fit(t, 1)
    assert w0.dtype == np.int16 and len(w0) == core.CM_SPATIAL_INPUTS
    assert len(w1) == core.CM_SPATIAL_INPUTS + core.CM_REF_INPUTS
    assert predictor.fit(t[:, :5, :5], 0) is None        # too few samples to fit


# --- palette ------------------------------------------------------------------------------------

@SOME
@given(h=st.integers(1, 30), w=st.integers(1, 30), channels=st.sampled_from([1, 2, 3, 4]),
       colours=st.integers(1, 40), bits=st.integers(1, 16), seed=st.integers(0, 2**32 - 1),
       frames=st.sampled_from([1, 2]))
def test_palette_roundtrip(h, w, channels, colours, bits, seed, frames):
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 1 << bits, size=(colours, channels))
    a = table[rng.integers(0, colours, size=(frames, h, w))]
    a = a.astype(np.uint8 if bits <= 8 else np.uint16)
    if channels == 1:
        a = a[..., 0]
    if frames == 1:
        a = a[0]
    data = roimc.encode(a, effort=5, channels_last=True if a.ndim == 3 and frames == 1 else None,
                        bits=bits)
    out = roimc.decode(data)
    assert out.dtype == a.dtype and np.array_equal(out, a)


def test_palette_is_chosen_for_sparse_histograms_and_few_colours():
    a = (smooth((64, 64), 5, 2) * 131).astype(np.uint16)           # 32 values in 12 bits
    assert roimc.info(roimc.encode(a))["transform"] == "palette"
    assert roimc.info(roimc.encode(a, effort=3))["transform"] == "none"
    colours = np.array([[0, 0, 0], [40, 40, 40], [250, 10, 10]], np.uint8)
    rgb = colours[smooth((40, 40), 8, 3) % 3]
    assert roimc.info(roimc.encode(rgb))["transform"] == "palette"


def _palette_file():
    a = (smooth((20, 21), 4, 4) * 300 + 5).astype(np.uint16)
    data = roimc.encode(a, effort=5)
    assert roimc.info(data)["transform"] == "palette"
    return a, chunk_list(data)


def _decode(chunks):
    return roimc.decode(container.pack([c for c in chunks if c[0] != container.DSUM]))


def test_palette_chunk_damage_is_refused():
    import brotli
    a, chunks = _palette_file()
    i = next(k for k, c in enumerate(chunks) if c[0] == container.PLTE)
    payload = chunks[i][1]
    assert np.array_equal(_decode(chunks), a)
    bitmap = brotli.decompress(payload[5:])
    cases = [
        payload[:4],                                                  # too short
        bytes([2]) + payload[1:],                                     # unknown kind
        bytes([1]) + payload[1:],                                     # list kind, bitmap body
        payload[:1] + (0).to_bytes(4, "big") + payload[5:],           # zero entries
        payload[:1] + (99).to_bytes(4, "big") + payload[5:],          # count disagrees
        payload[:5] + payload[5:-1],                                  # truncated brotli
        payload[:5] + brotli.compress(bitmap + b"\0"),                # one byte too many
        payload[:5] + brotli.compress(bitmap[:-1]),                   # one byte too few
    ]
    for bad in cases:
        damaged = list(chunks)
        damaged[i] = (container.PLTE, bad)
        with pytest.raises(roimc.CorruptDataError):
            _decode(damaged)
    with pytest.raises(roimc.CorruptDataError):                       # two tables
        _decode(chunks[:i + 1] + [chunks[i]] + chunks[i + 1:])
    with pytest.raises(roimc.CorruptDataError):                       # no table
        _decode(chunks[:i] + chunks[i + 1:])


def test_palette_index_beyond_the_table_is_refused():
    a, chunks = _palette_file()
    i = next(k for k, c in enumerate(chunks) if c[0] == container.PLTE)
    k = int.from_bytes(chunks[i][1][1:5], "big")
    # a table one entry shorter than the indices need
    bits = roimc.info(container.pack(chunks))["bits"]
    values = palette.unpack(chunks[i][1], 1, bits)[:-1]
    damaged = list(chunks)
    damaged[i] = (container.PLTE, palette.pack(values, bits))
    assert k == len(values) + 1
    with pytest.raises(roimc.CorruptDataError):
        _decode(damaged)


def test_palette_list_entries_beyond_the_sample_range_are_refused():
    table = np.array([[1, 2, 3], [255, 0, 7]])
    payload = palette.pack(table, 8)
    assert np.array_equal(palette.unpack(payload, 3, 8), table)
    with pytest.raises(roimc.CorruptDataError):
        palette.unpack(payload, 3, 7)


def test_version_1_0_files_may_not_use_1_1_features():
    a, chunks = _palette_file()
    head = bytearray(chunks[0][1])
    head[1] = 0
    with pytest.raises(roimc.CorruptDataError):
        _decode([(container.HEAD, bytes(head))] + chunks[1:])
    b = smooth((20, 20), 8, 9).astype(np.uint8)
    chunks = chunk_list(roimc.encode(b, coder="cm", effort=3))
    assert roimc.info(container.pack(chunks))["version"] == "1.1"
    head = bytearray(chunks[0][1])
    head[1] = 0
    with pytest.raises(roimc.CorruptDataError):
        _decode([(container.HEAD, bytes(head))] + chunks[1:])


def test_coder_4_needs_version_1_3():
    b = smooth((20, 20), 8, 9).astype(np.uint8)
    chunks = chunk_list(roimc.encode(b, effort=3, coder="cm2"))
    assert roimc.info(container.pack(chunks))["version"] == "1.3"
    assert {c[1][8] for c in chunks if c[0] == container.TILE} == {core.CODER_CM2}
    for minor in (0, 1, 2):
        head = bytearray(chunks[0][1])
        head[1] = minor
        with pytest.raises(roimc.CorruptDataError):
            _decode([(container.HEAD, bytes(head))] + chunks[1:])
    assert np.array_equal(_decode(chunks), b)


def test_near_lossless_forms_of_coders_3_and_4_only():
    """Coder 4 has a near-lossless form (16A.12, the default); coders 1 and 5 have none."""
    a = smooth((20, 20), 8, 9).astype(np.uint8)
    for coder in ("fast", "auto", "huffman"):
        with pytest.raises(roimc.InputError):
            roimc.encode(a, mode="near-lossless", max_error=2, coder=coder)
    for coder, want in (("cm2", core.CODER_CM2), ("cm", core.CODER_CM)):
        data = roimc.encode(a, mode="near-lossless", max_error=2, coder=coder)
        assert {c[1][8] for c in chunk_list(data) if c[0] == container.TILE} == {want}
        assert np.abs(roimc.decode(data).astype(int) - a).max() <= 2
    for coder in (core.CODER_FAST, core.CODER_HUFFMAN):
        with pytest.raises(roimc.UnsupportedError):
            core.decode_tile_near(b"\0" * 8, 4, 4, [8], coder, None, 1, 1)


# --- effort -------------------------------------------------------------------------------------

@pytest.mark.parametrize("effort", range(1, 10))
def test_every_effort_roundtrips(effort):
    rgb = np.stack([smooth((33, 29), 8, s) for s in (1, 2, 3)], axis=-1).astype(np.uint8)
    gray = smooth((33, 29), 12, 4).astype(np.uint16)
    for a in (rgb, gray):
        assert np.array_equal(roimc.decode(roimc.encode(a, effort=effort, tile_size=16)), a)


def test_effort_1_writes_version_1_0_golomb_files():
    a = smooth((30, 30), 8, 5).astype(np.uint8)
    data = roimc.encode(a, effort=1)
    assert roimc.info(data)["version"] == "1.0"
    assert all(c[1][8] == core.CODER_GOLOMB for c in chunk_list(data) if c[0] == container.TILE)


@pytest.mark.parametrize("effort", [0, 10, -1, 2.5, "5", True, None])
def test_bad_effort_is_an_input_error(effort):
    with pytest.raises(roimc.InputError):
        roimc.encode(np.zeros((4, 4), np.uint8), effort=effort)


def test_higher_effort_is_not_larger_on_a_smooth_image():
    a = smooth((96, 96), 12, 6).astype(np.uint16)
    sizes = [len(roimc.encode(a, effort=e)) for e in (1, 2, 5)]
    assert sizes[2] < sizes[0] and sizes[1] < sizes[0]


def test_forced_raw_fallback_with_cm():
    noise = np.random.default_rng(0).integers(0, 256, size=(30, 30)).astype(np.uint8)
    data = roimc.encode(noise, coder="cm", effort=3)
    assert {c[1][8] for c in chunk_list(data) if c[0] == container.TILE} == {core.CODER_RAW}
    assert np.array_equal(roimc.decode(data), noise)


def test_cm_code_at_or_above_range_is_refused():
    """The slot an odd range leaves after an equiprobable bit, and an initial code of
    0xFFFFFFFF, are bytes no encoder writes (spec E32h)."""
    good = bytes.fromhex("0000FEFFFFF800")
    assert core.decode_tile(good, 1, 1, [8], core.CODER_CM).ravel().tolist() == [0]
    assert core.encode_tile(np.zeros((1, 1, 1), np.int32), [8], core.CODER_CM) == good
    for bad in ("0000FFFFFFF800", "0000FFFFFFFF00"):
        with pytest.raises(roimc.CorruptDataError):
            core.decode_tile(bytes.fromhex(bad), 1, 1, [8], core.CODER_CM)
