/* The mask coder (spec/rmc-v1.md, 16E): an ROI mask, one bit per pixel in raster order, coded
 * with coder 3's range coder and logistic mixing.
 *
 * Each bit is predicted from three templates of its causal neighbours (pixels outside the
 * mask read as 0): a small one of 4 pixels, a medium one of 10 and a large one of 16, each
 * indexing its own table of adaptive contexts. Their stretched probabilities and a constant
 * input are mixed with weights chosen by the small template's context. Everything is
 * integer arithmetic; encoder and decoder run the same procedure. */
#include <stdlib.h>
#include <string.h>
#include "cm_coder.h"
#include "cm_common.h"

#define MC_PAD 3               /* zero columns either side of a row */
#define MC_CTX_LIMIT 5
#define MC_WINIT 26214         /* initial weight of a template input, 0.4 in Q16 */
#define MC_MAX_PIXELS ((uint64_t)1 << 32)

/* Template offsets (dy, dx), bit i of a context being the pixel at offset i. */
static const int8_t mc_t1[4][2] = {{0, -1}, {-1, -1}, {-1, 0}, {-1, 1}};
static const int8_t mc_t2[10][2] = {{0, -1}, {-1, -1}, {-1, 0}, {-1, 1}, {0, -2},
                                    {-1, -2}, {-1, 2}, {-2, -1}, {-2, 0}, {-2, 1}};
static const int8_t mc_t3[16][2] = {{0, -1}, {-1, -1}, {-1, 0}, {-1, 1}, {0, -2},
                                    {-1, -2}, {-1, 2}, {-2, -1}, {-2, 0}, {-2, 1},
                                    {0, -3}, {-3, 0}, {-2, -2}, {-2, 2}, {-1, -3}, {-1, 3}};

typedef struct {
    rc_ctx c1[1 << 4];
    rc_ctx c2[1 << 10];
    rc_ctx c3[1 << 16];
    int32_t w[1 << 4][4];
} mc_model;

/* The context of template t (n offsets) at column x, rows[j] being row y - j (padded). */
static uint32_t mc_context(uint8_t *const rows[4], uint32_t x, const int8_t (*t)[2], int n) {
    uint32_t c = 0;
    int i;
    for (i = 0; i < n; i++) c |= (uint32_t)rows[-t[i][0]][(ptrdiff_t)x + MC_PAD + t[i][1]] << i;
    return c;
}

/* Code the mask: from `mask` when encoding, into it when decoding (io->dec). Rows y-3 .. y
   are kept in a ring of four padded rows, with a row of zeros above row 0. */
static int mc_run(cm_io *io, uint8_t *mask, uint32_t h, uint32_t w) {
    const size_t stride = (size_t)w + 2 * MC_PAD;
    uint8_t *buf, *rows[4];
    mc_model *m;
    uint32_t y, x;
    size_t i;
    int j;
    buf = (uint8_t *)calloc(5 * stride, 1);   /* four ring rows and the zero row */
    m = (mc_model *)malloc(sizeof *m);
    if (!buf || !m) { free(buf); free(m); return RMC_ERR_NOMEM; }
    for (i = 0; i < (1 << 4); i++) rc_ctx_init(&m->c1[i], MC_CTX_LIMIT);
    for (i = 0; i < (1 << 10); i++) rc_ctx_init(&m->c2[i], MC_CTX_LIMIT);
    for (i = 0; i < (1 << 16); i++) rc_ctx_init(&m->c3[i], MC_CTX_LIMIT);
    for (i = 0; i < (1 << 4); i++) {
        m->w[i][0] = m->w[i][1] = m->w[i][2] = MC_WINIT;
        m->w[i][3] = 0;
    }
    for (y = 0; y < h; y++) {
        const size_t base = (size_t)y * w;
        for (j = 0; j < 4; j++)
            rows[j] = (uint32_t)j <= y ? buf + ((y - (uint32_t)j) & 3) * stride : buf + 4 * stride;
        for (x = 0; x < w; x++) {
            uint32_t k1 = mc_context(rows, x, mc_t1, 4);
            rc_ctx *c[3];
            int bit;
            c[0] = &m->c1[k1];
            c[1] = &m->c2[mc_context(rows, x, mc_t2, 10)];
            c[2] = &m->c3[mc_context(rows, x, mc_t3, 16)];
            bit = code_mixed_k(io, c, 3, 1, m->w[k1], io->dec ? 0 : mask[base + x] != 0);
            rows[0][(size_t)x + MC_PAD] = (uint8_t)bit;
            if (io->dec) mask[base + x] = (uint8_t)bit;
        }
    }
    free(buf);
    free(m);
    return RMC_OK;
}

static int mc_check_args(uint32_t h, uint32_t w) {
    if (h == 0 || w == 0 || (uint64_t)h * w > MC_MAX_PIXELS) return RMC_ERR_ARGUMENT;
    return RMC_OK;
}

int rmc_mask_encode(const uint8_t *mask, uint32_t height, uint32_t width, rmc_buffer *out) {
    cm_io io;
    int st = mc_check_args(height, width);
    if (st != RMC_OK) return st;
    rmc_cm_tables_init();
    st = rmc_cm_begin_encode(&io, 0, NULL, NULL);
    if (st == RMC_OK) {
        st = mc_run(&io, (uint8_t *)mask, height, width);
        st = rmc_cm_finish_encode(&io, st, out);
    }
    return st;
}

int rmc_mask_decode(const uint8_t *data, size_t size, uint32_t height, uint32_t width,
                    uint8_t *mask) {
    cm_io io;
    int st = mc_check_args(height, width);
    if (st != RMC_OK) return st;
    rmc_cm_tables_init();
    st = rmc_cm_begin_decode(&io, data, size, 0, NULL, NULL);
    if (st != RMC_OK) return st;
    st = mc_run(&io, mask, height, width);
    return rmc_cm_finish_decode(&io, st);
}
