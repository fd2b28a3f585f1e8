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

/* Reduce an error modulo range into [-(range/2), (range+1)/2 - 1]. */
static inline int32_t mod_reduce(const ctx_state *s, int32_t e) {
    if (e < 0) e += s->range;
    if (e >= (s->range + 1) / 2) e -= s->range;
    return e;
}

static inline int golomb_k(int32_t n, int32_t a) {
    int k = 0;
    while ((n << k) < a && k < 30) k++;
    return k;
}

static inline int32_t predict(const ctx_state *s, rmc_nbr n, int q, int sign) {
    int32_t px = rmc_med(n.a, n.b, n.c) + sign * s->C[q];
    if (px < 0) px = 0;
    if (px > s->maxval) px = s->maxval;
    return px;
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

/* ------------------------------------------------------------------------------------------
 * The coding loops serve both forms: lossless is near-lossless with every bound 0
 * (spec/rmc-v1.md, 14.9: with NEAR = 0 every step below is the lossless one of Section 13).
 * Every sample has the bound NEAR of its region (near_bg, or near_roi where mask != 0); each
 * distinct bound has its own state (parameters, thresholds, contexts, RUNindex), and a run
 * never crosses a change of bound: the end of a constant-bound segment of a row ends a run as
 * the end of the row does. Prediction and contexts use the reconstructed samples. */

typedef struct {
    ctx_state s;     /* range, qbpp, thresholds of this bound; contexts and RUNindex */
    int32_t near;    /* the bound NEAR */
    int32_t step;    /* 2 * NEAR + 1 */
} near_state;

/* The state of one bound: JPEG-LS parameters (range, qbpp, LIMIT, thresholds T1-T3 with
 * NEAR) and fresh contexts. */
static void near_init(near_state *ns, int bits, int32_t near) {
    ctx_state *s = &ns->s;
    int32_t a0, i, bpp = bits < 2 ? 2 : bits;
    s->maxval = (1 << bits) - 1;
    s->limit = 2 * (bpp + (bpp > 8 ? bpp : 8));        /* LIMIT does not depend on NEAR */
    ns->near = near;
    ns->step = 2 * near + 1;
    s->range = (s->maxval + 2 * near) / ns->step + 1;
    for (s->qbpp = 0; ((int32_t)1 << s->qbpp) < s->range; s->qbpp++) {}
    if (s->maxval >= 128) {
        int32_t f = ((s->maxval < 4095 ? s->maxval : 4095) + 128) >> 8;
        s->t1 = clamp_t(f * (3 - 2) + 2 + 3 * near, near + 1, s->maxval);
        s->t2 = clamp_t(f * (7 - 3) + 3 + 5 * near, s->t1, s->maxval);
        s->t3 = clamp_t(f * (21 - 4) + 4 + 7 * near, s->t2, s->maxval);
    } else {
        int32_t f = 256 / (s->maxval + 1);
        s->t1 = clamp_t((3 / f > 2 ? 3 / f : 2) + 3 * near, near + 1, s->maxval);
        s->t2 = clamp_t((7 / f > 3 ? 7 / f : 3) + 5 * near, s->t1, s->maxval);
        s->t3 = clamp_t((21 / f > 4 ? 21 / f : 4) + 7 * near, s->t2, s->maxval);
    }
    a0 = (s->range + 32) / 64;
    if (a0 < 2) a0 = 2;
    for (i = 0; i < 367; i++) { s->A[i] = a0; s->N[i] = 1; }
    memset(s->B, 0, sizeof s->B);
    memset(s->C, 0, sizeof s->C);
    s->Nn[0] = s->Nn[1] = 0;
    s->run_index = 0;
}

static inline int quantize_near(const near_state *ns, int32_t d) {
    const ctx_state *s = &ns->s;
    if (d <= -s->t3) return -4;
    if (d <= -s->t2) return -3;
    if (d <= -s->t1) return -2;
    if (d < -ns->near) return -1;
    if (d <= ns->near) return 0;
    if (d < s->t1) return 1;
    if (d < s->t2) return 2;
    if (d < s->t3) return 3;
    return 4;
}

static inline int context_near(const near_state *ns, rmc_nbr n, int *sign) {
    int q1 = quantize_near(ns, n.d - n.b), q2 = quantize_near(ns, n.b - n.c);
    int q3 = quantize_near(ns, n.c - n.a);
    if (q1 < 0 || (q1 == 0 && (q2 < 0 || (q2 == 0 && q3 < 0)))) {
        q1 = -q1; q2 = -q2; q3 = -q3;
        *sign = -1;
    } else {
        *sign = 1;
    }
    return 81 * q1 + 9 * q2 + q3;
}

/* Prediction error e in units of the step, rounded so that |e * step - err| <= NEAR. */
static inline int32_t quantize_error(const near_state *ns, int32_t err) {
    if (ns->near == 0) return err;                     /* lossless: no division */
    return err > 0 ? (err + ns->near) / ns->step : -((ns->near - err) / ns->step);
}

/* The decoded sample from the prediction and the signed, modulo-reduced error. */
static inline int32_t reconstruct(const near_state *ns, int32_t px, int32_t e) {
    const ctx_state *s = &ns->s;
    int32_t v = px + e * ns->step;
    if (v < -ns->near) v += s->range * ns->step;
    else if (v > s->maxval + ns->near) v -= s->range * ns->step;
    if (v < 0) v = 0;
    if (v > s->maxval) v = s->maxval;
    return v;
}

static inline void update_near(near_state *ns, int q, int32_t e) {
    ctx_state *s = &ns->s;
    s->B[q] += e * ns->step;
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

/* The per-row view of the bounds: which state each sample uses and where its segment of
 * constant bound ends. */
typedef struct {
    const uint8_t *mask;   /* NULL: one bound for the whole plane */
    uint32_t *seg_end;     /* width entries */
} near_rows;

static void near_row(near_rows *nr, uint32_t y, uint32_t width) {
    const uint8_t *m;
    uint32_t x;
    if (!nr->mask) return;
    m = nr->mask + (size_t)y * width;
    nr->seg_end[width - 1] = width;
    for (x = width - 1; x > 0; x--)
        nr->seg_end[x - 1] = ((m[x - 1] != 0) == (m[x] != 0)) ? nr->seg_end[x] : x;
}

static inline int near_which(const near_rows *nr, uint32_t y, uint32_t x, uint32_t width) {
    return nr->mask ? nr->mask[(size_t)y * width + x] != 0 : 0;
}

static inline uint32_t near_seg_end(const near_rows *nr, uint32_t x, uint32_t width) {
    return nr->mask ? nr->seg_end[x] : width;
}

/* recon: where the decoded samples go, or NULL when every bound is 0 (they are the input). */
static int encode_plane_near(near_state *st, near_rows *nr, rmc_bw *w,
                             const int32_t *plane, int32_t *recon, uint32_t width,
                             uint32_t height) {
    uint32_t y;
    for (y = 0; y < height; y++) {
        const int32_t *cur = plane + (size_t)y * width;
        int32_t *rcur = recon ? recon + (size_t)y * width : NULL;
        const int32_t *ncur = rcur ? rcur : cur;          /* the samples the decoder will see */
        const int32_t *rprev = y ? ncur - width : NULL;
        uint32_t x = 0;
        near_row(nr, y, width);
        while (x < width) {
            near_state *ns = &st[near_which(nr, y, x, width)];
            ctx_state *s = &ns->s;
            rmc_nbr n = rmc_neighbours(ncur, rprev, x, width);
            int sign, q = context_near(ns, n, &sign);
            if (q != 0) {
                int32_t px = predict(s, n, q, sign);
                int32_t e = cur[x] - px, v;
                int k;
                uint32_t m;
                if (sign < 0) e = -e;
                e = mod_reduce(s, quantize_error(ns, e));
                if (rcur) {
                    v = reconstruct(ns, px, sign * e);
                    if (rmc_abs(v - cur[x]) > ns->near) return RMC_ERR_CORRUPT; /* cannot happen */
                    rcur[x] = v;
                }
                k = golomb_k(s->N[q], s->A[q]);
                if (ns->near == 0 && k == 0 && 2 * s->B[q] <= -s->N[q])
                    m = e >= 0 ? 2 * (uint32_t)e + 1 : (uint32_t)(-2 * (e + 1));
                else
                    m = e >= 0 ? 2 * (uint32_t)e : (uint32_t)(-2 * e - 1);
                rmc_golomb_put(w, m, k, s->limit, s->qbpp);
                update_near(ns, q, e);
                x++;
            } else {
                int32_t runval = n.a;
                uint32_t cnt = 0, rem, end = near_seg_end(nr, x, width);
                while (x + cnt < end && rmc_abs(cur[x + cnt] - runval) <= ns->near) {
                    if (rcur) rcur[x + cnt] = runval;
                    cnt++;
                }
                rem = cnt;
                while (rem >= (1u << J[s->run_index])) {
                    rmc_bw_put(w, 1, 1);
                    rem -= 1u << J[s->run_index];
                    if (s->run_index < 31) s->run_index++;
                }
                x += cnt;
                if (x == end) {
                    if (rem > 0) rmc_bw_put(w, 1, 1);
                } else {
                    rmc_nbr ni;
                    int ritype, k, map, rsign;
                    int32_t px, e, v;
                    uint32_t em;
                    rmc_bw_put(w, 0, 1);
                    rmc_bw_put(w, rem, J[s->run_index]);
                    ni = rmc_neighbours(ncur, rprev, x, width);
                    ritype = rmc_abs(ni.a - ni.b) <= ns->near;
                    px = ritype ? ni.a : ni.b;
                    rsign = (!ritype && ni.a > ni.b) ? -1 : 1;
                    e = mod_reduce(s, quantize_error(ns, rsign * (cur[x] - px)));
                    if (rcur) {
                        v = reconstruct(ns, px, rsign * e);
                        if (rmc_abs(v - cur[x]) > ns->near) return RMC_ERR_CORRUPT;
                        rcur[x] = v;
                    }
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
    return w->err;
}

static int decode_plane_near(near_state *st, near_rows *nr, rmc_br *r, int32_t *plane,
                             uint32_t width, uint32_t height) {
    uint32_t y;
    for (y = 0; y < height; y++) {
        int32_t *cur = plane + (size_t)y * width;
        const int32_t *prev = y ? cur - width : NULL;
        uint32_t x = 0;
        near_row(nr, y, width);
        while (x < width) {
            near_state *ns = &st[near_which(nr, y, x, width)];
            ctx_state *s = &ns->s;
            rmc_nbr n = rmc_neighbours(cur, prev, x, width);
            int sign, q = context_near(ns, n, &sign);
            if (q != 0) {
                int32_t px = predict(s, n, q, sign);
                int k = golomb_k(s->N[q], s->A[q]);
                int64_t m = rmc_golomb_get(r, k, s->limit, s->qbpp);
                int32_t e;
                if (m < 0 || m >= s->range) return RMC_ERR_CORRUPT;
                if (ns->near == 0 && k == 0 && 2 * s->B[q] <= -s->N[q])
                    e = (m & 1) ? (int32_t)((m - 1) / 2) : (int32_t)(-(m / 2) - 1);
                else
                    e = (m & 1) ? (int32_t)(-(m + 1) / 2) : (int32_t)(m / 2);
                update_near(ns, q, e);
                cur[x] = reconstruct(ns, px, sign * e);
                x++;
            } else {
                int32_t runval = n.a;
                uint32_t end = near_seg_end(nr, x, width);
                for (;;) {
                    if (rmc_br_bit(r)) {
                        uint32_t len = 1u << J[s->run_index], left = end - x, i;
                        if (len <= left) {
                            for (i = 0; i < len; i++) cur[x + i] = runval;
                            x += len;
                            if (s->run_index < 31) s->run_index++;
                            if (x == end) break;
                        } else {
                            for (i = 0; i < left; i++) cur[x + i] = runval;
                            x = end;
                            break;
                        }
                    } else {
                        uint32_t cnt = rmc_br_get(r, J[s->run_index]), i;
                        rmc_nbr ni;
                        int ritype, k, cond;
                        int64_t em;
                        int32_t px, e, t, absval;
                        if (cnt >= end - x) return RMC_ERR_CORRUPT;
                        for (i = 0; i < cnt; i++) cur[x + i] = runval;
                        x += cnt;
                        ni = rmc_neighbours(cur, prev, x, width);
                        ritype = rmc_abs(ni.a - ni.b) <= ns->near;
                        px = ritype ? ni.a : ni.b;
                        k = ri_k(s, ritype);
                        em = rmc_golomb_get(r, k, s->limit - J[s->run_index] - 1, s->qbpp);
                        if (em < 0 || em > s->range) return RMC_ERR_CORRUPT;
                        t = (int32_t)em + ritype;
                        absval = (t + 1) >> 1;
                        cond = k == 0 && 2 * s->Nn[ritype] < s->N[RUN_CTX + ritype];
                        e = ((t & 1) != cond) ? -absval : absval;
                        if (e < -(s->range / 2) || e > (s->range + 1) / 2 - 1)
                            return RMC_ERR_CORRUPT;
                        update_ri(s, ritype, e, (uint32_t)em);
                        if (!ritype && ni.a > ni.b) e = -e;
                        cur[x] = reconstruct(ns, px, e);
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

/* Two states (background, ROI) and the row buffer; the ROI state and the mask are used only
 * when the bounds differ. */
typedef struct {
    near_state st[2];
    near_rows nr;
} near_setup;

static near_setup *near_setup_new(int bits, uint32_t width, const uint8_t *mask,
                                  int32_t near_bg, int32_t near_roi) {
    near_setup *ns = (near_setup *)malloc(sizeof *ns);
    if (!ns) return NULL;
    near_init(&ns->st[0], bits, near_bg);
    near_init(&ns->st[1], bits, near_roi);
    ns->nr.mask = (mask && near_bg != near_roi) ? mask : NULL;
    ns->nr.seg_end = NULL;
    if (ns->nr.mask) {
        ns->nr.seg_end = (uint32_t *)malloc(sizeof(uint32_t) * (size_t)width);
        if (!ns->nr.seg_end) { free(ns); return NULL; }
    }
    return ns;
}

static void near_setup_free(near_setup *ns) {
    free(ns->nr.seg_end);
    free(ns);
}

int rmc_context_encode_near(rmc_bw *w, const int32_t *plane, int32_t *recon, uint32_t width,
                            uint32_t height, int bits, const uint8_t *mask, int32_t near_bg,
                            int32_t near_roi) {
    int st;
    near_setup *ns = near_setup_new(bits, width, mask, near_bg, near_roi);
    if (!ns) return RMC_ERR_NOMEM;
    st = encode_plane_near(ns->st, &ns->nr, w, plane, recon, width, height);
    near_setup_free(ns);
    return st;
}

int rmc_context_decode_near(rmc_br *r, int32_t *plane, uint32_t width, uint32_t height,
                            int bits, const uint8_t *mask, int32_t near_bg, int32_t near_roi) {
    int st;
    near_setup *ns = near_setup_new(bits, width, mask, near_bg, near_roi);
    if (!ns) return RMC_ERR_NOMEM;
    st = decode_plane_near(ns->st, &ns->nr, r, plane, width, height);
    near_setup_free(ns);
    return st;
}

int rmc_context_encode(rmc_bw *w, const int32_t *plane, uint32_t width, uint32_t height,
                       int bits) {
    return rmc_context_encode_near(w, plane, NULL, width, height, bits, NULL, 0, 0);
}

int rmc_context_decode(rmc_br *r, int32_t *plane, uint32_t width, uint32_t height, int bits) {
    return rmc_context_decode_near(r, plane, width, height, bits, NULL, 0, 0);
}
