"""Workload: a whole panel of synthetic cells fitted with multi-cell batching, K cells per batch.

Builds (or reuses) a synthetic panel in the Allen format (half ALIF, half AdEx cells), then,
for every K in ``cells_per_batch``, fits the whole panel in batches of K cells on one device
(:func:`cellfit.fit.fit_recordings`, the same call a ``cellfit.batch`` task makes) and
reports per K: data loading time (first load reads the NWB files and runs AllenSDK's spike
detection; later loads hit the processed-array cache), fit time for the panel, seconds per
cell, epochs, peak GPU memory and the median held-out ETV. Output files of the cells
(result.json, figures) are not written: this measures fitting.

``in_memory`` builds the same recordings without files
(:func:`cellfit.data.synthetic.synthetic_recordings`: no NWB, no AllenSDK spike detection),
for a machine without the data stack; loading is then not part of the measurement
(``first_load_s`` / ``cached_load_s`` are NaN and ``generate_s`` is the in-memory build).

The command line is ``benchmarks/panel_benchmark.py``.
"""

from __future__ import annotations

import math
import pathlib
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch

from cellfit.data import load_cell
from cellfit.data.synthetic import alif_panel, mismatch_panel, synthetic_recordings, write_synthetic_cache
from cellfit.device import resolve_device, synchronize
from cellfit.fit import FitConfig, fit_recordings
from cellfit.functional.alif import resolve_block_kernel

__all__ = ["PanelBenchmark", "prepare_panel", "run_panel_benchmark"]


@dataclass(frozen=True)
class PanelBenchmark:
    """What :func:`run_panel_benchmark` fits.

    Attributes:
        cells: panel size (half ALIF, half AdEx cells).
        cells_per_batch: the K values to time.
        dt_ms, arp_ms: time step and refractory period of the fits (ms).
        epochs: maximum epochs (paper protocol: 200).
        device: ``auto``, ``cpu`` or ``cuda``.
        cache_dir: the synthetic Allen cache (cells missing there are written).
        seed: seed of the panel and of the fits.
        in_memory: build the recordings without files (loading not timed).
    """

    cells: int = 146
    cells_per_batch: tuple[int, ...] = (146,)
    dt_ms: float = 0.1
    arp_ms: float = 2.0
    epochs: int = 200
    device: str = "auto"
    cache_dir: str = "runs/panel_benchmark/cache"
    seed: int = 0
    in_memory: bool = False


def prepare_panel(cfg: PanelBenchmark) -> tuple[list, dict, list[int]]:
    """Build or load the panel's recordings; returns ``(recordings, load times, specimen ids)``.

    The load times are ``generate_s``, ``first_load_s`` and ``cached_load_s`` in seconds.
    """
    cache = pathlib.Path(cfg.cache_dir)
    n_alif = (cfg.cells + 1) // 2
    cells = alif_panel(n_alif, seed=cfg.seed) + mismatch_panel(cfg.cells - n_alif, seed=cfg.seed)
    ids = [c.specimen_id for c in cells]
    t0 = time.perf_counter()
    if cfg.in_memory:
        recs = synthetic_recordings(cells, cfg.dt_ms, 1.0, seed=cfg.seed)
        times = dict(generate_s=time.perf_counter() - t0, first_load_s=math.nan, cached_load_s=math.nan)
        return recs, times, ids
    missing = [c for c in cells if not (cache / f"specimen_{c.specimen_id}" / "ephys.nwb").exists()]
    if missing:
        write_synthetic_cache(cache, missing, seed=cfg.seed)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recs = [load_cell(i, cfg.dt_ms, 1.0, cache) for i in ids]
    first_load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recs = [load_cell(i, cfg.dt_ms, 1.0, cache) for i in ids]
    cached_load_s = time.perf_counter() - t0
    return recs, dict(generate_s=gen_s, first_load_s=first_load_s, cached_load_s=cached_load_s), ids


def run_panel_benchmark(
    cfg: PanelBenchmark, command: str = "", log: Optional[Callable[[str], None]] = None
) -> pd.DataFrame:
    """Fit the panel once per K of ``cfg.cells_per_batch``; one row per K.

    Args:
        cfg: what to fit.
        command: recorded in the ``cellfit_command`` column.
        log: called with a line when the cells are ready and after each K (e.g. ``print``).

    Returns:
        Columns ``cells, cells_per_batch, device, device_name, block_kernel, torch_threads,
        dt_ms, arp_ms, max_epochs, generate_s, first_load_s, cached_load_s, fit_s,
        fit_s_per_cell, end_to_end_cached_s, median_epochs, max_epochs_run, median_etv,
        failed, peak_gpu_mem_gb, cellfit_command`` (times in s).
    """
    log = log or (lambda line: None)
    dev = resolve_device(cfg.device)
    recs, loads, ids = prepare_panel(cfg)
    gen_s, first_load_s, cached_load_s = loads["generate_s"], loads["first_load_s"], loads["cached_load_s"]
    how = (f"built in memory in {gen_s:.1f} s" if cfg.in_memory else
           f"generated in {gen_s:.1f} s, first load {first_load_s:.1f} s, cached load {cached_load_s:.2f} s")
    log(f"{len(recs)} cells ready ({how})")

    fit_cfg = FitConfig(dt_ms=cfg.dt_ms, arp_ms=cfg.arp_ms, epochs=cfg.epochs)
    rows = []
    for k in cfg.cells_per_batch:
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        synchronize(dev)
        t0 = time.perf_counter()
        fits = []
        for lo in range(0, len(recs), k):
            fits += fit_recordings(recs[lo: lo + k], fit_cfg, device=dev, seed=cfg.seed, progress=False)
        synchronize(dev)
        wall = time.perf_counter() - t0
        ok = [f.result for f in fits if f.result.is_ok]
        rows.append(dict(
            cells=len(ids), cells_per_batch=k, device=str(dev),
            device_name=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            block_kernel=resolve_block_kernel(None, dev), torch_threads=torch.get_num_threads(), dt_ms=cfg.dt_ms,
            arp_ms=cfg.arp_ms, max_epochs=cfg.epochs,
            generate_s=round(gen_s, 2), first_load_s=round(first_load_s, 2), cached_load_s=round(cached_load_s, 2),
            fit_s=round(wall, 2), fit_s_per_cell=round(wall / len(ids), 3),
            end_to_end_cached_s=round(cached_load_s + wall, 2),
            median_epochs=float(np.median([r.epochs for r in ok])) if ok else float("nan"),
            max_epochs_run=max((r.epochs for r in ok), default=0),
            median_etv=float(np.median([r.etv for r in ok])) if ok else float("nan"),
            failed=len(fits) - len(ok),
            peak_gpu_mem_gb=round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else float("nan"),
            cellfit_command=command,
        ))  # fmt: skip
        log(f"K={k}: fit {wall:.1f} s ({wall / len(ids):.2f} s/cell), median ETV {rows[-1]['median_etv']:.3f}")
    return pd.DataFrame(rows)
