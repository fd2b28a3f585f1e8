"""Encoder speed work (issue 3): the predictor fit in C (csrc/lsfit.c) against its numpy
specification, the transform choice from bands of rows, the palette's table-cost test, and
the lighter palette / colour-transform decoding."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roimc
from roimc import api, container, core
from roimc.codecs import lossless, palette, predictor
from roimc.errors import InputError

SOME = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def smooth(shape, bits, seed, noise=3):
    rng = np.random.default_rng(seed)
    v = np.cumsum(np.cumsum(rng.integers(-2, 3, size=shape), axis=-1), axis=-2)
    v = v + rng.integers(0, noise, size=shape)
    return (v + (1 << (bits - 1))) % (1 << bits)


# --- the fit ------------------------------------------------------------------------------------

@SOME
@given(h=st.integers(16, 90), w=st.integers(16, 90), planes=st.integers(1, 3),
       bits=st.integers(1, 17), samples=st.sampled_from([300, 1000, 60000]),
       seed=st.integers(0, 2**32 - 1))
def test_c_fit_gives_the_weights_of_the_numpy_procedure(h, w, planes, bits, samples, seed):
    t = smooth((planes, h, w), bits, seed).astype(np.int32)
    for p in range(planes):
        fast, spec = predictor.fit(t, p, samples, seed), predictor.fit_reference(t, p, samples,
                                                                                 seed)
        if spec is None:
            assert fast is None
            continue
        assert fast.dtype == np.int16 and len(fast) == len(spec)
        # the two sum in different orders: a weight on a rounding boundary may differ by one
        # (the file stores what the encoder computed, so either is a valid stream)
        assert np.abs(fast.astype(int) - spec).max() <= 1


def test_c_fit_matches_numpy_before_quantisation():
    t = smooth((2, 70, 61), 12, 5, noise=40).astype(np.int32)
    for p in (0, 1):
        k = predictor.CM_INPUTS[p]
        coef = core.lsfit(t, p, 0, 2, predictor.PASSES, predictor.LAMBDA * t[0].size,
                          predictor._prior(k))
        ref = _reference_coef(t, p, 2)
        assert np.allclose(coef, ref, rtol=1e-9, atol=1e-9)


def _reference_coef(t, p, step):
    h, w = t.shape[1:]
    pad = predictor.padded(t[p])
    ref = predictor.padded(t[p - 1]) if p else None
    rows, cols = np.divmod(np.arange(0, h * w, step), w)
    X = predictor._features(pad, ref, h, w, rows, cols)
    y = t[p][rows, cols].astype(np.float64)
    weight, lam = np.ones_like(y), predictor.LAMBDA * h * w
    for _ in range(predictor.PASSES):
        Xw = X * weight[:, None]
        coef = np.linalg.solve(Xw.T @ X + lam * np.eye(X.shape[1]),
                               Xw.T @ y + lam * predictor._prior(X.shape[1]))
        weight = 1.0 / np.maximum(np.abs(y - X @ coef), 1.0)
    return coef


def test_c_fit_is_deterministic_and_reads_only_the_tile():
    t = smooth((3, 64, 64), 10, 2).astype(np.int32)
    big = np.zeros((3, 80, 90), np.int32)
    big[:, 5:69, 7:71] = t
    tile = np.ascontiguousarray(big[:, 5:69, 7:71])
    for p in range(3):
        assert np.array_equal(predictor.fit(t, p), predictor.fit(tile, p))
        assert np.array_equal(predictor.fit(t, p), predictor.fit(t.copy(), p))


def test_c_fit_arguments_are_checked():
    t = smooth((2, 20, 20), 8, 3).astype(np.int32)
    with pytest.raises(InputError):
        core.lsfit(t, 1, 0, 1, 3, 1.0, np.zeros(10))          # plane 1 has 15 inputs
    with pytest.raises(InputError):
        core.lsfit(t, 0, 0, 0, 3, 1.0, np.zeros(10))          # step 0
    with pytest.raises(InputError):
        core.lsfit(t, 0, 400, 1, 3, 1.0, np.zeros(10))        # first sample beyond the plane
    with pytest.raises(InputError):                           # constant plane, no ridge
        core.lsfit(np.full_like(t, 9), 0, 0, 1, 3, 0.0, np.zeros(10))


def test_constant_plane_fit_keeps_the_prior():
    t = np.full((1, 32, 32), 77, np.int32)
    assert list(predictor.fit(t, 0)[:3]) == list(predictor.fit_reference(t, 0)[:3])


# --- palette table and its cost -----------------------------------------------------------------

@SOME
@given(values=st.lists(st.integers(0, 65535), min_size=1, max_size=50),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.uint16, np.int32]))
def test_palette_build_ranks_the_values(values, seed, dtype):
    rng = np.random.default_rng(seed)
    a = np.array(values, dtype=dtype)[rng.integers(0, len(values), size=(2, 9, 7, 1))]
    table, indices = palette.build(a)
    distinct = np.unique(a)
    assert np.array_equal(table[:, 0], distinct) and table.dtype == np.int64
    assert indices.dtype == np.int32 and indices.shape == a.shape
    assert np.array_equal(table[indices[..., 0], 0], a[..., 0])


def _neutral(table):
    return (table[:, 0] == table[:, 1]) & (table[:, 1] == table[:, 2])


@SOME
@given(seed=st.integers(0, 2**32 - 1), channels=st.integers(3, 4))
def test_palette_grays_first_reorders_the_table(seed, channels):
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(12, channels))
    colours[:5, 1] = colours[:5, 2] = colours[:5, 0]            # five neutral colours
    colours[5:, 1] = (colours[5:, 0] + 1 + rng.integers(0, 254, size=7)) % 256   # seven not
    a = colours[rng.integers(0, 12, size=(1, 9, 11))]
    built = palette.build(a)
    table, indices = palette.grays_first(built)
    neutral = _neutral(table)
    k = int(neutral.sum())
    assert k == int(_neutral(np.unique(a.reshape(-1, channels), axis=0)).sum())
    assert neutral[:k].all() and np.all(np.diff(table[:k, 0]) >= 0)   # by value
    rest = [i for i, t in enumerate(built[0].tolist()) if t in table[k:].tolist()]
    assert table[k:].tolist() == built[0][rest].tolist()        # the others keep luma order
    assert np.array_equal(table[indices[..., 0]], a)


def test_palette_grays_first_only_when_it_changes_the_order():
    gray = np.repeat(np.arange(0, 200, 7)[:, None], 3, axis=1)[np.arange(29) % 29][None, None]
    assert palette.grays_first(palette.build(gray)) is None          # all neutral
    assert palette.grays_first(palette.build(gray + [0, 1, 2])) is None  # none neutral
    two = np.stack([gray[..., 0], gray[..., 1] + 1], axis=-1)
    assert palette.grays_first(palette.build(two)) is None           # two channels


def _gray_screen():
    """A gray image above a banner: white text on a blue ground, its edges blended through
    shades between the two (an ultrasound screen, in small). By luma, the ground and the
    shades fall among the grays, far from the white."""
    rng = np.random.default_rng(5)
    g = np.clip(smooth((120, 96), 8, 3, noise=2), 0, 240).astype(np.uint8)
    a = np.repeat(g[:, :, None], 3, axis=2)
    ground, white = np.array([37, 62, 94]), np.array([255, 255, 255])
    text = np.zeros((16, 96))
    for y, x in zip(rng.integers(2, 12, 40), rng.integers(0, 92, 40)):
        text[y:y + 3, x:x + 2] = 1.0
    blur = (text + np.roll(text, 1, 0) + np.roll(text, 1, 1) + np.roll(text, (1, 1), (0, 1))) / 4
    a[:16] = np.round(ground + blur[:, :, None] * (white - ground)).astype(np.uint8)
    return a


@pytest.mark.parametrize("effort", [5, 6, 9])
def test_encoder_keeps_the_grays_first_palette_where_smaller(monkeypatch, effort):
    a = _gray_screen()
    data = roimc.encode(a, effort=effort)
    assert np.array_equal(roimc.decode(data), a)
    chunks = {c.ctype: c.payload for c in container.parse(data)}
    neutral = _neutral(palette.unpack(chunks[container.PLTE], 3, 8))
    assert neutral[:neutral.sum()].all()                        # the neutral colours first
    monkeypatch.setattr(palette, "grays_first", lambda built: None)
    luma = roimc.encode(a, effort=effort)
    assert len(data) < 0.95 * len(luma)


def _coded_through_a_lut(seed, levels=200):
    """A smooth image whose levels are stored under a random code (a LUT image): value order
    is unrelated to where the values lie."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:150, 0:120]
    wave = xx * 0.9 + yy * 0.5 + 12 * np.sin(yy / 9.0 + seed) + rng.integers(0, 2, yy.shape)
    g = (wave - wave.min()) * (levels - 1) // np.ptp(wave)
    return rng.permutation(256)[:levels][g.astype(np.int64)].astype(np.uint8)


@pytest.mark.parametrize("seed", [1, 2])
def test_palette_adjacency_order_puts_neighbours_together(seed):
    a = _coded_through_a_lut(seed)
    built = palette.build(a[None, :, :, None])
    table, indices = palette.adjacency_order(built)
    assert sorted(table[:, 0]) == sorted(built[0][:, 0])               # a permutation
    assert np.array_equal(table[indices[..., 0], 0], a[None])
    assert palette._mean_log_step(indices) < 0.5 * palette._mean_log_step(built[1])
    again = palette.adjacency_order(palette.build(a[None, :, :, None]))
    assert np.array_equal(again[0], table)                              # deterministic
    payload = palette.pack(table, 8)
    assert payload[0] == palette.KIND_LIST                              # not ascending
    assert np.array_equal(palette.unpack(payload, 1, 8), table)


def _reference_chain(counts, reach):
    """adjacency_order's chain with every score summed afresh at every step."""
    k = len(counts)
    first, second = (int(v) for v in np.unravel_index(int(np.argmax(counts)), counts.shape))
    if first == second:                                   # no two entries touch
        second = (first + 1) % k
    chain = [first, second]
    while len(chain) < k:
        scores = []
        for seq in (chain, chain[::-1]):
            sc = sum(max(0, reach - d) * counts[:, e] for d, e in enumerate(seq))
            sc = np.where(np.isin(np.arange(k), chain), np.iinfo(np.int64).min, sc)
            scores.append(sc)
        if scores[0].max() >= scores[1].max():
            chain.insert(0, int(np.argmax(scores[0])))
        else:
            chain.append(int(np.argmax(scores[1])))
    return chain


@SOME
@given(seed=st.integers(0, 2**32 - 1), entries=st.integers(3, 40),
       reach=st.sampled_from([2, 3, 5, 256]))
def test_palette_adjacency_chain_matches_scores_summed_afresh(seed, entries, reach):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, entries, size=(2, 13, 11, 1))
    a[0, 5:] = np.sort(a[0, 5:], axis=1)                  # some structure, some noise
    built = palette.build(a)
    k = len(built[0])
    if k < 3:
        return
    idx = built[1][..., 0]
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (idx[..., :, 1:], idx[..., :, :-1]), 1)
    np.add.at(counts, (idx[..., 1:, :], idx[..., :-1, :]), 1)
    counts = counts + counts.T
    np.fill_diagonal(counts, 0)
    old = palette._REACH, palette.ADJACENCY_GAIN
    palette._REACH, palette.ADJACENCY_GAIN = reach, float("inf")   # every order kept
    try:
        table, _ = palette.adjacency_order(built)
    finally:
        palette._REACH, palette.ADJACENCY_GAIN = old
    assert np.array_equal(table, built[0][_reference_chain(counts, reach)])


def test_palette_chain_without_touching_entries_and_bad_arguments():
    frames = np.arange(3, dtype=np.int32)[:, None, None] * np.ones((3, 4, 5), np.int32)
    assert core.palette_chain(frames, 3, 256).tolist() == [2, 0, 1]   # no pairs: 0, 1, then
    for k, reach in ((2, 256), (4097, 256), (3, 0), (3, 65537)):      # 2 on the left (a tie)
        with pytest.raises(InputError):
            core.palette_chain(frames, k, reach)
    with pytest.raises(InputError):
        core.palette_chain(frames + 1, 3, 256)                         # an index >= k


def test_palette_adjacency_order_declines_natural_and_out_of_range_tables():
    natural = np.clip(smooth((150, 120), 8, 4, noise=1), 0, 255).astype(np.uint8)
    assert palette.adjacency_order(palette.build(natural[None, :, :, None])) is None
    two = np.array([[0, 9], [9, 0]], np.uint8)[None, :, :, None]
    assert palette.adjacency_order(palette.build(two)) is None          # fewer than 3
    wide = np.arange(palette.MAX_ADJACENCY + 1, dtype=np.uint16).reshape(1, 1, -1, 1)
    assert palette.adjacency_order(palette.build(wide)) is None         # too many


@pytest.mark.parametrize("effort", [5, 9])
def test_encoder_keeps_the_adjacency_order_where_smaller(monkeypatch, effort):
    a = _coded_through_a_lut(3)
    data = roimc.encode(a, effort=effort)
    assert np.array_equal(roimc.decode(data), a)
    assert roimc.info(data)["transform"] == "palette"
    monkeypatch.setattr(palette, "adjacency_order", lambda built: None)
    assert len(data) < 0.6 * len(roimc.encode(a, effort=effort))


def test_palette_that_cannot_pay_for_its_table():
    # a 9-bit ramp missing one value: a step of two becomes one, once per ramp
    ramp = np.arange(32 * 32).reshape(32, 32) % 512
    ramp[ramp == 510] = 509
    samples = ramp.astype(np.uint16)[None, :, :, None]
    table, indices = palette.build(samples)
    assert len(table) == 511
    assert palette.cannot_pay(samples, indices, len(palette.pack(table, 9)))
    # values four apart: every step shrinks four times
    sparse = (smooth((64, 64), 7, 5) * 4)[None, :, :, None]
    table, indices = palette.build(sparse)
    assert not palette.cannot_pay(sparse, indices, len(palette.pack(table, 9)))
    assert palette.step_bytes_saved(sparse, indices) > 0


def test_steps_saved_on_bands_scale_to_the_image():
    sparse = (smooth((400, 64), 7, 6) * 3)[None, :, :, None]
    table, indices = palette.build(sparse)
    whole = palette.step_bytes_saved(sparse, indices)
    rows, scale = lossless.row_bands(sparse)
    banded = palette.step_bytes_saved(lossless.take_rows(sparse, rows),
                                      lossless.take_rows(indices, rows), scale)
    assert 0.5 * whole < banded < 2 * whole


# --- choosing the transform from bands of rows --------------------------------------------------

def test_row_bands_cover_a_share_of_the_rows():
    assert lossless.row_bands(np.zeros((1, 2 * lossless.BAND_ROWS, 8, 1))) is None
    rows, scale = lossless.row_bands(np.zeros((1, 1000, 8, 1)))
    assert len(rows) % lossless.BAND_ROWS == 0 and len(set(rows)) == len(rows)
    assert rows.min() >= 0 and rows.max() < 1000 and scale == 1000 / len(rows)
    assert abs(len(rows) - 1000 / lossless.BAND_SHARE) <= lossless.BAND_ROWS
    rows, _ = lossless.row_bands(np.zeros((3, 400, 8, 1)))      # frames stacked
    assert rows.max() < 1200
    a = np.arange(3 * 400 * 8).reshape(3, 400, 8, 1)
    band = lossless.take_rows(a, rows)
    assert band.shape == (1, len(rows), 8, 1) and band[0, 0, 0, 0] == rows[0] * 8


def test_effort_table_estimates_at_4_and_5_only():
    assert [e for e, row in api._EFFORT.items() if row[4]] == [4, 5]
    for e, row in api._EFFORT.items():
        assert row[4] <= row[2]          # estimates only where there is a choice


def _near_identity():
    a = smooth((300, 90), 8, 8, noise=1).astype(np.uint8)
    a[a == 200] = 201                                     # one value missing
    return a


@pytest.mark.parametrize("transform,make", [
    ("palette", lambda: (smooth((300, 90), 6, 7) * 5).astype(np.uint16)),   # sparse histogram
    ("none", _near_identity),
])
def test_estimated_choice_codes_only_the_best_candidate(monkeypatch, transform, make):
    array = make()
    assert lossless.row_bands(array[None, :, :, None]) is not None
    coded = []
    real = lossless.encode

    def spy(samples, header, *args, **kwargs):
        coded.append(header.transform)
        return real(samples, header, *args, **kwargs)

    monkeypatch.setattr(lossless, "encode", spy)
    data = roimc.encode(array, effort=5)
    assert roimc.info(data)["transform"] == transform
    assert np.array_equal(roimc.decode(data), array)
    assert coded == [transform]                  # only the chosen candidate coded in full
    coded.clear()
    roimc.encode(array, effort=6)
    assert coded == ["none", "palette"]          # effort 6 codes every candidate


def test_estimate_on_small_images_codes_every_candidate():
    a = (smooth((40, 50), 6, 9) * 3).astype(np.uint8)
    assert lossless.row_bands(a[None, :, :, None]) is None
    assert roimc.encode(a, effort=5) == roimc.encode(a, effort=6)


# --- decoding -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 5, 8, 12, 16])
def test_rct_inverse_in_place_undoes_the_forward_transform(bits, rng):
    rgb = rng.integers(0, 1 << bits, size=(4, 23, 17)).astype(np.int32)
    t = rgb.copy()
    lossless.rct_forward(t, bits)
    lossless.rct_inverse(t, bits)
    assert np.array_equal(t, rgb)


def test_palette_decode_stays_within_a_few_image_sizes():
    a = (smooth((300, 280), 6, 10) * 3).astype(np.uint8)       # one tile, palette, 8 bits
    data = roimc.encode(a, tile_size=512)
    assert roimc.info(data)["transform"] == "palette"
    roimc.decode(data)
    tracemalloc.start()
    try:
        out = roimc.decode(data, threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, a)
    # the output (1x), the core's int32 tile (4x), the chunks, a bounded lookup scratch
    # (it was 14.5x the output before the lookup was done in the output type, by rows)
    assert peak < 5 * a.nbytes + len(data) + 2 * 8192 * 9
