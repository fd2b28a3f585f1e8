"""Training of the lossy codec's autoencoder (`roimc train-codec --data DIR`, or
`python -m roimc.neural.train`).

Data: every image in DIR (.png, .tif/.tiff, .npy; `*.roi.png` are masks, not images), each
frame scaled by its own range and split into planes as the codec does (roimc.neural.planes).
The ROI of a plane is its `<name>.roi.png` mask when there is one, else the classic anatomy
segmentation (roimc.roi, method "classic"). Images are sampled with weight 1/sqrt(size of their
series), so the many slices of one MR volume do not drown the rest; crops are flipped and
transposed.

Each step draws one quality q and a batch of crops, each with one of three weight masks: all
ones (lossy mode without an ROI), the ROI (lossy mode with an ROI) or the background (hybrid
mode, where the ROI is coded exactly and the network renders the rest). The loss is

    bits per pixel + lambda_q * D,  D = weighted mean of MSE + 0.01 * (1 - SSIM)

with weight alpha = 0.75 inside the mask and beta = 0.25 outside (alpha + beta = 1) and
lambda_q spread geometrically over the qualities. The MSE term is there because the codec is
judged by PSNR and SSIM alone leaves the brightness of flat regions free.

By default the analysis (the DCT block transform, the mask's weights, the analysis refinement
and the quality gains) keeps its starting values and only the synthesis and the densities are
trained: on corpus/train, learning the analysis too (`--learn-analysis`) coarsened the steps of
the high qualities (the factorized rate proxy does not see what the file's adaptive coder
exploits) and lost up to 10 dB at quality 8 for the same rate, while a trained synthesis gains
0.5-1 dB over the plain inverse DCT at the low and middle qualities.

Deterministic for a given seed and thread count; checkpoints every 100 steps (resumable); the
final file holds the configuration and float32 weights, and its SHA-256 is printed for
roimc/neural/models.py."""
import argparse
import math
import os
import sys
import time
import warnings

import numpy as np

from ..roi.train import EXTS, series_weights
from .planes import frame_range, to_planes

ALPHA, BETA = 0.75, 0.25
SSIM_WEIGHT = 0.01
LAMBDAS = (300.0, 50000.0)   # lambda of quality 1 and of the highest quality


def lambdas(qualities, lo=LAMBDAS[0], hi=LAMBDAS[1]):
    return [lo * (hi / lo) ** (i / max(qualities - 1, 1)) for i in range(qualities)]


def load_folder(folder, log=print):
    """[(name, planes (P, H, W) float32, roi (H, W) bool)] of the images in folder."""
    from ..io import read_image
    from ..roi import detect_roi
    from ..samples import describe
    items = []
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in EXTS or stem.endswith(".roi"):
            continue
        array = read_image(os.path.join(folder, name))
        samples, _ = describe(array)
        mask_path = os.path.join(folder, stem + ".roi.png")
        for f, frame in enumerate(samples):
            if mask_path and os.path.exists(mask_path):
                m = read_image(mask_path)
                roi = (m.max(axis=-1) if m.ndim == 3 else m) > 0
            else:
                roi = detect_roi(frame if frame.shape[-1] > 1 else frame[..., 0],
                                 method="classic") > 0
            lo, hi = frame_range(frame)
            if hi == lo:
                continue
            items.append((stem if len(samples) == 1 else f"{stem}#{f}",
                          to_planes(frame, lo, hi), roi))
    return items


def crop(planes, roi, size, rng):
    """A (size, size) crop of one plane and its ROI, edge-padded when the image is smaller,
    randomly flipped and transposed."""
    p = planes[rng.integers(len(planes))]
    h, w = p.shape
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        p = np.pad(p, ((0, ph), (0, pw)), mode="edge")
        roi = np.pad(roi, ((0, ph), (0, pw)), mode="edge")
        h, w = p.shape
    y, x = rng.integers(h - size + 1), rng.integers(w - size + 1)
    p, r = p[y:y + size, x:x + size], roi[y:y + size, x:x + size]
    if rng.random() < 0.5:
        p, r = p[:, ::-1], r[:, ::-1]
    if rng.random() < 0.5:
        p, r = p[::-1], r[::-1]
    if rng.random() < 0.5:
        p, r = p.T, r.T
    return np.ascontiguousarray(p), np.ascontiguousarray(r)


def weight_mask(roi, rng):
    """The encoder's mask input for one crop: all ones, the ROI or the background."""
    k = rng.integers(3)
    if k == 0:
        return np.ones(roi.shape, np.float32)
    return (roi if k == 1 else ~roi).astype(np.float32)


def distortion(x, x_hat, mask, torch):
    """Weighted mean of MSE + SSIM_WEIGHT * (1 - SSIM), weight ALPHA in the mask, BETA out."""
    from .net import ssim_map
    w = BETA + (ALPHA - BETA) * mask
    d = (x_hat - x) ** 2 + SSIM_WEIGHT * (1 - ssim_map(x_hat, x))
    return (w * d).sum() / w.sum()


def train(data, out, steps=5000, batch=8, size=128, lr=5e-4, seed=0, threads=2,
          config=None, device="cpu", learn_analysis=False, log=print):
    import torch
    from torch.nn import functional as F
    from ..registry import save_atomic, write_weights
    from .net import DEFAULT_CONFIG, build
    from .codec import pick_device
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    config = dict(config or DEFAULT_CONFIG)
    device = pick_device(device)
    t0 = time.time()
    items = load_folder(data, log)
    if not items:
        raise SystemExit(f"roimc: error: {data}: no training images")
    weights, n_series = series_weights([name for name, _, _ in items])
    log(f"{len(items)} images in {n_series} series from {data}, loaded in "
        f"{time.time() - t0:.1f} s")
    net = build(config).to(device)
    lam = lambdas(config["qualities"])
    if not learn_analysis:   # the analysis stays the DCT coder it starts as
        for mod in (net.block, net.mask_block, net.analysis_refine):
            for p in mod.parameters():
                p.requires_grad_(False)
        net.gain.requires_grad_(False)
    dens = list(net.density.parameters())
    rest = [p for p in net.parameters() if p.requires_grad and all(p is not d for d in dens)]
    opt = torch.optim.Adam([{"params": rest}, {"params": dens, "lr": 10 * lr}], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, 10 * lr], total_steps=steps,
                                                pct_start=0.05, final_div_factor=20)
    ckpt = out + ".ckpt"
    start = 0
    if not os.path.exists(ckpt):   # densities start at the spread of the initial latents
        with torch.no_grad():
            spread = torch.ones(config["qualities"], config["latent"])
            probe = [crop(items[i][1], items[i][2], size, rng)
                     for i in rng.choice(len(items), size=4 * batch, p=weights)]
            x = torch.from_numpy(np.stack([c[0] for c in probe])[:, None]).to(device)
            ones = torch.ones_like(x)
            for q in range(config["qualities"]):
                y = net.analyse(x, ones, q)
                y[:, :1] = y[:, :1] - F.avg_pool2d(y[:, :1], 3, 1, 1, count_include_pad=False)
                spread[q] = 2 * y.std(dim=(0, 2, 3)).cpu() + y.mean(dim=(0, 2, 3)).abs().cpu()
            net.density.set_scales(spread)
    if os.path.exists(ckpt):
        state = torch.load(ckpt, map_location=device, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        start = min(state["step"], steps)
        with warnings.catch_warnings():   # the schedule of `steps` steps, fast-forwarded
            warnings.simplefilter("ignore")
            for _ in range(start):
                sched.step()
        log(f"resumed from {ckpt} at step {start}")
    net.train()
    stats = np.zeros(3)
    t1 = time.time()
    for step in range(start, steps):
        q = int(rng.integers(config["qualities"]))
        idx = rng.choice(len(items), size=batch, p=weights)
        crops = [crop(items[i][1], items[i][2], size, rng) for i in idx]
        x = torch.from_numpy(np.stack([c[0] for c in crops])[:, None]).to(device)
        mask = torch.from_numpy(np.stack([weight_mask(c[1], rng) for c in crops])[:, None])
        mask = mask.to(device)
        x_hat, bits = net(x, mask, q)
        bpp = bits.sum() / x.numel()
        d = distortion(x, x_hat, mask, torch)
        loss = bpp + lam[q] * d
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        sched.step()
        mse = float(((x_hat.detach().clamp(0, 1) - x) ** 2).mean())
        stats += [loss.item(), bpp.item(), 10 * math.log10(1 / max(mse, 1e-10))]
        if (step + 1) % 50 == 0:
            stats /= 50
            log(f"step {step + 1}/{steps} loss {stats[0]:.4f} bpp {stats[1]:.3f} "
                f"psnr {stats[2]:.2f} lr {sched.get_last_lr()[0]:.2e} {time.time() - t1:.0f} s")
            stats[:] = 0
        if (step + 1) % 100 == 0 or step + 1 == steps:
            save_atomic(torch, {"net": net.state_dict(), "opt": opt.state_dict(),
                                "rng": rng.bit_generator.state,
                                "torch_rng": torch.get_rng_state(), "step": step + 1}, ckpt)
    net.eval()
    state = {"config": net.config,
             "training": {"steps": steps, "batch": batch, "size": size, "lr": lr, "seed": seed,
                          "alpha": ALPHA, "beta": BETA, "ssim_weight": SSIM_WEIGHT,
                          "lambdas": lam},
             "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
    digest = write_weights(torch, state, out, data, t0, log)
    return out, digest


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m roimc.neural.train",
                                 description=__doc__.split("\n")[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    run(args)


def add_arguments(ap):
    ap.add_argument("--data", required=True, help="folder of training images (and *.roi.png)")
    ap.add_argument("--out", default="roimc_codec.pt", help="weight file to write")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128, help="crop edge (a multiple of 8)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels", type=int, default=64, help="feature channels")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--learn-analysis", action="store_true",
                    help="train the analysis and the gains too")
    ap.add_argument("--latent", type=int, default=64, help="latent channels (at most 64)")
    ap.add_argument("--detail", type=int, default=48,
                    help="channels of the full-scale refinement")


def run(args, log=print):
    if args.size % 8 or args.size < 16:
        raise SystemExit("roimc: error: --size must be a multiple of 8, at least 16")
    config = {"channels": args.channels, "latent": args.latent, "qualities": 8,
              "detail": args.detail}
    return train(args.data, args.out, steps=args.steps, batch=args.batch, size=args.size,
                 lr=args.lr, seed=args.seed, threads=args.threads, config=config,
                 device=args.device, learn_analysis=args.learn_analysis, log=log)


if __name__ == "__main__":
    sys.exit(main())
