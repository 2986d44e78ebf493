"""Trainable wrappers over :mod:`cellfit.functional`: ALIF layers and an integrator readout.

Time constants are learned in a bounded log space,

.. math:: \\ln\\tau = \\ln\\tau_\\min + (\\ln\\tau_\\max - \\ln\\tau_\\min)\\,\\sigma(u),

so they stay inside their bounds without a clamp (whose gradient would be zero on
the bound) and their gradient scales with :math:`\\tau` itself at every DT. The
adaptation scale is :math:`d = \\mathrm{softplus}(u_d) \\ge 0`, which keeps the
threshold at or above its base value of 1 (a condition the Block algorithm relies
on: a refractory neuron, held at V = 0, can never cross threshold).

Opt-in extensions of :class:`ALIF` (``reset=True``, ``n_asc=J``; equations in
:mod:`cellfit.functional.alif`): a learnable reset potential
:math:`V_r = \\ell + (h - \\ell)\\,\\sigma(u_r)` inside ``v_reset_bounds`` (up to
:data:`V_RESET_MAX`; a reset above the base threshold makes the neuron fire again as soon as its
refractory steps have passed, until adaptation lifts the threshold above :math:`V_r`: a burst at the
refractory rate. Every engine gates refractory steps explicitly, so the Block algorithm stays exact;
``tests/functional/test_glif.py`` draws resets on both sides of the threshold), and J after-spike currents
with unconstrained amplitudes :math:`A_j` (``asc_amp``, (n_out, J)) and time constants
``tau_asc`` ((n_out, J), bounded log space as above). Without them the layer has
exactly the parameters, state-dict keys and results it always had. A third, ``sub=True``
(one input only), subtracts a linear subthreshold adaptation current that follows the stimulus,
:math:`x - k\\,L_{\\tau_\\text{sub}}x` (:func:`cellfit.functional.linear.subthreshold_adapted`), with
:math:`k = k_\\max\\,\\sigma(u_k)` (``sub_amp``, below :data:`SUB_AMP_MAX`) and ``tau_sub`` (bounded log
space); it changes the input current only, so every engine runs it unchanged.

Example::

    layer = cellfit.ALIF(1, 4, dt_ms=0.1, arp_ms=2.0)
    spikes = layer(torch.rand(8, 1, 10_000))              # (batch, 4, time) of 0/1
    trace = layer.simulate(x, record=("v", "theta"))       # same engine, with traces
    layer.tau_mem_ms                                       # (4,) in milliseconds
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from cellfit.functional.alif import (
    ENGINES,
    ALIFParameters,
    ALIFState,
    ALIFStepParameters,
    ALIFTrace,
    arp_steps,
    leaky_integrator,
    simulate,
)
from cellfit.functional.linear import channel_linear, subthreshold_adapted
from cellfit.functional.surrogate import SpikeFn, get_surrogate

__all__ = ["ALIF", "Integrator", "BoundedTimeConstant", "EngineSwitch", "SUB_AMP_MAX", "V_RESET_MAX"]

#: upper bound of the subthreshold adaptation amplitude k (``sub=True``): a current that cancelled
#: the whole of a sustained stimulus (k = 1) would leave the cell blind to its mean
SUB_AMP_MAX = 0.95

#: largest upper bound of the reset potential (threshold units; the base threshold is 1): a reset
#: above it would fire a neuron at the refractory rate even with its threshold doubled by adaptation
V_RESET_MAX = 2.0


class BoundedTimeConstant(nn.Module):
    """A learnable vector of time constants in ``[low_ms, high_ms]``, parameterised in bounded log space."""

    def __init__(self, init_ms, n: int | tuple[int, ...], low_ms: float, high_ms: float, device=None, dtype=None):
        super().__init__()
        if not (0 < low_ms < high_ms):
            raise ValueError(f"time-constant bounds must satisfy 0 < low < high, got ({low_ms}, {high_ms})")
        self.low_ms, self.high_ms = float(low_ms), float(high_ms)
        shape = (n,) if isinstance(n, int) else tuple(n)  # (n,), or e.g. (n_out, J) for after-spike currents
        init = torch.as_tensor(init_ms, dtype=dtype or torch.get_default_dtype(), device=device)
        init = init.expand(shape).clone() if init.dim() == 0 else init
        if init.shape != shape:
            shown = f"({shape[0]},)" if len(shape) == 1 else str(shape)
            raise ValueError(f"initial time constants must be a number or have shape {shown}, got {tuple(init.shape)}")
        if not bool(((init > low_ms) & (init < high_ms)).all()):
            raise ValueError(
                f"initial time constants {init.tolist()} ms must lie strictly inside ({low_ms}, {high_ms}) ms"
            )
        self.raw = nn.Parameter(self.to_raw(init))

    def to_raw(self, tau_ms: torch.Tensor) -> torch.Tensor:
        lo, hi = math.log(self.low_ms), math.log(self.high_ms)
        frac = (torch.log(tau_ms) - lo) / (hi - lo)
        return torch.logit(frac)

    def forward(self) -> torch.Tensor:
        lo, hi = math.log(self.low_ms), math.log(self.high_ms)
        return torch.exp(lo + (hi - lo) * torch.sigmoid(self.raw))

    @torch.no_grad()
    def set_(self, tau_ms) -> None:
        """Overwrite the time constants (ms), e.g. to initialise a fit from data."""
        tau = torch.as_tensor(tau_ms, dtype=self.raw.dtype, device=self.raw.device).expand_as(self.raw)
        tau = tau.clamp(self.low_ms * (1 + 1e-6), self.high_ms * (1 - 1e-6))
        self.raw.copy_(self.to_raw(tau))

    def extra_repr(self) -> str:
        return f"n={self.raw.numel()}, bounds_ms=({self.low_ms:g}, {self.high_ms:g})"


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


class ALIF(nn.Module):
    """A layer of adaptive LIF neurons, simulated by a chosen engine (equations in :mod:`cellfit.functional.alif`).

    Args:
        n_in: number of inputs (e.g. 1 for an injected current, or presynaptic neurons).
        n_out: number of ALIF neurons.
        dt_ms: simulation time step in ms.
        arp_ms: absolute refractory period in ms (a whole number of steps); also the
            recurrent latency.
        engine: ``"blocks"`` (Block algorithm) or ``"standard"`` (step by step); same
            results, switchable at any time (``layer.engine = "standard"``).
        recurrent: add learnable recurrent weights (latency = ARP).
        surrogate: ``"multi_gaussian"``, ``"fast_sigmoid"`` or a spike function from
            :mod:`cellfit.functional.surrogate`.
        tau_mem_ms, tau_adapt_ms: initial time constants (number or (n_out,) tensor).
        adapt_scale: initial adaptation scale :math:`d > 0`.
        tau_mem_bounds_ms, tau_adapt_bounds_ms: learnable ranges of the time constants.
        reset: learn a reset potential :math:`V_r` (parameter ``v_reset_raw``, property
            ``v_reset``, (n_out,), threshold units); without it :math:`V_r = 0`.
        n_asc: number J of after-spike currents (parameters ``asc_amp`` (n_out, J) and
            ``tau_asc`` (n_out, J) ms); 0: none.
        v_reset: initial :math:`V_r` (number or (n_out,)), strictly inside ``v_reset_bounds``;
            only with ``reset=True``.
        asc_amp: initial amplitudes :math:`A_j` (number, (J,) or (n_out, J); normalised
            current per unit of the spike count :math:`c_j`; negative = adaptation current,
            positive = depolarising after-potential); only with ``n_asc > 0``.
        tau_asc_ms: initial after-spike time constants (number, (J,) or (n_out, J) ms;
            default 10 and 200 ms for J = 1, 2, geometric from 10 to 200 ms for J > 2).
        v_reset_bounds: ``(low, high)`` of :math:`V_r`, high at most :data:`V_RESET_MAX` (above the
            base threshold 1 only for cells that fire bursts at the refractory rate).
        tau_asc_bounds_ms: learnable range of the after-spike time constants.
        sub: learn a subthreshold adaptation current that follows the stimulus (parameters
            ``sub_amp_raw`` and ``tau_sub``; properties ``sub_amp`` and ``tau_sub_ms``, (n_out,));
            only with ``n_in == 1``.
        sub_amp, tau_sub_ms: their initial values (number or (n_out,)), strictly inside
            (0, :data:`SUB_AMP_MAX`) and ``tau_sub_bounds_ms``; only with ``sub=True``.
        tau_sub_bounds_ms: learnable range of the subthreshold current's time constant.

    Input ``x``: (batch, n_in, time). Output: (batch, n_out, time) spikes of 0/1.
    The input current is :math:`I = W x + b` (``weight`` (n_out, n_in), ``bias`` (n_out,)), with
    ``sub=True`` :math:`I = W (x - k L_{\\tau_\\text{sub}} x) + b`.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        dt_ms: float = 0.1,
        arp_ms: float = 2.0,
        engine: str = "blocks",
        recurrent: bool = False,
        surrogate: str | SpikeFn = "multi_gaussian",
        *,
        tau_mem_ms=20.0,
        tau_adapt_ms=100.0,
        adapt_scale=1.0,
        tau_mem_bounds_ms: tuple[float, float] = (0.5, 1000.0),
        tau_adapt_bounds_ms: tuple[float, float] = (1.0, 10000.0),
        reset: bool = False,
        n_asc: int = 0,
        v_reset=0.0,
        asc_amp=0.0,
        tau_asc_ms=None,
        v_reset_bounds: tuple[float, float] = (-1.0, 0.95),
        tau_asc_bounds_ms: tuple[float, float] = (1.0, 2000.0),
        sub: bool = False,
        sub_amp=0.5,
        tau_sub_ms=300.0,
        tau_sub_bounds_ms: tuple[float, float] = (10.0, 3000.0),
        device=None,
        dtype=None,
    ):
        super().__init__()
        if n_in < 1 or n_out < 1:
            raise ValueError(f"n_in and n_out must be >= 1, got {n_in}, {n_out}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.dt_ms = float(dt_ms)
        self.arp_ms = float(arp_ms)
        self.t_ref = arp_steps(self.arp_ms, self.dt_ms)
        self.engine = engine
        self.recurrent = bool(recurrent)
        self.surrogate = surrogate
        fkw = dict(device=device, dtype=dtype)
        self.tau_mem = BoundedTimeConstant(tau_mem_ms, n_out, *tau_mem_bounds_ms, **fkw)
        self.tau_adapt = BoundedTimeConstant(tau_adapt_ms, n_out, *tau_adapt_bounds_ms, **fkw)
        d0 = torch.as_tensor(adapt_scale, dtype=dtype or torch.get_default_dtype(), device=device)
        if not bool((d0 > 0).all()):
            raise ValueError(f"adapt_scale must be > 0, got {adapt_scale}")
        self.adapt_raw = nn.Parameter(_inverse_softplus(d0.expand(n_out).clone()))
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_out, n_in, **fkw).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_out, **fkw))
        if self.recurrent:
            rb = 1.0 / math.sqrt(n_out)
            self.weight_rec = nn.Parameter(torch.empty(n_out, n_out, **fkw).uniform_(-rb, rb))
        else:
            self.register_parameter("weight_rec", None)
        self._init_extension(reset, n_asc, v_reset, asc_amp, tau_asc_ms, v_reset_bounds, tau_asc_bounds_ms, fkw)
        self._init_sub(sub, sub_amp, tau_sub_ms, tau_sub_bounds_ms, fkw)

    def _init_extension(self, reset, n_asc, v_reset, asc_amp, tau_asc_ms, v_reset_bounds, tau_asc_bounds_ms, fkw) -> None:
        """The optional reset potential and after-spike currents (registered after today's
        parameters, and only when asked for, so that default layers keep their state dicts)."""
        self.reset, self.n_asc = bool(reset), int(n_asc)
        if self.n_asc < 0:
            raise ValueError(f"n_asc must be >= 0, got {n_asc}")
        dtype = fkw["dtype"] or torch.get_default_dtype()
        as_tensor = lambda v: torch.as_tensor(v, dtype=dtype, device=fkw["device"])  # noqa: E731
        if self.reset:
            lo, hi = (float(b) for b in v_reset_bounds)
            if not lo < hi <= V_RESET_MAX:
                raise ValueError(f"v_reset_bounds must satisfy low < high <= {V_RESET_MAX:g} (threshold units), "
                                 f"got {v_reset_bounds}")
            self.v_reset_bounds = (lo, hi)
            v0 = as_tensor(v_reset).expand(self.n_out).clone()
            if not bool(((v0 > lo) & (v0 < hi)).all()):
                raise ValueError(f"initial v_reset {v0.tolist()} must lie strictly inside v_reset_bounds ({lo:g}, {hi:g})")
            self.v_reset_raw = nn.Parameter(torch.logit((v0 - lo) / (hi - lo)))
        elif bool((as_tensor(v_reset) != 0).any()):
            raise ValueError(f"v_reset={v_reset} needs reset=True (a learnable reset potential)")
        if self.n_asc:
            amp = as_tensor(asc_amp)
            self.asc_amp = nn.Parameter(amp.expand(self.n_out, self.n_asc).clone())
            if tau_asc_ms is None:
                J = self.n_asc
                tau_asc_ms = [10.0] if J == 1 else [10.0 * 20.0 ** (i / (J - 1)) for i in range(J)]
            tau0 = as_tensor(tau_asc_ms)
            tau0 = tau0.expand(self.n_out, self.n_asc) if tau0.dim() <= 1 else tau0
            self.tau_asc = BoundedTimeConstant(tau0, (self.n_out, self.n_asc), *tau_asc_bounds_ms, **fkw)
        else:
            if bool((as_tensor(asc_amp) != 0).any()) or tau_asc_ms is not None:
                raise ValueError("asc_amp / tau_asc_ms need n_asc >= 1 (the number of after-spike currents)")
            self.register_parameter("asc_amp", None)

    def _init_sub(self, sub, sub_amp, tau_sub_ms, tau_sub_bounds_ms, fkw) -> None:
        """The optional subthreshold adaptation current (registered last, only when asked for)."""
        self.sub = bool(sub)
        if not self.sub:
            return
        if self.n_in != 1:
            raise ValueError(f"sub=True needs one input (an injected current), got n_in={self.n_in}")
        k0 = torch.as_tensor(sub_amp, dtype=fkw["dtype"] or torch.get_default_dtype(), device=fkw["device"])
        k0 = k0.expand(self.n_out).clone()
        if not bool(((k0 > 0) & (k0 < SUB_AMP_MAX)).all()):
            raise ValueError(f"initial sub_amp {k0.tolist()} must lie strictly inside (0, {SUB_AMP_MAX:g})")
        self.sub_amp_raw = nn.Parameter(torch.logit(k0 / SUB_AMP_MAX))
        self.tau_sub = BoundedTimeConstant(tau_sub_ms, self.n_out, *tau_sub_bounds_ms, **fkw)

    # -- configuration -------------------------------------------------------------------
    @property
    def engine(self) -> str:
        return self._engine

    @engine.setter
    def engine(self, name: str) -> None:
        if name not in ENGINES:
            raise ValueError(f"unknown engine {name!r}; choose one of {sorted(ENGINES)}")
        self._engine = name

    @property
    def surrogate(self) -> SpikeFn:
        return self._spike_fn

    @surrogate.setter
    def surrogate(self, value: str | SpikeFn) -> None:
        self._spike_fn = get_surrogate(value)
        self._surrogate_name = value if isinstance(value, str) else getattr(value, "__name__", "custom")

    # -- readable parameters (physical units) -----------------------------------------------
    @property
    def tau_mem_ms(self) -> torch.Tensor:
        """(n_out,) membrane time constants in ms."""
        return self.tau_mem()

    @property
    def tau_adapt_ms(self) -> torch.Tensor:
        """(n_out,) adaptation time constants in ms."""
        return self.tau_adapt()

    @property
    def adapt_scale(self) -> torch.Tensor:
        """(n_out,) adaptation scale d (threshold rise per spike, base threshold = 1)."""
        return nn.functional.softplus(self.adapt_raw)

    @property
    def v_reset(self) -> Optional[torch.Tensor]:
        """(n_out,) reset potential :math:`V_r` (threshold units, rest 0), or None without ``reset``."""
        if not self.reset:
            return None
        lo, hi = self.v_reset_bounds
        return lo + (hi - lo) * torch.sigmoid(self.v_reset_raw)

    @property
    def tau_asc_ms(self) -> Optional[torch.Tensor]:
        """(n_out, n_asc) after-spike current time constants in ms, or None without after-spike currents."""
        return self.tau_asc() if self.n_asc else None

    # ``asc_amp`` (n_out, n_asc) is the parameter itself (unconstrained), or None.

    @property
    def sub_amp(self) -> Optional[torch.Tensor]:
        """(n_out,) subthreshold adaptation amplitude k (fraction of a sustained stimulus cancelled), or None."""
        return SUB_AMP_MAX * torch.sigmoid(self.sub_amp_raw) if self.sub else None

    @property
    def tau_sub_ms(self) -> Optional[torch.Tensor]:
        """(n_out,) time constant of the subthreshold adaptation current in ms, or None."""
        return self.tau_sub() if self.sub else None

    @property
    def sub_filter(self) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """``(k, log r)`` per neuron, the arguments of :func:`cellfit.functional.linear.subthreshold_adapted`
        (``log r = -dt / tau_sub``), or None without the subthreshold current."""
        return (self.sub_amp, -self.dt_ms / self.tau_sub_ms) if self.sub else None

    def stimulus(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, T) or (batch, n_out, T) stimulus -> what the weights see: with ``sub`` the stimulus
        less the subthreshold current, (batch, n_out, T); else ``x`` unchanged."""
        if not self.sub:
            return x
        return subthreshold_adapted(x.expand(-1, self.n_out, -1), *self.sub_filter)

    def parameters_physical(self) -> ALIFParameters:
        return ALIFParameters(self.tau_mem_ms, self.tau_adapt_ms, self.adapt_scale, self.arp_ms,
                              v_reset=self.v_reset, asc_amp=self.asc_amp, tau_asc_ms=self.tau_asc_ms)  # fmt: skip

    def step_parameters(self) -> ALIFStepParameters:
        return self.parameters_physical().discretise(self.dt_ms)

    # -- simulation ----------------------------------------------------------------------
    def input_current(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_in, T) -> (batch, n_out, T) feedforward current :math:`W x + b`."""
        if x.dim() != 3 or x.shape[1] != self.n_in:
            raise ValueError(f"expected input of shape (batch, {self.n_in}, time), got {tuple(x.shape)}")
        if self.n_in == 1:
            return self.stimulus(x) * self.weight[None, :, :] + self.bias[None, :, None]
        return channel_linear(x, self.weight, self.bias)

    def simulate(
        self,
        x: torch.Tensor,
        *,
        state: Optional[ALIFState] = None,
        record: Sequence[str] = (),
    ) -> ALIFTrace:
        """Run the layer and return an :class:`~cellfit.functional.ALIFTrace` (spikes, optional v/theta, final state)."""
        return simulate(
            self.input_current(x),
            self.step_parameters(),
            self.engine,
            w_rec=self.weight_rec,
            state=state,
            spike_fn=self._spike_fn,
            record=record,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.simulate(x).spikes

    def extra_repr(self) -> str:
        return (
            f"n_in={self.n_in}, n_out={self.n_out}, dt_ms={self.dt_ms:g}, arp_ms={self.arp_ms:g} "
            f"(T_R={self.t_ref}), engine={self.engine!r}, recurrent={self.recurrent}, "
            f"surrogate={self._surrogate_name!r}"
            + (", reset=True" if self.reset else "")
            + (f", n_asc={self.n_asc}" if self.n_asc else "")
            + (", sub=True" if self.sub else "")
        )


class EngineSwitch:
    """Mixin for a network of :class:`ALIF` layers: ``net.engine`` is the first layer's engine,
    and ``net.engine = "standard"`` (or ``"blocks"``) switches every ALIF layer inside."""

    @property
    def engine(self) -> str:
        """The ALIF layers' engine, ``"blocks"`` or ``"standard"``."""
        return next(m for m in self.modules() if isinstance(m, ALIF)).engine

    @engine.setter
    def engine(self, name: str) -> None:
        for m in self.modules():
            if isinstance(m, ALIF):
                m.engine = name


class Integrator(nn.Module):
    """Non-spiking leaky-integrator readout: :math:`V[t] = \\beta V[t-1] + (1-\\beta)(W x[t] + b)`.

    Input (batch, n_in, time); output (batch, n_out, time) membrane potentials. For a
    classifier, the class scores are ``V.sum(-1)`` (or ``.mean(-1)``).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        dt_ms: float = 1.0,
        *,
        tau_mem_ms=20.0,
        tau_mem_bounds_ms: tuple[float, float] = (0.5, 1000.0),
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.n_in, self.n_out, self.dt_ms = int(n_in), int(n_out), float(dt_ms)
        fkw = dict(device=device, dtype=dtype)
        self.tau_mem = BoundedTimeConstant(tau_mem_ms, n_out, *tau_mem_bounds_ms, **fkw)
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_out, n_in, **fkw).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_out, **fkw))

    @property
    def tau_mem_ms(self) -> torch.Tensor:
        return self.tau_mem()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.n_in:
            raise ValueError(f"expected input of shape (batch, {self.n_in}, time), got {tuple(x.shape)}")
        current = channel_linear(x, self.weight, self.bias)
        return leaky_integrator(current, -self.dt_ms / self.tau_mem_ms)

    def extra_repr(self) -> str:
        return f"n_in={self.n_in}, n_out={self.n_out}, dt_ms={self.dt_ms:g}"
