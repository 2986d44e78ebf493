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

:func:`subthreshold_adapted` is the input of the ``alif_sub`` model variant: the stimulus less a
slow current that follows it, :math:`x - k\,L_{\tau}x` with :math:`L_\tau` the unit-gain
exponential low-pass from rest at the trace's start. It stands for a linear subthreshold
adaptation current (an M-type potassium current, say) driven by the stimulus rather than by the
model's own potential: at the onset of a step the cell sees the whole step, later only
:math:`1-k` of it, with time constant :math:`\tau` (spikes and resets do not move it). Because it
acts on the input current, every engine sees the same current and the Block algorithm stays exact.
"""

from __future__ import annotations

from typing import Optional

import torch

from cellfit.functional.filters import exp_filter

__all__ = ["channel_linear", "subthreshold_adapted"]


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


def subthreshold_adapted(x: torch.Tensor, amp: torch.Tensor, log_decay: torch.Tensor) -> torch.Tensor:
    r"""The stimulus less a linear subthreshold adaptation current that follows it.

    .. math:: y[t] = x[t] - k\,(1 - r) \sum_{j \le t} r^{t-j} x[j], \qquad r = e^{-\Delta t/\tau}

    (the low-pass starts from 0 at the trace's first step: the cell at rest, the current not yet on).

    Args:
        x: (B, N, T) stimulus (one row per neuron).
        amp: (N,) :math:`k \in [0, 1)`, the fraction of a sustained stimulus the current cancels.
        log_decay: (N,) :math:`\ln r = -\Delta t/\tau` (negative).

    Returns:
        (B, N, T), differentiable in all three arguments.
    """
    if x.dim() != 3 or amp.shape != (x.shape[1],) or log_decay.shape != amp.shape:
        raise ValueError(f"expected x (B, N, T) with amp and log_decay of shape (N,), got {tuple(x.shape)}, "
                         f"{tuple(amp.shape)} and {tuple(log_decay.shape)}")
    low = exp_filter(x, log_decay) * (-torch.expm1(log_decay))[:, None]
    return x - amp[:, None] * low
