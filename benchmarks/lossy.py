"""Rate-distortion of roimc's lossy and hybrid modes beside JPEG 2000, JPEG XL and AVIF.

    python benchmarks/lossy.py [--data ../shared/corpus/val] [--out benchmarks/results/lossy]

For every image of the folder (masks `*.roi.png` are ROIs, not images):
- roimc lossy at qualities 1-8 as the encoder writes it by default (the network's file, or
  the near-lossless or lossless file kept instead when it is smaller at an MSE at most 1.26
  times the network's) and the network's file alone (`neural_only`, curve "roimc net"),
  JPEG 2000 (OpenJPEG) at PSNR targets, JPEG XL (libjxl, effort 7) at distances and AVIF
  (libavif) at qualities: bits per pixel, PSNR with peak = the image's maximum, SSIM
  (Gaussian window 11, sigma 1.5), and for images with a mask the PSNR inside and outside
  the ROI; encode and decode seconds (one thread for the anchors, the CPU for roimc);
- the Bjontegaard delta rate (BD-rate, cubic fit of log rate against PSNR over the PSNR range
  both curves cover; lossless points, which have no PSNR, are left out of the fit) of roimc
  against JPEG 2000: negative means smaller files at equal PSNR;
- hybrid mode with the image's mask (ROI exact): the lowest quality whose background PSNR is at
  least 40 dB, its size and its ratio to JPEG XL lossless (effort 7) of the whole image; the
  same with the automatic ROI, and with the mask and the network's file alone ("mask net");
  and with the mask and the target given to the encoder (`bg_psnr=40`, "mask bg_psnr");
- for gray images with a mask, what the background alone costs at 40 dB: roimc's bg_psnr file
  less its exact ROI layer alone (the near-lossless file with the background unbounded), and
  each anchor's smallest file of the image with the ROI filled smoothly (by diffusion from its
  border, which costs the anchors little) whose background PSNR reaches 40 dB.
Writes results.json, a Markdown table (table.md) and, with matplotlib, one bpp-PSNR plot per
image and a summary plot (PNG) into --out. Gray images go to AVIF as three equal channels
(imagecodecs codes gray AVIF losslessly only); 13-16-bit images have no AVIF point."""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import roimc  # noqa: E402
from roimc.io import read_image  # noqa: E402

J2K_LEVELS = (25, 30, 35, 40, 45, 50, 55)
JXL_DISTANCES = (8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.1)
AVIF_LEVELS = (20, 40, 60, 75, 85, 95)
BG_TARGET = 40.0
LOSSLESS_PSNR = 99.0   # psnr() of identical images
CODECS = ("roimc", "roimc net", "J2K", "JXL e7", "AVIF")


def psnr(a, b, peak, where=None):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if where is not None:
        if not where.any():
            return None
        a, b = a[where], b[where]
    mse = np.mean((a - b) ** 2)
    return LOSSLESS_PSNR if mse == 0 else float(10 * np.log10(peak ** 2 / mse))


def ssim(a, b, peak):
    from scipy.ndimage import gaussian_filter
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., c], b[..., c], peak) for c in range(a.shape[-1])]))
    g = lambda x: gaussian_filter(x, 1.5, truncate=3.5)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    ma, mb = g(a), g(b)
    va, vb, cov = g(a * a) - ma ** 2, g(b * b) - mb ** 2, g(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return float(s.mean())


def bd_rate(r1, p1, r2, p2):
    """BD-rate (%) of curve 2 against curve 1 (rates in bpp, PSNR in dB); None without a
    common PSNR range of at least 0.5 dB or enough points."""
    def prep(r, p):
        pts = sorted(zip(p, r))
        p = np.array([x[0] for x in pts])
        r = np.log10(np.array([x[1] for x in pts]))
        return p, r
    p1, lr1 = prep(r1, p1)
    p2, lr2 = prep(r2, p2)
    if len(p1) < 4 or len(p2) < 4:
        return None
    lo, hi = max(p1.min(), p2.min()), min(p1.max(), p2.max())
    if hi - lo < 0.5:
        return None
    f1, f2 = np.polyint(np.polyfit(p1, lr1, 3)), np.polyint(np.polyfit(p2, lr2, 3))
    d = ((np.polyval(f2, hi) - np.polyval(f2, lo)) - (np.polyval(f1, hi) - np.polyval(f1, lo)))
    return float((10 ** (d / (hi - lo)) - 1) * 100)


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def point(name, a, data_len, back, peak, mask, t_enc, t_dec, **extra):
    pixels = a.shape[0] * a.shape[1]
    p = {"codec": name, "bpp": 8 * data_len / pixels, "psnr": psnr(a, back, peak),
         "ssim": ssim(a, back, peak), "enc_s": t_enc, "dec_s": t_dec}
    if mask is not None:
        m = mask if a.ndim == 2 else np.broadcast_to(mask[..., None], a.shape)
        p["psnr_roi"] = psnr(a, back, peak, m)
        p["psnr_bg"] = psnr(a, back, peak, ~m)
    p.update(extra)
    return p


def anchors(a, bits, peak, mask):
    import imagecodecs as ic
    pts = []
    kw = {} if bits in (8, 16) else {"bitspersample": bits}
    for level in J2K_LEVELS:
        d, te = timed(ic.jpeg2k_encode, a, level=level, numthreads=1, **kw)
        b, td = timed(ic.jpeg2k_decode, d, numthreads=1)
        pts.append(point("J2K", a, len(d), b, peak, mask, te, td, setting=level))
    for dist in JXL_DISTANCES:
        d, te = timed(ic.jpegxl_encode, a, distance=dist, effort=7, numthreads=1, **kw)
        b, td = timed(ic.jpegxl_decode, d, numthreads=1)
        pts.append(point("JXL e7", a, len(d), b, peak, mask, te, td, setting=dist))
    if bits <= 12:
        src = a if a.ndim == 3 else np.repeat(a[..., None], 3, -1)
        akw = {} if a.dtype == np.uint8 else {"bitspersample": 10 if bits <= 10 else 12}
        for level in AVIF_LEVELS:
            try:
                d, te = timed(ic.avif_encode, src, level=level, speed=6, numthreads=1, **akw)
                b, td = timed(ic.avif_decode, d, numthreads=1)
            except Exception as exc:   # an AVIF build without this depth
                print(f"  AVIF: {exc}", file=sys.stderr)
                break
            b = b if a.ndim == 3 else b[..., 0]
            pts.append(point("AVIF", a, len(d), b, peak, mask, te, td, setting=level))
    return pts


def lossless_size(a, bits):
    import imagecodecs as ic
    kw = {} if bits in (8, 16) else {"bitspersample": bits}
    return len(ic.jpegxl_encode(a, lossless=True, effort=7, numthreads=1, **kw))


def kept(data):
    """What the lossy or hybrid encoder wrote: "net", "M<bound>" (with a grade G:
    "M<bound>+G", the bound + 1 on G/16 of the background; with a dead zone D: "d<D>" after)
    or "lossless"."""
    i = roimc.info(data)
    if i["mode"] in ("lossy", "hybrid"):
        return "net"
    if i["mode"] == "lossless":
        return "lossless"
    return (f"M{i['max_error']}" + (f"+{i['grade']}" if i["grade"] else "")
            + (f"d{i['deadzone']}" if i["deadzone"] else ""))


def roimc_points(a, bits, peak, mask, device, neural_only=False):
    pts = []
    for q in range(1, 9):
        d, te = timed(roimc.encode, a, mode="lossy", quality=q, bits=bits, device=device,
                      neural_only=neural_only)
        b, td = timed(roimc.decode, d, device=device)
        pts.append(point("roimc net" if neural_only else "roimc", a, len(d), b, peak, mask,
                         te, td, setting=q, kept=kept(d)))
    return pts


def hybrid_points(a, bits, peak, mask, device, label, neural_only=False):
    """Hybrid at each quality with `mask` exact: size, background PSNR."""
    out = []
    for q in range(1, 9):
        d, te = timed(roimc.encode, a, mode="hybrid", roi=mask, quality=q, bits=bits,
                      device=device, neural_only=neural_only)
        b, td = timed(roimc.decode, d, device=device)
        m = mask if a.ndim == 2 else np.broadcast_to(mask[..., None], a.shape)
        assert np.array_equal(b[m], a[m]), "hybrid ROI not exact"
        out.append({"roi": label, "quality": q, "kept": kept(d), "bytes": len(d),
                    "bpp": 8 * len(d) / mask.size,
                    "psnr_bg": psnr(a, b, peak, ~m), "ssim": ssim(a, b, peak),
                    "enc_s": te, "dec_s": td})
        if out[-1]["psnr_bg"] is None or out[-1]["psnr_bg"] >= BG_TARGET:
            break
    return out


def hybrid_target_point(a, bits, peak, mask, device, label):
    """Hybrid with `mask` exact and the background target given to the encoder (bg_psnr)."""
    d, te = timed(roimc.encode, a, mode="hybrid", roi=mask, bg_psnr=BG_TARGET, bits=bits,
                  device=device)
    b, td = timed(roimc.decode, d, device=device)
    m = mask if a.ndim == 2 else np.broadcast_to(mask[..., None], a.shape)
    assert np.array_equal(b[m], a[m]), "hybrid ROI not exact"
    return [{"roi": label, "quality": "-", "kept": kept(d), "bytes": len(d),
             "bpp": 8 * len(d) / mask.size, "psnr_bg": psnr(a, b, peak, ~m),
             "ssim": ssim(a, b, peak), "enc_s": te, "dec_s": td}]


def smooth_fill(a, mask, sweeps=400):
    """`a` with the pixels of `mask` replaced by a diffusion from their border (Jacobi sweeps
    of the 4-neighbour mean), rounded: what an anchor codes nearly for free."""
    f = a.astype(np.float64)
    f[mask] = f[~mask].mean()
    for _ in range(sweeps):
        g = np.pad(f, 1, mode="edge")
        f[mask] = ((g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]) / 4)[mask]
    return np.clip(np.rint(f), 0, np.iinfo(a.dtype).max).astype(a.dtype)


def background_alone(a, bits, peak, mask):
    """Bytes the background costs at BG_TARGET dB: roimc's exact ROI layer alone (to subtract
    from its bg_psnr file), and each anchor's smallest file of the ROI-filled image whose
    background reaches the target (None when no setting does)."""
    import imagecodecs as ic
    top = (1 << bits) - 1
    layer = roimc.encode(a, mode="near-lossless", max_error=top, roi=mask, roi_max_error=0,
                         bits=bits)
    f = smooth_fill(a, mask)
    kw = {} if bits in (8, 16) else {"bitspersample": bits}
    tries = {
        "J2K": [(lambda x, v=v: ic.jpeg2k_encode(x, level=v, numthreads=1, **kw),
                 ic.jpeg2k_decode) for v in np.arange(35.0, 65.0, 0.5)],
        "JXL e7": [(lambda x, v=v: ic.jpegxl_encode(x, distance=v, effort=7, numthreads=1,
                                                     **kw), ic.jpegxl_decode)
                   for v in np.arange(0.01, 3.0, 0.04)],
    }
    if a.dtype == np.uint8:
        tries["AVIF"] = [(lambda x, v=v: ic.avif_encode(np.repeat(x[..., None], 3, -1),
                                                          level=v, speed=6, numthreads=1),
                          lambda d: ic.avif_decode(d)[..., 0]) for v in range(99, 40, -1)]
    out = {"roi_layer_bytes": len(layer)}
    for codec, settings in tries.items():
        sizes = []
        for enc, dec in settings:
            d = enc(f)
            if psnr(a, dec(d), peak, ~mask) >= BG_TARGET:
                sizes.append(len(d))
        out[codec] = min(sizes) if sizes else None
    return out


def plot(results, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots", file=sys.stderr)
        return []
    paths = []
    colours = {"roimc": "C3", "roimc net": "C4", "J2K": "C0", "JXL e7": "C2", "AVIF": "C1"}
    for name, r in results.items():
        fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
        for codec, colour in colours.items():
            pts = sorted((p["bpp"], p["psnr"]) for p in r["points"] if p["codec"] == codec
                         and p["psnr"] < LOSSLESS_PSNR)
            if pts:
                ax.plot(*zip(*pts), "o-", color=colour, label=codec, ms=3)
            exact = {p["bpp"] for p in r["points"]
                     if p["codec"] == codec and p["psnr"] >= LOSSLESS_PSNR}
            for bpp in exact:   # lossless files have no PSNR: a line at their rate
                ax.axvline(bpp, color=colour, ls="--", lw=0.8,
                           label=f"{codec} lossless" if bpp == min(exact) else None)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel("PSNR (dB, peak = image max)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        path = os.path.join(out, f"rd_{os.path.splitext(name)[0]}.png")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "corpus", "val"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "lossy"))
    ap.add_argument("--device", default="cpu", help="where roimc's network runs")
    ap.add_argument("--only", nargs="*", default=None, help="image names to run")
    ap.add_argument("--no-hybrid", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    names = sorted(n for n in os.listdir(args.data) if n.endswith(".png")
                   and not n.endswith(".roi.png"))
    if args.only:
        names = [n for n in names if n in args.only or os.path.splitext(n)[0] in args.only]
    results = {}
    for name in names:
        a = read_image(os.path.join(args.data, name))
        bits = max(1, int(a.max()).bit_length())
        peak = float(max(a.max(), 1))
        mpath = os.path.join(args.data, name[:-4] + ".roi.png")
        mask = (read_image(mpath) > 0) if os.path.exists(mpath) else None
        if mask is not None and mask.ndim == 3:
            mask = mask.any(-1)
        t0 = time.perf_counter()
        pts = (roimc_points(a, bits, peak, mask, args.device)
               + roimc_points(a, bits, peak, mask, args.device, neural_only=True)
               + anchors(a, bits, peak, mask))
        r = {"bits": bits, "shape": list(a.shape), "points": pts}
        finite = [p for p in pts if p["psnr"] < LOSSLESS_PSNR]
        curves = {c: ([p["bpp"] for p in finite if p["codec"] == c],
                      [p["psnr"] for p in finite if p["codec"] == c])
                  for c in CODECS}
        r["bd_rate_vs_j2k"] = {c: bd_rate(*curves["J2K"], *curves[c])
                               for c in CODECS if c != "J2K" and curves[c][0]}
        if not args.no_hybrid:
            r["jxl_lossless_bytes"] = lossless_size(a, bits)
            r["hybrid"] = []
            if mask is not None:
                r["hybrid"] += hybrid_points(a, bits, peak, mask, args.device, "mask")
                r["hybrid"] += hybrid_points(a, bits, peak, mask, args.device, "mask net",
                                             neural_only=True)
                r["hybrid"] += hybrid_target_point(a, bits, peak, mask, args.device,
                                                   "mask bg_psnr")
                if a.ndim == 2:
                    r["background_alone"] = background_alone(a, bits, peak, mask)
            from roimc.roi import auto_roi
            auto = auto_roi(a) > 0
            r["hybrid"] += hybrid_points(a, bits, peak, auto, args.device, "auto")
            r["roi_fraction"] = {"mask": None if mask is None else float(mask.mean()),
                                 "auto": float(auto.mean())}
        results[name] = r
        bd = r["bd_rate_vs_j2k"]
        print(f"{name}: BD-rate vs J2K " + ", ".join(f"{c} {_f(bd.get(c))} %" for c in bd)
              + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = report(results)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table)
    print(table)
    for p in plot(results, args.out):
        print("plot:", os.path.relpath(p))


def _f(v, digits=1):
    return "n/a" if v is None else f"{v:.{digits}f}"


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def report(results):
    lines = ["## Rate-distortion (bpp / PSNR dB at roimc qualities 1, 4, 8; BD-rate vs J2K)", "",
             "roimc: the encoder's default file (kept per quality: net = the network's, "
             "M<n> = near-lossless with bound n, L = lossless); roimc net: the network's "
             "file alone. Lossless points are left out of the BD fits.", "",
             "| image | q1 | q4 | q8 | kept q1-q8 | BD roimc | BD roimc net | BD JXL e7 | "
             "BD AVIF |", "|---|---|---|---|---|---|---|---|---|"]
    bds = {"roimc": [], "roimc net": [], "JXL e7": [], "AVIF": []}
    for name, r in results.items():
        q = {p["setting"]: p for p in r["points"] if p["codec"] == "roimc"}
        cells = [f"{q[k]['bpp']:.3f} / {q[k]['psnr']:.1f}" for k in (1, 4, 8)]
        cells.append(" ".join("L" if q[k].get("kept") == "lossless" else q[k].get("kept", "?")
                              for k in sorted(q)))
        bd = r["bd_rate_vs_j2k"]
        for c in bds:
            if bd.get(c) is not None:
                bds[c].append(bd[c])
        lines.append(f"| {name} | " + " | ".join(cells) + " | " +
                     " | ".join(f"{_f(bd.get(c))} %" for c in bds) + " |")
    lines.append("| **mean BD-rate** | | | | | " + " | ".join(
        f"**{_f(np.mean(v) if v else None)} %**" for v in bds.values()) + " |")
    enc = {c: [] for c in CODECS}
    dec = {c: [] for c in enc}
    for r in results.values():
        mp = np.prod(r["shape"][:2]) / 1e6
        for p in r["points"]:
            enc[p["codec"]].append(mp / p["enc_s"])
            dec[p["codec"]].append(mp / p["dec_s"])
    lines += ["", "Median MP/s (encode / decode): " + ", ".join(
        f"{c} {_f(_median(enc[c]), 2)} / {_f(_median(dec[c]), 2)}" for c in enc if enc[c])]
    hy = [(n, r) for n, r in results.items() if r.get("hybrid")]
    if hy:
        lines += ["", f"## Hybrid: ROI exact, lowest quality with background PSNR >= {BG_TARGET} dB",
                  "", "mask net: the corpus mask and the network's file alone (neural_only). "
                  f"mask bg_psnr: the corpus mask and bg_psnr={BG_TARGET} given to the encoder "
                  "(no quality).", "",
                  "| image | ROI | ROI area | quality | kept | bpp | bg PSNR | "
                  "size / JXL lossless |", "|---|---|---|---|---|---|---|---|"]
        ratios = {"mask": [], "mask net": [], "mask bg_psnr": [], "auto": []}
        for name, r in hy:
            for label in ratios:
                pts = [p for p in r["hybrid"] if p["roi"] == label]
                if not pts:
                    continue
                best = pts[-1]
                ratio = best["bytes"] / r["jxl_lossless_bytes"]
                ok = best["psnr_bg"] is None or best["psnr_bg"] >= BG_TARGET
                if ok:
                    ratios[label].append(ratio)
                area = r["roi_fraction"][label.split()[0]]
                lines.append(f"| {name} | {label} | {100 * area:.0f} % | "
                             f"{best['quality']} | {best.get('kept', '?')} | {best['bpp']:.3f} | "
                             f"{_f(best['psnr_bg'])} "
                             f"{'' if ok else '(< target)'} | {ratio:.3f} |")
        for label, v in ratios.items():
            if v:
                lines.append(f"| **mean** | {label} | | | | | | **{np.mean(v):.3f}** |")
    alone = [(n, r) for n, r in hy if r.get("background_alone")]
    if alone:
        codecs = ("roimc", "AVIF", "J2K", "JXL e7")
        lines += ["", f"## The background alone at {BG_TARGET} dB, / JXL lossless of the "
                  "whole image", "",
                  "roimc: the bg_psnr file less its exact ROI layer alone (near-lossless with "
                  "the background unbounded). Anchors: the smallest file of the image with "
                  "the ROI filled smoothly whose background PSNR reaches the target (the fill "
                  "costs them a little too). The hybrid target 0.6 leaves the background "
                  "0.6 less the ROI layer.", "",
                  "| image | ROI layer | budget left | " + " | ".join(codecs) + " |",
                  "|---|---|---|" + "---|" * len(codecs)]
        sums = {c: [] for c in ("layer", "budget") + codecs}
        for name, r in alone:
            b, jxl = r["background_alone"], r["jxl_lossless_bytes"]
            target = [p for p in r["hybrid"] if p["roi"] == "mask bg_psnr"][-1]["bytes"]
            v = {"layer": b["roi_layer_bytes"] / jxl,
                 "roimc": (target - b["roi_layer_bytes"]) / jxl}
            v["budget"] = 0.6 - v["layer"]
            for c in codecs[1:]:
                v[c] = None if b.get(c) is None else b[c] / jxl
            for k in sums:
                if v.get(k) is not None:
                    sums[k].append(v[k])
            lines.append(f"| {name} | {v['layer']:.3f} | {v['budget']:.3f} | "
                         + " | ".join(_f(v[c], 3) for c in codecs) + " |")
        lines.append("| **mean** | " + " | ".join(
            f"**{_f(np.mean(sums[k]) if sums[k] else None, 3)}**"
            for k in ("layer", "budget") + codecs) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
