/* Coder 5: the stored linear predictor with static per-context rANS coding of residual
 * tokens (spec/rmc-v1.md, 16C). Decodes at a few nanoseconds per sample. */
#ifndef RMC_FAST_CODER_H
#define RMC_FAST_CODER_H

#include <stdint.h>
#include "rmc_core.h"

/* weights / nweights as for rmc_encode_tile_cm (checked by the caller). */
int rmc_fast_encode(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                    const int *bits, const int16_t *weights, const int *nweights,
                    rmc_buffer *out);
int rmc_fast_decode(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                    int planes, const int *bits, int32_t *samples);

#endif
