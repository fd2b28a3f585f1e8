"""ROI detection benchmark: recall, Dice, area ratio and time of `roimc.roi.detect_roi`.

Usage (from the repository root):

    python benchmarks/roi.py                          # default ../shared/corpus/val, unet
    python benchmarks/roi.py DIR --method classic     # another folder, the classic method
    python benchmarks/roi.py --method both --out /tmp/roi

For every image (.png/.tif/.tiff/.npy; masks named *.roi.png are skipped) it reports

  * frac      ROI area / image area;
  * recall    |ROI & mask| / |mask|            (images with NAME.roi.png only);
  * dice      2 |ROI & mask| / (|ROI| + |mask|);
  * ratio     |ROI| / |mask|, the area the ROI takes per pixel of true ROI;
  * ms        detection time on the CPU (median of --repeat runs, model loaded beforehand).

The corpus masks of the mr_ch2_* slices are brain masks, while roimc's ROI is the whole imaged
body part (the head), so recall is the figure that matters there; ratio and Dice against a
brain mask measure the scalp and skull that the ROI takes in by design.

It also times a synthetic 2048 x 2048 16-bit radiograph-like image, and writes roi.csv,
roi.json and an overlay PNG per image (ROI outline green, mask outline red) under --out
(default benchmarks/results/roi/). Targets checked: recall >= 0.995 on every image with a mask,
and 2k x 2k under 1 s.
"""
import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from roimc.io import read_image, write_image  # noqa: E402
from roimc.roi import detect_roi  # noqa: E402

EXTS = (".png", ".tif", ".tiff", ".npy")


def images_in(paths):
    for p in paths:
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                if name.lower().endswith(EXTS) and not name.endswith(".roi.png"):
                    yield os.path.join(p, name)
        else:
            yield p


def overlay(array, roi, mask):
    from scipy import ndimage as ndi
    from roimc.cli_roi import overlay_image
    rgb = overlay_image(array, roi)
    if mask is not None:
        edge = mask & ~ndi.binary_erosion(mask, border_value=1)
        rgb[edge] = (255, 0, 0)
    return rgb


def radiograph(size=2048, seed=0):
    """A synthetic 12-bit radiograph-like test image: a bright ellipse with structure on a
    dark noisy background, a collimator edge and a burnt-in marker."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    body = ((x - 0.5) / 0.3) ** 2 + ((y - 0.55) / 0.4) ** 2 < 1
    img = 300 + 60 * rng.standard_normal((size, size)).astype(np.float32)
    img[body] += 1800 + 600 * np.sin(18 * x[body]) * np.cos(11 * y[body])
    img[: size // 20] = 4000
    img[80:140, 80:200] = 3800
    return np.clip(img, 0, 4095).astype(np.uint16)


def timed(array, method, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        roi = detect_roi(array, method=method, device="cpu")
        times.append(time.perf_counter() - t)
    return roi, statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=[os.path.join(HERE, "..", "..", "shared",
                                                              "corpus", "val")])
    ap.add_argument("--method", choices=["unet", "classic", "both"], default="unet")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "roi"))
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    methods = ["unet", "classic"] if a.method == "both" else [a.method]
    if "unet" in methods:
        import torch
        torch.set_num_threads(1)
        detect_roi(np.zeros((8, 8), np.uint8) + np.eye(8, dtype=np.uint8), method="unet",
                   device="cpu")   # load the model once
    rows, ok = [], True
    for path in images_in(a.paths):
        array = read_image(path)
        stem = os.path.splitext(path)[0]
        mask = None
        if os.path.exists(stem + ".roi.png"):
            mask = read_image(stem + ".roi.png")
            mask = (mask.max(axis=-1) if mask.ndim == 3 else mask) > 0
        for method in methods:
            roi, seconds = timed(array, method, a.repeat)
            r = roi.astype(bool)
            row = {"image": os.path.basename(stem), "method": method,
                   "shape": "x".join(map(str, array.shape)), "frac": r.mean(),
                   "recall": "", "dice": "", "ratio": "", "ms": 1000 * seconds}
            if mask is not None:
                inter = (r & mask).sum()
                row.update(recall=inter / mask.sum(), dice=2 * inter / (r.sum() + mask.sum()),
                           ratio=r.sum() / mask.sum(), mask_frac=mask.mean())
                ok &= row["recall"] >= 0.995
            rows.append(row)
            write_image(os.path.join(a.out, f"{row['image']}.{method}.png"),
                        overlay(array, r, mask))
    big = radiograph()
    for method in methods:
        roi, seconds = timed(big, method, a.repeat)
        rows.append({"image": "synthetic_radiograph_2048", "method": method,
                     "shape": "2048x2048", "frac": roi.mean(), "recall": "", "dice": "",
                     "ratio": "", "ms": 1000 * seconds})
        ok &= seconds < 1.0
        write_image(os.path.join(a.out, f"synthetic_radiograph_2048.{method}.png"),
                    overlay(big, roi.astype(bool), None))

    def fmt(v, spec):
        return format(v, spec) if v != "" else "-"
    print(f"{'image':28s} {'method':7s} {'shape':>11s} {'frac':>6s} {'recall':>7s} "
          f"{'dice':>6s} {'ratio':>6s} {'ms':>7s}")
    for row in rows:
        print(f"{row['image']:28s} {row['method']:7s} {row['shape']:>11s} "
              f"{row['frac']:6.3f} {fmt(row['recall'], '7.4f')} {fmt(row['dice'], '6.3f')} "
              f"{fmt(row['ratio'], '6.2f')} {row['ms']:7.1f}")
    for method in methods:
        rec = [r["recall"] for r in rows if r["method"] == method and r["recall"] != ""]
        if rec:
            print(f"{method}: recall min {min(rec):.4f} mean {np.mean(rec):.4f} over "
                  f"{len(rec)} masked images")
    print("PASS" if ok else "FAIL", "(recall >= 0.995 on every masked image, 2k x 2k < 1 s)")
    keys = ["image", "method", "shape", "frac", "recall", "dice", "ratio", "mask_frac", "ms"]
    with open(os.path.join(a.out, "roi.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(a.out, "roi.json"), "w") as f:
        json.dump({"rows": rows, "machine": platform.platform(),
                   "processor": platform.processor()}, f, indent=1, default=float)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
