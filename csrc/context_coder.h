#ifndef RMC_CONTEXT_CODER_H
#define RMC_CONTEXT_CODER_H
#include "bitio.h"
int rmc_context_encode(rmc_bw *w, const int32_t *plane, uint32_t width, uint32_t height, int bits);
int rmc_context_decode(rmc_br *r, int32_t *plane, uint32_t width, uint32_t height, int bits);
/* Near-lossless coder 0 (spec 14.9): sample i has the bound near_roi where mask && mask[i],
 * else near_bg. The encoder writes the decoded samples to recon (width*height). */
int rmc_context_encode_near(rmc_bw *w, const int32_t *plane, int32_t *recon, uint32_t width,
                            uint32_t height, int bits, const uint8_t *mask, int32_t near_bg,
                            int32_t near_roi);
int rmc_context_decode_near(rmc_br *r, int32_t *plane, uint32_t width, uint32_t height,
                            int bits, const uint8_t *mask, int32_t near_bg, int32_t near_roi);
#endif
