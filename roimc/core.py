"""Thin wrapper over the C core (roimc._core): tile streams and Huffman symbol streams."""
import numpy as np

from ._core import ffi, lib
from .errors import CorruptDataError, InputError, RmcError, UnsupportedError

CODER_GOLOMB = 0
CODER_HUFFMAN = 1
CODER_RAW = 2
CODER_CM = 3
CODER_CM2 = 4      # coder 3 with its second model (spec 16A.11; near-lossless 16A.12, 16A.13)
CODER_FAST = 5     # stored linear predictor, static rANS of residual tokens (spec 16C)
CODERS = {"golomb": CODER_GOLOMB, "huffman": CODER_HUFFMAN, "raw": CODER_RAW, "cm": CODER_CM,
          "cm2": CODER_CM2, "fast": CODER_FAST}
CM_SPATIAL_INPUTS = 10
CM_REF_INPUTS = 5
MAX_PLANE_BITS = 17

_ARGUMENT, _NOMEM, _UNSUPPORTED = 2, 1, 7


def _raise(status, what):
    message = ffi.string(lib.rmc_status_message(status)).decode()
    if status == _ARGUMENT:
        raise InputError(f"{what}: {message}")
    if status == _NOMEM:
        raise MemoryError(f"{what}: {message}")
    if status == _UNSUPPORTED:
        raise UnsupportedError(f"{what}: {message}")
    raise CorruptDataError(f"{what}: {message}")


def _take(buf):
    try:
        return bytes(ffi.buffer(buf.data, buf.size))
    finally:
        lib.rmc_free(buf.data)


def encode_tile(planes, bits, coder=CODER_GOLOMB):
    """Encode a (P, H, W) int32 array whose plane p holds values in [0, 2**bits[p])."""
    planes = np.ascontiguousarray(planes, dtype=np.int32)
    p, h, w = planes.shape
    out = ffi.new("rmc_buffer *")
    status = lib.rmc_encode_tile(ffi.from_buffer("int32_t[]", planes), w, h, p,
                                 ffi.new("int[]", list(bits)), coder, out)
    if status:
        _raise(status, "tile encoder")
    return _take(out)


def encode_tile_cm(planes, bits, weights=None, coder=CODER_CM):
    """Encode a (P, H, W) int32 array with coder 3, 4 or 5 (``coder``: CODER_CM, CODER_CM2 or
    CODER_FAST), which store a linear predictor per plane.
    ``weights[p]`` is None or the plane's stored linear predictor: int16 weights (Q12) over
    the CM inputs (10 for plane 0, 15 after)."""
    planes = np.ascontiguousarray(planes, dtype=np.int32)
    p, h, w = planes.shape
    weights = list(weights) if weights is not None else [None] * p
    counts = [0 if wt is None else len(wt) for wt in weights]
    flat = np.concatenate([np.asarray(wt, dtype=np.int16) for wt in weights if wt is not None]
                          or [np.zeros(1, np.int16)])
    out = ffi.new("rmc_buffer *")
    status = lib.rmc_encode_tile_cm(ffi.from_buffer("int32_t[]", planes), w, h, p,
                                    ffi.new("int[]", list(bits)),
                                    ffi.from_buffer("int16_t[]", flat), ffi.new("int[]", counts),
                                    coder, out)
    if status:
        _raise(status, "tile encoder")
    return _take(out)


def decode_tile(data, width, height, bits, coder=CODER_GOLOMB):
    """Decode a tile stream into a (P, H, W) int32 array."""
    planes = np.empty((len(bits), height, width), dtype=np.int32)
    status = lib.rmc_decode_tile(ffi.from_buffer(data), len(data), width, height, len(bits),
                                 ffi.new("int[]", list(bits)), coder,
                                 ffi.from_buffer("int32_t[]", planes))
    if status:
        _raise(status, "tile stream")
    return planes


def _tile_mask(mask, height, width):
    """The tile's (H, W) mask as contiguous uint8 for the C core, or NULL."""
    if mask is None:
        return ffi.NULL, None
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if m.shape != (height, width):
        raise InputError(f"mask of shape {m.shape} for a {height}x{width} tile")
    return ffi.from_buffer("uint8_t[]", m), m


CM2_LEVELS_VERSION = (1, 6)   # coder 4's near-lossless tiles from here on are form 2 (16A.13)
CM2_OLS_VERSION = (1, 14)     # and from here on form 3 (16A.14)


def near_form(coder, version=None):
    """The near-lossless form of a coder's tiles in a file of `version` (default: the form
    the encoder writes): for coder 4, 3 from version 1.14 on (16A.14), 2 from 1.6 (16A.13),
    1 in version 1.5 files (16A.12); 0 for the other coders."""
    if coder != CODER_CM2:
        return 0
    if version is None or tuple(version) >= CM2_OLS_VERSION:
        return 3
    return 2 if tuple(version) >= CM2_LEVELS_VERSION else 1


def encode_tile_near(planes, bits, coder, mask, near_bg, near_roi, form=None, grade=0,
                     deadzone=0):
    """Near-lossless tile: (P, H, W) int32 planes, an (H, W) mask or None, the bounds of the
    background and of the ROI (mask != 0); form: the coder's near-lossless form (default
    near_form(coder)); grade: 0..15, the background bound near_bg + 1 on grade/16 of the
    background; deadzone: 0..255, background residuals rounded toward zero by up to this
    more, so within this much more of the original (spec 8.7; both for coders 2, 3 and 4).
    Returns (stream, decoded planes)."""
    planes = np.ascontiguousarray(planes, dtype=np.int32)
    p, h, w = planes.shape
    cmask, keep = _tile_mask(mask, h, w)
    recon = np.empty_like(planes)
    out = ffi.new("rmc_buffer *")
    status = lib.rmc_encode_tile_near(ffi.from_buffer("int32_t[]", planes), w, h, p,
                                      ffi.new("int[]", list(bits)), coder,
                                      near_form(coder) if form is None else form, cmask,
                                      int(near_bg), int(near_roi), int(grade), int(deadzone),
                                      ffi.from_buffer("int32_t[]", recon), out)
    del keep
    if status:
        _raise(status, "near-lossless tile encoder")
    return _take(out), recon


def _weights_arg(weights, planes):
    """(flat int16 weights, per-plane counts) for the coder-3 entry points."""
    weights = list(weights) if weights is not None else [None] * planes
    counts = [0 if wt is None else len(wt) for wt in weights]
    flat = np.concatenate([np.asarray(wt, dtype=np.int16) for wt in weights if wt is not None]
                          or [np.zeros(1, np.int16)])
    return flat, counts


def encode_tile_near_cm(planes, bits, weights, mask, near_bg, near_roi, coder=CODER_CM,
                        form=None, grade=0, deadzone=0):
    """Near-lossless tile with coder 3 or 4 and stored linear predictors (``weights`` as for
    encode_tile_cm; form, grade and deadzone as for encode_tile_near). Returns (stream,
    decoded planes)."""
    planes = np.ascontiguousarray(planes, dtype=np.int32)
    p, h, w = planes.shape
    cmask, keep = _tile_mask(mask, h, w)
    flat, counts = _weights_arg(weights, p)
    recon = np.empty_like(planes)
    out = ffi.new("rmc_buffer *")
    status = lib.rmc_encode_tile_near_cm(ffi.from_buffer("int32_t[]", planes), w, h, p,
                                         ffi.new("int[]", list(bits)),
                                         ffi.from_buffer("int16_t[]", flat),
                                         ffi.new("int[]", counts), coder,
                                         near_form(coder) if form is None else form,
                                         cmask, int(near_bg), int(near_roi), int(grade),
                                         int(deadzone), ffi.from_buffer("int32_t[]", recon),
                                         out)
    del keep
    if status:
        _raise(status, "near-lossless tile encoder")
    return _take(out), recon


def decode_tile_near(data, width, height, bits, coder, mask, near_bg, near_roi, form=None,
                     grade=0):
    """Decode a near-lossless tile stream of the given form (default near_form(coder)) and
    grade into a (P, H, W) int32 array."""
    planes = np.empty((len(bits), height, width), dtype=np.int32)
    cmask, keep = _tile_mask(mask, height, width)
    status = lib.rmc_decode_tile_near(ffi.from_buffer(data), len(data), width, height,
                                      len(bits), ffi.new("int[]", list(bits)), coder,
                                      near_form(coder) if form is None else form, cmask,
                                      int(near_bg), int(near_roi), int(grade),
                                      ffi.from_buffer("int32_t[]", planes))
    del keep
    if status:
        _raise(status, "tile stream")
    return planes


def encode_latent(latent, dc=False):
    """Latent coder stream (spec 16D) of a (M, h, w) int32 latent plane (values in
    [-32767, 32767], M <= 64): channels 1.., channel 0 being coded elsewhere (2 <= M), or
    with `dc` every channel, the block means after the others (16D.5)."""
    latent = np.ascontiguousarray(latent, dtype=np.int32)
    m, h, w = latent.shape
    out = ffi.new("rmc_buffer *")
    status = lib.rmc_latent_encode(ffi.from_buffer("int32_t[]", latent), m, h, w, int(dc), out)
    if status:
        _raise(status, "latent encoder")
    return _take(out)


def decode_latent(data, first, channels, shape=None):
    """The (channels, h, w) int32 latent plane of a latent coder stream, given its channel 0
    (`first`, (h, w)), or with first None a stream with the block means (16D.5) of `shape`
    (h, w)."""
    if first is not None:
        first = np.asarray(first, dtype=np.int32)
        shape = first.shape
    h, w = shape
    latent = np.zeros((channels, h, w), dtype=np.int32)
    if first is not None:
        latent[0] = first
    status = lib.rmc_latent_decode(ffi.from_buffer(data), len(data), channels, h, w,
                                   int(first is None), ffi.from_buffer("int32_t[]", latent))
    if status:
        _raise(status, "latent stream")
    return latent


def encode_mask(mask):
    """Mask coder stream (spec 16E) of an (H, W) mask (non-zero: ROI)."""
    mask = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
    h, w = mask.shape
    out = ffi.new("rmc_buffer *")
    status = lib.rmc_mask_encode(ffi.from_buffer("uint8_t[]", mask), h, w, out)
    if status:
        _raise(status, "mask encoder")
    return _take(out)


def decode_mask(data, height, width):
    """The (height, width) boolean mask of a mask coder stream."""
    mask = np.empty((height, width), dtype=np.uint8)
    status = lib.rmc_mask_decode(ffi.from_buffer(data), len(data), height, width,
                                 ffi.from_buffer("uint8_t[]", mask))
    if status:
        _raise(status, "mask stream")
    return mask.view(bool)


def huffman_lengths(counts, max_len=15):
    """Length-limited canonical Huffman code lengths for symbol counts."""
    counts = np.ascontiguousarray(counts, dtype=np.uint64)
    lengths = np.zeros(len(counts), dtype=np.uint8)
    status = lib.rmc_huffman_lengths(ffi.from_buffer("uint64_t[]", counts), len(counts),
                                     max_len, ffi.from_buffer("uint8_t[]", lengths))
    if status:
        _raise(status, "huffman lengths")
    return lengths


def huffman_encode(symbols, lengths):
    """Serialised table of `lengths` followed by the codes of `symbols`."""
    symbols = np.ascontiguousarray(symbols, dtype=np.uint16)
    lengths = np.ascontiguousarray(lengths, dtype=np.uint8)
    out = ffi.new("rmc_buffer *")
    status = lib.rmc_huffman_encode_symbols(ffi.from_buffer("uint16_t[]", symbols), len(symbols),
                                            ffi.from_buffer("uint8_t[]", lengths), len(lengths),
                                            out)
    if status:
        _raise(status, "huffman encoder")
    return _take(out)


def huffman_decode(data, count, alphabet_size):
    symbols = np.empty(count, dtype=np.uint16)
    status = lib.rmc_huffman_decode_symbols(ffi.from_buffer(data), len(data),
                                            ffi.from_buffer("uint16_t[]", symbols), count,
                                            alphabet_size)
    if status:
        _raise(status, "huffman stream")
    return symbols


def lsfit(planes, index, first, step, passes, lam, prior):
    """Reweighted least-squares fit (csrc/lsfit.c) of the coder-3 linear predictor of plane
    `index` of a (P, H, W) int32 tile: float64 weights over its 10 or 15 inputs."""
    planes = np.ascontiguousarray(planes, dtype=np.int32)
    _, h, w = planes.shape
    k = CM_SPATIAL_INPUTS + (CM_REF_INPUTS if index else 0)
    prior = np.ascontiguousarray(prior, dtype=np.float64)
    if prior.shape != (k,):
        raise InputError(f"prior of shape {prior.shape}, expected ({k},)")
    coef = np.empty(k, dtype=np.float64)
    plane = ffi.from_buffer("int32_t[]", planes[index])
    ref = ffi.from_buffer("int32_t[]", planes[index - 1]) if index else ffi.NULL
    status = lib.rmc_lsfit(plane, ref, w, h, first, step, passes, float(lam),
                           ffi.from_buffer("double[]", prior), ffi.from_buffer("double[]", coef))
    if status:
        _raise(status, "predictor fit")
    return coef


def palette_chain(indices, k, reach):
    """The adjacency order (palette.adjacency_order) of the k table entries of an (F, H, W)
    plane of indices below k (3 <= k <= 4096): an int32 array of the entries in their new
    order."""
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    f, h, w = indices.shape
    chain = np.empty(k, dtype=np.int32)
    status = lib.rmc_palette_chain(ffi.from_buffer("int32_t[]", indices), f, h, w, k, reach,
                                   ffi.from_buffer("int32_t[]", chain))
    if status:
        _raise(status, "palette order")
    return chain


__all__ = ["encode_tile", "decode_tile", "huffman_lengths", "huffman_encode", "huffman_decode",
           "CODERS", "RmcError"]

