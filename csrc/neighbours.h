/* Causal neighbourhood shared by every plane coder (spec/rmc-v1.md, "Neighbours").
 *
 *        c b d
 *        a x
 *
 * Row 0:           a = left sample (0 at x = 0), b = c = d = a.
 * Other rows:      b = above; a = left, or b at x = 0; c = above-left, or b at x = 0;
 *                  d = above-right, or b at the last column.
 */
#ifndef RMC_NEIGHBOURS_H
#define RMC_NEIGHBOURS_H

#include <stdint.h>

typedef struct { int32_t a, b, c, d; } rmc_nbr;

static inline rmc_nbr rmc_neighbours(const int32_t *cur, const int32_t *prev, uint32_t x,
                                     uint32_t width) {
    rmc_nbr n;
    if (!prev) {
        n.a = x ? cur[x - 1] : 0;
        n.b = n.c = n.d = n.a;
    } else {
        n.b = prev[x];
        n.a = x ? cur[x - 1] : n.b;
        n.c = x ? prev[x - 1] : n.b;
        n.d = (x + 1 < width) ? prev[x + 1] : n.b;
    }
    return n;
}

/* Median edge detector. */
static inline int32_t rmc_med(int32_t a, int32_t b, int32_t c) {
    int32_t mx = a > b ? a : b, mn = a > b ? b : a;
    if (c >= mx) return mn;
    if (c <= mn) return mx;
    return a + b - c;
}

static inline int32_t rmc_abs(int32_t v) { return v < 0 ? -v : v; }

/* floor(v / 2) for any sign. */
static inline int32_t rmc_floor_half(int32_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

#endif
