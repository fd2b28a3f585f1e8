/* Encoder-side fit of coder 3's stored linear predictor (roimc/codecs/predictor.py).
 *
 * The weights are chosen by the encoder and stored in the tile; the decoder never refits,
 * so this file is not part of the format (spec/rmc-v1.md, 16A.9, informative). */
#ifndef RMC_LSFIT_H
#define RMC_LSFIT_H

#include <stddef.h>
#include <stdint.h>

/* Reweighted least-squares fit of the coder-3 linear predictor of one plane.
 *
 * plane: width*height int32 samples (row-major); ref: the previous plane of the tile or NULL.
 * Inputs per sample: the ten spatial neighbours N, W, NW, NE, WW, NN, NNE, NWW, NEE, NNW and,
 * with ref, R, RN, RW, RNW, RNE, read from planes padded as coder 3 pads them. Samples used:
 * raster indices first, first + step, ... below width*height. The first pass is plain least
 * squares; each further pass weights a sample by 1 / max(|residual of the previous pass|, 1).
 * Each pass solves (X'WX + lam I) c = X'Wy + lam prior. coef receives the last pass's
 * solution (10 or 15 doubles). Returns RMC_OK, RMC_ERR_ARGUMENT or RMC_ERR_NOMEM. */
int rmc_lsfit(const int32_t *plane, const int32_t *ref, uint32_t width, uint32_t height,
              size_t first, size_t step, int passes, double lam, const double *prior,
              double *coef);

#endif
