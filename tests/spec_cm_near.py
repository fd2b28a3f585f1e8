"""A decoder of the near-lossless tile streams of coders 3 and 4 written from spec/rmc-v1.md
alone (Sections 16A.1-16A.8, 16A.10 and 16A.12-16A.14), in plain Python integers: slow, for
small tiles only.
tests/test_near_lossless.py checks that it decodes what the C core writes to the same samples,
so the spec and the reference agree. Errors raise SpecError with the spec's error id."""


class SpecError(Exception):
    pass


SP = [1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
      2549, 2994, 3348, 3607, 3785, 3901, 3975, 4024, 4050, 4068, 4079, 4085, 4089, 4092, 4093,
      4094]


def squash(d):
    if d > 2047:
        return 4095
    if d < -2047:
        return 1
    d += 2048
    i, f = d >> 7, d & 127
    return (SP[i] * (128 - f) + SP[i + 1] * f + 64) >> 7


SQUASH = {d: squash(d) for d in range(-2047, 2048)}
STRETCH = []
for _i in range(4096):
    STRETCH.append(next((d for d in range(-2047, 2048) if SQUASH[d] >= _i), 2047))


def bit_length(v):
    return v.bit_length()


def energy_class(v, top=47):
    if v < 4:
        return min(v, top)
    lb = bit_length(v) - 1
    return min(top, 2 * lb + ((v >> (lb - 1)) & 1))


RSQ = {v: (1 << 44) // (v * v) for v in range(16, 512)}


def sgn(v):
    return (v > 0) - (v < 0)


def trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class RangeDecoder:                                   # 16A.2
    def __init__(self, data):
        self.data, self.pos, self.zero_fill = data, 0, 0
        self.range, self.code = 0xFFFFFFFF, 0
        for _ in range(5):
            self.code = ((self.code << 8) | self.byte()) & 0xFFFFFFFF
        if self.code >= self.range:
            raise SpecError("E32h")

    def byte(self):
        if self.pos < len(self.data):
            self.pos += 1
            return self.data[self.pos - 1]
        self.zero_fill += 1
        return 0

    def normalise(self):
        while self.range < 1 << 24:
            self.range <<= 8
            self.code = ((self.code << 8) | self.byte()) & 0xFFFFFFFF

    def decode(self, p16):
        bound = (self.range >> 16) * p16
        if self.code < bound:
            self.range, bit = bound, 1
        else:
            self.code -= bound
            self.range -= bound
            bit = 0
        self.normalise()
        return bit

    def direct(self):
        self.range >>= 1
        if self.code < self.range:
            bit = 1
        else:
            self.code -= self.range
            bit = 0
            if self.code >= self.range:
                raise SpecError("E32h")
        self.normalise()
        return bit


class Ctx:                                            # 16A.3
    __slots__ = ("p", "n", "lim")

    def __init__(self, lim=6):
        self.p, self.n, self.lim = 32768, 0, lim

    def update(self, bit):
        n = self.n
        s = 1 if n == 0 else 2 if n <= 2 else 3 if n <= 6 else 4 if n <= 14 else \
            5 if n <= 30 else 6 if n <= 61 else 7
        s = min(s, self.lim)
        self.n = min(n + 1, 255)
        if bit:
            self.p += (65536 - self.p) >> s
        else:
            self.p -= self.p >> s


class Table(dict):
    """Contexts created on first use, all starting fresh."""

    def __init__(self, lim=6):
        super().__init__()
        self.lim = lim

    def __missing__(self, key):
        c = self[key] = Ctx(self.lim)
        return c


class Mixers(dict):
    def __init__(self, k, start):
        super().__init__()
        self.k, self.start = k, start

    const = False

    def __missing__(self, key):
        w = self[key] = [self.start] * (self.k - 1) + [0 if self.const else self.start]
        return w


def mixed(rc, ctxs, w):                               # 16A.4 / 16A.10 mixed_k
    st = [STRETCH[c.p >> 4] for c in ctxs]
    dot = sum(wi * si for wi, si in zip(w, st)) >> 16
    dot = min(max(dot, -2047), 2047)
    p12 = SQUASH[dot]
    bit = rc.decode(p12 << 4)
    err = (bit << 12) - p12
    for i, c in enumerate(ctxs):
        w[i] = min(max(w[i] + ((st[i] * err) >> 10), -(1 << 20)), 1 << 20)
        c.update(bit)
    return bit


class Apm:                                            # 16A.11
    def __init__(self):
        self.A = [min(max(16 * squash(min(128 * i - 2048, 2047)), 64), 65472)
                  for i in range(33)]


class Apms(dict):
    def __missing__(self, key):
        a = self[key] = Apm()
        return a


def mixed_apm(rc, ctxs, w, a):                        # 16A.12 mixedA_k
    st = [STRETCH[c.p >> 4] for c in ctxs] + [256]
    dot = sum(wi * si for wi, si in zip(w, st)) >> 16
    dot = min(max(dot, -2047), 2047)
    p12 = SQUASH[dot]
    s = dot + 2048
    lo, f = s >> 7, s & 127
    pa = (a.A[lo] * (128 - f) + a.A[lo + 1] * f) >> 7
    p16 = min(max((16 * p12 + pa + 1) >> 1, 32), 65504)
    bit = rc.decode(p16)
    err = (bit << 12) - p12
    for i in range(len(st)):
        w[i] = min(max(w[i] + ((st[i] * err) >> 11), -(1 << 20)), 1 << 20)
    k = lo + (f >> 6)
    a.A[k] += ((65535 if bit else 0) - a.A[k]) >> 6
    for c in ctxs:
        c.update(bit)
    return bit


class Model:
    def __init__(self, n, form):
        self.n, self.s = n, 2 * n + 1
        lim = 7 if form else 6
        self.zero, self.zero2, self.zero3, self.zero4 = (Table(lim), Table(lim), Table(lim),
                                                         Table(lim))
        self.sign, self.sign2, self.sign3 = Table(lim), Table(lim), Table(lim)
        self.kbit, self.kbit2, self.kbit3 = Table(lim), Table(lim), Table(lim)
        self.mant1, self.mant2, self.mrest = Table(lim), Table(lim), Table(7)
        if form:
            self.zero5, self.sign4, self.kbit4 = Table(7), Table(7), Table(7)
            self.mant1b, self.mant1c, self.mant1d = Table(7), Table(7), Table(7)
            self.mzero = Mixers(6, 16384)
            self.msign = Mixers(6 if form == 3 else 5, 16384)
            self.sign5 = Table(7)
            self.mkbit = Mixers(5, 16384)
            self.nmant = Mixers(5, 16384)
            for mx in (self.mzero, self.msign, self.mkbit, self.nmant):
                mx.const = True
            self.azero, self.asign, self.akbit, self.amant = Apms(), Apms(), Apms(), Apms()
        else:
            self.mzero = Mixers(4, 16384)
            self.msign = Mixers(3, 22000)
            self.mkbit = Mixers(3, 22000)
        self.ols = Ols()
        self.bsum = [0] * 648
        self.bcnt = [0] * 648


def run_class(z):
    if z < 6:
        return z
    for limit, c in ((8, 6), (12, 7), (16, 8), (32, 9), (64, 10)):
        if z < limit:
            return c
    return 11


def read_predictors(stream, planes_n, truncated, bad_count):
    """(weights per plane, position after them) of the predictor header of 16A.1 (shared by
    coders 3, 4 and 5); truncated() / bad_count() return the exception to raise."""
    pos, wts = 0, []
    for p in range(planes_n):
        if pos >= len(stream):
            raise truncated()
        cnt = stream[pos]
        pos += 1
        if cnt not in (0, 10 if p == 0 else 15):
            raise bad_count()
        if len(stream) - pos < 2 * cnt:
            raise truncated()
        wt = []
        for _ in range(cnt):
            v = (stream[pos] << 8) | stream[pos + 1]
            wt.append(v - 65536 if v >= 32768 else v)
            pos += 2
        wts.append(wt)
    return wts, pos


def decode_tile(stream, w, h, bits, mask, near_bg, near_roi, form=0, grade=0):
    """Planes (lists of rows) of a near-lossless tile stream of coder 3 (form 0: 16A.1,
    16A.10) or coder 4 (form 1: 16A.12; form 2: 16A.13; form 3: 16A.14), with the background
    bound raised
    by the grade (8.7)."""
    planes_n = len(bits)
    wts, pos = read_predictors(stream, planes_n, lambda: SpecError("E32a"),
                               lambda: SpecError("E32b"))
    if len(stream) - pos < 5:
        raise SpecError("E32a")
    if stream[pos] != 0:
        raise SpecError("E32c")
    rc = RangeDecoder(bytes(stream[pos:]))
    planes, resid = [], []
    for p in range(planes_n):
        P, E = decode_plane(rc, p, w, h, bits[p], wts[p], mask, near_bg, near_roi,
                            planes[p - 1] if p else None, resid[p - 1] if p else None, form,
                            grade)
        planes.append(P)
        resid.append(E)
    if rc.zero_fill > 0:
        raise SpecError("E32e")
    if rc.pos != len(rc.data):
        raise SpecError("E32f")
    if rc.code != 0:
        raise SpecError("E32g")
    return [[row[3:3 + w] for row in P[3:]] for P in planes]


ORDER = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]   # 8.7
OLS_AT = [(-1, 0), (0, -1), (-1, -1), (-1, 1), (0, -2), (-2, 0), (-2, 1), (-1, -2), (-1, 2),
          (-2, -1), (-2, -2), (-2, 2), (0, -3), (-1, 3), (-3, 0), (-3, -1), (-3, 1), (-2, 3)]


class Ols:                                            # 16A.14
    def __init__(self):
        self.r = [[0] * 18 for _ in range(18)]
        self.b = [0] * 18
        self.w = [0] * 18

    def predict(self, inp, max8):
        return min(max(sum(a * b for a, b in zip(self.w, inp)) >> 13, 0), max8)

    def update(self, inp, v):
        for i in range(18):
            for j in range(i, 18):
                self.r[i][j] += inp[i] * inp[j] - (self.r[i][j] >> 8)
            self.b[i] += inp[i] * v - (self.b[i] >> 8)
        sh = max(0, bit_length(max(self.r[i][i] for i in range(18))) - 30)
        rs = [[self.r[min(i, j)][max(i, j)] >> sh for j in range(18)] for i in range(18)]
        for i in range(18):
            num = (self.b[i] >> sh) * 65536 - sum(rs[i][j] * self.w[j] for j in range(18)
                                                  if j != i)
            self.w[i] = min(max(trunc_div(num, rs[i][i] + 1), -(1 << 19)), 1 << 19)


def decode_plane(rc, p, w, h, B, wt, mask, near_bg, near_roi, R, RE, form, grade=0):
    MAXVAL, MAX8 = (1 << B) - 1, 8 * ((1 << B) - 1)
    NPRED = (8 if p >= 1 else 6) + (form and (4 if p >= 1 else 3)) + (form == 3)
    models = [Model(near_bg, form), Model(near_roi, form)]

    def model_of(y, x):
        if near_bg == near_roi or mask is None:
            return models[0]
        return models[1 if mask[y][x] else 0]

    def bound_of(y, x):                # 8.1, 8.7: the sample's own bound and step
        if mask is not None and mask[y][x]:
            n = near_roi
        else:
            n = near_bg + (1 if ORDER[y % 4][x % 4] < grade else 0)
        return n, 2 * n + 1

    def clamp8(v):
        return min(max(v, 0), MAX8)

    # padded arrays: index [y + 3][x + 3]
    Q = [[0] * (w + 6) for _ in range(h + 3)]
    e = [[0] * (w + 6) for _ in range(h + 3)]
    d = [[[0] * (w + 6) for _ in range(h + 3)] for _ in range(NPRED)]
    n, s = bound_of(0, 0)
    top = (MAXVAL + s - 1) // s if form >= 2 else (MAXVAL + n) // s   # 16A.13
    qv = 0
    for b in range(bit_length(top) - 1, -1, -1):
        qv |= rc.direct() << b
    if qv > top:
        raise SpecError("E33a")
    s00 = min(qv * s, MAXVAL)
    Q[0] = [s00] * (w + 6)
    Q[1] = [s00] * (w + 6)
    Q[2] = [s00] * (w + 6)
    Q[3][0] = Q[3][1] = Q[3][2] = Q[3][3] = s00
    for y in range(h):
        z = 0
        for x in range(1 if y == 0 else 0, w):
            m = model_of(y, x)
            n, s = bound_of(y, x)
            Y, X = y + 3, x + 3
            N, W, NW, NE = Q[Y - 1][X], Q[Y][X - 1], Q[Y - 1][X - 1], Q[Y - 1][X + 1]
            pr = [8 * N, 8 * W, clamp8(8 * (W + NE - N)), clamp8(8 * (N + W - NW)), 0,
                  4 * (W + NE)]
            if wt:
                inp = [N, W, NW, NE, Q[Y][X - 2], Q[Y - 2][X], Q[Y - 2][X + 1], Q[Y - 1][X - 2],
                       Q[Y - 1][X + 2], Q[Y - 2][X - 1]]
                if p >= 1:
                    inp += [R[Y][X], R[Y - 1][X], R[Y][X - 1], R[Y - 1][X - 1], R[Y - 1][X + 1]]
                pr[4] = clamp8(sum(a * b for a, b in zip(wt, inp)) >> 9)
            else:
                mx, mn = max(N, W), min(N, W)
                pr[4] = 8 * (mn if NW >= mx else mx if NW <= mn else N + W - NW)
            if p >= 1:
                pr.append(clamp8(8 * (N + R[Y][X] - R[Y - 1][X])))
                pr.append(clamp8(8 * (W + R[Y][X] - R[Y][X - 1])))
            if form:
                pr += [clamp8(8 * (2 * N - Q[Y - 2][X])), clamp8(8 * (2 * W - Q[Y][X - 2])),
                       clamp8(8 * (2 * NE - Q[Y - 2][X + 2]))]
                if p >= 1:
                    pr.append(8 * R[Y][X])
            if form == 3:                                  # 16A.14
                oin = [Q[Y + dy][X + dx] for dy, dx in OLS_AT]
                pr.append(m.ols.predict(oin, MAX8))
            es = [d[i][Y - 1][X] + d[i][Y - 1][X - 1] + d[i][Y - 1][X + 1] + d[i][Y][X - 1]
                  for i in range(NPRED)]
            if form:
                es = [v + d[i][Y - 1][X + 2] + d[i][Y][X - 2] for i, v in enumerate(es)]
                wgt = []
                for v in es:
                    u = v + 16
                    sh = bit_length(u | 511) - 9
                    wgt.append(RSQ[u >> sh] >> (2 * sh))
            else:
                wgt = [(1 << 24) // (v + 1) for v in es]
            ws = sum(wgt)
            blend8 = (sum(a * b for a, b in zip(wgt, pr)) + ws // 2) // ws
            aN = (abs(e[Y - 1][X]) + n) // s
            aW = (abs(e[Y][X - 1]) + n) // s
            aNW = (abs(e[Y - 1][X - 1]) + n) // s
            aNE = (abs(e[Y - 1][X + 1]) + n) // s
            G = abs(N - NW) + abs(W - NW) + abs(NE - N)
            En = 2 * (aN + aW) + aNW + aNE + (2 * G) // s
            if p >= 1:
                En += 2 * ((abs(RE[Y][X]) + n) // s)
            if form:
                En += ((abs(e[Y][X - 2]) + n) // s + (abs(e[Y - 2][X]) + n) // s
                       + (abs(e[Y - 2][X - 1]) + n) // s + (abs(e[Y - 2][X + 1]) + n) // s)
                spr = energy_class(((max(pr) - min(pr)) >> 3) // s, 11)
                if p == 0:
                    rf = 0
                    rk = min(11, bit_length((abs(e[Y][X - 2]) + n) // s
                                            + (abs(e[Y - 2][X]) + n) // s))
                else:
                    re = RE[Y][X]
                    ra = (abs(re) + n) // s
                    kr = bit_length(ra)
                    rf = 0 if ra == 0 else (1 if re > 0 else 2) + 2 * min(kr - 1, 3)
                    rk = min(kr, 11)
            q = energy_class(En)
            qm = energy_class((min(es) >> 3) // s)
            pat = min(aW, 3) + 4 * min(aN, 3) + 16 * min(aNW, 2) + 48 * min(aNE, 2)
            sg = 3 * (sgn(e[Y][X - 1]) + 1) + sgn(e[Y - 1][X]) + 1
            t = 9 * (sgn(N - NW) + 1) + 3 * (sgn(W - NW) + 1) + sgn(NE - N) + 1
            bi = 27 * (q >> 2 if form else q >> 1) + t
            if N == W == NW == NE:
                flat = 2
            elif abs(NE - N) <= n and abs(N - NW) <= n and abs(NW - W) <= n:
                flat = 1
            else:
                flat = 0
            zp = (aN == 0) + 2 * (aNE == 0) + 4 * (aNW == 0)
            rcl = run_class(z)
            kW, kN = min(bit_length(aW), 17), min(bit_length(aN), 17)
            c = m.bcnt[bi]
            if c == 0:
                corr = 0
            elif m.bsum[bi] >= 0:
                corr = (m.bsum[bi] + c // 2) // c
            else:
                corr = -((-m.bsum[bi] + c // 2) // c)
            if n > 0:
                corr = trunc_div(corr, 4)
            if flat == 2:
                corr = 0
            if form == 3:                                  # 16A.14
                corr = trunc_div(corr, 4)
            P8 = clamp8(blend8 + corr)
            Px = (P8 + 4) >> 3
            if form == 3:                                  # 16A.14: the OLS predictor's lead
                dl = pr[NPRED - 1] - P8
                c = sum(abs(dl) >= k * s for k in (1, 4, 8, 16))
                lead = 4 - c if dl < 0 else 4 + c
            frac = P8 - 8 * Px
            flip = frac < 0
            fc = abs(frac)
            if form >= 2:     # 16A.13: the extreme levels reach the clamps
                lo0, hi0 = -((Px + s - 1) // s), (MAXVAL - Px + s - 1) // s
            else:
                lo0, hi0 = -((Px + n) // s), (MAXVAL - Px + n) // s
            lo, hi = (-hi0, -lo0) if flip else (lo0, hi0)
            if flip:
                sg = 8 - sg
                if form == 3:
                    lead = 8 - lead
                if form and rf:
                    rf = rf + 1 if rf % 2 else rf - 1
            if lo == 0 and hi == 0:
                zero = 1
            elif form:
                zero = mixed_apm(rc, [m.zero[q, flat, fc], m.zero2[qm, fc], m.zero3[pat, fc],
                                      m.zero4[rcl, zp, flat], m.zero5[spr, fc]], m.mzero[q],
                                 m.azero[qm, fc])
            else:
                zero = mixed(rc, [m.zero[q, flat, fc], m.zero2[qm, fc], m.zero3[pat, fc],
                                  m.zero4[rcl, zp, flat]], m.mzero[q])
            if zero:
                qp = 0
            else:
                if lo == 0:
                    pos = 1
                elif hi == 0:
                    pos = 0
                elif form:
                    ctxs = [m.sign[q, fc], m.sign2[sg, fc], m.sign3[t, fc], m.sign4[rf, fc]]
                    if form == 3:
                        ctxs.append(m.sign5[lead, fc])
                    pos = mixed_apm(rc, ctxs, m.msign[fc], m.asign[sg, fc])
                else:
                    pos = mixed(rc, [m.sign[q, fc], m.sign2[sg, fc], m.sign3[t, fc]],
                                m.msign[fc])
                lim = hi if pos == 1 else -lo
                kcap = bit_length(lim - 1)
                k = 0
                while k < kcap:
                    ctxs = [m.kbit[q, k], m.kbit2[qm, k], m.kbit3[k, kW, kN]]
                    if form:
                        bit = mixed_apm(rc, ctxs + [m.kbit4[spr, k]], m.mkbit[k],
                                        m.akbit[k, rk])
                    else:
                        bit = mixed(rc, ctxs, m.mkbit[k])
                    if bit == 0:
                        break
                    k += 1
                if k <= 1:
                    mm = k
                else:
                    if form:
                        b1 = mixed_apm(rc, [m.mant1[q, k], m.mant1b[qm, k], m.mant1c[k, kW],
                                            m.mant1d[spr, k]], m.nmant[k], m.amant[k])
                    else:
                        c1 = m.mant1[q, k]
                        b1 = rc.decode(c1.p)
                        c1.update(b1)
                    mm = 2 + b1
                    if k > 2:
                        c2 = m.mant2[k, b1]
                        b2 = rc.decode(c2.p)
                        c2.update(b2)
                        mm = 2 * mm + b2
                        for j in range(k - 4, -1, -1):
                            c3 = m.mrest[k, j]
                            bj = rc.decode(c3.p)
                            c3.update(bj)
                            mm = 2 * mm + bj
                if mm >= lim:
                    raise SpecError("E33b")
                qp = mm + 1 if pos == 1 else -(mm + 1)
            qq = -qp if flip else qp
            v = min(max(Px + qq * s, 0), MAXVAL)
            Q[Y][X] = v
            e[Y][X] = v - Px
            if form == 3:
                m.ols.update(oin, v)
            for i in range(NPRED):
                d[i][Y][X] = abs(pr[i] - 8 * v)
            if qq != 0 or n == 0:
                m.bsum[bi] += 8 * v - blend8
                m.bcnt[bi] += 1
                if m.bcnt[bi] == (2048 if form else 64):
                    m.bsum[bi] = trunc_div(m.bsum[bi], 2)
                    m.bcnt[bi] = m.bcnt[bi] // 2
            z = z + 1 if qq == 0 else 0
        Q[y + 3][w + 3] = Q[y + 3][w + 4] = Q[y + 3][w + 5] = Q[y + 3][w + 2]
        if y + 1 < h:
            Q[y + 4][0] = Q[y + 4][1] = Q[y + 4][2] = Q[y + 3][3]
    return Q, e
