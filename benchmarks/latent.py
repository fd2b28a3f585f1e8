"""Bytes of the network's quantized latents under each LATN method (spec 8.5, 16D).

    python benchmarks/latent.py [--data ../shared/corpus/val] [--out benchmarks/results/latent.json]

For every image of the folder (masks `*.roi.png` are skipped) and qualities 1-8: the latent
of each plane as the lossy encoder makes it (no ROI), then its LATN payload with
- method 3, each plane in the shorter of method 2's form and the latent coder stream with the
  block means after the other channels (spec 16D.5; what the encoder writes unless brotli is
  smaller; method 2 where no plane gains),
- method 2, the latent coder with the block means coded as an image (the encoders of 1.7, 1.8),
- method 0, the stacked channels with coder 3 or Golomb-Rice (the encoders of 1.2-1.6),
- method 1, brotli (quality 11) of the raw int16 values (the seed's choice),
and the time the C core takes to code and decode a plane with its block means (method 3's
form 1).
Prints a table of the byte totals per image and their ratios to method 0."""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from roimc import core  # noqa: E402
from roimc.io import read_image  # noqa: E402
from roimc.neural import codec, latent  # noqa: E402
from roimc.neural.planes import frame_range, to_planes  # noqa: E402
from roimc.samples import describe  # noqa: E402


def main(argv=None):
    import brotli
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "corpus", "val"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latent.json"))
    args = ap.parse_args(argv)
    name, path, digest = codec.model_file(None)
    net = codec.load(path, digest, "cpu")
    rows = []
    for fn in sorted(os.listdir(args.data)):
        if not fn.endswith(".png") or fn.endswith(".roi.png"):
            continue
        samples, fields = describe(read_image(os.path.join(args.data, fn)))
        frame = samples[0]
        lo, hi = frame_range(frame)
        planes = to_planes(frame, lo, hi)
        ones = np.ones(planes.shape[1:], np.float32)
        row = {"image": fn, "method_3": 0, "method_2": 0, "method_0": 0, "brotli": 0,
               "values": 0, "code_s": 0.0, "decode_s": 0.0}
        for q in range(1, latent.QUALITIES + 1):
            lat = np.stack([codec.analyse(net, p, ones, q, "cpu") for p in planes])
            qs = [q] * len(planes)
            for key, method in (("method_3", None), ("method_2", latent.METHOD_LATENT),
                                ("method_0", latent.METHOD_CORE)):
                row[key] += len(latent.coded_payload(0, lo, hi, qs, lat, method))
            raw = brotli.compress(np.clip(lat, -latent.LIMIT, latent.LIMIT)
                                  .astype(">i2").tobytes(), quality=11)
            row["brotli"] += len(raw) + 4 + latent._FIXED.size + len(qs) + 1
            row["values"] += lat.size
            for k in range(len(planes)):
                t = time.perf_counter()
                stream = core.encode_latent(lat[k], dc=True)
                row["code_s"] += time.perf_counter() - t
                t = time.perf_counter()
                core.decode_latent(stream, None, lat.shape[1], lat.shape[2:])
                row["decode_s"] += time.perf_counter() - t
        rows.append(row)
        print(f"{fn}: method 3 / method 2 {row['method_3'] / row['method_2']:.3f}, "
              f"method 2 / method 0 {row['method_2'] / row['method_0']:.3f}, "
              f"brotli / method 0 {row['brotli'] / row['method_0']:.3f}", flush=True)
    total = {k: sum(r[k] for r in rows) for k in ("method_3", "method_2", "method_0", "brotli",
                                                   "values", "code_s", "decode_s")}
    print("\n| image | method 3 (block means too) | method 2 (latent coder) | method 0 (stacked, "
          "coder 3) | brotli | 3 / 2 | 2 / 0 | brotli / 0 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows + [dict(total, image="**total**")]:
        print(f"| {r['image']} | {r['method_3']} | {r['method_2']} | {r['method_0']} | "
              f"{r['brotli']} | {r['method_3'] / r['method_2']:.3f} | "
              f"{r['method_2'] / r['method_0']:.3f} | {r['brotli'] / r['method_0']:.3f} |")
    mvals = total["values"] / 1e6
    print(f"\nlatent coder: {mvals / total['code_s']:.1f} M values/s coding, "
          f"{mvals / total['decode_s']:.1f} M values/s decoding (one thread)")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"model": name, "qualities": list(range(1, 9)), "images": rows,
                   "total": total}, f, indent=1)


if __name__ == "__main__":
    main()
