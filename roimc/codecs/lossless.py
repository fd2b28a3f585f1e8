"""Lossless mode: independent tiles of causal prediction and context-adaptive residual coding
(C core), a reversible colour transform for RGB, tiles coded in parallel threads."""
import os
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import core
from ..container import PLTE, TILE, Header
from ..errors import CorruptDataError
from . import palette as palette_mod
from . import predictor

_TILE_HEAD = struct.Struct(">IIB")
CM2_VERSION = (1, 3)     # files with a coder-4 tile (spec 9, 16A.11)
FAST_VERSION = (1, 4)    # files with a coder-5 tile (spec 9, 16C)
AUTO = -1                # per tile: coder 4 where it pays for its slower decoding, else coder 5
_LOOKUP_SAMPLES = 8192   # palette decoding: samples looked up at a time (index temporaries)


def plane_bits(header: Header, entries=None):
    """Bits of each coded plane: the chroma planes of the RCT need one more; the palette
    transform codes one plane of indices into a table of `entries` entries."""
    if header.transform == "palette":
        return [palette_mod.index_bits(entries)]
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
    """Inverse of rct_forward, in place (one plane of scratch); planes that no RGB tile
    produces raise CorruptDataError."""
    bias = (1 << bits) - 1
    y, cb, cr = t[0], t[1], t[2]
    cb -= bias
    cr -= bias
    g = cb + cr
    g >>= 2
    np.subtract(y, g, out=g)          # G = Y - floor((Cb + Cr) / 4)
    np.add(cr, g, out=t[0])           # R = Cr + G
    cb += g                           # B = Cb + G
    t[2] = cb
    t[1] = g
    rgb = t[:3]
    if rgb.min() < 0 or rgb.max() > bias:
        raise CorruptDataError("colour transform gives samples out of range")


def _tiles(header: Header):
    """(index, y0, y1, x0, x1) of each tile in raster order."""
    return _grid(header.height, header.width, header.tile_height, header.tile_width)


def _grid(height, width, tile_height, tile_width):
    index = 0
    for y0 in range(0, height, tile_height):
        for x0 in range(0, width, tile_width):
            yield (index, y0, min(y0 + tile_height, height), x0, min(x0 + tile_width, width))
            index += 1


def _run(jobs, threads):
    threads = (os.cpu_count() or 1) if threads is None else max(1, int(threads))
    if threads == 1 or len(jobs) == 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(lambda job: job(), jobs))


def encode(samples, header: Header, coder=core.CODER_GOLOMB, threads=None, table=None,
           fit_samples=predictor.DEFAULT_SAMPLES, plte=None):
    """Encode (F, H, W, C) coded samples; returns the chunks that follow HEAD, in file order.
    With the palette transform `samples` holds the (F, H, W, 1) indices into `table` (K, C),
    and `plte` may hold its PLTE payload (palette.pack) when the caller has it already.
    Coder 3 fits a linear predictor per tile and plane on up to `fit_samples` samples
    (0: none)."""
    chunks = encode_tiles(samples, header, coder, threads, table, fit_samples)
    if header.transform == "palette":
        if plte is None:
            plte = palette_mod.pack(table, header.bits)
        chunks.insert(0, (PLTE, plte))
    return chunks


# AUTO keeps a tile's coder-4 stream when it is at most CM_KEEP[0] / CM_KEEP[1] of its
# coder-5 stream: coder 4 decodes about 15 times slower, so it must save a sixteenth.
CM_KEEP = (15, 16)


def encode_tiles(samples, header: Header, coder=core.CODER_GOLOMB, threads=None, table=None,
                 fit_samples=predictor.DEFAULT_SAMPLES):
    """The TILE chunks of encode(), without the PLTE chunk. `header` gives the transform, the
    bits and the tile size; the image size is the shape of `samples`. `coder` is a TILE coder
    or AUTO (coder 4 or 5 per tile, see CM_KEEP)."""
    bits = plane_bits(header, None if table is None else len(table))
    frames, height, width = samples.shape[:3]

    def job(f, index, y0, y1, x0, x1):
        def run():
            t = np.ascontiguousarray(samples[f, y0:y1, x0:x1, :].transpose(2, 0, 1),
                                     dtype=np.int32)
            if header.transform == "rct":
                rct_forward(t, header.bits)
            used = coder
            if coder in (core.CODER_CM, core.CODER_CM2, core.CODER_FAST, AUTO):
                weights = [predictor.fit(t, p, fit_samples) if fit_samples else None
                           for p in range(t.shape[0])]
                if coder == AUTO:
                    stream = core.encode_tile_cm(t, bits, weights, core.CODER_FAST)
                    cm = core.encode_tile_cm(t, bits, weights, core.CODER_CM2)
                    used = core.CODER_FAST
                    if len(cm) * CM_KEEP[1] <= len(stream) * CM_KEEP[0]:
                        stream, used = cm, core.CODER_CM2
                else:
                    stream = core.encode_tile_cm(t, bits, weights, coder)
            else:
                stream = core.encode_tile(t, bits, coder)
            if len(stream) > -(-t.shape[1] * t.shape[2] * sum(bits) // 8):
                # incompressible: store the samples as they are
                stream, used = core.encode_tile(t, bits, core.CODER_RAW), core.CODER_RAW
            return TILE, _TILE_HEAD.pack(f, index, used) + stream
        return run

    layout = list(_grid(height, width, header.tile_height, header.tile_width))
    jobs = [job(f, *tile) for f in range(frames) for tile in layout]
    return _run(jobs, threads)


# Candidate estimates (effort 4 and 5): bands of rows spread over the image stand for it.
BAND_ROWS = 40          # rows per band
BAND_SHARE = 16         # the bands cover about 1 / BAND_SHARE of the rows


def row_bands(samples):
    """(rows, scale): the row indices of evenly spaced bands of BAND_ROWS rows covering about
    1/BAND_SHARE of the (F * H) rows of (F, H, W, C) samples, and (F * H) / len(rows); None
    when the bands would cover half the image or more (then every candidate is coded)."""
    total = samples.shape[0] * samples.shape[1]
    count = max(1, round(total / BAND_SHARE / BAND_ROWS))
    if 2 * count * BAND_ROWS >= total:
        return None
    starts = [(total - BAND_ROWS) * (2 * i + 1) // (2 * count) for i in range(count)]
    rows = np.concatenate([np.arange(s, s + BAND_ROWS) for s in starts])
    return rows, total / len(rows)


def take_rows(samples, rows):
    """The (1, len(rows), W, C) array of the given rows of the (F * H) rows of `samples`."""
    frame, row = np.divmod(rows, samples.shape[1])
    return samples[frame, row][None]


def read_table(chunks, header: Header):
    """The palette table of a transform-2 file, None for the other transforms."""
    found = [c for c in chunks if c.ctype == PLTE]
    if header.transform == "palette" and header.version < (1, 1):
        raise CorruptDataError("palette transform in a version 1.0 file")
    if header.transform != "palette":
        if found:
            raise CorruptDataError("PLTE chunk in a file without the palette transform")
        return None
    if len(found) != 1:
        raise CorruptDataError(f"palette file has {len(found)} PLTE chunks, expected 1")
    return palette_mod.unpack(found[0].payload, header.channels, header.bits)


def check(chunks, header: Header):
    """Raise unless the file holds exactly the TILE chunks its header declares."""
    found = sum(c.ctype == TILE for c in chunks)
    expected = header.frames * header.tile_count()
    if found != expected:
        raise CorruptDataError(f"file has {found} tiles, its header declares {expected}")


def tile_stream(chunk, f, index):
    """(coder, stream) of a TILE chunk, checked to be tile `index` of frame `f`."""
    if len(chunk.payload) < _TILE_HEAD.size:
        raise CorruptDataError(f"tile chunk at byte {chunk.offset} is too short")
    cf, ci, coder = _TILE_HEAD.unpack_from(chunk.payload)
    if (cf, ci) != (f, index):
        raise CorruptDataError(f"tile chunk at byte {chunk.offset} is frame {cf} tile {ci}, "
                               f"expected frame {f} tile {index}")
    return coder, memoryview(chunk.payload)[_TILE_HEAD.size:]


def decode(chunks, header: Header, view, threads=None, table=None):
    """Decode the TILE chunks into `view`, an (F, H, W, C) array of the output type.
    The caller runs check() and read_table() first, before allocating `view`."""
    bits = plane_bits(header, None if table is None else len(table))
    tiles = [c for c in chunks if c.ctype == TILE]
    layout = list(_tiles(header))
    # palette entries as output samples: the lookup's result is the tile in the output type
    lookup = None if table is None else (table + header.offset).astype(view.dtype)

    def job(chunk, f, index, y0, y1, x0, x1):
        def run():
            coder, stream = tile_stream(chunk, f, index)
            if coder == core.CODER_CM and header.version < (1, 1):
                raise CorruptDataError(f"tile chunk at byte {chunk.offset} uses coder 3 in a "
                                       f"version 1.0 file")
            if coder == core.CODER_FAST and header.version < FAST_VERSION:
                raise CorruptDataError(f"tile chunk at byte {chunk.offset} uses coder 5 in a "
                                       f"version {header.version[0]}.{header.version[1]} file")
            if coder == core.CODER_CM2 and header.version < CM2_VERSION:
                raise CorruptDataError(f"tile chunk at byte {chunk.offset} uses coder 4 in a "
                                       f"version {header.version[0]}.{header.version[1]} file")
            t = core.decode_tile(stream, x1 - x0, y1 - y0, bits, coder)
            if lookup is not None:
                if t.max() >= len(lookup):
                    raise CorruptDataError(f"tile chunk at byte {chunk.offset} has a palette "
                                           f"index beyond the table's {len(lookup)} entries")
                step = max(1, _LOOKUP_SAMPLES // (x1 - x0))
                for r in range(0, y1 - y0, step):
                    view[f, y0 + r:min(y0 + r + step, y1), x0:x1, :] = lookup[t[0, r:r + step]]
                return
            if header.transform == "rct":
                rct_inverse(t, header.bits)
            if header.offset:
                t += header.offset
            view[f, y0:y1, x0:x1, :] = t.transpose(1, 2, 0)
        return run

    it = iter(tiles)
    jobs = [job(next(it), f, *tile) for f in range(header.frames) for tile in layout]
    _run(jobs, threads)
