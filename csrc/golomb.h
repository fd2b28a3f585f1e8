/* Length-limited Golomb-Rice codes (spec/rmc-v1.md, "Limited Golomb-Rice code").
 * A value m with parameter k is written as (m >> k) zero bits, a one bit and the k low bits
 * of m, unless m >> k >= limit - qbpp - 1: then limit - qbpp - 1 zero bits, a one bit and
 * m - 1 in qbpp bits. */
#ifndef RMC_GOLOMB_H
#define RMC_GOLOMB_H

#include "bitio.h"

static inline void rmc_golomb_put(rmc_bw *w, uint32_t m, int k, int limit, int qbpp) {
    uint32_t hi = m >> k;
    uint32_t esc = (uint32_t)(limit - qbpp - 1);
    if (hi < esc) {
        rmc_bw_unary(w, hi);
        rmc_bw_put(w, m, k);
    } else {
        rmc_bw_unary(w, esc);
        rmc_bw_put(w, m - 1, qbpp);
    }
}

/* Returns the value, or -1 for a code that cannot occur (including an escape for a value
 * the short form could carry: every value has exactly one code). */
static inline int64_t rmc_golomb_get(rmc_br *r, int k, int limit, int qbpp) {
    int esc = limit - qbpp - 1;
    int hi = rmc_br_unary(r, esc);
    int64_t m;
    if (hi < 0) return -1;
    if (hi < esc) return ((int64_t)hi << k) | rmc_br_get(r, k);
    m = (int64_t)rmc_br_get(r, qbpp) + 1;
    return (m >> k) < esc ? -1 : m;
}

#endif
