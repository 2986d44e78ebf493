r"""The benchmark's network in other spiking-network libraries: Norse, snnTorch and SpikingJelly.

``python -m pipelines.benchmark --peers all`` times these beside cellfit's two engines, on
the same Poisson input tensor and with the same weights, interleaved with them
(:mod:`cellfit.bench.timing`). Install them with the ``peers`` extra (see
``cellfit/bench/README.md``); a peer that is not installed is skipped with one line
(:func:`resolve_peers`).

Each peer builds, from a calibrated :class:`cellfit.bench.workloads.SyntheticNetwork`,
the closest model its library offers, layer by layer, with the network's feedforward
weights :math:`W` (hidden, inputs) and recurrent weights :math:`W^\text{rec}` (hidden,
hidden); time step :math:`\Delta t`, membrane time constant :math:`\tau_m`, adaptation
:math:`\tau_\text{adapt}`, :math:`d` as in the case (:class:`cellfit.bench.cases.BenchmarkCase`):

- ``norse`` (``norse.torch.LSNNRecurrent``, adaptive): Euler steps of
  :math:`v \leftarrow v + \tfrac{\Delta t}{\tau_m}(i - v)`, a synaptic current :math:`i`
  with :math:`\tau_\text{syn} = \Delta t` (the current is the step's input, as in cellfit),
  threshold :math:`b` relaxing to 1 with :math:`\tau_\text{adapt}`, :math:`b \mathrel{+}= d`
  per spike, reset to 0; weights copied as they are (the input's factor
  :math:`\Delta t/\tau_m` is cellfit's :math:`1-\beta` to first order); the input
  projection runs inside Norse's step loop, as the module does it.
- ``snntorch`` (``snntorch.RLeaky``, no adaptation): :math:`U \leftarrow \beta U + I +
  W^\text{rec} S`, the threshold subtracted one step after a spike (snnTorch's default
  reset; its reset to zero evaluates the state update, recurrent product included, twice
  per step); weights scaled by :math:`1-\beta` (snnTorch adds the input without that factor).
- ``spikingjelly`` (``spikingjelly.activation_based.neuron.LIFNode`` and a recurrent
  ``nn.Linear``, no adaptation): :math:`H = V + (X - V)/\tau` with :math:`\tau = \tau_m/\Delta t`
  steps, hard reset to 0 (detached); weights copied.

None of the three has an absolute refractory period, so they simulate no ARP and their
recurrent latency is one step (cellfit's is the ARP); without adaptation (snnTorch,
SpikingJelly) neurons fire more. The work is therefore not equal: every row of the result
table reports its spike count (``spikes_per_sample``, ``spike_rate_hz``) and the model
(``model``). snnTorch and SpikingJelly get the input projection of all steps at once and
per-step views of it (``unbind``), as cellfit's step-by-step engine does. Each library keeps
its own default surrogate gradient. Inputs are given time-major, (T, batch, inputs), made
once before timing (:meth:`PeerNetwork.prepare`).

The published Block implementation is not included: its code is not a package and is not
part of this repository.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from cellfit.bench.cases import BenchmarkCase, layer_outputs

__all__ = ["PEERS", "PeerSpec", "PeerNetwork", "resolve_peers", "build_peer", "peer_version"]


@dataclass(frozen=True)
class PeerSpec:
    """A peer library: its name in ``--peers``, the module to import, its distribution and model."""

    name: str
    module: str
    distribution: str
    model: str


PEERS: dict[str, PeerSpec] = {
    "norse": PeerSpec("norse", "norse.torch", "norse",
                      "LSNNRecurrent: adaptive threshold, no ARP, recurrent latency 1 step"),
    "snntorch": PeerSpec("snntorch", "snntorch", "snntorch",
                         "RLeaky: LIF, no adaptation, no ARP, recurrent latency 1 step"),
    "spikingjelly": PeerSpec("spikingjelly", "spikingjelly.activation_based.neuron", "spikingjelly",
                             "LIFNode + recurrent Linear: LIF, no adaptation, no ARP, recurrent latency 1 step"),
}  # fmt: skip
"""The peers, by name (``--peers norse snntorch spikingjelly`` or ``--peers all``)."""

INSTALL_HINT = "pip install -e '.[peers]' (see cellfit/bench/README.md)"


def peer_version(name: str) -> str:
    """``"<distribution> <version>"`` of an installed peer, e.g. ``"norse 1.1.0"``."""
    dist = PEERS[name].distribution
    return f"{dist} {importlib.metadata.version(dist)}"


def resolve_peers(names: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """Split requested peers into the installed ones and one skip line per missing one.

    ``"all"`` stands for every peer of :data:`PEERS`. Raises ``ValueError`` for an unknown
    name. Returns ``(available names, lines)``; a line reads e.g. ``peer 'snntorch' skipped:
    not installed (No module named 'snntorch'); install: pip install -e '.[peers]' ...``.
    """
    wanted: list[str] = []
    for n in names:
        for m in (PEERS if n == "all" else [n]):
            if m not in PEERS:
                raise ValueError(f"unknown peer {m!r}; choose from {sorted(PEERS)} or 'all'")
            if m not in wanted:
                wanted.append(m)
    ok, lines = [], []
    for n in wanted:
        try:
            importlib.import_module(PEERS[n].module)
        except ImportError as exc:
            lines.append(f"peer {n!r} skipped: not installed ({exc}); install: {INSTALL_HINT}")
            continue
        ok.append(n)
    return tuple(ok), lines


class PeerNetwork(nn.Module):
    """A peer library's version of a :class:`~cellfit.bench.workloads.SyntheticNetwork`.

    ``prepare(x)`` turns cellfit's input (batch, inputs, T) into the peer's time-major
    (T, batch, inputs) once, before timing; ``forward`` takes that and returns every layer's
    spikes, each (T, batch, hidden), like the cellfit network's list of layers.
    """

    def __init__(self, name: str, layers: Sequence[nn.Module]):
        super().__init__()
        self.name = name
        self.layers = nn.ModuleList(layers)

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        return x.permute(2, 0, 1).contiguous()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return layer_outputs(self.layers, x)


# ---------------------------------------------------------------------------------------
# Norse
# ---------------------------------------------------------------------------------------


class _NorseLayer(nn.Module):
    def __init__(self, case: BenchmarkCase, w: torch.Tensor, w_rec, d: float):
        super().__init__()
        nt = importlib.import_module("norse.torch")
        dt_s = case.dt_ms * 1e-3
        f = dict(dtype=w.dtype, device="cpu")
        p = nt.LSNNParameters(
            tau_syn_inv=torch.tensor(1.0 / dt_s, **f), tau_mem_inv=torch.tensor(1e3 / case.tau_mem_ms, **f),
            tau_adapt_inv=torch.tensor(1e3 / case.tau_adapt_ms, **f), v_leak=torch.tensor(0.0, **f),
            v_th=torch.tensor(1.0, **f), v_reset=torch.tensor(0.0, **f), beta=torch.tensor(d, **f),
        )  # fmt: skip
        if w_rec is not None:
            self.cell = nt.LSNNRecurrent(w.shape[1], w.shape[0], p=p, dt=dt_s, autapses=True,
                                         input_weights=nn.Parameter(w.detach().clone()),
                                         recurrent_weights=nn.Parameter(w_rec.detach().clone()))
            self.proj = None
        else:
            self.proj = nn.Linear(w.shape[1], w.shape[0], bias=False, device=w.device, dtype=w.dtype)
            with torch.no_grad():
                self.proj.weight.copy_(w)
            self.cell = nt.LSNN(p=p, dt=dt_s)

    def forward(self, x):
        if self.proj is not None:
            x = self.proj(x)
        return self.cell(x)[0]


# ---------------------------------------------------------------------------------------
# snnTorch
# ---------------------------------------------------------------------------------------


class _SnnTorchLayer(nn.Module):
    def __init__(self, case: BenchmarkCase, w: torch.Tensor, w_rec):
        super().__init__()
        snn = importlib.import_module("snntorch")
        beta = math.exp(-case.dt_ms / case.tau_mem_ms)
        hidden, n_in = w.shape
        f = dict(device=w.device, dtype=w.dtype)
        self.proj = nn.Linear(n_in, hidden, bias=False, **f)
        if w_rec is not None:
            self.lif = snn.RLeaky(beta=beta, linear_features=hidden, all_to_all=True)
            self.lif.recurrent = nn.Linear(hidden, hidden, bias=False, **f)
            with torch.no_grad():
                self.lif.recurrent.weight.copy_((1.0 - beta) * w_rec)
        else:
            self.lif = snn.Leaky(beta=beta)
        self.lif.to(**f)
        self.recurrent = w_rec is not None
        with torch.no_grad():
            self.proj.weight.copy_((1.0 - beta) * w)

    def forward(self, x):
        out = []
        if self.recurrent:
            spk, mem = self.lif.reset_mem()
            for cur in self.proj(x).unbind(0):
                spk, mem = self.lif(cur, spk, mem)
                out.append(spk)
        else:
            mem = self.lif.reset_mem()
            for cur in self.proj(x).unbind(0):
                spk, mem = self.lif(cur, mem)
                out.append(spk)
        return torch.stack(out)


# ---------------------------------------------------------------------------------------
# SpikingJelly
# ---------------------------------------------------------------------------------------


class _SpikingJellyLayer(nn.Module):
    def __init__(self, case: BenchmarkCase, w: torch.Tensor, w_rec):
        super().__init__()
        neuron = importlib.import_module("spikingjelly.activation_based.neuron")
        self._functional = importlib.import_module("spikingjelly.activation_based.functional")
        hidden, n_in = w.shape
        f = dict(device=w.device, dtype=w.dtype)
        self.proj = nn.Linear(n_in, hidden, bias=False, **f)
        self.rec = nn.Linear(hidden, hidden, bias=False, **f) if w_rec is not None else None
        self.lif = neuron.LIFNode(tau=case.tau_mem_ms / case.dt_ms, decay_input=True, v_threshold=1.0, v_reset=0.0,
                                  detach_reset=True, step_mode="s" if w_rec is not None else "m")
        with torch.no_grad():
            self.proj.weight.copy_(w)
            if self.rec is not None:
                self.rec.weight.copy_(w_rec)

    def forward(self, x):
        self._functional.reset_net(self.lif)
        current = self.proj(x)
        if self.rec is None:
            return self.lif(current)  # multi-step mode over (T, batch, hidden)
        out = []
        s = torch.zeros_like(current[0])
        for cur in current.unbind(0):
            s = self.lif(cur + self.rec(s))
            out.append(s)
        return torch.stack(out)


_BUILDERS: dict[str, Callable] = {
    "norse": lambda case, layer: _NorseLayer(case, layer.weight, layer.weight_rec, float(layer.adapt_scale.mean())),
    "snntorch": lambda case, layer: _SnnTorchLayer(case, layer.weight, layer.weight_rec),
    "spikingjelly": lambda case, layer: _SpikingJellyLayer(case, layer.weight, layer.weight_rec),
}


def build_peer(name: str, net: nn.Module, case: BenchmarkCase) -> PeerNetwork:
    """The peer ``name``'s version of ``net`` (a calibrated SyntheticNetwork): same shapes, weights, device, dtype.

    Raises ``ValueError`` for the ``fit_cell`` task (the peers run the synthetic network only)
    and ``ImportError`` when the library is missing (check with :func:`resolve_peers` first).
    """
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; choose from {sorted(PEERS)}")
    if case.task != "spike_count":
        raise ValueError(f"peers run the synthetic network task only, not {case.task!r}")
    ref = next(net.parameters())
    with torch.no_grad():
        layers = [_BUILDERS[name](case, layer) for layer in net.layers]
    return PeerNetwork(name, layers).to(device=ref.device, dtype=ref.dtype)
