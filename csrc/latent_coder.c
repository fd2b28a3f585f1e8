/* The latent coder (spec/rmc-v1.md, 16D): the channels after the first of one plane of a
 * neural latent, and (16D.5) then the first, coded with coder 3's range coder and logistic
 * mixing.
 *
 * Channels are coded one after another, each in raster order, so a value's contexts can see
 * every value of the channels before it, the whole first channel (the block means, coded
 * elsewhere and given to both sides) and the causal neighbours of its own channel. Each value
 * is a zero flag, then (non-zero) its magnitude in unary up to LC_UNARY with an Exp-Golomb
 * escape, then its sign. The contexts come from five features, each quantised to 8 classes:
 *   sp: the activity of the neighbours W, N, NW, NE in the same channel, relative to the
 *       channel's mean magnitude so far;
 *   cr: the sum of the magnitudes of the earlier channels at the same position, relative to
 *       the sum of their means;
 *   pv: the magnitude of the previous channel at the same position, relative to its mean;
 *   dg: the gradient of the first channel (block means) around the position;
 *   pat: which of W, N and NW/NE are non-zero;
 * with statistics shared by a group of neighbouring channels (LC_GROUPS). Everything is
 * integer arithmetic; encoder and decoder run the same procedure. */
#include <stdlib.h>
#include <string.h>
#include "cm_coder.h"
#include "cm_common.h"

#define LC_GROUPS 7
#define LC_Q 8
#define LC_UNARY 17      /* magnitudes 1..17 in unary; from 18 on an Exp-Golomb escape */
#define LC_EG 15         /* escape exponents 0..14 */
#define LC_LIMIT 32767
#define LC_ZIN 4         /* zero-flag mixer contexts (and a constant input) */
#define LC_MIN 3         /* magnitude mixer contexts (and a constant input) */
#define LC_WINIT 26214   /* initial weight of a context input, 0.4 in Q16 */
#define LC_CTX_LIMIT 7
#define LC_MAX_CHANNELS 64
#define LC_MAX_POSITIONS ((uint64_t)1 << 28)

typedef struct {
    rc_ctx z0[LC_GROUPS][LC_Q][LC_Q];           /* sp, cr */
    rc_ctx z1[LC_GROUPS][LC_Q][LC_Q];           /* cr, pv */
    rc_ctx z2[LC_GROUPS][LC_Q][8];              /* pv, pat */
    rc_ctx z3[LC_GROUPS][LC_Q];                 /* dg */
    rc_ctx m0[LC_GROUPS][LC_UNARY][LC_Q][LC_Q]; /* sp, cr */
    rc_ctx m1[LC_GROUPS][LC_UNARY][LC_Q];       /* pv */
    rc_ctx m2[LC_GROUPS][LC_UNARY][LC_Q];       /* dg */
    rc_ctx eg[LC_GROUPS][LC_EG];
    rc_ctx sg[LC_GROUPS][9];
    int32_t wz[LC_GROUPS][LC_ZIN + 1];
    int32_t wm[LC_GROUPS][LC_UNARY][LC_MIN + 1];
} lc_model;

static void lc_init(lc_model *m) {
    size_t n = offsetof(lc_model, wz) / sizeof(rc_ctx), i;
    rc_ctx *all = (rc_ctx *)m;
    int32_t *w;
    for (i = 0; i < n; i++) rc_ctx_init(&all[i], LC_CTX_LIMIT);
    w = &m->wz[0][0];
    for (i = 0; i < sizeof m->wz / sizeof(int32_t); i++) w[i] = i % (LC_ZIN + 1) == LC_ZIN ? 0 : LC_WINIT;
    w = &m->wm[0][0][0];
    for (i = 0; i < sizeof m->wm / sizeof(int32_t); i++) w[i] = i % (LC_MIN + 1) == LC_MIN ? 0 : LC_WINIT;
}

/* Group of channel c >= 1: 1, 2, 3-5, 6-9, 10-14, 15-27, 28 on. */
static int lc_group(int c) {
    if (c < 3) return c - 1;
    if (c < 6) return 2;
    if (c < 10) return 3;
    if (c < 15) return 4;
    if (c < 28) return 5;
    return 6;
}

/* Class of a ratio in sixteenths: thresholds 1, 4, 8, 16, 32, 64, 128. */
static int lc_ratio_class(uint64_t v) {
    static const uint64_t th[7] = {1, 4, 8, 16, 32, 64, 128};
    int k = 0;
    while (k < 7 && v >= th[k]) k++;
    return k;
}

/* Class of a gradient of block means: thresholds 1, 2, 4, ..., 64. */
static int lc_gradient_class(uint32_t v) {
    int k = 0;
    while (k < 7 && v >= (1u << k)) k++;
    return k;
}

/* One decision from n adaptive contexts and a constant input mixed in the logistic domain
   (16D.2's mixedC_n); the weights and the contexts adapt after it. */
static int lc_mix(cm_io *io, rc_ctx **c, int n, int32_t *w, int bit) {
    return code_mixed_k(io, c, n, 1, w, bit);
}

/* The escape of a magnitude a >= LC_UNARY + 1 (16D.3): the exponent k of e = a - LC_UNARY in
   unary in eg[0..k] (at most nexp - 1 ones, else RMC_ERR_CORRUPT), then the k bits of e below
   its leading one, direct. Sets *mag to the magnitude coded. */
static int lc_escape(cm_io *io, rc_ctx *eg, int nexp, uint32_t a, uint32_t *mag) {
    uint32_t e1 = a - LC_UNARY, t = 1;
    int k = 0, b;
    if (!io->dec) while ((e1 >> (k + 1)) != 0) k++;
    for (b = 0;; b++) {
        if (b == nexp) return RMC_ERR_CORRUPT;
        if (!code_bit(io, &eg[b], b < k)) break;
    }
    for (k = b - 1; k >= 0; k--) t = (t << 1) | (uint32_t)code_direct(io, (int)((e1 >> k) & 1));
    *mag = LC_UNARY + t;
    return RMC_OK;
}

static inline uint32_t uabs(int32_t v) { return v < 0 ? (uint32_t)(-(int64_t)v) : (uint32_t)v; }

static int lc_run(cm_io *io, int32_t *lat, int channels, uint32_t h, uint32_t w, int with_dc) {
    const uint64_t hw = (uint64_t)h * w;
    const int32_t *dc = lat;
    uint32_t *acc;
    lc_model *m;
    uint64_t tt = 0, tprev = 0;
    int c, st = RMC_OK;
    acc = (uint32_t *)calloc((size_t)hw, sizeof(uint32_t));
    m = (lc_model *)malloc(sizeof(lc_model));
    if (!acc || !m) { free(acc); free(m); return RMC_ERR_NOMEM; }
    lc_init(m);
    for (c = 1; c < channels; c++) {
        const int g = lc_group(c);
        int32_t *cur = lat + (size_t)c * hw;
        const int32_t *prev = lat + (size_t)(c - 1) * hw;
        const uint64_t base = c == 1 ? 256 : (tprev << 8) / hw;
        uint64_t s = 0, n = 0;
        uint32_t y, x;
        for (y = 0; y < h; y++) {
            for (x = 0; x < w; x++) {
                const size_t i = (size_t)y * w + x;
                const uint32_t aW = x ? uabs(cur[i - 1]) : 0, aN = y ? uabs(cur[i - w]) : 0;
                const uint32_t aNW = x && y ? uabs(cur[i - w - 1]) : 0;
                const uint32_t aNE = y && x + 1 < w ? uabs(cur[i - w + 1]) : 0;
                const uint64_t act = 2 * (uint64_t)aW + 2 * (uint64_t)aN + aNW + aNE;
                const uint64_t mb = (n ? ((2 * s + 1) << 7) / (n + 1) : base) + 13;
                const size_t xl = x ? i - 1 : i, xr = x + 1 < w ? i + 1 : i;
                const size_t yu = y ? i - w : i, yd = y + 1 < h ? i + w : i;
                const int sp = lc_ratio_class((act << 12) / (6 * mb));
                const int cr = c == 1 ? 4 : lc_ratio_class((uint64_t)acc[i] * hw * 16 /
                                                           (tt + hw / 100 + 1));
                const int pv = c == 1 ? 4 : lc_ratio_class((uint64_t)uabs(prev[i]) * hw * 16 /
                                                           (tprev + hw / 20 + 1));
                const int dg = with_dc ? 0 : lc_gradient_class(uabs(dc[xr] - dc[xl]) +
                                                               uabs(dc[yd] - dc[yu]));
                const int pat = (aW != 0) + 2 * (aN != 0) + 4 * (aNW != 0 || aNE != 0);
                int32_t v = io->dec ? 0 : cur[i];
                uint32_t a = uabs(v);
                rc_ctx *ctx[LC_ZIN];
                ctx[0] = &m->z0[g][sp][cr];
                ctx[1] = &m->z1[g][cr][pv];
                ctx[2] = &m->z2[g][pv][pat];
                ctx[3] = &m->z3[g][dg];
                if (lc_mix(io, ctx, LC_ZIN, m->wz[g], a != 0)) {
                    int j, neg;
                    uint32_t mag = 1;
                    for (j = 0; j < LC_UNARY; j++) {
                        ctx[0] = &m->m0[g][j][sp][cr];
                        ctx[1] = &m->m1[g][j][pv];
                        ctx[2] = &m->m2[g][j][dg];
                        if (!lc_mix(io, ctx, LC_MIN, m->wm[g][j], a > mag)) break;
                        mag++;
                    }
                    if (j == LC_UNARY) {   /* mag = LC_UNARY + 1: the escape */
                        st = lc_escape(io, m->eg[g], LC_EG, a, &mag);
                        if (st == RMC_OK && mag > LC_LIMIT) st = RMC_ERR_CORRUPT;
                        if (st != RMC_OK) goto done;
                    }
                    {
                        const int sw = x ? sgn3(cur[i - 1]) : 0, sn = y ? sgn3(cur[i - w]) : 0;
                        neg = code_bit(io, &m->sg[g][(sw + 1) * 3 + sn + 1], v < 0);
                    }
                    a = mag;
                    v = neg ? -(int32_t)mag : (int32_t)mag;
                } else {
                    a = 0;
                    v = 0;
                }
                cur[i] = v;
                n++;
                s += a;
            }
        }
        for (size_t i = 0; i < (size_t)hw; i++) acc[i] += uabs(cur[i]);
        tt += s;
        tprev = s;
    }
done:
    free(acc);
    free(m);
    return st;
}

/* The block means (channel 0) after the other channels (16D.5): each predicted by a blend of
 * five predictions weighted by the inverse square of their recent errors, two of them
 * continuing the neighbouring block's edge through the (0, q) and (q, 0) coefficients
 * already decoded; the residual is coded like a value of 16D.3 with its own contexts: the
 * neighbours' residuals, the predictions' errors and the strength of the edge terms. */
#define DC_Q 12            /* classes of residual activity, prediction error and edge terms */
#define DC_EG 16           /* escape exponents 0..15 (residuals up to 65534) */
#define DC_NPRED 5
#define DC_ES_MAX (1u << 17)
#define DC_ERR_MAX (1u << 20)

/* Edge weights of the coefficients q = 1..7 in sixteenths: 16 * sqrt(8) / 2 * cos(pi q / 16)
   * (1 + q / 4), rounded. */
static const int32_t dc_edge_weight[8] = {0, 28, 31, 33, 32, 28, 22, 12};

typedef struct {
    rc_ctx z0[DC_Q], z1[DC_Q][DC_Q], z2[DC_Q][DC_Q];
    rc_ctx m0[LC_UNARY][DC_Q], m1[LC_UNARY][DC_Q][DC_Q], m2[LC_UNARY][DC_Q][DC_Q];
    rc_ctx eg[DC_EG];
    rc_ctx sg[9];
    int32_t wz[4], wm[LC_UNARY][4];
} dc_model;

/* Class of a value in sixteenths: thresholds 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384. */
static int dc_class(uint64_t v) {
    static const uint64_t th[DC_Q - 1] = {8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384};
    int k = 0;
    while (k < DC_Q - 1 && v >= th[k]) k++;
    return k;
}

/* floor(a / b) for b > 0. */
static int64_t floor_div64(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

static int lc_dc(cm_io *io, int32_t *lat, int channels, uint32_t h, uint32_t w) {
    const size_t hw = (size_t)h * w;
    int32_t *d = lat;
    uint32_t *err, *res;
    int32_t *rsd;
    dc_model *m;
    uint32_t y, x;
    size_t i;
    int st = RMC_OK;
    err = (uint32_t *)calloc(DC_NPRED * hw, sizeof(uint32_t));
    res = (uint32_t *)calloc(hw, sizeof(uint32_t));
    rsd = (int32_t *)calloc(hw, sizeof(int32_t));
    m = (dc_model *)malloc(sizeof(dc_model));
    if (!err || !res || !rsd || !m) { st = RMC_ERR_NOMEM; goto done; }
    {
        rc_ctx *all = (rc_ctx *)m;
        size_t n = offsetof(dc_model, wz) / sizeof(rc_ctx);
        for (i = 0; i < n; i++) rc_ctx_init(&all[i], LC_CTX_LIMIT);
        for (i = 0; i < 4; i++) m->wz[i] = i < 3 ? LC_WINIT : 0;
        for (i = 0; i < LC_UNARY * 4; i++) (&m->wm[0][0])[i] = i % 4 < 3 ? LC_WINIT : 0;
    }
    for (y = 0; y < h; y++) {
        for (x = 0; x < w; x++) {
            const size_t at = (size_t)y * w + x;
            static const int nb[4][2] = {{0, -1}, {-1, 0}, {-1, -1}, {-1, 1}};
            int64_t gx = 0, gy = 0, pr[DC_NPRED], sw = 0, sp = 0, p16, pred;
            uint64_t es[DC_NPRED] = {0}, act = 0, esmin;
            int32_t W, N, NW, NE, v;
            int cnt = 0, q, j, k1, k2, k3;
            uint32_t a;
            rc_ctx *ctx[3];
            for (q = 1; q < 8; q++) {
                const int ch = q * (q + 1) / 2, cv = ch + q;   /* (0, q) and (q, 0) */
                const int32_t s = (q & 1) ? -1 : 1;
                if (x && ch < channels) {
                    const int32_t *a0 = lat + (size_t)ch * hw;
                    gx += dc_edge_weight[q] * ((int64_t)s * a0[at - 1] - a0[at]);
                }
                if (y && cv < channels) {
                    const int32_t *a0 = lat + (size_t)cv * hw;
                    gy += dc_edge_weight[q] * ((int64_t)s * a0[at - w] - a0[at]);
                }
            }
            W = x ? d[at - 1] : (y ? d[at - w] : 0);
            N = y ? d[at - w] : W;
            NW = x && y ? d[at - w - 1] : N;
            NE = y && x + 1 < w ? d[at - w + 1] : N;
            pr[0] = 16 * (int64_t)W + gx;
            pr[1] = 16 * (int64_t)N + gy;
            pr[2] = 16 * ((int64_t)W + N - NW);
            pr[3] = 8 * ((int64_t)W + NE);
            pr[4] = 8 * ((int64_t)W + N) + floor_shift(gx + gy, 1);
            for (q = 0; q < 4; q++) {
                const int64_t yy = (int64_t)y + nb[q][0], xx = (int64_t)x + nb[q][1];
                size_t ni;
                if (yy < 0 || xx < 0 || xx >= (int64_t)w) continue;
                ni = (size_t)yy * w + (size_t)xx;
                for (j = 0; j < DC_NPRED; j++) es[j] += err[(size_t)j * hw + ni];
                act += res[ni];
                cnt++;
            }
            esmin = es[0];
            for (j = 0; j < DC_NPRED; j++) {
                const uint64_t e = (es[j] < DC_ES_MAX ? es[j] : DC_ES_MAX) + 5;
                const int64_t wt = (int64_t)(((uint64_t)1 << 36) / (e * e));
                sw += wt;
                sp += wt * pr[j];
                if (es[j] < esmin) esmin = es[j];
            }
            p16 = floor_div64(sp + sw / 2, sw);
            pred = clamp64(floor_shift(p16 + 8, 4), -LC_LIMIT, LC_LIMIT);
            k1 = dc_class(cnt ? (16 * act) / (uint64_t)cnt : 32);
            k2 = dc_class(esmin / 4);
            k3 = dc_class((uint64_t)((gx < 0 ? -gx : gx) + (gy < 0 ? -gy : gy)) / 2);
            v = io->dec ? 0 : (int32_t)(d[at] - pred);
            a = uabs(v);
            ctx[0] = &m->z0[k1];
            ctx[1] = &m->z1[k1][k2];
            ctx[2] = &m->z2[k3][k2];
            if (lc_mix(io, ctx, 3, m->wz, a != 0)) {
                int neg;
                uint32_t mag = 1;
                for (j = 0; j < LC_UNARY; j++) {
                    ctx[0] = &m->m0[j][k1];
                    ctx[1] = &m->m1[j][k1][k2];
                    ctx[2] = &m->m2[j][k3][k2];
                    if (!lc_mix(io, ctx, 3, m->wm[j], a > mag)) break;
                    mag++;
                }
                if (j == LC_UNARY) {   /* the escape, as in 16D.3 */
                    st = lc_escape(io, m->eg, DC_EG, a, &mag);
                    if (st != RMC_OK) goto done;
                }
                {
                    const int s1 = x ? sgn3(rsd[at - 1]) : 0, s2 = y ? sgn3(rsd[at - w]) : 0;
                    neg = code_bit(io, &m->sg[(s1 + 1) * 3 + s2 + 1], v < 0);
                }
                a = mag;
                v = neg ? -(int32_t)mag : (int32_t)mag;
            } else {
                a = 0;
                v = 0;
            }
            if (io->dec) {
                const int64_t value = pred + v;
                if (value < -LC_LIMIT || value > LC_LIMIT) { st = RMC_ERR_CORRUPT; goto done; }
                d[at] = (int32_t)value;
            }
            res[at] = a;
            rsd[at] = v;
            for (j = 0; j < DC_NPRED; j++) {
                const int64_t e = 16 * (int64_t)d[at] - pr[j];
                const uint64_t ae = (uint64_t)(e < 0 ? -e : e);
                err[(size_t)j * hw + at] = ae < DC_ERR_MAX ? (uint32_t)ae : DC_ERR_MAX;
            }
        }
    }
done:
    free(err);
    free(res);
    free(rsd);
    free(m);
    return st;
}

static int lc_check_args(int channels, uint32_t h, uint32_t w, int dc) {
    if (dc != 0 && dc != 1) return RMC_ERR_ARGUMENT;
    if (channels < 2 - dc || channels > LC_MAX_CHANNELS || h == 0 || w == 0) return RMC_ERR_ARGUMENT;
    if ((uint64_t)h * w > LC_MAX_POSITIONS) return RMC_ERR_ARGUMENT;
    return RMC_OK;
}

int rmc_latent_encode(const int32_t *latent, int channels, uint32_t height, uint32_t width,
                      int dc, rmc_buffer *out) {
    cm_io io;
    int32_t *copy;
    size_t n, i;
    int st = lc_check_args(channels, height, width, dc);
    if (st != RMC_OK) return st;
    n = (size_t)channels * height * width;
    for (i = 0; i < n; i++)
        if (latent[i] < -LC_LIMIT || latent[i] > LC_LIMIT) return RMC_ERR_ARGUMENT;
    copy = (int32_t *)malloc(n * sizeof(int32_t));
    if (!copy) return RMC_ERR_NOMEM;
    memcpy(copy, latent, n * sizeof(int32_t));
    rmc_cm_tables_init();
    st = rmc_cm_begin_encode(&io, 0, NULL, NULL);
    if (st == RMC_OK) {
        st = lc_run(&io, copy, channels, height, width, dc);
        if (st == RMC_OK && dc) st = lc_dc(&io, copy, channels, height, width);
        st = rmc_cm_finish_encode(&io, st, out);
    }
    free(copy);
    return st;
}

int rmc_latent_decode(const uint8_t *data, size_t size, int channels, uint32_t height,
                      uint32_t width, int dc, int32_t *latent) {
    cm_io io;
    size_t i, hw;
    int st = lc_check_args(channels, height, width, dc);
    if (st != RMC_OK) return st;
    hw = (size_t)height * width;
    if (!dc)
        for (i = 0; i < hw; i++)
            if (latent[i] < -LC_LIMIT || latent[i] > LC_LIMIT) return RMC_ERR_ARGUMENT;
    rmc_cm_tables_init();
    st = rmc_cm_begin_decode(&io, data, size, 0, NULL, NULL);
    if (st != RMC_OK) return st;
    st = lc_run(&io, latent, channels, height, width, dc);
    if (st == RMC_OK && dc) st = lc_dc(&io, latent, channels, height, width);
    return rmc_cm_finish_decode(&io, st);
}
