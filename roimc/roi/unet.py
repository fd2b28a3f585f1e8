"""The ROI U-Net: a compact U-Net (about 0.3 M parameters) that maps a normalised gray image,
resized to INPUT x INPUT, to the probability of anatomy. torch is imported here only.

Inference: the working image (block means, longest side 256) is normalised by robust
percentiles, resized to INPUT x INPUT, segmented, the probability resized back to the working
scale and thresholded at the model's registry threshold (roimc/roi/models.py), then the
conservative post-processing of the classic method runs: close gaps, fill holes, dilate a
safety margin; the result is united with the classic method's mask (see unet_small)."""
import functools

import numpy as np

from ..errors import InputError, MissingModelError
from . import prep

INPUT = 128          # the network's input edge (anisotropic resize of the working image)
DEFAULT_MODEL = "roi-unet-v2"


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingModelError("--method unet needs PyTorch: pip install 'roimc[neural]' "
                                "(or use --method classic)") from None
    return torch


def build(channels=(12, 24, 48, 96)):
    """A U-Net with len(channels) levels; 3x3 convolutions (edge-replicating padding, so that
    the image border looks like the image, not like a dark frame), batch norm, ReLU, max pooling,
    bilinear upsampling and skip connections; one output logit per pixel."""
    torch = _torch()
    nn = torch.nn

    def block(cin, cout):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, padding_mode="replicate", bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, padding_mode="replicate", bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.channels = tuple(channels)
            self.down = nn.ModuleList()
            cin = 1
            for c in channels:
                self.down.append(block(cin, c))
                cin = c
            self.up = nn.ModuleList(block(channels[i + 1] + channels[i], channels[i])
                                    for i in reversed(range(len(channels) - 1)))
            self.head = nn.Conv2d(channels[0], 1, 1)

        def forward(self, x):
            skips = []
            for i, blk in enumerate(self.down):
                if i:
                    x = nn.functional.max_pool2d(x, 2)
                x = blk(x)
                skips.append(x)
            skips.pop()
            for blk in self.up:
                skip = skips.pop()
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                                              align_corners=False)
                x = blk(torch.cat([x, skip], 1))
            return self.head(x)

    return UNet()


def pick_device(device="auto"):
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return device


@functools.lru_cache(maxsize=4)
def load(model_id=DEFAULT_MODEL, device="cpu"):
    """The shipped model `model_id` on `device`, in eval mode (cached)."""
    torch = _torch()
    from .models import resolve
    path = resolve(model_id)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = build(tuple(state["config"]["channels"]))
    net.load_state_dict(state["state_dict"])
    return net.to(device).eval()


def to_input(small):
    """Working image -> normalised float32 array (zeros when it has no contrast)."""
    g = prep.normalise(small)
    return np.zeros(small.shape, np.float32) if g is None else g


def probabilities(net, images, device="cpu"):
    """Anatomy probability of each working image (a list of 2-D float32 arrays in [0, 1])."""
    torch = _torch()
    F = torch.nn.functional
    out = []
    with torch.inference_mode():
        for g in images:
            x = torch.from_numpy(np.ascontiguousarray(g, np.float32))[None, None].to(device)
            x = F.interpolate(x, size=(INPUT, INPUT), mode="bilinear", align_corners=False,
                              antialias=g.shape[0] > INPUT or g.shape[1] > INPUT)
            p = torch.sigmoid(net(x))
            p = F.interpolate(p, size=g.shape, mode="bilinear", align_corners=False)
            out.append(p[0, 0].float().cpu().numpy())
    return out


def unet_small(smalls, device="auto", model_id=DEFAULT_MODEL, safety_net=True):
    """ROI masks (boolean, working scale) of working-scale frames.

    With safety_net (the default) the mask is the union of the U-Net's and the classic
    method's: the network, trained on a small corpus, may add tissue that thresholds miss
    (faint edges, dark tissue) but never removes what the classic rules find, so an image
    unlike anything it has seen is still covered."""
    from .classic import classic_small
    from .models import MODELS
    dev = pick_device(device)
    net = load(model_id, dev)
    threshold = MODELS[model_id]["threshold"]
    masks = []
    for s, p in zip(smalls, probabilities(net, [to_input(s) for s in smalls], dev)):
        if prep.normalise(s) is None:          # no contrast: nothing to tell apart
            masks.append(np.ones(s.shape, bool))
            continue
        m = p > threshold
        m = prep.conservative(m) if m.any() else np.ones(s.shape, bool)
        if safety_net:
            m |= classic_small(s)
        masks.append(m)
    return masks
