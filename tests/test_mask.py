"""ROI masks: the user's forms (arrays, mask images, rectangles) and their rules, and the MASK
chunk payload (run lengths + brotli): round trips, and damage refused."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import roimc
from roimc.roi_mask import (_leb128, _unleb128, mask_from_array, pack_mask, parse_roi,
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
