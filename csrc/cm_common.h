/* Shared pieces of coder 3's lossless (cm_coder.c) and near-lossless (cm_near.c) forms:
 * the logistic squash/stretch tables, the encode-or-decode switch, mixed decisions and the
 * small integer helpers (spec/rmc-v1.md, 16A.2-16A.4). Private to csrc/. */
#ifndef RMC_CM_COMMON_H
#define RMC_CM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "cm_coder.h"
#include "rangecoder.h"

#define NMIX 3           /* model inputs per mixed decision */
#define MIX_WMAX (1 << 20)

typedef struct {
    int32_t w[NMIX];
} cm_mixer;

/* SQUASH and STRETCH of 16A.4 and RSQ of 16A.11 (2^44 // v^2 for v = CM_WCONST .. 511),
   filled by rmc_cm_tables_init (idempotent). */
#define CM_WCONST 16     /* coder 4's blend weight is about 2^44 / (es + CM_WCONST)^2 */
extern int16_t rmc_cm_stretch_tab[4096];
extern int16_t rmc_cm_squash_tab[4096];
extern uint64_t rmc_cm_rsq_tab[512];
void rmc_cm_tables_init(void);

/* floor(a / 2^s) for signed a, without relying on the sign behaviour of >>. */
static inline int32_t asr32(int32_t a, int s) { return a >= 0 ? a >> s : ~((~a) >> s); }

typedef struct {
    int dec;
    rc_encoder enc;
    rc_decoder d;
} cm_io;

static inline int code_bit(cm_io *io, rc_ctx *c, int bit) {
    if (io->dec) return rc_decode(&io->d, c);
    rc_encode(&io->enc, c, bit);
    return bit;
}

/* The mantissa of a magnitude of bit length k > 1 after its first bit b1 (16A.8): the second
 * bit in mant2[b1], the rest in mrest[j]; returns the mantissa with its leading 1. */
static inline uint32_t code_mantissa_tail(cm_io *io, rc_ctx mant2[2], rc_ctx *mrest, uint32_t a,
                                          int k, int b1) {
    uint32_t v = 2u | (uint32_t)b1;
    int j;
    if (k > 2) {
        v = (v << 1) | (uint32_t)code_bit(io, &mant2[b1], (int)((a >> (k - 3)) & 1));
        for (j = k - 4; j >= 0; j--)
            v = (v << 1) | (uint32_t)code_bit(io, &mrest[j], (int)((a >> j) & 1));
    }
    return v;
}

static inline int code_direct(cm_io *io, int bit) {
    if (io->dec) return rc_decode_direct(&io->d);
    rc_encode_direct(&io->enc, bit);
    return bit;
}

#define CM_MIX_MAX 6     /* contexts of a mixed decision, at most */

/* A mixer's dot product (Q16 weights times stretches) as a stretch: floor(d64 / 2^16)
   clamped to [-2047, 2047] (16A.4). */
static inline int32_t mixer_dot(int64_t d64) {
    d64 = d64 >= 0 ? d64 >> 16 : ~((~d64) >> 16);
    return d64 > 2047 ? 2047 : (d64 < -2047 ? -2047 : (int32_t)d64);
}

/* Code a bit with the 12-bit probability p12 of a 1. */
static inline int code_p12(cm_io *io, int32_t p12, int bit) {
    if (io->dec) return rc_decode_p(&io->d, (uint32_t)p12 << 4);
    rc_encode_p(&io->enc, (uint32_t)p12 << 4, bit);
    return bit;
}

/* Code a bit from k adaptive contexts (k <= CM_MIX_MAX) mixed in the logistic domain with the
   weights w (16A.4 with k inputs; with `constant`, a further input of 256 whose weight is
   w[k], as in 16D.2); the weights and then the contexts adapt. */
static inline int code_mixed_k(cm_io *io, rc_ctx **c, int k, int constant, int32_t *w,
                               int bit) {
    int32_t st[CM_MIX_MAX + 1], p12, err;
    int64_t d64 = 0;
    int i, n = k + (constant != 0);
    for (i = 0; i < k; i++) st[i] = rmc_cm_stretch_tab[c[i]->p >> 4];
    if (constant) st[k] = 256;
    for (i = 0; i < n; i++) d64 += (int64_t)w[i] * st[i];
    p12 = rmc_cm_squash_tab[mixer_dot(d64) + 2048];
    bit = code_p12(io, p12, bit);
    err = (bit << 12) - p12;
    for (i = 0; i < n; i++) {
        int32_t v = w[i] + asr32(st[i] * err, 10);
        w[i] = v > MIX_WMAX ? MIX_WMAX : (v < -MIX_WMAX ? -MIX_WMAX : v);
    }
    for (i = 0; i < k; i++) rc_ctx_update(c[i], bit);
    return bit;
}

/* Code a bit from NMIX adaptive contexts mixed in the logistic domain (spec: "Mixing"):
   code_mixed_k for k = 3, unrolled for coder 3's inner loop (the loop form measured about
   5 % slower there). */
static inline int code_mixed(cm_io *io, rc_ctx *c0, rc_ctx *c1, rc_ctx *c2, cm_mixer *mx,
                             int bit) {
    int32_t st0 = rmc_cm_stretch_tab[c0->p >> 4], st1 = rmc_cm_stretch_tab[c1->p >> 4],
            st2 = rmc_cm_stretch_tab[c2->p >> 4];
    int64_t d64 = (int64_t)mx->w[0] * st0 + (int64_t)mx->w[1] * st1 + (int64_t)mx->w[2] * st2;
    int32_t p12, err;
    p12 = rmc_cm_squash_tab[mixer_dot(d64) + 2048];
    bit = code_p12(io, p12, bit);
    err = (bit << 12) - p12;
    mx->w[0] += asr32(st0 * err, 10);
    mx->w[1] += asr32(st1 * err, 10);
    mx->w[2] += asr32(st2 * err, 10);
    for (err = 0; err < NMIX; err++)
        mx->w[err] = mx->w[err] > MIX_WMAX ? MIX_WMAX : (mx->w[err] < -MIX_WMAX ? -MIX_WMAX : mx->w[err]);
    rc_ctx_update(c0, bit);
    rc_ctx_update(c1, bit);
    rc_ctx_update(c2, bit);
    return bit;
}

/* Secondary estimation (APM): 33 probabilities (16 bits) at stretch -2048 + 128*i,
   interpolated; refined toward the coded bit at the nearer point. */
typedef struct {
    uint16_t t[33];
} cm_apm;

static inline void apm_init(cm_apm *a) {
    int i;
    for (i = 0; i < 33; i++) {
        int v = rmc_cm_squash_tab[i == 32 ? 4095 : i * 128] * 16;
        a->t[i] = (uint16_t)(v < 64 ? 64 : (v > 65472 ? 65472 : v));
    }
}

/* p16 of an APM row at stretch st (-2047..2047); *idx receives the point to update. */
static inline uint32_t apm_p(const cm_apm *a, int32_t st, int *idx) {
    int32_t s = st + 2048, lo = s >> 7, f = s & 127;
    *idx = lo + (f >> 6);
    return ((uint32_t)a->t[lo] * (uint32_t)(128 - f) + (uint32_t)a->t[lo + 1] * (uint32_t)f) >> 7;
}

static inline void apm_update(cm_apm *a, int idx, int bit, int rate) {
    int32_t t = a->t[idx];
    t += asr32((bit ? 65535 : 0) - t, rate);
    a->t[idx] = (uint16_t)t;
}

/* The second stage of coder 4's decisions (16A.11, mixed4): the mixer's dot product `d64`
   (before its shift) squashed to p12, averaged with the APM row's refinement, clamped and
   coded; the APM point is updated. Returns the bit; *p12 receives the mixer's probability
   for the weight update. */
static inline int apm_code(cm_io *io, int64_t d64, cm_apm *ap, int32_t *p12, int bit) {
    int32_t dot;
    uint32_t p16;
    int idx;
    dot = mixer_dot(d64);
    *p12 = rmc_cm_squash_tab[dot + 2048];
    p16 = ((uint32_t)*p12 * 16 + apm_p(ap, dot, &idx) + 1) >> 1;
    if (p16 < 32) p16 = 32;
    if (p16 > 65504) p16 = 65504;
    if (io->dec) bit = rc_decode_p(&io->d, p16);
    else rc_encode_p(&io->enc, p16, bit);
    apm_update(ap, idx, bit, 6);
    return bit;
}

/* Error-energy class: E below 4 is its own class, then two classes per octave, up to nq-1. */
static inline int energy_class_n(uint32_t e, int nq) {
    int l, q;
    if (e < 4) return (int)e;
    l = 31 - __builtin_clz(e);
    q = 2 * l + (int)((e >> (l - 1)) & 1);
    return q < nq ? q : nq - 1;
}

static inline int sgn3(int32_t d) { return (d > 0) - (d < 0); }

static inline int32_t clampi(int64_t v, int32_t hi) {
    return v < 0 ? 0 : (v > hi ? hi : (int32_t)v);
}

/* floor(a / 2^s) for a signed 64-bit a. */
static inline int64_t floor_shift(int64_t a, int s) {
    return a >= 0 ? (a >> s) : -((-a + ((int64_t)1 << s) - 1) >> s);
}

static inline int bit_length(uint32_t v) { return v ? 32 - __builtin_clz(v) : 0; }

/* Coder 4's blend weight of a sub-predictor whose error sum is es (16A.11: RSQ on the nine
   leading bits of es + 16). */
static inline uint64_t cm_inverse_square(uint32_t es) {
    uint32_t u = es + CM_WCONST;
    int sh = bit_length(u | 511) - 9;
    return rmc_cm_rsq_tab[u >> sh] >> (2 * sh);
}

/* Coder 4's linear extrapolations from two rows or columns back (16A.11), into p[0..2]. */
static inline void cm_extrapolations(int32_t *p, const int32_t *r, ptrdiff_t S, int32_t N,
                                     int32_t W, int32_t NE, int32_t max8) {
    p[0] = clampi(8 * (2 * (int64_t)N - r[-2 * S]), max8);
    p[1] = clampi(8 * (2 * (int64_t)W - r[-2]), max8);
    p[2] = clampi(8 * (2 * (int64_t)NE - r[-2 * S + 2]), max8);
}

/* (max - min) >> 3 of the sub-predictions p[0..n-1]: coder 4's spread (16A.11). */
static inline uint32_t cm_spread(const int32_t *p, int n) {
    int32_t mx = p[0], mn = p[0];
    int i;
    for (i = 1; i < n; i++) {
        if (p[i] > mx) mx = p[i];
        if (p[i] < mn) mn = p[i];
    }
    return (uint32_t)(mx - mn) >> 3;
}

/* The tile stream's predictor header and the range coder around the planes (spec 16A.1),
   shared by coder 3 and its near-lossless form (cm_coder.c). begin_encode checks the weight
   counts (RMC_ERR_ARGUMENT) and writes the header; finish_encode flushes into `out` (or frees
   the buffer when st is an error). begin_decode reads and checks the header into weights /
   nweights and starts the decoder; finish_decode applies the end-of-stream checks. */
int rmc_cm_begin_encode(cm_io *io, int planes, const int16_t *weights, const int *nweights);
int rmc_cm_finish_encode(cm_io *io, int st, rmc_buffer *out);
int rmc_cm_begin_decode(cm_io *io, const uint8_t *data, size_t size, int planes,
                        int16_t *weights, int *nweights);
int rmc_cm_finish_decode(cm_io *io, int st);

/* The sub-predictors of spec 16A.8 (x8) at the sample `r` of a padded plane of stride S, with
   neighbours N, W, NW, NE; wt/nwt: the stored linear predictor (MED when nwt = 0); rr: the
   same position in the reference plane (NULL for the first plane, then p[6], p[7] unset). */
static inline void cm_subpredictors(int32_t *p, const int32_t *r, ptrdiff_t S, int32_t N,
                                    int32_t W, int32_t NW, int32_t NE, const int16_t *wt,
                                    int nwt, const int32_t *rr, int32_t max8) {
    int i;
    p[0] = N * 8;
    p[1] = W * 8;
    p[2] = clampi(8 * ((int64_t)W + NE - N), max8);
    p[3] = clampi(8 * ((int64_t)N + W - NW), max8);
    if (nwt) {
        const int32_t in[RMC_CM_SPATIAL_INPUTS] = {
            N, W, NW, NE, r[-2], r[-2 * S], r[-2 * S + 1], r[-S - 2], r[-S + 2], r[-2 * S - 1]};
        int64_t a = 0;
        for (i = 0; i < RMC_CM_SPATIAL_INPUTS; i++) a += (int64_t)wt[i] * in[i];
        if (rr) {
            const int32_t rin[RMC_CM_REF_INPUTS] = {rr[0], rr[-S], rr[-1], rr[-S - 1],
                                                    rr[-S + 1]};
            for (i = 0; i < RMC_CM_REF_INPUTS; i++)
                a += (int64_t)wt[RMC_CM_SPATIAL_INPUTS + i] * rin[i];
        }
        p[4] = clampi(floor_shift(a, 9), max8);
    } else {
        int32_t mx = N > W ? N : W, mn = N > W ? W : N;
        p[4] = 8 * (NW >= mx ? mn : (NW <= mn ? mx : N + W - NW));
    }
    p[5] = 4 * (W + NE);
    if (rr) {
        p[6] = clampi(8 * ((int64_t)N + rr[0] - rr[-S]), max8);
        p[7] = clampi(8 * ((int64_t)W + rr[0] - rr[-1]), max8);
    }
}

#endif
