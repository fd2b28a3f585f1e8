/* Encoder-side reweighted least-squares fit of coder 3's stored linear predictor.
 *
 * One pass over the sampled pixels per reweighting step accumulates the normal equations
 * X'WX and X'Wy (upper triangle, doubles: products of samples below 2^17 are exact, and the
 * unweighted sums stay exact below 2^53); a 10x10 or 15x15 system is then solved by Gaussian
 * elimination with partial pivoting. Features are read from padded copies of the planes, so
 * the fit sees exactly the inputs that coder 3 gives the stored predictor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lsfit.h"
#include "rmc_core.h"

#define PAD 2
#define KMAX 15

/* Products and sums stay separate roundings (no fused multiply-add) wherever it is built. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__GNUC__) || defined(__clang__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

/* The plane padded as coder 3 pads it (spec 16A): PAD rows above equal to the first sample;
 * left of row y the first sample of row y - 1 (of row 0 on row 0); right of row y its last
 * sample. Stride width + 2 * PAD, height + PAD rows. */
static int32_t *padded(const int32_t *plane, uint32_t w, uint32_t h) {
    size_t S = (size_t)w + 2 * PAD, y, x;
    int32_t *out = (int32_t *)malloc(S * ((size_t)h + PAD) * sizeof(int32_t));
    if (!out) return NULL;
    for (x = 0; x < PAD * S; x++) out[x] = plane[0];
    for (y = 0; y < h; y++) {
        int32_t *row = out + (y + PAD) * S;
        const int32_t *src = plane + y * w;
        int32_t left = y ? src[-(ptrdiff_t)w] : src[0];
        row[0] = row[1] = left;
        memcpy(row + PAD, src, w * sizeof(int32_t));
        row[PAD + w] = row[PAD + w + 1] = src[w - 1];
    }
    return out;
}

/* The predictor inputs of the sample at r (padded spatial plane) and rr (padded reference
 * plane, or NULL), in the order of predictor.SPATIAL and predictor.REFERENCE. */
INLINE void features(const int32_t *r, const int32_t *rr, ptrdiff_t S, double *f) {
    f[0] = r[-S];
    f[1] = r[-1];
    f[2] = r[-S - 1];
    f[3] = r[-S + 1];
    f[4] = r[-2];
    f[5] = r[-2 * S];
    f[6] = r[-2 * S + 1];
    f[7] = r[-S - 2];
    f[8] = r[-S + 2];
    f[9] = r[-2 * S - 1];
    if (rr) {
        f[10] = rr[0];
        f[11] = rr[-S];
        f[12] = rr[-1];
        f[13] = rr[-S - 1];
        f[14] = rr[-S + 1];
    }
}

/* Samples are taken in blocks of NB: their inputs and target (F, one row of NC doubles per
 * sample: K inputs, the target, zeros) and the weighted rows G = w * F, then M += G' F over
 * the block, in 4 x 4 tiles of M. Every entry of M is summed over the samples in their order
 * with separate multiplies and adds, so neither the tiling nor the vector width changes the
 * result, only the speed. */
#define NB 64
#define NC 16

#if (defined(__GNUC__) || defined(__clang__)) && !defined(RMC_LSFIT_SCALAR)
typedef double v4d __attribute__((vector_size(32)));

/* Unaligned loads and stores of four doubles (macros: no vector passes a call boundary). */
#define LOAD4(v, p) memcpy(&(v), (p), sizeof(v4d))
#define STORE4(p, v) memcpy((p), &(v), sizeof(v4d))

/* M[i0..i0+3][j0..j0+3] += sum over s < nb of G[s][i0 + r] * F[s][j0 + c]. */
INLINE void tile(double (*M)[NC], const double (*G)[NC], const double (*F)[NC], int nb,
                 int i0, int j0) {
    v4d a0, a1, a2, a3;
    int s;
    LOAD4(a0, &M[i0][j0]);
    LOAD4(a1, &M[i0 + 1][j0]);
    LOAD4(a2, &M[i0 + 2][j0]);
    LOAD4(a3, &M[i0 + 3][j0]);
    for (s = 0; s < nb; s++) {
        const double *g = &G[s][i0];
        v4d f;
        LOAD4(f, &F[s][j0]);
        const v4d g0 = {g[0], g[0], g[0], g[0]}, g1 = {g[1], g[1], g[1], g[1]},
                  g2 = {g[2], g[2], g[2], g[2]}, g3 = {g[3], g[3], g[3], g[3]};
        const v4d p0 = g0 * f, p1 = g1 * f, p2 = g2 * f, p3 = g3 * f;
        a0 += p0;
        a1 += p1;
        a2 += p2;
        a3 += p3;
    }
    STORE4(&M[i0][j0], a0);
    STORE4(&M[i0 + 1][j0], a1);
    STORE4(&M[i0 + 2][j0], a2);
    STORE4(&M[i0 + 3][j0], a3);
}

/* g[0..NC-1] = w * f[0..NC-1] */
INLINE void scale_row(double *g, const double *f, double w) {
    const v4d wv = {w, w, w, w};
    int c;
    for (c = 0; c < NC; c += 4) {
        v4d v;
        LOAD4(v, f + c);
        v *= wv;
        STORE4(g + c, v);
    }
}
#else
INLINE void tile(double (*M)[NC], const double (*G)[NC], const double (*F)[NC], int nb,
                 int i0, int j0) {
    int r, c, s;
    for (r = 0; r < 4; r++)
        for (c = 0; c < 4; c++) {
            double a = M[i0 + r][j0 + c];
            for (s = 0; s < nb; s++) {
                const double p = G[s][i0 + r] * F[s][j0 + c];
                a += p;
            }
            M[i0 + r][j0 + c] = a;
        }
}

INLINE void scale_row(double *g, const double *f, double w) {
    int c;
    for (c = 0; c < NC; c++) g[c] = w * f[c];
}
#endif

/* wt[s] = 1 / max(|target - coef . inputs|, 1) for the samples s < nb of a block; four
 * samples at a time, each one's dot product summed in input order. */
INLINE void weights(const double (*F)[NC], int nb, const double *coef, const int K,
                    double *wt) {
    int s, i;
    for (s = 0; s < nb; s += 4) {
        double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0, r0, r1, r2, r3;
        for (i = 0; i < K; i++) {
            const double c = coef[i];
            p0 += F[s][i] * c;
            p1 += F[s + 1][i] * c;
            p2 += F[s + 2][i] * c;
            p3 += F[s + 3][i] * c;
        }
        r0 = fabs(F[s][K] - p0);
        r1 = fabs(F[s + 1][K] - p1);
        r2 = fabs(F[s + 2][K] - p2);
        r3 = fabs(F[s + 3][K] - p3);
        wt[s] = 1.0 / (r0 > 1.0 ? r0 : 1.0);
        wt[s + 1] = 1.0 / (r1 > 1.0 ? r1 : 1.0);
        wt[s + 2] = 1.0 / (r2 > 1.0 ? r2 : 1.0);
        wt[s + 3] = 1.0 / (r3 > 1.0 ? r3 : 1.0);
    }
}

/* One pass: A (K x K, upper triangle) and b of the weighted normal equations; weights from
 * the residuals of coef, or 1 when coef is NULL. K is a constant at each call site. */
INLINE void accumulate(const int32_t *pl, const int32_t *rf, uint32_t w, size_t n,
                       size_t first, size_t step, const double *coef, const int K,
                       double *A, double *b) {
    const ptrdiff_t S = (ptrdiff_t)w + 2 * PAD;
    const int ncol = (K + 1 + 3) & ~3;     /* columns of M that tiles reach: inputs, target */
    size_t idx = first, y = first / w, x = first % w;
    double M[NC][NC], F[NB][NC], G[NB][NC], wt[NB];
    int i, j, s, nb;
    memset(M, 0, sizeof M);
    memset(F, 0, sizeof F);
    while (idx < n) {
        for (nb = 0; nb < NB && idx < n; nb++, idx += step) {
            const ptrdiff_t off = (ptrdiff_t)(y + PAD) * S + (ptrdiff_t)(x + PAD);
            features(pl + off, K > 10 ? rf + off : NULL, S, F[nb]);
            F[nb][K] = pl[off];
            x += step;
            if (x >= w) { y += x / w; x %= w; }
        }
        if (coef) weights((const double (*)[NC])F, nb, coef, K, wt);
        for (s = 0; s < nb; s++) scale_row(G[s], F[s], coef ? wt[s] : 1.0);
        for (i = 0; i < K; i += 4)
            for (j = i; j < ncol; j += 4)
                tile(M, (const double (*)[NC])G, (const double (*)[NC])F, nb, i, j);
    }
    for (i = 0; i < K; i++) {
        for (j = i; j < K; j++) A[i * KMAX + j] = M[i][j];
        b[i] = M[i][K];
    }
}

/* The two input counts as separate functions, each with an AVX2 clone where the compiler
 * can dispatch at load time (no FMA: the clones give the same bits). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

CLONES static void accumulate10(const int32_t *pl, uint32_t w, size_t n, size_t first,
                                size_t step, const double *coef, double *A, double *b) {
    accumulate(pl, NULL, w, n, first, step, coef, 10, A, b);
}

CLONES static void accumulate15(const int32_t *pl, const int32_t *rf, uint32_t w, size_t n,
                                size_t first, size_t step, const double *coef, double *A,
                                double *b) {
    accumulate(pl, rf, w, n, first, step, coef, KMAX, A, b);
}

/* Solve A c = b (K x K, full) by Gaussian elimination with partial pivoting; A and b are
 * overwritten. Returns 0, or -1 when the system is singular. */
static int solve(double *A, double *b, int K, double *c) {
    int i, j, k;
    for (k = 0; k < K; k++) {
        int piv = k;
        for (i = k + 1; i < K; i++)
            if (fabs(A[i * KMAX + k]) > fabs(A[piv * KMAX + k])) piv = i;
        if (!(fabs(A[piv * KMAX + k]) > 0.0)) return -1;
        if (piv != k) {
            double t;
            for (j = 0; j < K; j++) {
                t = A[k * KMAX + j]; A[k * KMAX + j] = A[piv * KMAX + j]; A[piv * KMAX + j] = t;
            }
            t = b[k]; b[k] = b[piv]; b[piv] = t;
        }
        for (i = k + 1; i < K; i++) {
            const double m = A[i * KMAX + k] / A[k * KMAX + k];
            if (m == 0.0) continue;
            for (j = k; j < K; j++) A[i * KMAX + j] -= m * A[k * KMAX + j];
            b[i] -= m * b[k];
        }
    }
    for (i = K - 1; i >= 0; i--) {
        double s = b[i];
        for (j = i + 1; j < K; j++) s -= A[i * KMAX + j] * c[j];
        c[i] = s / A[i * KMAX + i];
        if (!isfinite(c[i])) return -1;
    }
    return 0;
}

int rmc_lsfit(const int32_t *plane, const int32_t *ref, uint32_t width, uint32_t height,
              size_t first, size_t step, int passes, double lam, const double *prior,
              double *coef) {
    const int K = ref ? KMAX : 10;
    const size_t n = (size_t)width * height;
    double A[KMAX * KMAX], b[KMAX], c[KMAX];
    int32_t *pl, *rf = NULL;
    int pass, i, j, st = RMC_OK;
    if (!plane || !coef || !prior || width == 0 || height == 0 || step == 0 || passes < 1 ||
        first >= n || !(lam >= 0.0))
        return RMC_ERR_ARGUMENT;
    pl = padded(plane, width, height);
    if (ref) rf = padded(ref, width, height);
    if (!pl || (ref && !rf)) { free(pl); free(rf); return RMC_ERR_NOMEM; }
    for (pass = 0; pass < passes; pass++) {
        if (K == KMAX) accumulate15(pl, rf, width, n, first, step, pass ? c : NULL, A, b);
        else accumulate10(pl, width, n, first, step, pass ? c : NULL, A, b);
        for (i = 0; i < K; i++) {
            for (j = 0; j < i; j++) A[i * KMAX + j] = A[j * KMAX + i];
            A[i * KMAX + i] += lam;
            b[i] += lam * prior[i];
        }
        if (solve(A, b, K, c)) { st = RMC_ERR_ARGUMENT; break; }
    }
    if (st == RMC_OK) memcpy(coef, c, sizeof(double) * (size_t)K);
    free(pl);
    free(rf);
    return st;
}
