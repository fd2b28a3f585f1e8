"""Felzenszwalb-Huttenlocher graph-based segmentation (numpy only), and the anatomy label
made from it.

Felzenszwalb and Huttenlocher, "Efficient graph-based image segmentation", IJCV 59 (2004):
the pixels are the nodes of an 8-connected grid graph whose edges weigh the absolute
intensity difference of their two pixels. Edges are taken in order of increasing weight
(a stable sort, so ties keep a fixed order and the result is deterministic); an edge joins
its two components C1 and C2 when its weight is at most
min(Int(C1) + k/|C1|, Int(C2) + k/|C2|), where Int(C) is the largest edge weight of C's
minimum spanning tree (that is, the weight of the edge that last grew C, as edges come
sorted). A second pass over the same order merges any component smaller than min_size into
its neighbour. Union-find with union by size and path halving; the loop is plain Python,
about 0.2 s for a 256 x 256 working image.

graph_anatomy turns the segments into a training label (see roimc.roi.train).
"""
import numpy as np
from scipy import ndimage as ndi

K = 0.5                  # scale k of the merge threshold, on intensities in [0, 1]
MIN_SIZE = 20            # components smaller than this are merged into a neighbour
SIGMA = 0.8              # Gaussian pre-smoothing (as in the paper)


def grid_edges(shape):
    """(a, b) flat index pairs of the 8-connected grid: right, down, down-right, down-left."""
    h, w = shape
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :]),
             (idx[:-1, :-1], idx[1:, 1:]), (idx[:-1, 1:], idx[1:, :-1])]
    a = np.concatenate([p.ravel() for p, _ in pairs])
    b = np.concatenate([q.ravel() for _, q in pairs])
    return a, b


def felzenszwalb(image, k=K, min_size=MIN_SIZE, sigma=SIGMA):
    """Segment a 2-D gray image (float, any range; intensities are compared as given).

    Returns int32 labels of the image's shape, 0 .. n-1 numbered in raster order of each
    segment's first pixel. Deterministic."""
    g = np.asarray(image, np.float64)
    if g.ndim != 2 or 0 in g.shape:
        raise ValueError(f"felzenszwalb needs a non-empty 2-D image, not shape {g.shape}")
    if sigma > 0 and min(g.shape) >= 2:
        g = ndi.gaussian_filter(g, sigma, mode="nearest")
    n = g.size
    a, b = grid_edges(g.shape)
    flat = g.ravel()
    wts = np.abs(flat[a] - flat[b])
    order = np.argsort(wts, kind="stable")
    a, b, wts = a[order].tolist(), b[order].tolist(), wts[order].tolist()
    parent = list(range(n))
    size = [1] * n
    thresh = [float(k)] * n        # Int(C) + k/|C|, kept for each root

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in range(len(a)):
        ra, rb = find(a[i]), find(b[i])
        if ra == rb:
            continue
        w = wts[i]
        if w <= thresh[ra] and w <= thresh[rb]:
            if size[ra] < size[rb]:
                ra, rb = rb, ra
            parent[rb] = ra
            size[ra] += size[rb]
            thresh[ra] = w + k / size[ra]
    for i in range(len(a)):
        ra, rb = find(a[i]), find(b[i])
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            if size[ra] < size[rb]:
                ra, rb = rb, ra
            parent[rb] = ra
            size[ra] += size[rb]
    roots = np.fromiter((find(x) for x in range(n)), np.int64, n)
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int32)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first), dtype=np.int32)
    return rank[inverse.ravel()].reshape(g.shape)


FLAT_SD = 0.02           # a background segment's standard deviation is at most this ...
FLAT_NOISE_SD = 3.0      # ... or this many times the background noise, if that is more


def graph_anatomy(g, thresholds):
    """Anatomy of an oriented working image g (normalised to [0, 1], anatomy bright) from its
    Felzenszwalb-Huttenlocher segments: boolean mask of g's shape.

    thresholds: roimc.roi.classic.thresholds of the prepared image, (Otsu's threshold,
    background level, background noise, low threshold). A segment is background-like when it
    is dark (mean at most the low threshold) and flat (standard deviation at most
    max(FLAT_SD, FLAT_NOISE_SD x noise)); the background is every connected region of
    background-like segments that touches the image border (BORDER pixels wide), and the
    anatomy is everything else. Textured dark regions (ultrasound speckle, faint tissue) are
    thus anatomy, and so is a flat dark region enclosed by tissue."""
    from .classic import border_ring
    if thresholds is None:
        return np.ones(g.shape, bool)
    _, _, noise, t_low = thresholds
    labels = felzenszwalb(g)
    n = int(labels.max()) + 1
    flat_labels = labels.ravel()
    count = np.bincount(flat_labels, minlength=n)
    mean = np.bincount(flat_labels, g.ravel().astype(np.float64), n) / count
    sq = np.bincount(flat_labels, (g.astype(np.float64) ** 2).ravel(), n) / count
    sd = np.sqrt(np.maximum(sq - mean ** 2, 0.0))
    bg_like = ((mean <= t_low) & (sd <= max(FLAT_SD, FLAT_NOISE_SD * noise)))[labels]
    regions, _ = ndi.label(bg_like)
    touching = np.unique(regions[border_ring(g) & bg_like])
    return ~np.isin(regions, touching[touching > 0])
