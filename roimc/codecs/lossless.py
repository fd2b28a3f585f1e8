"""Lossless mode: independent tiles of causal prediction and context-adaptive residual coding
(C core), a reversible colour transform for RGB, tiles coded in parallel threads."""
import os
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import core
from ..container import TILE, Header
from ..errors import CorruptDataError

_TILE_HEAD = struct.Struct(">IIB")


def plane_bits(header: Header):
    """Bits of each coded plane: the chroma planes of the RCT need one more."""
    bits = [header.bits] * header.channels
    if header.transform == "rct":
        bits[1] = bits[2] = header.bits + 1
    return bits


def rct_forward(t, bits):
    """Reversible colour transform of a (C, h, w) int32 tile, C >= 3, in place:
    Y = floor((R + 2G + B) / 4), Cb = B - G + 2^bits - 1, Cr = R - G + 2^bits - 1."""
    r, g, b = t[0].copy(), t[1].copy(), t[2]
    bias = (1 << bits) - 1
    t[0] = (r + 2 * g + b) >> 2
    t[1] = b - g + bias
    t[2] = r - g + bias


def rct_inverse(t, bits):
    """Inverse of rct_forward; planes that no RGB tile produces raise CorruptDataError."""
    bias = (1 << bits) - 1
    y, cb, cr = t[0], t[1] - bias, t[2] - bias
    g = y - ((cb + cr) >> 2)
    t[0] = cr + g
    t[1] = g
    t[2] = cb + g
    rgb = t[:3]
    if rgb.min() < 0 or rgb.max() > bias:
        raise CorruptDataError("colour transform gives samples out of range")


def _tiles(header: Header):
    """(index, y0, y1, x0, x1) of each tile in raster order."""
    index = 0
    for y0 in range(0, header.height, header.tile_height):
        for x0 in range(0, header.width, header.tile_width):
            yield (index, y0, min(y0 + header.tile_height, header.height),
                   x0, min(x0 + header.tile_width, header.width))
            index += 1


def _run(jobs, threads):
    threads = (os.cpu_count() or 1) if threads is None else max(1, int(threads))
    if threads == 1 or len(jobs) == 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(lambda job: job(), jobs))


def encode(samples, header: Header, coder=core.CODER_GOLOMB, threads=None):
    """Encode (F, H, W, C) coded samples; returns the TILE chunks in file order."""
    bits = plane_bits(header)

    def job(f, index, y0, y1, x0, x1):
        def run():
            t = np.ascontiguousarray(samples[f, y0:y1, x0:x1, :].transpose(2, 0, 1),
                                     dtype=np.int32)
            if header.transform == "rct":
                rct_forward(t, header.bits)
            stream, used = core.encode_tile(t, bits, coder), coder
            if len(stream) > -(-t.shape[1] * t.shape[2] * sum(bits) // 8):
                # incompressible: store the samples as they are
                stream, used = core.encode_tile(t, bits, core.CODER_RAW), core.CODER_RAW
            return TILE, _TILE_HEAD.pack(f, index, used) + stream
        return run

    jobs = [job(f, *tile) for f in range(header.frames) for tile in _tiles(header)]
    return _run(jobs, threads)


def check(chunks, header: Header):
    """Raise unless the file holds exactly the TILE chunks its header declares."""
    found = sum(c.ctype == TILE for c in chunks)
    expected = header.frames * header.tile_count()
    if found != expected:
        raise CorruptDataError(f"file has {found} tiles, its header declares {expected}")


def decode(chunks, header: Header, view, threads=None):
    """Decode the TILE chunks into `view`, an (F, H, W, C) array of the output type.
    The caller runs check() first, before allocating `view`."""
    bits = plane_bits(header)
    tiles = [c for c in chunks if c.ctype == TILE]
    layout = list(_tiles(header))

    def job(chunk, f, index, y0, y1, x0, x1):
        def run():
            if len(chunk.payload) < _TILE_HEAD.size:
                raise CorruptDataError(f"tile chunk at byte {chunk.offset} is too short")
            cf, ci, coder = _TILE_HEAD.unpack_from(chunk.payload)
            if (cf, ci) != (f, index):
                raise CorruptDataError(f"tile chunk at byte {chunk.offset} is frame {cf} tile {ci}, "
                                       f"expected frame {f} tile {index}")
            t = core.decode_tile(memoryview(chunk.payload)[_TILE_HEAD.size:], x1 - x0, y1 - y0,
                                 bits, coder)
            if header.transform == "rct":
                rct_inverse(t, header.bits)
            if header.offset:
                t += header.offset
            view[f, y0:y1, x0:x1, :] = t.transpose(1, 2, 0)
        return run

    it = iter(tiles)
    jobs = [job(next(it), f, *tile) for f in range(header.frames) for tile in layout]
    _run(jobs, threads)
