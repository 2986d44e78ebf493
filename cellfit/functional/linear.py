r"""A linear map over the channel axis of (batch, channels, time) tensors: the input current of a layer.

.. math:: I[b, :, t] = W\,x[b, :, t] + \text{bias}, \qquad x: (B, K, T),\; W: (N, K) \;\to\; I: (B, N, T)

This is one matrix product per sample. How PyTorch is asked for it matters on a CPU:
``einsum("oi,bit->bot")`` copies ``x`` into another layout first, and ``torch.matmul(W, x)``
with a ``W`` that requires a gradient takes a slower batched path, each about 2x slower
than the plain per-sample product used here (``benchmarks/network_breakdown.py``). The
backward pass is written out: :math:`\partial W = \sum_b g_b\,x_b^\top` accumulated by
one ``addbmm`` (no (B, N, K) temporary), :math:`\partial x = W^\top g` and
:math:`\partial\,\text{bias} = \sum_{b,t} g`. The same products in a different order,
so results equal ``einsum``'s up to float rounding.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["channel_linear"]


class _ChannelLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = torch.matmul(weight.detach(), x.detach())
        if bias is not None:
            out += bias.detach()[None, :, None]
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.matmul(weight.t(), g)
        if ctx.needs_input_grad[1]:
            gw = torch.addbmm(torch.zeros_like(weight), g, x.transpose(1, 2))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum((0, 2))
        return gx, gw, gb


def channel_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``W x + bias`` at every time step.

    Args:
        x: (B, K, T) input.
        weight: (N, K).
        bias: optional (N,).

    Returns:
        (B, N, T), differentiable in all three arguments.
    """
    if x.dim() != 3 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"expected x (B, {weight.shape[-1]}, T) and weight (N, K), got {tuple(x.shape)} and {tuple(weight.shape)}")
    return _ChannelLinear.apply(x, weight, bias)
