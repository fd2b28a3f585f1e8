"""Lossy and hybrid modes: the autoencoder's latent in LATN chunks, its decoder named in DCID
(spec/rmc-v1.md, 8.5, 8.6, 14.10, 14.11).

Lossy: each frame is scaled by its range, split into planes (roimc.neural.planes), analysed at
the plane's quality (the encoder's second input is the ROI, or ones without one), rounded to
integers and entropy coded (roimc.neural.latent). Hybrid: the ROI is coded by the exact layer
(near-lossless tiles with the ROI bound and an unbounded background, roimc.codecs.near_lossless)
and the network, given the background as its mask, renders the rest; the decoder writes the
network's samples only outside the ROI, so the ROI never depends on floating point.

Large planes are analysed and synthesised in overlapping tiles (a halo wider than the
network's receptive field, cropped away), so the result does not depend on the tiling: no
seams, bounded memory."""
import functools
import os

import numpy as np

from ..container import DCID, LATN
from ..errors import CorruptDataError, InputError, MissingModelError
from . import latent as latent_mod
from ..registry import checked_path, sha256_of
from .models import DEFAULT_MODEL, MODELS, WEIGHTS_DIR
from .planes import frame_range, from_planes, to_planes

ANALYSIS_TILE, ANALYSIS_HALO = 512, 64          # pixels, multiples of 8
SYNTHESIS_TILE, SYNTHESIS_HALO = 64, 6          # latent samples
BACKGROUND_OFFSET = 0.2   # lossy with an ROI: dead-zone rounding outside it
HYBRID_KEEP = 1   # hybrid: latents further than this (latent samples) from the background are 0
DEVICES = ("auto", "cpu", "cuda")
CHROMA_WEIGHT = 11 / 12   # squared error of a chroma plane against luma's, in R, G, B
CHOICE_SIDE = 512         # larger colour frames choose the chroma quality on a central window


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingModelError("lossy and hybrid modes need PyTorch: "
                                "pip install 'roimc[neural]'") from None
    return torch


def pick_device(device="auto"):
    torch = _torch()
    if device not in DEVICES:
        raise InputError(f"unknown device {device!r}: choose from {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but PyTorch sees no CUDA device")
    return device


# ---------------------------------------------------------------- models and decoder ids

def pack_dcid(name, digest):
    raw = name.encode("ascii")
    return bytes([len(raw)]) + raw + bytes.fromhex(digest)


def unpack_dcid(payload):
    """(name, sha256 hex) of a DCID payload."""
    if len(payload) < 1 or len(payload) != 1 + payload[0] + 32 or payload[0] == 0:
        raise CorruptDataError("DCID chunk is malformed")
    raw = bytes(payload[1:1 + payload[0]])
    if not all(33 <= c < 127 for c in raw):
        raise CorruptDataError("DCID model name is not printable ASCII")
    return raw.decode("ascii"), bytes(payload[1 + payload[0]:]).hex()


def model_file(model=None):
    """(name, path, sha256) of the model to encode with: a registry id (default the shipped
    model) or the path of a weight file written by `roimc train-codec`."""
    model = model or DEFAULT_MODEL
    if model in MODELS:
        return (model,) + checked_path("codec model", model, MODELS[model], WEIGHTS_DIR)
    if not os.path.isfile(model):
        raise MissingModelError(f"codec model {model!r} is neither a known id "
                                f"({', '.join(MODELS)}) nor a weight file")
    name = os.path.splitext(os.path.basename(model))[0][:64]
    name = "".join(c if 33 <= ord(c) < 127 else "_" for c in name) or "model"
    return name, model, sha256_of(model)


def decoder_file(name, digest, model=None):
    """Path of the weight file that decodes a file whose DCID is (name, digest): `model` (a
    path or id) when given, else the registry's entry for `name`; the hash must match."""
    if model is None:
        entry = MODELS.get(name)
        if entry is None or entry["sha256"] != digest:
            raise MissingModelError(f"this file needs decoder model {name} (SHA-256 "
                                    f"{digest[:16]}...), which is not installed: pass its "
                                    f"weight file with --model PATH")
    _, path, have = model_file(model or name)
    if have != digest:
        raise MissingModelError(f"this file needs decoder model {name} (SHA-256 "
                                f"{digest[:16]}...); {path} has SHA-256 {have[:16]}...")
    return path


@functools.lru_cache(maxsize=4)
def _load(path, digest, device):
    torch = _torch()
    from .net import build
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = build(state["config"])
        net.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError, OSError) as exc:
        raise MissingModelError(f"{path} is not a roimc codec model: {exc}") from None
    return net.eval().to(device)


def load(path, digest, device="auto"):
    return _load(path, digest, pick_device(device))


# ---------------------------------------------------------------- tiled inference

def _spans(n, tile, halo):
    """(outer start, outer end, inner start, inner end) along an axis of length n."""
    if n <= tile + 2 * halo:
        return [(0, n, 0, n)]
    return [(max(0, s - halo), min(n, s + tile + halo), s, min(n, s + tile))
            for s in range(0, n, tile)]


def analyse(net, plane, weight, quality, device, offset=None):
    """Integer latent (M, h, w) of one [0, 1] plane (H, W) at quality 1..8. offset: None
    (round to nearest) or an (h, w) map of rounding offsets for the channels after the first
    (|y| is rounded down after adding the offset: below 1/2 is a dead zone)."""
    torch = _torch()
    h, w = plane.shape
    ph, pw = -h % 8, -w % 8
    x = np.pad(plane, ((0, ph), (0, pw)), mode="edge")
    m = np.pad(weight, ((0, ph), (0, pw)), mode="edge")
    H, W = x.shape
    out = np.empty((net.config["latent"], H // 8, W // 8), np.int32)
    with torch.no_grad():
        for y0, y1, iy0, iy1 in _spans(H, ANALYSIS_TILE, ANALYSIS_HALO):
            for x0, x1, ix0, ix1 in _spans(W, ANALYSIS_TILE, ANALYSIS_HALO):
                xt = torch.from_numpy(np.ascontiguousarray(x[y0:y1, x0:x1]))[None, None]
                mt = torch.from_numpy(np.ascontiguousarray(m[y0:y1, x0:x1]))[None, None]
                y = net.analyse(xt.to(device), mt.to(device), quality - 1)[0]
                y = y.clamp(-latent_mod.LIMIT, latent_mod.LIMIT).cpu().numpy()
                out[:, iy0 // 8:iy1 // 8, ix0 // 8:ix1 // 8] = np.rint(
                    y[:, (iy0 - y0) // 8:(iy1 - y0) // 8, (ix0 - x0) // 8:(ix1 - x0) // 8])
                if offset is not None:
                    v = y[1:, (iy0 - y0) // 8:(iy1 - y0) // 8, (ix0 - x0) // 8:(ix1 - x0) // 8]
                    o = offset[iy0 // 8:iy1 // 8, ix0 // 8:ix1 // 8]
                    out[1:, iy0 // 8:iy1 // 8, ix0 // 8:ix1 // 8] = \
                        np.sign(v) * np.floor(np.abs(v) + o)
    return out


def synthesise(net, latent, quality, height, width, device):
    """The (height, width) plane, clamped to [0, 1], of an integer latent (M, h, w)."""
    torch = _torch()
    _, h, w = latent.shape
    out = np.empty((h * 8, w * 8), np.float32)
    y_all = latent.astype(np.float32)
    with torch.no_grad():
        for y0, y1, iy0, iy1 in _spans(h, SYNTHESIS_TILE, SYNTHESIS_HALO):
            for x0, x1, ix0, ix1 in _spans(w, SYNTHESIS_TILE, SYNTHESIS_HALO):
                yt = torch.from_numpy(np.ascontiguousarray(y_all[:, y0:y1, x0:x1]))[None]
                r = net.synthesise(yt.to(device), quality - 1)[0, 0].clamp(0, 1).cpu().numpy()
                out[iy0 * 8:iy1 * 8, ix0 * 8:ix1 * 8] = \
                    r[(iy0 - y0) * 8:(iy1 - y0) * 8, (ix0 - x0) * 8:(ix1 - x0) * 8]
    return out[:height, :width]


# ---------------------------------------------------------------- modes

def plane_qualities(channels, quality):
    """Quality of each plane: the chroma planes of colour images one step lower (hybrid mode;
    lossy mode chooses them by rate and distortion, _colour_latents)."""
    if channels < 3:
        return [quality] * channels
    low = max(1, quality - 1)
    return [quality, low, low] + [quality] * (channels - 3)


def _colour_latents(net, planes, weight, quality, dev, offset, pack):
    """Lossy colour frames: (qualities, latents) of the planes, the chroma planes' qualities
    chosen per image. An error in Cb or Cr reaches R, G and B with 11/12 of the squared size
    of one in Y (planes.py: 3 e_Y^2 against 2.75 e_C^2 over the three channels), so each
    chroma plane takes the quality, from Q - 2 to Q + 1, that minimises
    CHROMA_WEIGHT * MSE + lambda * bytes, lambda being the luma plane's own trade-off between
    its neighbouring qualities (-dMSE / dbytes): at the optimum every plane trades error for
    bytes at the same rate. `pack(quality, latent)` gives a plane's coded bytes. A frame
    larger than CHOICE_SIDE in a dimension is measured on its central window of that side, so
    the choice costs a bounded number of network passes whatever the image's size."""
    h, w = planes.shape[-2:]
    y0, x0 = max(0, (h - CHOICE_SIDE) // 16 * 8), max(0, (w - CHOICE_SIDE) // 16 * 8)
    window = (slice(y0, y0 + CHOICE_SIDE), slice(x0, x0 + CHOICE_SIDE))
    whole = h <= CHOICE_SIDE and w <= CHOICE_SIDE
    seen_planes, seen_weight = planes[(slice(None),) + window], weight[window]
    seen_offset = None if offset is None else \
        offset[y0 // 8:(y0 + CHOICE_SIDE) // 8, x0 // 8:(x0 + CHOICE_SIDE) // 8]

    def point(k, q):
        lat = analyse(net, seen_planes[k], seen_weight, q, dev, seen_offset)
        rec = synthesise(net, lat, q, *seen_planes[k].shape, dev)
        return lat, float(np.mean((rec - seen_planes[k]) ** 2)), len(pack(q, lat))

    top = latent_mod.QUALITIES
    luma = {q: point(0, q) for q in range(max(1, quality - 1), min(top, quality + 1) + 1)}
    lo_q, hi_q = min(luma), max(luma)
    spent = luma[hi_q][2] - luma[lo_q][2]
    lam = max(luma[lo_q][1] - luma[hi_q][1], 0.0) / spent if spent > 0 else 0.0
    qualities, seen = [quality], [luma[quality][0]]
    for k in range(1, len(planes)):
        if k >= 3:   # a plane after the chroma (alpha): the luma's quality
            qualities.append(quality)
            seen.append(None)
            continue
        best = None
        for q in range(max(1, quality - 2), min(top, quality + 1) + 1):
            lat, mse, size = point(k, q)
            cost = CHROMA_WEIGHT * mse + lam * size
            if best is None or cost < best[0]:
                best = (cost, q, lat)
        qualities.append(best[1])
        seen.append(best[2])
    return qualities, [lat if whole and lat is not None else analyse(net, p, weight, q, dev, offset)
                       for p, q, lat in zip(planes, qualities, seen)]


def _dead_zone(roi, h, w):
    """Lossy with an ROI: rounding offsets per latent position, BACKGROUND_OFFSET where the
    8x8 block and its neighbours hold no ROI pixel (fewer bits there), 1/2 elsewhere."""
    from scipy import ndimage as ndi
    m = np.pad(roi, ((0, h * 8 - roi.shape[0]), (0, w * 8 - roi.shape[1])),
               constant_values=False)
    near = ndi.binary_dilation(m.reshape(h, 8, w, 8).any(axis=(1, 3)), iterations=1)
    return np.where(near, 0.5, BACKGROUND_OFFSET).astype(np.float32)


def _keep_near_background(latent, roi):
    """Hybrid: zero the latents further than HYBRID_KEEP latent samples from any background
    pixel; the synthesis of the background barely reads them, and zeros cost little."""
    from scipy import ndimage as ndi
    h, w = latent.shape[-2:]
    bg = np.pad(~roi, ((0, h * 8 - roi.shape[0]), (0, w * 8 - roi.shape[1])),
                constant_values=False)
    small = bg.reshape(h, 8, w, 8).any(axis=(1, 3))
    near = ndi.binary_dilation(small, iterations=HYBRID_KEEP) if small.any() else small
    latent[..., ~near] = 0
    return latent


def encode(samples, header, quality, roi=None, hybrid=False, model=None, device="auto",
           threads=None):
    """DCID and LATN chunks of (F, H, W, C) coded samples (header.version raised to what the
    LATN methods need: latent.VERSIONS). roi: (H, W) bool or None. The
    network's weight-mask input is the ROI in lossy mode (ones without one) and the
    background in hybrid mode. Lossy with an ROI also rounds the latents of blocks away from
    the ROI with a dead zone; hybrid zeroes those the background's synthesis cannot reach."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) \
            or not 1 <= quality <= latent_mod.QUALITIES:
        raise InputError(f"quality must be an integer from 1 to 8, got {quality!r}")
    name, path, digest = model_file(model)
    dev = pick_device(device)
    net = load(path, digest, dev)
    if threads:
        _torch().set_num_threads(max(1, int(threads)))
    shape = (header.height, header.width)
    if roi is None:
        weight = np.ones(shape, np.float32)
    else:
        weight = (~roi if hybrid else roi).astype(np.float32)
    qualities = plane_qualities(header.channels, int(quality))
    chunks = [(DCID, pack_dcid(name, digest))]
    for f in range(header.frames):
        frame = samples[f]
        lo, hi = frame_range(frame)
        planes = to_planes(frame, lo, hi)
        offset = None
        if roi is not None and not hybrid:
            offset = _dead_zone(roi, -(-header.height // 8), -(-header.width // 8))
        qs = qualities
        if header.channels >= 3 and not hybrid:
            qs, lat = _colour_latents(net, planes, weight, int(quality), dev, offset,
                                      lambda q, v: latent_mod.pack(f, lo, hi, [q], v[None]))
            lat = np.stack(lat)
        else:
            lat = np.stack([analyse(net, p, weight, q, dev, offset)
                            for p, q in zip(planes, qualities)])
        if hybrid and roi is not None:
            lat = _keep_near_background(lat, roi)
        chunks.append((LATN, latent_mod.pack(f, lo, hi, qs, lat)))
        header.version = max(tuple(header.version),
                             latent_mod.VERSIONS[latent_mod.method(chunks[-1][1])])
    return chunks


def read_dcid(chunks):
    found = [c for c in chunks if c.ctype == DCID]
    if len(found) != 1:
        raise CorruptDataError(f"a lossy or hybrid file needs one DCID chunk, found "
                               f"{len(found)}")
    return unpack_dcid(found[0].payload)


def read_latents(chunks, header, latent_channels):
    """[(lo, hi, qualities, latent)] of each frame, every LATN field checked."""
    found = [c for c in chunks if c.ctype == LATN]
    if len(found) != header.frames:
        raise CorruptDataError(f"file has {len(found)} LATN chunks, its header declares "
                               f"{header.frames} frames")
    top = (1 << header.bits) - 1
    return [latent_mod.unpack(c.payload, f, top, header.channels, latent_channels,
                              header.height, header.width, header.version)
            for f, c in enumerate(found)]


def check_layout(chunks, header):
    """Structure checks that need no model: one DCID, one LATN per frame, before IEND, and
    no LATN method that the file's version does not define."""
    read_dcid(chunks)
    found = [c for c in chunks if c.ctype == LATN]
    if len(found) != header.frames:
        raise CorruptDataError(f"file has {len(found)} LATN chunks, its header declares "
                               f"{header.frames} frames")
    for c in found:
        method = latent_mod.method(c.payload)
        if method in latent_mod.VERSIONS and header.version < latent_mod.VERSIONS[method]:
            raise CorruptDataError(f"LATN chunk uses method {method}, unknown in a version "
                                   f"{header.version[0]}.{header.version[1]} file")


def decode(chunks, header, view, roi=None, model=None, device="auto", threads=None):
    """Write the network's samples into `view` ((F, H, W, C) of the output type): everywhere
    for lossy files, outside `roi` (H, W bool) for hybrid files."""
    name, digest = read_dcid(chunks)
    path = decoder_file(name, digest, model)
    dev = pick_device(device)
    net = load(path, digest, dev)
    if threads:
        _torch().set_num_threads(max(1, int(threads)))
    for f, (lo, hi, qualities, lat) in enumerate(read_latents(chunks, header,
                                                              net.config["latent"])):
        planes = np.stack([synthesise(net, lat[k], qualities[k], header.height, header.width,
                                      dev) for k in range(len(qualities))])
        out = from_planes(planes, header.channels, lo, hi) + header.offset
        if roi is None:
            view[f] = out
        else:
            view[f][~roi] = out[~roi]


def frame_ranges(chunks):
    """The (lo, hi) of each frame's LATN chunk, in frame order (read after read_latents has
    checked them)."""
    return [latent_mod._FIXED.unpack_from(c.payload)[1:3] for c in chunks if c.ctype == LATN]


def info(chunks):
    """{model, sha256, quality} of a lossy or hybrid file, without decoding."""
    name, digest = read_dcid(chunks)
    qualities = []
    for c in chunks:
        if c.ctype == LATN and len(c.payload) > latent_mod._FIXED.size:
            qualities.append(int(c.payload[latent_mod._FIXED.size]))
    return {"model": name, "model_sha256": digest,
            "quality": qualities[0] if qualities else None}
