#ifndef RMC_HUFFMAN_CODER_H
#define RMC_HUFFMAN_CODER_H
#include "bitio.h"
int rmc_huffcoder_encode(rmc_bw *w, const int32_t *plane, uint32_t width, uint32_t height, int bits);
int rmc_huffcoder_decode(rmc_br *r, int32_t *plane, uint32_t width, uint32_t height, int bits);
#endif
