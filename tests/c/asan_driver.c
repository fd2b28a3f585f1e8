/* Sanitizer driver for the roimc C core (built by tests/test_sanitizers.py with
 * -fsanitize=address,undefined). Every input buffer is a malloc'd copy of exactly the size
 * passed in, every output buffer exactly the size the API promises, so any read or write
 * outside them is reported by AddressSanitizer.
 *
 *   asan_driver [ITERATIONS [SEED]]
 *
 * Exit status 0: every round trip was exact and every damaged stream either failed with a
 * status or decoded into in-range samples. 1: a check failed (message on stderr). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rmc_core.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static long failures = 0, roundtrips = 0, damaged = 0, damaged_ok = 0;

static uint32_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (uint32_t)(x >> 32);
}

static uint32_t below(uint32_t n) { return n ? rnd() % n : 0; }

/* spec 8.7: the grade G raises the background bound at (y, x) where this is below G */
static const int GRADE_ORDER[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9},
                                      {15, 7, 13, 5}};

#define FAIL(...)                                   \
    do {                                            \
        fprintf(stderr, "FAIL: " __VA_ARGS__);      \
        fprintf(stderr, "\n");                      \
        failures++;                                 \
    } while (0)

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* patterns: 0 noise, 1 constant, 2 ramp, 3 smooth walk, 4 extremes, 5 sparse, 6 stripes */
static void fill(int32_t *p, uint32_t w, uint32_t h, int bits, int pattern) {
    uint32_t x, y;
    int32_t top = (int32_t)1 << bits, maxval = top - 1, c = (int32_t)below((uint32_t)top);
    int32_t walk = c;
    for (y = 0; y < h; y++) {
        for (x = 0; x < w; x++) {
            int32_t v;
            switch (pattern) {
            case 0: v = (int32_t)below((uint32_t)top); break;
            case 1: v = c; break;
            case 2: v = (int32_t)((x * 3u + y * 5u + (uint32_t)c) % (uint32_t)top); break;
            case 3:
                walk = ((walk + (int32_t)below(7) - 3) % top + top) % top;
                v = y && x % 2 ? p[(size_t)(y - 1) * w + x] : walk;
                break;
            case 4: v = below(2) ? maxval : 0; break;
            case 5: v = below(20) == 0 ? (int32_t)below((uint32_t)top) : c; break;
            default: v = (x % 3 == 0) ? maxval : (x % 7 == 1 ? maxval / 2 : 0); break;
            }
            p[(size_t)y * w + x] = v;
        }
    }
}

static int in_range(const int32_t *s, uint32_t w, uint32_t h, int planes, const int *bits) {
    size_t n = (size_t)w * h, i;
    int p;
    for (p = 0; p < planes; p++)
        for (i = 0; i < n; i++) {
            int32_t v = s[(size_t)p * n + i];
            if (v < 0 || v >= ((int32_t)1 << bits[p])) return 0;
        }
    return 1;
}

/* Decode a private exact-size copy of data into an exact-size buffer. */
static int decode_copy(const uint8_t *data, size_t size, uint32_t w, uint32_t h, int planes,
                       const int *bits, int coder, int32_t **out) {
    uint8_t *copy = (uint8_t *)xmalloc(size);
    int32_t *samples = (int32_t *)xmalloc(sizeof(int32_t) * (size_t)w * h * (size_t)planes);
    int st;
    if (size) memcpy(copy, data, size);
    st = rmc_decode_tile(copy, size, w, h, planes, bits, coder, samples);
    free(copy);
    if (out) *out = samples;
    else free(samples);
    return st;
}

static void check_damaged(const uint8_t *data, size_t size, uint32_t w, uint32_t h, int planes,
                          const int *bits, int coder, const char *what) {
    int32_t *samples;
    int st = decode_copy(data, size, w, h, planes, bits, coder, &samples);
    damaged++;
    if (st == RMC_OK) {
        damaged_ok++;
        if (!in_range(samples, w, h, planes, bits))
            FAIL("%s: decoded samples out of range (%ux%u coder %d)", what, w, h, coder);
    } else if (st < 0 || st > RMC_ERR_UNSUPPORTED || st == RMC_ERR_NOMEM) {
        FAIL("%s: unexpected status %d", what, st);
    }
    free(samples);
}

static void mutate_and_check(const uint8_t *stream, size_t size, uint32_t w, uint32_t h,
                             int planes, const int *bits, int coder) {
    uint8_t *buf = (uint8_t *)xmalloc(size + 16);
    size_t cut, i;
    int k;
    /* truncations */
    for (k = 0; k < 4 && size; k++) {
        cut = below((uint32_t)size);
        check_damaged(stream, cut, w, h, planes, bits, coder, "truncated");
    }
    /* bit flips */
    for (k = 0; k < 6 && size; k++) {
        memcpy(buf, stream, size);
        i = below((uint32_t)size);
        buf[i] ^= (uint8_t)(1u << below(8));
        check_damaged(buf, size, w, h, planes, bits, coder, "bit flip");
    }
    /* random overwrite of a few bytes, and appended bytes */
    if (size) {
        memcpy(buf, stream, size);
        for (k = 0; k < 3; k++) buf[below((uint32_t)size)] = (uint8_t)rnd();
        check_damaged(buf, size, w, h, planes, bits, coder, "overwrite");
    }
    memcpy(buf, stream, size);
    for (k = 0; k < 16; k++) buf[size + (size_t)k] = (uint8_t)rnd();
    check_damaged(buf, size + 1 + below(16), w, h, planes, bits, coder, "appended");
    /* wrong coder and wrong bits */
    check_damaged(stream, size, w, h, planes, bits, (coder + 1 + (int)below(3)) % 4, "coder");
    free(buf);
}

static void roundtrip(uint32_t w, uint32_t h, int planes, const int *bits, int coder,
                      int pattern) {
    size_t n = (size_t)w * h;
    int32_t *in = (int32_t *)xmalloc(sizeof(int32_t) * n * (size_t)planes), *out = NULL;
    rmc_buffer buf = {NULL, 0};
    int p, st;
    for (p = 0; p < planes; p++) fill(in + n * (size_t)p, w, h, bits[p], pattern);
    st = rmc_encode_tile(in, w, h, planes, bits, coder, &buf);
    roundtrips++;
    if (st != RMC_OK) {
        FAIL("encode %ux%u planes %d bits %d coder %d pattern %d: status %d", w, h, planes,
             bits[0], coder, pattern, st);
        free(in);
        return;
    }
    st = decode_copy(buf.data, buf.size, w, h, planes, bits, coder, &out);
    if (st != RMC_OK)
        FAIL("decode %ux%u planes %d bits %d coder %d pattern %d: status %d", w, h, planes,
             bits[0], coder, pattern, st);
    else if (memcmp(in, out, sizeof(int32_t) * n * (size_t)planes) != 0)
        FAIL("mismatch %ux%u planes %d bits %d coder %d pattern %d", w, h, planes, bits[0],
             coder, pattern);
    free(out);
    if (n * (size_t)planes <= 4096) mutate_and_check(buf.data, buf.size, w, h, planes, bits, coder);
    rmc_free(buf.data);
    free(in);
}

/* Near-lossless: a random mask (exact-size copy) and bounds; every decoded sample within its
 * bound, the decoder equal to the encoder's reconstruction, damaged streams refused or in range. */
static int near_decode_copy(const uint8_t *data, size_t size, uint32_t w, uint32_t h,
                            int planes, const int *bits, int coder, int form,
                            const uint8_t *mask, int nb, int nr, int grade, int32_t *samples) {
    uint8_t *copy = (uint8_t *)xmalloc(size);
    int st;
    if (size) memcpy(copy, data, size);
    st = rmc_decode_tile_near(copy, size, w, h, planes, bits, coder, form, mask, nb, nr, grade,
                              samples);
    free(copy);
    return st;
}

/* coder 0, 3 or 4 (with, for coders 3 and 4, random stored weights half of the time); coder
 * 4 in form 1, 2 or 3 at random, forms 2 and 3 keeping the samples at 0 and MAXVAL exact; coders 3 and
 * 4 with a random grade half of the time, the background bound nb + 1 where it picks */
static void near_roundtrip(uint32_t w, uint32_t h, int planes, int bits, int pattern,
                           int coder) {
    int form = coder == RMC_CODER_CM2 ? 1 + (int)below(3) : 0;
    size_t n = (size_t)w * h, i;
    int b[4] = {bits, bits, bits, bits}, p, st, k;
    int32_t maxval = ((int32_t)1 << bits) - 1;
    int nb = (int)below(4) ? (int)below((uint32_t)(maxval < 9 ? maxval : 9) + 1)
                           : (int)below((uint32_t)maxval + 1);
    int nr = (int)below(3) ? (int)below(2) : (int)below((uint32_t)maxval + 1);
    int grade = coder != RMC_CODER_GOLOMB && nb < maxval && below(2) ? (int)below(16) : 0;
    int dz = coder != RMC_CODER_GOLOMB && below(2)
                 ? (int)below((uint32_t)(maxval - nb - (grade != 0)) + 1) % 4 : 0;
    int32_t *in = (int32_t *)xmalloc(sizeof(int32_t) * n * (size_t)planes);
    int32_t *rec = (int32_t *)xmalloc(sizeof(int32_t) * n * (size_t)planes);
    int32_t *out = (int32_t *)xmalloc(sizeof(int32_t) * n * (size_t)planes);
    uint8_t *mask = below(4) ? (uint8_t *)xmalloc(n) : NULL;
    uint32_t density = below(101);
    rmc_buffer buf = {NULL, 0};
    int16_t weights[4 * 15];
    int nw[4] = {0, 0, 0, 0}, total = 0;
    for (p = 0; p < planes; p++) fill(in + n * (size_t)p, w, h, bits, pattern);
    if (mask) for (i = 0; i < n; i++) mask[i] = below(100) < density ? (uint8_t)(1 + below(255)) : 0;
    if ((coder == RMC_CODER_CM || coder == RMC_CODER_CM2) && below(2)) {
        for (p = 0; p < planes; p++) {
            nw[p] = below(4) == 0 ? 0 : (p ? 15 : 10);
            for (k = 0; k < nw[p]; k++) weights[total + k] = (int16_t)rnd();
            total += nw[p];
        }
        st = rmc_encode_tile_near_cm(in, w, h, planes, b, weights, nw, coder, form, mask, nb,
                                     nr, grade, dz, rec, &buf);
    } else {
        st = rmc_encode_tile_near(in, w, h, planes, b, coder, form, mask, nb, nr, grade, dz,
                                  rec, &buf);
    }
    roundtrips++;
    if (st != RMC_OK) {
        FAIL("near encode %ux%u bits %d bounds %d/%d coder %d: status %d", w, h, bits, nb, nr,
             coder, st);
        goto done;
    }
    st = near_decode_copy(buf.data, buf.size, w, h, planes, b, coder, form, mask, nb, nr, grade,
                          out);
    if (st != RMC_OK) FAIL("near decode %ux%u bits %d: status %d", w, h, bits, st);
    else if (memcmp(rec, out, sizeof(int32_t) * n * (size_t)planes) != 0)
        FAIL("near decode differs from the encoder's reconstruction %ux%u bits %d", w, h, bits);
    for (p = 0; p < planes && st == RMC_OK; p++)
        for (i = 0; i < n; i++) {
            int32_t d = out[n * (size_t)p + i] - in[n * (size_t)p + i];
            int bound = (mask && mask[i]) ? nr
                        : nb + dz + (grade > GRADE_ORDER[(i / w) % 4][(i % w) % 4]);
            if (d < -bound || d > bound) {
                FAIL("near bound %d exceeded (%d) %ux%u bits %d", bound, d, w, h, bits);
                break;
            }
            if (form >= 2 && d && (in[n * (size_t)p + i] == 0 || in[n * (size_t)p + i] == maxval)) {
                FAIL("near form %d: sample %d not exact %ux%u bits %d", form,
                     in[n * (size_t)p + i], w, h, bits);
                break;
            }
        }
    if (n * (size_t)planes <= 4096 && buf.size) {
        uint8_t *dam = (uint8_t *)xmalloc(buf.size);
        for (k = 0; k < 8; k++) {
            memcpy(dam, buf.data, buf.size);
            if (k < 3) {
                st = near_decode_copy(dam, below((uint32_t)buf.size), w, h, planes, b, coder,
                                      form, mask, nb, nr, grade, out);
            } else {
                dam[below((uint32_t)buf.size)] ^= (uint8_t)(1u << below(8));
                st = near_decode_copy(dam, buf.size, w, h, planes, b, coder, form, mask, nb, nr,
                                      grade, out);
            }
            damaged++;
            if (st == RMC_OK) {
                damaged_ok++;
                if (!in_range(out, w, h, planes, b)) FAIL("near damaged: samples out of range");
            }
        }
        free(dam);
    }
    rmc_free(buf.data);
done:
    free(in); free(rec); free(out); free(mask);
}

static void near_argument_checks(void) {
    int32_t s[4] = {0, 1, 2, 3};
    int bits3[1] = {3};
    uint8_t mask[4] = {0, 1, 0, 1};
    rmc_buffer buf = {NULL, 0};
    if (rmc_encode_tile_near(s, 2, 2, 1, bits3, 0, 0, mask, 8, 0, 0, 0, NULL, &buf) != RMC_ERR_ARGUMENT)
        FAIL("near bound above maxval accepted");
    if (rmc_encode_tile_near(s, 2, 2, 1, bits3, 0, 0, mask, 0, -1, 0, 0, NULL, &buf) != RMC_ERR_ARGUMENT)
        FAIL("negative near bound accepted");
    if (rmc_encode_tile_near(s, 2, 2, 1, bits3, 1, 0, mask, 1, 1, 0, 0, NULL, &buf) != RMC_ERR_UNSUPPORTED)
        FAIL("near coder 1 accepted");
    if (rmc_encode_tile_near(s, 2, 2, 1, bits3, 2, 0, mask, 1, 1, 0, 0, NULL, &buf) != RMC_OK)
        FAIL("near raw refused");
    rmc_free(buf.data);
    buf.data = NULL;
    if (rmc_encode_tile_near(s, 2, 2, 1, bits3, RMC_CODER_CM, 0, mask, 1, 0, 0, 0, NULL, &buf) != RMC_OK)
        FAIL("near coder 3 refused");
    rmc_free(buf.data);
    buf.data = NULL;
    {
        int nw9[1] = {9}, nw10[1] = {10};
        int16_t wt[10] = {0};
        int32_t big[4] = {0, 1, 2, 8};
        if (rmc_encode_tile_near_cm(s, 2, 2, 1, bits3, wt, nw9, RMC_CODER_CM, 0, mask, 1, 0, 0, 0, NULL, &buf) !=
            RMC_ERR_ARGUMENT)
            FAIL("near cm: 9 weights accepted");
        if (rmc_encode_tile_near_cm(s, 2, 2, 1, bits3, NULL, nw10, RMC_CODER_CM, 0, mask, 1, 0, 0, 0, NULL, &buf) !=
            RMC_ERR_ARGUMENT)
            FAIL("near cm: missing weights accepted");
        if (rmc_encode_tile_near_cm(big, 2, 2, 1, bits3, wt, nw10, RMC_CODER_CM, 0, mask, 1, 0, 0, 0, NULL, &buf) !=
            RMC_ERR_ARGUMENT)
            FAIL("near cm: sample above maxval accepted");
        if (rmc_encode_tile_near_cm(s, 2, 2, 1, bits3, wt, nw10, RMC_CODER_CM, 0, mask, 8, 0, 0, 0, NULL, &buf) !=
            RMC_ERR_ARGUMENT)
            FAIL("near cm: bound above maxval accepted");
        if (rmc_encode_tile_near_cm(s, 2, 2, 1, bits3, wt, nw10, RMC_CODER_FAST, 0, mask, 1, 0,
                                    0, 0, NULL, &buf) != RMC_ERR_UNSUPPORTED)
            FAIL("near cm: coder 5 accepted");
        if (rmc_decode_tile_near(NULL, 0, 2, 2, 1, bits3, RMC_CODER_CM2, 2, mask, 1, 0, 0, big) !=
            RMC_ERR_TRUNCATED)
            FAIL("near cm2: empty stream not truncated");
        if (rmc_decode_tile_near(NULL, 0, 2, 2, 1, bits3, RMC_CODER_CM, 0, mask, 1, 0, 0, big) !=
            RMC_ERR_TRUNCATED)
            FAIL("near cm: empty stream not truncated");
        {   /* the form must be the coder's: 0, or 1 to 3 for coder 4 */
            static const int bad[][2] = {{RMC_CODER_CM, 1}, {RMC_CODER_CM2, 0},
                                         {RMC_CODER_CM2, 4}, {RMC_CODER_GOLOMB, 2},
                                         {RMC_CODER_RAW, 1}};
            size_t k;
            for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
                if (rmc_encode_tile_near(s, 2, 2, 1, bits3, bad[k][0], bad[k][1], mask, 1, 0,
                                         0, 0, NULL, &buf) != RMC_ERR_ARGUMENT)
                    FAIL("near coder %d form %d accepted", bad[k][0], bad[k][1]);
                if (rmc_decode_tile_near(NULL, 0, 2, 2, 1, bits3, bad[k][0], bad[k][1], mask, 1,
                                         0, 0, big) != RMC_ERR_ARGUMENT)
                    FAIL("near decode coder %d form %d accepted", bad[k][0], bad[k][1]);
            }
        }
    }
}

static void encoder_argument_checks(void) {
    int32_t s[4] = {0, 1, 2, 300};
    int bits8[1] = {8}, bits0[1] = {0}, bits18[1] = {18}, nw0[1] = {0};
    rmc_buffer buf = {NULL, 0};
    if (rmc_encode_tile(s, 2, 2, 1, bits8, 0, &buf) != RMC_ERR_ARGUMENT)
        FAIL("sample above 2^bits accepted");
    s[3] = -1;
    if (rmc_encode_tile(s, 2, 2, 1, bits8, 1, &buf) != RMC_ERR_ARGUMENT)
        FAIL("negative sample accepted");
    s[3] = 3;
    if (rmc_encode_tile(s, 2, 2, 1, bits0, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("bits 0 accepted");
    if (rmc_encode_tile(s, 2, 2, 1, bits18, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("bits 18 accepted");
    if (rmc_encode_tile(s, 0, 2, 1, bits8, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("width 0 accepted");
    if (rmc_encode_tile(s, 2, 2, 1, bits8, 9, &buf) != RMC_ERR_UNSUPPORTED) FAIL("coder 9 accepted");
    if (rmc_encode_tile(s, 2, 2, 1, bits8, 6, &buf) != RMC_ERR_UNSUPPORTED) FAIL("coder 6 accepted");
    if (rmc_encode_tile_cm(s, 2, 2, 1, bits8, NULL, nw0, RMC_CODER_GOLOMB, &buf) !=
        RMC_ERR_UNSUPPORTED)
        FAIL("rmc_encode_tile_cm with coder 0 accepted");
    if (rmc_encode_tile_near(s, 2, 2, 1, bits8, RMC_CODER_FAST, 0, NULL, 1, 1, 0, 0, NULL, &buf) !=
        RMC_ERR_UNSUPPORTED)
        FAIL("near-lossless coder 5 accepted");
    {   /* grade 0..15 and dead zone 0..255, not with coder 0, and room for the background
           bound they raise */
        static const struct { int coder, form, nb, grade, dz, want; } bad[] = {
            {RMC_CODER_CM2, 2, 1, 16, 0, RMC_ERR_ARGUMENT},
            {RMC_CODER_CM2, 2, 1, -1, 0, RMC_ERR_ARGUMENT},
            {RMC_CODER_CM2, 2, 1, 0, 256, RMC_ERR_ARGUMENT},
            {RMC_CODER_CM2, 2, 1, 0, -1, RMC_ERR_ARGUMENT},
            {RMC_CODER_GOLOMB, 0, 1, 1, 0, RMC_ERR_UNSUPPORTED},
            {RMC_CODER_GOLOMB, 0, 1, 0, 1, RMC_ERR_UNSUPPORTED},
            {RMC_CODER_CM, 0, 255, 1, 0, RMC_ERR_ARGUMENT},
            {RMC_CODER_CM, 0, 250, 1, 5, RMC_ERR_ARGUMENT}};
        size_t k;
        for (k = 0; k < sizeof bad / sizeof bad[0]; k++)
            if (rmc_encode_tile_near(s, 2, 2, 1, bits8, bad[k].coder, bad[k].form, NULL,
                                     bad[k].nb, 0, bad[k].grade, bad[k].dz, NULL, &buf) !=
                bad[k].want)
                FAIL("near coder %d bound %d grade %d dead zone %d accepted", bad[k].coder,
                     bad[k].nb, bad[k].grade, bad[k].dz);
    }
    if (rmc_decode_tile_near(NULL, 0, 2, 2, 1, bits8, RMC_CODER_GOLOMB, 0, NULL, 1, 1, 1, s) !=
        RMC_ERR_UNSUPPORTED)
        FAIL("grade with coder 0 accepted by the decoder");
    if (rmc_encode_tile(s, 2, 2, 1, bits8, 0, &buf) != RMC_OK) FAIL("valid 2x2 refused");
    rmc_free(buf.data);
}

/* coders 3, 4 and 5 with stored predictor weights: any int16 weights round-trip; damage is
   refused */
static void cm_weight_checks(long iterations) {
    long it;
    for (it = 0; it < iterations; it++) {
        int coder = it % 3 == 0 ? RMC_CODER_CM : (it % 3 == 1 ? RMC_CODER_CM2 : RMC_CODER_FAST);
        uint32_t w = 1 + below(40), h = 1 + below(40), i;
        int planes = 1 + (int)below(4), bits[4], nw[4], p;
        int16_t weights[4 * 15];
        int32_t *in = (int32_t *)xmalloc(sizeof(int32_t) * w * h * (size_t)planes), *out = NULL;
        rmc_buffer buf = {NULL, 0};
        int st, total = 0;
        for (p = 0; p < planes; p++) {
            bits[p] = 1 + (int)below(17);
            nw[p] = below(3) == 0 ? 0 : (p ? 15 : 10);
            for (i = 0; i < (uint32_t)nw[p]; i++) weights[total + i] = (int16_t)rnd();
            total += nw[p];
            for (i = 0; i < w * h; i++)
                in[(size_t)p * w * h + i] = (int32_t)(below(4) ? (i % 17) * 3 : rnd()) &
                                            ((1 << bits[p]) - 1);
        }
        st = rmc_encode_tile_cm(in, w, h, planes, bits, weights, nw, coder, &buf);
        if (st != RMC_OK) { FAIL("cm encode with weights: %d", st); free(in); continue; }
        st = decode_copy(buf.data, buf.size, w, h, planes, bits, coder, &out);
        roundtrips++;
        if (st != RMC_OK || memcmp(in, out, sizeof(int32_t) * w * h * (size_t)planes))
            FAIL("cm weights round trip %ux%u planes %d: %d", w, h, planes, st);
        free(out);
        mutate_and_check(buf.data, buf.size, w, h, planes, bits, coder);
        rmc_free(buf.data);
        free(in);
    }
}

static void random_streams(long iterations) {
    long it;
    for (it = 0; it < iterations; it++) {
        uint32_t w = 1 + below(48), h = 1 + below(48);
        int planes = 1 + (int)below(4), bits[4], p, coder = (int)below(5);
        size_t size = below(5) == 0 ? 0 : below(400), i;
        uint8_t *data = (uint8_t *)xmalloc(size);
        int fillbyte = (int)below(3);
        for (p = 0; p < 4; p++) bits[p] = 1 + (int)below(17);
        for (i = 0; i < size; i++)
            data[i] = fillbyte == 0 ? (uint8_t)rnd() : (fillbyte == 1 ? 0 : 0xFF);
        check_damaged(data, size, w, h, planes, bits, coder, "random stream");
        {   /* the same bytes as a near-lossless tile of coder 0, 3 or 4 (forms 1 to 3) */
            int32_t *out = (int32_t *)xmalloc(sizeof(int32_t) * w * h * (size_t)planes);
            uint8_t *mask = below(2) ? (uint8_t *)xmalloc((size_t)w * h) : NULL;
            int nb = (int)below(4), nr = (int)below(2), st, ncoder = (int)below(4), form = 0;
            int grade;
            if (ncoder == 1 || ncoder == 2) ncoder += 2;     /* 0, 3, 3, 4 */
            grade = ncoder && nb < 3 ? (int)below(16) : 0;   /* bits >= 2: nb + 1 <= MAXVAL */
            if (ncoder == 4) form = 1 + (int)below(3);
            for (p = 0; p < planes; p++) if (bits[p] < 2) bits[p] = 2;
            if (mask) for (i = 0; i < (size_t)w * h; i++) mask[i] = (uint8_t)below(2);
            st = near_decode_copy(data, size, w, h, planes, bits, ncoder, form, mask, nb, nr,
                                  grade, out);
            damaged++;
            if (st == RMC_OK) {
                damaged_ok++;
                if (!in_range(out, w, h, planes, bits)) FAIL("near random stream: out of range");
            } else if (st < 0 || st > RMC_ERR_UNSUPPORTED || st == RMC_ERR_NOMEM) {
                FAIL("near random stream: unexpected status %d", st);
            }
            free(out);
            free(mask);
        }
        free(data);
    }
}

/* Damaged copies of a valid stream (three truncations, four bit flips, appended bytes) and a
 * random stream, each given to `decode` (which returns a status and checks what it decoded):
 * a decoder must refuse the truncated and extended streams and may decode the others. */
typedef int (*stream_decoder)(const uint8_t *data, size_t size, void *ctx);

static void damage_checks(const uint8_t *data, size_t size, stream_decoder decode, void *ctx,
                          const char *what) {
    int k, st;
    size_t i;
    for (k = 0; k < 8 && size; k++) {
        uint8_t *bad = (uint8_t *)xmalloc(size + 8);
        size_t n = size;
        memcpy(bad, data, size);
        if (k < 3) n = below((uint32_t)size);
        else if (k < 7) bad[below((uint32_t)size)] ^= (uint8_t)(1u << below(8));
        else { n += 1 + below(8); for (i = size; i < n; i++) bad[i] = (uint8_t)rnd(); }
        st = decode(bad, n, ctx);
        damaged++;
        if (st == RMC_OK) {
            damaged_ok++;
            if (k < 3 || k == 7) FAIL("%s: truncated or extended stream accepted", what);
        } else if (st != RMC_ERR_TRUNCATED && st != RMC_ERR_CORRUPT && st != RMC_ERR_TRAILING) {
            FAIL("%s damaged: unexpected status %d", what, st);
        }
        free(bad);
    }
    {
        size_t n = below(300);
        uint8_t *rand_data = (uint8_t *)xmalloc(n ? n : 1);
        for (i = 0; i < n; i++) rand_data[i] = below(3) ? (uint8_t)rnd() : 0;
        st = decode(rand_data, n, ctx);
        damaged++;
        if (st == RMC_OK) damaged_ok++;
        else if (st != RMC_ERR_TRUNCATED && st != RMC_ERR_CORRUPT && st != RMC_ERR_TRAILING)
            FAIL("%s random stream: unexpected status %d", what, st);
        free(rand_data);
    }
}

/* The latent coder (16D): round trips of random latents (every channel count up to 64, the
 * escape, the extremes), with and without the block means (16D.5), argument checks, and
 * damaged and random streams. */
static int32_t latent_value(int spread, int zeros) {
    int32_t v;
    if (below(100) < (uint32_t)zeros || spread == 0) return 0;
    v = (int32_t)below((uint32_t)spread + 1);
    if (spread >= 32767 && below(8) == 0) v = 32767;
    return below(2) ? -v : v;
}

typedef struct {
    int m, dc;              /* dc: the stream holds the block means too (16D.5) */
    uint32_t h, w;
    const int32_t *first;   /* channel 0, given to the decoder */
    int32_t *out;
} latent_ctx;

/* Decode a copy of `data` (so that reads past it are caught) into c->out; a decoded latent
   must lie in [-32767, 32767]. */
static int latent_decode_copy(const uint8_t *data, size_t size, void *ctx) {
    latent_ctx *c = (latent_ctx *)ctx;
    uint8_t *copy = (uint8_t *)xmalloc(size ? size : 1);
    size_t hw = (size_t)c->h * c->w, n = (size_t)c->m * hw, i;
    int st;
    if (size) memcpy(copy, data, size);
    memcpy(c->out, c->first, sizeof(int32_t) * hw);
    st = rmc_latent_decode(copy, size, c->m, c->h, c->w, c->dc, c->out);
    free(copy);
    if (st == RMC_OK)
        for (i = c->dc ? 0 : hw; i < n; i++)
            if (c->out[i] < -32767 || c->out[i] > 32767) { FAIL("latent: decoded out of range"); break; }
    return st;
}

static void latent_checks(long iterations) {
    static const int spreads[] = {0, 1, 3, 40, 700, 32767};
    long it;
    for (it = 0; it < iterations; it++) {
        int dc = (int)(it & 1), m = 2 - dc + (int)below(63 + dc), spread = spreads[below(6)];
        int zeros = (int)below(100), st;
        uint32_t h = 1 + below(12), w = 1 + below(12);
        size_t n = (size_t)m * h * w, i;
        int32_t *lat = (int32_t *)xmalloc(n * sizeof(int32_t));
        int32_t *out = (int32_t *)xmalloc(n * sizeof(int32_t));
        latent_ctx c;
        rmc_buffer buf = {NULL, 0};
        c.m = m; c.dc = dc; c.h = h; c.w = w; c.first = lat; c.out = out;
        for (i = 0; i < n; i++) lat[i] = latent_value(spread, zeros);
        if (dc && below(2))   /* smooth block means, as an image's */
            for (i = 0; i < (size_t)h * w; i++)
                lat[i] = (int32_t)(100 + 7 * (i % w) - 5 * (i / w) + (int32_t)below(3));
        st = rmc_latent_encode(lat, m, h, w, dc, &buf);
        if (st != RMC_OK) FAIL("latent encode status %d (%d x %ux%u)", st, m, h, w);
        else {
            roundtrips++;
            st = latent_decode_copy(buf.data, buf.size, &c);
            if (st != RMC_OK || memcmp(out, lat, n * sizeof(int32_t)) != 0)
                FAIL("latent round trip (%d x %ux%u, status %d)", m, h, w, st);
            damage_checks(buf.data, buf.size, latent_decode_copy, &c, "latent");
            rmc_free(buf.data);
        }
        free(lat);
        free(out);
    }
    {   /* arguments */
        int32_t small[2 * 2 * 2] = {0}, big[65] = {0};
        rmc_buffer buf = {NULL, 0};
        if (rmc_latent_encode(small, 1, 2, 2, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("latent: 1 channel");
        if (rmc_latent_encode(big, 65, 1, 1, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("latent: 65 channels");
        if (rmc_latent_encode(small, 2, 0, 4, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("latent: height 0");
        if (rmc_latent_encode(small, 2, 1u << 15, 1u << 14, 0, &buf) != RMC_ERR_ARGUMENT)
            FAIL("latent: 2^29 positions");
        small[5] = 32768;
        if (rmc_latent_encode(small, 2, 2, 2, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("latent: 32768");
        small[5] = -32768;
        if (rmc_latent_encode(small, 2, 2, 2, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("latent: -32768");
        small[5] = 0;
        small[1] = 40000;   /* channel 0 given to the decoder */
        if (rmc_latent_decode((const uint8_t *)"\0\0\0\0\0", 5, 2, 2, 2, 0, small) != RMC_ERR_ARGUMENT)
            FAIL("latent decode: channel 0 out of range");
        if (rmc_latent_encode(small, 0, 2, 2, 1, &buf) != RMC_ERR_ARGUMENT) FAIL("latent: 0 channels");
        if (rmc_latent_encode(small, 2, 2, 2, 2, &buf) != RMC_ERR_ARGUMENT) FAIL("latent: dc 2");
    }
}

/* The mask coder (16E): round trips of random masks (noise of any density, discs, 1 x N and
 * N x 1), argument checks, and damaged and random streams. */
typedef struct {
    uint32_t h, w;
    uint8_t *out;
} mask_ctx;

/* Decode a copy of `data` into c->out; a decoded mask holds only 0 and 1. */
static int mask_decode_copy(const uint8_t *data, size_t size, void *ctx) {
    mask_ctx *c = (mask_ctx *)ctx;
    uint8_t *copy = (uint8_t *)xmalloc(size ? size : 1);
    size_t n = (size_t)c->h * c->w, i;
    int st;
    if (size) memcpy(copy, data, size);
    st = rmc_mask_decode(copy, size, c->h, c->w, c->out);
    free(copy);
    if (st == RMC_OK)
        for (i = 0; i < n; i++)
            if (c->out[i] > 1) { FAIL("mask: a decoded value above 1"); break; }
    return st;
}

static void mask_checks(long iterations) {
    long it;
    for (it = 0; it < iterations; it++) {
        uint32_t h = 1 + below(it % 5 == 0 ? 1 : 40), w = 1 + below(it % 7 == 0 ? 300 : 40);
        uint32_t density = below(101), y, x, cy = below(h), cx = below(w), r = below(h + w);
        size_t n = (size_t)h * w;
        int st, disc = (int)below(2);
        uint8_t *m = (uint8_t *)xmalloc(n), *out = (uint8_t *)xmalloc(n);
        mask_ctx c;
        rmc_buffer buf = {NULL, 0};
        c.h = h; c.w = w; c.out = out;
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++) {
                int64_t dy = (int64_t)y - cy, dx = (int64_t)x - cx;
                m[(size_t)y * w + x] = disc ? (uint8_t)(dy * dy + dx * dx <= (int64_t)r * r)
                                            : (uint8_t)(below(100) < density);
            }
        st = rmc_mask_encode(m, h, w, &buf);
        if (st != RMC_OK) FAIL("mask encode status %d (%ux%u)", st, h, w);
        else {
            roundtrips++;
            st = mask_decode_copy(buf.data, buf.size, &c);
            if (st != RMC_OK || memcmp(out, m, n) != 0)
                FAIL("mask round trip (%ux%u, status %d)", h, w, st);
            damage_checks(buf.data, buf.size, mask_decode_copy, &c, "mask");
            rmc_free(buf.data);
        }
        free(m);
        free(out);
    }
    {   /* arguments */
        uint8_t small[4] = {0};
        rmc_buffer buf = {NULL, 0};
        if (rmc_mask_encode(small, 0, 4, &buf) != RMC_ERR_ARGUMENT) FAIL("mask: height 0");
        if (rmc_mask_encode(small, 4, 0, &buf) != RMC_ERR_ARGUMENT) FAIL("mask: width 0");
        if (rmc_mask_decode((const uint8_t *)"\0\0\0\0\0", 5, 0, 1, small) != RMC_ERR_ARGUMENT)
            FAIL("mask decode: height 0");
        if (rmc_mask_encode(small, 1u << 17, 1u << 16, &buf) != RMC_ERR_ARGUMENT)
            FAIL("mask: 2^33 pixels");
    }
}

/* The palette order: random index planes (frames x height x width) of k entries give a
   permutation of the k entries at every reach; bad arguments are refused. */
static void palette_chain_checks(long iterations) {
    long it;
    for (it = 0; it < iterations; it++) {
        uint32_t f = 1 + below(3), h = 1 + below(30), w = 1 + below(30), k = 3 + below(60);
        uint32_t reach = it % 3 == 0 ? 1 + below(4) : 256, i;
        size_t n = (size_t)f * h * w;
        int32_t *idx = (int32_t *)xmalloc(n * sizeof(int32_t));
        int32_t *chain = (int32_t *)xmalloc(k * sizeof(int32_t));
        uint8_t *seen = (uint8_t *)calloc(k, 1);
        int st;
        for (i = 0; i < n; i++) idx[i] = (int32_t)(it % 2 ? below(k) : (i / (1 + below(9))) % k);
        st = rmc_palette_chain(idx, f, h, w, k, reach, chain);
        if (st != RMC_OK) FAIL("palette chain status %d (k %u)", st, k);
        else
            for (i = 0; i < k; i++) {
                if (chain[i] < 0 || (uint32_t)chain[i] >= k || seen[chain[i]]++)
                    FAIL("palette chain is not a permutation (k %u)", k);
            }
        idx[below((uint32_t)n)] = (int32_t)k;   /* an index out of range */
        if (rmc_palette_chain(idx, f, h, w, k, reach, chain) != RMC_ERR_ARGUMENT)
            FAIL("palette chain: index %u accepted", k);
        free(idx);
        free(chain);
        free(seen);
    }
    {
        int32_t idx[4] = {0, 1, 2, 0}, chain[4];
        if (rmc_palette_chain(idx, 1, 2, 2, 2, 256, chain) != RMC_ERR_ARGUMENT)
            FAIL("palette chain: k 2");
        if (rmc_palette_chain(idx, 1, 2, 2, RMC_PALETTE_CHAIN_MAX + 1, 256, chain) !=
            RMC_ERR_ARGUMENT)
            FAIL("palette chain: k above the limit");
        if (rmc_palette_chain(idx, 1, 2, 2, 3, 0, chain) != RMC_ERR_ARGUMENT)
            FAIL("palette chain: reach 0");
    }
}

static void huffman_checks(long iterations) {
    long it;
    for (it = 0; it < iterations; it++) {
        int n = 1 + (int)below(it % 10 == 0 ? 4096 : 300), max_len, i, st;
        size_t count = below(600), k;
        uint64_t *counts = (uint64_t *)xmalloc(sizeof(uint64_t) * (size_t)n);
        uint8_t *lengths = (uint8_t *)xmalloc((size_t)n);
        uint16_t *symbols = (uint16_t *)xmalloc(sizeof(uint16_t) * count);
        uint16_t *decoded = (uint16_t *)xmalloc(sizeof(uint16_t) * count);
        rmc_buffer buf = {NULL, 0};
        int skew = (int)below(3);
        uint64_t kraft = 0;
        for (k = 0; k < count; k++) {
            uint32_t s = skew == 0 ? below((uint32_t)n) : (skew == 1 ? below(1 + below((uint32_t)n)) : 0);
            symbols[k] = (uint16_t)s;
        }
        memset(counts, 0, sizeof(uint64_t) * (size_t)n);
        for (k = 0; k < count; k++) counts[symbols[k]]++;
        max_len = 1;
        while ((1 << max_len) < n) max_len++;
        max_len += (int)below((uint32_t)(25 - max_len));
        st = rmc_huffman_lengths(counts, n, max_len, lengths);
        if (st != RMC_OK) { FAIL("huffman lengths n=%d max_len=%d: %d", n, max_len, st); goto next; }
        for (i = 0; i < n; i++) {
            if ((counts[i] == 0) != (lengths[i] == 0)) FAIL("length/count mismatch at %d", i);
            if (lengths[i] > max_len) FAIL("length %d above %d", lengths[i], max_len);
            if (lengths[i]) kraft += (uint64_t)1 << (24 - lengths[i]);
        }
        if (kraft > ((uint64_t)1 << 24)) FAIL("kraft sum above 1 (n=%d)", n);
        st = rmc_huffman_encode_symbols(symbols, count, lengths, n, &buf);
        if (st != RMC_OK) { FAIL("huffman encode: %d", st); goto next; }
        {
            uint8_t *copy = (uint8_t *)xmalloc(buf.size);
            memcpy(copy, buf.data, buf.size);
            st = rmc_huffman_decode_symbols(copy, buf.size, decoded, count, n);
            if (st != RMC_OK || (count && memcmp(symbols, decoded, sizeof(uint16_t) * count)))
                FAIL("huffman round trip n=%d count=%zu: %d", n, count, st);
            /* damage: flip, truncate, random */
            if (buf.size) copy[below((uint32_t)buf.size)] ^= (uint8_t)(1u << below(8));
            st = rmc_huffman_decode_symbols(copy, buf.size, decoded, count, n);
            if (st == RMC_OK)
                for (k = 0; k < count; k++)
                    if (decoded[k] >= n) FAIL("decoded symbol %u >= %d", decoded[k], n);
            st = rmc_huffman_decode_symbols(copy, buf.size / 2, decoded, count, n);
            for (k = 0; k < buf.size; k++) copy[k] = (uint8_t)rnd();
            st = rmc_huffman_decode_symbols(copy, buf.size, decoded, count, 1 + (int)below(4096));
            (void)st;
            free(copy);
        }
        rmc_free(buf.data);
    next:
        free(counts); free(lengths); free(symbols); free(decoded);
    }
    {
        /* full alphabet at the exact limit, and the oversubscribed table */
        static uint64_t counts[4096];
        static uint8_t lengths[4096];
        uint16_t sym[2] = {0, 1};
        rmc_buffer buf = {NULL, 0};
        int i;
        for (i = 0; i < 4096; i++) counts[i] = (uint64_t)(i + 1) * (uint64_t)(i + 1) * 977u;
        if (rmc_huffman_lengths(counts, 4096, 12, lengths) != RMC_OK) FAIL("4096 symbols in 12 bits");
        for (i = 0; i < 4096; i++) if (lengths[i] != 12) { FAIL("length %d != 12", lengths[i]); break; }
        lengths[0] = lengths[1] = lengths[2] = 1;
        if (rmc_huffman_encode_symbols(sym, 2, lengths, 3, &buf) != RMC_ERR_HUFFMAN_TABLE)
            FAIL("oversubscribed table accepted");
    }
}

int main(int argc, char **argv) {
    static const uint32_t sizes[][2] = {{1, 1}, {1, 2}, {2, 1}, {67, 1}, {1, 67}, {3, 3},
                                        {13, 7}, {17, 31}, {5, 64}, {3, 129}, {65, 33},
                                        {40, 40}};
    long iterations;
    int b, coder, s, pattern = 0;
    /* canaries: prove that the sanitizers are active in this build */
    if (argc > 1 && strcmp(argv[1], "--asan-canary") == 0) {
        volatile uint8_t *p = (volatile uint8_t *)xmalloc(8);
        int v = p[8];
        free((void *)p);
        return v == 12345;
    }
    if (argc > 1 && strcmp(argv[1], "--ubsan-canary") == 0) {
        volatile int32_t big = INT32_MAX;
        int32_t v = big + (int32_t)argc;
        return v == 0;
    }
    iterations = argc > 1 ? atol(argv[1]) : 2000;
    if (argc > 2) rng_state = strtoull(argv[2], NULL, 0) | 1;

    encoder_argument_checks();
    for (b = 1; b <= RMC_MAX_PLANE_BITS; b++) {
        for (coder = 0; coder <= RMC_CODER_FAST; coder++) {
            for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++) {
                int gray[1] = {b}, colour[3] = {b, b + 1 > 17 ? 17 : b + 1, b + 1 > 17 ? 17 : b + 1};
                int four[4] = {b, b, b, b};
                roundtrip(sizes[s][1], sizes[s][0], 1, gray, coder, pattern++ % 7);
                roundtrip(sizes[s][1], sizes[s][0], 3, colour, coder, pattern++ % 7);
                if (s % 4 == 0) roundtrip(sizes[s][1], sizes[s][0], 4, four, coder, pattern++ % 7);
            }
        }
    }
    /* long rows: run mode past the largest run chunk, and long escape-heavy noise */
    for (coder = 0; coder <= RMC_CODER_FAST; coder++) {
        int bits1[1] = {1}, bits8[1] = {8}, bits17[1] = {17}, bits16[1] = {16};
        roundtrip(100000, 2, 1, bits8, coder, 1);
        roundtrip(70001, 1, 1, bits1, coder, 5);
        roundtrip(300, 200, 1, bits17, coder, 0);
        roundtrip(257, 255, 1, bits16, coder, 3);
        roundtrip(1, 3000, 1, bits16, coder, 4);
    }
    cm_weight_checks(iterations / 20);
    near_argument_checks();
    for (b = 1; b <= 16; b++)
        for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++) {
            near_roundtrip(sizes[s][1], sizes[s][0], 1 + (int)below(3), b, pattern++ % 7, 0);
            near_roundtrip(sizes[s][1], sizes[s][0], 1, b, pattern++ % 7, 0);
            near_roundtrip(sizes[s][1], sizes[s][0], 1 + (int)below(4), b, pattern++ % 7,
                           RMC_CODER_CM);
            near_roundtrip(sizes[s][1], sizes[s][0], 1, b, pattern++ % 7, RMC_CODER_CM);
            near_roundtrip(sizes[s][1], sizes[s][0], 1 + (int)below(4), b, pattern++ % 7,
                           RMC_CODER_CM2);
        }
    near_roundtrip(70001, 2, 1, 8, 5, 0);
    near_roundtrip(300, 200, 1, 16, 0, 0);
    near_roundtrip(70001, 2, 1, 8, 5, RMC_CODER_CM);
    near_roundtrip(300, 200, 1, 16, 0, RMC_CODER_CM);
    near_roundtrip(257, 129, 3, 12, 3, RMC_CODER_CM);
    near_roundtrip(70001, 2, 1, 8, 5, RMC_CODER_CM2);
    near_roundtrip(257, 129, 3, 12, 3, RMC_CODER_CM2);
    random_streams(iterations);
    huffman_checks(iterations / 4);
    latent_checks(iterations / 10);
    mask_checks(iterations / 4);
    palette_chain_checks(iterations / 10);
    printf("roundtrips %ld, damaged %ld (%ld decoded), failures %ld\n", roundtrips, damaged,
           damaged_ok, failures);
    return failures ? 1 : 0;
}
