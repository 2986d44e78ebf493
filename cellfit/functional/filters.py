r"""Causal exponential filters computed by FFT (O(T log T), a handful of kernels).

:math:`y[t] = \sum_{j \le t} e^{(t-j)\lambda} x[j]` along the last axis, for a decay
:math:`\lambda = \ln\beta < 0` that may differ per neuron. This one filter is the
membrane potential without reset (times :math:`1-\beta`), the adaptation variable
(filter of the spike train), the integrator readout and the van Rossum trace.

A T-tap ``conv1d`` would cost O(T^2) and a Python loop O(T) kernel launches; the
FFT with zero padding to at least T + kernel length - 1 (no wrap-around) is exact up to rounding and
differentiable in both ``x`` and ``log_decay``. :func:`exp_sum_filter` filters with a
weighted sum of such kernels in one pass (the after-spike currents of the GLIF extension).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

__all__ = ["exp_filter", "exp_sum_filter", "fft_length"]


def fft_length(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (a fast FFT size)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < 2 * n:
        p35 = p5
        while p35 < 2 * n:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _sum_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to ``shape`` (the reverse of broadcasting)."""
    lead = grad.dim() - len(shape)
    if lead:
        grad = grad.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(dim=dims, keepdim=True) if dims else grad


class _ExpFilter(torch.autograd.Function):
    r"""FFT filter with a hand-written backward (two FFTs for ``x``, a spectral product for the decay).

    For :math:`y = k * x` with :math:`k[m] = e^{m\lambda}` (m < ``n_kernel``):
    :math:`\partial L/\partial x[j] = \sum_t g[t]\,k[t-j]` (the anti-causal filter: a product
    with the conjugate spectrum) and :math:`\partial L/\partial\lambda = \sum_t g[t]\,(k' * x)[t]`
    with :math:`k'[m] = m\,k[m]`, evaluated by Parseval's theorem on the spectra, which are
    free of wrap-around because ``n >= T + n_kernel - 1``.
    """

    @staticmethod
    def forward(ctx, x, lam, n_kernel: int, n: int):
        T = x.shape[-1]
        t = torch.arange(n_kernel, dtype=x.dtype, device=x.device)
        kernel = torch.exp(lam.unsqueeze(-1) * t)  # (..., n_kernel)
        K = torch.fft.rfft(kernel, n=n)
        X = torch.fft.rfft(x, n=n)
        y = torch.fft.irfft(X * K, n=n)[..., :T]
        ctx.n, ctx.T, ctx.lam_shape = n, T, lam.shape
        ctx.save_for_backward(K, X if ctx.needs_input_grad[1] else None, kernel if ctx.needs_input_grad[1] else None)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        K, X, kernel = ctx.saved_tensors
        n, T = ctx.n, ctx.T
        G = torch.fft.rfft(g, n=n)
        gx = glam = None
        if ctx.needs_input_grad[0]:
            gx = torch.fft.irfft(G * K.conj(), n=n)[..., :T]
        if ctx.needs_input_grad[1]:
            t = torch.arange(kernel.shape[-1], dtype=kernel.dtype, device=kernel.device)
            Kd = torch.fft.rfft(kernel * t, n=n)
            # sum_t a[t] b[t] = (1/n) sum over the full spectrum of conj(A) B; rfft keeps half of it
            weight = torch.full((n // 2 + 1,), 2.0 / n, dtype=g.dtype, device=g.device)
            weight[0] = 1.0 / n
            if n % 2 == 0:
                weight[-1] = 1.0 / n
            # reduce over the axes that share a decay first, then touch the (small) kernel spectrum
            cross = _sum_to(G.conj() * X, Kd.shape)
            glam = _sum_to(((cross * Kd).real * weight).sum(-1), ctx.lam_shape)
        return gx, glam, None, None


def exp_filter(x: torch.Tensor, log_decay: torch.Tensor | float, max_lag: int | None = None) -> torch.Tensor:
    r"""Causal exponential filter :math:`y[t] = \sum_{j\le t} e^{(t-j)\lambda} x[j]` along the last axis.

    Args:
        x: (..., T) signal (float tensor on any device).
        log_decay: :math:`\lambda \le 0`, a float or a tensor broadcastable to ``x.shape[:-1]``
            (e.g. (N,) for x of shape (B, N, T): one decay per neuron).
        max_lag: optional kernel length cap (lags >= ``max_lag`` are dropped); only for a
            known fast decay, where it shortens the FFT.

    Returns:
        (..., T) filtered signal with the dtype and device of ``x``; differentiable in ``x``
        and ``log_decay`` (first derivatives; the backward pass is hand-written, see
        ``_ExpFilter``).
    """
    T = x.shape[-1]
    if T == 0:
        return x.clone()
    n_kernel = T if max_lag is None else max(1, min(T, int(max_lag)))
    n = fft_length(T + n_kernel - 1)
    lam = torch.as_tensor(log_decay, dtype=x.dtype, device=x.device)
    return _ExpFilter.apply(x, lam, n_kernel, n)


def exp_sum_filter(x: torch.Tensor, amp: torch.Tensor, log_decay: torch.Tensor) -> torch.Tensor:
    r"""Causal filter with a sum of exponentials, :math:`y[t] = \sum_{i \le t} k[t-i]\,x[i]`,
    :math:`k[m] = \sum_j A_j e^{m\lambda_j}`, along the last axis.

    Equal to ``sum_j A_j exp_filter(x, lambda_j)``, but with one forward and one inverse FFT
    of ``x`` whatever the number of terms J (the sum is taken on the kernel's spectrum).

    Args:
        x: (B, N, T) signal.
        amp: (N, J) weights :math:`A_j` (one set per channel).
        log_decay: (N, J) decays :math:`\lambda_j \le 0`.

    Returns:
        (B, N, T), differentiable in ``x``, ``amp`` and ``log_decay`` (by autograd through
        the FFTs).
    """
    T = x.shape[-1]
    if T == 0 or amp.shape[-1] == 0:
        return torch.zeros_like(x)
    n = fft_length(2 * T - 1)
    t = torch.arange(T, dtype=x.dtype, device=x.device)
    kernel = torch.einsum("nj,njt->nt", amp.to(x.dtype), torch.exp(log_decay.to(x.dtype)[..., None] * t))  # (N, T)
    return torch.fft.irfft(torch.fft.rfft(x, n=n) * torch.fft.rfft(kernel, n=n), n=n)[..., :T]
