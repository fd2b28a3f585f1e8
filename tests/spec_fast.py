"""A decoder of coder 5 written from spec/rmc-v1.md, Section 16C, in plain Python: the tests
compare it with the C core, so the spec describes the bytes the core reads."""
from roimc.errors import CorruptDataError
from spec_cm_near import read_predictors

PROB = 10
NCLASS = 40
NTOKEN = 44


class Bits:
    """Section 12.1 reader; reading past the end supplies zero bits and counts them."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n):
        v = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3] if (self.pos >> 3) < len(self.data) else 0
            v = (v << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def finish(self):
        total = 8 * len(self.data)
        if self.pos > total:
            raise CorruptDataError("E22a")
        if total - self.pos >= 8:
            raise CorruptDataError("E22b")
        if total > self.pos and self.read(total - self.pos) != 0:
            raise CorruptDataError("E22c")


def read_table(bits):
    f = [0] * NTOKEN
    L = bits.read(6) + 1
    if L > NTOKEN:
        raise CorruptDataError("E58d")
    if L == 1:
        f[0] = 1 << PROB
        return f
    R = bits.read(6)
    if R >= L:
        raise CorruptDataError("E58d")
    for t in range(L):
        if t == R:
            continue
        e = bits.read(4)
        if e > PROB:
            raise CorruptDataError("E58d")
        if e <= 1:
            f[t] = e
        else:
            m = min(e - 1, 3)
            f[t] = ((1 << m) | bits.read(m)) << (e - 1 - m)
    s = sum(f)
    if s >= 1 << PROB:
        raise CorruptDataError("E58d")
    f[R] = (1 << PROB) - s
    return f


def read_model(bits):
    K = bits.read(4) + 1
    start = [0]
    for _ in range(1, K):
        b = bits.read(6)
        if not start[-1] < b <= 39:
            raise CorruptDataError("E58d")
        start.append(b)
    start.append(NCLASS)
    table_of = [0] * NCLASS
    for k in range(K):
        for c in range(start[k], start[k + 1]):
            table_of[c] = k
    tables = [read_table(bits) for _ in range(K + 1)]
    return table_of, tables


def cls(a):
    if a < 4:
        return a
    l = a.bit_length() - 1
    return min(2 * l + ((a >> (l - 1)) & 1), NCLASS - 1)


def med(n, w, nw):
    if nw >= max(n, w):
        return min(n, w)
    if nw <= min(n, w):
        return max(n, w)
    return n + w - nw


def decode(stream, width, height, bits_per_plane):
    """The planes of a coder-5 tile stream as lists of rows."""
    planes = len(bits_per_plane)
    wt, pos = read_predictors(stream, planes, lambda: CorruptDataError("E58a"),
                              lambda: CorruptDataError("E58b"))
    if len(stream) - pos < 4:
        raise CorruptDataError("E58a")
    A = int.from_bytes(stream[pos:pos + 4], "big")
    pos += 4
    if A < 4 or A % 2:
        raise CorruptDataError("E58c")
    if len(stream) - pos < A:
        raise CorruptDataError("E58a")
    rans = stream[pos:pos + A]
    state = {"X": int.from_bytes(rans[:4], "little"), "at": 4}
    if state["X"] < 1 << 16:
        raise CorruptDataError("E58c")
    bits = Bits(stream[pos + A:])

    def token(table):
        cum = 0
        slot = state["X"] & ((1 << PROB) - 1)
        for t, f in enumerate(table):
            if cum <= slot < cum + f:
                break
            cum += f
        state["X"] = f * (state["X"] >> PROB) + slot - cum
        if state["X"] < 1 << 16:
            if state["at"] + 2 > len(rans):
                raise CorruptDataError("E58a")
            state["X"] = (state["X"] << 16) | int.from_bytes(rans[state["at"]:state["at"] + 2],
                                                            "little")
            state["at"] += 2
        if t < 16:
            return t
        e = 4 + ((t - 16) >> 1)
        return ((2 + (t & 1)) << (e - 1)) | bits.read(e - 1)

    s00, models, Q, E = [], [], [], []
    for p in range(planes):
        s00.append(bits.read(bits_per_plane[p]))
        models.append(read_model(bits) if width * height > 1 else None)
        # Q: rows -2 .. h-1 at index y + 2, columns -2 .. w+1 at index x + 2
        Q.append([[s00[p]] * (width + 4) for _ in range(2)] + [[0] * (width + 4)
                                                                for _ in range(height)])
        E.append([[0] * (width + 4) for _ in range(height + 1)])   # rows -1 .. h-1
    for y in range(height):
        for p in range(planes):
            q, e = Q[p], E[p]
            maxval = (1 << bits_per_plane[p]) - 1
            row, up, up2 = q[y + 2], q[y + 1], q[y]
            erow, eup = e[y + 1], e[y]
            row[0] = row[1] = s00[p] if y == 0 else q[y + 1][2]
            if y == 0:
                row[2] = s00[p]
            x = 1 if y == 0 else 0
            no_run = 0
            while x < width:
                X = x + 2
                N, NW, NE, W = up[X], up[X - 1], up[X + 1], row[X - 1]
                act = (2 * (eup[X] + erow[X - 1]) + eup[X - 1] + eup[X + 1]
                       + abs(N - NW) + abs(W - NW) + abs(NE - N))
                if p:
                    act += 2 * E[p - 1][y + 1][X]
                table_of, tables = models[p]
                if act == 0 and not no_run:
                    n = token(tables[-1])
                    if n > width - x:
                        raise CorruptDataError("E58f")
                    for k in range(n):
                        row[X + k] = W
                        erow[X + k] = 0
                    x += n
                    no_run = 1
                    continue
                v = token(tables[table_of[cls(act)]])
                r = v >> 1 if v % 2 == 0 else -((v + 1) >> 1)
                if wt[p]:
                    w_ = wt[p]
                    a = (w_[0] * N + w_[1] * W + w_[2] * NW + w_[3] * NE + w_[4] * row[X - 2]
                         + w_[5] * up2[X] + w_[6] * up2[X + 1] + w_[7] * up[X - 2]
                         + w_[8] * up[X + 2] + w_[9] * up2[X - 1])
                    if p:
                        rq, rup = Q[p - 1][y + 2], Q[p - 1][y + 1]
                        a += (w_[10] * rq[X] + w_[11] * rup[X] + w_[12] * rq[X - 1]
                              + w_[13] * rup[X - 1] + w_[14] * rup[X + 1])
                    pred = min(max((a + 2048) >> 12, 0), maxval)
                else:
                    pred = med(N, W, NW)
                s = pred + r
                if not 0 <= s <= maxval:
                    raise CorruptDataError("E58f")
                row[X] = s
                erow[X] = abs(r)
                x += 1
                no_run = 0
            row[width + 2] = row[width + 3] = row[width + 1]
    if state["X"] != 1 << 16:
        raise CorruptDataError("E58c")
    if state["at"] != len(rans):
        raise CorruptDataError("E58e")
    bits.finish()
    return [[Q[p][y + 2][2:width + 2] for y in range(height)] for p in range(planes)]
