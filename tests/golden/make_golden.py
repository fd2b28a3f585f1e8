"""Regenerate the golden vectors: python tests/golden/make_golden.py

Each vector is NAME.npy (the array) and NAME.rmc (its encoding with the options recorded in
vectors.json). tests/test_golden.py checks that every committed .rmc still decodes to its .npy
bit for bit and that encoding the .npy with the recorded options gives the same bytes.
Only regenerate on purpose: a changed .rmc means a format or encoder change.
The vectors of 1.12 and before are written in the chunked framing (framing="chunked" in their
options), the compact_* ones in the compact framing of 1.13.
tests/golden/neural holds a lossy file (version 1.2) and a hybrid file (1.6) written by the
encoder before the latent coder (LATN method 0), with what they decoded to then; they are
frozen, not regenerated (tests/test_neural.py). The latent vectors live in tests/golden/latent (NAME.npy a (P, M, h, w) latent, NAME.latn
its LATN payload, vectors.json the payload's other fields) and are checked by
tests/test_latent.py. The near-lossless vectors live in tests/golden/near (NAME.npy the original, NAME.rmc,
NAME.decoded.npy what it decodes to, NAME.mask.npy for files with an ROI, vectors.json) and
are checked by tests/test_near_lossless.py. Entries marked "frozen" there are files of an
older version that the encoder no longer writes (coder 4's form 1, version 1.5; its form 2,
versions 1.6 to 1.13, the near_cm2l_* files; NAME_v12 and NAME_v16, the ROI files of 1.2 and
1.6 with a method-0 mask where the encoder now writes method 1, version 1.8): they are kept
as they are, decoded but not re-encoded. The near_cm2o_* files are their form-3 successors
(version 1.14)."""
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import roimc  # noqa: E402


def vectors():
    rng = np.random.default_rng(1121)
    y, x = np.mgrid[0:17, 0:13]
    gray8 = ((x * 11 + y * 7) + rng.integers(0, 12, size=x.shape)).astype(np.uint8)

    y, x = np.mgrid[0:19, 0:23]
    gray12 = ((x * 150 + y * 90 + rng.integers(0, 60, size=x.shape)) % 4096).astype(np.uint16)
    gray12[0, 0] = 4095

    bits1 = (rng.random((15, 21)) < 0.2).astype(np.uint8)
    bits1[3:9, 4:15] = 1

    y, x = np.mgrid[0:11, 0:14]
    rgb8 = np.stack([x * 18, y * 20, (x + y) * 9 + rng.integers(0, 5, size=x.shape)],
                    axis=-1).astype(np.uint8)

    y, x = np.mgrid[0:9, 0:12]
    stack2 = np.stack([(x * 40 + y * 30) % 1024, (x * 25 + y * 60 + 7) % 1024]).astype(np.uint16)

    y, x = np.mgrid[0:16, 0:20]
    huff12 = ((x * 37 + y * 53 + rng.integers(0, 30, size=x.shape)) % 4096).astype(np.uint16)

    y, x = np.mgrid[0:40, 0:37]
    tiles8 = ((x * 3 + y * 5) % 256).astype(np.uint8)
    tiles8[10:30, 10:20] = rng.integers(0, 256, size=(20, 10))

    signed16 = (rng.integers(-300, 300, size=(10, 11))).astype(np.int16)

    noise8 = rng.integers(0, 256, size=(12, 12)).astype(np.uint8)   # stored raw

    # version 1.1: coder 3 with fitted predictors, the palette transform
    y, x = np.mgrid[0:24, 0:21]
    cm12 = ((x * 90 + y * 60 + rng.integers(0, 40, size=x.shape)) % 4096).astype(np.uint16)
    y, x = np.mgrid[0:18, 0:19]
    cm_rgb = np.stack([x * 12 + rng.integers(0, 6, size=x.shape), y * 13,
                       (x + y) * 6 + rng.integers(0, 9, size=x.shape)], axis=-1).astype(np.uint8)
    sparse = (rng.integers(0, 9, size=(20, 22)) * 300 + 17).astype(np.uint16)
    sparse[5:12, 4:15] = 2417
    colours = np.array([[0, 0, 0], [30, 30, 30], [200, 40, 40], [90, 220, 90]], np.uint8)
    pal_rgb = colours[(np.mgrid[0:16, 0:17][0] // 4 + np.mgrid[0:16, 0:17][1] // 5) % 4]
    y, x = np.mgrid[0:13, 0:29]
    cm16 = ((x * 2100 + y * 1700 + rng.integers(0, 900, size=x.shape)) % 65536).astype(np.uint16)
    y, x = np.mgrid[0:30, 0:27]   # a disc on a flat background: runs, then texture
    flat12 = np.where((y - 15) ** 2 + (x - 13) ** 2 < 100,
                      1500 + x * 20 + rng.integers(0, 40, size=x.shape), 0).astype(np.uint16)

    table = {
        "gray8_ramp_noise": (gray8, dict(tile_size=1024, coder="golomb")),
        "gray12_uint16": (gray12, dict(tile_size=1024, coder="golomb")),
        "bits1": (bits1, dict(tile_size=1024, coder="golomb")),
        "rgb8": (rgb8, dict(tile_size=1024, coder="golomb")),
        "stack2_10bit": (stack2, dict(tile_size=1024, coder="golomb")),
        "huffman12": (huff12, dict(tile_size=1024, coder="huffman")),
        "multitile16": (tiles8, dict(tile_size=16, coder="golomb")),
        "multitile_rect_huffman": (tiles8, dict(tile_size=[16, 23], coder="huffman")),
        "signed16": (signed16, dict(tile_size=1024, coder="golomb")),
        "noise8_raw": (noise8, dict(tile_size=1024, coder="golomb")),
        "cm_gray12": (cm12, dict(tile_size=1024, effort=5, coder="cm")),
        "cm_rgb8_multitile": (cm_rgb, dict(tile_size=[16, 12], effort=7, coder="cm")),
        "cm_nofit_gray8": (gray8, dict(tile_size=1024, effort=2, coder="cm")),
        "palette_gray12": (sparse, dict(tile_size=1024, effort=5, coder="cm")),
        "palette_rgb8": (pal_rgb, dict(tile_size=1024, effort=5, coder="cm")),
        # version 1.3: coder 4
        "cm2_gray12": (cm12, dict(tile_size=1024, effort=5, coder="cm2")),
        "cm2_rgb8_multitile": (cm_rgb, dict(tile_size=[16, 12], effort=7)),
        "cm2_nofit_gray8": (gray8, dict(tile_size=1024, effort=2, coder="cm2")),
        "cm2_palette_rgb8": (pal_rgb, dict(tile_size=1024, effort=5, coder="cm2")),
        "cm2_gray16": (cm16, dict(tile_size=1024, effort=5, coder="cm2")),
        # version 1.4: coder 5 (with runs, the MED and fitted predictors, colour, tiles)
        "fast_gray16": (cm16, dict(tile_size=1024, effort=5, coder="fast")),
        "fast_runs_gray12": (flat12, dict(tile_size=1024, effort=5, coder="fast")),
        "fast_nofit_gray8": (gray8, dict(tile_size=1024, effort=2, coder="fast")),
        "fast_rgb8_multitile": (cm_rgb, dict(tile_size=[16, 12], effort=5, coder="fast")),
        "auto_gray12": (cm12, dict(tile_size=1024, effort=5)),
    }
    for _, options in table.values():   # the files of 1.12 and before: the chunked framing
        options["framing"] = "chunked"
    # the compact framing (1.13), the encoder's default: tiles, colour, coders 4 and 5
    table["compact_cm2_rgb8_multitile"] = (cm_rgb, dict(tile_size=[16, 12], effort=7))
    table["compact_fast_gray16"] = (cm16, dict(tile_size=1024, effort=5, coder="fast"))
    return table


def near_vectors():
    """Near-lossless vectors (tests/golden/near): coder 4's near-lossless form 3 (format 1.14;
    images with samples at 0 and at the largest value, which decode exactly), coder 3's (1.2)
    and coder 0's, with and without an ROI mask (stored beside them as NAME.mask.npy), and
    graded ones and one with a dead zone (1.10), and post-filtered ones (1.11)."""
    rng = np.random.default_rng(2024)
    y, x = np.mgrid[0:21, 0:18]
    gray8 = ((x * 9 + y * 6) + rng.integers(0, 14, size=x.shape)).astype(np.uint8)
    y, x = np.mgrid[0:26, 0:23]
    gray12 = ((x * 120 + y * 70 + rng.integers(0, 50, size=x.shape)) % 4096).astype(np.uint16)
    roi12 = (y - 12) ** 2 + (x - 10) ** 2 <= 64
    y, x = np.mgrid[0:19, 0:17]
    rgb8 = np.stack([x * 11 + rng.integers(0, 7, size=x.shape), y * 12,
                     (x + y) * 6 + rng.integers(0, 9, size=x.shape)], axis=-1).astype(np.uint8)
    rect = np.zeros((21, 18), bool)
    rect[4:15, 3:11] = True
    noise = rng.integers(0, 256, size=(9, 10)).astype(np.uint8)
    ends8 = gray8.copy()            # a black border and a saturated patch
    ends8[:, :4] = 0
    ends8[15:, 10:] = 255
    ends12 = gray12.copy()
    ends12[:5] = 0
    ends12[18:, 15:] = 4095
    ends_rgb = rgb8.copy()
    ends_rgb[:4] = 0
    ends_rgb[12:, 10:, 1] = 255
    near = dict(mode="near-lossless", tile_size=1024, framing="chunked")
    cm = dict(near, coder="cm")
    return {
        "near_cm_gray8": (gray8, None, dict(cm, max_error=2, effort=5)),
        "near_cm_roi12": (gray12, roi12, dict(cm, max_error=5, roi_max_error=0, effort=5)),
        "near_cm_rgb8_multitile": (rgb8, None, dict(cm, max_error=1, effort=2,
                                                    tile_size=[16, 12])),
        "near_cm_roi_loose8": (gray8, rect, dict(cm, max_error=0, roi_max_error=7, effort=5)),
        "near_cm_whole_range8": (noise, None, dict(cm, max_error=255, effort=5)),
        "near_golomb_roi8": (gray8, rect, dict(near, max_error=3, roi_max_error=1,
                                               coder="golomb")),
        "near_cm2o_gray8": (ends8, None, dict(near, max_error=2, effort=5)),
        "near_cm2o_roi12": (ends12, roi12, dict(near, max_error=5, roi_max_error=0, effort=5)),
        "near_cm2o_rgb8_multitile": (ends_rgb, None, dict(near, max_error=3, effort=2,
                                                          tile_size=[16, 12])),
        "near_cm2o_roi_loose8": (ends8, rect, dict(near, max_error=0, roi_max_error=7,
                                                   effort=9)),
        # graded background bounds (format 1.10): tiles whose sides are not multiples of 4
        "near_cm2o_graded_roi12": (ends12, roi12, dict(near, max_error=5, roi_max_error=0,
                                                       grade=9, effort=5, tile_size=[13, 14])),
        "near_cm_graded_rgb8_multitile": (rgb8, None, dict(cm, max_error=1, grade=6, effort=2,
                                                           tile_size=[7, 10])),
        "near_cm2o_deadzone8": (ends8, rect, dict(near, max_error=2, roi_max_error=0,
                                                  deadzone=1, grade=3, effort=5)),
        # the post-filter outside the ROI (format 1.11), across tile boundaries
        "near_cm2o_filtered_roi12": (gray12, roi12, dict(near, max_error=40, roi_max_error=0,
                                                         post_filter=True, effort=5,
                                                         tile_size=[13, 14])),
        "near_cm2o_filtered_rgb8": (rgb8, None, dict(near, max_error=6, deadzone=1, grade=5,
                                                     post_filter=True, effort=5)),
        # the compact framing (1.13): an ROI, a grade, a dead zone and the filter
        "near_cm2o_compact_roi12": (gray12, roi12, dict(near, framing="compact", max_error=6,
                                                        roi_max_error=0, grade=5, deadzone=1,
                                                        post_filter=True, effort=5,
                                                        tile_size=[13, 14])),
    }


GRADE_ORDER = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])  # 8.7


def write_near(folder):
    folder.mkdir(exist_ok=True)
    old = folder / "vectors.json"
    old = json.loads(old.read_text()) if old.exists() else {}
    table = {name: v for name, v in old.items() if v.get("frozen")}
    for name, (array, mask, options) in near_vectors().items():
        kwargs = dict(options)
        if mask is not None:
            kwargs["roi"] = mask
            np.save(folder / f"{name}.mask.npy", mask, allow_pickle=False)
        data = roimc.encode(array, threads=1, **kwargs)
        decoded = roimc.decode(data)
        n, m = options["max_error"], options.get("roi_max_error", options["max_error"])
        th, tw = roimc.info(data)["tile"]
        clip = (roimc.info(data)["post_filter"] or {}).get("clip", 0)
        assert bool(clip) == options.get("post_filter", False)
        y, x = np.ogrid[:array.shape[0], :array.shape[1]]
        bound = n + options.get("deadzone", 0) + clip + (GRADE_ORDER[y % th % 4, x % tw % 4]
                                                         < options.get("grade", 0))
        bound = np.where(mask, m, bound) if mask is not None else bound
        if array.ndim == 3:
            bound = bound[..., None]
        assert np.all(np.abs(decoded.astype(int) - array) <= bound)
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
        np.save(folder / f"{name}.decoded.npy", decoded, allow_pickle=False)
        (folder / f"{name}.rmc").write_bytes(data)
        table[name] = {"options": options, "mask": mask is not None,
                       "shape": list(array.shape), "dtype": str(array.dtype),
                       "bytes": len(data), "version": roimc.info(data)["version"]}
    (folder / "vectors.json").write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    print(f"{len(table)} near-lossless vectors written to {folder}")


def dct_latent(image, step, m):
    """The (m, H/8, W/8) latent of an 8x8 orthonormal DCT of `image` (H, W multiples of 8),
    channels in the network's order (by u + v, then u), each coefficient divided by
    step * (1 + (u + v) / 4) and rounded: a latent whose coefficients agree with its block
    means, as the network's do."""
    k = np.arange(8)
    c = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16) * np.sqrt(2 / 8)
    c[0] /= np.sqrt(2)
    order = sorted(((u, v) for u in range(8) for v in range(8)), key=lambda t: (t[0] + t[1], t))
    h, w = image.shape
    blocks = image.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    coef = np.einsum("ui,vj,yxij->uvyx", c, c, blocks)
    return np.stack([np.rint(coef[u, v] / (step * (1 + 0.25 * (u + v))))
                     for u, v in order[:m]]).astype(np.int32)


def smooth_image(h, w):
    """A synthetic image of waves and a disc."""
    y, x = np.mgrid[0:h, 0:w]
    return (120 + 60 * np.sin(x / 23.0) + 40 * np.cos(y / 17.0)
            + 50 * ((x - w // 2) ** 2 + (y - h // 2) ** 2 < (min(h, w) // 3) ** 2))


def latent_vectors():
    """LATN payloads of synthetic latents whose spread falls with the channel like the
    network's. Method 2 (the latent coder, format 1.7): 64 channels in gray and in colour, and
    a 5-channel latent with the escape and the extremes +-32767. Method 3 (1.9): DCT latents of
    a synthetic image, whose block means the latent coder codes better after the coefficients
    (form 1), in gray and beside a plane of constant block means (form 0)."""
    rng = np.random.default_rng(1717)

    def plane(m, h, w, top):
        spread = top / (1 + np.arange(m))[:, None, None]
        v = np.rint(rng.laplace(0, 1, size=(m, h, w)) * spread)
        v[rng.random((m, h, w)) < 0.4] = 0
        y, x = np.mgrid[0:h, 0:w]
        v[0] = 40 + 3 * x + 2 * y + rng.integers(0, 3, size=(h, w))   # block means: smooth
        return np.clip(v, -32767, 32767).astype(np.int32)

    extremes = np.stack([plane(5, 10, 12, 300), plane(5, 10, 12, 40)])
    extremes[0, 1, 0, 0], extremes[0, 2, 5, 8], extremes[1, 4, 1, 3] = 32767, -32767, 900
    two = dict(method=2)
    vectors = {
        "latent_gray64": (plane(64, 6, 7, 300)[None],
                          dict(two, frame=0, lo=3, hi=250, qualities=[3])),
        "latent_rgb64": (np.stack([plane(64, 5, 4, 500), plane(64, 5, 4, 60),
                                   plane(64, 5, 4, 80)]),
                         dict(two, frame=1, lo=0, hi=4095, qualities=[5, 4, 4])),
        "latent_extremes5": (extremes, dict(two, frame=0, lo=10, hi=60000, qualities=[8, 1])),
    }
    noisy = plane(36, 9, 10, 60)
    noisy[0] = 7   # constant block means: three bytes as a group (form 0)
    vectors["latent_dc_gray36"] = (dct_latent(smooth_image(128, 144), 4, 36)[None],
                                   dict(method=3, frame=0, lo=0, hi=255, qualities=[1]))
    vectors["latent_dc_rgb36"] = (np.stack([dct_latent(smooth_image(72, 80), 2, 36), noisy]),
                                  dict(method=3, frame=2, lo=0, hi=1023, qualities=[2, 2]))
    return vectors


def write_latent(folder):
    from roimc.neural import latent
    folder.mkdir(exist_ok=True)
    table = {}
    for name, (lat, fields) in latent_vectors().items():
        args = fields["frame"], fields["lo"], fields["hi"], fields["qualities"]
        if fields["method"] == latent.METHOD_LATENT:   # the method-2 form of the 1.7 encoder
            payload = latent.coded_payload(*args, lat, latent.METHOD_LATENT)
        else:
            payload = latent.pack(*args, lat)
        assert latent.method(payload) == fields["method"]
        np.save(folder / f"{name}.npy", lat, allow_pickle=False)
        (folder / f"{name}.latn").write_bytes(payload)
        table[name] = dict(fields, shape=list(lat.shape), bytes=len(payload))
    (folder / "vectors.json").write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    print(f"{len(table)} latent vectors written to {folder}")


def main():
    write_latent(HERE / "latent")
    write_near(HERE / "near")
    table = {}
    for name, (array, options) in vectors().items():
        data = roimc.encode(array, threads=1, **options)
        assert np.array_equal(roimc.decode(data), array)
        np.save(HERE / f"{name}.npy", array, allow_pickle=False)
        (HERE / f"{name}.rmc").write_bytes(data)
        table[name] = {"options": options, "shape": list(array.shape),
                       "dtype": str(array.dtype), "bytes": len(data)}
    (HERE / "vectors.json").write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    print(f"{len(table)} vectors written to {HERE}")


if __name__ == "__main__":
    main()
