r"""Speed benchmarks: Block vs standard ALIF engines, forward and training step, with an exactness check.

The protocol follows the Block paper's section 4.1 (Figure 3) and MISSION.md sections 3-4:

- **Input.** Synthetic Poisson spike trains (:func:`poisson_input`): each sample draws one
  rate uniformly in 0-200 Hz and every input channel spikes independently at each step with
  probability :math:`p = \text{rate}\cdot\Delta t`. The time step is 0.1 ms so that the ARP
  grid is in steps (10 steps = 1 ms). The single-cell fit shape uses an injected noise
  current instead (:func:`noise_current`).
- **Network** (:class:`SyntheticNetwork`): ``layers`` ALIF layers of ``hidden`` neurons,
  feedforward or recurrent, ``n_in`` inputs. The task is the paper's: the loss is the total
  number of output spikes of the last layer. The fit-cell shape (3 sweeps x 1 input x 1
  neuron x 10,000 steps) uses the van Rossum distance to a target train and an Adam step.
- **What is timed** (per configuration and engine, wall clock, device-synchronised):
  ``fwd`` = inference, the network's forward pass under ``torch.no_grad()``;
  ``fwd_bwd`` = one training step: forward, loss, ``backward()`` (and the Adam step for the
  fit-cell task). Warm-up runs are not timed; medians and inter-quartile ranges are over
  the timed repeats, which run interleaved across engines (round robin) so that both
  engines see the same machine load.
- **Exactness.** Before timing, every configuration is simulated in float64 by both engines
  on the same input with the same parameters (untimed); any differing spike in any layer
  raises :class:`SpikeMismatchError`. The timed runs (float32 by default) also report how
  many spikes the two engines' outputs differ by (``float32_spike_mismatches``), which is
  expected to be 0 or near 0 (float32 rounding can move a spike that sits on the
  threshold) and is reported, not asserted.

Example (a notebook)::

    from cellfit.bench import BenchmarkConfig, grid, run_benchmark, plot_speedups
    cfg = BenchmarkConfig(cases=grid("paper-synthetic"), device="auto", repeats=5)
    df = run_benchmark(cfg)                 # one row per configuration and engine
    df[["T", "engine", "fwd_bwd_median_s", "speedup_fwd_bwd"]]
    plot_speedups(df, "runs/benchmark")     # speedup_vs_arp.png, speedup_vs_size.png

Synthetic weights. With the default initialisation (zero-mean weights of scale
:math:`1/\sqrt{n_\text{in}}`) and sparse Poisson input, neurons at DT 0.1 ms almost never
fire, which would make the exactness check vacuous. Each layer's feedforward weights are
therefore drawn uniformly in :math:`[0, 2\bar w]` with :math:`\bar w = \text{drive} /
(n_\text{in}\,\bar r)`, where :math:`\bar r` is the mean spike probability per step of that
layer's actual input, so that the mean input current is ``drive`` times the base threshold
(default 1.5) and every layer fires at a moderate rate; recurrent weights keep the default
initialisation. Timing does not depend on the spike count of the Block engine's dense
kernels, only the exactness check does.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import platform
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

import cellfit
from cellfit.device import resolve_device, synchronize
from cellfit.functional.alif import BLOCK_KERNELS, ENGINES, resolve_block_kernel, use_block_kernel
from cellfit.fit.metrics import van_rossum_distance
from cellfit.functional.filters import exp_filter
from cellfit.modules import ALIF, EngineSwitch

__all__ = [
    "BenchmarkCase",
    "BenchmarkConfig",
    "SpikeMismatchError",
    "SyntheticNetwork",
    "GRIDS",
    "TASKS",
    "CSV_COLUMNS",
    "grid",
    "override_cases",
    "poisson_input",
    "noise_current",
    "time_call",
    "summarise_times",
    "check_engines_identical",
    "run_benchmark",
    "speedup_table",
    "plot_speedups",
    "summary_table",
    "write_csv_atomic",
    "device_name",
]

logger = logging.getLogger(__name__)

TASKS = ("spike_count", "fit_cell")
"""``spike_count``: Poisson input, loss = total last-layer spikes (paper section 4.1).
``fit_cell``: noise current input, van Rossum loss to a target train, plus an Adam step."""

REFERENCE_ENGINE = "standard"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class SpikeMismatchError(RuntimeError):
    """The Block and standard engines produced different spikes in float64 for the same input and parameters."""


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------


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
        drive: mean feedforward current in threshold units (see the module docstring).
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


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything :func:`run_benchmark` needs (immutable; build a new one to change it).

    Attributes:
        cases: the configurations to time (e.g. ``grid("sweep")``).
        engines: engines to time; ``"standard"`` is the baseline of the speedup columns.
            The float64 exactness check always compares ``blocks`` with ``standard``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see :func:`cellfit.resolve_device`).
        dtype: ``"float32"`` (default) or ``"float64"`` for the timed runs.
        seed: base seed; each case's input and parameters come from (seed, case fields), so a
            case gets the same data in every grid.
        repeats: timed runs per (case, engine, measurement), at most.
        warmup: untimed runs before timing (per case, engine and measurement).
        time_budget_s: optional cap on the summed time of the timed runs of one (case,
            engine, measurement): stop repeating once it is spent (at least one run is timed).
        max_run_s: optional: if a warm-up run takes longer than this, that measurement is
            skipped (NaN times, explained in the ``note`` column) instead of repeated.
        grid_name: recorded in the ``grid`` column.
        progress: show a tqdm progress bar over cases (on stderr).
        threads: optional number of CPU threads for torch during the run (restored after);
            None keeps torch's setting. One thread can be steadier on a shared machine.
        block_kernel: implementation of the Block engine's loop: ``"auto"`` (the fused
            Triton kernel on CUDA, the PyTorch loop on a CPU), ``"torch"`` or ``"triton"``
            (see :func:`cellfit.functional.alif.resolve_block_kernel`). Recorded per row.
    """

    cases: tuple[BenchmarkCase, ...]
    engines: tuple[str, ...] = ("blocks", "standard")
    device: str = "auto"
    dtype: str = "float32"
    seed: int = 0
    repeats: int = 10
    warmup: int = 2
    time_budget_s: Optional[float] = None
    max_run_s: Optional[float] = None
    grid_name: str = "custom"
    progress: bool = True
    threads: Optional[int] = None
    block_kernel: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "cases", tuple(self.cases))
        object.__setattr__(self, "engines", tuple(self.engines))
        if not self.cases:
            raise ValueError("no benchmark cases given")
        for c in self.cases:
            if not isinstance(c, BenchmarkCase):
                raise ValueError(f"cases must be BenchmarkCase objects, got {type(c).__name__}")
        if not self.engines:
            raise ValueError("no engines given")
        unknown = [e for e in self.engines if e not in ENGINES]
        if unknown:
            raise ValueError(f"unknown engine(s) {unknown}; choose from {sorted(ENGINES)}")
        if len(set(self.engines)) != len(self.engines):
            raise ValueError(f"engines listed twice: {list(self.engines)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.block_kernel not in BLOCK_KERNELS:
            raise ValueError(f"block_kernel must be one of {list(BLOCK_KERNELS)}, got {self.block_kernel!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        for name in ("time_budget_s", "max_run_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value!r}")


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


GRIDS: dict[str, Callable[[], list[BenchmarkCase]]] = {
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
"""Named grids. ``sweep``: Figure 3a (T 512/1024/2048 x ARP 10-100 x batch 32/64/128, one
recurrent layer of 128) plus Figure 3b (hidden 128/256/512 x layers 1-5 at ARP 40, T 1024,
batch 64, recurrent and feedforward); ``sim-lengths`` / ``layers``: its two halves;
``paper-synthetic``: MISSION.md section 3 (1 recurrent layer of 128, 1000 inputs, ARP 40,
batch 64, T 1024 and 2048); ``fit-cell``: the single-cell fit step (3 sweeps x 1 input x 1
neuron x 10,000 steps, DT 0.1 ms, ARP 2 ms); ``cpu-small``: a reduced sweep for CPUs;
``quick``: seconds on a CPU (tests and smoke runs)."""


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


# ---------------------------------------------------------------------------------------
# Inputs and network
# ---------------------------------------------------------------------------------------


def case_seed(seed: int, case: BenchmarkCase) -> int:
    """A 63-bit seed from the base seed and the case's fields (independent of grid order)."""
    key = zlib.crc32(repr(dataclasses.astuple(case)).encode())
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, key]).generate_state(2, np.uint64)[0] >> np.uint64(1))


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
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


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


# ---------------------------------------------------------------------------------------
# Exactness
# ---------------------------------------------------------------------------------------


def _differences(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> list[int]:
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


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, synchronising the device before and after (CUDA only)."""
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def summarise_times(times: Sequence[float]) -> tuple[float, float]:
    """(median, inter-quartile range) in seconds; NaN for no times, IQR NaN for a single time."""
    if len(times) == 0:
        return math.nan, math.nan
    arr = np.asarray(times, dtype=float)
    if len(arr) == 1:
        return float(arr[0]), math.nan
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return float(med), float(q3 - q1)


def _measure(
    runners: dict[str, Callable[[], object]], cfg: BenchmarkConfig, device: torch.device, what: str
) -> dict[str, tuple[list[float], str]]:
    """Warm up each engine, then time round-robin; returns {engine: (times, note)}."""
    times: dict[str, list[float]] = {e: [] for e in runners}
    notes: dict[str, str] = {e: "" for e in runners}
    active = list(runners)
    for engine, fn in runners.items():
        for _ in range(cfg.warmup):
            t = time_call(fn, device)
            if cfg.max_run_s is not None and t > cfg.max_run_s:
                notes[engine] = f"{what} skipped: a warm-up run took {t:.1f} s > max_run_s {cfg.max_run_s:g} s"
                active.remove(engine)
                break
            if cfg.time_budget_s is not None and t > cfg.time_budget_s:
                break  # one warm-up run is enough for a run this slow
    for _ in range(cfg.repeats):
        for engine in list(active):
            t = time_call(runners[engine], device)
            times[engine].append(t)
            if cfg.max_run_s is not None and t > cfg.max_run_s:
                active.remove(engine)
                notes[engine] = f"{what}: stopped after one run of {t:.1f} s > max_run_s {cfg.max_run_s:g} s"
            elif cfg.time_budget_s is not None and sum(times[engine]) >= cfg.time_budget_s:
                active.remove(engine)
                if len(times[engine]) < cfg.repeats:
                    notes[engine] = (
                        f"{what}: {len(times[engine])} of {cfg.repeats} repeats (time budget {cfg.time_budget_s:g} s)"
                    )
    return {e: (times[e], notes[e]) for e in runners}


def device_name(device: torch.device, threads: Optional[int] = None) -> str:
    """GPU name, or the CPU model and the number of torch threads (``threads``, default: torch's current)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model} ({threads or torch.get_num_threads()} threads)"


CSV_COLUMNS = (
    "grid", "case", "engine", "T", "arp_steps", "arp_ms", "dt_ms", "batch", "n_in", "hidden", "layers",
    "recurrent", "task", "train_step", "dtype", "seed", "device", "device_name", "block_kernel", "torch_version",
    "cellfit_version", "repeats", "warmup", "n_fwd", "fwd_median_s", "fwd_iqr_s", "n_fwd_bwd",
    "fwd_bwd_median_s", "fwd_bwd_iqr_s", "speedup_fwd", "speedup_fwd_bwd", "spikes_per_sample",
    "float64_identical", "float32_spike_mismatches", "load_avg_1m", "note",
)  # fmt: skip
"""Columns of the result table, one row per (case, engine). Times in seconds."""


def _run_case(case: BenchmarkCase, index: int, cfg: BenchmarkConfig, device: torch.device, dtype: torch.dtype) -> list[dict]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    net, x, target = build_case(case, cfg.seed, device, dtype)
    check_engines_identical(net, x, case.label())

    models, optims, last_out = {}, {}, {}
    for engine in cfg.engines:
        m = copy.deepcopy(net)
        m.engine = engine
        models[engine] = m
        if case.task == "fit_cell":
            optims[engine] = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-5)

    def inference(engine):
        def run():
            with torch.no_grad():
                last_out[engine] = models[engine](x)

        return run

    def train_step(engine):
        model, opt = models[engine], optims.get(engine)

        def run():
            model.zero_grad(set_to_none=True)
            out = model(x)[-1]
            loss = out.sum() if target is None else van_rossum_distance(out, target, 10.0, case.dt_ms, reduction="sum")
            loss.backward()
            if opt is not None:
                opt.step()

        return run

    fwd = _measure({e: inference(e) for e in cfg.engines}, cfg, device, "fwd")
    bwd = _measure({e: train_step(e) for e in cfg.engines}, cfg, device, "fwd_bwd")

    mismatches = math.nan
    if "blocks" in last_out and REFERENCE_ENGINE in last_out:
        mismatches = sum(_differences(last_out["blocks"], last_out[REFERENCE_ENGINE]))

    common = dict(
        grid=cfg.grid_name, case=index, T=case.T, arp_steps=case.arp_steps, arp_ms=round(case.arp_ms, 9),
        dt_ms=case.dt_ms, batch=case.batch, n_in=case.n_in, hidden=case.hidden, layers=case.layers,
        recurrent=case.recurrent, task=case.task,
        train_step="fwd+bwd+adam" if case.task == "fit_cell" else "fwd+bwd",
        dtype=cfg.dtype, seed=cfg.seed, device=str(device), device_name=device_name(device),
        torch_version=torch.__version__, cellfit_version=cellfit.__version__, repeats=cfg.repeats,
        warmup=cfg.warmup, float64_identical=True, float32_spike_mismatches=mismatches, load_avg_1m=load,
    )  # fmt: skip
    rows = []
    for engine in cfg.engines:
        (tf, note_f), (tb, note_b) = fwd[engine], bwd[engine]
        fm, fi = summarise_times(tf)
        bm, bi = summarise_times(tb)
        out = last_out.get(engine)
        spikes = float(out[-1].sum()) / case.batch if out is not None else math.nan
        rows.append(
            dict(
                common, engine=engine, n_fwd=len(tf), fwd_median_s=fm, fwd_iqr_s=fi, n_fwd_bwd=len(tb),
                fwd_bwd_median_s=bm, fwd_bwd_iqr_s=bi, spikes_per_sample=spikes,
                note="; ".join(n for n in (note_f, note_b) if n),
            )  # fmt: skip
        )
    ref = next((r for r in rows if r["engine"] == REFERENCE_ENGINE), None)
    for r in rows:
        for m in ("fwd", "fwd_bwd"):
            r[f"speedup_{m}"] = ref[f"{m}_median_s"] / r[f"{m}_median_s"] if ref is not None else math.nan
    return rows


def run_benchmark(
    config: BenchmarkConfig, on_case: Optional[Callable[[pd.DataFrame], None]] = None
) -> pd.DataFrame:
    """Time every case of ``config`` with every engine; return one row per (case, engine).

    For each case: build the input and the network from ``config.seed``; check in float64
    that ``blocks`` and ``standard`` give identical spikes in every layer (untimed); then
    time inference (``fwd``) and the training step (``fwd_bwd``) of each engine, in
    ``config.dtype``, after ``config.warmup`` untimed runs (see the module docstring).

    Args:
        config: what to run.
        on_case: optional callback given the table so far after each case (e.g. to write
            partial results).

    Returns:
        A DataFrame with columns :data:`CSV_COLUMNS`. ``speedup_*`` = standard median /
        this engine's median (NaN without a standard run); ``spikes_per_sample`` = last-layer
        spikes per sample in this engine's timed inference run.

    Raises:
        SpikeMismatchError: the engines disagree in float64 (the benchmark stops there).
        ValueError: bad device (e.g. CUDA requested without a GPU).
    """
    from tqdm.auto import tqdm

    device = resolve_device(config.device)
    dtype = DTYPES[config.dtype]
    kernel = resolve_block_kernel(config.block_kernel, device)  # fails here if it cannot run
    rows: list[dict] = []
    saved_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        bar = tqdm(config.cases, desc="benchmark", unit="config", disable=not config.progress, dynamic_ncols=True)
        with use_block_kernel(kernel):
            for index, case in enumerate(bar):
                bar.set_postfix_str(case.label(), refresh=True)
                logger.info("benchmark case %d/%d: %s", index + 1, len(config.cases), case.label())
                rows.extend(_run_case(case, index, config, device, dtype))
                for row in rows[-len(config.engines):]:
                    row["block_kernel"] = kernel if row["engine"] == "blocks" else ""
                if on_case is not None:
                    on_case(pd.DataFrame(rows, columns=list(CSV_COLUMNS)))
    finally:
        torch.set_num_threads(saved_threads)
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


# ---------------------------------------------------------------------------------------
# Output: CSV, plots, table
# ---------------------------------------------------------------------------------------


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_csv_atomic(df: pd.DataFrame, path: os.PathLike | str) -> Path:
    """Write ``df`` as CSV via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


CASE_KEYS = ("T", "arp_steps", "batch", "n_in", "hidden", "layers", "recurrent", "task")


def speedup_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per case: the case fields and the Block engine's ``speedup_fwd`` / ``speedup_fwd_bwd``."""
    blocks = df[df["engine"] == "blocks"]
    return blocks[list(CASE_KEYS) + ["speedup_fwd", "speedup_fwd_bwd"]].reset_index(drop=True)


def _save_figure(fig, path: Path) -> Path:
    tmp = _atomic_target(path)
    try:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def plot_speedups(df: pd.DataFrame, out_dir: os.PathLike | str) -> list[Path]:
    """Speedup plots in the style of the paper's Figure 3; returns the written PNG paths.

    - ``speedup_vs_arp.png``: speedup (standard / blocks median time) against ARP steps,
      one panel per simulation length T, one line per batch size (and network size),
      for the training step (top) and inference (bottom);
    - ``speedup_vs_size.png`` (only when hidden units or layers vary): speedup against
      hidden units, one line per number of layers (and connectivity), at fixed T/ARP/batch.

    Nothing is written if the table has no pair of blocks and standard timings.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sp = speedup_table(df).dropna(subset=["speedup_fwd", "speedup_fwd_bwd"], how="all")
    if sp.empty:
        return []
    out_dir = Path(out_dir)
    written = []
    measures = (("speedup_fwd_bwd", "training step (fwd+bwd)"), ("speedup_fwd", "inference (fwd)"))

    # Speedup vs ARP: lines over ARP for each (batch, size, connectivity); prefer lines with >= 2 ARPs.
    line_keys = ["batch", "n_in", "hidden", "layers", "recurrent", "task"]
    groups = sp.groupby(["T"] + line_keys, sort=True)
    multi = [k for k, g in groups if g["arp_steps"].nunique() >= 2]
    keep = set(multi) if multi else {k for k, _ in groups}
    lengths = sorted(sp["T"].unique())
    fig, axes = plt.subplots(
        2, len(lengths), figsize=(max(5.5, 4.2 * len(lengths)), 6.5), squeeze=False, layout="constrained"
    )
    for col, T in enumerate(lengths):
        for row, (measure, title) in enumerate(measures):
            ax = axes[row][col]
            for key, g in groups:
                if key[0] != T or key not in keep:
                    continue
                g = g.sort_values("arp_steps")
                _, batch, n_in, hidden, layers, rec, task = key
                label = f"batch {batch}, {hidden}x{layers} {'rec' if rec else 'ff'}"
                ax.plot(g["arp_steps"], g[measure], marker="o", label=label)
            ax.axhline(1.0, color="grey", lw=0.8, ls=":")
            ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1.2))
            ax.set_title(f"T = {T}: {title}", fontsize=9)
            ax.set_xlabel("ARP (time steps)")
            if col == 0:
                ax.set_ylabel("speedup (standard / blocks)")
            ax.grid(alpha=0.3)
            if row == 0 and col == len(lengths) - 1:
                ax.legend(fontsize=7)
    devices = ", ".join(sorted(df["device_name"].unique()))
    fig.suptitle(f"Block vs standard ALIF speedup ({devices})", fontsize=10)
    written.append(_save_figure(fig, out_dir / "speedup_vs_arp.png"))
    plt.close(fig)

    # Speedup vs hidden units / layers at fixed T, ARP, batch.
    fixed = ["T", "arp_steps", "batch", "n_in", "task"]
    size_groups = [(k, g) for k, g in sp.groupby(fixed) if len(g[["hidden", "layers"]].drop_duplicates()) >= 2]
    if size_groups:
        fig, axes = plt.subplots(
            2, len(size_groups), figsize=(max(5.5, 4.6 * len(size_groups)), 6.5), squeeze=False, layout="constrained"
        )
        for col, (key, g) in enumerate(size_groups):
            T, arp, batch = key[0], key[1], key[2]
            for row, (measure, title) in enumerate(measures):
                ax = axes[row][col]
                for (layers, rec), gl in g.groupby(["layers", "recurrent"]):
                    gl = gl.sort_values("hidden")
                    ax.plot(gl["hidden"], gl[measure], marker="o", label=f"{layers} layer(s) {'rec' if rec else 'ff'}")
                ax.axhline(1.0, color="grey", lw=0.8, ls=":")
                ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1.2))
                ax.set_xscale("log", base=2)
                ax.set_xticks(sorted(g["hidden"].unique()))
                ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
                ax.set_title(f"T={T}, ARP={arp}, batch {batch}: {title}", fontsize=9)
                ax.set_xlabel("hidden units per layer")
                if col == 0:
                    ax.set_ylabel("speedup (standard / blocks)")
                ax.grid(alpha=0.3)
                if row == 0:
                    ax.legend(fontsize=7)
        fig.suptitle(f"Speedup over network size ({devices})", fontsize=10)
        written.append(_save_figure(fig, out_dir / "speedup_vs_size.png"))
        plt.close(fig)
    return written


def summary_table(df: pd.DataFrame) -> str:
    """A short fixed-width table: per case and engine, median times (s) and speedups."""
    cols = ["T", "arp_steps", "batch", "hidden", "layers", "recurrent", "engine", "fwd_median_s", "fwd_bwd_median_s",
            "speedup_fwd", "speedup_fwd_bwd", "spikes_per_sample", "float32_spike_mismatches"]  # fmt: skip
    view = df[cols].rename(
        columns={
            "arp_steps": "ARP",
            "recurrent": "rec",
            "fwd_median_s": "fwd_s",
            "fwd_bwd_median_s": "fwd_bwd_s",
            "speedup_fwd": "x_fwd",
            "speedup_fwd_bwd": "x_fwd_bwd",
            "spikes_per_sample": "spk/sample",
            "float32_spike_mismatches": "f32_diff",
        }
    )
    return view.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
