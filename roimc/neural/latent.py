"""The LATN chunk: one frame's quantized latent, entropy coded (spec/rmc-v1.md, 8.5). numpy
and the C core only: the latent's integers decode identically on every machine.

Four methods. 3 (version 1.9, written by this encoder where a plane gains from it) codes each
plane in one of two forms: form 0 is a method-2 plane, form 1 a single latent coder stream
that codes the other channels first and then the block means (spec 16D.5), predicted from
their neighbours and from the edges of the neighbouring blocks that the (0, q) and (q, 0)
coefficients give; the encoder keeps the shorter form per plane. 2 (version 1.7) codes, per
plane, the first latent channel (the block means) as a one-plane image with the C core (the
context-modelling coder 4 or 3 or adaptive Golomb-Rice, whichever is smallest; a constant
image costs three bytes) and the other channels with the C core's latent coder (spec 16D),
whose contexts see the channels already coded at the same position, the block means and the
channel's own neighbours. 0 (read only) codes the block means with coder 3 or Golomb-Rice and
the other channels stacked one under the other as a second image; the latent coder measured
14-35 % smaller on those channels. 1 is brotli on the raw int16 values, kept when it is
smaller than method 2 or 3 (quality 11, tried where a quick quality-5 stream says it could
be)."""
import struct

import numpy as np

from .. import core
from ..errors import CorruptDataError

_FIXED = struct.Struct(">IHHBHII")   # frame, lo, hi, planes, latent channels, height, width
_CHANNEL = struct.Struct(">hB")      # minimum, bits (0: constant channel)
_STREAM = struct.Struct(">BI")       # coder, stream length
METHOD_CORE, METHOD_BROTLI, METHOD_LATENT, METHOD_LATENT_DC = 0, 1, 2, 3
LATENT_VERSION = (1, 7)              # files with a method-2 LATN chunk
LATENT_DC_VERSION = (1, 9)           # files with a method-3 LATN chunk
VERSIONS = {METHOD_CORE: (1, 2), METHOD_BROTLI: (1, 2), METHOD_LATENT: LATENT_VERSION,
            METHOD_LATENT_DC: LATENT_DC_VERSION}    # the version each method needs
QUALITIES = 8
LIMIT = 32767                        # latents are clamped to [-LIMIT, LIMIT]
MAX_POSITIONS = 1 << 28              # the latent coder's limit on lh * lw (spec 18)
BROTLI_PROBE = 5     # brotli quality 11 is tried only where this quality's stream, times
BROTLI_GAIN = 0.7    # BROTLI_GAIN, is shorter than method 2: on the corpus's latents quality 11
                     # was 0.74-0.91 of quality 5, and about 100 times slower


METHOD_0_CODERS = (core.CODER_CM, core.CODER_GOLOMB)
METHOD_2_CODERS = (core.CODER_CM2, core.CODER_CM, core.CODER_GOLOMB)   # coder 4 from 1.7


def _channel_stream(v, coders=METHOD_0_CODERS):
    """Bytes of one group image (rows, w) int32 (methods 0 and 2), with the smallest of
    `coders`."""
    lo, hi = int(v.min()), int(v.max())
    if lo == hi:
        return _CHANNEL.pack(lo, 0)
    bits = (hi - lo).bit_length()
    t = (v - lo)[None].astype(np.int32)
    best = None
    for coder in coders:
        s = core.encode_tile(t, [bits], coder) if coder == core.CODER_GOLOMB else \
            core.encode_tile_cm(t, [bits], coder=coder)
        if best is None or len(s) < len(best[1]):
            best = (coder, s)
    return _CHANNEL.pack(lo, bits) + _STREAM.pack(best[0], len(best[1])) + best[1]


def _groups(m):
    """(first channel, channel count) of the group images of one plane of m channels."""
    return [(0, 1)] + ([(1, m - 1)] if m > 1 else [])


def pack(frame, lo, hi, qualities, latent):
    """LATN payload of frame `frame`: coded-sample range [lo, hi], one quality (1..8) per
    plane and the (planes, channels, h, w) integer latent."""
    import brotli
    p, m, h, w = latent.shape
    if len(qualities) != p or not all(1 <= q <= QUALITIES for q in qualities):
        raise ValueError("one quality from 1 to 8 per plane")
    v = np.clip(latent, -LIMIT, LIMIT).astype(np.int32)
    code, body = latent_body(v)
    values = v.astype(">i2").tobytes()
    raw = brotli.compress(values, quality=BROTLI_PROBE)
    if len(raw) * BROTLI_GAIN < len(body):   # quality 11 might win: try it
        raw = brotli.compress(values, quality=11)
    if len(raw) + 4 < len(body):
        code, body = METHOD_BROTLI, struct.pack(">I", len(raw)) + raw
    return _FIXED.pack(frame, lo, hi, p, m, h, w) + bytes(qualities) + bytes([code]) + body


def coded_payload(frame, lo, hi, qualities, latent, method=None):
    """The LATN payload of an int32 latent (values within LIMIT) in a C-core method, whatever
    brotli would give: METHOD_CORE (what the 1.2-1.6 encoders wrote; this one writes it no
    more), METHOD_LATENT (the 1.7 and 1.8 encoders), or None: what pack writes unless brotli
    is smaller (latent_body)."""
    p, m, h, w = latent.shape
    if method == METHOD_CORE:
        body = b"".join(_channel_stream(latent[k, c0:c0 + n].reshape(n * h, w))
                        for k in range(p) for c0, n in _groups(m))
    elif method == METHOD_LATENT:
        body = method_2_body(latent)
    else:
        method, body = latent_body(latent)
    return _FIXED.pack(frame, lo, hi, p, m, h, w) + bytes(qualities) + bytes([method]) + body


def latent_body(v):
    """(method, data) of the latent coder's LATN payload of a (planes, channels, h, w) int32
    latent: method 3 with each plane in its shorter form, or method 2 where no plane is
    shorter in form 1."""
    planes = [(_method_2_plane(v[k]), _form_1_plane(v[k])) for k in range(v.shape[0])]
    if all(len(two) >= len(one) for one, two in planes):
        return METHOD_LATENT, b"".join(one for one, _ in planes)
    return METHOD_LATENT_DC, b"".join(bytes([0]) + one if len(one) <= len(two)
                                      else bytes([1]) + two for one, two in planes)


def _method_2_plane(plane):
    """Method 2's data for one (channels, h, w) int32 plane (method 3's form 0)."""
    data = _channel_stream(plane[0], METHOD_2_CODERS)
    if plane.shape[0] > 1:
        rest = core.encode_latent(plane)
        data += struct.pack(">I", len(rest)) + rest
    return data


def _form_1_plane(plane):
    """Method 3's form-1 data for one plane: the latent coder stream with the block means
    (16D.5), after its length."""
    stream = core.encode_latent(plane, dc=True)
    return struct.pack(">I", len(stream)) + stream


def method_2_body(v):
    """The data of a method-2 LATN payload of a (planes, channels, h, w) int32 latent."""
    return b"".join(_method_2_plane(v[k]) for k in range(v.shape[0]))


def method(payload):
    """The method byte of a LATN payload (None when it is too short to hold one)."""
    if len(payload) < _FIXED.size + 1:
        return None
    planes = payload[8]
    at = _FIXED.size + planes
    return payload[at] if len(payload) > at else None


def _sized(mv, pos):
    """(the bytes of a u32-length-prefixed stream at `pos`, the position after it)."""
    if len(mv) - pos < 4:
        raise CorruptDataError("LATN chunk is truncated")
    (n,) = struct.unpack_from(">I", mv, pos)
    pos += 4
    if n > len(mv) - pos:
        raise CorruptDataError("LATN chunk is truncated")
    return mv[pos:pos + n], pos + n


def _group_stream(mv, pos, k, shape, coders=METHOD_0_CODERS):
    """(values of shape `shape`, next position) of one method-0/2 group at `pos`, whose coder
    must be one of `coders`."""
    rows, w = shape
    if len(mv) - pos < _CHANNEL.size:
        raise CorruptDataError("LATN chunk is truncated")
    vmin, bits = _CHANNEL.unpack_from(mv, pos)
    pos += _CHANNEL.size
    if bits == 0:
        return np.full(shape, vmin, np.int32), pos
    if bits > 16 or vmin < -LIMIT:
        raise CorruptDataError(f"LATN plane {k} declares {bits} bits from {vmin}")
    if len(mv) - pos < _STREAM.size:
        raise CorruptDataError("LATN chunk is truncated")
    coder, size = _STREAM.unpack_from(mv, pos)
    pos += _STREAM.size
    if coder not in coders:
        raise CorruptDataError(f"LATN plane {k} uses coder {coder}")
    if size > len(mv) - pos:
        raise CorruptDataError("LATN chunk is truncated")
    t = core.decode_tile(mv[pos:pos + size], w, rows, [bits], coder)
    values = t[0] + vmin
    if np.abs(values).max(initial=0) > LIMIT:
        raise CorruptDataError("LATN latent value out of range")
    return values, pos + size


def unpack(payload, frame, lo_hi_top, planes, channels, height, width,
           version=LATENT_DC_VERSION):
    """(lo, hi, qualities, latent (planes, channels, h, w) int32) of a LATN payload, every
    field checked against what the header (its version too) and the model declare."""
    mv = memoryview(payload)
    if len(mv) < _FIXED.size + planes + 1:
        raise CorruptDataError(f"LATN chunk of frame {frame} is too short")
    f, lo, hi, p, m, h, w = _FIXED.unpack_from(mv)
    if f != frame:
        raise CorruptDataError(f"LATN chunk is frame {f}, expected frame {frame}")
    if hi < lo or hi > lo_hi_top:
        raise CorruptDataError(f"LATN chunk declares the range [{lo}, {hi}] outside "
                               f"[0, {lo_hi_top}]")
    if (p, m, h, w) != (planes, channels, -(-height // 8), -(-width // 8)):
        raise CorruptDataError(f"LATN chunk declares a {p}x{m}x{h}x{w} latent, the header and "
                               f"the model need {planes}x{channels}x{-(-height // 8)}x"
                               f"{-(-width // 8)}")
    pos = _FIXED.size
    qualities = list(mv[pos:pos + p])
    if not all(1 <= q <= QUALITIES for q in qualities):
        raise CorruptDataError(f"LATN chunk declares qualities {qualities} (1 to 8 allowed)")
    pos += p
    method = mv[pos]
    pos += 1
    count = p * m
    if method == METHOD_BROTLI:
        import brotli
        if len(mv) - pos < 4:
            raise CorruptDataError("LATN chunk is truncated")
        (n,) = struct.unpack_from(">I", mv, pos)
        pos += 4
        if n != len(mv) - pos:
            raise CorruptDataError("LATN brotli stream length does not match the chunk")
        want = count * h * w * 2
        try:
            d = brotli.Decompressor()
            raw = d.process(bytes(mv[pos:]), output_buffer_limit=want + 1)
            done = d.is_finished()
        except brotli.error as exc:
            raise CorruptDataError(f"LATN brotli stream is damaged: {exc}") from None
        if len(raw) != want or not done:
            raise CorruptDataError(f"LATN brotli stream does not hold the {want} bytes of the "
                                   f"latent")
        v = np.frombuffer(raw, ">i2").astype(np.int32)
        if np.abs(v).max(initial=0) > LIMIT:
            raise CorruptDataError("LATN latent value out of range")
        return lo, hi, qualities, v.reshape(p, m, h, w)
    if method not in (METHOD_CORE, METHOD_LATENT, METHOD_LATENT_DC) or \
            tuple(version) < VERSIONS[method]:
        raise CorruptDataError(f"LATN chunk uses method {method}, unknown in a version "
                               f"{version[0]}.{version[1]} file")   # E53
    if method != METHOD_CORE and h * w > MAX_POSITIONS:
        raise CorruptDataError(f"LATN method {method} latent of {h}x{w} positions is above the "
                               f"latent coder's limit of 2^28")   # E59
    out = np.empty((p, m, h, w), np.int32)
    for k in range(p):
        if method == METHOD_CORE:
            for c0, n in _groups(m):
                values, pos = _group_stream(mv, pos, k, (n * h, w))
                out[k, c0:c0 + n] = values.reshape(n, h, w)
            continue
        form = 0
        if method == METHOD_LATENT_DC:
            if pos >= len(mv):
                raise CorruptDataError("LATN chunk is truncated")
            form = mv[pos]
            pos += 1
            if form > 1:
                raise CorruptDataError(f"LATN plane {k} declares form {form}")   # E52
        if form == 0:
            out[k, 0], pos = _group_stream(mv, pos, k, (h, w), METHOD_2_CODERS)
            if m == 1:
                continue
        stream, pos = _sized(mv, pos)
        out[k] = core.decode_latent(stream, None if form else out[k, 0], m, (h, w))
    if pos != len(mv):
        raise CorruptDataError(f"LATN chunk has {len(mv) - pos} bytes after its streams")
    return lo, hi, qualities, out
