/* The near-lossless forms of coder 3 (form 0, spec/rmc-v1.md 16A.10) and coder 4 (forms 1
 * and 2, 16A.12, 16A.13): the blended prediction of coder 3 with the residual quantised in the
 * prediction loop, JPEG-LS style. Form 1 adds coder 4's model (more sub-predictors,
 * inverse-square blend weights, a constant mixer input and an APM per decision, spread and
 * reference-residual contexts, longer-lived bias), all measured in steps, and for planes
 * after the first the reference plane's decoded sample as a sub-predictor. Form 2 is form 1
 * with the lowest and highest levels reaching the clamps, so that 0 and MAXVAL decode exactly.
 * Form 3 (16A.14) is form 2 with one more sub-predictor: an adaptive least-squares (OLS)
 * predictor of 18 causal neighbours per region, its normal equations decayed by 1/256 per
 * sample, its weights refined by one integer Gauss-Seidel sweep after each sample; the bias
 * correction is quartered once more.
 *
 * Every sample has a bound n (the ROI bound where the mask is set, else the background
 * bound, plus 1 at the positions the grade picks: GRADE_ORDER below) and a step s = 2n + 1.
 * The prediction error e = x - Px is quantised to
 * q = sign(e) * floor((|e| + n) / s) and the sample is reconstructed as
 * clamp(Px + q * s, 0, MAXVAL), within n of x; in forms 2 and 3 the encoder takes q - 1 or q + 1
 * instead where that level clamps to x exactly. With a dead zone D the encoder rounds a
 * background sample's |e| toward zero by up to D more, (|e| + n - D) / s, so that sample
 * is within n + D of x (the decoder does not need D). Neighbours, sub-predictor errors, bias
 * sums and contexts all use the reconstructed samples, so encoder and decoder model every
 * sample identically. Each region (background, ROI) has its own model; activity contexts are
 * measured in units of the sample's own step, so they mean the same at every bound.
 * Everything is integer arithmetic. */
#include <stdlib.h>
#include <string.h>
#include "cm_coder.h"
#include "cm_common.h"

#define NPRED_MAX 13
#define NQ 48            /* error-energy classes */
#define NTEX 27          /* texture classes: three neighbour-difference signs */
#define NBIAS ((NQ / 2) * NTEX)
#define NFRAC 5          /* |prediction fraction| in eighths: 0..4 */
#define KMAX 18          /* bit lengths of magnitudes: 0..17 */
#define BIAS_LIMIT 64
#define PAD 3          /* columns either side and rows above a padded plane */
#define NPAT 144
#define NFLAT 3          /* 0: textured, 1: every gradient within the bound, 2: equal */
#define NRUN 12          /* classes of the run of zero residuals to the left */
#define NZIN 4           /* inputs of the zero-flag mixer */
#define NMIXN 6          /* mixer inputs: up to five contexts and (form 1) a constant */

/* Form 1 (coder 4's near-lossless form, spec 16A.12) */
#define NSPR 12          /* sub-predictor spread classes */
#define NRE 9            /* reference-plane residual classes */
#define NREK 12          /* APM classes of the unary bits */
#define BIAS_LIMIT1 2048

/* Form 3: the OLS sub-predictor (spec 16A.14) */
#define NOLS 18          /* inputs: causal neighbours up to three rows up and across */
#define OLS_DECAY 8      /* the normal equations decay by 2^-8 per sample */
#define OLS_Q 16         /* weights in Q16 */
#define OLS_WMAX (1 << 19)
#define OLS_TOP 30       /* the equations are shifted to at most 30 bits for the solve */
#define NOLEAD 9         /* classes of the OLS prediction's lead over the final prediction */

/* The grade G (0..15) raises the background bound by 1 at the tile positions (y, x) with
   GRADE_ORDER[y % 4][x % 4] < G: G/16 of the background, spread evenly (spec 8.7). */
static const uint8_t GRADE_ORDER[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9},
                                          {15, 7, 13, 5}};

typedef struct {
    int32_t w[NMIXN];
} nm_mixer;

typedef struct {         /* a region's OLS predictor: R = sum of in in^T, b = sum of in v */
    int64_t r[NOLS][NOLS];   /* symmetric */
    int64_t b[NOLS];
    int32_t w[NOLS];
} nm_ols;

/* (dy, dx) of the OLS inputs */
static const int8_t OLS_AT[NOLS][2] = {
    {-1, 0}, {0, -1}, {-1, -1}, {-1, 1}, {0, -2}, {-2, 0}, {-2, 1}, {-1, -2}, {-1, 2},
    {-2, -1}, {-2, -2}, {-2, 2}, {0, -3}, {-1, 3}, {-3, 0}, {-3, -1}, {-3, 1}, {-2, 3}};

typedef struct {
    rc_ctx zero[NQ][NFLAT][NFRAC];
    rc_ctx zero2[NQ][NFRAC];
    rc_ctx zero3[NPAT][NFRAC];
    rc_ctx zero4[NRUN][8][NFLAT];
    rc_ctx sign[NQ][NFRAC];
    rc_ctx sign2[9][NFRAC];
    rc_ctx sign3[NTEX][NFRAC];
    rc_ctx kbit[NQ][KMAX];
    rc_ctx kbit2[NQ][KMAX];
    rc_ctx kbit3[KMAX][KMAX][KMAX];
    rc_ctx mant1[NQ][KMAX];
    rc_ctx mant2[KMAX][2];
    rc_ctx mrest[KMAX][KMAX];
    /* form 1 only */
    rc_ctx zero5[NSPR][NFRAC];
    rc_ctx sign4[NRE][NFRAC];
    rc_ctx kbit4[NSPR][KMAX];
    rc_ctx mant1b[NQ][KMAX];
    rc_ctx mant1c[KMAX][KMAX];
    rc_ctx mant1d[NSPR][KMAX];
    /* form 3 only */
    rc_ctx sign5[NOLEAD][NFRAC];
    int32_t bsum[NBIAS];
    int32_t bcnt[NBIAS];
    nm_mixer mzero[NQ];
    nm_mixer msign[NFRAC];
    nm_mixer mkbit[KMAX];
    /* form 1 only */
    nm_mixer nmant[KMAX];
    cm_apm azero[NQ][NFRAC];
    cm_apm asign[9][NFRAC];
    cm_apm akbit[KMAX][NREK];
    cm_apm amant[KMAX];
    /* form 3 only */
    nm_ols ols;
    /* the region's bound */
    int32_t n;
} nm_model;

/* A decision from `k` adaptive contexts mixed in the logistic domain (16A.4 with k inputs). */
static inline int mixed_n(cm_io *io, rc_ctx **c, int k, nm_mixer *mx, int bit) {
    return code_mixed_k(io, c, k, 0, mx->w, bit);
}

/* A form-1 decision: `k` adaptive contexts and a constant input mixed in the logistic domain,
   the mixer's probability averaged with an APM row's refinement of it (16A.11's mixed4 with
   k contexts). */
static inline int mixed_apm(cm_io *io, rc_ctx **c, int k, nm_mixer *mx, cm_apm *ap, int bit) {
    int32_t st[NMIXN], p12, err;
    int64_t d64 = 0;
    int i;
    for (i = 0; i < k; i++) {
        st[i] = rmc_cm_stretch_tab[c[i]->p >> 4];
        d64 += (int64_t)mx->w[i] * st[i];
    }
    st[k] = 256;
    d64 += (int64_t)mx->w[k] * 256;
    bit = apm_code(io, d64, ap, &p12, bit);
    err = (bit << 12) - p12;
    for (i = 0; i <= k; i++) {
        int32_t w = mx->w[i] + asr32(st[i] * err, 11);
        mx->w[i] = w > MIX_WMAX ? MIX_WMAX : (w < -MIX_WMAX ? -MIX_WMAX : w);
    }
    for (i = 0; i < k; i++) rc_ctx_update(c[i], bit);
    return bit;
}

static void model_init(nm_model *m, int32_t n, int form) {
    const int nsign = form >= 3 ? 5 : 4;   /* the sign's contexts */
    int i, j, k;
    rc_ctx *all = &m->zero[0][0][0];
    size_t cnt = (size_t)((rc_ctx *)&m->bsum - all);
    for (i = 0; i < (int)cnt; i++) rc_ctx_init(&all[i], 6);
    for (i = 0; i < KMAX; i++)
        for (j = 0; j < KMAX; j++) m->mrest[i][j].lim = 7;
    memset(m->bsum, 0, sizeof m->bsum);
    memset(m->bcnt, 0, sizeof m->bcnt);
    for (i = 0; i < NQ; i++)
        for (k = 0; k < NMIXN; k++) m->mzero[i].w[k] = 16384;
    for (i = 0; i < NFRAC; i++)
        for (k = 0; k < NMIXN; k++) m->msign[i].w[k] = k < 3 ? 22000 : 0;
    for (i = 0; i < KMAX; i++)
        for (k = 0; k < NMIXN; k++) m->mkbit[i].w[k] = k < 3 ? 22000 : 0;
    if (form) {   /* every context lim 7; every mixer 16384 per context, 0 for the constant */
        nm_mixer *mx = m->mzero;
        size_t nm = (size_t)((nm_mixer *)&m->azero - mx);
        cm_apm *ap = &m->azero[0][0];
        size_t na = (sizeof m->azero + sizeof m->asign + sizeof m->akbit + sizeof m->amant) /
                    sizeof *ap;
        for (i = 0; i < (int)cnt; i++) all[i].lim = 7;
        for (i = 0; i < (int)nm; i++)
            for (k = 0; k < NMIXN; k++) mx[i].w[k] = 0;
        for (i = 0; i < NQ; i++)
            for (k = 0; k < 5; k++) m->mzero[i].w[k] = 16384;
        for (i = 0; i < NFRAC; i++)
            for (k = 0; k < nsign; k++) m->msign[i].w[k] = 16384;
        for (i = 0; i < KMAX; i++)
            for (k = 0; k < 4; k++) m->mkbit[i].w[k] = m->nmant[i].w[k] = 16384;
        for (i = 0; i < (int)na; i++) apm_init(&ap[i]);
    }
    memset(&m->ols, 0, sizeof m->ols);
    m->n = n;
}

static inline void ols_inputs(int32_t *in, const int32_t *r, ptrdiff_t S) {
    int i;
    for (i = 0; i < NOLS; i++) in[i] = r[OLS_AT[i][0] * S + OLS_AT[i][1]];
}

/* The OLS sub-prediction (x8): floor(sum w[i] in[i] / 2^13), clamped to 0..8 MAXVAL. */
static inline int32_t ols_predict(const nm_ols *o, const int32_t *in, int32_t max8) {
    int64_t a = 0;
    int i;
    for (i = 0; i < NOLS; i++) a += (int64_t)o->w[i] * in[i];
    return clampi(floor_shift(a, OLS_Q - 3), max8);
}

static inline int bit_length64(uint64_t v) { return v ? 64 - __builtin_clzll(v) : 0; }

/* After a sample decodes to v: decay and add to the normal equations, shift them to at most
   OLS_TOP bits, and run one Gauss-Seidel sweep on the weights (division truncates). Every
   term is non-negative (samples are), so >> is the floor shift. */
static void ols_update(nm_ols *o, const int32_t *in, int32_t v) {
    int64_t rs[NOLS][NOLS], top = 0;
    int64_t (*a)[NOLS] = o->r;
    int i, j, sh;
    uint32_t u[NOLS];   /* unsigned: the loop below then vectorises */
    for (j = 0; j < NOLS; j++) u[j] = (uint32_t)in[j];
    for (i = 0; i < NOLS; i++) {
        const uint64_t x = u[i];
        uint64_t *row = (uint64_t *)o->r[i];
        for (j = 0; j < NOLS; j++) row[j] += x * u[j] - (row[j] >> OLS_DECAY);
        o->b[i] += (int64_t)x * v - (o->b[i] >> OLS_DECAY);
        if (o->r[i][i] > top) top = o->r[i][i];
    }
    sh = bit_length64((uint64_t)top) - OLS_TOP;
    if (sh > 0) {
        for (i = 0; i < NOLS; i++)
            for (j = 0; j < NOLS; j++) rs[i][j] = o->r[i][j] >> sh;
        a = rs;
    } else sh = 0;
    for (i = 0; i < NOLS; i++) {
        const int64_t *row = a[i];
        int64_t num = (o->b[i] >> sh) * ((int64_t)1 << OLS_Q), q;
        for (j = 0; j < NOLS; j++) num -= row[j] * o->w[j];
        num += row[i] * o->w[i];
        q = num / (row[i] + 1);
        o->w[i] = (int32_t)(q > OLS_WMAX ? OLS_WMAX : (q < -OLS_WMAX ? -OLS_WMAX : q));
    }
}

static inline int energy_class(uint32_t e) { return energy_class_n(e, NQ); }

/* The bound of the sample at tile position (y, x): the ROI model's where `roi`, else the
   background's, + 1 where the grade raises it (spec 8.7). Its step is 2n + 1. */
static inline int32_t sample_bound(const nm_model *mods, int roi, int grade, ptrdiff_t y,
                                   ptrdiff_t x) {
    return roi ? mods[1].n : mods[0].n + (grade > GRADE_ORDER[y & 3][x & 3]);
}

/* Form 3: the class 0..8 of d = (OLS prediction) - P8, both in eighths of a sample, against
   the step s: 4 when |d| < s, then 5..8 (3..0 for d < 0) from s, 4 s, 8 s and 16 s on. */
static inline int lead_class(int32_t d, int32_t s) {
    const int32_t a = d < 0 ? -d : d;
    const int c = a >= 16 * s ? 4 : a >= 8 * s ? 3 : a >= 4 * s ? 2 : a >= s ? 1 : 0;
    return d < 0 ? 4 - c : 4 + c;
}

static inline int run_class(uint32_t r) {
    if (r < 6) return (int)r;
    if (r < 8) return 6;
    if (r < 12) return 7;
    if (r < 16) return 8;
    if (r < 32) return 9;
    if (r < 64) return 10;
    return 11;
}

/* Code one plane of a tile. `pl` is the padded plane (stride w + 2*PAD, rows h + PAD); the
 * encoder passes the original samples in `src` and gets the reconstruction in `pl`, the
 * decoder gets it there too. `err` holds the reconstructed residual v - Px per sample. */
static int code_plane_near(cm_io *io, nm_model *mods, int32_t *pl, int32_t *err,
                           const int32_t *ref, const int32_t *referr, const int32_t *src,
                           const uint8_t *mask, int split, int grade, int deadzone,
                           uint32_t w, uint32_t h, int bits, const int16_t *wt, int nwt,
                           uint32_t *perr, const int form) {
    const ptrdiff_t S = (ptrdiff_t)w + 2 * PAD;
    const int32_t maxval = (int32_t)((1u << bits) - 1);
    const int32_t max8 = maxval * 8;
    const int npred0 = ref ? 8 : 6;
    const int ols = form >= 3;
    const int npred = npred0 + (form ? (ref ? 4 : 3) : 0) + ols;
    const int32_t blim = form ? BIAS_LIMIT1 : BIAS_LIMIT;
    ptrdiff_t x, y;
    int i, b;
    int32_t s00;

    /* first sample: floor((x + n) / s) in the bits of floor((MAXVAL + n) / s); forms 2
     * and 3: of ceil(MAXVAL / s), MAXVAL taking the top level */
    {
        const int roi = mask ? mask[0] != 0 : 0;
        const int32_t n = sample_bound(mods, roi, grade, 0, 0), s = 2 * n + 1;
        int32_t top = form >= 2 ? (maxval + s - 1) / s : (maxval + n) / s, qv = 0;
        int nb = bit_length((uint32_t)top);
        int32_t want = src ? (src[0] + n) / s : 0;
        if (form >= 2 && src && src[0] == maxval) want = top;
        for (b = nb - 1; b >= 0; b--) qv |= code_direct(io, (int)((want >> b) & 1)) << b;
        if (qv > top) return RMC_ERR_CORRUPT;
        s00 = qv * s;
        if (s00 > maxval) s00 = maxval;
        if (src && abs(s00 - src[0]) > n) return RMC_ERR_CORRUPT;   /* cannot happen */
    }
    for (y = 0; y < PAD; y++)
        for (x = 0; x < S; x++) pl[y * S + x] = s00;
    for (x = 0; x <= PAD; x++) pl[PAD * S + x] = s00;
    err[PAD * S + PAD] = 0;
    memset(perr, 0, sizeof(uint32_t) * 2 * NPRED_MAX * (size_t)S);

    for (y = 0; y < (ptrdiff_t)h; y++) {
        int32_t *row = pl + (y + PAD) * S + PAD;
        int32_t *erow = err + (y + PAD) * S + PAD;
        const int32_t *rrow = ref ? ref + (y + PAD) * S + PAD : NULL;
        const int32_t *rerow = referr ? referr + (y + PAD) * S + PAD : NULL;
        const uint8_t *mrow = mask ? mask + (size_t)y * w : NULL;
        uint32_t *pcur = perr + (size_t)(y & 1) * NPRED_MAX * S;
        const uint32_t *pprev = perr + (size_t)((y + 1) & 1) * NPRED_MAX * S;
        uint32_t zrun = 0;
        const int32_t *eu2 = erow - 2 * S;
        for (x = (y == 0); x < (ptrdiff_t)w; x++) {
            const int roi = mrow ? mrow[x] != 0 : 0;
            nm_model *m = &mods[roi & split];
            const int32_t n = sample_bound(mods, roi, grade, y, x), s = 2 * n + 1;
            const int32_t *r = row + x;
            const int32_t N = r[-S], W = r[-1], NW = r[-S - 1], NE = r[-S + 1];
            int32_t p[NPRED_MAX];
            uint64_t wsum = 0, acc = 0;
            int32_t blend8, P8, Px, frac, fc, q = 0, v, lo, hi;
            int lead = 4, qc, t, bi, flat, flip, zero, qm, pat, sg, zp, spr = 0, rf = 0, rek = 0;
            uint32_t E, G;
            const int32_t *eu = erow + x - S;
            const uint32_t aN = ((uint32_t)abs(eu[0]) + n) / s,
                           aW = ((uint32_t)abs(erow[x - 1]) + n) / s,
                           aNW = ((uint32_t)abs(eu[-1]) + n) / s,
                           aNE = ((uint32_t)abs(eu[1]) + n) / s;
            uint32_t esmin = 0xFFFFFFFFu;
            rc_ctx *in[NMIXN];
            int32_t oin[NOLS];

            cm_subpredictors(p, r, S, N, W, NW, NE, wt, nwt, ref ? rrow + x : NULL, max8);
            if (form) {   /* extrapolations two back and (p >= 1) the reference sample */
                cm_extrapolations(p + npred0, r, S, N, W, NE, max8);
                if (ref) p[npred0 + 3] = 8 * rrow[x];
            }
            if (ols) {
                ols_inputs(oin, r, S);
                p[npred - 1] = ols_predict(&m->ols, oin, max8);
            }
            for (i = 0; i < npred; i++) {
                const uint32_t *pe = pprev + (size_t)i * S + PAD + x;
                const uint32_t *pc = pcur + (size_t)i * S + PAD + x;
                uint32_t es = pe[0] + pe[-1] + pe[1] + pc[-1];
                uint64_t wi;
                if (form) {
                    es += pe[2] + pc[-2];
                    wi = cm_inverse_square(es);
                } else wi = ((uint64_t)1 << 24) / ((uint64_t)es + 1);
                if (es < esmin) esmin = es;
                wsum += wi;
                acc += wi * (uint64_t)p[i];
            }
            blend8 = (int32_t)((acc + wsum / 2) / wsum);
            if (form) {
                spr = energy_class_n(cm_spread(p, npred) / (uint32_t)s, NSPR);
                if (rerow) {
                    int32_t re = rerow[x];
                    uint32_t ra = ((uint32_t)abs(re) + n) / s;
                    int ke = bit_length(ra);
                    rf = ra == 0 ? 0 : (re > 0 ? 1 : 2) + 2 * (ke > 4 ? 3 : ke - 1);
                    rek = ke < NREK ? ke : NREK - 1;
                } else {
                    int kk = bit_length(((uint32_t)abs(erow[x - 2]) + n) / s +
                                        ((uint32_t)abs(eu2[x]) + n) / s);
                    rek = kk < NREK ? kk : NREK - 1;
                }
            }

            G = (uint32_t)abs(N - NW) + (uint32_t)abs(W - NW) + (uint32_t)abs(NE - N);
            E = 2 * (aN + aW) + aNW + aNE + (2 * G) / (uint32_t)s;
            if (rerow) E += 2 * (((uint32_t)abs(rerow[x]) + n) / s);
            if (form)
                E += ((uint32_t)abs(erow[x - 2]) + n) / s + ((uint32_t)abs(eu2[x]) + n) / s +
                     ((uint32_t)abs(eu2[x - 1]) + n) / s + ((uint32_t)abs(eu2[x + 1]) + n) / s;
            qc = energy_class(E);
            qm = energy_class((esmin >> 3) / (uint32_t)s);
            pat = (aW < 3 ? aW : 3) + 4 * (aN < 3 ? aN : 3) + 16 * (aNW < 2 ? aNW : 2) +
                  48 * (aNE < 2 ? aNE : 2);
            sg = (sgn3(erow[x - 1]) + 1) * 3 + sgn3(eu[0]) + 1;
            t = (sgn3(N - NW) + 1) * 9 + (sgn3(W - NW) + 1) * 3 + (sgn3(NE - N) + 1);
            bi = (form ? qc >> 2 : qc >> 1) * NTEX + t;
            if (N == W && W == NW && NW == NE) flat = 2;
            else flat = (abs(NE - N) <= n && abs(N - NW) <= n && abs(NW - W) <= n) ? 1 : 0;
            zp = (aN == 0) + 2 * (aNE == 0) + 4 * (aNW == 0);
            {
                int32_t c = m->bcnt[bi], sm = m->bsum[bi], corr = 0;
                if (c) corr = sm >= 0 ? (sm + c / 2) / c : -((-sm + c / 2) / c);
                if (n > 0) corr /= 4;          /* learnt from decoded samples: damped */
                if (flat == 2) corr = 0;       /* a flat neighbourhood predicts itself */
                if (ols) corr /= 4;            /* form 3: the OLS predictor corrects too */
                P8 = clampi((int64_t)blend8 + corr, max8);
            }
            Px = (P8 + 4) >> 3;
            if (ols) lead = lead_class(p[npred - 1] - P8, s);
            frac = P8 - 8 * Px;
            flip = frac < 0;
            fc = flip ? -frac : frac;
            /* the levels q in [lo, hi]: forms 0 and 1 keep Px + q * s within
             * [-n, MAXVAL + n], forms 2 and 3 let the extreme levels reach the clamps */
            if (form >= 2) {
                lo = -((Px + s - 1) / s);
                hi = (maxval - Px + s - 1) / s;
            } else {
                lo = -((Px + n) / s);
                hi = (maxval - Px + n) / s;
            }
            if (!io->dec) {
                int32_t xv = src[(size_t)y * w + x], e = xv - Px;
                if (deadzone && !roi && !(form >= 2 && (xv == 0 || xv == maxval))) {
                    /* toward zero by up to the dead zone more (forms 2, 3: not at the extremes,
                       which stay exact) */
                    int32_t a = (e > 0 ? e : -e) + n - deadzone;
                    q = a > 0 ? a / s : 0;
                    if (e < 0) q = -q;
                } else q = e > 0 ? (e + n) / s : -((n - e) / s);
                if (form >= 2 && clampi(Px + q * s, maxval) != xv) {   /* 0 and MAXVAL: */
                    if (q > lo && clampi(Px + (q - 1) * s, maxval) == xv) q--;  /* exact */
                    else if (q < hi && clampi(Px + (q + 1) * s, maxval) == xv) q++;
                }
            }
            if (flip) {
                int32_t tmp = lo;
                lead = NOLEAD - 1 - lead;
                lo = -hi;
                hi = -tmp;
                sg = 8 - sg;
                if (rf) rf += (rf & 1) ? 1 : -1;
            }
            if (io->dec) q = 0;
            else if (flip) q = -q;
            if (lo == 0 && hi == 0) zero = 1;
            else {
                in[0] = &m->zero[qc][flat][fc];
                in[1] = &m->zero2[qm][fc];
                in[2] = &m->zero3[pat][fc];
                in[3] = &m->zero4[run_class(zrun)][zp][flat];
                if (form) {
                    in[4] = &m->zero5[spr][fc];
                    zero = mixed_apm(io, in, 5, &m->mzero[qc], &m->azero[qm][fc], q == 0);
                } else zero = mixed_n(io, in, NZIN, &m->mzero[qc], q == 0);
            }
            if (zero) q = 0;
            else {
                int pos, kW = bit_length(aW), kN = bit_length(aN), k, j, kcap;
                uint32_t a, lim;
                if (lo == 0) pos = 1;
                else if (hi == 0) pos = 0;
                else {
                    in[0] = &m->sign[qc][fc];
                    in[1] = &m->sign2[sg][fc];
                    in[2] = &m->sign3[t][fc];
                    in[3] = &m->sign4[rf][fc];
                    in[4] = &m->sign5[lead][fc];
                    pos = form ? mixed_apm(io, in, ols ? 5 : 4, &m->msign[fc], &m->asign[sg][fc],
                                           q > 0)
                               : mixed_n(io, in, 3, &m->msign[fc], q > 0);
                }
                lim = (uint32_t)(pos ? hi : -lo);      /* |q| <= lim, lim >= 1 */
                kcap = bit_length(lim - 1);
                if (kW >= KMAX) kW = KMAX - 1;
                if (kN >= KMAX) kN = KMAX - 1;
                a = io->dec ? 0 : (uint32_t)(q > 0 ? q : -q) - 1;
                k = bit_length(a);
                if (io->dec) {
                    k = 0;
                    for (;;) {
                        if (k >= kcap) break;
                        in[0] = &m->kbit[qc][k];
                        in[1] = &m->kbit2[qm][k];
                        in[2] = &m->kbit3[k][kW][kN];
                        in[3] = &m->kbit4[spr][k];
                        if (!(form ? mixed_apm(io, in, 4, &m->mkbit[k], &m->akbit[k][rek], 1)
                                   : mixed_n(io, in, 3, &m->mkbit[k], 1)))
                            break;
                        k++;
                    }
                } else {
                    for (j = 0; j <= k && j < kcap; j++) {
                        in[0] = &m->kbit[qc][j];
                        in[1] = &m->kbit2[qm][j];
                        in[2] = &m->kbit3[j][kW][kN];
                        in[3] = &m->kbit4[spr][j];
                        if (form) mixed_apm(io, in, 4, &m->mkbit[j], &m->akbit[j][rek], j < k);
                        else mixed_n(io, in, 3, &m->mkbit[j], j < k);
                    }
                }
                if (k > 1) {
                    int b1 = (int)((a >> (k - 2)) & 1), bit;
                    if (form) {
                        in[0] = &m->mant1[qc][k];
                        in[1] = &m->mant1b[qm][k];
                        in[2] = &m->mant1c[k][kW];
                        in[3] = &m->mant1d[spr][k];
                        bit = mixed_apm(io, in, 4, &m->nmant[k], &m->amant[k], b1);
                    } else bit = code_bit(io, &m->mant1[qc][k], b1);
                    a = code_mantissa_tail(io, m->mant2[k], m->mrest[k], a, k, bit);
                } else a = (uint32_t)k;
                if (a >= lim) return RMC_ERR_CORRUPT;
                q = pos ? (int32_t)a + 1 : -(int32_t)a - 1;
            }
            if (flip) q = -q;
            v = Px + q * s;
            if (v < 0) v = 0;
            else if (v > maxval) v = maxval;
            if (!io->dec && abs(v - src[(size_t)y * w + x]) > n + (roi ? 0 : deadzone))
                return RMC_ERR_CORRUPT;   /* cannot happen */
            row[x] = v;
            if (ols) ols_update(&m->ols, oin, v);
            erow[x] = v - Px;
            for (i = 0; i < npred; i++) {
                int32_t d = p[i] - 8 * v;
                pcur[(size_t)i * S + PAD + x] = (uint32_t)(d < 0 ? -d : d);
            }
            if (q != 0 || n == 0) {    /* a zero residual says nothing of the bias */
                m->bsum[bi] += 8 * v - blend8;
                if (++m->bcnt[bi] == blim) {
                    m->bsum[bi] /= 2;
                    m->bcnt[bi] = blim / 2;
                }
            }
            zrun = q == 0 ? zrun + 1 : 0;
            if (io->dec && (x & 1023) == 0 && io->d.zero_fill > 16) return RMC_ERR_TRUNCATED;
        }
        row[w] = row[w + 1] = row[w + 2] = row[w - 1];
        if (y + 1 < (ptrdiff_t)h) row[S - 3] = row[S - 2] = row[S - 1] = row[0];
        if (!io->dec && io->enc.err) return io->enc.err;
    }
    return RMC_OK;
}

static int run_planes_near(cm_io *io, const int32_t *samples, uint32_t w, uint32_t h,
                           int planes, const int *bits, const int16_t *weights,
                           const int *nweights, const uint8_t *mask, int32_t near_bg,
                           int32_t near_roi, int grade, int deadzone, int form,
                           int32_t *out) {
    size_t plane_size = (size_t)w * h, S = (size_t)w + 2 * PAD, n = S * ((size_t)h + PAD);
    int32_t *pl[RMC_MAX_PLANES] = {NULL}, *err[RMC_MAX_PLANES] = {NULL};
    uint32_t *perr;
    nm_model *mods;
    const int16_t *wt = weights;
    /* the mask picks the model only where the bounds differ; it picks the bound wherever
       they differ or the grade or the dead zone raises the background's */
    const uint8_t *m = near_bg != near_roi || grade || deadzone ? mask : NULL;
    int p, st = RMC_OK;
    uint32_t y;
    rmc_cm_tables_init();
    perr = (uint32_t *)malloc(sizeof(uint32_t) * 2 * NPRED_MAX * S);
    mods = (nm_model *)malloc(2 * sizeof *mods);
    for (p = 0; p < planes; p++) {
        pl[p] = (int32_t *)malloc(n * sizeof(int32_t));
        err[p] = (int32_t *)calloc(n, sizeof(int32_t));
        if (!pl[p] || !err[p]) st = RMC_ERR_NOMEM;
    }
    if (!perr || !mods) st = RMC_ERR_NOMEM;
    for (p = 0; p < planes && st == RMC_OK; p++) {
        const int32_t *src = samples ? samples + plane_size * (size_t)p : NULL;
        model_init(&mods[0], near_bg, form);
        model_init(&mods[1], near_roi, form);
        st = code_plane_near(io, mods, pl[p], err[p], p ? pl[p - 1] : NULL,
                             p ? err[p - 1] : NULL, src, m, near_bg != near_roi, grade,
                             deadzone, w, h, bits[p], wt, nweights[p], perr, form);
        wt += nweights[p];
        if (st == RMC_OK && out)
            for (y = 0; y < h; y++)
                memcpy(out + plane_size * (size_t)p + (size_t)y * w,
                       pl[p] + (y + PAD) * S + PAD, w * sizeof(int32_t));
    }
    for (p = 0; p < planes; p++) { free(pl[p]); free(err[p]); }
    free(perr);
    free(mods);
    return st;
}

int rmc_cm_encode_near(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                       const int *bits, const int16_t *weights, const int *nweights,
                       const uint8_t *mask, int near_bg, int near_roi, int grade,
                       int deadzone, int form, int32_t *recon, rmc_buffer *out) {
    cm_io io;
    int st = rmc_cm_begin_encode(&io, planes, weights, nweights);
    if (st != RMC_OK) return st;
    st = run_planes_near(&io, samples, width, height, planes, bits, weights, nweights, mask,
                         near_bg, near_roi, grade, deadzone, form, recon);
    return rmc_cm_finish_encode(&io, st, out);
}

int rmc_cm_decode_near(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                       int planes, const int *bits, const uint8_t *mask, int near_bg,
                       int near_roi, int grade, int form, int32_t *samples) {
    cm_io io;
    int16_t weights[RMC_MAX_PLANES * (RMC_CM_SPATIAL_INPUTS + RMC_CM_REF_INPUTS)];
    int nweights[RMC_MAX_PLANES];
    int st = rmc_cm_begin_decode(&io, data, size, planes, weights, nweights);
    if (st != RMC_OK) return st;
    st = run_planes_near(&io, NULL, width, height, planes, bits, weights, nweights, mask,
                         near_bg, near_roi, grade, 0, form, samples);
    return rmc_cm_finish_decode(&io, st);
}
