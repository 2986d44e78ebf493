"""What a benchmark times: one network/input shape (:class:`BenchmarkCase`) and the named grids of them.

A case fixes the simulation length ``T`` (steps), the absolute refractory period
``arp_steps`` (:math:`T_R`, also the recurrent latency), the batch, the network (``layers``
ALIF layers of ``hidden`` neurons, recurrent or feedforward, ``n_in`` inputs), the time
step ``dt_ms`` and the task (``spike_count``: Poisson input, loss = total last-layer
spikes, the Block paper's synthetic task; ``fit_cell``: an injected noise current, the van
Rossum loss to a target train and an Adam step, one epoch of a single-cell fit).

A grid is a tuple of cases (:data:`GRIDS`, :func:`grid`); :func:`override_cases` replaces
any axis of a grid (``override_cases(grid("sweep"), T=[512])``). How each grid is built
and what it answers: ``cellfit/bench/README.md``.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

__all__ = [
    "TASKS",
    "BenchmarkCase",
    "GRIDS",
    "GRID_DESCRIPTIONS",
    "DEFAULT_GRID",
    "FULL_GRID",
    "grid",
    "override_cases",
    "case_seed",
    "case_cost",
]

TASKS = ("spike_count", "fit_cell")
"""``spike_count``: Poisson input, loss = total last-layer spikes (paper section 4.1).
``fit_cell``: noise current input, van Rossum loss to a target train, plus an Adam step."""


@dataclass(frozen=True)
class BenchmarkCase:
    """One network/input shape to time (every engine is timed on it).

    Attributes:
        T: simulation length in steps.
        arp_steps: absolute refractory period :math:`T_R` in steps (also the recurrent latency).
        batch: samples per batch.
        hidden: ALIF neurons per layer.
        layers: number of ALIF layers.
        recurrent: recurrent (latency :math:`T_R`) or feedforward layers.
        n_in: input channels (Poisson spike trains, or injected current for ``fit_cell``).
        dt_ms: time step in ms (ARP in ms = ``arp_steps * dt_ms``).
        task: ``"spike_count"`` (paper's synthetic task) or ``"fit_cell"`` (see :data:`TASKS`).
        max_rate_hz: Poisson rates are uniform in ``[0, max_rate_hz]`` per sample.
        drive: mean feedforward current in threshold units (see :mod:`cellfit.bench.workloads`).
        tau_mem_ms, tau_adapt_ms: initial time constants of every neuron (ms).
    """

    T: int
    arp_steps: int
    batch: int
    hidden: int = 128
    layers: int = 1
    recurrent: bool = True
    n_in: int = 1000
    dt_ms: float = 0.1
    task: str = "spike_count"
    max_rate_hz: float = 200.0
    drive: float = 1.5
    tau_mem_ms: float = 20.0
    tau_adapt_ms: float = 100.0

    def __post_init__(self) -> None:
        for name in ("T", "arp_steps", "batch", "hidden", "layers", "n_in"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.arp_steps > self.T:
            raise ValueError(
                f"ARP of {self.arp_steps} steps is longer than the simulation (T = {self.T} steps); "
                "choose arp_steps <= T"
            )
        if not (self.dt_ms > 0 and math.isfinite(self.dt_ms)):
            raise ValueError(f"dt_ms must be a positive number, got {self.dt_ms!r}")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {list(TASKS)}")
        if not (0 < self.max_rate_hz * self.dt_ms * 1e-3 <= 1):
            raise ValueError(
                f"max_rate_hz * dt must be a probability in (0, 1], got {self.max_rate_hz} Hz x {self.dt_ms} ms"
            )
        if not self.drive > 0:
            raise ValueError(f"drive must be > 0, got {self.drive!r}")

    @property
    def arp_ms(self) -> float:
        """Absolute refractory period in ms."""
        return self.arp_steps * self.dt_ms

    def label(self) -> str:
        """Short human-readable description, e.g. ``T=1024 ARP=40 B=64 H=128x1 rec``."""
        kind = "rec" if self.recurrent else "ff"
        extra = "" if self.task == "spike_count" else f" {self.task}"
        return f"T={self.T} ARP={self.arp_steps} B={self.batch} H={self.hidden}x{self.layers} {kind} in={self.n_in}{extra}"


# ---------------------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------------------

PAPER_LENGTHS = (512, 1024, 2048)
PAPER_ARP_STEPS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
PAPER_BATCHES = (32, 64, 128)
PAPER_HIDDEN = (128, 256, 512)
PAPER_LAYERS = (1, 2, 3, 4, 5)


def _sim_lengths() -> list[BenchmarkCase]:
    # Figure 3a: 1 recurrent layer of 128, 1000 inputs; T x ARP x batch.
    return [BenchmarkCase(T=T, arp_steps=a, batch=b) for T in PAPER_LENGTHS for a in PAPER_ARP_STEPS for b in PAPER_BATCHES]


def _layers(recurrent=(True,)) -> list[BenchmarkCase]:
    # Figure 3b: ARP 40, T 1024, batch 64; hidden units x layers.
    return [
        BenchmarkCase(T=1024, arp_steps=40, batch=64, hidden=h, layers=n, recurrent=r)
        for r in recurrent
        for h in PAPER_HIDDEN
        for n in PAPER_LAYERS
    ]


def _cpu_small() -> list[BenchmarkCase]:
    # A sweep small enough for a 2-core CPU: ARP and T at batch 32, then size at ARP 40.
    ramp = [BenchmarkCase(T=T, arp_steps=a, batch=32) for T in (256, 512) for a in (10, 20, 40, 80)]
    size = [
        BenchmarkCase(T=512, arp_steps=40, batch=32, hidden=h, layers=n, recurrent=r)
        for r in (True, False)
        for h in (64, 128)
        for n in (1, 2)
    ]
    return ramp + [c for c in size if c not in ramp]


def _small() -> list[BenchmarkCase]:
    # The default: the paper's network (1000 inputs, 128 recurrent neurons) at batch 16 and
    # T 256/512, ARP 10/40 steps: the Figure 3 axes in miniature, minutes on 2 CPU cores.
    return [BenchmarkCase(T=T, arp_steps=a, batch=16) for T in (256, 512) for a in (10, 40)]


GRIDS: dict[str, Callable[[], list[BenchmarkCase]]] = {
    "small": _small,
    "sweep": lambda: override_cases(_sim_lengths() + _layers(recurrent=(True, False))),  # drops the shared case
    "sim-lengths": _sim_lengths,
    "layers": _layers,
    "paper-synthetic": lambda: [BenchmarkCase(T=T, arp_steps=40, batch=64) for T in (1024, 2048)],
    "fit-cell": lambda: [
        BenchmarkCase(T=10_000, arp_steps=20, batch=3, hidden=1, layers=1, recurrent=False, n_in=1, task="fit_cell")
    ],
    "cpu-small": _cpu_small,
    "quick": lambda: [BenchmarkCase(T=256, arp_steps=a, batch=4, hidden=16, layers=1, n_in=32) for a in (8, 16)],
}
"""Named grids. ``small`` (the command line's default): the paper's network (1 recurrent
layer of 128, 1000 inputs) at batch 16, T 256/512 x ARP 10/40 steps; ``sweep``: Figure 3a
(T 512/1024/2048 x ARP 10-100 x batch 32/64/128, one recurrent layer of 128) plus Figure 3b
(hidden 128/256/512 x layers 1-5 at ARP 40, T 1024, batch 64, recurrent and feedforward);
``sim-lengths`` / ``layers``: its two halves; ``paper-synthetic``: the synthetic training
step of the Block paper's reference measurements (1 recurrent layer of 128, 1000 inputs,
ARP 40, batch 64, T 1024 and 2048); ``fit-cell``: the single-cell fit step (3 sweeps x 1
input x 1 neuron x 10,000 steps, DT 0.1 ms, ARP 2 ms); ``cpu-small``: a reduced sweep for
CPUs; ``quick``: seconds on a CPU (tests and smoke runs)."""

GRID_DESCRIPTIONS = {
    "small": "small default grid (4 configurations of the paper's network at batch 16; the full Figure 3 grid: --full)",
    "sweep": "full paper Figure 3 grid (Figure 3a T x ARP x batch, Figure 3b hidden x layers)",
    "sim-lengths": "paper Figure 3a grid (T x ARP x batch)",
    "layers": "paper Figure 3b grid (hidden x layers, recurrent)",
    "paper-synthetic": "paper-shape synthetic step (1000 inputs, 128 recurrent neurons, ARP 40, batch 64)",
    "fit-cell": "single-cell fit step (3 sweeps x 10,000 steps, ARP 2 ms)",
    "cpu-small": "reduced Figure 3 sweep for CPUs",
    "quick": "quick smoke grid (seconds)",
}
"""One line per grid, printed in the command line's summary (which grid ran)."""

# DEFAULT_GRID: the grid ``python -m pipelines.benchmark`` runs without ``--grid``; FULL_GRID: the
# grid of ``--full``, the paper's Figure 3 (about 4.5 h on 2 CPU cores). Named in cellfit.names so
# that the command line knows them before importing torch.
def layer_outputs(layers: Iterable, x) -> list:
    """Every layer's output, each feeding the next: the forward pass of the benchmark networks
    (cellfit's and the peers'), which return all layers' spikes."""
    out = []
    for layer in layers:
        x = layer(x)
        out.append(x)
    return out


from cellfit.names import DEFAULT_GRID, FULL_GRID  # noqa: E402


def grid(name: str) -> tuple[BenchmarkCase, ...]:
    """The cases of a named grid (see :data:`GRIDS`)."""
    try:
        return tuple(GRIDS[name]())
    except KeyError:
        raise ValueError(f"unknown grid {name!r}; choose one of {sorted(GRIDS)}") from None


def override_cases(cases: Iterable[BenchmarkCase], **axes: Optional[Sequence]) -> tuple[BenchmarkCase, ...]:
    """Replace axes of a grid by the given values: ``override_cases(grid("sweep"), T=[512])``.

    Each keyword names a :class:`BenchmarkCase` field and gives the values it should take;
    every case is expanded over them and duplicates are dropped (order kept). ``None``
    leaves that axis as it is. Raises ``ValueError`` (e.g. ARP longer than T).
    """
    out = list(cases)
    names = {f.name for f in dataclasses.fields(BenchmarkCase)}
    for key, values in axes.items():
        if values is None:
            continue
        if key not in names:
            raise ValueError(f"unknown case field {key!r}; choose from {sorted(names)}")
        values = list(values)
        if not values:
            raise ValueError(f"no values given for {key}")
        out = [dataclasses.replace(c, **{key: v}) for c in out for v in values]
    seen, unique = set(), []
    for c in out:
        if c not in seen:
            seen.add(c)
            unique.append(c)
    return tuple(unique)


def case_seed(seed: int, case: BenchmarkCase) -> int:
    """A 63-bit seed from the base seed and the case's fields (independent of grid order)."""
    key = zlib.crc32(repr(dataclasses.astuple(case)).encode())
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, key]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def case_cost(case: BenchmarkCase) -> float:
    """A rough relative cost of timing ``case`` (arbitrary units), for the progress bar's ETA.

    Proportional to the numbers touched per run: the input projection
    (batch x T x n_in x hidden), the recurrent products and the element-wise passes
    (batch x T x hidden per layer, weighted by 64 for the step-by-step engine's per-step work).
    """
    per_step = case.n_in * case.hidden + (case.layers - 1) * case.hidden**2
    per_step += case.layers * case.hidden * (64 + (case.hidden if case.recurrent else 0))
    return case.batch * case.T * per_step * 1e-9
