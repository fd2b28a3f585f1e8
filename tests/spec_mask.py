"""A decoder of mask coder streams (MASK method 1) written from spec/rmc-v1.md alone
(Sections 16A.2, 16A.3 and 16E), in plain Python integers: slow, for small masks only.
tests/test_mask.py checks that it decodes what the C core writes to the same mask, so the
spec and the reference agree. Errors raise SpecError with the spec's error id."""
from spec_cm_near import Ctx, RangeDecoder, SpecError
from spec_latent import mixed_const

T1 = [(0, -1), (-1, -1), (-1, 0), (-1, 1)]                                # 16E.2
T2 = T1 + [(0, -2), (-1, -2), (-1, 2), (-2, -1), (-2, 0), (-2, 1)]
T3 = T2 + [(0, -3), (-3, 0), (-2, -2), (-2, 2), (-1, -3), (-1, 3)]


def decode(stream, height, width):
    """The mask (a list of `height` rows of `width` values 0 or 1) of a method-1 stream."""
    if height * width > 1 << 32 or len(stream) < 5 or stream[0] != 0:
        raise SpecError("E44")
    try:
        rc = RangeDecoder(bytes(stream))
        mask = decode_pixels(rc, height, width)
    except SpecError:
        raise SpecError("E44") from None
    if rc.zero_fill > 0 or rc.pos != len(stream) or rc.code != 0:
        raise SpecError("E44")
    return mask


def decode_pixels(rc, h, w):                                                # 16E.3
    c1 = [Ctx(5) for _ in range(1 << 4)]
    c2 = [Ctx(5) for _ in range(1 << 10)]
    c3 = [Ctx(5) for _ in range(1 << 16)]
    weights = [[26214, 26214, 26214, 0] for _ in range(1 << 4)]
    mask = [[0] * w for _ in range(h)]

    def context(y, x, template):
        k = 0
        for i, (dy, dx) in enumerate(template):
            yy, xx = y + dy, x + dx
            if 0 <= yy and 0 <= xx < w:
                k |= mask[yy][xx] << i
        return k

    for y in range(h):
        for x in range(w):
            k1 = context(y, x, T1)
            ctxs = [c1[k1], c2[context(y, x, T2)], c3[context(y, x, T3)]]
            mask[y][x] = mixed_const(rc, ctxs, weights[k1])
    return mask

