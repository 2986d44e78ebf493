r"""Surrogate-gradient spike functions.

The forward pass of every spike function here is the Heaviside step of the
distance to threshold, :math:`S = \mathbb{1}_{x > 0}` with :math:`x = V - \theta`
(strict: S[t] = 1 if V[t] > theta[t]). The backward
pass replaces the undefined derivative with a smooth pseudo-derivative.

Each public name is a *factory*: it takes the surrogate's shape parameters and
returns a callable ``spike_fn(x) -> spikes``, so a model can hold its
surrogate as a plain attribute (``surrogate.fast_sigmoid(slope=10)``).

- :func:`multi_gaussian` (Yin, Corradi & Bohte 2021), with
  :math:`G(x;\mu,\sigma)` a normal density:

  .. math:: \frac{dS}{dx} = \gamma\big[(1+h)\,G(x;0,s) - h\,G(x;s,ks) - h\,G(x;-s,ks)\big]

  defaults ``s=0.5, h=0.15, k=6, gamma=0.5`` (the Block paper's code).
- :func:`fast_sigmoid` (Zenke & Ganguli 2018):
  :math:`\frac{dS}{dx} = (\text{slope}\,|x| + 1)^{-2}`, default slope 10
  (the d-block paper; the single-spike paper used 100).
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import torch

__all__ = ["multi_gaussian", "fast_sigmoid", "get_surrogate", "known_spikes", "SURROGATES", "SpikeFn"]

SpikeFn = Callable[[torch.Tensor], torch.Tensor]


def _multi_gaussian_derivative(x: torch.Tensor, s: float, h: float, k: float, gamma: float) -> torch.Tensor:
    r""":math:`\gamma[(1+h)G(x;0,s) - hG(x;s,ks) - hG(x;-s,ks)]` in a new tensor, with few passes over ``x``."""
    root = math.sqrt(2.0 * math.pi)
    ks = k * s
    side = (x - s).square_().mul_(-0.5 / ks**2).exp_()
    side.add_((x + s).square_().mul_(-0.5 / ks**2).exp_())
    centre = x.square().mul_(-0.5 / s**2).exp_()
    return centre.mul_(gamma * (1.0 + h) / (s * root)).sub_(side.mul_(gamma * h / (ks * root)))


def _fast_sigmoid_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    r""":math:`(\text{slope}|x| + 1)^{-2}` in a new tensor."""
    return x.abs().mul_(slope).add_(1.0).square_().reciprocal_()


class _MultiGaussianSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, s, h, k, gamma):
        ctx.save_for_backward(x)
        ctx.shape = (s, h, k, gamma)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return _multi_gaussian_derivative(x, *ctx.shape).mul_(grad_out), None, None, None, None


class _FastSigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return _fast_sigmoid_derivative(x, ctx.slope).mul_(grad_out), None


class _KnownSpikes(torch.autograd.Function):
    """Value ``spikes * gate`` (spikes already known); gradient ``gate * derivative(x)``."""

    @staticmethod
    def forward(ctx, x, spikes, gate, derivative):
        ctx.save_for_backward(x, gate)
        ctx.derivative = derivative
        return spikes * gate

    @staticmethod
    def backward(ctx, grad_out):
        x, gate = ctx.saved_tensors
        return ctx.derivative(x).mul_(grad_out).mul_(gate), None, None, None


def known_spikes(x: torch.Tensor, spikes: torch.Tensor, gate: torch.Tensor, spike_fn: "SpikeFn") -> torch.Tensor:
    """Spikes that are already known (e.g. found by the Block algorithm), with ``spike_fn``'s surrogate gradient.

    The value is ``spikes * gate``; the gradient with respect to ``x`` (the distance to
    threshold) is ``gate * dS/dx`` of ``spike_fn``. The same as
    ``(spike_fn(x) - spike_fn(x).detach() + spikes) * gate``, which is what runs for a
    custom ``spike_fn``; the built-in surrogates skip the unused Heaviside and compute their
    derivative in a few fused passes (see ``spike_fn.derivative``).
    """
    derivative = getattr(spike_fn, "derivative", None)
    if derivative is None:
        h = spike_fn(x)
        return (h - h.detach() + spikes) * gate
    return _KnownSpikes.apply(x, spikes, gate, derivative)


def multi_gaussian(s: float = 0.5, h: float = 0.15, k: float = 6.0, gamma: float = 0.5) -> SpikeFn:
    """Heaviside spike with the multi-Gaussian surrogate derivative.

    Args:
        s: width of the central Gaussian (threshold units).
        h: weight of the two negative side lobes.
        k: side-lobe width as a multiple of ``s``.
        gamma: overall gradient scale.
    """
    if s <= 0 or k <= 0:
        raise ValueError(f"multi_gaussian needs s > 0 and k > 0, got s={s}, k={k}")

    def spike_fn(x: torch.Tensor) -> torch.Tensor:
        return _MultiGaussianSpike.apply(x, s, h, k, gamma)

    spike_fn.__name__ = f"multi_gaussian(s={s}, h={h}, k={k}, gamma={gamma})"
    spike_fn.derivative = functools.partial(_multi_gaussian_derivative, s=s, h=h, k=k, gamma=gamma)
    return spike_fn


def fast_sigmoid(slope: float = 10.0) -> SpikeFn:
    """Heaviside spike with the fast-sigmoid surrogate ``(slope |x| + 1)^-2``."""
    if slope <= 0:
        raise ValueError(f"fast_sigmoid needs slope > 0, got {slope}")

    def spike_fn(x: torch.Tensor) -> torch.Tensor:
        return _FastSigmoidSpike.apply(x, slope)

    spike_fn.__name__ = f"fast_sigmoid(slope={slope})"
    spike_fn.derivative = functools.partial(_fast_sigmoid_derivative, slope=slope)
    return spike_fn


SURROGATES: dict[str, Callable[..., SpikeFn]] = {
    "multi_gaussian": multi_gaussian,
    "fast_sigmoid": fast_sigmoid,
}


def get_surrogate(surrogate: str | SpikeFn) -> SpikeFn:
    """Map a surrogate name (with default shape) to its spike function; pass callables through."""
    if callable(surrogate):
        return surrogate
    try:
        return SURROGATES[surrogate]()
    except KeyError:
        raise ValueError(
            f"unknown surrogate {surrogate!r}; choose one of {sorted(SURROGATES)}"
        ) from None
