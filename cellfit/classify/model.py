r"""The spiking classifier of the Block paper (section 4.2): recurrent ALIF layers and an integrator readout.

Architecture (``n_layers`` = 2 hidden layers of ``hidden`` = 256 neurons in the paper)::

    x (B, n_in, T) -> ALIF(recurrent) -> ALIF(recurrent) -> Integrator -> V (B, C, T) -> scores = V.sum(-1)

Each hidden layer is a :class:`cellfit.ALIF` (either engine, identical spikes;
the reset, adaptation and recurrent spikes are detached, so surrogate gradients
flow only through feedforward connections, as in the paper). The readout is a
non-spiking :class:`cellfit.Integrator`, :math:`V[t] = \beta V[t-1] + (1-\beta)(W s[t] + b)`,
and the class scores are its membrane potential summed over time; the loss is
cross-entropy on these scores.

Initialisation (documented choices; they follow the Block reference code,
``webstorms/Blocks`` ``src/models.py``, where it matters):

- hidden time constants: :math:`\tau_m` = 20 ms, :math:`\tau_\text{adapt}` = 150 ms,
  adaptation scale d = 1 (the reference initialises d = 1.8 but clamps it to 1),
  all learnable (bounded log-space parameterisation of :mod:`cellfit.modules`);
- readout :math:`\tau_m` = 20 ms (learnable);
- feedforward weights :math:`U(\pm 1/\sqrt{n_\text{in}})`, biases 0, recurrent
  weights the identity (``recurrent_init="identity"``, as the reference) or
  :math:`U(\pm 1/\sqrt{n})` (``"uniform"``);
- **input gain**: cellfit's ALIF integrates :math:`(1-\beta) I` while the reference
  integrates :math:`I`, so a spike moves the potential ~1/(1-β) ≈ 20x (DT 1 ms)
  less. Each hidden layer's weights, recurrent weights and bias are therefore
  parametrised as :math:`W = g\,W_\text{raw}` with the fixed gain
  :math:`g = 1/(1-\beta_0)`, :math:`\beta_0 = e^{-\Delta t/\tau_{m,0}}`
  (:func:`torch.nn.utils.parametrize`). At initialisation this reproduces the
  reference dynamics, and Adam (whose step is about ``lr`` in raw units) moves
  weights at the reference's relative rate. The readout keeps the plain
  (1-β)-normalised integrator so that the summed scores stay O(1-10) at
  initialisation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils import parametrize

from cellfit.modules import ALIF, EngineSwitch, Integrator

__all__ = ["SpikingClassifier", "ClassifierOutput", "Gain", "RECURRENT_INITS"]

RECURRENT_INITS = ("identity", "uniform")


class ClassifierOutput(NamedTuple):
    """What :meth:`SpikingClassifier.forward` returns (always the same fields)."""

    scores: torch.Tensor
    """(B, n_classes) class scores: readout membrane potential summed over time."""
    spikes: tuple
    """One (B, hidden, T) 0/1 spike tensor per hidden layer."""


class Gain(nn.Module):
    """Parametrisation ``W = gain * W_raw`` with a fixed scalar gain (no inverse: ``W_raw`` keeps its init)."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = float(gain)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return raw * self.gain

    def extra_repr(self) -> str:
        return f"gain={self.gain:.6g}"


class SpikingClassifier(EngineSwitch, nn.Module):
    """Recurrent ALIF layers and a leaky-integrator readout whose summed potential scores the classes.

    Args:
        n_in: input channels (SHD 700, N-MNIST 2312).
        n_classes: number of classes (SHD 20, N-MNIST 10).
        hidden: neurons per hidden layer (paper 256).
        n_layers: number of hidden ALIF layers (paper 2).
        dt_ms: time step in ms (paper: SHD 2, N-MNIST 1).
        arp_ms: absolute refractory period in ms, a whole number of steps (also the
            recurrent latency; paper: SHD 20, N-MNIST 10 for the Block model).
        engine: ``"blocks"`` or ``"standard"`` (same spikes; settable later via ``.engine``).
        surrogate: ``"multi_gaussian"`` (paper) or ``"fast_sigmoid"``.
        recurrent: recurrent weights in every hidden layer (paper: yes).
        tau_mem_ms, tau_adapt_ms, adapt_scale, readout_tau_ms: initial values (see module docstring).
        recurrent_init: ``"identity"`` or ``"uniform"``.
        input_gain: the fixed weight gain g of the hidden layers; default ``1/(1-β0)``.

    Input: (B, n_in, T) float spike counts. Output: :class:`ClassifierOutput`.
    """

    def __init__(
        self,
        n_in: int,
        n_classes: int,
        hidden: int = 256,
        n_layers: int = 2,
        *,
        dt_ms: float = 1.0,
        arp_ms: float = 10.0,
        engine: str = "blocks",
        surrogate: str = "multi_gaussian",
        recurrent: bool = True,
        tau_mem_ms: float = 20.0,
        tau_adapt_ms: float = 150.0,
        adapt_scale: float = 1.0,
        readout_tau_ms: float = 20.0,
        recurrent_init: str = "identity",
        input_gain: float | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if hidden < 1 or n_layers < 1:
            raise ValueError(f"need hidden >= 1 and n_layers >= 1, got hidden={hidden}, n_layers={n_layers}")
        if recurrent_init not in RECURRENT_INITS:
            raise ValueError(f"unknown recurrent_init {recurrent_init!r}; choose one of {list(RECURRENT_INITS)}")
        self.n_in, self.n_classes, self.hidden, self.n_layers = int(n_in), int(n_classes), int(hidden), int(n_layers)
        self.dt_ms, self.arp_ms = float(dt_ms), float(arp_ms)
        beta0 = math.exp(-self.dt_ms / float(tau_mem_ms))
        self.input_gain = float(input_gain) if input_gain is not None else 1.0 / (1.0 - beta0)
        kw = dict(device=device, dtype=dtype)
        layers = []
        for k in range(self.n_layers):
            layer = ALIF(
                self.n_in if k == 0 else self.hidden,
                self.hidden,
                dt_ms=self.dt_ms,
                arp_ms=self.arp_ms,
                engine=engine,
                recurrent=recurrent,
                surrogate=surrogate,
                tau_mem_ms=tau_mem_ms,
                tau_adapt_ms=tau_adapt_ms,
                adapt_scale=adapt_scale,
                **kw,
            )
            if recurrent and recurrent_init == "identity":
                with torch.no_grad():
                    layer.weight_rec.copy_(torch.eye(self.hidden, **kw))
            for name in ("weight", "bias") + (("weight_rec",) if recurrent else ()):
                parametrize.register_parametrization(layer, name, Gain(self.input_gain))
            layers.append(layer)
        self.layers = nn.ModuleList(layers)
        self.readout = Integrator(self.hidden, self.n_classes, dt_ms=self.dt_ms, tau_mem_ms=readout_tau_ms, **kw)

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        if x.dim() != 3 or x.shape[1] != self.n_in:
            raise ValueError(f"expected input of shape (batch, {self.n_in}, time), got {tuple(x.shape)}")
        spikes = []
        h = x
        for layer in self.layers:
            h = layer(h)
            spikes.append(h)
        v = self.readout(h)
        return ClassifierOutput(scores=v.sum(dim=-1), spikes=tuple(spikes))

    def extra_repr(self) -> str:
        return f"input_gain={self.input_gain:.4g}"
