"""What a benchmark writes and prints: the result table's columns, the CSV, and short text tables.

One row per (case, system): :data:`CSV_COLUMNS`, times in seconds (meaning of every column:
``cellfit/bench/README.md``). :func:`write_csv_atomic` writes it so that a reader never sees
half a file; :func:`summary_table` prints times and speedups per case; :func:`speedup_table`
gives the Block engine's speedups per case, :func:`peer_table` sets the systems of each case
side by side (time, time relative to the fastest, spikes); :func:`grid_summary` is the line
that says which grid ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from cellfit.bench.cases import GRID_DESCRIPTIONS
from cellfit.io import atomic_path

__all__ = ["CSV_COLUMNS", "CASE_KEYS", "write_csv_atomic", "speedup_table", "summary_table", "peer_table",
           "grid_summary"]

CSV_COLUMNS = (
    "grid", "case", "engine", "T", "arp_steps", "arp_ms", "dt_ms", "batch", "n_in", "hidden", "layers",
    "recurrent", "task", "train_step", "dtype", "seed", "device", "device_name", "block_kernel", "torch_version",
    "cellfit_version", "repeats", "warmup", "n_fwd", "fwd_median_s", "fwd_iqr_s", "n_fwd_bwd",
    "fwd_bwd_median_s", "fwd_bwd_iqr_s", "speedup_fwd", "speedup_fwd_bwd", "spikes_per_sample",
    "float64_identical", "float32_spike_mismatches", "load_avg_1m", "note",
    "system", "system_version", "model", "spike_rate_hz",
)  # fmt: skip
"""Columns of the result table, one row per (case, engine or peer). Times in seconds. The
last four (``system`` ... ``spike_rate_hz``) came with the peer libraries; CSVs written
before them lack them (read them with :func:`cellfit.figures.speed.load_benchmarks`)."""

CASE_KEYS = ("T", "arp_steps", "batch", "n_in", "hidden", "layers", "recurrent", "task")


def write_csv_atomic(df: pd.DataFrame, path: os.PathLike | str) -> Path:
    """Write ``df`` as CSV via a temporary file in the same folder and ``os.replace`` (the user's umask)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def speedup_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per case: the case fields and the Block engine's ``speedup_fwd`` / ``speedup_fwd_bwd``."""
    blocks = df[df["engine"] == "blocks"]
    return blocks[list(CASE_KEYS) + ["speedup_fwd", "speedup_fwd_bwd"]].reset_index(drop=True)


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


def peer_table(df: pd.DataFrame) -> pd.DataFrame:
    """The systems of each case side by side: one row per (case, system).

    Columns: ``T``, ``system`` (engine or peer), ``model``, ``train_s`` / ``infer_s`` (median
    training step and inference, seconds), ``train_vs_fastest`` / ``infer_vs_fastest`` (time
    over the fastest system's time for that case: 1 = fastest), ``spikes_per_sample`` and
    ``rate_hz`` (last-layer spikes, to see unequal work) and ``load_avg_1m``.
    """
    rows = []
    for _, g in df.groupby("case", sort=True):
        fastest_b, fastest_f = g["fwd_bwd_median_s"].min(), g["fwd_median_s"].min()
        for r in g.itertuples(index=False):
            rows.append(dict(
                T=r.T, system=r.engine, model=getattr(r, "model", ""),
                train_s=r.fwd_bwd_median_s, train_vs_fastest=r.fwd_bwd_median_s / fastest_b,
                infer_s=r.fwd_median_s, infer_vs_fastest=r.fwd_median_s / fastest_f,
                spikes_per_sample=r.spikes_per_sample, rate_hz=getattr(r, "spike_rate_hz", np.nan),
                load_avg_1m=r.load_avg_1m,
            ))  # fmt: skip
    return pd.DataFrame(rows)


def grid_summary(grid_name: str, n_cases: int, n_systems: int) -> str:
    """One line naming the grid that ran, e.g. ``grid 'small' (small default grid ...): 4 configuration(s) x 2 system(s)``."""
    what = GRID_DESCRIPTIONS.get(grid_name, "custom grid")
    return f"grid {grid_name!r} ({what}): {n_cases} configuration(s) x {n_systems} system(s)"
