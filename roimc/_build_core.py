"""cffi (API mode) build of the C core: ``roimc._core``. Run by setup.py at install."""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.relpath(os.path.join(HERE, os.pardir, "csrc"))
SOURCES = ["bitio.c", "context_coder.c", "huffman.c", "huffman_coder.c", "cm_coder.c",
           "cm_near.c", "fast_coder.c", "tile.c", "lsfit.c", "latent_coder.c",
           "mask_coder.c", "palette_order.c"]

CDEF = """
typedef struct { uint8_t *data; size_t size; } rmc_buffer;
const char *rmc_status_message(int status);
void rmc_free(void *p);
int rmc_encode_tile(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                    const int *bits, int coder, rmc_buffer *out);
int rmc_encode_tile_cm(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                       const int *bits, const int16_t *weights, const int *nweights,
                       int coder, rmc_buffer *out);
int rmc_decode_tile(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                    int planes, const int *bits, int coder, int32_t *samples);
int rmc_encode_tile_near(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                         const int *bits, int coder, int form, const uint8_t *mask,
                         int near_bg, int near_roi, int grade, int deadzone, int32_t *recon,
                         rmc_buffer *out);
int rmc_encode_tile_near_cm(const int32_t *samples, uint32_t width, uint32_t height, int planes,
                            const int *bits, const int16_t *weights, const int *nweights,
                            int coder, int form, const uint8_t *mask, int near_bg,
                            int near_roi, int grade, int deadzone, int32_t *recon,
                            rmc_buffer *out);
int rmc_decode_tile_near(const uint8_t *data, size_t size, uint32_t width, uint32_t height,
                         int planes, const int *bits, int coder, int form,
                         const uint8_t *mask, int near_bg, int near_roi, int grade,
                         int32_t *samples);
int rmc_huffman_lengths(const uint64_t *counts, int n, int max_len, uint8_t *lengths);
int rmc_huffman_encode_symbols(const uint16_t *symbols, size_t count, const uint8_t *lengths,
                               int n, rmc_buffer *out);
int rmc_huffman_decode_symbols(const uint8_t *data, size_t size, uint16_t *symbols,
                               size_t count, int n);
int rmc_latent_encode(const int32_t *latent, int channels, uint32_t height, uint32_t width,
                      int dc, rmc_buffer *out);
int rmc_latent_decode(const uint8_t *data, size_t size, int channels, uint32_t height,
                      uint32_t width, int dc, int32_t *latent);
int rmc_palette_chain(const int32_t *indices, uint32_t frames, uint32_t height, uint32_t width,
                      uint32_t k, uint32_t reach, int32_t *chain);
int rmc_mask_encode(const uint8_t *mask, uint32_t height, uint32_t width, rmc_buffer *out);
int rmc_mask_decode(const uint8_t *data, size_t size, uint32_t height, uint32_t width,
                    uint8_t *mask);
int rmc_lsfit(const int32_t *plane, const int32_t *ref, uint32_t width, uint32_t height,
              size_t first, size_t step, int passes, double lam, const double *prior,
              double *coef);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "roimc._core",
    '#include "rmc_core.h"\n#include "lsfit.h"',
    sources=[os.path.join(CSRC, s) for s in SOURCES],
    include_dirs=[CSRC],
    libraries=["m"],
    extra_compile_args=["-O2", "-std=gnu99"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
