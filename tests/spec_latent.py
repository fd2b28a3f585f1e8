"""A decoder of latent coder streams (LATN methods 2 and 3) written from spec/rmc-v1.md alone
(Sections 16A.2, 16A.3 and 16D), in plain Python integers: slow, for small latents only.
tests/test_neural.py checks that it decodes what the C core writes to the same values, so
the spec and the reference agree. Errors raise SpecError with the spec's error id."""
from spec_cm_near import SQUASH, STRETCH, Ctx, RangeDecoder, SpecError

ZERO_INPUTS, MAG_INPUTS, UNARY, EXPONENTS = 4, 3, 17, 15


def group(c):                                           # 16D.2
    return 0 if c == 1 else 1 if c == 2 else 2 if c < 6 else 3 if c < 10 else \
        4 if c < 15 else 5 if c < 28 else 6


def ratio_class(v):
    return sum(v >= t for t in (1, 4, 8, 16, 32, 64, 128))


def gradient_class(v):
    return sum(v >= t for t in (1, 2, 4, 8, 16, 32, 64))


class Contexts(dict):
    def __missing__(self, key):
        c = self[key] = Ctx(7)
        return c


class Mixers(dict):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def __missing__(self, key):
        w = self[key] = [26214] * self.k + [0]
        return w


def mixed_const(rc, ctxs, w):                           # 16D.2 mixedC_k
    st = [STRETCH[c.p >> 4] for c in ctxs] + [256]
    dot = min(max(sum(wi * si for wi, si in zip(w, st)) >> 16, -2047), 2047)
    p12 = SQUASH[dot]
    bit = rc.decode(p12 << 4)
    err = (bit << 12) - p12
    for i in range(len(st)):
        w[i] = min(max(w[i] + ((st[i] * err) >> 10), -(1 << 20)), 1 << 20)
    for c in ctxs:
        c.update(bit)
    return bit


def adaptive(rc, c):
    bit = rc.decode(c.p)
    c.update(bit)
    return bit


def sign(v):
    return (v > 0) - (v < 0)


def decode(stream, first, channels, shape=None):
    """Channels 0 .. channels-1 (lists of rows) of one latent plane, given channel 0
    (`first`, a list of lh rows of lw integers), or with first None a stream that holds the
    block means too (16D.5) of `shape` (lh, lw)."""
    lh, lw = (len(first), len(first[0])) if first is not None else shape
    if lh * lw > 1 << 28:
        raise SpecError("E59")
    if len(stream) < 5 or stream[0] != 0:
        raise SpecError("E59")
    try:
        rc = RangeDecoder(bytes(stream))
        given = [list(r) for r in first] if first is not None else [[0] * lw for _ in range(lh)]
        lat = decode_channels(rc, given, channels, lh, lw, first is None)
        if first is None:
            decode_block_means(rc, lat, channels, lh, lw)
    except SpecError:
        raise SpecError("E59") from None
    if rc.zero_fill > 0 or rc.pos != len(stream) or rc.code != 0:
        raise SpecError("E59")
    return lat


def decode_channels(rc, first, channels, lh, lw, means_after=False):   # 16D.3
    z, m, eg, sg = Contexts(), Contexts(), Contexts(), Contexts()
    wz, wm = Mixers(ZERO_INPUTS), Mixers(MAG_INPUTS)
    hw = lh * lw
    lat = [first] + [[[0] * lw for _ in range(lh)] for _ in range(channels - 1)]
    acc = [[0] * lw for _ in range(lh)]
    total, prev_total = 0, 0

    def clamp(v, hi):
        return min(max(v, 0), hi)

    for c in range(1, channels):
        g = group(c)
        base = 256 if c == 1 else (prev_total << 8) // hw
        s = n = 0
        cur = lat[c]
        for y in range(lh):
            for x in range(lw):
                def V(dy, dx):
                    yy, xx = y + dy, x + dx
                    if yy < 0 or xx < 0 or xx >= lw:
                        return 0
                    return cur[yy][xx] if (yy, xx) < (y, x) else 0
                aw, an, anw, ane = abs(V(0, -1)), abs(V(-1, 0)), abs(V(-1, -1)), abs(V(-1, 1))
                mb = ((((2 * s + 1) << 7) // (n + 1)) if n > 0 else base) + 13
                sp = ratio_class(((2 * aw + 2 * an + anw + ane) << 12) // (6 * mb))
                cr = 4 if c == 1 else ratio_class(acc[y][x] * hw * 16 // (total + hw // 100 + 1))
                pv = 4 if c == 1 else ratio_class(abs(lat[c - 1][y][x]) * hw * 16 //
                                                  (prev_total + hw // 20 + 1))

                def D(yy, xx):
                    return first[clamp(yy, lh - 1)][clamp(xx, lw - 1)]
                dg = 0 if means_after else gradient_class(abs(D(y, x + 1) - D(y, x - 1)) +
                                                          abs(D(y + 1, x) - D(y - 1, x)))
                pat = (aw != 0) + 2 * (an != 0) + 4 * (anw != 0 or ane != 0)
                v = 0
                if mixed_const(rc, [z[0, g, sp, cr], z[1, g, cr, pv], z[2, g, pv, pat],
                                    z[3, g, dg]], wz[g]):
                    a = 1
                    for j in range(UNARY):
                        if not mixed_const(rc, [m[0, g, j, sp, cr], m[1, g, j, pv],
                                                m[2, g, j, dg]], wm[g, j]):
                            break
                        a += 1
                    if a == UNARY + 1:
                        k = 0
                        while adaptive(rc, eg[g, k]):
                            k += 1
                            if k == EXPONENTS:
                                raise SpecError("E59")
                        t = 1
                        for _ in range(k):
                            t = (t << 1) | rc.direct()
                        a = UNARY + t
                        if a > 32767:
                            raise SpecError("E59")
                    sw, sn = sign(V(0, -1)), sign(V(-1, 0))
                    v = -a if adaptive(rc, sg[g, (sw + 1) * 3 + sn + 1]) else a
                cur[y][x] = v
                n += 1
                s += abs(v)
        for y in range(lh):
            for x in range(lw):
                acc[y][x] += abs(cur[y][x])
        total += s
        prev_total = s
    return lat


EDGE = [0, 28, 31, 33, 32, 28, 22, 12]                  # 16D.5


def dc_class(v):
    return sum(v >= t for t in (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384))


def decode_block_means(rc, lat, channels, lh, lw):      # 16D.5
    z, m, eg, sg = Contexts(), Contexts(), Contexts(), Contexts()
    wz, wm = Mixers(3), Mixers(3)
    d = lat[0]
    err = {}                        # (j, y, x): |16 d - P_j|, at most 2^20
    res, rsd = {}, {}               # (y, x): |r| and r
    for y in range(lh):
        for x in range(lw):
            gx = gy = 0
            for q in range(1, 8):
                ch, cv, s = q * (q + 1) // 2, q * (q + 1) // 2 + q, -1 if q & 1 else 1
                if x > 0 and ch < channels:
                    gx += EDGE[q] * (s * lat[ch][y][x - 1] - lat[ch][y][x])
                if y > 0 and cv < channels:
                    gy += EDGE[q] * (s * lat[cv][y - 1][x] - lat[cv][y][x])
            W = d[y][x - 1] if x > 0 else (d[y - 1][x] if y > 0 else 0)
            N = d[y - 1][x] if y > 0 else W
            NW = d[y - 1][x - 1] if x > 0 and y > 0 else N
            NE = d[y - 1][x + 1] if y > 0 and x + 1 < lw else N
            P = [16 * W + gx, 16 * N + gy, 16 * (W + N - NW), 8 * (W + NE),
                 8 * (W + N) + (gx + gy) // 2]
            es = [0] * 5
            act = cnt = 0
            for dy, dx in ((0, -1), (-1, 0), (-1, -1), (-1, 1)):
                yy, xx = y + dy, x + dx
                if yy < 0 or xx < 0 or xx >= lw:
                    continue
                for j in range(5):
                    es[j] += err[j, yy, xx]
                act += res[yy, xx]
                cnt += 1
            wts = [(1 << 36) // (min(e, 1 << 17) + 5) ** 2 for e in es]
            p16 = (sum(wt * p for wt, p in zip(wts, P)) + sum(wts) // 2) // sum(wts)
            pred = min(max((p16 + 8) // 16, -32767), 32767)
            k1 = dc_class(16 * act // cnt if cnt else 32)
            k2 = dc_class(min(es) // 4)
            k3 = dc_class((abs(gx) + abs(gy)) // 2)
            v = 0
            if mixed_const(rc, [z[0, k1], z[1, k1, k2], z[2, k3, k2]], wz[0]):
                a = 1
                for j in range(UNARY):
                    if not mixed_const(rc, [m[0, j, k1], m[1, j, k1, k2], m[2, j, k3, k2]],
                                       wm[j]):
                        break
                    a += 1
                if a == UNARY + 1:
                    k = 0
                    while adaptive(rc, eg[k]):
                        k += 1
                        if k == 16:
                            raise SpecError("E59")
                    t = 1
                    for _ in range(k):
                        t = (t << 1) | rc.direct()
                    a = UNARY + t
                s1 = sign(rsd[y, x - 1]) if x > 0 else 0
                s2 = sign(rsd[y - 1, x]) if y > 0 else 0
                v = -a if adaptive(rc, sg[(s1 + 1) * 3 + s2 + 1]) else a
            if not -32767 <= pred + v <= 32767:
                raise SpecError("E59")
            d[y][x] = pred + v
            res[y, x], rsd[y, x] = abs(v), v
            for j in range(5):
                err[j, y, x] = min(abs(16 * d[y][x] - P[j]), 1 << 20)
