/* Coder 0: adaptive Golomb-Rice with context modelling and a run mode (LOCO-I family).
 * spec/rmc-v1.md, "Coder 0". Encoder and decoder share every modelling step below. */
#include <stdlib.h>
#include <string.h>
#include "context_coder.h"
#include "golomb.h"
#include "neighbours.h"

#define RESET 64
#define MIN_C (-128)
#define MAX_C 127
#define RUN_CTX 365

static const int J[32] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                          4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15};

typedef struct {
    int32_t maxval, range, qbpp, limit;
    int32_t t1, t2, t3;
    int32_t A[367], N[367], B[365], C[365], Nn[2];
    int run_index;
} ctx_state;

/* JPEG-LS CLAMP: i if j <= i <= maxval, else j. */
static int32_t clamp_t(int32_t i, int32_t j, int32_t maxval) {
    return (i > maxval || i < j) ? j : i;
}

static void ctx_init(ctx_state *s, int bits) {
    int32_t a0, i, bpp = bits < 2 ? 2 : bits;
    s->maxval = (1 << bits) - 1;
    s->range = s->maxval + 1;
    s->qbpp = bits;
    s->limit = 2 * (bpp + (bpp > 8 ? bpp : 8));
    if (s->maxval >= 128) {
        int32_t f = ((s->maxval < 4095 ? s->maxval : 4095) + 128) >> 8;
        s->t1 = clamp_t(f * (3 - 2) + 2, 1, s->maxval);
        s->t2 = clamp_t(f * (7 - 3) + 3, s->t1, s->maxval);
        s->t3 = clamp_t(f * (21 - 4) + 4, s->t2, s->maxval);
    } else {
        int32_t f = 256 / (s->maxval + 1);
        s->t1 = clamp_t(3 / f > 2 ? 3 / f : 2, 1, s->maxval);
        s->t2 = clamp_t(7 / f > 3 ? 7 / f : 3, s->t1, s->maxval);
        s->t3 = clamp_t(21 / f > 4 ? 21 / f : 4, s->t2, s->maxval);
    }
    a0 = (s->range + 32) / 64;
    if (a0 < 2) a0 = 2;
    for (i = 0; i < 367; i++) { s->A[i] = a0; s->N[i] = 1; }
    memset(s->B, 0, sizeof s->B);
    memset(s->C, 0, sizeof s->C);
    s->Nn[0] = s->Nn[1] = 0;
    s->run_index = 0;
}

static inline int quantize(const ctx_state *s, int32_t d) {
    if (d <= -s->t3) return -4;
    if (d <= -s->t2) return -3;
    if (d <= -s->t1) return -2;
    if (d < 0) return -1;
    if (d == 0) return 0;
    if (d < s->t1) return 1;
    if (d < s->t2) return 2;
    if (d < s->t3) return 3;
    return 4;
}

/* Reduce an error modulo range into [-(range/2), (range+1)/2 - 1]. */
static inline int32_t mod_reduce(const ctx_state *s, int32_t e) {
    if (e < 0) e += s->range;
    if (e >= (s->range + 1) / 2) e -= s->range;
    return e;
}

static inline int32_t wrap(const ctx_state *s, int32_t v) {
    if (v < 0) v += s->range;
    else if (v > s->maxval) v -= s->range;
    return v;
}

static inline int golomb_k(int32_t n, int32_t a) {
    int k = 0;
    while ((n << k) < a && k < 30) k++;
    return k;
}

/* Regular-mode context: returns the index q in 1..364 and the sign. */
static inline int context_index(const ctx_state *s, rmc_nbr n, int *sign) {
    int q1 = quantize(s, n.d - n.b), q2 = quantize(s, n.b - n.c), q3 = quantize(s, n.c - n.a);
    if (q1 < 0 || (q1 == 0 && (q2 < 0 || (q2 == 0 && q3 < 0)))) {
        q1 = -q1; q2 = -q2; q3 = -q3;
        *sign = -1;
    } else {
        *sign = 1;
    }
    return 81 * q1 + 9 * q2 + q3;
}

static inline int32_t predict(const ctx_state *s, rmc_nbr n, int q, int sign) {
    int32_t px = rmc_med(n.a, n.b, n.c) + sign * s->C[q];
    if (px < 0) px = 0;
    if (px > s->maxval) px = s->maxval;
    return px;
}

static inline void update_regular(ctx_state *s, int q, int32_t e) {
    s->B[q] += e;
    s->A[q] += rmc_abs(e);
    if (s->N[q] == RESET) {
        s->A[q] >>= 1;
        s->B[q] = rmc_floor_half(s->B[q]);
        s->N[q] >>= 1;
    }
    s->N[q]++;
    if (s->B[q] <= -s->N[q]) {
        s->B[q] += s->N[q];
        if (s->C[q] > MIN_C) s->C[q]--;
        if (s->B[q] <= -s->N[q]) s->B[q] = -s->N[q] + 1;
    } else if (s->B[q] > 0) {
        s->B[q] -= s->N[q];
        if (s->C[q] < MAX_C) s->C[q]++;
        if (s->B[q] > 0) s->B[q] = 0;
    }
}

/* Run-interruption context: parameter k and the mapping condition. */
static inline int ri_k(const ctx_state *s, int ritype) {
    int q = RUN_CTX + ritype;
    int32_t temp = ritype ? s->A[q] + (s->N[q] >> 1) : s->A[q];
    return golomb_k(s->N[q], temp);
}

static inline void update_ri(ctx_state *s, int ritype, int32_t e, uint32_t em) {
    int q = RUN_CTX + ritype;
    if (e < 0) s->Nn[ritype]++;
    s->A[q] += (int32_t)((em + 1 - (uint32_t)ritype) >> 1);
    if (s->N[q] == RESET) {
        s->A[q] >>= 1;
        s->N[q] >>= 1;
        s->Nn[ritype] >>= 1;
    }
    s->N[q]++;
}

static void encode_plane(ctx_state *s, rmc_bw *w, const int32_t *plane, uint32_t width,
                         uint32_t height) {
    uint32_t y;
    for (y = 0; y < height; y++) {
        const int32_t *cur = plane + (size_t)y * width;
        const int32_t *prev = y ? cur - width : NULL;
        uint32_t x = 0;
        while (x < width) {
            rmc_nbr n = rmc_neighbours(cur, prev, x, width);
            int sign, q = context_index(s, n, &sign);
            if (q != 0) {
                int32_t px = predict(s, n, q, sign);
                int32_t e = cur[x] - px;
                int k;
                uint32_t m;
                if (sign < 0) e = -e;
                e = mod_reduce(s, e);
                k = golomb_k(s->N[q], s->A[q]);
                if (k == 0 && 2 * s->B[q] <= -s->N[q])
                    m = e >= 0 ? 2 * (uint32_t)e + 1 : (uint32_t)(-2 * (e + 1));
                else
                    m = e >= 0 ? 2 * (uint32_t)e : (uint32_t)(-2 * e - 1);
                rmc_golomb_put(w, m, k, s->limit, s->qbpp);
                update_regular(s, q, e);
                x++;
            } else {
                /* run mode */
                int32_t runval = n.a;
                uint32_t cnt = 0, rem;
                while (x + cnt < width && cur[x + cnt] == runval) cnt++;
                rem = cnt;
                while (rem >= (1u << J[s->run_index])) {
                    rmc_bw_put(w, 1, 1);
                    rem -= 1u << J[s->run_index];
                    if (s->run_index < 31) s->run_index++;
                }
                x += cnt;
                if (x == width) {
                    if (rem > 0) rmc_bw_put(w, 1, 1);
                } else {
                    rmc_nbr ni;
                    int ritype, k, map;
                    int32_t px, e;
                    uint32_t em;
                    rmc_bw_put(w, 0, 1);
                    rmc_bw_put(w, rem, J[s->run_index]);
                    ni = rmc_neighbours(cur, prev, x, width);
                    ritype = ni.a == ni.b;
                    px = ritype ? ni.a : ni.b;
                    e = cur[x] - px;
                    if (!ritype && ni.a > ni.b) e = -e;
                    e = mod_reduce(s, e);
                    k = ri_k(s, ritype);
                    map = (k == 0 && e > 0 && 2 * s->Nn[ritype] < s->N[RUN_CTX + ritype]) ||
                          (e < 0 && 2 * s->Nn[ritype] >= s->N[RUN_CTX + ritype]) ||
                          (e < 0 && k != 0);
                    em = 2 * (uint32_t)rmc_abs(e) - (uint32_t)ritype - (uint32_t)map;
                    rmc_golomb_put(w, em, k, s->limit - J[s->run_index] - 1, s->qbpp);
                    update_ri(s, ritype, e, em);
                    if (s->run_index > 0) s->run_index--;
                    x++;
                }
            }
        }
    }
}

static int decode_plane(ctx_state *s, rmc_br *r, int32_t *plane, uint32_t width,
                        uint32_t height) {
    uint32_t y;
    for (y = 0; y < height; y++) {
        int32_t *cur = plane + (size_t)y * width;
        const int32_t *prev = y ? cur - width : NULL;
        uint32_t x = 0;
        while (x < width) {
            rmc_nbr n = rmc_neighbours(cur, prev, x, width);
            int sign, q = context_index(s, n, &sign);
            if (q != 0) {
                int32_t px = predict(s, n, q, sign);
                int k = golomb_k(s->N[q], s->A[q]);
                int64_t m = rmc_golomb_get(r, k, s->limit, s->qbpp);
                int32_t e;
                if (m < 0 || m >= s->range) return RMC_ERR_CORRUPT;
                if (k == 0 && 2 * s->B[q] <= -s->N[q])
                    e = (m & 1) ? (int32_t)((m - 1) / 2) : (int32_t)(-(m / 2) - 1);
                else
                    e = (m & 1) ? (int32_t)(-(m + 1) / 2) : (int32_t)(m / 2);
                update_regular(s, q, e);
                cur[x] = wrap(s, px + sign * e);
                x++;
            } else {
                int32_t runval = n.a;
                for (;;) {
                    if (rmc_br_bit(r)) {
                        uint32_t len = 1u << J[s->run_index], left = width - x, i;
                        if (len <= left) {
                            for (i = 0; i < len; i++) cur[x + i] = runval;
                            x += len;
                            if (s->run_index < 31) s->run_index++;
                            if (x == width) break;
                        } else {
                            for (i = 0; i < left; i++) cur[x + i] = runval;
                            x = width;
                            break;
                        }
                    } else {
                        uint32_t cnt = rmc_br_get(r, J[s->run_index]), i;
                        rmc_nbr ni;
                        int ritype, k, cond;
                        int64_t em;
                        int32_t px, e, s_, absval;
                        if (cnt >= width - x) return RMC_ERR_CORRUPT;
                        for (i = 0; i < cnt; i++) cur[x + i] = runval;
                        x += cnt;
                        ni = rmc_neighbours(cur, prev, x, width);
                        ritype = ni.a == ni.b;
                        px = ritype ? ni.a : ni.b;
                        k = ri_k(s, ritype);
                        em = rmc_golomb_get(r, k, s->limit - J[s->run_index] - 1, s->qbpp);
                        if (em < 0 || em > s->range) return RMC_ERR_CORRUPT;
                        s_ = (int32_t)em + ritype;
                        absval = (s_ + (s_ & 1)) >> 1;
                        cond = k == 0 && 2 * s->Nn[ritype] < s->N[RUN_CTX + ritype];
                        e = ((s_ & 1) != cond) ? -absval : absval;
                        /* only the modulo-reduced errors of the encoder can occur */
                        if (e < -(s->range / 2) || e > (s->range + 1) / 2 - 1)
                            return RMC_ERR_CORRUPT;
                        update_ri(s, ritype, e, (uint32_t)em);
                        if (!ritype && ni.a > ni.b) e = -e;
                        cur[x] = wrap(s, px + e);
                        if (cur[x] == runval) return RMC_ERR_CORRUPT; /* would continue the run */
                        if (s->run_index > 0) s->run_index--;
                        x++;
                        break;
                    }
                }
            }
        }
        if (r->zero_fill > 8) return RMC_ERR_TRUNCATED;
    }
    return RMC_OK;
}

int rmc_context_encode(rmc_bw *w, const int32_t *plane, uint32_t width, uint32_t height,
                       int bits) {
    ctx_state *s = (ctx_state *)malloc(sizeof *s);
    if (!s) return RMC_ERR_NOMEM;
    ctx_init(s, bits);
    encode_plane(s, w, plane, width, height);
    free(s);
    return w->err;
}

int rmc_context_decode(rmc_br *r, int32_t *plane, uint32_t width, uint32_t height, int bits) {
    int st;
    ctx_state *s = (ctx_state *)malloc(sizeof *s);
    if (!s) return RMC_ERR_NOMEM;
    ctx_init(s, bits);
    st = decode_plane(s, r, plane, width, height);
    free(s);
    return st;
}
