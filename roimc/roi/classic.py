"""Classical ROI detection (numpy and scipy only, no torch).

On a smoothed working image (block means, longest side 256):

1. Polarity. The background is what fills the image border. When the border is bright (a
   MONOCHROME1 radiograph, a bright-field slide) the image is inverted first.
2. Background or none. Otsu's threshold splits dark from bright; the background level is the
   median of the dark border pixels. If that level is not dark (above 25 % of the robust
   range) or the border holds almost no dark pixels, the field of view is filled with anatomy
   (a crop inside the body, a slide covered with tissue) and the whole image is the ROI.
3. Hysteresis. Foreground is every pixel above a low threshold in a connected component that
   also holds a pixel above Otsu's threshold: faint tissue joined to clear tissue is kept,
   isolated noise is not. The low threshold is a quarter of the way from the background level
   to Otsu's and at least 3 sigma above the background noise; over a flat (digital)
   background, such as the padding around an ultrasound sector, it is just above that level,
   so that dark tissue inside the field of view (an anechoic bladder) counts as anatomy.
4. Conservative morphology: close gaps, fill holes, dilate a safety margin (1.5 % of the
   longest side).

Burnt-in text, rulers and markers are bright components, so rule 3 keeps them: they are part
of the ROI. They are small (they cost few bytes), and some carry clinical meaning (laterality
markers, measurement annotations) that must stay legible, so coding them exactly is the safe
choice. A constant image, or one without a dark background, gives a full mask.
"""
import numpy as np
from scipy import ndimage as ndi

from . import prep

BORDER = 2               # width (working pixels) of the border ring that defines background
DARK_LEVEL = 0.25        # the background must lie below this fraction of the robust range
MIN_DARK_BORDER = 0.05   # the border must be at least this dark to have a background
FLAT_NOISE = 0.002       # background noise below this (robust sigma) means a flat, digital one
FLAT_STEP = 0.004        # ... and then signal starts this far above it


def otsu(values, bins=256):
    """Otsu's threshold of values in [0, 1]."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def border_ring(a, width=BORDER):
    w = min(width, max(1, min(a.shape) // 4))
    ring = np.zeros(a.shape, bool)
    ring[:w] = ring[-w:] = True
    ring[:, :w] = ring[:, -w:] = True
    return ring


def prepare(small):
    """Normalise, smooth and orient a working image so that anatomy is bright.
    Returns (smoothed image or None when it has no contrast, inverted?)."""
    g = prep.normalise(small)
    if g is None:
        return None, False
    s = ndi.gaussian_filter(g, 1.0, mode="nearest") if min(g.shape) >= 4 else g
    ring = border_ring(s)
    inverted = bool(np.median(s[ring]) > 0.5)
    if inverted:
        s = 1.0 - s
    return s, inverted


def thresholds(s):
    """(Otsu's threshold, background level, background noise, low threshold) of a prepared
    working image, or None when it has no dark background (the whole field is anatomy)."""
    t_high = otsu(s)
    ring = border_ring(s)
    dark = ring & (s < t_high)
    if dark.sum() < MIN_DARK_BORDER * ring.sum():
        return None
    bg = s[dark]
    level = float(np.median(bg))
    if level > DARK_LEVEL:
        return None
    noise = 1.4826 * float(np.median(np.abs(bg - level)))
    if noise < FLAT_NOISE:
        # digital background (padding outside the field of view, exactly one value): any
        # signal above it is inside the field, even an anechoic region of an ultrasound
        t_low = level + FLAT_STEP
    else:
        t_low = level + max(0.25 * (t_high - level), 3.0 * noise)
    return t_high, level, noise, min(t_high, t_low)


def foreground(s):
    """Anatomy (and markers) before the morphology, on a prepared working image: a boolean
    mask, or None when the image has no dark background (the whole field is anatomy)."""
    t = thresholds(s)
    if t is None:
        return None
    t_high, _, _, t_low = t
    low = s > t_low
    labels, n = ndi.label(low)
    if n == 0:
        return None
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[s > t_high])] = True
    keep[0] = False
    return keep[labels]


def classic_small(small, margin=None):
    """The ROI of one working-scale frame (boolean, same shape). margin=None: the default
    safety margin; 0 gives the training label (closed and filled, no margin: the U-Net's
    post-processing adds it)."""
    s, _ = prepare(small)
    if s is None:
        return np.ones(small.shape, bool)
    fg = foreground(s)
    if fg is None or not fg.any():
        return np.ones(small.shape, bool)
    return prep.conservative(fg) if margin is None else prep.conservative(fg, margin=margin)


LABELS = ("graph", "otsu")


def classic_label(small, labels="graph"):
    """Training label of one working-scale frame (boolean, same shape), without the margin.

    labels="otsu": the classic foreground, closed and filled. labels="graph" (the default):
    that foreground united with the anatomy of the Felzenszwalb-Huttenlocher segmentation
    (roimc.roi.graph.graph_anatomy), then closed and filled again, so the label only grows:
    it adds what the thresholds miss, such as the dark speckle of an ultrasound sector."""
    if labels not in LABELS:
        raise ValueError(f"unknown label method {labels!r} (use {' or '.join(LABELS)})")
    label = classic_small(small, margin=0)
    if labels == "otsu" or label.all():
        return label
    from .graph import graph_anatomy
    s, inverted = prepare(small)
    g = prep.normalise(small)
    anatomy = graph_anatomy(1.0 - g if inverted else g, thresholds(s))
    return prep.conservative(label | anatomy, margin=0)
