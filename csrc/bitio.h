/* Bit writer and reader. Bits are written most significant first; the last byte is
 * padded with zero bits. The reader never reads outside its buffer: past the end it
 * yields zero bits and counts them, and rmc_br_finish() turns that into an error. */
#ifndef RMC_BITIO_H
#define RMC_BITIO_H

#include <stddef.h>
#include <stdint.h>
#include "rmc_core.h"

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    uint64_t acc;   /* pending bits, right-aligned */
    int nbits;      /* pending bit count, always < 8 between calls */
    int err;        /* RMC_ERR_NOMEM after a failed growth */
} rmc_bw;

void rmc_bw_init(rmc_bw *w, size_t initial_cap);
int rmc_bw_grow(rmc_bw *w, size_t need);
/* Pads the last byte with zeros and hands the buffer to *out. */
int rmc_bw_finish(rmc_bw *w, rmc_buffer *out);
void rmc_bw_discard(rmc_bw *w);

/* Append the low n bits of v (0 <= n <= 32). */
static inline void rmc_bw_put(rmc_bw *w, uint32_t v, int n) {
    if (n == 0) return;
    w->acc = (w->acc << n) | (n == 32 ? v : (v & ((1u << n) - 1u)));
    w->nbits += n;
    if (w->nbits >= 8) {
        if (w->len + 8 > w->cap && rmc_bw_grow(w, w->len + 8) != RMC_OK) {
            w->nbits &= 7;
            return;
        }
        while (w->nbits >= 8) {
            w->nbits -= 8;
            w->buf[w->len++] = (uint8_t)(w->acc >> w->nbits);
        }
    }
}

/* Append n zero bits followed by a one bit. */
static inline void rmc_bw_unary(rmc_bw *w, uint32_t n) {
    while (n > 24) { rmc_bw_put(w, 0, 24); n -= 24; }
    rmc_bw_put(w, 1, (int)n + 1);
}

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos;      /* next byte to load */
    uint64_t acc;    /* left-aligned: the next bit is bit 63 */
    int nbits;       /* valid bits in acc */
    size_t zero_fill; /* bytes fed past the end of the buffer */
} rmc_br;

static inline void rmc_br_init(rmc_br *r, const uint8_t *p, size_t len) {
    r->p = p; r->len = len; r->pos = 0; r->acc = 0; r->nbits = 0; r->zero_fill = 0;
}

static inline void rmc_br_refill(rmc_br *r) {
    while (r->nbits <= 56) {
        if (r->pos < r->len) {
            r->acc |= (uint64_t)r->p[r->pos++] << (56 - r->nbits);
        } else {
            r->zero_fill++;
        }
        r->nbits += 8;
    }
}

/* Read n bits (0 <= n <= 32). */
static inline uint32_t rmc_br_get(rmc_br *r, int n) {
    uint32_t v;
    if (n == 0) return 0;
    if (r->nbits < n) rmc_br_refill(r);
    v = (uint32_t)(r->acc >> (64 - n));
    r->acc <<= n;
    r->nbits -= n;
    return v;
}

static inline int rmc_br_bit(rmc_br *r) { return (int)rmc_br_get(r, 1); }

/* Count zero bits up to the next one bit and consume them and the one bit.
 * Returns the count, or -1 when more than max_zeros zeros precede the one. */
static inline int rmc_br_unary(rmc_br *r, int max_zeros) {
    int zeros = 0;
    for (;;) {
        int lz;
        if (r->nbits < 32) rmc_br_refill(r);
        lz = r->acc ? __builtin_clzll(r->acc) : 64;
        if (lz < r->nbits) {
            zeros += lz;
            if (zeros > max_zeros) return -1;
            r->acc <<= lz;
            r->acc <<= 1;
            r->nbits -= lz + 1;
            return zeros;
        }
        zeros += r->nbits;
        r->acc = 0;
        r->nbits = 0;
        if (zeros > max_zeros) return -1;
    }
}

/* After the last symbol: the stream must end within the final byte, its padding bits
 * must be zero, and no byte may follow. */
static inline int rmc_br_finish(const rmc_br *r) {
    size_t total = r->len * 8;
    size_t used = (r->pos + r->zero_fill) * 8 - (size_t)r->nbits;
    if (used > total) return RMC_ERR_TRUNCATED;
    if (total - used >= 8) return RMC_ERR_TRAILING;
    if (total > used) {
        /* pos == len here, so the padding bits are the top bits of acc */
        int pad = (int)(total - used);
        if ((r->acc >> (64 - pad)) != 0) return RMC_ERR_TRAILING;
    }
    return RMC_OK;
}

#endif
