#include <stdlib.h>
#include <string.h>
#include "huffman.h"

typedef struct { uint64_t weight; int id; } node_ref;

static int cmp_ref(const void *pa, const void *pb) {
    const node_ref *a = (const node_ref *)pa, *b = (const node_ref *)pb;
    if (a->weight != b->weight) return a->weight < b->weight ? -1 : 1;
    return a->id - b->id;
}

/* Plain Huffman code lengths for the used symbols (two-queue construction). */
static int plain_lengths(const uint64_t *counts, int n, uint8_t *lengths, int *max_len) {
    node_ref *leaves;
    uint64_t *weight;
    int *parent, used = 0, i, nodes, li = 0, qi, qn;
    memset(lengths, 0, (size_t)n);
    *max_len = 0;
    for (i = 0; i < n; i++) used += counts[i] > 0;
    if (used == 0) return RMC_OK;
    if (used == 1) {
        for (i = 0; i < n; i++) if (counts[i]) lengths[i] = 1;
        *max_len = 1;
        return RMC_OK;
    }
    leaves = (node_ref *)malloc(sizeof(node_ref) * (size_t)used);
    weight = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(2 * used));
    parent = (int *)malloc(sizeof(int) * (size_t)(2 * used));
    if (!leaves || !weight || !parent) { free(leaves); free(weight); free(parent); return RMC_ERR_NOMEM; }
    for (i = 0, nodes = 0; i < n; i++)
        if (counts[i]) { leaves[nodes].weight = counts[i]; leaves[nodes].id = i; nodes++; }
    qsort(leaves, (size_t)used, sizeof(node_ref), cmp_ref);
    for (i = 0; i < used; i++) { weight[i] = leaves[i].weight; parent[i] = -1; }
    /* internal nodes are appended in non-decreasing weight order: a second queue */
    nodes = used;
    qi = used;
    qn = used;
    while (nodes < 2 * used - 1) {
        int pick[2], j;
        for (j = 0; j < 2; j++) {
            if (li < used && (qi >= qn || weight[li] <= weight[qi])) pick[j] = li++;
            else pick[j] = qi++;
        }
        weight[nodes] = weight[pick[0]] + weight[pick[1]];
        parent[nodes] = -1;
        parent[pick[0]] = parent[pick[1]] = nodes;
        nodes++;
        qn = nodes;
    }
    for (i = 0; i < used; i++) {
        int depth = 0, p = i;
        while (parent[p] >= 0) { p = parent[p]; depth++; }
        lengths[leaves[i].id] = (uint8_t)depth;
        if (depth > *max_len) *max_len = depth;
    }
    free(leaves); free(weight); free(parent);
    return RMC_OK;
}

int rmc_huffman_lengths(const uint64_t *counts, int n, int max_len, uint8_t *lengths) {
    uint64_t *c;
    int i, used = 0, longest, st;
    if (n < 1 || n > RMC_HUFF_MAX_SYMBOLS || max_len < 1 || max_len > RMC_HUFF_MAX_LEN)
        return RMC_ERR_ARGUMENT;
    for (i = 0; i < n; i++) used += counts[i] > 0;
    if ((uint64_t)used > ((uint64_t)1 << max_len)) return RMC_ERR_ARGUMENT;
    c = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)n);
    if (!c) return RMC_ERR_NOMEM;
    memcpy(c, counts, sizeof(uint64_t) * (size_t)n);
    for (;;) {
        st = plain_lengths(c, n, lengths, &longest);
        if (st != RMC_OK || longest <= max_len) break;
        /* flatten the distribution and retry: converges to equal weights */
        for (i = 0; i < n; i++) if (c[i]) c[i] = (c[i] >> 1) | 1;
    }
    free(c);
    return st;
}

int rmc_huff_from_lengths(rmc_huff *h, const uint8_t *lengths, int n) {
    uint32_t next[RMC_HUFF_MAX_LEN + 2];
    uint64_t kraft = 0;
    int len, i, index[RMC_HUFF_MAX_LEN + 2];
    if (n < 1 || n > RMC_HUFF_MAX_SYMBOLS) return RMC_ERR_ARGUMENT;
    h->n = n;
    h->max_len = 0;
    memset(h->count, 0, sizeof h->count);
    for (i = 0; i < n; i++) {
        if (lengths[i] > RMC_HUFF_MAX_LEN) return RMC_ERR_HUFFMAN_TABLE;
        h->lengths[i] = lengths[i];
        if (lengths[i]) {
            h->count[lengths[i]]++;
            kraft += (uint64_t)1 << (RMC_HUFF_MAX_LEN - lengths[i]);
            if (lengths[i] > h->max_len) h->max_len = lengths[i];
        }
    }
    if (kraft > ((uint64_t)1 << RMC_HUFF_MAX_LEN)) return RMC_ERR_HUFFMAN_TABLE;
    next[1] = 0;
    index[1] = 0;
    for (len = 1; len < RMC_HUFF_MAX_LEN; len++) {
        next[len + 1] = (next[len] + h->count[len]) << 1;
        index[len + 1] = index[len] + h->count[len];
    }
    for (i = 0; i < n; i++) {
        len = lengths[i];
        if (len) {
            h->codes[i] = next[len]++;
            h->sorted[index[len]++] = (uint16_t)i;
        }
    }
    return RMC_OK;
}

/* Table: 5 bits for the longest length L (0 = no symbol), then each symbol's length in
 * w bits, w = bit length of L. */
static int bit_width(int v) { int w = 0; while (v) { w++; v >>= 1; } return w; }

void rmc_huff_write_table(rmc_bw *w, const rmc_huff *h) {
    int i, width = bit_width(h->max_len);
    rmc_bw_put(w, (uint32_t)h->max_len, 5);
    if (h->max_len == 0) return;
    for (i = 0; i < h->n; i++) rmc_bw_put(w, h->lengths[i], width);
}

int rmc_huff_read_table(rmc_br *r, rmc_huff *h, int n) {
    uint8_t lengths[RMC_HUFF_MAX_SYMBOLS];
    int i, max_len = (int)rmc_br_get(r, 5), width, st;
    if (n < 1 || n > RMC_HUFF_MAX_SYMBOLS) return RMC_ERR_ARGUMENT;
    if (max_len > RMC_HUFF_MAX_LEN) return RMC_ERR_HUFFMAN_TABLE;
    width = bit_width(max_len);
    for (i = 0; i < n; i++) {
        lengths[i] = max_len ? (uint8_t)rmc_br_get(r, width) : 0;
        if (lengths[i] > max_len) return RMC_ERR_HUFFMAN_TABLE;
    }
    if (r->zero_fill > 8) return RMC_ERR_TRUNCATED;
    st = rmc_huff_from_lengths(h, lengths, n);
    /* L is the longest length in use, as the writer sets it */
    if (st == RMC_OK && h->max_len != max_len) return RMC_ERR_HUFFMAN_TABLE;
    return st;
}

int rmc_huffman_encode_symbols(const uint16_t *symbols, size_t count, const uint8_t *lengths,
                               int n, rmc_buffer *out) {
    rmc_huff *h = (rmc_huff *)malloc(sizeof *h);
    rmc_bw w;
    size_t i;
    int st;
    if (!h) return RMC_ERR_NOMEM;
    st = rmc_huff_from_lengths(h, lengths, n);
    if (st != RMC_OK) { free(h); return st; }
    for (i = 0; i < count; i++)
        if (symbols[i] >= n || h->lengths[symbols[i]] == 0) { free(h); return RMC_ERR_ARGUMENT; }
    rmc_bw_init(&w, count / 2 + 64);
    rmc_huff_write_table(&w, h);
    for (i = 0; i < count; i++) rmc_huff_put(&w, h, symbols[i]);
    free(h);
    return rmc_bw_finish(&w, out);
}

int rmc_huffman_decode_symbols(const uint8_t *data, size_t size, uint16_t *symbols,
                               size_t count, int n) {
    rmc_huff *h = (rmc_huff *)malloc(sizeof *h);
    rmc_br r;
    size_t i;
    int st;
    if (!h) return RMC_ERR_NOMEM;
    rmc_br_init(&r, data, size);
    st = rmc_huff_read_table(&r, h, n);
    for (i = 0; st == RMC_OK && i < count; i++) {
        int s = rmc_huff_get(&r, h);
        if (s < 0) st = RMC_ERR_CORRUPT;
        else symbols[i] = (uint16_t)s;
        if ((i & 1023) == 0 && r.zero_fill > 8) st = RMC_ERR_TRUNCATED;
    }
    if (st == RMC_OK) st = rmc_br_finish(&r);
    free(h);
    return st;
}
