"""What a benchmark writes and prints: the result table's columns, the CSV, and short text tables.

One row per (case, system): :data:`CSV_COLUMNS`, times in seconds (meaning of every column:
``cellfit/bench/README.md``). :func:`write_csv_atomic` writes it so that a reader never sees
half a file; :func:`summary_table` prints times and speedups per case; and
:func:`speedup_table` gives the Block engine's speedups per case.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cellfit.io import atomic_path

__all__ = ["CSV_COLUMNS", "CASE_KEYS", "write_csv_atomic", "speedup_table", "summary_table"]

CSV_COLUMNS = (
    "grid", "case", "engine", "T", "arp_steps", "arp_ms", "dt_ms", "batch", "n_in", "hidden", "layers",
    "recurrent", "task", "train_step", "dtype", "seed", "device", "device_name", "block_kernel", "torch_version",
    "cellfit_version", "repeats", "warmup", "n_fwd", "fwd_median_s", "fwd_iqr_s", "n_fwd_bwd",
    "fwd_bwd_median_s", "fwd_bwd_iqr_s", "speedup_fwd", "speedup_fwd_bwd", "spikes_per_sample",
    "float64_identical", "float32_spike_mismatches", "load_avg_1m", "note",
)  # fmt: skip
"""Columns of the result table, one row per (case, engine). Times in seconds."""

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

