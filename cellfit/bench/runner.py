"""Run a benchmark: time every case of a grid with every system, interleaved; one table row per (case, system).

For each case (:mod:`cellfit.bench.cases`): build the input and the network from the seed
(:func:`cellfit.bench.workloads.build_case`); check in float64 that the Block and standard
engines give identical spikes in every layer (untimed); build the requested peer libraries'
versions of the network (:mod:`cellfit.bench.peers`); then time inference (``fwd``) and the
training step (``fwd_bwd``) of every system, after warm-up runs, round-robin
(:func:`cellfit.bench.timing.measure`). The timed runs are float32 by default; the blocks
and standard outputs of the timed inference are compared and their differing spike entries
counted (``float32_spike_mismatches``: reported, not asserted, since float32 rounding can
move a spike that sits on the threshold).

Example (a notebook)::

    from cellfit.bench import BenchmarkConfig, grid, run_benchmark
    df = run_benchmark(BenchmarkConfig(cases=grid("paper-synthetic"), device="auto", repeats=5))
    df[["T", "engine", "fwd_bwd_median_s", "speedup_fwd_bwd"]]
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd
import torch
from tqdm.auto import tqdm

import cellfit
from cellfit.bench import peers as peer_libs
from cellfit.bench.cases import BenchmarkCase, case_cost
from cellfit.bench.report import CSV_COLUMNS
from cellfit.bench.timing import device_name, load_average, measure, summarise_times, torch_threads
from cellfit.bench.workloads import (
    REFERENCE_ENGINE,
    build_case,
    check_engines_identical,
    inference_step,
    spike_differences,
    training_step,
)
from cellfit.device import resolve_device
from cellfit.functional.alif import BLOCK_KERNELS, ENGINES, resolve_block_kernel, use_block_kernel

__all__ = ["BenchmarkConfig", "run_benchmark", "DTYPES"]

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


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
        repeats: timed runs per (case, system, measurement), at most.
        warmup: untimed runs before timing (per case, system and measurement).
        time_budget_s: optional cap on the summed time of the timed runs of one (case,
            system, measurement): stop repeating once it is spent (at least one run is timed).
        max_run_s: optional: if a warm-up run takes longer than this, that measurement is
            skipped (NaN times, explained in the ``note`` column) instead of repeated.
        grid_name: recorded in the ``grid`` column.
        progress: show a tqdm progress bar with an ETA (on stderr).
        threads: optional number of CPU threads for torch during the run (restored after);
            None keeps torch's setting. One thread can be steadier on a shared machine.
        block_kernel: implementation of the Block engine's loop: ``"auto"`` (the fused
            Triton kernel on CUDA, the PyTorch loop on a CPU), ``"torch"`` or ``"triton"``
            (see :func:`cellfit.functional.alif.resolve_block_kernel`). Recorded per row.
        peers: other libraries to time on the same network and input
            (:data:`cellfit.bench.peers.PEERS`; synthetic-network task only). A peer that is
            not installed is skipped with a logged warning.
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
    peers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cases", tuple(self.cases))
        object.__setattr__(self, "engines", tuple(self.engines))
        object.__setattr__(self, "peers", tuple(self.peers))
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
        unknown = [p for p in self.peers if p not in peer_libs.PEERS]
        if unknown:
            raise ValueError(f"unknown peer(s) {unknown}; choose from {sorted(peer_libs.PEERS)}")
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


def _model_label(case: BenchmarkCase) -> str:
    return f"ALIF: adaptive threshold, ARP {case.arp_steps} steps, recurrent latency {case.arp_steps} steps"


def _run_case(
    case: BenchmarkCase,
    index: int,
    cfg: BenchmarkConfig,
    device: torch.device,
    dtype: torch.dtype,
    peers: tuple[str, ...],
    on_run: Optional[Callable[[], None]] = None,
) -> list[dict]:
    load = load_average()
    net, x, target = build_case(case, cfg.seed, device, dtype)
    check_engines_identical(net, x, case.label())

    systems: dict[str, dict] = {}
    for engine in cfg.engines:
        m = copy.deepcopy(net)
        m.engine = engine
        opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-5) if case.task == "fit_cell" else None
        systems[engine] = dict(model=m, x=x, opt=opt, version=f"cellfit {cellfit.__version__}",
                               label=_model_label(case), time_major=False)
    for name in peers if case.task == "spike_count" else ():
        m = peer_libs.build_peer(name, net, case)
        systems[name] = dict(model=m, x=m.prepare(x), opt=None, version=peer_libs.peer_version(name),
                             label=peer_libs.PEERS[name].model, time_major=True)

    last_out: dict[str, list] = {}
    infer = {s: inference_step(v["model"], v["x"], last_out, s) for s, v in systems.items()}
    train = {s: training_step(v["model"], v["x"], case, target, v["opt"]) for s, v in systems.items()}
    timing = dict(repeats=cfg.repeats, warmup=cfg.warmup, time_budget_s=cfg.time_budget_s, max_run_s=cfg.max_run_s,
                  on_run=on_run)
    fwd = measure(infer, device, "fwd", **timing)
    bwd = measure(train, device, "fwd_bwd", **timing)

    mismatches = math.nan
    if "blocks" in last_out and REFERENCE_ENGINE in last_out:
        mismatches = sum(spike_differences(last_out["blocks"], last_out[REFERENCE_ENGINE]))

    common = dict(
        grid=cfg.grid_name, case=index, T=case.T, arp_steps=case.arp_steps, arp_ms=round(case.arp_ms, 9),
        dt_ms=case.dt_ms, batch=case.batch, n_in=case.n_in, hidden=case.hidden, layers=case.layers,
        recurrent=case.recurrent, task=case.task,
        train_step="fwd+bwd+adam" if case.task == "fit_cell" else "fwd+bwd",
        dtype=cfg.dtype, seed=cfg.seed, device=str(device), device_name=device_name(device),
        torch_version=torch.__version__, cellfit_version=cellfit.__version__, repeats=cfg.repeats,
        warmup=cfg.warmup, float64_identical=True, load_avg_1m=load,
    )  # fmt: skip
    rows = []
    for name, sysinfo in systems.items():
        (tf, note_f), (tb, note_b) = fwd[name], bwd[name]
        fm, fi = summarise_times(tf)
        bm, bi = summarise_times(tb)
        out = last_out.get(name)
        spikes = float(out[-1].sum()) / case.batch if out is not None else math.nan
        rows.append(
            dict(
                common, engine=name, n_fwd=len(tf), fwd_median_s=fm, fwd_iqr_s=fi, n_fwd_bwd=len(tb),
                fwd_bwd_median_s=bm, fwd_bwd_iqr_s=bi, spikes_per_sample=spikes,
                float32_spike_mismatches=mismatches if name in ENGINES else math.nan,
                note="; ".join(n for n in (note_f, note_b) if n),
                system="cellfit" if name in ENGINES else name, system_version=sysinfo["version"],
                model=sysinfo["label"], spike_rate_hz=spikes / case.hidden / (case.T * case.dt_ms * 1e-3),
            )  # fmt: skip
        )
    ref = next((r for r in rows if r["engine"] == REFERENCE_ENGINE), None)
    for r in rows:
        for m in ("fwd", "fwd_bwd"):
            r[f"speedup_{m}"] = ref[f"{m}_median_s"] / r[f"{m}_median_s"] if ref is not None else math.nan
    return rows



def _runs_per_case(cfg: BenchmarkConfig, n_systems: int) -> int:
    return 2 * n_systems * (cfg.warmup + cfg.repeats)


def run_benchmark(
    config: BenchmarkConfig, on_case: Optional[Callable[[pd.DataFrame], None]] = None
) -> pd.DataFrame:
    """Time every case of ``config`` with every engine (and peer); return one row per (case, system).

    For each case: build the input and the network from ``config.seed``; check in float64
    that ``blocks`` and ``standard`` give identical spikes in every layer (untimed); then
    time inference (``fwd``) and the training step (``fwd_bwd``) of each system, in
    ``config.dtype``, after ``config.warmup`` untimed runs, interleaved (module docstring).
    The progress bar (``config.progress``) advances by each case's estimated cost
    (:func:`cellfit.bench.cases.case_cost`), so its remaining time is an ETA for the grid.

    Args:
        config: what to run.
        on_case: optional callback given the table so far after each case (e.g. to write
            partial results).

    Returns:
        A DataFrame with columns :data:`cellfit.bench.report.CSV_COLUMNS`. ``speedup_*`` =
        standard median / this system's median (NaN without a standard run);
        ``spikes_per_sample`` = last-layer spikes per sample in this system's timed inference run.

    Raises:
        SpikeMismatchError: the engines disagree in float64 (the benchmark stops there).
        ValueError: bad device (e.g. CUDA requested without a GPU).
    """
    device = resolve_device(config.device)
    dtype = DTYPES[config.dtype]
    kernel = resolve_block_kernel(config.block_kernel, device)  # fails here if it cannot run
    peers, skipped = peer_libs.resolve_peers(config.peers)
    for line in skipped:
        logger.warning(line)
    rows: list[dict] = []

    def systems(case: BenchmarkCase) -> int:
        return len(config.engines) + (len(peers) if case.task == "spike_count" else 0)

    costs = [case_cost(c) * systems(c) for c in config.cases]
    bar = tqdm(total=sum(costs), desc="benchmark", disable=not config.progress, dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}] {postfix}")
    try:
        with torch_threads(config.threads), use_block_kernel(kernel):
            done = 0.0
            for index, case in enumerate(config.cases):
                bar.set_postfix_str(f"{index + 1}/{len(config.cases)} {case.label()}", refresh=True)
                logger.info("benchmark case %d/%d: %s", index + 1, len(config.cases), case.label())
                case_peers = peers if case.task == "spike_count" else ()
                step = costs[index] / _runs_per_case(config, systems(case))
                new = _run_case(case, index, config, device, dtype, case_peers, on_run=lambda: bar.update(step))
                for row in new:
                    row["block_kernel"] = kernel if row["engine"] == "blocks" else ""
                rows.extend(new)
                done += costs[index]
                bar.n = done  # runs cut short by a time budget would leave the bar behind
                bar.refresh()
                if on_case is not None:
                    on_case(pd.DataFrame(rows, columns=list(CSV_COLUMNS)))
    finally:
        bar.close()
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))
