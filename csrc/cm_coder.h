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

int rmc_cm_encode(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                  const int *bits, const int16_t *weights, const int *nweights, rmc_buffer *out);
int rmc_cm_decode(const uint8_t *data, size_t size, uint32_t width, uint32_t height, int planes,
                  const int *bits, int32_t *samples);

#endif
