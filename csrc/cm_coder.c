/* Coder 3: blended prediction and context-modelled binary range coding.
 *
 * Per sample: up to eight sub-predictors (classical ones, the stored linear predictor and,
 * after the first plane, two inter-plane ones) are blended with weights inversely
 * proportional to their recent errors at the causal neighbours; a per-context mean error
 * (bias) corrects the blend; the residual is binarised (zero flag, sign, bit length in
 * unary, mantissa) and each bit is range coded with an adaptive context. Encoder and decoder
 * run the same function, so they model every sample identically.
 * Everything is integer arithmetic; spec/rmc-v1.md, "Coder 3", defines it. */
#include <stdlib.h>
#include <string.h>
#include "cm_coder.h"
#include "cm_common.h"

#define NPRED_MAX 11
#define NQ 48            /* error-energy classes */
#define NTEX 27          /* texture classes: three neighbour-difference signs */
#define NBIAS ((NQ / 2) * NTEX)
#define NFRAC 5          /* |prediction fraction| in eighths: 0..4 */
#define KMAX 18          /* bit lengths of magnitudes: 0..16 */
#define BIAS_LIMIT 64    /* bias counts are halved when they reach this */
#define PAD 2            /* padding columns each side and rows above */

#define NPAT 144         /* small neighbour-residual patterns */

/* Form 1 (coder 4, spec 16A.11) */
#define NSPR 12          /* sub-predictor spread classes */
#define NRE 9            /* reference-plane residual classes */
#define NREK 12          /* APM classes of the unary bits: residual bit lengths 0..11 */
#define NIN 5            /* mixer inputs: four contexts and a constant */
#define NZR 8            /* zero-residual run classes */
#define BIAS_LIMIT1 2048 /* bias counts are halved when they reach this */

typedef struct {
    int32_t w[NIN];
} cm_mixer4;

/* rc_ctx_update for a context whose limit is 7 (every form-1 context): the same shifts, with
   the count saturating at 63 instead of 255. */
static const uint8_t shift7[64] = {
    1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7};

static inline void ctx_update7(rc_ctx *c, int bit) {
    int s = shift7[c->n];
    c->n += c->n < 63;
    if (bit) c->p = (uint16_t)(c->p + ((65536 - (uint32_t)c->p) >> s));
    else c->p = (uint16_t)(c->p - (c->p >> s));
}

/* A form-1 decision: four adaptive contexts and a constant input mixed in the logistic
   domain; the mixer's probability averaged with an APM row's refinement of it. */
static inline int code_mix4(cm_io *io, rc_ctx *c0, rc_ctx *c1, rc_ctx *c2, rc_ctx *c3,
                            cm_mixer4 *mx, cm_apm *ap, int bit) {
    int32_t st[NIN], p12, err;
    int64_t d64 = 0;
    int i;
    st[0] = rmc_cm_stretch_tab[c0->p >> 4];
    st[1] = rmc_cm_stretch_tab[c1->p >> 4];
    st[2] = rmc_cm_stretch_tab[c2->p >> 4];
    st[3] = rmc_cm_stretch_tab[c3->p >> 4];
    st[4] = 256;
    for (i = 0; i < NIN; i++) d64 += (int64_t)mx->w[i] * st[i];
    bit = apm_code(io, d64, ap, &p12, bit);
    err = (bit << 12) - p12;
    for (i = 0; i < NIN; i++) {
        int32_t v = mx->w[i] + asr32(st[i] * err, 11);
        mx->w[i] = v > MIX_WMAX ? MIX_WMAX : (v < -MIX_WMAX ? -MIX_WMAX : v);
    }
    ctx_update7(c0, bit);
    ctx_update7(c1, bit);
    ctx_update7(c2, bit);
    ctx_update7(c3, bit);
    return bit;
}

typedef struct {
    rc_ctx zero[NQ][2][NFRAC];
    rc_ctx zero2[NQ][NFRAC];
    rc_ctx zero3[NPAT][NFRAC];
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
    rc_ctx zero4[NSPR][NFRAC];
    rc_ctx zero5[NQ][2 * NZR][NFRAC];
    rc_ctx mant1b[NQ][KMAX];
    rc_ctx mant1c[KMAX][KMAX];
    rc_ctx mant1d[NSPR][KMAX];
    rc_ctx sign4[NRE][NFRAC];
    rc_ctx kbit4[NSPR][KMAX];
    int32_t bsum[NBIAS];
    int32_t bcnt[NBIAS];
    cm_mixer mzero[NQ];
    cm_mixer msign[NFRAC];
    cm_mixer mkbit[KMAX];
    /* form 1 only */
    cm_mixer4 nzero[NQ];
    cm_mixer4 nsign[NFRAC];
    cm_mixer4 nkbit[KMAX];
    cm_mixer4 nmant[KMAX];
    cm_apm azero[NQ][NFRAC];
    cm_apm asign[9][NFRAC];
    cm_apm akbit[KMAX][NREK];
    cm_apm amant[KMAX];
} cm_model;

/* Logistic domain: squash(d) = 4096 / (1 + e^(-d/256)) by interpolation in a 33-entry
 * table, stretch = its inverse; both integer, built once. */
static const int16_t squash_points[33] = {
    1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994,
    3348, 3607, 3785, 3901, 3975, 4024, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094};
int16_t rmc_cm_stretch_tab[4096];
int16_t rmc_cm_squash_tab[4096];
uint64_t rmc_cm_rsq_tab[512];

static int squash_calc(int d) {
    int i, f;
    if (d > 2047) return 4095;
    if (d < -2047) return 1;
    d += 2048;
    i = d >> 7;
    f = d & 127;
    return (squash_points[i] * (128 - f) + squash_points[i + 1] * f + 64) >> 7;
}

void rmc_cm_tables_init(void) {
    static volatile int done = 0;
    int x, v, pi = 0, i;
    if (done) return;
    for (x = -2048; x < 2048; x++) rmc_cm_squash_tab[x + 2048] = (int16_t)squash_calc(x);
    for (x = -2047; x <= 2047; x++) {
        v = squash_calc(x);
        for (i = pi; i <= v; i++) rmc_cm_stretch_tab[i] = (int16_t)x;
        pi = v + 1;
    }
    for (i = pi; i < 4096; i++) rmc_cm_stretch_tab[i] = 2047;
    for (i = CM_WCONST; i < 512; i++)
        rmc_cm_rsq_tab[i] = ((uint64_t)1 << 44) / ((uint64_t)i * i);
    done = 1;
}

static void model_init(cm_model *m, int form) {
    int i, j, k;
    rc_ctx *all = &m->zero[0][0][0];
    size_t n = (size_t)((rc_ctx *)&m->bsum - all);
    for (i = 0; i < (int)n; i++) rc_ctx_init(&all[i], 6);
    for (i = 0; i < NQ; i++)
        for (j = 0; j < 2; j++)
            for (k = 0; k < NFRAC; k++) m->zero[i][j][k].lim = 6;
    for (i = 0; i < KMAX; i++)
        for (j = 0; j < KMAX; j++) m->mrest[i][j].lim = 7;
    memset(m->bsum, 0, sizeof m->bsum);
    memset(m->bcnt, 0, sizeof m->bcnt);
    {
        cm_mixer *mx = m->mzero;
        size_t nm = sizeof m->mzero / sizeof *mx + sizeof m->msign / sizeof *mx +
                    sizeof m->mkbit / sizeof *mx;
        for (i = 0; i < (int)nm; i++)
            for (j = 0; j < NMIX; j++) mx[i].w[j] = 22000;
    }
    {
        cm_mixer4 *mx = m->nzero;
        size_t nm = (sizeof m->nzero + sizeof m->nsign + sizeof m->nkbit + sizeof m->nmant) /
                    sizeof *mx;
        cm_apm *ap = &m->azero[0][0];
        size_t na = (sizeof m->azero + sizeof m->asign + sizeof m->akbit + sizeof m->amant) / sizeof *ap;
        for (i = 0; i < (int)nm; i++) {
            for (j = 0; j < 4; j++) mx[i].w[j] = 16384;
            mx[i].w[4] = 0;
        }
        for (i = 0; i < (int)na; i++) apm_init(&ap[i]);
    }
    if (form)
        for (i = 0; i < (int)n; i++) all[i].lim = 7;
}

static inline int energy_class(uint32_t e) { return energy_class_n(e, NQ); }

/* Code one plane. `pl` is the padded plane (stride w + 2*PAD, rows h + PAD): the decoder
 * fills it, the encoder has it filled. `ref` is the padded reference plane or NULL; `err`
 * and `referr` hold |residual| per sample with the same layout. */
static inline int code_plane(cm_io *io, cm_model *m, int32_t *pl, int32_t *err,
                             const int32_t *ref, const int32_t *referr, const int32_t *src,
                             uint32_t w, uint32_t h, int bits, const int16_t *wt, int nwt,
                             uint32_t *perr, const int form) {
    const ptrdiff_t S = (ptrdiff_t)w + 2 * PAD;
    const int32_t maxval = (int32_t)((1u << bits) - 1);
    const int32_t max8 = maxval * 8;
    const int32_t half = (int32_t)(1u << (bits - 1));
    const int kmax = bits - 1;
    const int npred0 = ref ? 8 : 6;
    const int npred = npred0 + (form ? 3 : 0);
    const int32_t blim = form ? BIAS_LIMIT1 : BIAS_LIMIT;
    ptrdiff_t x, y;
    int i, b;
    int32_t s00;

    /* first sample: stored in `bits` equiprobable bits */
    s00 = 0;
    for (b = bits - 1; b >= 0; b--) {
        int bit = src ? (int)((src[0] >> b) & 1) : 0;
        s00 |= code_direct(io, bit) << b;
    }
    for (y = 0; y < PAD; y++)
        for (x = 0; x < S; x++) pl[y * S + x] = s00;
    pl[PAD * S + 0] = pl[PAD * S + 1] = pl[PAD * S + PAD] = s00;
    memset(perr, 0, sizeof(uint32_t) * 2 * NPRED_MAX * (size_t)S);

    for (y = 0; y < (ptrdiff_t)h; y++) {
        int32_t *row = pl + (y + PAD) * S + PAD;
        int32_t *erow = err + (y + PAD) * S + PAD;
        const int32_t *rrow = ref ? ref + (y + PAD) * S + PAD : NULL;
        const int32_t *rerow = referr ? referr + (y + PAD) * S + PAD : NULL;
        uint32_t *pcur = perr + (size_t)(y & 1) * NPRED_MAX * S;
        const uint32_t *pprev = perr + (size_t)((y + 1) & 1) * NPRED_MAX * S;
        int zrun = 0;
        for (x = (y == 0); x < (ptrdiff_t)w; x++) {
            const int32_t *r = row + x;
            const int32_t N = r[-S], W = r[-1], NW = r[-S - 1], NE = r[-S + 1];
            int32_t p[NPRED_MAX];
            uint64_t wsum = 0, acc = 0;
            int32_t blend8, P8, P, frac, fc, e, v;
            int q, t, bi, flat, flip, zero;
            uint32_t E;
            const int32_t *eu = erow + x - S;
            const uint32_t aN = (uint32_t)abs(eu[0]), aW = (uint32_t)abs(erow[x - 1]),
                           aNW = (uint32_t)abs(eu[-1]), aNE = (uint32_t)abs(eu[1]);
            uint32_t esmin = 0xFFFFFFFFu;
            int qm, pat, sg, spr = 0, rec = 0, rek = 0;

            cm_subpredictors(p, r, S, N, W, NW, NE, wt, nwt, ref ? rrow + x : NULL, max8);
            if (form) cm_extrapolations(p + npred0, r, S, N, W, NE, max8);
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
                spr = energy_class_n(cm_spread(p, npred), NSPR);
                if (rerow) {
                    int32_t re = rerow[x];
                    int ke = bit_length((uint32_t)abs(re));
                    rec = re == 0 ? 0 : (re > 0 ? 1 : 2) + 2 * (ke > 4 ? 3 : ke - 1);
                    rek = ke < NREK ? ke : NREK - 1;
                } else {   /* plane 0: the residuals at WW and NN */
                    int kk = bit_length((uint32_t)abs(erow[x - 2]) + (uint32_t)abs(eu[-S]));
                    rek = kk < NREK ? kk : NREK - 1;
                }
            }

            E = 2 * (aN + aW) + aNW + aNE +
                (uint32_t)abs(N - NW) + (uint32_t)abs(W - NW) + (uint32_t)abs(NE - N);
            if (rerow) E += 2 * (uint32_t)abs(rerow[x]);
            if (form)   /* residuals two back: WW, NN, NNW, NNE */
                E += (uint32_t)abs(erow[x - 2]) + (uint32_t)abs(eu[-S]) + (uint32_t)abs(eu[-S - 1]) +
                     (uint32_t)abs(eu[-S + 1]);
            q = energy_class(E);
            qm = energy_class(esmin >> 3);
            pat = (aW < 3 ? aW : 3) + 4 * (aN < 3 ? aN : 3) + 16 * (aNW < 2 ? aNW : 2) +
                  48 * (aNE < 2 ? aNE : 2);
            sg = (sgn3(erow[x - 1]) + 1) * 3 + sgn3(eu[0]) + 1;
            t = (sgn3(N - NW) + 1) * 9 + (sgn3(W - NW) + 1) * 3 + (sgn3(NE - N) + 1);
            bi = (q >> 1) * NTEX + t;
            if (form) bi = (q >> 2) * NTEX + t;   /* coarser, longer-lived */
            {
                int32_t c = m->bcnt[bi], s = m->bsum[bi], corr = 0;
                if (c) corr = s >= 0 ? (s + c / 2) / c : -((-s + c / 2) / c);
                P8 = clampi((int64_t)blend8 + corr, max8);
            }
            P = (P8 + 4) >> 3;
            frac = P8 - 8 * P;
            flip = frac < 0;
            fc = flip ? -frac : frac;
            flat = (N == W) & (W == NW) & (NW == NE);

            if (!io->dec) {
                e = src[(size_t)y * w + x] - P;
                if (e < -half) e += 2 * half;
                else if (e >= half) e -= 2 * half;
                if (flip) e = -e;
            } else e = 0;
            if (flip) sg = 8 - sg;
            if (flip && rec) rec = rec + ((rec & 1) ? 1 : -1);
            if (form) {
                zero = code_mix4(io, &m->zero5[q][flat + 2 * zrun][fc], &m->zero2[qm][fc], &m->zero3[pat][fc],
                                 &m->zero4[spr][fc], &m->nzero[q], &m->azero[qm][fc], e == 0);
            } else
                zero = code_mixed(io, &m->zero[q][flat][fc], &m->zero2[qm][fc], &m->zero3[pat][fc],
                                  &m->mzero[q], e == 0);
            if (zero) e = 0;
            else {
                int pos = form ? code_mix4(io, &m->sign[q][fc], &m->sign2[sg][fc], &m->sign3[t][fc],
                                           &m->sign4[rec][fc], &m->nsign[fc],
                                           &m->asign[sg][fc], e > 0)
                               : code_mixed(io, &m->sign[q][fc], &m->sign2[sg][fc],
                                            &m->sign3[t][fc], &m->msign[fc], e > 0);
                int kW = bit_length(aW), kN = bit_length(aN);
                uint32_t a = io->dec ? 0 : (uint32_t)(e > 0 ? e : -e) - 1;
                int k = bit_length(a), j;
#define KBIT(jj, b) (form ? code_mix4(io, &m->kbit[q][jj], &m->kbit2[qm][jj], &m->kbit3[jj][kW][kN], \
                                      &m->kbit4[spr][jj], &m->nkbit[jj], &m->akbit[jj][rek], b) \
                          : code_mixed(io, &m->kbit[q][jj], &m->kbit2[qm][jj], &m->kbit3[jj][kW][kN], \
                                       &m->mkbit[jj], b))
                if (io->dec) {
                    k = 0;
                    while (k < kmax && KBIT(k, 1)) k++;
                } else {
                    for (j = 0; j < k; j++) KBIT(j, 1);
                    if (k < kmax) KBIT(k, 0);
                }
#undef KBIT
                if (k > 1) {
                    int b1 = (int)((a >> (k - 2)) & 1);
                    int bit = form ? code_mix4(io, &m->mant1[q][k], &m->mant1b[qm][k], &m->mant1c[k][kW],
                                               &m->mant1d[spr][k], &m->nmant[k],
                                               &m->amant[k], b1)
                                   : code_bit(io, &m->mant1[q][k], b1);
                    a = code_mantissa_tail(io, m->mant2[k], m->mrest[k], a, k, bit);
                } else a = (uint32_t)k;
                e = pos ? (int32_t)a + 1 : -(int32_t)a - 1;
            }
            if (flip) e = -e;
            if (e < -half || e >= half) return RMC_ERR_CORRUPT;
            v = P + e;
            if (v < 0) v += 2 * half;
            else if (v > maxval) v -= 2 * half;
            row[x] = v;
            erow[x] = e;
            zrun = e ? 0 : (zrun < NZR - 1 ? zrun + 1 : NZR - 1);
            for (i = 0; i < npred; i++) {
                int32_t d = p[i] - 8 * v;
                pcur[(size_t)i * S + PAD + x] = (uint32_t)(d < 0 ? -d : d);
            }
            m->bsum[bi] += 8 * v - blend8;
            if (++m->bcnt[bi] == blim) {
                m->bsum[bi] /= 2;
                m->bcnt[bi] = blim / 2;
            }
            if (io->dec && (x & 1023) == 0 && io->d.zero_fill > 16) return RMC_ERR_TRUNCATED;
        }
        /* padding for the rows that follow */
        row[w] = row[w + 1] = row[w - 1];
        if (y + 1 < (ptrdiff_t)h) row[S - 2] = row[S - 1] = row[0];
        if (!io->dec && io->enc.err) return io->enc.err;
    }
    return RMC_OK;
}

typedef struct {
    int32_t *pl[RMC_MAX_PLANES];
    int32_t *err[RMC_MAX_PLANES];
    uint32_t *perr;
} cm_buffers;

static void free_buffers(cm_buffers *b) {
    int p;
    for (p = 0; p < RMC_MAX_PLANES; p++) { free(b->pl[p]); free(b->err[p]); }
    free(b->perr);
}

static int alloc_buffers(cm_buffers *b, uint32_t w, uint32_t h, int planes) {
    size_t S = (size_t)w + 2 * PAD, n = S * ((size_t)h + PAD);
    int p;
    memset(b, 0, sizeof *b);
    for (p = 0; p < planes; p++) {
        b->pl[p] = (int32_t *)malloc(n * sizeof(int32_t));
        b->err[p] = (int32_t *)calloc(n, sizeof(int32_t));
        if (!b->pl[p] || !b->err[p]) { free_buffers(b); return RMC_ERR_NOMEM; }
    }
    b->perr = (uint32_t *)malloc(sizeof(uint32_t) * 2 * NPRED_MAX * S);
    if (!b->perr) { free_buffers(b); return RMC_ERR_NOMEM; }
    return RMC_OK;
}

static int expected_weights(int plane) {
    return plane ? RMC_CM_SPATIAL_INPUTS + RMC_CM_REF_INPUTS : RMC_CM_SPATIAL_INPUTS;
}

static int run_planes(cm_io *io, const int32_t *samples, uint32_t w, uint32_t h, int planes,
                      const int *bits, const int16_t *weights, const int *nweights, int form,
                      int32_t *out) {
    cm_buffers b;
    cm_model *m;
    size_t plane_size = (size_t)w * h, S = (size_t)w + 2 * PAD;
    const int16_t *wt = weights;
    int p, st;
    uint32_t y;
    st = alloc_buffers(&b, w, h, planes);
    if (st != RMC_OK) return st;
    rmc_cm_tables_init();
    m = (cm_model *)malloc(sizeof *m);
    if (!m) { free_buffers(&b); return RMC_ERR_NOMEM; }
    for (p = 0; p < planes && st == RMC_OK; p++) {
        const int32_t *src = samples ? samples + plane_size * (size_t)p : NULL;
        model_init(m, form);
        if (src)
            for (y = 0; y < h; y++)
                memcpy(b.pl[p] + (y + PAD) * S + PAD, src + (size_t)y * w, w * sizeof(int32_t));
        if (form)
            st = code_plane(io, m, b.pl[p], b.err[p], p ? b.pl[p - 1] : NULL,
                            p ? b.err[p - 1] : NULL, src, w, h, bits[p], wt, nweights[p], b.perr, 1);
        else
            st = code_plane(io, m, b.pl[p], b.err[p], p ? b.pl[p - 1] : NULL,
                            p ? b.err[p - 1] : NULL, src, w, h, bits[p], wt, nweights[p], b.perr, 0);
        wt += nweights[p];
        if (st == RMC_OK && out)
            for (y = 0; y < h; y++)
                memcpy(out + plane_size * (size_t)p + (size_t)y * w,
                       b.pl[p] + (y + PAD) * S + PAD, w * sizeof(int32_t));
    }
    free(m);
    free_buffers(&b);
    return st;
}

int rmc_cm_put_weights(uint8_t *head, int planes, const int16_t *weights, const int *nweights) {
    int p, i, total = 0, hlen = 0;
    for (p = 0; p < planes; p++) {
        if (nweights[p] != 0 && nweights[p] != expected_weights(p)) return -1;
        head[hlen++] = (uint8_t)nweights[p];
        for (i = 0; i < nweights[p]; i++) {
            uint16_t v = (uint16_t)weights[total + i];
            head[hlen++] = (uint8_t)(v >> 8);
            head[hlen++] = (uint8_t)v;
        }
        total += nweights[p];
    }
    return hlen;
}

int rmc_cm_get_weights(const uint8_t *data, size_t size, int planes, int16_t *weights,
                       int *nweights, size_t *pos) {
    int p, i, total = 0;
    for (p = 0; p < planes; p++) {
        if (*pos >= size) return RMC_ERR_TRUNCATED;
        nweights[p] = data[(*pos)++];
        if (nweights[p] != 0 && nweights[p] != expected_weights(p)) return RMC_ERR_CORRUPT;
        if (size - *pos < 2 * (size_t)nweights[p]) return RMC_ERR_TRUNCATED;
        for (i = 0; i < nweights[p]; i++, *pos += 2)
            weights[total + i] = (int16_t)(uint16_t)((data[*pos] << 8) | data[*pos + 1]);
        total += nweights[p];
    }
    return RMC_OK;
}

int rmc_cm_begin_encode(cm_io *io, int planes, const int16_t *weights, const int *nweights) {
    int i, hlen;
    uint8_t head[RMC_CM_HEAD_MAX];
    hlen = rmc_cm_put_weights(head, planes, weights, nweights);
    if (hlen < 0) return RMC_ERR_ARGUMENT;
    memset(io, 0, sizeof *io);
    io->dec = 0;
    rc_enc_init(&io->enc);
    /* the range coder's output follows the parameter bytes */
    for (i = 0; i < (int)hlen; i++) rc_enc_byte(&io->enc, head[i]);
    return RMC_OK;
}

int rmc_cm_finish_encode(cm_io *io, int st, rmc_buffer *out) {
    if (st == RMC_OK) { rc_enc_flush(&io->enc); st = io->enc.err; }
    if (st != RMC_OK) { free(io->enc.buf); return st; }
    out->data = io->enc.buf;
    out->size = io->enc.len;
    return RMC_OK;
}

int rmc_cm_begin_decode(cm_io *io, const uint8_t *data, size_t size, int planes,
                        int16_t *weights, int *nweights) {
    size_t pos = 0;
    int st = rmc_cm_get_weights(data, size, planes, weights, nweights, &pos);
    if (st != RMC_OK) return st;
    memset(io, 0, sizeof *io);
    io->dec = 1;
    if (size - pos < 5) return RMC_ERR_TRUNCATED;
    if (data[pos] != 0) return RMC_ERR_CORRUPT;
    rc_dec_init(&io->d, data + pos, size - pos);
    if (io->d.off_interval) return RMC_ERR_CORRUPT;
    return RMC_OK;
}

int rmc_cm_finish_decode(cm_io *io, int st) {
    if (st != RMC_OK) return st;
    if (io->d.off_interval) return RMC_ERR_CORRUPT;
    if (io->d.zero_fill) return RMC_ERR_TRUNCATED;
    if (io->d.pos != io->d.len) return RMC_ERR_TRAILING;
    if (io->d.code != 0) return RMC_ERR_CORRUPT;
    return RMC_OK;
}

int rmc_cm_encode(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                  const int *bits, const int16_t *weights, const int *nweights, int form,
                  rmc_buffer *out) {
    cm_io io;
    int st = rmc_cm_begin_encode(&io, planes, weights, nweights);
    if (st != RMC_OK) return st;
    st = run_planes(&io, samples, width, height, planes, bits, weights, nweights, form, NULL);
    return rmc_cm_finish_encode(&io, st, out);
}

int rmc_cm_decode(const uint8_t *data, size_t size, uint32_t width, uint32_t height, int planes,
                  const int *bits, int form, int32_t *samples) {
    cm_io io;
    int16_t weights[RMC_MAX_PLANES * (RMC_CM_SPATIAL_INPUTS + RMC_CM_REF_INPUTS)];
    int nweights[RMC_MAX_PLANES];
    int st = rmc_cm_begin_decode(&io, data, size, planes, weights, nweights);
    if (st != RMC_OK) return st;
    st = run_planes(&io, NULL, width, height, planes, bits, weights, nweights, form, samples);
    return rmc_cm_finish_decode(&io, st);
}
