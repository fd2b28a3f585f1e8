/* Canonical, length-limited Huffman codes (spec/rmc-v1.md, "Huffman table"). */
#ifndef RMC_HUFFMAN_H
#define RMC_HUFFMAN_H

#include "bitio.h"

#define RMC_HUFF_MAX_LEN 24
#define RMC_HUFF_MAX_SYMBOLS 4096

typedef struct {
    int n;                                   /* alphabet size */
    int max_len;                             /* longest code, 0 when no symbol is used */
    uint8_t lengths[RMC_HUFF_MAX_SYMBOLS];
    uint32_t codes[RMC_HUFF_MAX_SYMBOLS];    /* encoder: code of each symbol */
    uint16_t count[RMC_HUFF_MAX_LEN + 1];    /* decoder: codes of each length */
    uint16_t sorted[RMC_HUFF_MAX_SYMBOLS];   /* decoder: symbols in canonical order */
} rmc_huff;

/* Build the canonical code from lengths; checks the Kraft inequality. */
int rmc_huff_from_lengths(rmc_huff *h, const uint8_t *lengths, int n);
void rmc_huff_write_table(rmc_bw *w, const rmc_huff *h);
int rmc_huff_read_table(rmc_br *r, rmc_huff *h, int n);

static inline void rmc_huff_put(rmc_bw *w, const rmc_huff *h, int sym) {
    rmc_bw_put(w, h->codes[sym], h->lengths[sym]);
}

/* Returns the symbol, or -1 for a bit pattern that is no code. */
static inline int rmc_huff_get(rmc_br *r, const rmc_huff *h) {
    int len, first = 0, index = 0, code = 0;
    for (len = 1; len <= h->max_len; len++) {
        int cnt = h->count[len];
        code |= rmc_br_bit(r);
        if (code - first < cnt) return h->sorted[index + code - first];
        index += cnt;
        first += cnt;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

#endif
