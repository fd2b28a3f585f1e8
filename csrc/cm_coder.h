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

/* The predictor header of a coder-3, -4 or -5 tile stream (spec 16A.1): per plane the weight
 * count (0 or 10 for the first plane, 15 after) and the big-endian int16 weights.
 * rmc_cm_put_weights writes it into head (RMC_CM_HEAD_MAX bytes) and returns its length, or
 * -1 for a count other than 0 and the plane's; rmc_cm_get_weights reads it from data at *pos,
 * moves *pos past it and returns RMC_OK, RMC_ERR_TRUNCATED or RMC_ERR_CORRUPT (a count). */
#define RMC_CM_HEAD_MAX (RMC_MAX_PLANES * (1 + 2 * (RMC_CM_SPATIAL_INPUTS + RMC_CM_REF_INPUTS)))
int rmc_cm_put_weights(uint8_t *head, int planes, const int16_t *weights, const int *nweights);
int rmc_cm_get_weights(const uint8_t *data, size_t size, int planes, int16_t *weights,
                       int *nweights, size_t *pos);

/* form 0: the model of coder 3 (spec 16A.5-16A.8); form 1: that of coder 4 (16A.11). */
int rmc_cm_encode(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                  const int *bits, const int16_t *weights, const int *nweights, int form,
                  rmc_buffer *out);
int rmc_cm_decode(const uint8_t *data, size_t size, uint32_t width, uint32_t height, int planes,
                  const int *bits, int form, int32_t *samples);

/* Near-lossless forms (spec/rmc-v1.md; form 0: coder 3, 16A.10; forms 1 and 2: coder 4,
 * 16A.12, 16A.13):
 * the same tile stream layout; every sample within near_roi (mask != NULL and mask[i] != 0)
 * or near_bg of the original (near_bg + 1 where the grade, 0..15, raises it, and + deadzone
 * where the encoder's dead zone rounds background residuals toward zero: spec 8.7).
 * recon: NULL or planes*width*height int32 that receive the
 * decoded samples. */
int rmc_cm_encode_near(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                       const int *bits, const int16_t *weights, const int *nweights,
                       const uint8_t *mask, int near_bg, int near_roi, int grade,
                       int deadzone, int form, int32_t *recon, rmc_buffer *out);
int rmc_cm_decode_near(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                       int planes, const int *bits, const uint8_t *mask, int near_bg,
                       int near_roi, int grade, int form, int32_t *samples);

#endif
