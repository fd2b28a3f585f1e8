"""Near-lossless benchmark: roimc against JPEG-LS (CharLS) near-lossless at the same bound, and
ROI coding (ROI exact, background within 1/256 of the dynamic range) against JPEG XL lossless
of the whole image.

Usage (from the repository root):

    python benchmarks/near_lossless.py                  # default corpus ../shared/corpus/val
    python benchmarks/near_lossless.py IMG_DIR img.png  # folders and/or single files
    python benchmarks/near_lossless.py --bounds 1 2 4 8 --out /tmp/bench
    python benchmarks/near_lossless.py --coder golomb   # coder 0's near-lossless form

Table 1, for every image (masks *.roi.png skipped) and every bound N: bpp (8 * bytes / (H * W),
all channels together), PSNR (peak 2^bits - 1 of the stored bits, all samples) and the maximum
absolute error of roimc (mode near-lossless, max_error=N; by default coder 4's near-lossless
form, --coder to choose) and of CharLS (imagecodecs.jpegls_encode(a, level=N)), and the size
ratio roimc / CharLS; per N the mean, geometric mean and worst ratio and the mean PSNR
difference roimc - CharLS.

Table 2, for every image with a mask NAME.roi.png beside it: roimc with the ROI exact
(roi_max_error=0) and the background within N = max(1, round((2^bits - 1) / 256)), against JPEG
XL lossless (effort 7) of the whole image; the ratio roimc / JPEG XL per image.

Every roimc decode is checked against the bounds on every sample (the script exits with 1 if a
bound is exceeded). Results: --out (default benchmarks/results/) near_lossless.json.
"""
import argparse
import json
import math
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, REPO_ROOT)  # benchmark this working tree's roimc

import imagecodecs  # noqa: E402

import roimc  # noqa: E402

DEFAULT_FOLDER = os.path.join(REPO_ROOT, os.pardir, "shared", "corpus", "val")
DEFAULT_OUT = os.path.join(HERE, "results")
MASK_SUFFIX = ".roi.png"
CHARLS_TARGET = 0.9      # issue 4: roimc size <= 0.9 x CharLS at the same bound


def find_images(paths):
    found = []
    for p in paths:
        names = [os.path.join(p, n) for n in sorted(os.listdir(p))] if os.path.isdir(p) else [p]
        found += [n for n in names if n.lower().endswith((".png", ".tif", ".tiff", ".npy"))
                  and not n.lower().endswith(MASK_SUFFIX)]
    return found


def stored_bits(a):
    return max(1, int(a.max()).bit_length())


def psnr(a, b, peak):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def bpp(nbytes, a):
    return 8 * nbytes / (a.shape[0] * a.shape[1])


def measure(a, data, decoded, peak):
    err = np.abs(decoded.astype(np.int64) - a.astype(np.int64))
    return dict(bytes=len(data), bpp=bpp(len(data), a), psnr=psnr(a, decoded, peak),
                max_error=int(err.max()))


def bound_table(images, bounds, options):
    rows, failures = [], []
    for path in images:
        a = roimc.io.read_image(path)
        peak = (1 << stored_bits(a)) - 1
        for n in bounds:
            data = roimc.encode(a, mode="near-lossless", max_error=n, **options)
            r = measure(a, data, roimc.decode(data), peak)
            if r["max_error"] > n:
                failures.append(f"{os.path.basename(path)} N={n}: error {r['max_error']}")
            try:
                c = imagecodecs.jpegls_encode(a, level=n)
                cl = measure(a, c, imagecodecs.jpegls_decode(c), peak)
            except Exception as exc:  # an anchor failing is reported, not fatal
                cl = dict(bytes=math.nan, bpp=math.nan, psnr=math.nan, max_error=-1,
                          error=str(exc))
            rows.append(dict(image=os.path.basename(path), shape=list(a.shape), bound=n,
                             roimc=r, charls=cl, ratio=r["bytes"] / cl["bytes"]))
    return rows, failures


def roi_table(images, options):
    rows, failures = [], []
    for path in images:
        mpath = path[:-4] + MASK_SUFFIX
        if not os.path.exists(mpath):
            continue
        a = roimc.io.read_image(path)
        from roimc.roi_mask import parse_roi
        mask = parse_roi(mpath, a.shape[0], a.shape[1])
        bits = stored_bits(a)
        n = max(1, round(((1 << bits) - 1) / 256))
        data = roimc.encode(a, mode="near-lossless", max_error=n, roi=mask, roi_max_error=0,
                            **options)
        out = roimc.decode(data)
        err = np.abs(out.astype(np.int64) - a.astype(np.int64))
        m = mask if a.ndim == 2 else mask[..., None]
        roi_err = int(err[np.broadcast_to(m, a.shape)].max())
        bg_err = int(err[~np.broadcast_to(m, a.shape)].max()) if not mask.all() else 0
        if roi_err != 0 or bg_err > n:
            failures.append(f"{os.path.basename(path)}: ROI error {roi_err}, background {bg_err}")
        jxl = len(imagecodecs.jpegxl_encode(a, lossless=True, effort=7, numthreads=1))
        lossless = len(roimc.encode(a))
        mask_bytes = roimc.info(data)["chunks"]["MASK"]["bytes"]
        rows.append(dict(image=os.path.basename(path), bits=bits, background_bound=n,
                         roi_fraction=float(mask.mean()), bytes=len(data), mask_bytes=mask_bytes,
                         bpp=bpp(len(data), a), roi_max_error=roi_err, bg_max_error=bg_err,
                         psnr=psnr(a, out, (1 << bits) - 1), jxl_bytes=jxl,
                         jxl_bpp=bpp(jxl, a), roimc_lossless_bytes=lossless,
                         ratio=len(data) / jxl))
    return rows, failures


def print_bound_table(rows, bounds):
    print("Near-lossless: roimc vs JPEG-LS (CharLS) at the same bound N")
    print(f"{'image':<24}{'N':>3} {'roimc bpp':>10}{'PSNR':>7}{'max':>5} "
          f"{'CharLS bpp':>11}{'PSNR':>7}{'max':>5} {'ratio':>6}")
    for r in rows:
        a, c = r["roimc"], r["charls"]
        print(f"{r['image'][:23]:<24}{r['bound']:>3} {a['bpp']:>10.3f}{a['psnr']:>7.2f}"
              f"{a['max_error']:>5} {c['bpp']:>11.3f}{c['psnr']:>7.2f}{c['max_error']:>5} "
              f"{r['ratio']:>6.3f}")
    print()
    print(f"Mean and worst ratio roimc / CharLS per N (target <= {CHARLS_TARGET}):")
    for n in bounds:
        sel = [r for r in rows if r["bound"] == n and not math.isnan(r["ratio"])]
        ratios = [r["ratio"] for r in sel]
        if ratios:
            geo = math.exp(np.mean(np.log(ratios)))
            dpsnr = np.mean([r["roimc"]["psnr"] - r["charls"]["psnr"] for r in sel])
            print(f"  N={n}: mean {np.mean(ratios):.3f}, geometric mean {geo:.3f}, worst "
                  f"{max(ratios):.3f}, PSNR roimc - CharLS {dpsnr:+.2f} dB"
                  f"{'' if geo <= CHARLS_TARGET else '  (target missed)'}")


def print_roi_table(rows):
    print("ROI exact, background within max(1, round(range/256)) vs JPEG XL lossless (e7)")
    print(f"{'image':<24}{'N':>3}{'ROI %':>7} {'roimc B':>8}{'MASK B':>7}{'bpp':>7}"
          f"{'ROI err':>8}{'bg err':>7} {'JXL B':>8}{'JXL bpp':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['image'][:23]:<24}{r['background_bound']:>3}{100 * r['roi_fraction']:>7.1f} "
              f"{r['bytes']:>8}{r['mask_bytes']:>7}{r['bpp']:>7.3f}{r['roi_max_error']:>8}"
              f"{r['bg_max_error']:>7} {r['jxl_bytes']:>8}{r['jxl_bpp']:>8.3f} {r['ratio']:>6.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=[DEFAULT_FOLDER])
    ap.add_argument("--bounds", nargs="+", type=int, default=[1, 2, 4, 8])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--coder", choices=["cm2", "cm", "golomb", "raw"], default=None,
                    help="roimc's coder (default: the effort's, coder 4 from effort 2 on)")
    ap.add_argument("--effort", type=int, default=5, help="roimc's effort (default 5)")
    args = ap.parse_args(argv)
    options = dict(coder=args.coder, effort=args.effort)
    images = find_images(args.paths)
    rows, failures = bound_table(images, args.bounds, options)
    print_bound_table(rows, args.bounds)
    print()
    roi_rows, roi_failures = roi_table(images, options)
    print_roi_table(roi_rows)
    failures += roi_failures
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "near_lossless.json"), "w") as f:
        json.dump(dict(bounds=rows, roi=roi_rows, failures=failures, options=options,
                       machine=dict(python=platform.python_version(),
                                    platform=platform.platform(),
                                    imagecodecs=imagecodecs.__version__)),
                  f, indent=1, default=float)
    print()
    for line in failures:
        print("BOUND EXCEEDED:", line)
    print("bounds: all held" if not failures else f"bounds: {len(failures)} FAILURES")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
