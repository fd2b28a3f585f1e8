"""Training of the ROI U-Net (`roimc train-roi --data DIR`, or `python -m roimc.roi.train`).

Data: every image in DIR (.png, .tif/.tiff, .npy; `*.roi.png` are masks, not images). The label
of an image is a classical segmentation of the anatomy against the background (closed and
filled, no margin), united with its `<name>.roi.png` mask when there is one (255 = ROI), so a
given mask is always covered while the label stays the whole body part. `--labels` picks the
segmentation (roimc.roi.classic.classic_label):

  graph (default)  Otsu's threshold with hysteresis and morphology, united with the anatomy of
                   a Felzenszwalb-Huttenlocher graph-based segmentation (roimc/roi/graph.py:
                   the segments that are dark and flat and connected to the image border are
                   background, all else is anatomy), then closed and filled again;
  otsu             the Otsu/hysteresis/morphology foreground alone (the classic method's mask
                   without its margin).

Images are sampled with weight 1/sqrt(size of their series), so that the many slices of one MR
volume do not drown the few radiograph-like, ultrasound and slide images, and augmented for the
modalities the corpus has little of: crops and zoom-out (anatomy filling the field or small in
it), flips and transposes, inversion (MONOCHROME1 radiographs, bright-field slides), gamma,
contrast windows, blur, additive and speckle noise, a smooth bias field, and burnt-in text and
markers in the background (labelled ROI, as the classic rule keeps them).

Deterministic for a given seed and thread count; checkpoints every 100 steps (resumable); the
final file holds the configuration and float32 weights, and its id and SHA-256 are printed for
roimc/roi/models.py."""
import argparse
import os
import re
import sys
import time

import numpy as np

from . import prep
from .classic import LABELS, classic_label
from ..registry import save_atomic, write_weights
from .unet import INPUT, build

EXTS = (".png", ".tif", ".tiff", ".npy")
EVAL_THRESHOLD = 0.3     # the probability the training log's recall and area ratio count


def series_of(stem):
    """Series name of a file stem: the trailing slice or frame number removed."""
    return re.sub(r"_(ax|cor|sag|f)?\d+$", "", stem)


def series_weights(names):
    """(sampling probability of each item, number of series) for items named `stem` or
    `stem#frame`: 1/sqrt(size of its series), normalised, so one long series does not
    drown the rest."""
    series = [series_of(name.split("#")[0]) for name in names]
    counts = {s: series.count(s) for s in series}
    weights = np.array([1 / np.sqrt(counts[s]) for s in series])
    return weights / weights.sum(), len(counts)


def load_folder(folder, labels="graph"):
    """[(name, normalised working image, label)] for the images in folder."""
    from ..io import read_image
    items = []
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in EXTS or stem.endswith(".roi"):
            continue
        frames = prep.frames_of(read_image(os.path.join(folder, name)))
        k = prep.block_factor(frames.shape[1:])
        for i, f in enumerate(frames):
            small = prep.downscale(f, k)
            g = prep.normalise(small)
            if g is None:
                continue
            label = classic_label(small, labels)
            mask_path = os.path.join(folder, stem + ".roi.png")
            if os.path.exists(mask_path):
                mask = read_image(mask_path)
                if mask.ndim == 3:
                    mask = mask.max(axis=-1)
                label |= prep.downscale((mask > 0).astype(np.float32), k) > 0
            items.append((stem if len(frames) == 1 else f"{stem}#{i}", g, label))
    return items


def _text_marker(rng, h, w):
    """A small mask with burnt-in text or a marker shape, as an array of 0/1 floats."""
    from PIL import Image, ImageDraw
    th, tw = int(rng.integers(6, 14)), int(rng.integers(8, 60))
    im = Image.new("L", (tw, th))
    d = ImageDraw.Draw(im)
    if rng.random() < 0.6:
        chars = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789 :./-"
        text = "".join(chars[int(i)] for i in rng.integers(0, len(chars), int(rng.integers(1, 9))))
        d.text((0, 0), text, fill=255)
    else:
        d.rectangle([0, 0, tw - 1, th - 1], outline=255, width=int(rng.integers(1, 3)))
    return np.asarray(im, np.float32) / 255.0


def augment(g, label, rng):
    """One augmented (image, label) pair from a normalised working image and its label."""
    g = g.astype(np.float32)
    label = label.astype(np.float32)
    h, w = g.shape
    r = rng.random()
    if r < 0.3 and min(h, w) >= 16:                       # crop (anatomy fills more)
        ch = max(8, int(h * rng.uniform(0.4, 1.0)))
        cw = max(8, int(w * rng.uniform(0.4, 1.0)))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        g, label = g[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]
    elif r < 0.55:                                        # zoom out (anatomy small)
        from .classic import border_ring
        bg = float(np.median(g[border_ring(g)]))
        H, W = int(h / rng.uniform(0.4, 0.9)), int(w / rng.uniform(0.4, 0.9))
        y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        G = np.full((H, W), bg, np.float32)
        L = np.zeros((H, W), np.float32)
        G[y:y + h, x:x + w], L[y:y + h, x:x + w] = g, label
        g, label = G, L
    if rng.random() < 0.5:
        g, label = g[:, ::-1], label[:, ::-1]
    if rng.random() < 0.5:
        g, label = g[::-1], label[::-1]
    if rng.random() < 0.5:
        g, label = g.T, label.T
    g, label = np.ascontiguousarray(g), np.ascontiguousarray(label)
    h, w = g.shape
    if rng.random() < 0.4:                                # burnt-in text and markers
        for _ in range(int(rng.integers(1, 5))):
            t = _text_marker(rng, h, w)
            th, tw = min(t.shape[0], h), min(t.shape[1], w)
            y, x = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
            v = float(rng.uniform(0.6, 1.0))
            ink = t[:th, :tw] > 0.5
            g[y:y + th, x:x + tw][ink] = v
            label[y:y + th, x:x + tw][ink] = 1.0
    from scipy import ndimage as ndi
    g = np.clip(g, 0, 1) ** float(np.exp(rng.normal(0, 0.45)))   # gamma
    if rng.random() < 0.3:                                # bias field
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        f = 1 + 0.3 * np.sin(2 * np.pi * (rng.random() * yy + rng.random() * xx) + rng.random() * 6)
        g = g * f
    if rng.random() < 0.3:
        g = ndi.gaussian_filter(g, rng.uniform(0.5, 1.5))
    if rng.random() < 0.2:                                # speckle (ultrasound-like)
        g = g * (1 + rng.uniform(0.1, 0.35) * rng.standard_normal(g.shape))
    if rng.random() < 0.5:                                # additive noise
        g = g + rng.uniform(0.0, 0.06) * rng.standard_normal(g.shape)
    if rng.random() < 0.3:                                # inversion (MONOCHROME1, slides)
        g = 1.0 - g
    a, b = rng.uniform(-0.2, 0.1), rng.uniform(0.8, 1.3)  # contrast window
    g = np.clip((g - a) / (b - a), 0, 1)
    n = prep.normalise(g.astype(np.float32))              # as at inference
    g = np.zeros_like(g, np.float32) if n is None else n
    return g.astype(np.float32), label.astype(np.float32)


def to_batch(pairs, torch):
    F = torch.nn.functional
    xs, ys = [], []
    for g, label in pairs:
        big = g.shape[0] > INPUT or g.shape[1] > INPUT
        x = F.interpolate(torch.from_numpy(g)[None, None], size=(INPUT, INPUT), mode="bilinear",
                          align_corners=False, antialias=big)
        y = F.interpolate(torch.from_numpy(label)[None, None], size=(INPUT, INPUT),
                          mode="bilinear", align_corners=False, antialias=big)
        xs.append(x)
        ys.append((y > 0.25).float())
    return torch.cat(xs), torch.cat(ys)


def loss_fn(logits, target, torch):
    """BCE (missed anatomy weighted 1.5x) + Tversky loss (false negatives weighted 0.6)."""
    F = torch.nn.functional
    bce = F.binary_cross_entropy_with_logits(logits, target,
                                             pos_weight=torch.tensor(1.5))
    p = torch.sigmoid(logits)
    tp = (p * target).sum((1, 2, 3))
    fn = ((1 - p) * target).sum((1, 2, 3))
    fp = (p * (1 - target)).sum((1, 2, 3))
    tversky = (tp + 1) / (tp + 0.6 * fn + 0.4 * fp + 1)
    return bce + (1 - tversky).mean()


def evaluate(net, items, torch):
    """Mean and minimum recall and mean area ratio against the training labels, of the
    network's probability above EVAL_THRESHOLD (no post-processing)."""
    from .unet import probabilities
    net.eval()
    recalls, ratios = [], []
    for _, g, label in items:
        p = probabilities(net, [g])[0] > EVAL_THRESHOLD
        recalls.append((p & label).sum() / max(1, label.sum()))
        ratios.append(p.sum() / max(1, label.sum()))
    net.train()
    return float(np.mean(recalls)), float(np.min(recalls)), float(np.mean(ratios))


def train(data, out, steps=800, batch=8, lr=3e-3, seed=0, threads=2,
          channels=(12, 24, 48, 96), labels="graph", log=print):
    import torch
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    t0 = time.time()
    items = load_folder(data, labels)
    if not items:
        raise SystemExit(f"roimc: error: {data}: no training images")
    weights, n_series = series_weights([name for name, _, _ in items])
    log(f"{len(items)} images in {n_series} series from {data} "
        f"({sum(1 for n, _, _ in items if os.path.exists(os.path.join(data, n + '.roi.png')))} "
        f"with masks), {labels} labels in {time.time() - t0:.1f} s")
    net = build(channels)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1)
    ckpt = out + ".ckpt"
    start = 0
    if os.path.exists(ckpt):
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        start = state["step"]
        log(f"resumed from {ckpt} at step {start}")
    net.train()
    running = 0.0
    t1 = time.time()
    for step in range(start, steps):
        idx = rng.choice(len(items), size=batch, p=weights)
        x, y = to_batch([augment(items[i][1], items[i][2], rng) for i in idx], torch)
        loss = loss_fn(net(x), y, torch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running += loss.item()
        if (step + 1) % 25 == 0:
            log(f"step {step + 1}/{steps} loss {running / 25:.4f} "
                f"lr {sched.get_last_lr()[0]:.2e} {time.time() - t1:.0f} s")
            running = 0.0
        if (step + 1) % 100 == 0 or step + 1 == steps:
            r_mean, r_min, ratio = evaluate(net, items, torch)
            log(f"  train labels: recall mean {r_mean:.4f} min {r_min:.4f}, "
                f"area ratio {ratio:.3f}")
            save_atomic(torch, {"net": net.state_dict(), "opt": opt.state_dict(),
                                "sched": sched.state_dict(), "rng": rng.bit_generator.state,
                                "torch_rng": torch.get_rng_state(), "step": step + 1}, ckpt)
    net.eval()
    state = {"config": {"channels": list(channels), "input": INPUT, "steps": steps,
                        "batch": batch, "lr": lr, "seed": seed,
                        "labels": labels},
             "state_dict": {k: v.detach().clone() for k, v in net.state_dict().items()}}
    digest = write_weights(torch, state, out, data, t0, log)
    return out, digest


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m roimc.roi.train",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder of training images (and *.roi.png)")
    ap.add_argument("--out", default="roi_unet.pt", help="weight file to write")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--labels", choices=LABELS, default="graph")
    a = ap.parse_args(argv)
    train(a.data, a.out, a.steps, a.batch, a.lr, a.seed, a.threads, labels=a.labels,
          log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    sys.exit(main())
