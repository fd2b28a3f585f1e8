"""Canonical length-limited Huffman codes of the C core (roimc.core.huffman_*)."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roimc
from roimc import core

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def kraft(lengths):
    return sum(Fraction(1, 2 ** int(n)) for n in lengths if n)


def plain_huffman_cost(counts):
    """Total cost (sum count * length) of an unrestricted Huffman code."""
    import heapq
    weights = [int(c) for c in counts if c]
    if len(weights) <= 1:
        return sum(weights)
    heapq.heapify(weights)
    cost = 0
    while len(weights) > 1:
        a, b = heapq.heappop(weights), heapq.heappop(weights)
        cost += a + b
        heapq.heappush(weights, a + b)
    return cost


def fibonacci(n):
    out = [1, 1]
    while len(out) < n:
        out.append(out[-1] + out[-2])
    return out[:n]


def check_lengths(counts, lengths, max_len):
    counts = np.asarray(counts)
    assert lengths.dtype == np.uint8 and lengths.shape == counts.shape
    used = counts > 0
    assert np.all(lengths[~used] == 0), "unused symbols must get length 0"
    if used.sum() == 1:
        assert lengths[used].tolist() == [1]
    elif used.sum() > 1:
        assert np.all(lengths[used] >= 1)
        assert int(lengths.max()) <= max_len
        assert kraft(lengths) <= 1


counts_strategy = st.lists(st.one_of(st.just(0), st.integers(1, 1000), st.integers(1, 2**40)),
                           min_size=1, max_size=300)


@SETTINGS
@given(counts=counts_strategy, max_len=st.integers(9, 24))
def test_lengths_properties(counts, max_len):
    lengths = core.huffman_lengths(counts, max_len)
    check_lengths(counts, lengths, max_len)


@SETTINGS
@given(counts=st.lists(st.integers(1, 10**6), min_size=2, max_size=60))
def test_unlimited_lengths_are_optimal(counts):
    """With room to spare (max_len 24 > any depth here) the code is a true Huffman code."""
    lengths = core.huffman_lengths(counts, 24)
    if int(lengths.max()) < 24:
        cost = sum(int(c) * int(n) for c, n in zip(counts, lengths))
        assert cost == plain_huffman_cost(counts)
        assert kraft(lengths) == 1


@SETTINGS
@given(counts=st.lists(st.integers(0, 50), min_size=1, max_size=64), data=st.data())
def test_length_limit_is_respected_when_feasible(counts, data):
    used = sum(1 for c in counts if c)
    least = max(1, (used - 1).bit_length())
    max_len = data.draw(st.integers(least, 24))
    check_lengths(counts, core.huffman_lengths(counts, max_len), max_len)


def test_zero_counts_get_length_zero():
    lengths = core.huffman_lengths([0, 5, 0, 7, 0, 0, 1], 15)
    assert lengths[[0, 2, 4, 5]].tolist() == [0, 0, 0, 0]
    assert all(lengths[[1, 3, 6]] > 0)


def test_all_zero_counts():
    assert core.huffman_lengths([0, 0, 0], 15).tolist() == [0, 0, 0]


@pytest.mark.parametrize("n,index", [(1, 0), (5, 3), (4096, 4095)])
def test_single_used_symbol_gets_length_one(n, index):
    counts = np.zeros(n, dtype=np.uint64)
    counts[index] = 123
    lengths = core.huffman_lengths(counts, 15)
    assert lengths[index] == 1 and int(lengths.sum()) == 1


def test_two_symbols_get_length_one():
    assert core.huffman_lengths([1, 10**9], 15).tolist() == [1, 1]


@pytest.mark.parametrize("n", [20, 30, 40])
@pytest.mark.parametrize("max_len", [5, 6, 8, 12])
def test_fibonacci_counts_forced_short(n, max_len):
    counts = fibonacci(n)
    plain = core.huffman_lengths(counts, 24)
    assert int(plain.max()) > max_len or n <= max_len + 1
    if n > 2 ** max_len:
        pytest.skip("infeasible")
    lengths = core.huffman_lengths(counts, max_len)
    check_lengths(counts, lengths, max_len)
    # more frequent symbols never get longer codes
    order = np.argsort(counts, kind="stable")
    assert all(np.diff(lengths[order].astype(int)) <= 0)


def test_fibonacci_unlimited_depth_is_deep():
    lengths = core.huffman_lengths(fibonacci(24), 24)
    assert int(lengths.max()) == 23
    assert kraft(lengths) == 1


def test_max_len_one_with_two_symbols():
    assert core.huffman_lengths([3, 1000], 1).tolist() == [1, 1]


@pytest.mark.parametrize("n,max_len", [(3, 1), (5, 2), (257, 8)])
def test_infeasible_limit_raises(n, max_len):
    with pytest.raises(roimc.RmcError):
        core.huffman_lengths(np.ones(n, dtype=np.uint64), max_len)


@pytest.mark.parametrize("max_len", [0, -1, 25, 100])
def test_bad_max_len_raises_input_error(max_len):
    with pytest.raises(roimc.InputError):
        core.huffman_lengths([1, 2, 3], max_len)


@pytest.mark.parametrize("n", [0, 4097])
def test_bad_alphabet_size_raises_input_error(n):
    with pytest.raises(roimc.InputError):
        core.huffman_lengths(np.ones(n, dtype=np.uint64), 15)


def test_full_alphabet_at_exact_limit():
    counts = np.arange(1, 4097, dtype=np.uint64) ** 2
    lengths = core.huffman_lengths(counts, 12)
    assert lengths.tolist() == [12] * 4096


# --- encode / decode symbol streams ----------------------------------------------------------

@SETTINGS
@given(n=st.integers(1, 600), data=st.data())
def test_symbols_round_trip(n, data):
    count = data.draw(st.integers(0, 400))
    skew = data.draw(st.sampled_from(["uniform", "skewed", "single"]))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if skew == "uniform":
        symbols = rng.integers(0, n, size=count)
    elif skew == "skewed":
        symbols = np.minimum(rng.geometric(0.3, size=count) - 1, n - 1)
    else:
        symbols = np.full(count, rng.integers(0, n))
    counts = np.bincount(symbols, minlength=n)
    max_len = data.draw(st.integers(max(1, (n - 1).bit_length()), 24))
    lengths = core.huffman_lengths(counts, max_len)
    stream = core.huffman_encode(symbols, lengths)
    out = core.huffman_decode(stream, count, n)
    assert out.dtype == np.uint16 and np.array_equal(out, symbols)
    # the stream is the table and the codes, nothing more
    table_bits = 5 + (n * int(lengths.max()).bit_length() if count else 0)
    code_bits = int(sum(int(lengths[s]) for s in symbols))
    assert len(stream) == -(-(table_bits + code_bits) // 8)


@SETTINGS
@given(lengths=st.lists(st.integers(0, 24), min_size=1, max_size=40), data=st.data())
def test_any_valid_length_table_round_trips(lengths, data):
    """Any lengths satisfying Kraft form a usable (possibly incomplete) canonical code."""
    lengths = np.array(lengths, dtype=np.uint8)
    used = np.flatnonzero(lengths)
    if kraft(lengths) > 1 or len(used) == 0:
        with pytest.raises(roimc.RmcError):
            core.huffman_encode(np.zeros(1, np.uint16) + (used[0] if len(used) else 0), lengths)
        return
    symbols = data.draw(st.lists(st.sampled_from(used.tolist()), max_size=100))
    stream = core.huffman_encode(symbols, lengths)
    assert np.array_equal(core.huffman_decode(stream, len(symbols), len(lengths)), symbols)


def test_encode_refuses_symbol_without_code():
    with pytest.raises(roimc.InputError):
        core.huffman_encode([0, 1, 2], [1, 1, 0])
    with pytest.raises(roimc.InputError):
        core.huffman_encode([3], [1, 1, 0])


def test_encode_refuses_oversubscribed_lengths():
    with pytest.raises(roimc.RmcError):
        core.huffman_encode([0, 1], [1, 1, 1])
    with pytest.raises(roimc.RmcError):
        core.huffman_encode([0], [2, 2, 2, 2, 2])
    with pytest.raises(roimc.RmcError):
        core.huffman_encode([0], [25, 1])


def _table_stream(lengths, width=None, tail=b""):
    """Hand-made stream: 5 bits of the longest length, then each length in `width` bits."""
    longest = max(lengths)
    width = width if width is not None else longest.bit_length()
    bits = format(longest, "05b") + "".join(format(n, f"0{width}b") for n in lengths)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") + tail


def test_hand_made_table_decodes():
    # lengths 1, 2, 2: codes 0, 10, 11. symbols 2, 0, 1 -> 11 0 10
    bits = format(2, "05b") + "01" + "10" + "10" + "11010"
    bits += "0" * (-len(bits) % 8)
    stream = int(bits, 2).to_bytes(len(bits) // 8, "big")
    assert core.huffman_decode(stream, 3, 3).tolist() == [2, 0, 1]


@pytest.mark.parametrize("lengths", [[1, 1, 1], [2, 2, 2, 2, 2], [1, 2, 2, 2], [3] * 9,
                                     [1, 1, 2]])
def test_oversubscribed_table_is_rejected(lengths):
    stream = _table_stream(lengths, tail=b"\0" * 8)
    with pytest.raises(roimc.CorruptDataError):
        core.huffman_decode(stream, 1, len(lengths))


def test_length_above_declared_maximum_is_rejected():
    # longest = 2 (width 2) but a length 3 appears
    bits = format(2, "05b") + "11" + "01" + "01"
    bits += "0" * (-len(bits) % 8)
    with pytest.raises(roimc.CorruptDataError):
        core.huffman_decode(int(bits, 2).to_bytes(len(bits) // 8, "big") + b"\0" * 4, 1, 3)


def test_declared_maximum_above_24_is_rejected():
    bits = format(31, "05b") + "0" * 27
    with pytest.raises(roimc.CorruptDataError):
        core.huffman_decode(int(bits, 2).to_bytes(4, "big"), 1, 2)


def test_pattern_outside_incomplete_code_is_corrupt():
    # lengths 1, 0: only code '0' exists; a '1' bit is no code
    bits = format(1, "05b") + "10" + "1"
    bits += "0" * (-len(bits) % 8)
    with pytest.raises(roimc.CorruptDataError):
        core.huffman_decode(int(bits, 2).to_bytes(1, "big"), 1, 2)


def test_empty_table_with_symbols_is_corrupt():
    with pytest.raises(roimc.CorruptDataError):
        core.huffman_decode(b"\0", 1, 4)
    assert core.huffman_decode(b"\0", 0, 4).tolist() == []


def test_truncated_and_trailing_symbol_streams():
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, 10, size=500)
    lengths = core.huffman_lengths(np.bincount(symbols, minlength=10), 15)
    stream = core.huffman_encode(symbols, lengths)
    for cut in range(1, len(stream)):
        with pytest.raises(roimc.CorruptDataError):
            core.huffman_decode(stream[:-cut], len(symbols), 10)
    with pytest.raises(roimc.CorruptDataError):
        core.huffman_decode(stream + b"\0", len(symbols), 10)
    with pytest.raises(roimc.CorruptDataError):
        core.huffman_decode(stream, len(symbols) + 50, 10)


def test_huge_symbol_count_on_tiny_stream_fails_fast():
    # one used symbol of length 1 (code '0'): zero-fill could "decode" forever
    stream = _table_stream([1, 0])
    with pytest.raises(roimc.CorruptDataError):
        core.huffman_decode(stream, 10**7, 2)
