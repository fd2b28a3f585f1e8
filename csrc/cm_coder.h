/* Coder 3: blended prediction with a stored linear predictor, bias cancellation and
 * context-modelled binary range coding (spec/rmc-v1.md, "Coder 3"). */
#ifndef RMC_CM_CODER_H
#define RMC_CM_CODER_H

#include <stdint.h>
#include "rmc_core.h"

/* Inputs of the stored linear predictor: spatial neighbours, then (planes after the first)
 * neighbours in the reference plane. */
#define RMC_CM_SPATIAL_INPUTS 10
#define RMC_CM_REF_INPUTS 5

/* form 0: the model of coder 3 (spec 16A.5-16A.8); form 1: that of coder 4 (16A.11). */
int rmc_cm_encode(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                  const int *bits, const int16_t *weights, const int *nweights, int form,
                  rmc_buffer *out);
int rmc_cm_decode(const uint8_t *data, size_t size, uint32_t width, uint32_t height, int planes,
                  const int *bits, int form, int32_t *samples);

/* Near-lossless form (spec/rmc-v1.md, 16A.10): the same tile stream layout; every sample
 * within near_roi (mask != NULL and mask[i] != 0) or near_bg of the original. recon: NULL or
 * planes*width*height int32 that receive the decoded samples. */
int rmc_cm_encode_near(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                       const int *bits, const int16_t *weights, const int *nweights,
                       const uint8_t *mask, int near_bg, int near_roi, int32_t *recon,
                       rmc_buffer *out);
int rmc_cm_decode_near(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                       int planes, const int *bits, const uint8_t *mask, int near_bg,
                       int near_roi, int32_t *samples);

#endif
