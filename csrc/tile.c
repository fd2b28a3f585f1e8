/* Tile streams: the planes of one tile, coded one after another into one bit stream. */
#include <stdlib.h>
#include "rmc_core.h"
#include "bitio.h"
#include "context_coder.h"
#include "huffman_coder.h"
#include "cm_coder.h"
#include "fast_coder.h"

static const char *const messages[] = {
    "ok",
    "out of memory",
    "invalid argument",
    "stream is truncated",
    "stream is corrupt",
    "stream has trailing data",
    "invalid Huffman table",
    "unsupported coder or parameter",
};

const char *rmc_status_message(int status) {
    if (status < 0 || status >= (int)(sizeof messages / sizeof messages[0])) return "unknown error";
    return messages[status];
}

void rmc_free(void *p) { free(p); }

static void raw_encode(rmc_bw *w, const int32_t *s, size_t n, int bits) {
    size_t i;
    for (i = 0; i < n; i++) rmc_bw_put(w, (uint32_t)s[i], bits);
}

static int raw_decode(rmc_br *r, int32_t *s, size_t n, int bits) {
    size_t i;
    for (i = 0; i < n; i++) {
        s[i] = (int32_t)rmc_br_get(r, bits);
        if ((i & 4095) == 0 && r->zero_fill > 8) return RMC_ERR_TRUNCATED;
    }
    return RMC_OK;
}

static int check_args(uint32_t width, uint32_t height, int planes, const int *bits, int coder) {
    int p;
    if (width == 0 || height == 0 || planes < 1 || planes > RMC_MAX_PLANES || !bits)
        return RMC_ERR_ARGUMENT;
    if ((uint64_t)width * height * (uint64_t)planes > ((uint64_t)1 << 40)) return RMC_ERR_ARGUMENT;
    for (p = 0; p < planes; p++)
        if (bits[p] < 1 || bits[p] > RMC_MAX_PLANE_BITS) return RMC_ERR_ARGUMENT;
    if (coder != RMC_CODER_GOLOMB && coder != RMC_CODER_HUFFMAN && coder != RMC_CODER_RAW &&
        coder != RMC_CODER_CM && coder != RMC_CODER_CM2 && coder != RMC_CODER_FAST)
        return RMC_ERR_UNSUPPORTED;
    return RMC_OK;
}

int rmc_encode_tile(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                    const int *bits, int coder, rmc_buffer *out) {
    size_t plane_size = (size_t)width * height, i;
    rmc_bw w;
    int p, st = check_args(width, height, planes, bits, coder);
    if (st != RMC_OK) return st;
    for (p = 0; p < planes; p++) {
        const int32_t *s = samples + plane_size * (size_t)p;
        int32_t maxval = ((int32_t)1 << bits[p]) - 1;
        for (i = 0; i < plane_size; i++)
            if (s[i] < 0 || s[i] > maxval) return RMC_ERR_ARGUMENT;
    }
    if (coder == RMC_CODER_CM || coder == RMC_CODER_CM2 || coder == RMC_CODER_FAST) {
        static const int none[RMC_MAX_PLANES] = {0, 0, 0, 0};
        if (coder == RMC_CODER_FAST)
            return rmc_fast_encode(samples, width, height, planes, bits, NULL, none, out);
        return rmc_cm_encode(samples, width, height, planes, bits, NULL, none,
                             coder == RMC_CODER_CM2, out);
    }
    rmc_bw_init(&w, plane_size * (size_t)planes / 2 + 64);
    for (p = 0; p < planes && st == RMC_OK; p++) {
        const int32_t *s = samples + plane_size * (size_t)p;
        if (coder == RMC_CODER_GOLOMB) st = rmc_context_encode(&w, s, width, height, bits[p]);
        else if (coder == RMC_CODER_HUFFMAN) st = rmc_huffcoder_encode(&w, s, width, height, bits[p]);
        else { raw_encode(&w, s, plane_size, bits[p]); st = w.err; }
    }
    if (st != RMC_OK) { rmc_bw_discard(&w); return st; }
    return rmc_bw_finish(&w, out);
}

int rmc_encode_tile_cm(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                       const int *bits, const int16_t *weights, const int *nweights,
                       int coder, rmc_buffer *out) {
    size_t plane_size = (size_t)width * height, i;
    int p, total = 0, st = check_args(width, height, planes, bits, coder);
    if (st != RMC_OK) return st;
    if (coder != RMC_CODER_CM && coder != RMC_CODER_CM2 && coder != RMC_CODER_FAST)
        return RMC_ERR_UNSUPPORTED;
    if (!samples || !nweights || !out) return RMC_ERR_ARGUMENT;
    for (p = 0; p < planes; p++) {
        const int32_t *s = samples + plane_size * (size_t)p;
        int32_t maxval = ((int32_t)1 << bits[p]) - 1;
        for (i = 0; i < plane_size; i++)
            if (s[i] < 0 || s[i] > maxval) return RMC_ERR_ARGUMENT;
        total += nweights[p];
    }
    if (total && !weights) return RMC_ERR_ARGUMENT;
    if (coder == RMC_CODER_FAST)
        return rmc_fast_encode(samples, width, height, planes, bits, weights, nweights, out);
    return rmc_cm_encode(samples, width, height, planes, bits, weights, nweights,
                         coder == RMC_CODER_CM2, out);
}

int rmc_decode_tile(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                    int planes, const int *bits, int coder, int32_t *samples) {
    size_t plane_size = (size_t)width * height;
    rmc_br r;
    int p, st = check_args(width, height, planes, bits, coder);
    if (st != RMC_OK) return st;
    if (!data && size) return RMC_ERR_ARGUMENT;
    if (coder == RMC_CODER_FAST) return rmc_fast_decode(data, size, width, height, planes, bits, samples);
    if (coder == RMC_CODER_CM || coder == RMC_CODER_CM2)
        return rmc_cm_decode(data, size, width, height, planes, bits, coder == RMC_CODER_CM2,
                             samples);
    rmc_br_init(&r, data, size);
    for (p = 0; p < planes && st == RMC_OK; p++) {
        int32_t *s = samples + plane_size * (size_t)p;
        if (coder == RMC_CODER_GOLOMB) st = rmc_context_decode(&r, s, width, height, bits[p]);
        else if (coder == RMC_CODER_HUFFMAN) st = rmc_huffcoder_decode(&r, s, width, height, bits[p]);
        else st = raw_decode(&r, s, plane_size, bits[p]);
    }
    if (st == RMC_OK) st = rmc_br_finish(&r);
    return st;
}

/* Near-lossless tiles: bounds checked against every plane; the near-lossless form of coder
 * 0, 3 or 4, or raw. The form is 0 except for coder 4 (1: version 1.5, 2: 1.6 to 1.13,
 * 3: 1.14 on). A grade (1..15) and a dead zone (0..255; coders 2, 3 and 4) need room for the
 * raised background bound. */
static int check_near_args(uint32_t width, uint32_t height, int planes, const int *bits,
                           int coder, int form, int near_bg, int near_roi, int grade,
                           int deadzone) {
    int p, st = check_args(width, height, planes, bits, coder);
    if (st != RMC_OK) return st;
    if (coder != RMC_CODER_GOLOMB && coder != RMC_CODER_RAW && coder != RMC_CODER_CM &&
        coder != RMC_CODER_CM2)
        return RMC_ERR_UNSUPPORTED;
    if (coder == RMC_CODER_CM2 ? form < 1 || form > 3 : form != 0) return RMC_ERR_ARGUMENT;
    if (grade < 0 || grade > 15 || deadzone < 0 || deadzone > 255) return RMC_ERR_ARGUMENT;
    if ((grade || deadzone) && coder == RMC_CODER_GOLOMB) return RMC_ERR_UNSUPPORTED;
    for (p = 0; p < planes; p++) {
        int32_t maxval = ((int32_t)1 << bits[p]) - 1;
        if (near_bg < 0 || near_bg + (grade != 0) + deadzone > maxval || near_roi < 0 ||
            near_roi > maxval)
            return RMC_ERR_ARGUMENT;
    }
    return RMC_OK;
}

int rmc_encode_tile_near(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                         const int *bits, int coder, int form, const uint8_t *mask,
                         int near_bg, int near_roi, int grade, int deadzone, int32_t *recon,
                         rmc_buffer *out) {
    size_t plane_size = (size_t)width * height, i;
    int32_t *own = NULL;
    rmc_bw w;
    int p, st = check_near_args(width, height, planes, bits, coder, form, near_bg, near_roi,
                                grade, deadzone);
    if (st != RMC_OK) return st;
    if (!samples || !out) return RMC_ERR_ARGUMENT;
    for (p = 0; p < planes; p++) {
        const int32_t *s = samples + plane_size * (size_t)p;
        int32_t maxval = ((int32_t)1 << bits[p]) - 1;
        for (i = 0; i < plane_size; i++)
            if (s[i] < 0 || s[i] > maxval) return RMC_ERR_ARGUMENT;
    }
    if (coder == RMC_CODER_CM || coder == RMC_CODER_CM2) {
        static const int none[RMC_MAX_PLANES] = {0, 0, 0, 0};
        return rmc_cm_encode_near(samples, width, height, planes, bits, NULL, none, mask,
                                  near_bg, near_roi, grade, deadzone, form, recon, out);
    }
    if (!recon) {
        own = (int32_t *)malloc(sizeof(int32_t) * plane_size * (size_t)planes);
        if (!own) return RMC_ERR_NOMEM;
        recon = own;
    }
    rmc_bw_init(&w, plane_size * (size_t)planes / 4 + 64);
    for (p = 0; p < planes && st == RMC_OK; p++) {
        const int32_t *s = samples + plane_size * (size_t)p;
        int32_t *rec = recon + plane_size * (size_t)p;
        if (coder == RMC_CODER_GOLOMB) {
            st = rmc_context_encode_near(&w, s, rec, width, height, bits[p], mask, near_bg,
                                         near_roi);
        } else {
            raw_encode(&w, s, plane_size, bits[p]);
            for (i = 0; i < plane_size; i++) rec[i] = s[i];
            st = w.err;
        }
    }
    free(own);
    if (st != RMC_OK) { rmc_bw_discard(&w); return st; }
    return rmc_bw_finish(&w, out);
}

int rmc_decode_tile_near(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                         int planes, const int *bits, int coder, int form,
                         const uint8_t *mask, int near_bg, int near_roi, int grade,
                         int32_t *samples) {
    size_t plane_size = (size_t)width * height;
    rmc_br r;
    int p, st = check_near_args(width, height, planes, bits, coder, form, near_bg, near_roi,
                                grade, 0);
    if (st != RMC_OK) return st;
    if ((!data && size) || !samples) return RMC_ERR_ARGUMENT;
    if (coder == RMC_CODER_CM || coder == RMC_CODER_CM2)
        return rmc_cm_decode_near(data, size, width, height, planes, bits, mask, near_bg,
                                  near_roi, grade, form, samples);
    rmc_br_init(&r, data, size);
    for (p = 0; p < planes && st == RMC_OK; p++) {
        int32_t *s = samples + plane_size * (size_t)p;
        if (coder == RMC_CODER_GOLOMB)
            st = rmc_context_decode_near(&r, s, width, height, bits[p], mask, near_bg, near_roi);
        else
            st = raw_decode(&r, s, plane_size, bits[p]);
    }
    if (st == RMC_OK) st = rmc_br_finish(&r);
    return st;
}

int rmc_encode_tile_near_cm(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                            const int *bits, const int16_t *weights, const int *nweights,
                            int coder, int form, const uint8_t *mask, int near_bg,
                            int near_roi, int grade, int deadzone, int32_t *recon,
                            rmc_buffer *out) {
    size_t plane_size = (size_t)width * height, i;
    int p, total = 0;
    int st = check_near_args(width, height, planes, bits, coder, form, near_bg, near_roi, grade,
                             deadzone);
    if (st != RMC_OK) return st;
    if (coder != RMC_CODER_CM && coder != RMC_CODER_CM2) st = RMC_ERR_UNSUPPORTED;
    if (st != RMC_OK) return st;
    if (!samples || !nweights || !out) return RMC_ERR_ARGUMENT;
    for (p = 0; p < planes; p++) {
        const int32_t *s = samples + plane_size * (size_t)p;
        int32_t maxval = ((int32_t)1 << bits[p]) - 1;
        for (i = 0; i < plane_size; i++)
            if (s[i] < 0 || s[i] > maxval) return RMC_ERR_ARGUMENT;
        if (nweights[p] < 0) return RMC_ERR_ARGUMENT;
        total += nweights[p];
    }
    if (total && !weights) return RMC_ERR_ARGUMENT;
    return rmc_cm_encode_near(samples, width, height, planes, bits, weights, nweights, mask,
                              near_bg, near_roi, grade, deadzone, form, recon, out);
}
