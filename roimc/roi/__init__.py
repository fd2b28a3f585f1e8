"""Automatic region of interest: the imaged body part, detected conservatively.

    from roimc.roi import detect_roi
    mask = detect_roi(array, method="unet")   # uint8 (H, W), 1 = ROI, 0 = background

`method="classic"` uses numpy and scipy only; `method="unet"` runs the shipped U-Net
(torch, imported only then) on the GPU when one is present, else on the CPU, and unites its
mask with the classic one (a safety net: the network may add tissue, never remove it).
Both work on a reduced copy (longest side 256) and return a full-resolution mask.

The ROI is the whole imaged anatomy (the head, not only the brain), plus burnt-in text and
markers; holes are filled, gaps closed and a safety margin added: missing tissue is a clinical
error, taking in some background only costs bytes. Stacks of frames get one mask, the union
of the frames' masks. An image without contrast or without a dark (or, inverted, bright)
background gives a full mask.
"""
import numpy as np

from ..errors import InputError
from . import prep

METHODS = ("unet", "classic")


def detect_roi(array, method="unet", device="auto", channels_last=None, model_id=None):
    """ROI mask of an image: uint8 array of shape (H, W), 1 inside the ROI, 0 outside.

    array: (H, W), (H, W, C), (F, H, W) or (F, H, W, C); any integer depth, bool or float.
    method: "unet" (shipped weights, needs torch) or "classic" (numpy/scipy).
    device: "auto" (CUDA when present), "cpu" or "cuda" (unet only).
    model_id: a registry id of roimc/roi/models.py (unet only; None: the default model).
    Deterministic: the same input gives the same mask."""
    if method not in METHODS:
        raise InputError(f"unknown ROI method {method!r} (use {' or '.join(METHODS)})")
    frames = prep.frames_of(array, channels_last)
    shape = frames.shape[1:]
    k = prep.block_factor(shape)
    smalls = [prep.downscale(f, k) for f in frames]
    if method == "classic":
        from .classic import classic_small
        masks = [classic_small(s) for s in smalls]
    else:
        from .unet import unet_small
        from .unet import DEFAULT_MODEL
        masks = unet_small(smalls, device=device, model_id=model_id or DEFAULT_MODEL)
    small = np.logical_or.reduce(masks)
    return prep.upscale(small, k, shape).astype(np.uint8)


def auto_roi(array, **options):
    """The mask `--roi auto` codes exactly: detect_roi with the shipped U-Net when torch is
    installed, the classic method otherwise."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return detect_roi(array, method="classic", **options)
    return detect_roi(array, method="unet", **options)
