"""The ROI-aware variable-rate autoencoder (torch): analysis, synthesis, quality gains and a
factorized density model of the latent used as the training rate term.

The architecture (class Codec) starts from an 8x8 DCT coder and learns residual refinements
around it; quality q (0..Q-1) multiplies the latent by a learned per-channel gain before
rounding, and synthesis multiplies by a learned inverse gain.

The rate term: during training the rounding is replaced by additive uniform noise and the
latent's bits are -log2 of the noisy value's probability under a learned factorized density
(one monotone cumulative per quality and channel, Balle et al. 2018, appendix 6.1). Counting
the distinct quantized values, as one seed did, has no gradient and does not measure bits; the
noisy density is differentiable and upper-bounds the cost of a static code of the rounded
latent, so minimising it is minimising a file size. The file itself codes the rounded latent
with the C core's adaptive coders (roimc.neural.latent), which adapt to each image."""
import math

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_CONFIG = {"channels": 64, "latent": 64, "qualities": 8, "detail": 48}


class FactorizedDensity(nn.Module):
    """One learned univariate density per (quality, channel); likelihood(x) of an integer
    (or noisy) latent value is c(x + 1/2) - c(x - 1/2) with c a monotone cumulative."""

    FILTERS = (1, 3, 3, 3, 1)

    def __init__(self, qualities, channels, init_scale=10.0):
        super().__init__()
        f = self.FILTERS
        scale = init_scale ** (1 / (len(f) - 1))
        self.h, self.b, self.a = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for i in range(len(f) - 1):
            init = math.log(math.expm1(1 / scale / f[i + 1]))
            self.h.append(nn.Parameter(torch.full((qualities, channels, f[i + 1], f[i]), init)))
            self.b.append(nn.Parameter(torch.rand(qualities, channels, f[i + 1], 1) - 0.5))
            if i < len(f) - 2:
                self.a.append(nn.Parameter(torch.zeros(qualities, channels, f[i + 1], 1)))

    def set_scales(self, scales):
        """Restart each density as a spread of about +-scales[q][c] (a (Q, C) tensor) around
        zero, e.g. from the latent's spread on data before training."""
        f = self.FILTERS
        k = len(f) - 1
        with torch.no_grad():
            for i in range(k):
                per = scales.clamp_min(1.0) ** (1 / k)
                init = torch.log(torch.expm1(1 / per / f[i + 1]))
                self.h[i].copy_(init[:, :, None, None].expand_as(self.h[i]))

    def _logits(self, x, q):
        # x: (channels, 1, n)
        for i in range(len(self.h)):
            x = torch.matmul(F.softplus(self.h[i][q]), x) + self.b[i][q]
            if i < len(self.a):
                x = x + torch.tanh(self.a[i][q]) * torch.tanh(x)
        return x

    def likelihood(self, y, q):
        """Likelihood of each element of y (B, C, h, w) under quality q's densities."""
        b, c, h, w = y.shape
        v = y.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lo, hi = self._logits(v - 0.5, q), self._logits(v + 0.5, q)
        sign = -torch.sign(lo + hi).detach()   # evaluate in the tail with the better precision
        p = torch.abs(torch.sigmoid(sign * hi) - torch.sigmoid(sign * lo))
        return p.clamp_min(1e-9).reshape(c, b, h, w).permute(1, 0, 2, 3)


def dct_basis(n=8):
    """(n*n, 1, n, n) orthonormal 2-D DCT-II basis, lowest frequencies first (zigzag by u+v)."""
    k = torch.arange(n, dtype=torch.float64)
    c = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    c[0] /= math.sqrt(2)
    order = sorted(((u, v) for u in range(n) for v in range(n)), key=lambda t: (t[0] + t[1], t))
    return torch.stack([torch.outer(c[u], c[v]) for u, v in order])[:, None].float()


def _zero(layer):
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Codec(nn.Module):
    """Analysis: an 8x8 stride-8 convolution (started as the orthonormal DCT; the ROI mask
    enters through its block means) plus a residual refinement at 1/8 scale; the latent has M
    channels at 1/8 of the input in each dimension. Synthesis: a residual refinement at 1/8
    scale, an 8x8 stride-8 transposed convolution (started as the inverse DCT) and a residual
    refinement at full scale that removes block edges. The refinements start at zero, so
    training starts from a DCT coder with steps spread over the qualities."""

    def __init__(self, channels=64, latent=64, qualities=8, detail=48, steps=(0.1, 0.004)):
        super().__init__()
        n, m, d = channels, latent, detail
        if not 1 <= m <= 64:
            raise ValueError("latent channels must be 1 to 64")
        self.config = {"channels": n, "latent": m, "qualities": qualities, "detail": d}
        basis = dct_basis()
        self.block = nn.Conv2d(1, m, 8, 8)
        self.mask_block = nn.Conv2d(1, m, 8, 8, bias=False)
        self.analysis_refine = nn.Sequential(
            nn.Conv2d(m + 2, n, 3, 1, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(n, n, 3, 1, 1), nn.LeakyReLU(0.1), _zero(nn.Conv2d(n, m, 3, 1, 1)))
        self.synthesis_refine = nn.Sequential(
            nn.Conv2d(m + 1, n, 3, 1, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(n, n, 3, 1, 1), nn.LeakyReLU(0.1), _zero(nn.Conv2d(n, m, 3, 1, 1)))
        self.unblock = nn.ConvTranspose2d(m, 1, 8, 8)
        self.pixel_refine = nn.Sequential(
            nn.Conv2d(2, d, 3, 1, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(d, d, 3, 1, 1), nn.LeakyReLU(0.1), _zero(nn.Conv2d(d, 1, 3, 1, 1)))
        with torch.no_grad():
            self.block.weight.copy_(basis[:m])
            self.block.bias.zero_()
            self.block.bias[0] = -4.0          # the DC of a mid-gray block is 0
            self.mask_block.weight.zero_()
            self.unblock.weight.copy_(basis[:m])
            self.unblock.bias.fill_(0.5)
        lo, hi = steps
        step = torch.exp(torch.linspace(math.log(lo), math.log(hi), qualities))
        freq = 1 + 0.25 * torch.tensor([u + v for u, v in sorted(
            ((u, v) for u in range(8) for v in range(8)), key=lambda t: (t[0] + t[1], t))][:m])
        self.gain = nn.Parameter(-torch.log(step[:, None] * freq[None, :]))
        self.inverse_gain = nn.Parameter(torch.log(step[:, None] * freq[None, :]))
        self.density = FactorizedDensity(qualities, m)

    def _level(self, t, q):
        """A constant plane of the quality's position in [0, 1], the refinements' third input:
        they learn how much to change at each rate."""
        qualities = self.config["qualities"]
        return torch.full_like(t[:, :1], q / max(qualities - 1, 1))

    def analyse(self, x, mask, q):
        """Unrounded latent at quality q (gain applied) of x, mask: (B, 1, H, W), H, W % 8 == 0."""
        t = self.block(x) + self.mask_block(mask)
        if self.training or self._analysis_refined():
            t = t + self.analysis_refine(torch.cat([t, F.avg_pool2d(mask, 8),
                                                    self._level(t, q)], 1))
        return t * torch.exp(self.gain[q]).view(1, -1, 1, 1)

    def _analysis_refined(self):
        """False when the analysis refinement's last layer is all zeros (a model trained with
        a fixed analysis): its output is then exactly zero and is not computed."""
        last = self.analysis_refine[-1]
        return bool(last.weight.any() or last.bias.any())

    def synthesise(self, y_hat, q):
        """Reconstruction (B, 1, 8h, 8w) in the [0, 1] scale of a (rounded) latent."""
        t = y_hat * torch.exp(self.inverse_gain[q]).view(1, -1, 1, 1)
        x = self.unblock(t + self.synthesis_refine(torch.cat([t, self._level(t, q)], 1)))
        return x + self.pixel_refine(torch.cat([x, self._level(x, q)], 1))

    def forward(self, x, mask, q):
        """Training pass: (reconstruction, latent bits per element). The synthesis sees the
        rounded latent (gradients passed straight through), so it learns the errors it will
        meet; the rate proxy sees the latent plus uniform noise (Minnen and Singh 2020)."""
        y = self.analyse(x, mask, q)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_round = y + (torch.round(y) - y).detach()   # straight through
        return self.synthesise(y_round, q), self.bits(y_noisy, q)

    def bits(self, y, q):
        """Rate proxy of a noisy latent: the first channel (the block means, which the file's
        coder predicts from their neighbours) as the residual of the mean of its left and
        upper neighbours, the others as they are."""
        dc = y[:, :1]
        left = F.pad(dc, (1, 0, 0, 0), mode="replicate")[..., :, :-1]
        up = F.pad(dc, (0, 0, 1, 0), mode="replicate")[..., :-1, :]
        z = torch.cat([dc - (left + up) / 2, y[:, 1:]], 1)
        return -torch.log2(self.density.likelihood(z, q))


def ssim_map(a, b, window=7):
    """Per-pixel SSIM of two (B, 1, H, W) images in [0, 1] over a uniform window."""
    pad = window // 2
    pool = lambda t: F.avg_pool2d(F.pad(t, (pad,) * 4, mode="replicate"), window, 1)
    mu_a, mu_b = pool(a), pool(b)
    va = pool(a * a) - mu_a ** 2
    vb = pool(b * b) - mu_b ** 2
    cov = pool(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))


def build(config=None):
    return Codec(**(config or DEFAULT_CONFIG))
