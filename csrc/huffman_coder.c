/* Coder 1: median prediction and two-pass canonical Huffman coding of residual magnitude
 * classes, one table per activity class. spec/rmc-v1.md, "Coder 1". */
#include <stdlib.h>
#include <string.h>
#include "huffman_coder.h"
#include "huffman.h"
#include "neighbours.h"

#define CLASSES 16
#define MAX_LEN 15

static inline int bit_length(uint32_t v) { return v ? 32 - __builtin_clz(v) : 0; }

static inline int activity_class(rmc_nbr n) {
    uint32_t act = (uint32_t)(rmc_abs(n.d - n.b) + rmc_abs(n.b - n.c) + rmc_abs(n.c - n.a));
    int c = bit_length(act);
    return c < CLASSES ? c : CLASSES - 1;
}

/* Zig-zag map of the modulo-reduced error. */
static inline uint32_t residual(int32_t x, int32_t px, int32_t range) {
    int32_t e = x - px;
    if (e < 0) e += range;
    if (e >= (range + 1) / 2) e -= range;
    return e >= 0 ? 2 * (uint32_t)e : (uint32_t)(-2 * e - 1);
}

int rmc_huffcoder_encode(rmc_bw *w, const int32_t *plane, uint32_t width, uint32_t height,
                         int bits) {
    int32_t range = (int32_t)1 << bits;
    int nsym = bits + 1, c, pass;
    uint64_t (*counts)[RMC_MAX_PLANE_BITS + 1] = calloc(CLASSES, sizeof *counts);
    rmc_huff *tables = (rmc_huff *)malloc(sizeof(rmc_huff) * CLASSES);
    if (!counts || !tables) { free(counts); free(tables); return RMC_ERR_NOMEM; }
    for (pass = 0; pass < 2; pass++) {
        uint32_t y, x;
        if (pass == 1) {
            for (c = 0; c < CLASSES; c++) {
                uint8_t lengths[RMC_MAX_PLANE_BITS + 1];
                int st = rmc_huffman_lengths(counts[c], nsym, MAX_LEN, lengths);
                if (st == RMC_OK) st = rmc_huff_from_lengths(&tables[c], lengths, nsym);
                if (st != RMC_OK) { free(counts); free(tables); return st; }
                rmc_huff_write_table(w, &tables[c]);
            }
        }
        for (y = 0; y < height; y++) {
            const int32_t *cur = plane + (size_t)y * width;
            const int32_t *prev = y ? cur - width : NULL;
            for (x = 0; x < width; x++) {
                rmc_nbr n = rmc_neighbours(cur, prev, x, width);
                uint32_t m = residual(cur[x], rmc_med(n.a, n.b, n.c), range);
                int cat = bit_length(m), cls = activity_class(n);
                if (pass == 0) {
                    counts[cls][cat]++;
                } else {
                    rmc_huff_put(w, &tables[cls], cat);
                    if (cat > 1) rmc_bw_put(w, m, cat - 1);
                }
            }
        }
    }
    free(counts);
    free(tables);
    return w->err;
}

int rmc_huffcoder_decode(rmc_br *r, int32_t *plane, uint32_t width, uint32_t height,
                         int bits) {
    int32_t range = (int32_t)1 << bits, maxval = range - 1;
    int nsym = bits + 1, c, st = RMC_OK;
    uint32_t y, x;
    rmc_huff *tables = (rmc_huff *)malloc(sizeof(rmc_huff) * CLASSES);
    uint64_t (*counts)[RMC_MAX_PLANE_BITS + 1] = calloc(CLASSES, sizeof *counts);
    if (!tables || !counts) { free(tables); free(counts); return RMC_ERR_NOMEM; }
    for (c = 0; c < CLASSES && st == RMC_OK; c++) st = rmc_huff_read_table(r, &tables[c], nsym);
    for (y = 0; y < height && st == RMC_OK; y++) {
        int32_t *cur = plane + (size_t)y * width;
        const int32_t *prev = y ? cur - width : NULL;
        for (x = 0; x < width; x++) {
            rmc_nbr n = rmc_neighbours(cur, prev, x, width);
            int32_t px = rmc_med(n.a, n.b, n.c), e, v;
            int cls = activity_class(n), cat = rmc_huff_get(r, &tables[cls]);
            uint32_t m;
            if (cat < 0) { st = RMC_ERR_CORRUPT; break; }
            counts[cls][cat]++;
            m = cat == 0 ? 0 : (1u << (cat - 1)) | rmc_br_get(r, cat - 1);
            if (m >= (uint32_t)range) { st = RMC_ERR_CORRUPT; break; }
            e = (m & 1) ? -(int32_t)((m + 1) / 2) : (int32_t)(m / 2);
            v = px + e;
            if (v < 0) v += range;
            else if (v > maxval) v -= range;
            cur[x] = v;
        }
        if (r->zero_fill > 8) st = RMC_ERR_TRUNCATED;
    }
    /* one code per image: each table must be the one the encoder builds from the counts */
    for (c = 0; c < CLASSES && st == RMC_OK; c++) {
        uint8_t lengths[RMC_MAX_PLANE_BITS + 1];
        int i;
        st = rmc_huffman_lengths(counts[c], nsym, MAX_LEN, lengths);
        for (i = 0; i < nsym && st == RMC_OK; i++)
            if (lengths[i] != tables[c].lengths[i]) st = RMC_ERR_HUFFMAN_TABLE;
    }
    free(tables);
    free(counts);
    return st;
}
