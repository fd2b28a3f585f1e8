/* The adjacency order of a palette (roimc/codecs/palette.py, adjacency_order): a chain of the
 * table's entries grown greedily so that entries often side by side in the image get near
 * indices. Encoder only; the order is stored in the PLTE chunk. Integer arithmetic. */
#include <stdlib.h>
#include "rmc_core.h"

#define TAKEN (-((int64_t)1 << 62))   /* score of a placed entry: below any other */

static size_t argmax64(const int64_t *v, uint32_t n) {
    size_t i, best = 0;
    for (i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int rmc_palette_chain(const int32_t *indices, uint32_t frames, uint32_t height, uint32_t width,
                      uint32_t k, uint32_t reach, int32_t *chain) {
    int64_t *counts, *score[2], *window[2];
    int32_t *deq;
    size_t f, y, x, i, first = 0, second = 0, left, right;
    uint32_t n;
    if (k < 3 || k > RMC_PALETTE_CHAIN_MAX || reach < 1 || reach > 65536 || !indices || !chain)
        return RMC_ERR_ARGUMENT;
    for (i = 0; i < (size_t)frames * height * width; i++)
        if ((uint32_t)indices[i] >= k) return RMC_ERR_ARGUMENT;
    counts = (int64_t *)calloc((size_t)k * k, sizeof(int64_t));
    score[0] = (int64_t *)malloc(4 * (size_t)k * sizeof(int64_t));
    deq = (int32_t *)malloc(2 * (size_t)k * sizeof(int32_t));
    if (!counts || !score[0] || !deq) {
        free(counts);
        free(score[0]);
        free(deq);
        return RMC_ERR_NOMEM;
    }
    score[1] = score[0] + k;
    window[0] = score[0] + 2 * (size_t)k;
    window[1] = score[0] + 3 * (size_t)k;
    /* neighbour counts: horizontal and vertical pairs, both ways, none on the diagonal */
    for (f = 0; f < frames; f++) {
        const int32_t *plane = indices + f * (size_t)height * width;
        for (y = 0; y < height; y++) {
            const int32_t *row = plane + y * width;
            for (x = 0; x < width; x++) {
                size_t a = (uint32_t)row[x];
                if (x + 1 < width && (uint32_t)row[x + 1] != a) {
                    counts[a * k + (uint32_t)row[x + 1]]++;
                    counts[(size_t)(uint32_t)row[x + 1] * k + a]++;
                }
                if (y + 1 < height && (uint32_t)row[x + width] != a) {
                    counts[a * k + (uint32_t)row[x + width]]++;
                    counts[(size_t)(uint32_t)row[x + width] * k + a]++;
                }
            }
        }
    }
    /* the first pair: the largest count, first in row-major order */
    {
        size_t best = argmax64(counts, k * k);
        first = best / k;
        second = best % k;
        if (first == second) second = (first + 1) % k;   /* no pairs at all */
    }
    left = k;
    right = k + 2;
    deq[left] = (int32_t)first;
    deq[left + 1] = (int32_t)second;
    for (i = 0; i < k; i++) {
        int64_t cf = counts[first * k + i], cs = counts[second * k + i];
        score[0][i] = (int64_t)reach * cf + (int64_t)(reach - 1) * cs;
        score[1][i] = (int64_t)reach * cs + (int64_t)(reach - 1) * cf;
        window[0][i] = window[1][i] = cf + cs;
    }
    score[0][first] = score[1][first] = score[0][second] = score[1][second] = TAKEN;
    for (n = 2; n < k; n++) {
        size_t p0 = argmax64(score[0], k), p1 = argmax64(score[1], k), pick;
        int end = score[0][p0] >= score[1][p1] ? 0 : 1, other = 1 - end;
        const int64_t *near;
        pick = end == 0 ? p0 : p1;
        near = counts + pick * k;
        for (i = 0; i < k; i++) {
            score[end][i] += (int64_t)reach * near[i] - window[end][i];
            window[end][i] += near[i];
        }
        if (n >= reach) {   /* the entry at distance reach - 1 from this end leaves its reach */
            size_t out = (size_t)deq[end == 0 ? left + reach - 1 : right - reach];
            const int64_t *gone = counts + out * k;
            for (i = 0; i < k; i++) window[end][i] -= gone[i];
        } else {            /* the other end's reach still covers the whole chain */
            for (i = 0; i < k; i++) {
                score[other][i] += (int64_t)(reach - n) * near[i];
                window[other][i] += near[i];
            }
        }
        if (end == 0) deq[--left] = (int32_t)pick;
        else deq[right++] = (int32_t)pick;
        score[0][pick] = score[1][pick] = TAKEN;
    }
    for (i = 0; i < k; i++) chain[i] = deq[left + i];
    free(counts);
    free(score[0]);
    free(deq);
    return RMC_OK;
}
