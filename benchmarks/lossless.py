"""Lossless benchmark: roimc against the standard lossless image codecs.

Usage (from the repository root):

    python benchmarks/lossless.py                       # default corpus ../shared/corpus/val
    python benchmarks/lossless.py IMG_DIR other.png     # folders and/or single files
    python benchmarks/lossless.py --repeat 5 --threads 2 --out /tmp/bench
    python benchmarks/lossless.py --codecs roimc roimc-huffman jpegls

For every image (.png/.tif/.tiff/.npy; masks named *.roi.png are skipped) and every codec
it measures:

  * bpp       compressed bits per pixel, 8 * bytes / (H * W), all channels together;
  * enc/dec   megapixels per second (H * W / 1e6 / seconds), median of --repeat runs;
  * exactness every decode must equal the input bit for bit (values, shape and dtype).

Anchors come from `imagecodecs`: JPEG-LS (CharLS), JPEG 2000 reversible (OpenJPEG),
JPEG XL lossless at effort 7 and 9 (libjxl), PNG level 9. Anchors run single-threaded;
roimc runs with --threads worker threads (default 1, for a like-for-like comparison).
An anchor that fails on an image gets NaN and the reason is kept; roimc failing, or roimc
not decoding bit-exactly, makes the script exit with status 1.

roimc's decode peak memory (tracemalloc, which sees numpy's buffers but not malloc calls
made inside the C core) is reported as a multiple of the decoded image's nbytes.

roimc runs at its default effort (5) as "roimc", and at efforts 1 (Golomb-Rice, the fast
profile) and 9 as "roimc-e1" and "roimc-e9"; "roimc-e6" (effort 6: every transform candidate
coded in full rather than judged on bands of rows) can be added with --codecs.

The project targets checked at the end: roimc's mean bpp at or below JPEG XL effort 9's, no
image larger than with JPEG-LS (ratio <= 1.0 on gray and RGB images), and roimc's default
encode at least as fast as JPEG XL effort 7 (median MP/s; images faster are counted).

Results go to --out (default benchmarks/results/): lossless.json (per image, per codec,
summary and machine info) and lossless.csv (one row per image).
"""
import argparse
import csv
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections import namedtuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, REPO_ROOT)  # benchmark this working tree's roimc

import imagecodecs  # noqa: E402

import roimc  # noqa: E402

DEFAULT_FOLDER = os.path.join(REPO_ROOT, os.pardir, "shared", "corpus", "val")
DEFAULT_OUT = os.path.join(HERE, "results")
EXTENSIONS = (".png", ".tif", ".tiff", ".npy")
MASK_SUFFIX = ".roi.png"
REFERENCE = "jpegls"          # the anchor the project targets are stated against
GRAY_TARGET = 1.0             # roimc bpp <= JPEG-LS on every gray image
RGB_TARGET = 1.0              # roimc bpp <= JPEG-LS on every RGB image
MEAN_ANCHOR = "jpegxl-e9"     # roimc's mean bpp at or below this anchor's
SPEED_ANCHOR = "jpegxl-e7"    # roimc's median encode MP/s at or above this anchor's
DECODE_TARGET = 0.5           # single-threaded decode >= 0.5 x CharLS on every > 8-bit image

# ----------------------------------------------------------------------------- codecs

Codec = namedtuple("Codec", "name label encode decode")


def roimc_codec(name, effort=5, coder=None):
    """A roimc codec entry; `threads` is bound later from the command line."""
    def encode(a, threads):
        return roimc.encode(a, mode="lossless", threads=threads, effort=effort, coder=coder)

    def decode(data, threads):
        return roimc.decode(data, threads=threads)
    return Codec(name, name, encode, decode)


def anchor(name, label, encode, decode):
    """An imagecodecs entry: always single-threaded, so it ignores `threads`."""
    return Codec(name, label, lambda a, threads: encode(a), lambda d, threads: decode(d))


CODECS = {c.name: c for c in [
    roimc_codec("roimc"),
    roimc_codec("roimc-e1", effort=1),
    roimc_codec("roimc-e6", effort=6),
    roimc_codec("roimc-e9", effort=9),
    roimc_codec("roimc-huffman", effort=1, coder="huffman"),
    anchor("jpegls", "JPEG-LS", imagecodecs.jpegls_encode, imagecodecs.jpegls_decode),
    anchor("jpeg2k", "J2K-rev",
           lambda a: imagecodecs.jpeg2k_encode(a, level=0, reversible=True, numthreads=1),
           lambda d: imagecodecs.jpeg2k_decode(d, numthreads=1)),
    anchor("jpegxl-e7", "JXL-e7",
           lambda a: imagecodecs.jpegxl_encode(a, lossless=True, effort=7, numthreads=1),
           lambda d: imagecodecs.jpegxl_decode(d, numthreads=1)),
    anchor("jpegxl-e9", "JXL-e9",
           lambda a: imagecodecs.jpegxl_encode(a, lossless=True, effort=9, numthreads=1),
           lambda d: imagecodecs.jpegxl_decode(d, numthreads=1)),
    anchor("png", "PNG-9", lambda a: imagecodecs.png_encode(a, level=9),
           imagecodecs.png_decode),
]}
DEFAULT_CODECS = ["roimc", "roimc-e1", "roimc-e9", "jpegls", "jpeg2k", "jpegxl-e7", "jpegxl-e9", "png"]

# ----------------------------------------------------------------------------- images


def find_images(paths):
    """The image files named by `paths` (files, or folders searched one level deep)."""
    found = []
    for p in paths:
        names = [os.path.join(p, n) for n in sorted(os.listdir(p))] if os.path.isdir(p) else [p]
        found += [n for n in names if n.lower().endswith(EXTENSIONS)
                  and not n.lower().endswith(MASK_SUFFIX)]
    return found


def kind_of(a):
    """'gray', 'rgb' or 'other' (targets apply to gray and rgb only)."""
    if a.ndim == 2:
        return "gray"
    if a.ndim == 3 and a.shape[-1] == 3:
        return "rgb"
    return "other"


def pixel_count(a):
    """H * W: channels of one pixel count once."""
    return a.shape[0] * a.shape[1] if a.ndim == 3 and a.shape[-1] in (3, 4) else a.size


def describe(a):
    bits = int(a.max()).bit_length() if a.size else 0
    kind = kind_of(a)
    size = f"{a.shape[1]}x{a.shape[0]}" if kind != "other" else "x".join(map(str, a.shape))
    return f"{a.dtype.name.replace('uint', 'u')} {kind} {size} {bits}b"

# ----------------------------------------------------------------------------- measuring


def is_exact(decoded, original):
    decoded = np.asarray(decoded)
    return decoded.dtype == original.dtype and np.array_equal(decoded, original)


def timed(fn, repeat):
    """(median seconds, last result) over `repeat` calls of fn()."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def decode_peak_memory(codec, data, threads):
    """Peak traced bytes while decoding once (numpy buffers are traced)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        codec.decode(data, threads)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(codec, a, repeat, threads):
    """One codec on one image: a dict of bytes, bpp, enc/dec MP/s, exact, error."""
    mp = pixel_count(a) / 1e6
    nan = float("nan")
    row = {"bytes": None, "bpp": nan, "enc_mps": nan, "dec_mps": nan, "exact": None,
           "error": None}
    try:
        enc_s, data = timed(lambda: codec.encode(a, threads), repeat)
        data = bytes(data)
        row["bytes"] = len(data)
        decoded = []
        dec_s, _ = timed(lambda: decoded.append(codec.decode(data, threads)), repeat)
    except Exception as exc:  # an anchor that cannot handle this image
        row["error"] = f"{type(exc).__name__}: {exc}".strip()[:200]
        return row, None
    row["exact"] = all(is_exact(d, a) for d in decoded)
    if not row["exact"]:
        row["error"] = "decoded image differs from the input"
        return row, data
    row.update(bpp=8 * len(data) / pixel_count(a), enc_mps=mp / enc_s, dec_mps=mp / dec_s)
    return row, data


def bench_image(path, codecs, repeat, threads):
    a = np.ascontiguousarray(roimc.read(path))
    result = {"image": os.path.basename(path), "path": os.path.abspath(path),
              "kind": kind_of(a), "desc": describe(a), "shape": list(a.shape),
              "bits": int(a.max()).bit_length() if a.size else 0,
              "dtype": a.dtype.name, "pixels": pixel_count(a), "codecs": {}}
    for codec in codecs:
        row, data = measure(codec, a, repeat, threads)
        if codec.name == "roimc" and row["exact"]:
            peak = decode_peak_memory(codec, data, threads)
            row["dec_mem_x"] = peak / a.nbytes
        result["codecs"][codec.name] = row
    add_ratios(result)
    return result


def add_ratios(result):
    """roimc / JPEG-LS bpp ratio and the per-image target flag."""
    c = result["codecs"]
    ratio = c["roimc"]["bpp"] / c[REFERENCE]["bpp"] if REFERENCE in c else float("nan")
    result["roimc_jls_ratio"] = ratio
    if math.isnan(ratio) or result["kind"] == "other":
        result["target_ok"] = None
    elif result["kind"] == "gray":
        result["target_ok"] = bool(ratio <= GRAY_TARGET)
    else:
        result["target_ok"] = bool(ratio <= RGB_TARGET)

# ----------------------------------------------------------------------------- summary


def finite(values):
    return [v for v in values if v is not None and not math.isnan(v)]


def mean(values):
    v = finite(values)
    return sum(v) / len(v) if v else float("nan")


def median(values):
    v = finite(values)
    return statistics.median(v) if v else float("nan")


def summarize(results, names):
    """Means, ratios against each anchor, median speeds, and the two target verdicts."""
    col = {n: {k: [r["codecs"][n][k] for r in results] for k in ("bpp", "enc_mps", "dec_mps")}
           for n in names}
    s = {"mean_bpp": {n: mean(col[n]["bpp"]) for n in names},
         "median_enc_mps": {n: median(col[n]["enc_mps"]) for n in names},
         "median_dec_mps": {n: median(col[n]["dec_mps"]) for n in names},
         "roimc_vs": {}}
    for n in names:
        if n == "roimc":
            continue
        both = [(a, b) for a, b in zip(col["roimc"]["bpp"], col[n]["bpp"])
                if not (math.isnan(a) or math.isnan(b))]
        s["roimc_vs"][n] = {
            "mean_of_ratios": mean([a / b for a, b in both]),
            "ratio_of_means": (mean([a for a, _ in both]) / mean([b for _, b in both])
                               if both else float("nan")),
            "images": len(both)}
    if REFERENCE in names:
        s["speed_vs_jpegls"] = {
            "enc": s["median_enc_mps"]["roimc"] / s["median_enc_mps"][REFERENCE],
            "dec": s["median_dec_mps"]["roimc"] / s["median_dec_mps"][REFERENCE]}
        s["targets"] = {kind: target_verdict(results, kind) for kind in ("gray", "rgb")}
        deep = [(r["image"], r["codecs"]["roimc"]["dec_mps"] / r["codecs"][REFERENCE]["dec_mps"])
                for r in results if r["bits"] > 8]
        s["decode_target"] = {"images": len(deep), "ratios": dict(deep),
                              "pass": bool(deep) and all(v >= DECODE_TARGET for _, v in deep)}
    if SPEED_ANCHOR in names:
        pairs = [(r["codecs"]["roimc"]["enc_mps"], r["codecs"][SPEED_ANCHOR]["enc_mps"])
                 for r in results]
        pairs = [(a, b) for a, b in pairs if not (math.isnan(a) or math.isnan(b))]
        s["speed_target"] = {"anchor": SPEED_ANCHOR, "roimc": s["median_enc_mps"]["roimc"],
                             "anchor_mps": s["median_enc_mps"][SPEED_ANCHOR],
                             "faster_images": sum(a >= b for a, b in pairs),
                             "images": len(pairs),
                             "pass": bool(s["median_enc_mps"]["roimc"]
                                          >= s["median_enc_mps"][SPEED_ANCHOR])}
    if MEAN_ANCHOR in names:
        s["mean_target"] = {"anchor": MEAN_ANCHOR, "roimc": s["mean_bpp"]["roimc"],
                            "anchor_bpp": s["mean_bpp"][MEAN_ANCHOR],
                            "pass": bool(s["mean_bpp"]["roimc"] <= s["mean_bpp"][MEAN_ANCHOR])}
    return s


def target_verdict(results, kind):
    rows = [r for r in results if r["kind"] == kind]
    failing = [r["image"] for r in rows if r["target_ok"] is not True]
    return {"images": len(rows), "failing": failing,
            "pass": bool(rows) and not failing,
            "mean_ratio": mean([r["roimc_jls_ratio"] for r in rows])}

# ----------------------------------------------------------------------------- printing


def fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    return f"{v:.{digits}f}"


def fmt_speed(v):
    if v is None or math.isnan(v):
        return "nan"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def print_table(header, rows, first_width):
    widths = [max(len(str(x)) for x in column) for column in zip(header, *filter(None, rows))]
    widths[0] = max(widths[0], first_width)
    line = lambda cells: "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)  # noqa
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    print(line(header))
    print("-" * len(line(header)))
    for r in rows:
        print(line(r) if r else "")


def print_bpp_table(results, names, summary):
    labels = [CODECS[n].label for n in names]
    header = ["image", "type"] + labels + ["roimc/JLS", "target"]
    rows = []
    for r in results:
        flag = {True: "ok", False: "MISS", None: "-"}[r["target_ok"]]
        rows.append([r["image"], r["desc"]] + [fmt(r["codecs"][n]["bpp"]) for n in names]
                    + [fmt(r["roimc_jls_ratio"]), flag])
    rows.append([])
    rows.append(["mean bpp", ""] + [fmt(summary["mean_bpp"][n]) for n in names] + ["", ""])
    for key, title in (("mean_of_ratios", "roimc/X mean of ratios"),
                       ("ratio_of_means", "roimc/X ratio of means")):
        rows.append([title, ""] + ["1.000" if n == "roimc" else
                                   fmt(summary["roimc_vs"][n][key]) for n in names] + ["", ""])
    print("\nCompressed size, bits per pixel (lower is better)\n")
    print_table(header, rows, 24)


def print_speed_table(results, names, summary):
    header = ["image", "type"] + [f"{CODECS[n].label} enc/dec" for n in names] + ["dec mem x"]
    rows = []
    for r in results:
        c = r["codecs"]
        rows.append([r["image"], r["desc"]]
                    + [f"{fmt_speed(c[n]['enc_mps'])}/{fmt_speed(c[n]['dec_mps'])}"
                       for n in names]
                    + [fmt(c["roimc"].get("dec_mem_x"), 2)])
    rows.append([])
    rows.append(["median MP/s", ""] + [
        f"{fmt_speed(summary['median_enc_mps'][n])}/{fmt_speed(summary['median_dec_mps'][n])}"
        for n in names] + [""])
    print("\nSpeed, megapixels per second, encode/decode (median of runs)\n")
    print_table(header, rows, 24)


def print_errors(results):
    notes = [(r["image"], n, c["error"]) for r in results for n, c in r["codecs"].items()
             if c["error"]]
    if notes:
        print("\nCodec failures (NaN above):")
        for image, name, error in notes:
            print(f"  {image}  {name}: {error}")


def print_verdicts(summary, threads):
    if "speed_vs_jpegls" in summary:
        sp = summary["speed_vs_jpegls"]
        print(f"\nroimc (threads={threads}) / CharLS median MP/s: "
              f"encode {sp['enc']:.2f}x, decode {sp['dec']:.2f}x")
        for kind, rule in (("gray", f"roimc <= {GRAY_TARGET:.2f} x JPEG-LS"),
                           ("rgb", "roimc <= JPEG-LS")):
            t = summary["targets"][kind]
            if not t["images"]:
                print(f"TARGET {kind:4s} ({rule}): no {kind} images")
                continue
            verdict = "PASS" if t["pass"] else "FAIL"
            extra = f"; failing: {', '.join(t['failing'])}" if t["failing"] else ""
            print(f"TARGET {kind:4s} ({rule}, every image): {verdict}  "
                  f"[{t['images'] - len(t['failing'])}/{t['images']} ok, "
                  f"mean ratio {t['mean_ratio']:.3f}{extra}]")
    if summary.get("decode_target", {}).get("images"):
        m = summary["decode_target"]
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in m["ratios"].items())
        print(f"TARGET decode (roimc >= {DECODE_TARGET} x CharLS MP/s on every image of more "
              f"than 8 bits, one thread): {'PASS' if m['pass'] else 'FAIL'}  [{ratios}]")
    if "speed_target" in summary:
        m = summary["speed_target"]
        print(f"TARGET encode speed (roimc >= {m['anchor']} median MP/s): "
              f"{'PASS' if m['pass'] else 'FAIL'}  [{m['roimc']:.2f} vs {m['anchor_mps']:.2f}; "
              f"{m['faster_images']}/{m['images']} images at least as fast]")
    if "mean_target" in summary:
        m = summary["mean_target"]
        print(f"TARGET mean bpp (roimc <= {m['anchor']}): {'PASS' if m['pass'] else 'FAIL'}  "
              f"[{m['roimc']:.3f} vs {m['anchor_bpp']:.3f}]")

# ----------------------------------------------------------------------------- saving


def machine_info():
    return {"platform": platform.platform(), "processor": platform.processor(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "numpy": np.__version__,
            "imagecodecs": imagecodecs.__version__, "roimc": roimc.__version__,
            "libraries": imagecodecs.version()}


def no_nan(x):
    """JSON-safe copy: NaN becomes null."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [no_nan(v) for v in x]
    return x


def csv_rows(results, names):
    for r in results:
        row = {"image": r["image"], "kind": r["kind"], "dtype": r["dtype"],
               "shape": "x".join(map(str, r["shape"])), "pixels": r["pixels"]}
        for n in names:
            c = r["codecs"][n]
            row.update({f"{n}_bytes": c["bytes"], f"{n}_bpp": c["bpp"],
                        f"{n}_enc_mps": c["enc_mps"], f"{n}_dec_mps": c["dec_mps"],
                        f"{n}_error": c["error"] or ""})
        row["roimc_jls_ratio"] = r["roimc_jls_ratio"]
        row["roimc_dec_mem_x"] = r["codecs"]["roimc"].get("dec_mem_x")
        row["target_ok"] = r["target_ok"]
        yield row


def save(out, results, names, summary, args):
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, "lossless.json")
    csv_path = os.path.join(out, "lossless.csv")
    doc = {"machine": machine_info(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "settings": {"repeat": args.repeat, "roimc_threads": args.threads,
                        "codecs": names, "inputs": args.inputs},
           "summary": summary, "images": results}
    with open(json_path, "w") as f:
        json.dump(no_nan(doc), f, indent=1)
    rows = list(csv_rows(results, names))
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nSaved {json_path}\n      {csv_path}")

# ----------------------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("inputs", nargs="*", metavar="FOLDER",
                   help=f"folders or image files (default {os.path.normpath(DEFAULT_FOLDER)})")
    p.add_argument("--out", default=DEFAULT_OUT, help="results folder (default %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per measurement")
    p.add_argument("--threads", type=int, default=1, help="roimc worker threads (default 1)")
    p.add_argument("--codecs", nargs="+", choices=list(CODECS), default=DEFAULT_CODECS,
                   help="codecs to run (roimc is always included; default: %(default)s)")
    args = p.parse_args(argv)
    args.inputs = args.inputs or [os.path.normpath(DEFAULT_FOLDER)]
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    names = ["roimc"] + [n for n in dict.fromkeys(args.codecs) if n != "roimc"]
    codecs = [CODECS[n] for n in names]
    paths = find_images(args.inputs)
    if not paths:
        sys.exit(f"no images found in {', '.join(args.inputs)}")
    results = []
    for i, path in enumerate(paths, 1):
        print(f"[{i}/{len(paths)}] {os.path.basename(path)}", file=sys.stderr, flush=True)
        results.append(bench_image(path, codecs, args.repeat, args.threads))
    summary = summarize(results, names)
    print_bpp_table(results, names, summary)
    print_speed_table(results, names, summary)
    print_errors(results)
    print_verdicts(summary, args.threads)
    save(args.out, results, names, summary, args)

    bad = [f"{r['image']} ({n})" for r in results
           for n in names if n.startswith("roimc") and not r["codecs"][n]["exact"]]
    if bad:
        print(f"\nFAILURE: roimc did not round-trip bit-exactly on: {', '.join(bad)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
