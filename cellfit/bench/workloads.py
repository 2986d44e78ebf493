r"""The timed workloads: the synthetic ALIF network on Poisson input and the single-cell fit step.

- **Input.** Synthetic Poisson spike trains (:func:`poisson_input`): each sample draws one
  rate uniformly in 0-200 Hz and every input channel spikes independently at each step with
  probability :math:`p = \text{rate}\cdot\Delta t`. The time step is 0.1 ms so that the ARP
  grid is in steps (10 steps = 1 ms). The single-cell fit shape uses an injected noise
  current instead (:func:`noise_current`).
- **Network** (:class:`SyntheticNetwork`): ``layers`` ALIF layers of ``hidden`` neurons,
  feedforward or recurrent, ``n_in`` inputs. The task is the Block paper's: the loss is the
  total number of output spikes of the last layer. The fit-cell shape (3 sweeps x 1 input x 1
  neuron x 10,000 steps) uses the van Rossum distance to a target train and an Adam step.
- **Steps** (:func:`inference_step`, :func:`training_step`): what the runner times, ``fwd``
  = the forward pass under ``torch.no_grad()``, ``fwd_bwd`` = forward, loss, ``backward()``
  (and the Adam step of the fit-cell task).
- **Exactness** (:func:`check_engines_identical`): the Block and standard engines must give
  identical spikes in float64 on the same input and parameters.

Synthetic weights. With the default initialisation (zero-mean weights of scale
:math:`1/\sqrt{n_\text{in}}`) and sparse Poisson input, neurons at DT 0.1 ms almost never
fire, which would make the exactness check vacuous. Each layer's feedforward weights are
therefore drawn uniformly in :math:`[0, 2\bar w]` with :math:`\bar w = \text{drive} /
(n_\text{in}\,\bar r)`, where :math:`\bar r` is the mean spike probability per step of that
layer's actual input, so that the mean input current is ``drive`` times the base threshold
(default 1.5) and every layer fires at a moderate rate; recurrent weights keep the default
initialisation. Timing does not depend on the spike count of the Block engine's dense
kernels, only the exactness check does.

The other workloads live beside this module: the panel fit (:mod:`cellfit.bench.panel`),
operation counts and the per-stage breakdown (:mod:`cellfit.bench.stages`), and the same
network in other libraries (:mod:`cellfit.bench.peers`).
"""

from __future__ import annotations

import copy
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from cellfit.bench.cases import BenchmarkCase, case_seed, layer_outputs
from cellfit.fit.metrics import van_rossum_distance
from cellfit.functional.filters import exp_filter
from cellfit.modules import ALIF, EngineSwitch

__all__ = [
    "REFERENCE_ENGINE",
    "SpikeMismatchError",
    "SyntheticNetwork",
    "poisson_input",
    "noise_current",
    "build_case",
    "inference_step",
    "training_step",
    "check_engines_identical",
    "spike_differences",
]

REFERENCE_ENGINE = "standard"
"""The engine every speedup is relative to, and the reference of the exactness check."""


class SpikeMismatchError(RuntimeError):
    """The Block and standard engines produced different spikes in float64 for the same input and parameters."""


def poisson_input(
    batch: int,
    n_in: int,
    T: int,
    dt_ms: float,
    *,
    seed: int,
    max_rate_hz: float = 200.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson (Bernoulli per step) spike trains with one uniform random rate per sample.

    Each sample ``b`` draws ``rate[b] ~ U(0, max_rate_hz)``; every channel then spikes at
    each step independently with probability ``rate[b] * dt_ms * 1e-3``. Generated on the
    CPU from ``seed`` alone, so the same seed gives the same trains on every device.

    Returns:
        ``x`` (batch, n_in, T) of 0/1 in ``dtype`` (on the CPU) and ``rates_hz`` (batch,) float64.
    """
    g = torch.Generator().manual_seed(int(seed))
    rates = torch.empty(batch, dtype=torch.float64).uniform_(0.0, float(max_rate_hz), generator=g)
    prob = (rates * dt_ms * 1e-3).tolist()
    x = torch.empty((batch, n_in, T), dtype=torch.bool)
    for b in range(batch):  # one sample at a time keeps the float32 scratch small
        x[b] = torch.rand((n_in, T), generator=g) < prob[b]
    return x.to(dtype), rates


def noise_current(
    batch: int,
    n_in: int,
    T: int,
    dt_ms: float,
    *,
    seed: int,
    mean: float = 1.5,
    std: float = 0.6,
    tau_ms: float = 3.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Injected current for the fit-cell shape: ``mean + std * z`` in threshold units.

    ``z`` is white noise low-pass filtered with time constant ``tau_ms`` and scaled to unit
    standard deviation (a stand-in for the Allen noise stimulus; timing does not depend on
    its spectrum). Returns (batch, n_in, T) on the CPU.
    """
    g = torch.Generator().manual_seed(int(seed))
    white = torch.randn((batch, n_in, T), generator=g, dtype=torch.float64)
    z = exp_filter(white, -dt_ms / tau_ms)
    z = (z - z.mean(-1, keepdim=True)) / z.std(-1, keepdim=True).clamp(min=1e-12)
    return (mean + std * z).to(dtype)


class SyntheticNetwork(EngineSwitch, nn.Module):
    """``layers`` ALIF layers of ``hidden`` neurons; forward returns every layer's spikes.

    Input (batch, n_in, T); output: a list of ``layers`` tensors (batch, hidden, T).
    Switch the engine of every layer with ``net.engine = "standard"``.
    """

    def __init__(self, case: BenchmarkCase, engine: str = "blocks"):
        super().__init__()
        self.case = case
        self.layers = nn.ModuleList(
            ALIF(
                case.n_in if i == 0 else case.hidden,
                case.hidden,
                dt_ms=case.dt_ms,
                arp_ms=case.arp_ms,
                engine=engine,
                recurrent=case.recurrent,
                tau_mem_ms=case.tau_mem_ms,
                tau_adapt_ms=case.tau_adapt_ms,
            )
            for i in range(case.layers)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return layer_outputs(self.layers, x)


@torch.no_grad()
def _calibrate(net: SyntheticNetwork, x: torch.Tensor, drive: float, generator: torch.Generator) -> None:
    """Set each layer's feedforward weights to U(0, 2 w) with mean current ``drive`` (module docstring)."""
    saved = net.engine
    net.engine = "blocks"
    h = x
    for layer in net.layers:
        rate = float(h.mean())  # spike probability per step of this layer's input
        mean_w = drive / (layer.n_in * max(rate, 1e-4))
        u = torch.rand(layer.weight.shape, generator=generator, dtype=torch.float64)
        layer.weight.copy_((2.0 * mean_w * u).to(layer.weight))
        h = layer(h)
    net.engine = saved


def build_case(
    case: BenchmarkCase, seed: int, device: torch.device, dtype: torch.dtype
) -> tuple[SyntheticNetwork, torch.Tensor, Optional[torch.Tensor]]:
    """Network, input and (fit-cell only) target spike train for one case, reproducible from ``seed``.

    Parameters are created on the CPU from ``seed`` (without touching the global RNG), then
    moved to ``device``/``dtype``. Returns (net, x (batch, n_in, T), target or None).
    """
    s = case_seed(seed, case)
    g = torch.Generator().manual_seed(s + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s + 2)
        net = SyntheticNetwork(case)
    target = None
    if case.task == "fit_cell":
        x = noise_current(case.batch, case.n_in, case.T, case.dt_ms, seed=s, dtype=dtype)
        with torch.no_grad():
            for layer in net.layers:
                layer.weight.fill_(1.0 / layer.n_in)
                layer.bias.zero_()
        # Target: a 20 Hz Poisson train per sweep (the "recorded" spikes).
        p = 20.0 * case.dt_ms * 1e-3
        target = (torch.rand((case.batch, case.hidden, case.T), generator=g) < p).to(dtype).to(device)
        net = net.to(device=device, dtype=dtype)
        x = x.to(device)
    else:
        x, _ = poisson_input(
            case.batch, case.n_in, case.T, case.dt_ms, seed=s, max_rate_hz=case.max_rate_hz, dtype=dtype
        )
        net = net.to(device=device, dtype=dtype)
        x = x.to(device)
        _calibrate(net, x, case.drive, g)
    return net, x, target


def inference_step(model: nn.Module, x: torch.Tensor, store: dict, key: str) -> Callable[[], None]:
    """A closure running ``model(x)`` under ``torch.no_grad()``; the output is kept as ``store[key]``."""

    def run():
        with torch.no_grad():
            store[key] = model(x)

    return run


def training_step(
    model: nn.Module,
    x: torch.Tensor,
    case: BenchmarkCase,
    target: Optional[torch.Tensor] = None,
    optimizer: Optional[torch.optim.Optimizer] = None,
) -> Callable[[], None]:
    """A closure for one training step: forward, loss, ``backward()`` and (if given) ``optimizer.step()``.

    The loss is the total number of last-layer spikes (``spike_count``), or the van Rossum
    distance (tau 10 ms) of the last layer's spikes to ``target`` (``fit_cell``).
    """

    def run():
        model.zero_grad(set_to_none=True)
        out = model(x)[-1]
        loss = out.sum() if target is None else van_rossum_distance(out, target, 10.0, case.dt_ms, reduction="sum")
        loss.backward()
        if optimizer is not None:
            optimizer.step()

    return run


def spike_differences(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> list[int]:
    """Per layer, the number of spike entries on which two outputs differ."""
    return [int((x != y).sum()) for x, y in zip(a, b)]


@torch.no_grad()
def check_engines_identical(net: SyntheticNetwork, x: torch.Tensor, label: str = "") -> int:
    """Simulate ``net`` in float64 with both engines on ``x`` and require identical spikes.

    Works on a float64 copy (``net`` and ``x`` are left as they are); compares every
    layer's spikes. Returns the number of spikes (all layers, whole batch).

    Raises:
        SpikeMismatchError: if any spike differs, naming the layer, the count and the first
            differing (sample, neuron, step).
    """
    ref = copy.deepcopy(net).to(torch.float64)
    x64 = x.to(torch.float64)
    outputs = {}
    for engine in ("blocks", REFERENCE_ENGINE):
        ref.engine = engine
        outputs[engine] = ref(x64)
    for i, (a, b) in enumerate(zip(outputs["blocks"], outputs[REFERENCE_ENGINE])):
        diff = a != b
        if bool(diff.any()):
            first = tuple(int(v) for v in diff.nonzero()[0])
            raise SpikeMismatchError(
                f"engines disagree in float64 on {label or net.case.label()}: layer {i + 1}: "
                f"{int(diff.sum())} of {diff.numel()} spike entries differ "
                f"(first at sample {first[0]}, neuron {first[1]}, step {first[2]}; "
                f"blocks {a[first].item():g} vs standard {b[first].item():g})"
            )
    return int(sum(float(s.sum()) for s in outputs[REFERENCE_ENGINE]))
