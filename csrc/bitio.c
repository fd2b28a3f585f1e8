#include <stdlib.h>
#include "bitio.h"

void rmc_bw_init(rmc_bw *w, size_t initial_cap) {
    w->buf = NULL; w->len = 0; w->cap = 0; w->acc = 0; w->nbits = 0; w->err = RMC_OK;
    if (initial_cap < 64) initial_cap = 64;
    rmc_bw_grow(w, initial_cap);
}

int rmc_bw_grow(rmc_bw *w, size_t need) {
    size_t cap;
    uint8_t *nb;
    if (w->err != RMC_OK) return w->err;
    if (need <= w->cap) return RMC_OK;
    cap = w->cap ? w->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { w->err = RMC_ERR_NOMEM; return w->err; }
        cap *= 2;
    }
    nb = (uint8_t *)realloc(w->buf, cap);
    if (!nb) { w->err = RMC_ERR_NOMEM; return w->err; }
    w->buf = nb;
    w->cap = cap;
    return RMC_OK;
}

int rmc_bw_finish(rmc_bw *w, rmc_buffer *out) {
    if (w->nbits > 0) rmc_bw_put(w, 0, 8 - w->nbits);
    if (w->err != RMC_OK) { rmc_bw_discard(w); return w->err; }
    out->data = w->buf;
    out->size = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return RMC_OK;
}

void rmc_bw_discard(rmc_bw *w) {
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}
