r"""Causal exponential filters computed by FFT (O(T log T), a handful of kernels).

:math:`y[t] = \sum_{j \le t} e^{(t-j)\lambda} x[j]` along the last axis, for a decay
:math:`\lambda = \ln\beta < 0` that may differ per neuron. This one filter is the
membrane potential without reset (times :math:`1-\beta`), the adaptation variable
(filter of the spike train), the integrator readout and the van Rossum trace.

A T-tap ``conv1d`` would cost O(T^2) and a Python loop O(T) kernel launches; the
FFT with zero padding to at least T + kernel length - 1 (no wrap-around) is exact up to rounding and
differentiable in both ``x`` and ``log_decay``.
"""

from __future__ import annotations

import torch

__all__ = ["exp_filter", "fft_length"]


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


def exp_filter(x: torch.Tensor, log_decay: torch.Tensor | float, max_lag: int | None = None) -> torch.Tensor:
    r"""Causal exponential filter :math:`y[t] = \sum_{j\le t} e^{(t-j)\lambda} x[j]` along the last axis.

    Args:
        x: (..., T) signal (float tensor on any device).
        log_decay: :math:`\lambda \le 0`, a float or a tensor broadcastable to ``x.shape[:-1]``
            (e.g. (N,) for x of shape (B, N, T): one decay per neuron).
        max_lag: optional kernel length cap (lags >= ``max_lag`` are dropped); only for a
            known fast decay, where it shortens the FFT.

    Returns:
        (..., T) filtered signal with the dtype and device of ``x``.
    """
    T = x.shape[-1]
    if T == 0:
        return x.clone()
    n_kernel = T if max_lag is None else max(1, min(T, int(max_lag)))
    n = fft_length(T + n_kernel - 1)
    lam = torch.as_tensor(log_decay, dtype=x.dtype, device=x.device)
    t = torch.arange(n_kernel, dtype=x.dtype, device=x.device)
    kernel = torch.exp(lam.unsqueeze(-1) * t)  # (..., n_kernel)
    y = torch.fft.irfft(torch.fft.rfft(x, n=n) * torch.fft.rfft(kernel, n=n), n=n)
    return y[..., :T]
