"""Lossless round trips: every decoded array equals the encoded one bit for bit, with the
same shape and dtype, whatever the layout, bit depth, coder, tiling and thread count."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roimc
from roimc.samples import describe

from conftest import corpus_images

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PRIMES = [1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67]
sides = st.one_of(st.sampled_from(PRIMES), st.integers(1, 67))
small_sides = st.one_of(st.sampled_from([1, 2, 3, 5, 7, 13, 17, 23]), st.integers(1, 29))
coders = st.sampled_from(["golomb", "huffman", "cm", "raw", None])   # None: the effort's
efforts = st.sampled_from([1, 2, 3, 4, 5, 7])
threads = st.sampled_from([1, 2])
tile_sizes = st.sampled_from([1024, 16, (16, 23), (7, 5), (1, 64), (64, 1), 3])
patterns = st.sampled_from(["noise", "constant", "ramp", "smooth", "extremes", "sparse",
                            "stripes"])
seeds = st.integers(0, 2**32 - 1)


def unsigned_dtype(bits):
    return np.uint8 if bits <= 8 else np.uint16


def make_values(pattern, shape, bits, seed):
    """An int64 array of `shape` with values in [0, 2**bits)."""
    rng = np.random.default_rng(seed)
    top = 1 << bits
    maxval = top - 1
    if pattern == "noise":
        v = rng.integers(0, top, size=shape)
    elif pattern == "constant":
        v = np.full(shape, rng.integers(0, top))
    elif pattern == "ramp":
        grid = np.indices(shape).sum(axis=0) * int(rng.integers(1, 9))
        v = (grid + int(rng.integers(0, top))) % top
    elif pattern == "smooth":
        steps = rng.integers(-3, 4, size=shape)
        v = (np.cumsum(np.cumsum(steps, axis=-1), axis=0) + int(rng.integers(0, top))) % top
    elif pattern == "extremes":
        v = np.where(rng.random(shape) < 0.5, 0, maxval)
    elif pattern == "sparse":
        v = np.full(shape, rng.integers(0, top))
        mask = rng.random(shape) < 0.05
        v[mask] = rng.integers(0, top, size=int(mask.sum()))
    elif pattern == "stripes":
        v = np.zeros(shape, dtype=np.int64)
        v[..., ::3] = maxval
        v[..., 1::7] = maxval // 2
    else:
        raise AssertionError(pattern)
    return np.asarray(v, dtype=np.int64)


def make_image(pattern, shape, bits, seed, dtype=None):
    dtype = dtype or unsigned_dtype(bits)
    return make_values(pattern, shape, bits, seed).astype(dtype)


def assert_roundtrip(array, decode_threads=None, **options):
    data = roimc.encode(array, **options)
    assert isinstance(data, bytes)
    out = roimc.decode(data, threads=decode_threads)
    expected = np.asarray(array)
    if expected.dtype == np.bool_:
        expected = expected.astype(np.uint8)
    assert out.dtype == expected.dtype
    assert out.shape == expected.shape
    assert np.array_equal(out, expected)
    return data, out


# --- gray, every bit depth, shape, coder, tiling, threads --------------------------------------

@FAST
@given(h=sides, w=sides, bits=st.integers(1, 16), pattern=patterns, coder=coders,
       effort=efforts, tile=tile_sizes, nthreads=threads, seed=seeds)
def test_gray_roundtrip_any_depth_shape_coder_tiling(h, w, bits, pattern, coder, effort, tile,
                                                     nthreads, seed):
    a = make_image(pattern, (h, w), bits, seed)
    data, _ = assert_roundtrip(a, coder=coder, effort=effort, tile_size=tile, threads=nthreads,
                               decode_threads=nthreads)
    info = roimc.info(data)
    assert info["bits"] == max(1, int(a.max()).bit_length())
    assert info["shape"] == [h, w]
    th, tw = (tile, tile) if np.isscalar(tile) else tile
    assert info["tiles"] == -(-h // th) * -(-w // tw)


@pytest.mark.parametrize("bits", range(1, 17))
@pytest.mark.parametrize("coder", ["golomb", "huffman", "cm", "raw"])
def test_every_bit_depth_full_range_noise(bits, coder):
    rng = np.random.default_rng(bits)
    a = rng.integers(0, 1 << bits, size=(37, 41)).astype(unsigned_dtype(bits))
    a[0, 0], a[-1, -1] = 0, (1 << bits) - 1       # both ends of the range present
    data, _ = assert_roundtrip(a, coder=coder, tile_size=(16, 23), threads=2)
    assert roimc.info(data)["bits"] == bits


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (1, 67), (67, 1), (1, 1000),
                                   (1000, 1), (2, 2), (3, 3), (61, 67)])
@pytest.mark.parametrize("coder", ["golomb", "huffman", "cm"])
@pytest.mark.parametrize("pattern", ["noise", "constant", "ramp", "extremes"])
def test_degenerate_and_prime_shapes(shape, coder, pattern):
    a = make_image(pattern, shape, 12, seed=sum(shape))
    assert_roundtrip(a, coder=coder, tile_size=16)


@pytest.mark.parametrize("value", [0, 1, 255])
@pytest.mark.parametrize("coder", ["golomb", "huffman", "cm"])
def test_constant_uint8_images(value, coder):
    a = np.full((45, 53), value, dtype=np.uint8)
    data, _ = assert_roundtrip(a, coder=coder)
    assert roimc.info(data)["bits"] == max(1, value.bit_length())


@pytest.mark.parametrize("value", [0, 1, 4095, 65535])
def test_constant_uint16_images(value):
    a = np.full((45, 53), value, dtype=np.uint16)
    assert_roundtrip(a, tile_size=16)


@FAST
@given(h=sides, w=sides, channels=st.sampled_from([1, 3]), bits=st.integers(1, 16),
       pattern=patterns, coder=coders, tile=tile_sizes, seed=seeds)
def test_tiles_never_exceed_the_raw_bound(h, w, channels, bits, pattern, coder, tile, seed):
    """No tile stream is longer than its samples stored raw (the encoder falls back to raw)."""
    from roimc import container
    shape = (h, w) if channels == 1 else (h, w, channels)
    a = make_image(pattern, shape, bits, seed)
    data, _ = assert_roundtrip(a, coder=coder, tile_size=tile)
    info = roimc.info(data)
    plane_bits = sum([info["bits"]] + [info["bits"] + (info["transform"] == "rct")] * 2
                     if channels == 3 else [info["bits"]])
    th, tw = info["tile"]
    tiles = [c for c in container.parse(data) if c.ctype == container.TILE]
    index = 0
    for y0 in range(0, h, th):
        for x0 in range(0, w, tw):
            n = (min(th, h - y0) * min(tw, w - x0) * plane_bits + 7) // 8
            assert len(tiles[index].payload) <= 9 + n
            index += 1


def test_constant_image_compresses_well():
    a = np.full((256, 256), 77, dtype=np.uint8)
    data, _ = assert_roundtrip(a)
    assert len(data) < 400


@FEW
@given(h=sides, w=sides, bits=st.integers(1, 16), coder=coders, seed=seeds)
def test_threads_do_not_change_the_bytes(h, w, bits, coder, seed):
    a = make_image("smooth", (h, w), bits, seed)
    one = roimc.encode(a, coder=coder, tile_size=(16, 23), threads=1)
    two = roimc.encode(a, coder=coder, tile_size=(16, 23), threads=2)
    default = roimc.encode(a, coder=coder, tile_size=(16, 23))
    assert one == two == default


@pytest.mark.parametrize("make", [
    lambda a: a[:, ::2],
    lambda a: a[::-1],
    lambda a: a.T,
    lambda a: np.asfortranarray(a),
    lambda a: a[3:40, 5:60:3],
])
def test_non_contiguous_inputs(make):
    base = make_image("noise", (50, 70), 12, seed=5)
    assert_roundtrip(make(base), tile_size=16)


# --- explicit bits ---------------------------------------------------------------------------

@FAST
@given(bits=st.integers(1, 16), extra=st.integers(0, 15), pattern=patterns, coder=coders,
       seed=seeds, h=small_sides, w=small_sides)
def test_explicit_larger_bits_still_exact(bits, extra, pattern, coder, seed, h, w):
    dtype = unsigned_dtype(bits)
    limit = 8 if dtype == np.uint8 else 16
    stored = min(limit, bits + extra)
    a = make_image(pattern, (h, w), bits, seed, dtype)
    data, _ = assert_roundtrip(a, bits=stored, coder=coder, tile_size=16)
    assert roimc.info(data)["bits"] == stored


@FEW
@given(bits=st.integers(2, 16), seed=seeds)
def test_too_few_bits_raises_input_error(bits, seed):
    a = make_image("noise", (9, 11), bits, seed)
    a[0, 0] = (1 << bits) - 1
    with pytest.raises(roimc.InputError):
        roimc.encode(a, bits=bits - 1)


@pytest.mark.parametrize("dtype,bits", [(np.uint8, 9), (np.uint8, 0), (np.uint16, 17),
                                        (np.int8, 9), (np.int16, 17), (np.uint16, -1)])
def test_impossible_bits_raise_input_error(dtype, bits):
    with pytest.raises(roimc.InputError):
        roimc.encode(np.zeros((4, 4), dtype=dtype), bits=bits)


def test_input_error_is_a_value_error_and_rmc_error():
    with pytest.raises(ValueError):
        roimc.encode(np.full((4, 4), 255, np.uint8), bits=4)
    with pytest.raises(roimc.RmcError):
        roimc.encode(np.full((4, 4), 255, np.uint8), bits=4)


# --- colour ----------------------------------------------------------------------------------

@FAST
@given(h=small_sides, w=small_sides, channels=st.sampled_from([2, 3, 4]),
       bits=st.integers(1, 16), pattern=patterns, coder=coders, effort=efforts,
       tile=tile_sizes, nthreads=threads, seed=seeds)
def test_colour_roundtrip(h, w, channels, bits, pattern, coder, effort, tile, nthreads, seed):
    a = make_image(pattern, (h, w, channels), bits, seed)
    data, _ = assert_roundtrip(a, coder=coder, effort=effort, tile_size=tile, threads=nthreads)
    info = roimc.info(data)
    assert info["channels"] == channels
    allowed = {"rct"} if channels >= 3 else {"none"}
    if effort >= 4:
        allowed.add("palette")          # kept when smaller
    if effort >= 7 and channels >= 3:
        allowed.add("none")
    assert info["transform"] in allowed


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("dtype,bits", [(np.uint8, 8), (np.uint16, 16), (np.uint16, 12)])
@pytest.mark.parametrize("coder", ["golomb", "huffman", "cm"])
def test_rgb_full_range_noise_and_extremes(channels, dtype, bits, coder):
    rng = np.random.default_rng(channels * 100 + bits)
    noise = rng.integers(0, 1 << bits, size=(29, 31, channels)).astype(dtype)
    assert_roundtrip(noise, coder=coder, tile_size=16)
    # colour-transform extremes: pure primaries at 0 and max
    top = (1 << bits) - 1
    corners = np.array(np.meshgrid(*[[0, top]] * channels, indexing="ij")).reshape(channels, -1).T
    extremes = rng.permutation(np.tile(corners, (7, 1))).reshape(7, 2 ** channels, channels)
    extremes = extremes.astype(dtype)
    assert_roundtrip(extremes, coder=coder)


def test_rgb_image_with_smooth_colour():
    y, x = np.mgrid[0:80, 0:90]
    a = np.stack([(x * 3) % 256, (y * 2) % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    assert_roundtrip(a, tile_size=(32, 17), threads=2)


@pytest.mark.parametrize("bits", [1, 8, 16])
def test_two_channel_gray_alpha(bits):
    a = make_image("noise", (23, 19, 2), bits, seed=bits)
    data, _ = assert_roundtrip(a)
    assert roimc.info(data)["transform"] == "none"


# --- frames ----------------------------------------------------------------------------------

@FEW
@given(frames=st.integers(1, 5), h=small_sides, w=st.integers(5, 29), bits=st.integers(1, 16),
       pattern=patterns, coder=coders, tile=tile_sizes, nthreads=threads, seed=seeds)
def test_multiframe_gray_roundtrip(frames, h, w, bits, pattern, coder, tile, nthreads, seed):
    a = make_image(pattern, (frames, h, w), bits, seed)
    data, _ = assert_roundtrip(a, coder=coder, tile_size=tile, threads=nthreads)
    info = roimc.info(data)
    assert info["frames"] == frames and info["shape"] == [frames, h, w]


@FEW
@given(frames=st.integers(1, 4), h=small_sides, w=small_sides,
       channels=st.sampled_from([2, 3, 4]), bits=st.integers(1, 16), coder=coders,
       tile=tile_sizes, seed=seeds)
def test_multiframe_colour_roundtrip(frames, h, w, channels, bits, coder, tile, seed):
    a = make_image("noise", (frames, h, w, channels), bits, seed)
    assert_roundtrip(a, coder=coder, tile_size=tile, threads=2)


def test_single_frame_stack_keeps_its_frames_axis():
    a = make_image("ramp", (1, 9, 11), 8, seed=0)
    _, out = assert_roundtrip(a)
    assert out.shape == (1, 9, 11)


def test_three_d_with_small_last_axis_is_colour_by_default():
    a = make_image("noise", (6, 7, 3), 8, seed=1)
    data, _ = assert_roundtrip(a)
    info = roimc.info(data)
    assert info["channels"] == 3 and info["frames"] == 1


def test_channels_last_false_reads_frames():
    a = make_image("noise", (6, 7, 3), 8, seed=1)
    data, _ = assert_roundtrip(a, channels_last=False)
    info = roimc.info(data)
    assert info["channels"] == 1 and info["frames"] == 6


def test_channels_last_true_with_five_channels_is_unsupported():
    with pytest.raises(roimc.UnsupportedError):
        roimc.encode(np.zeros((4, 4, 5), np.uint8), channels_last=True)


# --- signed and bool -------------------------------------------------------------------------

@FAST
@given(h=small_sides, w=small_sides, dtype=st.sampled_from([np.int8, np.int16]),
       pattern=patterns, coder=coders, tile=tile_sizes, seed=seeds, data=st.data())
def test_signed_roundtrip(h, w, dtype, pattern, coder, tile, seed, data):
    limit = 8 if dtype == np.int8 else 16
    bits = data.draw(st.integers(1, limit))
    values = make_values(pattern, (h, w), bits, seed) - (1 << (bits - 1))
    a = values.astype(dtype)
    out_data, _ = assert_roundtrip(a, coder=coder, tile_size=tile)
    info = roimc.info(out_data)
    assert info["dtype"] == np.dtype(dtype).name
    assert info["bits"] <= bits


@FEW
@given(dtype=st.sampled_from([np.int8, np.int16]), extra=st.integers(0, 15), seed=seeds,
       coder=coders, data=st.data())
def test_signed_explicit_bits(dtype, extra, seed, coder, data):
    limit = 8 if dtype == np.int8 else 16
    bits = data.draw(st.integers(1, limit))
    stored = min(limit, bits + extra)
    a = (make_values("noise", (7, 9), bits, seed) - (1 << (bits - 1))).astype(dtype)
    out_data, _ = assert_roundtrip(a, bits=stored, coder=coder)
    info = roimc.info(out_data)
    assert info["bits"] == stored and info["offset"] == -(1 << (stored - 1))


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("coder", ["golomb", "huffman"])
def test_signed_extremes(dtype, coder):
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    a = np.array([[lo, hi, 0, -1, 1], [hi, lo, lo, hi, 0]], dtype=dtype)
    data, _ = assert_roundtrip(a, coder=coder)
    assert roimc.info(data)["bits"] == 8 * np.dtype(dtype).itemsize


@pytest.mark.parametrize("values,bits", [([0], 1), ([-1], 1), ([-1, 0], 1), ([1], 2),
                                         ([-2, 1], 2), ([-3], 3), ([100, -100], 8)])
def test_signed_stored_bits_are_minimal(values, bits):
    a = np.array([values * 3], dtype=np.int16)
    data, _ = assert_roundtrip(a)
    assert roimc.info(data)["bits"] == bits


def test_signed_rgb():
    a = make_values("noise", (13, 17, 3), 16, seed=3) - 32768
    assert_roundtrip(a.astype(np.int16), tile_size=8)


@pytest.mark.parametrize("shape", [(1, 1), (17, 13), (3, 9, 11)])
def test_bool_arrays_decode_as_uint8(shape):
    a = np.random.default_rng(0).random(shape) < 0.3
    data = roimc.encode(a)
    out = roimc.decode(data)
    assert out.dtype == np.uint8
    assert out.shape == a.shape
    assert np.array_equal(out, a.astype(np.uint8))
    assert roimc.info(data)["bits"] == 1


def test_big_endian_uint16_is_accepted():
    """A big-endian uint16 array (e.g. np.load of a '>u2' .npy) holds uint16 samples."""
    a = make_image("noise", (9, 11), 16, seed=4).astype(">u2")
    out = roimc.decode(roimc.encode(a))
    assert out.dtype.kind == "u" and out.dtype.itemsize == 2
    assert np.array_equal(out, a)


# --- refused inputs --------------------------------------------------------------------------

@pytest.mark.parametrize("array", [
    np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint32), np.zeros((4, 4), np.int64),
    np.zeros((4, 4), np.complex64), np.zeros(5, np.uint8), np.zeros((1, 2, 3, 4, 2), np.uint8),
    np.zeros((2, 4, 4, 5), np.uint8), np.array(3, np.uint8),
])
def test_unsupported_arrays(array):
    with pytest.raises(roimc.UnsupportedError):
        roimc.encode(array)


@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (0, 4, 4), (0, 4, 4, 3)])
def test_empty_arrays_raise_input_error(shape):
    with pytest.raises(roimc.InputError):
        roimc.encode(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("options,error", [
    (dict(mode="nonsense"), roimc.InputError),
    (dict(mode="lossy", max_error=1), roimc.InputError),
    (dict(mode="near-lossless"), roimc.InputError),       # needs max_error
    (dict(coder="arithmetic"), roimc.InputError),
    (dict(tile_size=0), roimc.InputError),
    (dict(tile_size=(16, 0)), roimc.InputError),
    (dict(tile_size=-5), roimc.InputError),
])
def test_bad_options(options, error):
    with pytest.raises(error):
        roimc.encode(np.zeros((4, 4), np.uint8), **options)


@pytest.mark.parametrize("options", [
    dict(tile_size=(16,)), dict(tile_size=(16, 16, 16)), dict(tile_size="abc"),
    dict(tile_size=None), dict(metadata={"not json": object()}),
], ids=["tile_size-1-tuple", "tile_size-3-tuple", "tile_size-str", "tile_size-None",
        "metadata-not-json"])
def test_malformed_options_raise_input_error(options):
    """Every error roimc raises on purpose is an RmcError; a bad parameter is an InputError."""
    with pytest.raises(roimc.InputError):
        roimc.encode(np.zeros((4, 4), np.uint8), **options)


def test_describe_reports_fields():
    _, fields = describe(np.zeros((2, 3, 4, 3), np.uint16) + 1000)
    assert fields["frames"] == 2 and fields["height"] == 3 and fields["width"] == 4
    assert fields["channels"] == 3 and fields["bits"] == 10 and fields["sample_type"] == "uint16"


# --- metadata, limits ------------------------------------------------------------------------

def test_metadata_round_trip():
    meta = {"patient": "anon", "spacing": [0.5, 0.5], "nested": {"ok": True}, "unicode": "µm"}
    a = make_image("ramp", (10, 12), 10, seed=0)
    data, _ = assert_roundtrip(a, metadata=meta)
    assert roimc.info(data)["metadata"] == meta
    assert "metadata" not in roimc.info(roimc.encode(a))


def test_max_samples_limit():
    a = make_image("noise", (20, 30, 3), 8, seed=0)
    data = roimc.encode(a)
    with pytest.raises(roimc.LimitError):
        roimc.decode(data, max_samples=20 * 30 * 3 - 1)
    assert np.array_equal(roimc.decode(data, max_samples=20 * 30 * 3), a)


def test_decode_accepts_bytearray_and_memoryview():
    a = make_image("noise", (8, 9), 8, seed=0)
    data = roimc.encode(a)
    assert np.array_equal(roimc.decode(bytearray(data)), a)
    assert np.array_equal(roimc.decode(memoryview(data)), a)


def test_read_write_rmc_paths(tmp_path):
    a = make_image("smooth", (2, 21, 34, 3), 12, seed=7)
    path = tmp_path / "x.rmc"
    roimc.write(path, a, coder="huffman", tile_size=16)
    out = roimc.read(path)
    assert out.dtype == a.dtype and np.array_equal(out, a)
    assert path.read_bytes() == roimc.encode(a, coder="huffman", tile_size=16)
    assert [p.name for p in tmp_path.iterdir()] == ["x.rmc"]


def test_concurrent_calls_from_python_threads():
    """The C core keeps no shared state: many encodes and decodes at once stay exact."""
    from concurrent.futures import ThreadPoolExecutor
    arrays = [make_image(p, (40 + i, 30 + 2 * i, 3) if i % 2 else (50, 20 + i), 8 + i % 9, i)
              for i, p in enumerate(["noise", "smooth", "ramp", "sparse"] * 4)]

    def job(i):
        coder = ["golomb", "huffman", "raw"][i % 3]
        data = roimc.encode(arrays[i], coder=coder, tile_size=(16, 16), threads=2)
        return data, roimc.decode(data, threads=2)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(job, range(len(arrays))))
    for i, (data, out) in enumerate(results):
        assert np.array_equal(out, arrays[i]) and out.dtype == arrays[i].dtype
        coder = ["golomb", "huffman", "raw"][i % 3]
        assert data == roimc.encode(arrays[i], coder=coder, tile_size=(16, 16), threads=1)


# --- large -----------------------------------------------------------------------------------

def test_large_smooth_uint16_multi_tile_threads():
    rng = np.random.default_rng(2100)
    y, x = np.mgrid[0:2100, 0:1900]
    a = (2000 + 1500 * np.sin(x / 97.0) * np.cos(y / 131.0) + (x + y) / 3
         + rng.normal(0, 6, size=x.shape))
    a = np.clip(a, 0, 4095).astype(np.uint16)
    a[:7, :9] = 4095
    data, _ = assert_roundtrip(a, threads=2, decode_threads=2)
    info = roimc.info(data)
    th, tw = info["tile"]
    assert info["tiles"] == -(-2100 // th) * -(-1900 // tw) > 1
    assert info["bits"] == 12
    assert info["bpp"] < 8


# --- corpus ----------------------------------------------------------------------------------

@pytest.mark.parametrize("coder", ["golomb", "huffman"])
@pytest.mark.parametrize("path", corpus_images(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_image_roundtrip(path, coder):
    a = roimc.read(path)
    assert a.dtype in (np.uint8, np.uint16)
    data, _ = assert_roundtrip(a, coder=coder, threads=2)
    assert len(data) < a.nbytes


def test_corpus_is_complete(corpus_dir):
    images = corpus_images()
    assert len(images) >= 10
    assert all(not p.name.endswith(".roi.png") for p in images)
    assert {p.parent.name for p in images} == {"train", "val"}
