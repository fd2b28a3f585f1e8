/* Coder 5 (spec/rmc-v1.md, 16C). Per plane: the stored linear predictor (MED without one),
 * a context class from the local residual and gradient activity, and the folded residual
 * split into a token and raw bits. Tokens are rANS coded with static tables, one table per
 * group of classes, and a run mode in flat neighbourhoods; the encoder chooses the groups
 * and writes the tables. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fast_coder.h"
#include "bitio.h"
#include "cm_coder.h"

#define PAD 2
#define WEIGHT_BITS 12    /* the stored weights are Q12 */
#define PROB_BITS 10
#define PROB_SCALE (1u << PROB_BITS)
#define NCLASS 40
#define NTOKEN 44
#define MAX_TABLES 16     /* class tables per plane; the run table follows them */
#define PLANE_TABLES (MAX_TABLES + 1)
#define RUN_MAX ((1u << 18) - 1)
#define RANS_L (1u << 16)
#define ACT_DIRECT 1024  /* decoder: activities with a direct class lookup */
#define FLOOR_OFFSET ((int64_t)1 << 40)
#define LEN_BITS 6        /* L - 1 and R */
#define EXP_BITS 4        /* bit length of a frequency */
#define MANT_BITS 3       /* stored bits after a frequency's leading one */
#define BOUND_BITS 6      /* first class of a table */

typedef struct {
    int ntables;
    uint8_t map[NCLASS];                  /* class -> table */
    uint16_t freq[PLANE_TABLES][NTOKEN];   /* class tables, then the run table */
    uint16_t cum[PLANE_TABLES][NTOKEN];
} fc_model;

static inline int bitlen(uint32_t v) { return v ? 32 - __builtin_clz(v) : 0; }

/* Class of an activity: 0-3 as they are, then two classes per octave, at most NCLASS - 1. */
static inline int fc_class(uint32_t a) {
    int l, q;
    if (a < 4) return (int)a;
    l = 31 - __builtin_clz(a);
    q = 2 * l + (int)((a >> (l - 1)) & 1);
    return q < NCLASS ? q : NCLASS - 1;
}

static inline int32_t iabs(int32_t v) { return v < 0 ? -v : v; }

/* floor(a / 2^WEIGHT_BITS) without a branch, for |a| < 2^37 < FLOOR_OFFSET (a multiple of
   2^WEIGHT_BITS): the predictor's sums, 15 weights below 2^15 by samples below 2^17. */
static inline int64_t floor_q12(int64_t a) {
    return (int64_t)((uint64_t)(a + FLOOR_OFFSET) >> WEIGHT_BITS) - (FLOOR_OFFSET >> WEIGHT_BITS);
}

/* The rows around a sample (16C.4): up, up2 the padded rows y - 1 and y - 2 of its plane, eup
   the |residual| row y - 1; rcur, rup the reference plane's padded rows y and y - 1 and recur
   its |residual| row y (unused for the first plane). */
typedef struct {
    const int32_t *up, *up2, *eup, *rcur, *rup, *recur;
} fc_rows;

/* The activity (returned) and prediction (*pred) of sample x of row y (16C.4). W, WW: the two
   samples before it on its row, eW the |residual| at W. Their terms come last, so a decoder
   that keeps them in registers waits least for the sample it has just decoded. */
static inline __attribute__((always_inline)) uint32_t fc_context(
    const fc_rows *rw, ptrdiff_t x, int32_t W, int32_t WW, int32_t eW, const int16_t *wt,
    const int has_ref, const int has_wt, int32_t maxval, int32_t *pred) {
    const int32_t *up = rw->up, *up2 = rw->up2, *eup = rw->eup;
    const int32_t N = up[x], NW = up[x - 1], NE = up[x + 1];
    uint32_t act = 2u * (uint32_t)eup[x] + (uint32_t)(eup[x - 1] + eup[x + 1]) +
                   (uint32_t)(iabs(N - NW) + iabs(NE - N));
    if (has_ref) act += 2u * (uint32_t)rw->recur[x];
    if (has_wt) {
        int64_t a = (int64_t)wt[0] * N + (int64_t)wt[2] * NW + (int64_t)wt[3] * NE +
                    (int64_t)wt[5] * up2[x] + (int64_t)wt[6] * up2[x + 1] +
                    (int64_t)wt[7] * up[x - 2] + (int64_t)wt[8] * up[x + 2] +
                    (int64_t)wt[9] * up2[x - 1] + (1 << (WEIGHT_BITS - 1));
        if (has_ref)
            a += (int64_t)wt[10] * rw->rcur[x] + (int64_t)wt[11] * rw->rup[x] +
                 (int64_t)wt[12] * rw->rcur[x - 1] + (int64_t)wt[13] * rw->rup[x - 1] +
                 (int64_t)wt[14] * rw->rup[x + 1];
        a += (int64_t)wt[4] * WW;
        a += (int64_t)wt[1] * W;
        a = floor_q12(a);
        *pred = a < 0 ? 0 : (a > maxval ? maxval : (int32_t)a);
    } else {
        int32_t mx = N > W ? N : W, mn = N > W ? W : N;
        *pred = NW >= mx ? mn : (NW <= mn ? mx : N + W - NW);
    }
    return act + 2u * (uint32_t)eW + (uint32_t)iabs(W - NW);
}

/* Padding of a plane whose first sample is s00 (as coder 3): the PAD rows above and the two
 * left columns of row 0 hold s00. */
static void pad_first(int32_t *pl, ptrdiff_t S, int32_t s00) {
    ptrdiff_t x, y;
    for (y = 0; y < PAD; y++)
        for (x = 0; x < S; x++) pl[y * S + x] = s00;
    pl[PAD * S + 0] = pl[PAD * S + 1] = pl[PAD * S + PAD] = s00;
}

/* After row y: the right padding of the row, the left padding of the next. */
static inline void pad_row(int32_t *row, ptrdiff_t S, uint32_t w, int last) {
    row[w] = row[w + 1] = row[w - 1];
    if (!last) row[S - 2] = row[S - 1] = row[0];
}

/* ---- tables ------------------------------------------------------------------------- */

/* f rounded to MANT_BITS + 1 significant bits (nearest). */
static uint32_t representable(uint32_t f) {
    int e = bitlen(f), drop = e - 1 - MANT_BITS;
    if (drop <= 0) return f;
    return ((f + (1u << (drop - 1))) >> drop) << drop;
}

/* Normalised frequencies (sum PROB_SCALE) of token counts c; *L: tokens up to the last used
 * one; *R: the token whose frequency is the remainder (the most frequent). */
static void normalise(const uint32_t *c, uint16_t *f, int *L, int *R) {
    uint64_t n = 0;
    uint32_t sum = 0;
    int i, r = 0, l = 0, pass;
    for (i = 0; i < NTOKEN; i++) {
        n += c[i];
        if (c[i]) l = i + 1;
        if (c[i] > c[r]) r = i;
    }
    *L = l ? l : 1;
    *R = r;
    memset(f, 0, sizeof(uint16_t) * NTOKEN);
    if (n == 0 || *L == 1) { f[0] = PROB_SCALE; *R = 0; return; }
    for (pass = 0; pass < 2; pass++) {
        sum = 0;
        for (i = 0; i < *L; i++) {
            uint32_t v;
            if (i == r || !c[i]) { f[i] = 0; continue; }
            v = (uint32_t)(((uint64_t)c[i] * PROB_SCALE + (pass ? 0 : n / 2)) / n);
            if (v < 1) v = 1;
            if (pass == 0) v = representable(v);
            else {   /* rounding down: the remainder stays positive */
                int e = bitlen(v), drop = e - 1 - MANT_BITS;
                if (drop > 0) v = (v >> drop) << drop;
            }
            f[i] = (uint16_t)v;
            sum += v;
        }
        if (sum < PROB_SCALE) break;
    }
    f[r] = (uint16_t)(PROB_SCALE - sum);
}

static void write_table(rmc_bw *bw, const uint16_t *f, int L, int R) {
    int i;
    rmc_bw_put(bw, (uint32_t)(L - 1), LEN_BITS);
    if (L == 1) return;
    rmc_bw_put(bw, (uint32_t)R, LEN_BITS);
    for (i = 0; i < L; i++) {
        int e, t;
        if (i == R) continue;
        e = bitlen(f[i]);
        rmc_bw_put(bw, (uint32_t)e, EXP_BITS);
        if (e > 1) {
            t = e - 1 < MANT_BITS ? e - 1 : MANT_BITS;
            rmc_bw_put(bw, ((uint32_t)f[i] >> (e - 1 - t)) & ((1u << t) - 1), t);
        }
    }
}

static int read_table(rmc_br *br, uint16_t *f) {
    int L, R, i;
    uint32_t sum = 0;
    memset(f, 0, sizeof(uint16_t) * NTOKEN);
    L = (int)rmc_br_get(br, LEN_BITS) + 1;
    if (L > NTOKEN) return RMC_ERR_CORRUPT;
    if (L == 1) { f[0] = PROB_SCALE; return RMC_OK; }
    R = (int)rmc_br_get(br, LEN_BITS);
    if (R >= L) return RMC_ERR_CORRUPT;
    for (i = 0; i < L; i++) {
        int e, t;
        uint32_t v;
        if (i == R) continue;
        e = (int)rmc_br_get(br, EXP_BITS);
        if (e > PROB_BITS) return RMC_ERR_CORRUPT;
        if (e <= 1) v = (uint32_t)e;
        else {
            t = e - 1 < MANT_BITS ? e - 1 : MANT_BITS;
            v = ((1u << t) | rmc_br_get(br, t)) << (e - 1 - t);
        }
        f[i] = (uint16_t)v;
        sum += v;
    }
    if (sum >= PROB_SCALE) return RMC_ERR_CORRUPT;
    f[R] = (uint16_t)(PROB_SCALE - sum);
    return RMC_OK;
}

static void cumulate(fc_model *m) {
    int t, i;
    for (t = 0; t <= m->ntables; t++) {
        uint32_t c = 0;
        for (i = 0; i < NTOKEN; i++) { m->cum[t][i] = (uint16_t)c; c += m->freq[t][i]; }
    }
}

/* Estimated bits of a table's data and of its description (the encoder's choice only). */
static double table_cost(const uint32_t *c) {
    uint64_t n = 0;
    double bits = 0;
    int i, L = 0;
    for (i = 0; i < NTOKEN; i++) { n += c[i]; if (c[i]) L = i + 1; }
    if (L <= 1) return LEN_BITS;
    for (i = 0; i < L; i++)
        if (c[i]) bits += (double)c[i] * log2((double)n / (double)c[i]) + EXP_BITS + MANT_BITS;
        else bits += EXP_BITS;
    return bits + 2 * LEN_BITS - EXP_BITS - MANT_BITS;
}

/* Group the classes into at most MAX_TABLES contiguous ranges of least estimated size. */
static int choose_model(const uint32_t hist[NCLASS + 1][NTOKEN], fc_model *m, int *L, int *R) {
    int cl[NCLASS], nc = 0, i, j, k, t, c, best_k = 1;
    double cost[NCLASS + 1][NCLASS + 1], dp[MAX_TABLES + 1][NCLASS + 1], best = HUGE_VAL;
    int from[MAX_TABLES + 1][NCLASS + 1], start[MAX_TABLES];
    uint32_t merged[NTOKEN];
    for (c = 0; c < NCLASS; c++) {
        uint32_t any = 0;
        for (t = 0; t < NTOKEN; t++) any |= hist[c][t];
        if (any) cl[nc++] = c;
    }
    if (nc == 0) cl[nc++] = 0;
    for (i = 0; i < nc; i++) {
        memset(merged, 0, sizeof merged);
        for (j = i + 1; j <= nc; j++) {
            for (t = 0; t < NTOKEN; t++) merged[t] += hist[cl[j - 1]][t];
            cost[i][j] = table_cost(merged);
        }
    }
    for (k = 0; k <= MAX_TABLES; k++)
        for (j = 0; j <= nc; j++) dp[k][j] = HUGE_VAL;
    dp[0][0] = 0;
    for (k = 1; k <= MAX_TABLES && k <= nc; k++) {
        for (j = k; j <= nc; j++)
            for (i = k - 1; i < j; i++) {
                double v = dp[k - 1][i] + cost[i][j];
                if (v < dp[k][j]) { dp[k][j] = v; from[k][j] = i; }
            }
        if (dp[k][nc] + BOUND_BITS * (k - 1) < best) {
            best = dp[k][nc] + BOUND_BITS * (k - 1);
            best_k = k;
        }
    }
    m->ntables = best_k;
    for (k = best_k, j = nc; k >= 1; k--) { i = from[k][j]; start[k - 1] = i; j = i; }
    for (k = 0; k < best_k; k++) {
        int lo = k ? cl[start[k]] : 0, hi = k + 1 < best_k ? cl[start[k + 1]] : NCLASS;
        memset(merged, 0, sizeof merged);
        for (c = lo; c < hi; c++) {
            m->map[c] = (uint8_t)k;
            for (t = 0; t < NTOKEN; t++) merged[t] += hist[c][t];
        }
        normalise(merged, m->freq[k], &L[k], &R[k]);
    }
    normalise(hist[NCLASS], m->freq[best_k], &L[best_k], &R[best_k]);   /* the run table */
    cumulate(m);
    return best_k;
}

static void write_model(rmc_bw *bw, const fc_model *m, const int *L, const int *R) {
    int k, c;
    rmc_bw_put(bw, (uint32_t)(m->ntables - 1), 4);
    for (c = 1; c < NCLASS; c++)
        if (m->map[c] != m->map[c - 1]) rmc_bw_put(bw, (uint32_t)c, BOUND_BITS);
    for (k = 0; k <= m->ntables; k++) write_table(bw, m->freq[k], L[k], R[k]);
}

static int read_model(rmc_br *br, fc_model *m) {
    int k, c, prev = 0, st;
    uint8_t bound[MAX_TABLES];
    m->ntables = (int)rmc_br_get(br, 4) + 1;
    for (k = 1; k < m->ntables; k++) {
        int b = (int)rmc_br_get(br, BOUND_BITS);
        if (b <= prev || b >= NCLASS) return RMC_ERR_CORRUPT;
        bound[k] = (uint8_t)b;
        prev = b;
    }
    for (k = 0, c = 0; c < NCLASS; c++) {
        if (k + 1 < m->ntables && c == bound[k + 1]) k++;
        m->map[c] = (uint8_t)k;
    }
    for (k = 0; k <= m->ntables; k++)
        if ((st = read_table(br, m->freq[k])) != RMC_OK) return st;
    cumulate(m);
    return RMC_OK;
}

/* Decoding table: per slot the token (6 bits), its frequency (13) and slot - cum (12). */
static void build_lut(const fc_model *m, uint32_t *lut) {
    int t, s;
    for (t = 0; t <= m->ntables; t++) {
        uint32_t *l = lut + (size_t)t * PROB_SCALE;
        for (s = 0; s < NTOKEN; s++) {
            uint32_t f = m->freq[t][s], c = m->cum[t][s], k;
            for (k = 0; k < f; k++) l[c + k] = (uint32_t)s | (f << 6) | (k << 19);
        }
    }
}

/* ---- tokens ------------------------------------------------------------------------- */

static inline uint32_t fold(int32_t r) {
    return r >= 0 ? 2u * (uint32_t)r : 2u * (uint32_t)(-r) - 1u;
}

/* Token of a folded residual v, with its raw bits in *raw and their count in *nraw. */
static inline int to_token(uint32_t v, int *nraw, uint32_t *raw) {
    int e;
    if (v < 16) { *nraw = 0; *raw = 0; return (int)v; }
    e = 31 - __builtin_clz(v);
    *nraw = e - 1;
    *raw = v & ((1u << (e - 1)) - 1);
    return 16 + 2 * (e - 4) + (int)((v >> (e - 1)) & 1);
}

/* Per token: its raw bit count, and its value with the raw bits zero. */
static const uint8_t raw_bits_of[64] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
    9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 16, 16};
static const uint32_t base_of[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    2u << 3, 3u << 3, 2u << 4, 3u << 4, 2u << 5, 3u << 5, 2u << 6, 3u << 6, 2u << 7, 3u << 7,
    2u << 8, 3u << 8, 2u << 9, 3u << 9, 2u << 10, 3u << 10, 2u << 11, 3u << 11,
    2u << 12, 3u << 12, 2u << 13, 3u << 13, 2u << 14, 3u << 14, 2u << 15, 3u << 15,
    2u << 16, 3u << 16};

/* ---- encoder ------------------------------------------------------------------------ */

/* The symbols of one plane in raster order, with their classes (NCLASS: a run), tokens and
 * raw bits, their histogram, and the index of each row's first symbol in row_start[0..h].
 * Returns the symbol count. pl / err: the padded plane filled with the samples and a zeroed
 * plane for |residual| (stride w + 2 PAD, h + PAD rows); ref / referr: those of the reference
 * plane, or NULL. */
static size_t scan_plane(int32_t *pl, int32_t *err, const int32_t *ref, const int32_t *referr,
                         uint32_t w, uint32_t h, int bits, const int16_t *wt, int nwt,
                         uint8_t *cls, uint8_t *tok, uint32_t *raw, size_t *row_start,
                         uint32_t hist[NCLASS + 1][NTOKEN]) {
    const ptrdiff_t S = (ptrdiff_t)w + 2 * PAD;
    const int32_t maxval = (int32_t)((1u << bits) - 1);
    size_t i = 0;
    ptrdiff_t x, y;
    int nraw;
    pad_first(pl, S, pl[PAD * S + PAD]);
    for (y = 0; y < (ptrdiff_t)h; y++) {
        int32_t *row = pl + (y + PAD) * S + PAD, *erow = err + (y + PAD) * S + PAD;
        const int32_t *rrow = ref ? ref + (y + PAD) * S + PAD : NULL;
        const int32_t *rerow = referr ? referr + (y + PAD) * S + PAD : NULL;
        const fc_rows rw = {row - S, row - 2 * S, erow - S, rrow, rrow ? rrow - S : NULL, rerow};
        int no_run = 0;
        row_start[y] = i;
        for (x = (y == 0); x < (ptrdiff_t)w; i++) {
            int32_t pred;
            uint32_t act = fc_context(&rw, x, row[x - 1], row[x - 2], erow[x - 1], wt,
                                      ref != NULL, nwt != 0, maxval, &pred);
            if (act == 0 && !no_run) {   /* run mode (16C.4) */
                uint32_t run = 0, lim = (uint32_t)((ptrdiff_t)w - x);
                if (lim > RUN_MAX) lim = RUN_MAX;
                while (run < lim && row[x + run] == row[x - 1]) run++;
                tok[i] = (uint8_t)to_token(run, &nraw, &raw[i]);
                cls[i] = NCLASS;
                hist[NCLASS][tok[i]]++;
                x += (ptrdiff_t)run;   /* erow stays 0 over the run */
                no_run = 1;
            } else {
                int c = fc_class(act);
                int32_t r = row[x] - pred;
                tok[i] = (uint8_t)to_token(fold(r), &nraw, &raw[i]);
                erow[x] = iabs(r);
                cls[i] = (uint8_t)c;
                hist[c][tok[i]]++;
                x++;
                no_run = 0;
            }
        }
        pad_row(row, S, w, y + 1 == (ptrdiff_t)h);
    }
    row_start[h] = i;
    return i;
}

/* The symbols of the tile in decoding order: row y of plane 0, of plane 1, ..., then row
 * y + 1. Plane p's symbols are at sym + p * cap, its rows' starts at rows + p * (h + 1). */
typedef struct {
    uint8_t *tbl;      /* per symbol: its class, then its table (plane * PLANE_TABLES + table) */
    uint8_t *tok;
    uint32_t *raw;
    size_t *rows;
    size_t cap;
} fc_symbols;

/* rANS over the tile's symbols, last to first. out: the final state (4 bytes, little
 * endian), then 16-bit little-endian words in decoding order. */
static int rans_encode(const fc_symbols *sym, int planes, uint32_t h, const fc_model *models,
                       uint8_t **out, size_t *out_len) {
    size_t cap = 16, nw = 0, i;
    uint16_t *words = (uint16_t *)malloc(cap * sizeof(uint16_t));
    uint32_t x = RANS_L;
    uint8_t *buf;
    ptrdiff_t y;
    int p;
    if (!words) return RMC_ERR_NOMEM;
    for (y = (ptrdiff_t)h - 1; y >= 0; y--)
        for (p = planes - 1; p >= 0; p--) {
            const size_t *rows = sym->rows + (size_t)p * (h + 1);
            size_t k;
            for (k = rows[y + 1]; k-- > rows[y];) {
                size_t j = sym->cap * (size_t)p + k;
                const fc_model *m = &models[sym->tbl[j] / PLANE_TABLES];
                int t = sym->tbl[j] % PLANE_TABLES, sy = sym->tok[j];
                uint32_t f = m->freq[t][sy], c = m->cum[t][sy];
                if ((uint64_t)x >= ((uint64_t)f << (32 - PROB_BITS))) {
                    if (nw == cap) {
                        uint16_t *grown = (uint16_t *)realloc(words, 2 * cap * sizeof(uint16_t));
                        if (!grown) { free(words); return RMC_ERR_NOMEM; }
                        words = grown;
                        cap *= 2;
                    }
                    words[nw++] = (uint16_t)x;
                    x >>= 16;
                }
                x = ((x / f) << PROB_BITS) + (x % f) + c;
            }
        }
    buf = (uint8_t *)malloc(4 + 2 * nw);
    if (!buf) { free(words); return RMC_ERR_NOMEM; }
    buf[0] = (uint8_t)x; buf[1] = (uint8_t)(x >> 8); buf[2] = (uint8_t)(x >> 16);
    buf[3] = (uint8_t)(x >> 24);
    for (i = 0; i < nw; i++) {
        uint16_t v = words[nw - 1 - i];
        buf[4 + 2 * i] = (uint8_t)v;
        buf[5 + 2 * i] = (uint8_t)(v >> 8);
    }
    free(words);
    *out = buf;
    *out_len = 4 + 2 * nw;
    return RMC_OK;
}

int rmc_fast_encode(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                    const int *bits, const int16_t *weights, const int *nweights,
                    rmc_buffer *out) {
    size_t plane_size = (size_t)width * height, S = (size_t)width + 2 * PAD,
           np = ((size_t)height + PAD) * S, hlen, rlen = 0, i, cap = 2 * plane_size;
    uint8_t head[RMC_CM_HEAD_MAX + 4];
    fc_model models[RMC_MAX_PLANES];
    int32_t *pl = NULL, *err = NULL;
    uint8_t *rans = NULL;
    uint32_t (*hist)[NCLASS + 1][NTOKEN] = NULL;
    const int16_t *wt = weights;
    fc_symbols sym;
    rmc_bw bw;
    rmc_buffer bits_out;
    int p, hl = rmc_cm_put_weights(head, planes, weights, nweights), st = RMC_OK,
        L[PLANE_TABLES], R[PLANE_TABLES];
    uint32_t y;
    if (hl < 0) return RMC_ERR_ARGUMENT;
    hlen = (size_t)hl;
    pl = (int32_t *)malloc(np * (size_t)planes * sizeof(int32_t));
    err = (int32_t *)calloc(np * (size_t)planes, sizeof(int32_t));
    sym.cap = cap;
    sym.tbl = (uint8_t *)malloc(cap * (size_t)planes);
    sym.tok = (uint8_t *)malloc(cap * (size_t)planes);
    sym.raw = (uint32_t *)malloc(cap * (size_t)planes * sizeof(uint32_t));
    sym.rows = (size_t *)malloc(((size_t)height + 1) * (size_t)planes * sizeof(size_t));
    hist = calloc((size_t)planes, sizeof *hist);
    rmc_bw_init(&bw, plane_size * (size_t)planes / 2 + 64);
    if (!pl || !err || !sym.tbl || !sym.tok || !sym.raw || !sym.rows || !hist)
        st = RMC_ERR_NOMEM;
    for (p = 0; p < planes && st == RMC_OK; p++) {
        const int32_t *src = samples + plane_size * (size_t)p;
        int32_t *ppl = pl + np * (size_t)p, *perr = err + np * (size_t)p;
        uint8_t *tbl = sym.tbl + cap * (size_t)p;
        size_t n;
        for (y = 0; y < height; y++)
            memcpy(ppl + (y + PAD) * S + PAD, src + (size_t)y * width, width * sizeof(int32_t));
        n = scan_plane(ppl, perr, p ? ppl - np : NULL, p ? perr - np : NULL, width, height,
                       bits[p], wt, nweights[p], tbl, sym.tok + cap * (size_t)p,
                       sym.raw + cap * (size_t)p, sym.rows + ((size_t)height + 1) * (size_t)p,
                       hist[p]);
        wt += nweights[p];
        /* the plane's first sample and model; the classes become tables */
        rmc_bw_put(&bw, (uint32_t)src[0], bits[p]);
        if (plane_size > 1) {
            fc_model *m = &models[p];
            choose_model((const uint32_t (*)[NTOKEN])hist[p], m, L, R);
            write_model(&bw, m, L, R);
            for (i = 0; i < n; i++)
                tbl[i] = (uint8_t)(p * PLANE_TABLES +
                                   (tbl[i] == NCLASS ? m->ntables : m->map[tbl[i]]));
        }
    }
    /* raw bits in decoding order */
    for (y = 0; y < height && st == RMC_OK; y++)
        for (p = 0; p < planes; p++) {
            const size_t *rows = sym.rows + ((size_t)height + 1) * (size_t)p;
            size_t k;
            for (k = rows[y]; k < rows[y + 1]; k++) {
                size_t j = cap * (size_t)p + k;
                rmc_bw_put(&bw, sym.raw[j], raw_bits_of[sym.tok[j]]);
            }
        }
    if (st == RMC_OK) st = bw.err;
    if (st == RMC_OK) st = rans_encode(&sym, planes, height, models, &rans, &rlen);
    free(pl); free(err); free(sym.tbl); free(sym.tok); free(sym.raw); free(sym.rows);
    free(hist);
    if (st != RMC_OK) { rmc_bw_discard(&bw); free(rans); return st; }
    st = rmc_bw_finish(&bw, &bits_out);
    if (st != RMC_OK) { free(rans); return st; }
    head[hlen++] = (uint8_t)(rlen >> 24); head[hlen++] = (uint8_t)(rlen >> 16);
    head[hlen++] = (uint8_t)(rlen >> 8); head[hlen++] = (uint8_t)rlen;
    out->size = hlen + rlen + bits_out.size;
    out->data = (uint8_t *)malloc(out->size);
    if (!out->data) { free(rans); free(bits_out.data); return RMC_ERR_NOMEM; }
    memcpy(out->data, head, hlen);
    memcpy(out->data + hlen, rans, rlen);
    if (bits_out.size) memcpy(out->data + hlen + rlen, bits_out.data, bits_out.size);
    free(rans);
    free(bits_out.data);
    return RMC_OK;
}

/* ---- decoder ------------------------------------------------------------------------ */

/* A plane being decoded: three padded rows (y - 2, y - 1, y at y mod 3) and two rows of
   |residual| (y mod 2) with zero padding; its model and decoding table. */
typedef struct {
    int32_t *ring;
    int32_t *ering;
    const uint32_t *lut;
    uint8_t tmap[ACT_DIRECT];   /* the table of each activity below ACT_DIRECT */
    fc_model m;
    const int16_t *wt;
    int nwt;
    int32_t maxval;
} fc_plane;

typedef struct {
    uint32_t x;
    const uint8_t *p, *end;
    rmc_br *br;
} fc_stream;

/* The decoder's rANS state and bit reader, kept in registers over a row. */
typedef struct {
    uint32_t x;
    const uint8_t *rp, *rend;
    uint64_t acc;     /* the bit reader's acc and nbits (bitio.h) */
    int nbits;
    rmc_br *br;
} fc_reader;

/* The next value (16C.3): a token decoded with the decoding table `table`, then its raw
   bits; -1 when the rANS stream has no word left where one is needed. */
static inline __attribute__((always_inline)) int64_t read_value(fc_reader *rd,
                                                                const uint32_t *table) {
    uint32_t e = table[rd->x & (PROB_SCALE - 1)], v;
    int tok = (int)(e & 63), nraw = raw_bits_of[tok];
    rd->x = ((e >> 6) & 0x1fff) * (rd->x >> PROB_BITS) + (e >> 19);
    if (rd->rend - rd->rp >= 2) {   /* renormalise without a branch */
        uint32_t need = rd->x < RANS_L;
        uint32_t word = (uint32_t)rd->rp[0] | ((uint32_t)rd->rp[1] << 8);
        rd->x = need ? (rd->x << 16) | word : rd->x;
        rd->rp += 2 * need;
    } else if (rd->x < RANS_L) {
        return -1;
    }
    if (rd->nbits < 32) {
        rd->br->acc = rd->acc;
        rd->br->nbits = rd->nbits;
        rmc_br_refill(rd->br);
        rd->acc = rd->br->acc;
        rd->nbits = rd->br->nbits;
    }
    v = base_of[tok] | (uint32_t)((rd->acc >> 1) >> (63 - nraw));
    rd->acc <<= nraw;
    rd->nbits -= nraw;
    return v;
}

/* Row y of plane `pl` (ref: the reference plane or NULL; its row y is decoded already), into
   out, with W, WW and the |residual| at W kept in registers. */
static inline __attribute__((always_inline)) int decode_row(
    fc_stream *rs, fc_plane *pl, const fc_plane *ref, uint32_t w, uint32_t y, int32_t *out,
    const int has_ref, const int has_wt) {
    const ptrdiff_t S = (ptrdiff_t)w + 2 * PAD;
    int32_t *cur = pl->ring + (ptrdiff_t)(y % 3) * S + PAD;
    const int32_t *up = pl->ring + (ptrdiff_t)((y + 2) % 3) * S + PAD;
    const int32_t *up2 = pl->ring + (ptrdiff_t)((y + 1) % 3) * S + PAD;
    int32_t *ecur = pl->ering + (ptrdiff_t)(y & 1) * S + PAD;
    const int32_t *eup = pl->ering + (ptrdiff_t)((y + 1) & 1) * S + PAD;
    fc_rows rw = {up, up2, eup, NULL, NULL, NULL};
    const int16_t *wt = pl->wt;
    const uint32_t *lut = pl->lut;
    const uint8_t *map = pl->m.map, *tmap = pl->tmap;
    const int32_t maxval = pl->maxval;
    rmc_br *br = rs->br;
    fc_reader rd = {rs->x, rs->p, rs->end, br->acc, br->nbits, br};
    ptrdiff_t xx = (y == 0);
    int32_t W, WW, eW = 0;
    int no_run = 0;
    const int run_table = pl->m.ntables;
    if (has_ref) {
        rw.rcur = ref->ring + (ptrdiff_t)(y % 3) * S + PAD;
        rw.rup = ref->ring + (ptrdiff_t)((y + 2) % 3) * S + PAD;
        rw.recur = ref->ering + (ptrdiff_t)(y & 1) * S + PAD;
    }
    if (y) cur[-1] = cur[-2] = up[0];
    W = cur[xx - 1];
    WW = cur[xx - 2];
    for (; xx < (ptrdiff_t)w; xx++) {
        int32_t pred, r, s;
        int64_t v;
        uint32_t act = fc_context(&rw, xx, W, WW, eW, wt, has_ref, has_wt, maxval, &pred);
        if (act == 0 && !no_run) {   /* run mode: a run of samples equal to W */
            int64_t run = read_value(&rd, lut + (size_t)run_table * PROB_SCALE);
            if (run < 0) return RMC_ERR_TRUNCATED;
            if (run > (int64_t)((ptrdiff_t)w - xx)) return RMC_ERR_CORRUPT;
            if (run) {
                ptrdiff_t k;
                for (k = 0; k < (ptrdiff_t)run; k++) { cur[xx + k] = W; ecur[xx + k] = 0; }
                xx += (ptrdiff_t)run;
                WW = W;
                eW = 0;
            }
            no_run = 1;
            xx--;   /* the loop's increment */
            continue;
        }
        no_run = 0;
        v = read_value(&rd, lut + (size_t)(act < ACT_DIRECT ? tmap[act] : map[fc_class(act)]) *
                                      PROB_SCALE);
        if (v < 0) return RMC_ERR_TRUNCATED;
        r = (v & 1) ? -(int32_t)((v + 1) >> 1) : (int32_t)(v >> 1);   /* v < 2^18 */
        s = pred + r;
        if ((uint32_t)s > (uint32_t)maxval) return RMC_ERR_CORRUPT;
        cur[xx] = s;
        WW = W;
        W = s;
        eW = iabs(r);
        ecur[xx] = eW;
    }
    br->acc = rd.acc;
    br->nbits = rd.nbits;
    rs->x = rd.x;
    rs->p = rd.rp;
    cur[w] = cur[w + 1] = cur[w - 1];
    memcpy(out, cur, w * sizeof(int32_t));
    return RMC_OK;
}

static int decode_row_any(fc_stream *rs, fc_plane *pl, const fc_plane *ref, uint32_t w,
                          uint32_t y, int32_t *out) {
    if (ref)
        return pl->nwt ? decode_row(rs, pl, ref, w, y, out, 1, 1)
                       : decode_row(rs, pl, ref, w, y, out, 1, 0);
    return pl->nwt ? decode_row(rs, pl, NULL, w, y, out, 0, 1)
                   : decode_row(rs, pl, NULL, w, y, out, 0, 0);
}

int rmc_fast_decode(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                    int planes, const int *bits, int32_t *samples) {
    size_t pos = 0, plane_size = (size_t)width * height, S = (size_t)width + 2 * PAD, rlen,
           tables = 0, k;
    int16_t weights[RMC_MAX_PLANES * (RMC_CM_SPATIAL_INPUTS + RMC_CM_REF_INPUTS)];
    fc_plane pls[RMC_MAX_PLANES];
    int32_t *rings = NULL, *erings = NULL;
    uint32_t *lut = NULL;
    int nweights[RMC_MAX_PLANES], p, total = 0,
        st = rmc_cm_get_weights(data, size, planes, weights, nweights, &pos);
    fc_stream rs;
    rmc_br br;
    uint32_t y;
    if (st != RMC_OK) return st;
    memset(pls, 0, sizeof pls);
    for (p = 0; p < planes; p++) {
        pls[p].nwt = nweights[p];
        pls[p].wt = weights + total;
        pls[p].maxval = (int32_t)((1u << bits[p]) - 1);
        total += nweights[p];
    }
    if (size - pos < 4) return RMC_ERR_TRUNCATED;
    rlen = ((size_t)data[pos] << 24) | ((size_t)data[pos + 1] << 16) |
           ((size_t)data[pos + 2] << 8) | data[pos + 3];
    pos += 4;
    if (rlen < 4 || (rlen & 1)) return RMC_ERR_CORRUPT;
    if (size - pos < rlen) return RMC_ERR_TRUNCATED;
    rs.x = (uint32_t)data[pos] | ((uint32_t)data[pos + 1] << 8) |
           ((uint32_t)data[pos + 2] << 16) | ((uint32_t)data[pos + 3] << 24);
    if (rs.x < RANS_L) return RMC_ERR_CORRUPT;
    rs.p = data + pos + 4;
    rs.end = data + pos + rlen;
    rs.br = &br;
    rmc_br_init(&br, data + pos + rlen, size - pos - rlen);
    rings = (int32_t *)malloc(3 * S * (size_t)planes * sizeof(int32_t));
    erings = (int32_t *)calloc(2 * S * (size_t)planes, sizeof(int32_t));
    if (!rings || !erings) { free(rings); free(erings); return RMC_ERR_NOMEM; }
    /* per plane: the first sample (the rows above and the left padding of row 0) and model */
    for (p = 0; p < planes && st == RMC_OK; p++) {
        int32_t s00 = (int32_t)rmc_br_get(&br, bits[p]);
        pls[p].ring = rings + 3 * S * (size_t)p;
        pls[p].ering = erings + 2 * S * (size_t)p;
        for (k = 0; k < 3 * S; k++) pls[p].ring[k] = s00;
        samples[plane_size * (size_t)p] = s00;
        if (plane_size > 1) {
            st = read_model(&br, &pls[p].m);
            tables += (size_t)pls[p].m.ntables + 1;
        }
    }
    if (st == RMC_OK && tables) {
        size_t at = 0;
        lut = (uint32_t *)malloc(sizeof(uint32_t) * PROB_SCALE * tables);
        if (!lut) st = RMC_ERR_NOMEM;
        for (p = 0; p < planes && st == RMC_OK; p++) {
            build_lut(&pls[p].m, lut + at);
            for (k = 0; k < ACT_DIRECT; k++) pls[p].tmap[k] = pls[p].m.map[fc_class((uint32_t)k)];
            pls[p].lut = lut + at;
            at += ((size_t)pls[p].m.ntables + 1) * PROB_SCALE;
        }
    }
    for (y = 0; y < height && st == RMC_OK; y++) {
        for (p = 0; p < planes && st == RMC_OK; p++)
            st = decode_row_any(&rs, &pls[p], p ? &pls[p - 1] : NULL, width, y,
                                samples + plane_size * (size_t)p + (size_t)y * width);
        if (st == RMC_OK && br.zero_fill > 8) st = RMC_ERR_TRUNCATED;
    }
    free(lut);
    free(rings);
    free(erings);
    if (st != RMC_OK) return st;
    if (rs.x != RANS_L) return RMC_ERR_CORRUPT;
    if (rs.p != rs.end) return RMC_ERR_TRAILING;
    return rmc_br_finish(&br);
}
