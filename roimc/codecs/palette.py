"""Palette transform (transform = 2): the image's distinct sample tuples become a table and the
tiles code one plane of table indices (spec/rmc-v1.md, "PLTE chunk").

For one channel the table is the sorted list of the values that occur ("histogram packing"):
images that use a fraction of their range (rescaled CT/MR, synthetic images) then code small
index steps instead of large value steps. For several channels it lists the colours, ordered
by luma, so that a gray ramp with a few coloured overlays keeps its order; `grays_first`
gives the other order the encoder tries: the neutral colours (R = G = B) by value, then the
rest by luma, so that the gray levels of an image with coloured overlays (an ultrasound
screen with its coloured banner) keep consecutive indices; `adjacency_order` gives a third,
for tables of any number of channels: entries that are neighbours in the image get near
indices (colour-mapped and synthetic images, whose value or luma order is unrelated to
their spatial order).
"""
import struct

import numpy as np

from .. import core
from ..errors import CorruptDataError

KIND_BITMAP = 0    # one channel: a bitmap of the values that occur
KIND_LIST = 1      # any channels: the entries one after another
MAX_ENTRIES = 1 << 16
MAX_COLOURS = 4096    # encoder's limit for tables of several channels
_HEAD = struct.Struct(">BI")


def index_bits(entries):
    """Bits of the index plane for a table of `entries` entries."""
    return max(1, int(entries - 1).bit_length())


def build(samples, max_entries=MAX_ENTRIES):
    """(table, indices) for (F, H, W, C) coded samples, or None when the image has more than
    `max_entries` distinct tuples. table: (K, C) int64; indices: (F, H, W, 1) int32."""
    f, h, w, c = samples.shape
    if c == 1:
        flat = samples.reshape(-1)
        used = np.bincount(flat) > 0          # samples are below 2^16
        values = np.flatnonzero(used)
        if len(values) > max_entries:
            return None
        rank = (np.cumsum(used, dtype=np.int32) - 1).astype(np.int32, copy=False)
        return values[:, None].astype(np.int64), rank[flat].reshape(f, h, w, 1)
    limit = min(max_entries, MAX_COLOURS)
    flat = samples.reshape(-1, c).astype(np.int64)
    if len(np.unique(_packed(flat[:: max(1, len(flat) // 65536)]))) > limit:
        return None
    keys = _packed(flat)
    distinct = np.unique(keys)          # hashing: faster than asking np.unique for the inverse
    if len(distinct) > limit:
        return None
    inverse = np.searchsorted(distinct, keys)
    tuples = _unpacked(distinct, c)
    luma = (tuples[:, 0] * 299 + tuples[:, 1] * 587 + tuples[:, 2] * 114 if c >= 3
            else tuples.sum(axis=1))
    order = np.lexsort(tuple(tuples[:, i] for i in reversed(range(c))) + (luma,))
    return tuples[order], _ranks(order)[inverse.reshape(-1)].reshape(f, h, w, 1)


def _ranks(order):
    """rank[e] = the position of entry e in `order` (a permutation), as int32."""
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank


MAX_ADJACENCY = 1024   # the largest table adjacency_order reorders
_REACH = 256           # adjacency_order weighs this many entries at each end of the chain
ADJACENCY_GAIN = 0.85  # adjacency_order keeps its order only when its steps are this small


def adjacency_order(built):
    """The palette `built` (from build) reordered so that entries often side by side in the
    image get near indices; None for a table of fewer than 3 or more than MAX_ADJACENCY
    entries, or where the new order does not shrink the steps between neighbours'
    indices (mean log2(1 + |step|)) below ADJACENCY_GAIN times those of `built`: value and
    luma orders suit natural images, whose predictors extrapolate values.

    The order is a chain grown greedily. It starts with the pair of entries that are most
    often horizontal or vertical neighbours, then adds, at one end or the other, the entry
    with the largest score: its neighbour counts with the chain's entries weighted
    _REACH - d, d being the entry's distance from that end (0 at the end; none beyond
    _REACH - 1). Ties go to the left end and the lower index; the first pair is the
    largest count, first in row-major order (the next entry when no two entries touch).
    Integer arithmetic in the C core (rmc_palette_chain): the order is the same on every
    machine."""
    table, indices = built
    k = len(table)
    if not 3 <= k <= MAX_ADJACENCY:
        return None
    order = core.palette_chain(indices[..., 0], k, _REACH)
    reordered = _ranks(order)[indices]
    if _mean_log_step(reordered) >= ADJACENCY_GAIN * _mean_log_step(indices):
        return None
    return table[order], reordered


def _mean_log_step(indices):
    """Mean of log2(1 + |step|) over horizontal and vertical neighbours of an index plane."""
    total, pairs = _log_steps(indices)
    return total / pairs if pairs else 0.0


def _log_steps(values):
    """(The sum of log2(1 + |step|) over horizontal and vertical neighbour pairs, the number of
    pairs) of (F, H, W, 1) values."""
    plane = values[..., 0].astype(np.int32, copy=False)
    total, pairs = 0.0, 0
    for axis in (1, 2):
        steps = np.abs(np.diff(plane, axis=axis)).ravel()
        counts = np.bincount(steps)
        total += float(counts @ np.log2(1.0 + np.arange(len(counts))))
        pairs += steps.size
    return total, pairs


def grays_first(built):
    """The palette `built` (from build, three or more channels) reordered with its neutral
    colours (channels 0, 1 and 2 equal) first, in their luma order, and the others after them
    in theirs; None when the table has no neutral colour or no other (the order would not
    change)."""
    table, indices = built
    if table.shape[1] < 3:
        return None
    neutral = (table[:, 0] == table[:, 1]) & (table[:, 1] == table[:, 2])
    if neutral.all() or not neutral.any():
        return None
    order = np.concatenate([np.flatnonzero(neutral), np.flatnonzero(~neutral)])
    return table[order], _ranks(order)[indices]


# The largest ratio seen (corpus/train and val) of the tile bytes that the palette saves with
# coder 3 to step_bytes_saved: 7.6. A table that costs more than this bound times the
# estimate cannot pay for itself (a few bytes are lost when an image exceeds the bound).
SAVING_BOUND = 8


def cannot_pay(samples, indices, table_bytes, scale=1.0):
    """True when the palette of one channel surely costs more (`table_bytes`, its PLTE
    payload) than it saves: `table_bytes` > SAVING_BOUND * step_bytes_saved(...)."""
    return table_bytes > SAVING_BOUND * step_bytes_saved(samples, indices, scale)


def step_bytes_saved(samples, indices, scale=1.0):
    """How much smaller the steps between neighbours get with table indices in place of the
    (F, H, W, 1) samples: the sum over horizontal and vertical neighbour pairs of
    log2(1 + |value step|) - log2(1 + |index step|), halved, in bytes, times `scale` (for
    rows that stand for an image: lossless.row_bands)."""
    return scale * (_log_steps(samples)[0] - _log_steps(indices)[0]) / 16


def _packed(flat):
    """One integer per tuple of 16-bit samples (base 2^16)."""
    key = np.zeros(len(flat), dtype=np.uint64)
    for i in range(flat.shape[1]):
        key = (key << np.uint64(16)) | flat[:, i].astype(np.uint64)
    return key


def _unpacked(keys, c):
    out = np.empty((len(keys), c), dtype=np.int64)
    for i in reversed(range(c)):
        out[:, i] = (keys & np.uint64(0xFFFF)).astype(np.int64)
        keys = keys >> np.uint64(16)
    return out


def pack(table, bits):
    """PLTE payload for a (K, C) table of `bits`-bit coded values."""
    import brotli
    k, c = table.shape
    if c == 1 and np.all(np.diff(table[:, 0]) > 0):   # a bitmap lists values ascending
        bitmap = np.zeros(1 << bits, dtype=np.uint8)
        bitmap[table[:, 0]] = 1
        body = np.packbits(bitmap).tobytes()
        return _HEAD.pack(KIND_BITMAP, k) + brotli.compress(body, quality=11)
    dtype = ">u1" if bits <= 8 else ">u2"
    body = table.astype(dtype).tobytes()
    return _HEAD.pack(KIND_LIST, k) + brotli.compress(body, quality=11)


def unpack(payload, channels, bits):
    """(K, C) int64 table from a PLTE payload; CorruptDataError unless it is well formed."""
    import brotli
    if len(payload) < _HEAD.size:
        raise CorruptDataError("PLTE chunk is too short")
    kind, k = _HEAD.unpack_from(payload)
    if not 1 <= k <= MAX_ENTRIES:
        raise CorruptDataError(f"PLTE chunk declares {k} entries (1..{MAX_ENTRIES} allowed)")
    if kind == KIND_BITMAP:
        if channels != 1:
            raise CorruptDataError("PLTE bitmap table in an image with more than one channel")
        size = ((1 << bits) + 7) // 8
    elif kind == KIND_LIST:
        size = k * channels * (1 if bits <= 8 else 2)
    else:
        raise CorruptDataError(f"PLTE chunk has unknown kind {kind}")
    body = _decompress(brotli, payload[_HEAD.size:], size)
    if kind == KIND_BITMAP:
        bitmap = np.unpackbits(np.frombuffer(body, dtype=np.uint8))
        if (1 << bits) < len(bitmap) and bitmap[1 << bits:].any():
            raise CorruptDataError("PLTE bitmap has bits set beyond the sample range")
        values = np.flatnonzero(bitmap[: 1 << bits])
        if len(values) != k:
            raise CorruptDataError(f"PLTE bitmap holds {len(values)} values, its count says {k}")
        return values[:, None].astype(np.int64)
    table = np.frombuffer(body, dtype=">u1" if bits <= 8 else ">u2").astype(np.int64)
    table = table.reshape(k, channels)
    if table.max(initial=0) >= 1 << bits:
        raise CorruptDataError("PLTE entry exceeds the sample range")
    return table


def _decompress(brotli, data, size):
    """Decompress exactly `size` bytes, refusing more, less or a damaged stream."""
    try:
        d = brotli.Decompressor()
        out = d.process(data, output_buffer_limit=size + 1)
        done = d.is_finished()
    except Exception as exc:   # brotli.error
        raise CorruptDataError(f"PLTE chunk cannot be decompressed: {exc}") from None
    if len(out) != size or not done:
        raise CorruptDataError(f"PLTE table holds {len(out)} bytes, expected {size}")
    return out

