"""ROI masks: the user's forms (arrays, mask images, rectangles) and their rules, and the MASK
chunk payload (method 0, run lengths + brotli; method 1, the mask coder): round trips, the
decoder written from the spec, and damage refused."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import roimc
import spec_mask
from roimc import core
from roimc.roi_mask import (METHOD_CONTEXT, METHOD_RUNS_BROTLI, _leb128, _unleb128,
                            mask_from_array, mask_method, pack_mask, parse_roi,
                            rectangles_mask, unpack_mask)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(h=st.integers(1, 70), w=st.integers(1, 70), density=st.floats(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_payload_round_trip(h, w, density, seed):
    m = np.random.default_rng(seed).random((h, w)) < density
    payload = pack_mask(m)
    assert np.array_equal(unpack_mask(payload, h, w), m)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5000), (5000, 1), (300, 200)])
@pytest.mark.parametrize("fill", [False, True])
def test_payload_of_uniform_masks_is_tiny(shape, fill):
    m = np.full(shape, fill)
    payload = pack_mask(m)
    assert len(payload) < 20
    assert np.array_equal(unpack_mask(payload, *shape), m)


def test_leb128_round_trip_and_canonical():
    values = np.array([0, 1, 127, 128, 300, 16383, 16384, 2**31, 2**34], dtype=np.uint64)
    assert np.array_equal(_unleb128(_leb128(values), 2**35), values)
    from roimc import CorruptDataError
    for bad in (b"\x80", b"\x81\x00", b"\xff\xff\xff\xff\xff\xff\x01"):
        with pytest.raises(CorruptDataError):
            _unleb128(bad, 2**40)


@SETTINGS
@given(data=st.binary(min_size=0, max_size=64), h=st.integers(1, 9), w=st.integers(1, 9))
def test_random_payloads_never_crash(data, h, w):
    import brotli
    for body in (data, brotli.compress(data)):    # garbage, and garbage run lengths
        payload = w.to_bytes(4, "big") + h.to_bytes(4, "big") + b"\x00" + body
        _check_payload(payload, h, w)


def _check_payload(payload, h, w):
    try:
        m = unpack_mask(payload, h, w)
    except (roimc.CorruptDataError, roimc.UnsupportedError):
        return
    assert m.shape == (h, w) and m.dtype == bool


def test_brotli_bomb_is_refused():
    import brotli
    bomb = brotli.compress(b"\x01" * 10_000_000)
    payload = (4).to_bytes(4, "big") + (4).to_bytes(4, "big") + b"\x00" + bomb
    with pytest.raises(roimc.CorruptDataError):
        unpack_mask(payload, 4, 4)


def test_unknown_method_is_unsupported():
    payload = bytearray(pack_mask(np.ones((3, 3), bool)))
    payload[8] = 7
    with pytest.raises(roimc.UnsupportedError):
        unpack_mask(bytes(payload), 3, 3)


# --- the user's masks ------------------------------------------------------------------------

@pytest.mark.parametrize("values", [[0, 1], [0, 255], [0], [1], [255], [True, False]])
def test_binary_masks_are_accepted(values):
    a = np.resize(np.array(values), (4, 5))
    m = mask_from_array(a, 4, 5)
    assert m.dtype == bool and np.array_equal(m, a != 0)


@pytest.mark.parametrize("values", [[0, 2], [0, 1, 255], [0, 128], [3], [0, 0.5]])
def test_non_binary_masks_are_refused(values):
    with pytest.raises(roimc.InputError, match="not binary"):
        mask_from_array(np.resize(np.array(values), (4, 5)), 4, 5)


def test_mask_of_the_wrong_size_is_refused():
    with pytest.raises(roimc.InputError, match="shape"):
        mask_from_array(np.ones((5, 4), bool), 4, 5)
    with pytest.raises(roimc.InputError):
        roimc.encode(np.zeros((4, 5), np.uint8), mode="near-lossless", max_error=1,
                     roi=np.ones((4, 4), bool))


def test_rectangles():
    m = parse_roi("1,2,3,1; 0,0,1,1", 4, 5)
    expected = np.zeros((4, 5), bool)
    expected[2, 1:4] = True
    expected[0, 0] = True
    assert np.array_equal(m, expected)
    assert np.array_equal(parse_roi([(1, 2, 3, 1), (0, 0, 1, 1)], 4, 5), expected)
    assert parse_roi("0,0,5,4", 4, 5).all()


@pytest.mark.parametrize("rects", ["0,0,6,1", "4,0,2,1", "0,3,1,2", "0,0,0,1", "0,0,1,0",
                                   [(-1, 0, 1, 1)], [(0, 0, 1.5, 1)], [(0, 0, 1)]])
def test_bad_rectangles_are_refused(rects):
    with pytest.raises(roimc.InputError):
        parse_roi(rects, 4, 5)


def test_mask_image_paths(tmp_path):
    a = np.zeros((6, 7), np.uint8)
    a[2:4, 3:6] = 255
    Image.fromarray(a).save(tmp_path / "m.png")
    assert np.array_equal(parse_roi(str(tmp_path / "m.png"), 6, 7), a != 0)
    Image.fromarray(a // 255).save(tmp_path / "m01.png")
    assert np.array_equal(parse_roi(tmp_path / "m01.png", 6, 7), a != 0)
    Image.fromarray(np.stack([a] * 3, axis=-1)).save(tmp_path / "rgb.png")
    assert np.array_equal(parse_roi(str(tmp_path / "rgb.png"), 6, 7), a != 0)
    colour = np.stack([a, a // 2, a], axis=-1)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(roimc.InputError):
        parse_roi(str(tmp_path / "colour.png"), 6, 7)
    with pytest.raises(roimc.InputError, match="no such mask"):
        parse_roi(str(tmp_path / "missing.png"), 6, 7)
    with pytest.raises(roimc.InputError, match="shape"):
        parse_roi(str(tmp_path / "m.png"), 7, 6)


def test_empty_and_full_masks_follow_the_documented_rule():
    a = (np.arange(100).reshape(10, 10) * 2).astype(np.uint8)
    for mask, bound in ((np.zeros((10, 10), bool), 5), (np.ones((10, 10), bool), 1)):
        data = roimc.encode(a, mode="near-lossless", max_error=5, roi=mask, roi_max_error=1)
        out = roimc.decode(data)
        assert np.abs(out.astype(int) - a).max() <= bound
        assert np.array_equal(roimc.read_mask(data), mask)
        assert roimc.info(data)["roi"]["pixels"] == int(mask.sum())


def test_read_mask_of_a_lossless_file_is_none():
    assert roimc.read_mask(roimc.encode(np.zeros((3, 3), np.uint8))) is None


# --- method 1: the mask coder (spec 16E) ----------------------------------------------------

MASK_SHAPES = st.sampled_from([(1, 1), (1, 37), (37, 1), (2, 2), (13, 7), (31, 29), (40, 41)])


def _mask(shape, kind, seed):
    """Masks of every sort: noise of any density, blobs (discs), rectangles, and uniform."""
    rng = np.random.default_rng(seed)
    h, w = shape
    if kind == "noise":
        return rng.random(shape) < rng.random()
    if kind == "blob":
        y, x = np.mgrid[0:h, 0:w]
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.5, max(h, w))
        return (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    if kind == "rect":
        m = np.zeros(shape, bool)
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        m[y0:rng.integers(y0, h + 1), x0:rng.integers(x0, w + 1)] = True
        return m
    return np.full(shape, kind == "ones")


KINDS = st.sampled_from(["noise", "blob", "rect", "zeros", "ones"])


@SETTINGS
@given(shape=MASK_SHAPES, kind=KINDS, seed=st.integers(0, 2**32 - 1))
def test_mask_coder_round_trip_and_the_spec_decoder_agrees(shape, kind, seed):
    """The C core decodes what it writes, and so does the decoder written from the spec."""
    m = _mask(shape, kind, seed)
    stream = core.encode_mask(m)
    assert np.array_equal(core.decode_mask(stream, *shape), m)
    assert np.array_equal(np.array(spec_mask.decode(stream, *shape), bool), m)
    payload = pack_mask(m, METHOD_CONTEXT)
    assert mask_method(payload) == METHOD_CONTEXT
    assert np.array_equal(unpack_mask(payload, *shape), m)


def test_mask_coder_large_masks_round_trip():
    y, x = np.mgrid[0:700, 0:611]
    m = ((y - 350) ** 2 / 300 ** 2 + (x - 300) ** 2 / 250 ** 2 <= 1) ^ ((y // 37 + x // 41) % 5 == 0)
    for mask in (m, ~m, m.T.copy()):
        assert np.array_equal(core.decode_mask(core.encode_mask(mask), *mask.shape), mask)


def test_every_truncation_is_refused_by_both():
    m = _mask((23, 19), "blob", 5) ^ _mask((23, 19), "rect", 6)
    stream = core.encode_mask(m)
    for n in range(len(stream)):
        with pytest.raises(roimc.CorruptDataError):
            core.decode_mask(stream[:n], 23, 19)
        with pytest.raises(spec_mask.SpecError, match="E44"):
            spec_mask.decode(stream[:n], 23, 19)
    with pytest.raises(roimc.CorruptDataError):
        core.decode_mask(stream + b"\x00", 23, 19)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 4))
def test_damaged_streams_agree_with_the_spec(seed, flips):
    """Changed bytes: the C core and the spec decoder refuse alike or decode the same mask."""
    rng = np.random.default_rng(seed)
    m = _mask((17, 15), "blob", seed)
    bad = bytearray(core.encode_mask(m))
    for _ in range(flips):
        bad[rng.integers(0, len(bad))] ^= 1 << int(rng.integers(0, 8))
    try:
        ours = core.decode_mask(bytes(bad), 17, 15)
    except roimc.CorruptDataError:
        with pytest.raises(spec_mask.SpecError, match="E44"):
            spec_mask.decode(bytes(bad), 17, 15)
        return
    assert np.array_equal(np.array(spec_mask.decode(bytes(bad), 17, 15), bool), ours)


@SETTINGS
@given(data=st.binary(min_size=0, max_size=64), h=st.integers(1, 9), w=st.integers(1, 9))
def test_random_method_1_payloads_never_crash(data, h, w):
    payload = w.to_bytes(4, "big") + h.to_bytes(4, "big") + b"\x01" + data
    _check_payload(payload, h, w)


def test_mask_coder_arguments_are_checked():
    for shape in ((0, 5), (5, 0)):
        with pytest.raises(roimc.InputError):
            core.encode_mask(np.zeros(shape, bool))
        with pytest.raises(roimc.InputError):
            core.decode_mask(b"\x00" * 8, *shape)
    with pytest.raises(roimc.InputError):
        pack_mask(np.ones((3, 3), bool), method=2)


def test_the_shorter_method_is_kept():
    """Method 1 where it is shorter (a disc: its edge is cheaper from neighbours than as runs),
    method 0 where it is not (a rectangle, a uniform mask: a few runs), method 0 on a tie."""
    y, x = np.mgrid[0:120, 0:100]
    disc = (y - 60) ** 2 + (x - 45) ** 2 <= 40 ** 2
    rect = np.zeros((120, 100), bool)
    rect[10:90, 20:70] = True
    for m, expected in ((disc, METHOD_CONTEXT), (rect, METHOD_RUNS_BROTLI),
                        (np.ones((120, 100), bool), METHOD_RUNS_BROTLI)):
        payload = pack_mask(m)
        assert mask_method(payload) == expected
        assert len(payload) <= min(len(pack_mask(m, 0)), len(pack_mask(m, 1)))
        assert np.array_equal(unpack_mask(payload, 120, 100), m)


def test_method_1_needs_version_1_8():
    """Method 1 is refused (E45) in files below 1.8, decoded from 1.8 on; the encoder writes
    1.8 only when the file has a method-1 mask."""
    y, x = np.mgrid[0:60, 0:50]
    disc = (y - 30) ** 2 + (x - 22) ** 2 <= 18 ** 2
    payload = pack_mask(disc)
    assert mask_method(payload) == METHOD_CONTEXT
    for version in ((1, 0), (1, 2), (1, 7)):
        with pytest.raises(roimc.UnsupportedError, match="method 1"):
            unpack_mask(payload, 60, 50, version)
    assert np.array_equal(unpack_mask(payload, 60, 50, (1, 8)), disc)
    image = (x * 3 + y * 2).astype(np.uint8)
    # coder 3 (version 1.2), so that the mask alone decides between 1.2 and 1.8
    data = roimc.encode(image, "near-lossless", max_error=2, roi=disc, coder="cm")
    assert roimc.info(data)["version"] == "1.8"
    assert np.array_equal(roimc.read_mask(data), disc)
    rect = np.zeros((60, 50), bool)
    rect[5:40, 10:30] = True
    data = roimc.encode(image, "near-lossless", max_error=2, roi=rect, coder="cm")
    assert roimc.info(data)["version"] == "1.2"
