"""Refit a panel over a grid of time steps (DT) and refractory periods (ARP): the paper's Figure 5c-f.

Two sweeps share one output directory, one batch run per setting (each resumable on its own):

- DT sweep: DT in ``dts`` with ARP = max(2 ms, DT) rounded up to a whole number of steps;
- ARP sweep: ARP in ``arps`` at DT ``arp_sweep_dt`` (0.1 ms).

``OUT/dt<DT>_arp<ARP>/`` holds a normal :func:`cellfit.batch.run_batch` run
(``summary.csv``, ``<id>/result.json``); :func:`collect` gathers them into one table and
:func:`sweep_table` gives the median ETV and its standard error per setting. Figures of a
sweep: :mod:`cellfit.figures.sweep`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from tqdm.auto import tqdm

from cellfit.batch.run import run_batch
from cellfit.batch.store import summarise
from cellfit.data.nwb2 import read_predictions_nwb2
from cellfit.fit import FitConfig
from cellfit.fit.results import read_result

__all__ = [
    "DEFAULT_DTS",
    "DEFAULT_ARPS",
    "Setting",
    "sweep_settings",
    "setting_dir",
    "run_sweep",
    "collect",
    "sweep_table",
    "sweep_predictions",
]

DEFAULT_DTS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0)
DEFAULT_ARPS = (1.0, 2.0, 4.0, 8.0, 16.0)


class Setting(NamedTuple):
    dt_ms: float
    arp_ms: float
    sweep: str  # "dt", "arp" or "dt+arp"


def _arp_for_dt(dt_ms: float, min_arp_ms: float = 2.0) -> float:
    """ARP = max(min_arp, DT), rounded up to a whole number of DT steps."""
    steps = max(1, math.ceil(max(min_arp_ms, dt_ms) / dt_ms - 1e-9))
    return round(steps * dt_ms, 10)


def sweep_settings(dts: Sequence[float] = DEFAULT_DTS, arps: Sequence[float] = DEFAULT_ARPS,
                   arp_sweep_dt: float = 0.1) -> list[Setting]:
    """The (DT, ARP) settings of both sweeps, without duplicates, DT sweep first."""
    out: dict[tuple, str] = {}
    for dt in dts:
        out[(float(dt), _arp_for_dt(float(dt)))] = "dt"
    for arp in arps:
        key = (float(arp_sweep_dt), float(arp))
        out[key] = "dt+arp" if out.get(key) == "dt" else "arp"
    return [Setting(dt, arp, kind) for (dt, arp), kind in out.items()]


def setting_dir(out_dir: os.PathLike | str, dt_ms: float, arp_ms: float) -> pathlib.Path:
    return pathlib.Path(out_dir) / f"dt{dt_ms:g}_arp{arp_ms:g}"


def run_sweep(
    specimens,
    out_dir: os.PathLike | str,
    config=None,
    *,
    dts: Sequence[float] = DEFAULT_DTS,
    arps: Sequence[float] = DEFAULT_ARPS,
    arp_sweep_dt: float = 0.1,
    progress: bool = True,
    **batch_kwargs,
) -> pd.DataFrame:
    """Run every setting through :func:`cellfit.batch.run_batch` and return :func:`collect`'s table.

    Args:
        specimens: panel name or ids (as :func:`cellfit.batch.run_batch`).
        out_dir: sweep directory.
        config: base :class:`cellfit.fit.FitConfig`; its ``dt_ms``/``arp_ms`` are replaced per setting.
        dts, arps, arp_sweep_dt: the grid (see the module docstring).
        batch_kwargs: passed to ``run_batch`` (scheduler, workers, device, cache_dir, seed,
            window_s, cells_per_task, force, figures...).
    """
    base = config or FitConfig()
    settings = sweep_settings(dts, arps, arp_sweep_dt)
    for s in tqdm(settings, desc="sweep", unit="setting", disable=not progress):
        cfg = dataclasses.replace(base, dt_ms=s.dt_ms, arp_ms=s.arp_ms)
        run_batch(specimens, cfg, setting_dir(out_dir, s.dt_ms, s.arp_ms), progress=False, **batch_kwargs)
    return collect(out_dir, settings)


def collect(out_dir: os.PathLike | str, settings: Optional[Sequence[Setting]] = None) -> pd.DataFrame:
    """One row per (setting, cell) from every setting's per-cell results (missing settings are skipped)."""
    out_dir = pathlib.Path(out_dir)
    if settings is None:
        settings = []
        for d in sorted(out_dir.glob("dt*_arp*")):
            dt, arp = d.name[2:].split("_arp")
            settings.append(Setting(float(dt), float(arp), ""))
    frames = []
    for s in settings:
        d = setting_dir(out_dir, s.dt_ms, s.arp_ms)
        if not (d / "config.json").exists():
            continue
        df = summarise(d).drop(columns=["dt_ms", "arp_ms"], errors="ignore")
        df.insert(0, "arp_ms", s.arp_ms)  # the setting, also for cells that failed before fitting
        df.insert(0, "dt_ms", s.dt_ms)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["dt_ms", "arp_ms", "specimen_id", "etv", "status"])
    return pd.concat(frames, ignore_index=True)


def sweep_table(df: pd.DataFrame) -> pd.DataFrame:
    """Median held-out ETV per (DT, ARP) with its standard error (1.2533 sd / sqrt(n)) over fitted cells."""
    ok = df[df["status"] == "ok"]

    def agg(g):
        etv = g["etv"].astype(float).to_numpy()
        n = len(etv)
        se = 1.2533 * etv.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
        return pd.Series(dict(n_cells=n, median_etv=float(np.median(etv)) if n else float("nan"), se_etv=se,
                              mean_fit_seconds=float(g["fit_seconds"].astype(float).mean()) if n else float("nan")))

    if ok.empty:
        return pd.DataFrame(columns=["dt_ms", "arp_ms", "n_cells", "median_etv", "se_etv", "mean_fit_seconds"])
    return ok.groupby(["dt_ms", "arp_ms"])[["etv", "fit_seconds"]].apply(agg).reset_index()


def sweep_predictions(sweep_dir: os.PathLike | str, specimen_id: int, settings=None) -> list[tuple]:
    """One cell's held-out predictions at every (DT, ARP) setting of a sweep, finest DT first.

    Reads ``<sweep_dir>/dt<DT>_arp<ARP>/<id>/{result.json, predictions.nwb}``; ``settings``
    ``[(dt_ms, arp_ms), ...]`` limits the search (default: every setting folder).

    Returns:
        ``[(dt_ms, arp_ms, FitResult, predictions dict), ...]`` for
        :func:`cellfit.figures.sweep.plot_sweep_rasters`.

    Raises:
        FileNotFoundError: the cell has no predictions.nwb under ``sweep_dir``.
    """
    sweep_dir = pathlib.Path(sweep_dir)
    if settings is None:
        settings = []
        for d in sweep_dir.glob("dt*_arp*"):
            dt, arp = d.name[2:].split("_arp")
            settings.append((float(dt), float(arp)))
    found = []
    for dt, arp in sorted(settings):
        cell = setting_dir(sweep_dir, dt, arp) / str(int(specimen_id))
        if (cell / "predictions.nwb").exists():
            found.append((dt, arp, read_result(cell), read_predictions_nwb2(cell / "predictions.nwb")))
    if not found:
        raise FileNotFoundError(f"no predictions.nwb of specimen {specimen_id} under {sweep_dir}")
    return found
