/* Binary range coder with adaptive probabilities (spec/rmc-v1.md, "Coder 3").
 *
 * A 32-bit range coder in the LZMA style: the encoder keeps a 33-bit low and a pending byte
 * with a run of 0xFF bytes for carry propagation; the decoder keeps code = value - low.
 * Probabilities are 16-bit estimates of P(bit = 1), in [1, 65535], adapted by a right
 * shift that grows with the number of bits the context has seen.
 * The decoder never reads outside its buffer: past the end it feeds zero bytes and counts them. */
#ifndef RMC_RANGECODER_H
#define RMC_RANGECODER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "rmc_core.h"

#define RC_TOP (1u << 24)

typedef struct {
    uint16_t p;   /* P(bit = 1) * 65536 */
    uint8_t n;    /* bits seen, saturating at the context's limit */
    uint8_t lim;  /* largest adaptation shift */
} rc_ctx;

/* Adaptation shift after n bits (the table, then 6 below 62 bits, then 7), capped by lim. */
static const uint8_t rc_shift_table[32] = {
    1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};

static inline void rc_ctx_init(rc_ctx *c, int lim) { c->p = 32768; c->n = 0; c->lim = (uint8_t)lim; }

static inline void rc_ctx_update(rc_ctx *c, int bit) {
    int s = c->n < 31 ? rc_shift_table[c->n] : (c->n < 62 ? 6 : 7);
    if (s > c->lim) s = c->lim;
    if (c->n < 255) c->n++;
    if (bit) c->p = (uint16_t)(c->p + ((65536 - (uint32_t)c->p) >> s));
    else c->p = (uint16_t)(c->p - (c->p >> s));
}

typedef struct {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t pending;   /* bytes held back: the cache byte and a run of 0xFF */
    uint8_t *buf;
    size_t len, cap;
    int err;
} rc_encoder;

typedef struct {
    uint32_t code, range;
    const uint8_t *p;
    size_t len, pos;
    size_t zero_fill;
    int off_interval;   /* code reached range: bytes no encoder writes */
} rc_decoder;

static inline void rc_enc_byte(rc_encoder *e, uint8_t b) {
    if (e->len == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4096;
        uint8_t *nb = (uint8_t *)realloc(e->buf, cap);
        if (!nb) { e->err = RMC_ERR_NOMEM; return; }
        e->buf = nb; e->cap = cap;
    }
    e->buf[e->len++] = b;
}

static inline void rc_enc_init(rc_encoder *e) {
    e->low = 0; e->range = 0xFFFFFFFFu; e->cache = 0; e->pending = 1;
    e->buf = NULL; e->len = e->cap = 0; e->err = RMC_OK;
}

static inline void rc_shift_low(rc_encoder *e) {
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t b = e->cache;
        do { rc_enc_byte(e, (uint8_t)(b + carry)); b = 0xFF; } while (--e->pending);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->pending++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

static inline void rc_encode(rc_encoder *e, rc_ctx *c, int bit) {
    uint32_t bound = (e->range >> 16) * c->p;
    if (bit) e->range = bound;
    else { e->low += bound; e->range -= bound; }
    while (e->range < RC_TOP) { e->range <<= 8; rc_shift_low(e); }
    rc_ctx_update(c, bit);
}

/* A bit with probability p16 = P(bit = 1) * 65536, p16 in [1, 65535]; no adaptation. */
static inline void rc_encode_p(rc_encoder *e, uint32_t p16, int bit) {
    uint32_t bound = (e->range >> 16) * p16;
    if (bit) e->range = bound;
    else { e->low += bound; e->range -= bound; }
    while (e->range < RC_TOP) { e->range <<= 8; rc_shift_low(e); }
}

/* Equiprobable bit, no context. */
static inline void rc_encode_direct(rc_encoder *e, int bit) {
    e->range >>= 1;
    if (!bit) e->low += e->range;
    while (e->range < RC_TOP) { e->range <<= 8; rc_shift_low(e); }
}

static inline void rc_enc_flush(rc_encoder *e) {
    int i;
    for (i = 0; i < 5; i++) rc_shift_low(e);
}

static inline uint8_t rc_dec_byte(rc_decoder *d) {
    if (d->pos < d->len) return d->p[d->pos++];
    d->zero_fill++;
    return 0;
}

static inline void rc_dec_init(rc_decoder *d, const uint8_t *p, size_t len) {
    int i;
    d->p = p; d->len = len; d->pos = 0; d->zero_fill = 0;
    d->code = 0; d->range = 0xFFFFFFFFu;
    for (i = 0; i < 5; i++) d->code = (d->code << 8) | rc_dec_byte(d);
    d->off_interval = d->code >= d->range;
}

static inline int rc_decode(rc_decoder *d, rc_ctx *c) {
    uint32_t bound = (d->range >> 16) * c->p;
    int bit;
    if (d->code < bound) { d->range = bound; bit = 1; }
    else { d->code -= bound; d->range -= bound; bit = 0; }
    while (d->range < RC_TOP) { d->range <<= 8; d->code = (d->code << 8) | rc_dec_byte(d); }
    rc_ctx_update(c, bit);
    return bit;
}

static inline int rc_decode_p(rc_decoder *d, uint32_t p16) {
    uint32_t bound = (d->range >> 16) * p16;
    int bit;
    if (d->code < bound) { d->range = bound; bit = 1; }
    else { d->code -= bound; d->range -= bound; bit = 0; }
    while (d->range < RC_TOP) { d->range <<= 8; d->code = (d->code << 8) | rc_dec_byte(d); }
    return bit;
}

static inline int rc_decode_direct(rc_decoder *d) {
    int bit;
    d->range >>= 1;
    if (d->code < d->range) bit = 1;
    else {
        d->code -= d->range;
        bit = 0;
        if (d->code >= d->range) d->off_interval = 1;   /* the slot an odd range leaves */
    }
    while (d->range < RC_TOP) { d->range <<= 8; d->code = (d->code << 8) | rc_dec_byte(d); }
    return bit;
}

#endif
