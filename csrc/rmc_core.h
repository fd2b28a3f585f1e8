/* roimc C core: bit I/O, entropy coders and per-pixel prediction loops.
 *
 * One public header. Every function returns an rmc_status; RMC_OK is 0.
 * Sample planes are int32, row-major, one plane after another (planar).
 * Buffers returned through rmc_buffer are allocated here and released with rmc_free().
 */
#ifndef RMC_CORE_H
#define RMC_CORE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RMC_OK = 0,
    RMC_ERR_NOMEM = 1,          /* allocation failed */
    RMC_ERR_ARGUMENT = 2,       /* bad argument from the caller */
    RMC_ERR_TRUNCATED = 3,      /* stream ended before the data it declares */
    RMC_ERR_CORRUPT = 4,        /* stream holds a code or value that cannot occur */
    RMC_ERR_TRAILING = 5,       /* stream has data after its end, or non-zero padding */
    RMC_ERR_HUFFMAN_TABLE = 6,  /* Huffman code lengths do not form a prefix code */
    RMC_ERR_UNSUPPORTED = 7     /* coder id or parameter this core does not know */
} rmc_status;

const char *rmc_status_message(int status);

typedef struct {
    uint8_t *data;
    size_t size;
} rmc_buffer;

void rmc_free(void *p);

/* Plane coders (spec/rmc-v1.md, "Tile streams"). */
#define RMC_CODER_GOLOMB 0   /* adaptive Golomb-Rice, 365 contexts, bias cancellation, run mode */
#define RMC_CODER_HUFFMAN 1  /* two-pass canonical Huffman of residual magnitude classes */
#define RMC_CODER_RAW 2      /* samples stored in plane bits: the bound for incompressible tiles */
#define RMC_CODER_CM 3       /* blended prediction, context-modelled binary range coding */
#define RMC_CODER_CM2 4      /* coder 3 with its second model (form 1); near-lossless forms 1, 2 */
#define RMC_CODER_FAST 5     /* stored linear predictor, static rANS of residual tokens: lossless */

#define RMC_MAX_PLANE_BITS 17
#define RMC_MAX_PLANES 4

/* Encode one tile: `planes` planes of width*height samples, plane i holding values in
 * [0, 2^bits[i] - 1]. The stream is written to *out (free with rmc_free). */
int rmc_encode_tile(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                    const int *bits, int coder, rmc_buffer *out);

/* Encode one tile with coder 3 (RMC_CODER_CM), 4 (RMC_CODER_CM2) or 5 (RMC_CODER_FAST) and
 * stored linear predictors: nweights[i] is 0 (none) or the predictor size of plane i (10 for
 * the first plane, 15 after it); weights holds them in order. */
int rmc_encode_tile_cm(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                       const int *bits, const int16_t *weights, const int *nweights,
                       int coder, rmc_buffer *out);

/* Decode one tile stream into `samples` (planes*width*height int32, caller-allocated).
 * The whole of `data` must be consumed: trailing bytes or non-zero padding are errors. */
int rmc_decode_tile(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                    int planes, const int *bits, int coder, int32_t *samples);

/* Near-lossless tiles (spec/rmc-v1.md, 14.9). Every decoded sample lies within its bound of
 * the original: sample i of every plane (i = y * width + x) has the bound near_roi where
 * mask != NULL and mask[i] != 0, else near_bg, or near_bg + 1 at the tile positions (y, x)
 * the grade picks (0..15; spec 8.7; not RMC_CODER_GOLOMB: RMC_ERR_UNSUPPORTED), and
 * (encoders) up to deadzone (0..255) more outside the ROI, where residuals are rounded
 * toward zero by that much more (same streams, fewer bits; the decoder does not need it);
 * 0 <= bound <= 2^bits[p] - 1 for every plane.
 * mask: width*height bytes shared by all planes, or NULL. Coders: RMC_CODER_GOLOMB (its
 * near-lossless form; with every bound 0 it writes the lossless stream), RMC_CODER_CM and
 * RMC_CODER_CM2 (the near-lossless forms of coders 3 and 4, here without stored predictors)
 * and RMC_CODER_RAW (exact samples); RMC_CODER_HUFFMAN and RMC_CODER_FAST are
 * RMC_ERR_UNSUPPORTED. form: 0, except for RMC_CODER_CM2: 1 (files of version 1.5) or 2
 * (1.6 on: the extreme levels reach the clamps), else RMC_ERR_ARGUMENT. recon: NULL, or
 * planes*width*height int32 that receive the samples the decoder will produce. */
int rmc_encode_tile_near(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                         const int *bits, int coder, int form, const uint8_t *mask,
                         int near_bg, int near_roi, int grade, int deadzone, int32_t *recon,
                         rmc_buffer *out);
/* Near-lossless tile with coder 3 or 4 (RMC_CODER_CM, RMC_CODER_CM2) and stored linear
 * predictors (weights as for rmc_encode_tile_cm); rmc_encode_tile_near codes without them.
 * Decoded by rmc_decode_tile_near with the same coder. */
int rmc_encode_tile_near_cm(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                            const int *bits, const int16_t *weights, const int *nweights,
                            int coder, int form, const uint8_t *mask, int near_bg,
                            int near_roi, int grade, int deadzone, int32_t *recon,
                            rmc_buffer *out);
int rmc_decode_tile_near(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                         int planes, const int *bits, int coder, int form,
                         const uint8_t *mask, int near_bg, int near_roi, int grade,
                         int32_t *samples);

/* The latent coder (spec/rmc-v1.md, 16D): one plane of a neural latent, (channels, height,
 * width) int32 values in [-32767, 32767]. dc = 0: channels 1 .. channels-1, given channel 0
 * (the block means, coded elsewhere; 2 <= channels); rmc_latent_decode reads channel 0 from
 * `latent` and writes the others. dc = 1 (16D.5): every channel, the block means last
 * (1 <= channels). channels <= 64 and height * width <= 2^28, else RMC_ERR_ARGUMENT; the
 * whole of `data` must be consumed. */
int rmc_latent_encode(const int32_t *latent, int channels, uint32_t height, uint32_t width,
                      int dc, rmc_buffer *out);
int rmc_latent_decode(const uint8_t *data, size_t size, int channels, uint32_t height,
                      uint32_t width, int dc, int32_t *latent);

/* The mask coder (spec/rmc-v1.md, 16E): an ROI mask of height * width bytes (non-zero: ROI;
 * decoded as 0 or 1). height, width >= 1 and height * width <= 2^32, else RMC_ERR_ARGUMENT;
 * the whole of `data` must be consumed. */
int rmc_mask_encode(const uint8_t *mask, uint32_t height, uint32_t width, rmc_buffer *out);
int rmc_mask_decode(const uint8_t *data, size_t size, uint32_t height, uint32_t width,
                    uint8_t *mask);

/* The adjacency order of a palette (encoder only; roimc/codecs/palette.py adjacency_order):
 * `indices`, F planes of height x width table indices below k (3 <= k <=
 * RMC_PALETTE_CHAIN_MAX, else RMC_ERR_ARGUMENT), gives in `chain` (k entries) the table's
 * entries in their new order. reach: 1..65536 entries weighed at each end of the chain. */
#define RMC_PALETTE_CHAIN_MAX 4096
int rmc_palette_chain(const int32_t *indices, uint32_t frames, uint32_t height, uint32_t width,
                      uint32_t k, uint32_t reach, int32_t *chain);

/* Canonical length-limited Huffman (exposed for tests and other streams).
 * rmc_huffman_lengths: code lengths (0 = unused symbol) for `n` symbol counts, each at most
 * `max_len` (1..24); n <= 4096. */
int rmc_huffman_lengths(const uint64_t *counts, int n, int max_len, uint8_t *lengths);

/* Encode `count` symbols with the canonical code of `lengths`; the stream holds the
 * serialised table followed by the codes (spec: "Huffman table"). */
int rmc_huffman_encode_symbols(const uint16_t *symbols, size_t count, const uint8_t *lengths,
                               int n, rmc_buffer *out);
int rmc_huffman_decode_symbols(const uint8_t *data, size_t size, uint16_t *symbols,
                               size_t count, int n);

#endif
