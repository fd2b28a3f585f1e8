#ifndef RMC_CONTEXT_CODER_H
#define RMC_CONTEXT_CODER_H
#include "bitio.h"
int rmc_context_encode(rmc_bw *w, const int32_t *plane, uint32_t width, uint32_t height, int bits);
int rmc_context_decode(rmc_br *r, int32_t *plane, uint32_t width, uint32_t height, int bits);
#endif
