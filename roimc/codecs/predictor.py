"""The stored linear predictor of coder 3: fitted at encode time, used in fixed point.

Weights are Q12 integers (int16) over the causal inputs of spec/rmc-v1.md, "Coder 3":
ten spatial neighbours and, for planes after the first, five neighbours in the previous
plane. The fit is a least-squares regression on a sample of the tile; its quality only
changes the file size, never its exactness, since the C core runs the integer weights.
"""
import numpy as np

from .. import core

SPATIAL = [(-1, 0), (0, -1), (-1, -1), (-1, 1), (0, -2), (-2, 0), (-2, 1), (-1, -2), (-1, 2),
           (-2, -1)]           # (dy, dx): N, W, NW, NE, WW, NN, NNE, NWW, NEE, NNW
REFERENCE = [(0, 0), (-1, 0), (0, -1), (-1, -1), (-1, 1)]   # R, RN, RW, RNW, RNE
Q = 12
PAD = 2
DEFAULT_SAMPLES = 60000
PASSES = 3            # least squares, then two passes reweighted by 1 / max(|residual|, 1)
LAMBDA = 1e-3         # ridge towards N + W - NW, per sample of the tile plane
CM_INPUTS = (len(SPATIAL), len(SPATIAL) + len(REFERENCE))


def padded(plane):
    """The plane with the coder's padding: two rows above equal to the first sample, two
    columns left equal to the first sample of the row above (the first sample on row 0),
    two columns right equal to the row's last sample."""
    h, w = plane.shape
    out = np.empty((h + PAD, w + 2 * PAD), dtype=np.int64)
    out[:PAD] = plane[0, 0]
    out[PAD:, PAD:PAD + w] = plane
    out[PAD:, w + PAD:] = plane[:, -1:]
    left = np.empty(h, dtype=np.int64)
    left[0] = plane[0, 0]
    left[1:] = plane[:-1, 0]
    out[PAD:, :PAD] = left[:, None]
    return out


def _features(pad, ref_pad, h, w, rows, cols):
    ys, xs = rows + PAD, cols + PAD
    cols_ = [pad[ys + dy, xs + dx] for dy, dx in SPATIAL]
    if ref_pad is not None:
        cols_ += [ref_pad[ys + dy, xs + dx] for dy, dx in REFERENCE]
    return np.stack(cols_, axis=1).astype(np.float64)


def fit(planes, index, max_samples=DEFAULT_SAMPLES, seed=0):
    """Q12 int16 weights for plane `index` of a (P, H, W) tile, or None when the tile is too
    small to fit them. The C core (csrc/lsfit.c) runs the procedure of fit_reference."""
    h, w = planes.shape[1:]
    n = h * w
    if n < 256:
        return None
    step = max(1, -(-n // max_samples))
    coef = core.lsfit(planes, index, seed % step, step, PASSES, LAMBDA * n,
                      _prior(CM_INPUTS[bool(index)]))
    return _quantised(coef)


def fit_reference(planes, index, max_samples=DEFAULT_SAMPLES, seed=0):
    """fit() in numpy: the specification of the procedure, kept for the tests."""
    plane = planes[index]
    h, w = plane.shape
    if h * w < 256:
        return None
    pad = padded(plane)
    ref_pad = padded(planes[index - 1]) if index else None
    n = h * w
    step = max(1, -(-n // max_samples))
    idx = np.arange(seed % step, n, step)
    rows, cols = np.divmod(idx, w)
    X = _features(pad, ref_pad, h, w, rows, cols)
    y = plane[rows, cols].astype(np.float64)
    # least absolute-ish fit: two reweighted least-squares passes damp outliers at edges
    weight = np.ones_like(y)
    lam = LAMBDA * n
    coef = None
    for _ in range(PASSES):
        Xw = X * weight[:, None]
        A = Xw.T @ X + lam * np.eye(X.shape[1])
        b = Xw.T @ y + lam * _prior(X.shape[1])
        coef = np.linalg.solve(A, b)
        r = np.abs(y - X @ coef)
        weight = 1.0 / np.maximum(r, 1.0)
    return _quantised(coef)


def _quantised(coef):
    return np.clip(np.rint(coef * (1 << Q)), -32768, 32767).astype(np.int16)


def _prior(k):
    p = np.zeros(k)
    p[0], p[1], p[2] = 1.0, 1.0, -1.0   # N + W - NW
    return p
