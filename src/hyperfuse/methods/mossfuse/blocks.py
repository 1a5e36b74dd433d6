"""Building blocks of the MossFuse network (``mossfuse.md`` §2).

Every block works on (B, C, H, W) feature maps. No conv or linear layer has a bias unless
the spec says so. Depthwise convolutions go through :class:`DepthwiseConv2d`, whose backward
pass avoids PyTorch's slow CPU kernel for the weight gradient of grouped convolutions (see
:func:`depthwise_conv2d`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "depthwise_conv2d",
    "DepthwiseConv2d",
    "LayerNorm2d",
    "MDTA",
    "GDFN",
    "TransformerBlock",
    "GRN",
    "SEBlock",
    "UniRepLKBlock",
    "SpatialGate",
    "SpectralGate",
    "CrossSpatialAttention",
    "CrossSpectralAttention",
    "Aggregation",
    "Head",
]

N_HEADS = 8


class _DepthwiseFn(torch.autograd.Function):
    """Depthwise 'same' convolution (odd kernel, stride 1) with a fast CPU backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, pad: int, dil: int) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, w)
        ctx.pad, ctx.dil = pad, dil
        return F.conv2d(x, w, padding=pad, dilation=dil, groups=x.shape[1])

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        pad, dil = ctx.pad, ctx.dil
        B, C, H, W = x.shape
        k = w.shape[-1]
        gx = gw = None
        g = g.contiguous()
        if ctx.needs_input_grad[0]:
            # adjoint of a 'same' correlation = correlation with the flipped kernel
            gx = F.conv2d(g, w.flip(-1, -2), padding=pad, dilation=dil, groups=C)
        if ctx.needs_input_grad[1]:
            # gw[c, u, v] = sum_{b,h,w} xpad[b, c, u*dil + h, v*dil + w] g[b, c, h, w]:
            # one grouped convolution whose "kernel" is the gradient image (batch as channels).
            xp = F.pad(x, (pad, pad, pad, pad))
            inp = xp.transpose(0, 1).reshape(1, C * B, H + 2 * pad, W + 2 * pad)
            ker = g.transpose(0, 1).reshape(C * B, 1, H, W)
            gw = F.conv2d(inp, ker, stride=dil, groups=C * B).view(C, B, k, k).sum(1)
            gw = gw.unsqueeze(1).to(w.dtype)
        return gx, gw, None, None


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor, dilation: int = 1) -> torch.Tensor:
    """Depthwise 'same' convolution (zero padding) of ``x`` with ``weight`` (C, 1, k, k), k odd.

    The forward pass is :func:`torch.nn.functional.conv2d` with ``groups=C``. The backward
    pass computes the input gradient as a depthwise convolution with the flipped kernel and
    the weight gradient as one grouped convolution of the padded input with the output
    gradient; on the PyTorch CPU build the native grouped-convolution backward is 3–30× slower.

    Examples
    --------
    >>> x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradcheck(lambda a, b: depthwise_conv2d(a, b, 1), (x, w))
    True
    """
    k = weight.shape[-1]
    pad = dilation * (k // 2)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _DepthwiseFn.apply(x, weight, pad, dilation)
    return F.conv2d(x, weight, padding=pad, dilation=dilation, groups=x.shape[1])


class DepthwiseConv2d(nn.Module):
    """Depthwise k×k convolution without bias (PyTorch's default initialisation)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        self.dilation = dilation
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # as nn.Conv2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv2d(x, self.weight, self.dilation)


def conv1x1(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, bias=bias)


class LayerNorm2d(nn.Module):
    """Per-pixel LayerNorm over channels, with weight (init 1) and bias (init 0), eps 1e-5."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, 1e-5)
        return y.permute(0, 3, 1, 2)


def _heads(t: torch.Tensor) -> torch.Tensor:
    B, C, H, W = t.shape
    return t.reshape(B, N_HEADS, C // N_HEADS, H * W)


def _head_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, temperature: torch.Tensor
) -> torch.Tensor:
    """Channel attention per head: softmax(q̂ k̂ᵀ τ) v, q/k L2-normalised over pixels."""
    B, C, H, W = v.shape
    if not torch.is_grad_enabled():
        return _head_attention_inference(q, k, v, temperature)
    q = F.normalize(_heads(q), dim=-1, eps=1e-12)
    k = F.normalize(_heads(k), dim=-1, eps=1e-12)
    attn = torch.softmax((q @ k.transpose(-2, -1)) * temperature, dim=-1)
    return (attn @ _heads(v)).reshape(B, C, H, W)


def _head_attention_inference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, temperature: torch.Tensor
) -> torch.Tensor:
    """:func:`_head_attention` without gradients, with no copies of the (C, H·W) maps.

    Uses q̂·k̂ = (q·k) / (max(‖q‖, ε) max(‖k‖, ε)): one C×C Gram matrix per item (its
    diagonal head blocks are the per-head scores) and the squared norms from the Gram
    diagonals; the output is one (H·W)×C by C×C product with the block-diagonal attention,
    which for channels-last inputs writes a channels-last result directly.
    """
    B, C, H, W = v.shape
    c = C // N_HEADS
    cl = v.is_contiguous(memory_format=torch.channels_last)
    outs = []
    for b in range(B):
        Q, K, V = q[b].flatten(1), k[b].flatten(1), v[b].flatten(1)  # (C, P) views
        nq = (Q @ Q.T).diagonal().sqrt().clamp_min(1e-12)
        nk = (K @ K.T).diagonal().sqrt().clamp_min(1e-12)
        G = (Q @ K.T) / (nq[:, None] * nk[None, :])
        S = G.view(N_HEADS, c, N_HEADS, c).diagonal(dim1=0, dim2=2).permute(2, 0, 1)
        A = torch.block_diag(*torch.softmax(S * temperature, dim=-1))
        if cl:
            outs.append((V.T @ A.T).view(H, W, C).permute(2, 0, 1))
        else:
            outs.append((A @ V).view(C, H, W))
    return torch.stack(outs) if B > 1 else outs[0][None]


class _QKV(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = conv1x1(dim, 3 * dim)
        self.qkv_dw = DepthwiseConv2d(3 * dim, 3)
        self.temperature = nn.Parameter(torch.ones(N_HEADS, 1, 1))

    def qkv_of(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv_dw(self.qkv(z)).chunk(3, dim=1)
        return q, k, v


class MDTA(_QKV):
    """Multi-Dconv head transposed (channel) attention; 4C² + 27C + 8 parameters."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.project_out = conv1x1(dim, dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_of(z)
        return self.project_out(_head_attention(q, k, v, self.temperature))


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network (expansion 2, gate GELU); 6C² + 36C parameters."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project_in = conv1x1(dim, 4 * dim)
        self.dwconv = DepthwiseConv2d(4 * dim, 3)
        self.project_out = conv1x1(2 * dim, dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u1, u2 = self.dwconv(self.project_in(z)).chunk(2, dim=1)
        if not torch.is_grad_enabled():  # inference: no temporaries for GELU and the gate
            # the product goes straight into a dense buffer (no copy before project_out)
            fmt = torch.channels_last if z.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
            g = torch.empty_like(u2, memory_format=fmt)
            return self.project_out(torch.mul(torch._C._nn.gelu_(u1), u2, out=g))
        return self.project_out(F.gelu(u1) * u2)


class TransformerBlock(nn.Module):
    """z ← z + MDTA(LN z); z ← z + GDFN(LN z); 10C² + 67C + 8 parameters."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.attn = MDTA(dim)
        self.norm2 = LayerNorm2d(dim)
        self.ffn = GDFN(dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z + self.attn(self.norm1(z))
        if not torch.is_grad_enabled():
            return z.add_(self.ffn(self.norm2(z)))
        return z + self.ffn(self.norm2(z))


class GRN(nn.Module):
    """Global response normalisation on channels-last tensors (γ, β initialised to 0)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, H, W, C)
        if not torch.is_grad_enabled():
            return self._forward_inplace(x.clone())
        g = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return (self.gamma * n + 1) * x + self.beta

    def _forward_inplace(self, x: torch.Tensor) -> torch.Tensor:
        """Inference GRN overwriting ``x`` (B, H, W, C contiguous); returns ``x``."""
        B, H, W, C = x.shape
        # sums of squares accumulated over 1024-pixel slabs (cache-resident accumulator;
        # more accurate and much faster than one strided reduction over all pixels)
        g = x.new_empty(B, C)
        for b in range(B):
            acc = x.new_zeros(1024, C)
            for blk in x[b].reshape(H * W, C).split(1024):
                acc[: blk.shape[0]].addcmul_(blk, blk)
            g[b] = acc.sum(0)
        g = g.sqrt()
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return x.mul_((self.gamma * n + 1)[:, None, None, :]).add_(self.beta)


class SEBlock(nn.Module):
    """Squeeze-and-excitation with biased 1×1 convs (C → C/4 → C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.down = conv1x1(dim, dim // 4, bias=True)
        self.up = conv1x1(dim // 4, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.up(F.relu(self.down(s))))


class _DilatedReparam(nn.Module):
    """BN(DW7×7) + Σ BN(DW k×k, dilation δ) over (5,1), (3,2), (3,3); kept unmerged."""

    BRANCHES = ((5, 1), (3, 2), (3, 3))

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lk_origin = DepthwiseConv2d(dim, 7)
        self.origin_bn = nn.BatchNorm2d(dim)
        self.convs = nn.ModuleList(DepthwiseConv2d(dim, k, d) for k, d in self.BRANCHES)
        self.bns = nn.ModuleList(nn.BatchNorm2d(dim) for _ in self.BRANCHES)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        d = self.origin_bn(self.lk_origin(z))
        for conv, bn in zip(self.convs, self.bns, strict=True):
            d = d + bn(conv(z))
        return d


class UniRepLKBlock(nn.Module):
    """UniRepLK block (kernel 7 → "LK7", or ``large_kernel=False`` → "LK0").

    LK7 has 8.5C² + 118.25C parameters, LK0 8.5C² + 16.25C.
    """

    def __init__(self, dim: int, large_kernel: bool = True) -> None:
        super().__init__()
        self.large_kernel = large_kernel
        if large_kernel:
            self.dwconv = _DilatedReparam(dim)
            self.norm = nn.BatchNorm2d(dim)
        self.se = SEBlock(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim, bias=False)
        self.bn = nn.BatchNorm2d(dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() or self.training):
            return self._forward_eval(z)
        d = self.norm(self.dwconv(z)) if self.large_kernel else z
        d = self.se(d)
        t = d.permute(0, 2, 3, 1)
        t = self.pwconv2(self.grn(F.gelu(self.pwconv1(t))))
        d = self.bn(t.permute(0, 3, 1, 2))
        return z + self.gamma.view(1, -1, 1, 1) * d

    def _forward_eval(self, z: torch.Tensor) -> torch.Tensor:
        """Eval-mode forward without gradients, algebraically folded (same function).

        The four dilated depthwise branches, their BNs and ``norm`` become one 7×7 depthwise
        conv with bias; the SE scale is folded into ``pwconv1``'s columns; ``bn`` and the
        layer scale γ into ``pwconv2``; GELU and GRN run in place on the (B, H, W, 4C) map.
        """
        C = z.shape[1]
        if self.large_kernel:
            w, b = _fold_reparam(self.dwconv)
            s, c = _bn_affine(self.norm)
            d = F.conv2d(z, w * s[:, None, None, None], b * s + c, padding=3, groups=C)
        else:
            d = z
        se = torch.sigmoid(self.se.up(F.relu(self.se.down(d.mean(dim=(2, 3), keepdim=True)))))
        s, c = _bn_affine(self.bn)
        g = self.gamma
        w2 = self.pwconv2.weight * (g * s)[:, None]
        outs = []
        for i in range(z.shape[0]):
            t = d[i : i + 1].permute(0, 2, 3, 1)
            t = F.linear(t, self.pwconv1.weight * se[i].view(1, C), self.pwconv1.bias)
            t = self.grn._forward_inplace(torch._C._nn.gelu_(t))
            outs.append(F.linear(t, w2, g * c).permute(0, 3, 1, 2).add_(z[i : i + 1]))
        return outs[0] if len(outs) == 1 else torch.cat(outs)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BN as y = s·x + c per channel."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return s, bn.bias - bn.running_mean * s


def _fold_reparam(m: _DilatedReparam) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode :class:`_DilatedReparam` as one 7×7 depthwise kernel (C, 1, 7, 7) and a bias."""
    s, c = _bn_affine(m.origin_bn)
    w = m.lk_origin.weight * s[:, None, None, None]
    K = w.shape[-1]
    w = w.clone()
    for conv, bn in zip(m.convs, m.bns, strict=True):
        sb, cb = _bn_affine(bn)
        k, dil = conv.weight.shape[-1], conv.dilation
        o = K // 2 - dil * (k // 2)
        w[:, :, o : o + dil * (k - 1) + 1 : dil, o : o + dil * (k - 1) + 1 : dil] += (
            conv.weight * sb[:, None, None, None]
        )
        c = c + cb
    return w, c


class SpatialGate(nn.Module):
    """sigmoid(1×1 (C/8→1) ∘ ReLU ∘ 1×1 (C/8→C/8) ∘ ReLU ∘ 1×1 (C→C/8)); output (B, 1, H, W)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        h = dim // 8
        self.body = nn.Sequential(conv1x1(dim, h), nn.ReLU(), conv1x1(h, h), nn.ReLU(), conv1x1(h, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(y))


class SpectralGate(nn.Module):
    """sigmoid(Lin ∘ GELU ∘ Lin ∘ GELU ∘ Lin (GAP y)), widths C → C/8 → C/8 → C; (B, C, 1, 1)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        h = dim // 8
        self.body = nn.Sequential(
            nn.Linear(dim, h, bias=False), nn.GELU(), nn.Linear(h, h, bias=False), nn.GELU(),
            nn.Linear(h, dim, bias=False),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(y.mean(dim=(2, 3))))[:, :, None, None]


class CrossSpatialAttention(_QKV):
    """CSA(z, y): q gated by SpatialGate(y); out = 1×1(A + DW3×3(y) ⊙ SpectralGate(A))."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.gate_q = SpatialGate(dim)
        self.y_conv = DepthwiseConv2d(dim, 3)
        self.gate_a = SpectralGate(dim)
        self.project_out = conv1x1(dim, dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_of(z)
        a = _head_attention(q * self.gate_q(y), k, v, self.temperature)
        return self.project_out(a + self.y_conv(y) * self.gate_a(a))


class CrossSpectralAttention(_QKV):
    """CSpA(z, y): q gated by SpectralGate(y); out = 1×1(A + 1×1(y) ⊙ SpatialGate(A))."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.gate_q = SpectralGate(dim)
        self.y_conv = conv1x1(dim, dim)
        self.gate_a = SpatialGate(dim)
        self.project_out = conv1x1(dim, dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_of(z)
        a = _head_attention(q * self.gate_q(y), k, v, self.temperature)
        return self.project_out(a + self.y_conv(y) * self.gate_a(a))


class Aggregation(nn.Module):
    """SpatAgg (``spatial=True``) or SpecAgg: z ← z + X(LN z, y); z ← z + GDFN(LN z)."""

    def __init__(self, dim: int, spatial: bool) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.attn: nn.Module = CrossSpatialAttention(dim) if spatial else CrossSpectralAttention(dim)
        self.norm2 = LayerNorm2d(dim)
        self.ffn = GDFN(dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = z + self.attn(self.norm1(z), y)
        return z + self.ffn(self.norm2(z))


class Head(nn.Module):
    """Conv3×3 C→C/2, LeakyReLU(0.01), Conv3×3 C/2→o; 4.5C² + 4.5C·o parameters."""

    def __init__(self, dim: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim // 2, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(dim // 2, out_channels, 3, padding=1, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.leaky_relu(self.conv1(z), 0.01))
