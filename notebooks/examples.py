"""Small example results for the notebooks, built from synthetic cells through the real pipelines.

This file lives beside the notebooks, not in the library: the notebooks in ``notebooks/``
read a results directory named in their first cell; when it is ``None`` they call the
functions here (``from examples import example_panel``; a notebook's folder is on its
kernel's import path), which build (once) and then reuse a small example under
:func:`examples_dir` (``$CELLFIT_EXAMPLES``, default ``~/.cache/cellfit/examples``)::

    EXAMPLES/
        cache_n8_seed0/     synthetic Allen cache (AllenSDK layout, 10 kHz, ground truth in truth.json)
        panel/              cellfit.batch.run_batch run: summary.csv, <id>/result.json, model.pt, predictions.nwb
        sweep/              cellfit.batch.sweep.run_sweep run: dt<DT>_arp<ARP>/ (one batch run per setting)
        benchmark/results.csv   cellfit.bench.run_benchmark table (a seconds-long CPU grid)

>>> from examples import example_panel, example_sweep, example_benchmark   # in notebooks/
>>> run_dir = example_panel()          # about 40 s on 2 busy CPU cores the first time, then instant
>>> sweep_dir = example_sweep()        # about 30 s the first time
>>> csv = example_benchmark()          # about 15 s the first time

Everything goes through the library paths a user's own results come from
(:func:`cellfit.data.synthetic.write_synthetic_cache`, :func:`cellfit.batch.run_batch`,
:func:`cellfit.batch.sweep.run_sweep`, :func:`cellfit.bench.run_benchmark`); only the sizes
are small: few cells, few epochs, 1 s windows, coarse DT (0.2-4 ms), one in-process Dask
worker, no per-cell figures. The numbers are therefore an illustration of the notebooks,
not a measurement: point the notebooks at real runs for that.

Each function is idempotent: a finished example is reused (``run_batch`` resumes and skips
fitted cells; the cache and the benchmark CSV are kept when present). Changing the size
arguments of an existing example raises :class:`cellfit.batch.RunConfigError` (its saved
configuration differs): give another ``out_dir`` or delete the old one.

Also here: :func:`truth_table`, the ground-truth time constants of the synthetic cells of
a run, for overlays. (A fitted cell is read back with :func:`cellfit.fit.load_fit`.)

Build all of them ahead of time from the repository root: ``python notebooks/examples.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import warnings
from typing import Iterator, Optional, Sequence

import numpy as np
import pandas as pd
from distributed import Client

with warnings.catch_warnings():  # tqdm.auto (used by the batch code) warns once in a kernel without ipywidgets
    warnings.filterwarnings("ignore", message="IProgress not found")
    import tqdm.auto  # noqa: F401

from cellfit.batch import run_batch
from cellfit.batch.store import read_config
from cellfit.batch.sweep import run_sweep
from cellfit.bench import BenchmarkConfig, grid, run_benchmark, write_csv_atomic
from cellfit.data import CellDataError
from cellfit.data.synthetic import FIRST_SYNTHETIC_ID, alif_panel, load_truth, mismatch_panel, write_synthetic_cache
from cellfit.fit import FitConfig
from cellfit.io import user_dir

__all__ = [
    "EXAMPLES_ENV",
    "examples_dir",
    "example_cells",
    "example_cache",
    "example_panel",
    "example_sweep",
    "example_benchmark",
    "build_examples",
    "truth_table",
]

logger = logging.getLogger(__name__)

#: environment variable naming the examples directory
EXAMPLES_ENV = "CELLFIT_EXAMPLES"

#: sampling rate of the synthetic NWB files: 0.1 ms samples, so every DT of the sweeps divides it
#: (at 4 kHz AllenSDK's spike detector fails on some cells)
SAMPLING_RATE_HZ = 10_000.0

#: transgenic lines and layers given to the example cells in turn (per class), so that the
#: notebooks' split by line and layer has several groups; the cells' models do not depend on them
EXAMPLE_LINES = {
    "excitatory": ("Scnn1a-Tg3-Cre", "Rorb-IRES2-Cre", "Nr5a1-Cre"),
    "inhibitory": ("Pvalb-IRES-Cre", "Sst-IRES-Cre", "Vip-IRES-Cre"),
}
EXAMPLE_LAYERS = ("4", "2/3", "5")


def examples_dir(out_dir: os.PathLike | str | None = None) -> pathlib.Path:
    """The examples directory: ``out_dir`` > ``$CELLFIT_EXAMPLES`` > ``~/.cache/cellfit/examples``."""
    return user_dir(out_dir, EXAMPLES_ENV, "cellfit", "examples")


# --------------------------------------------------------------------------
# synthetic cells
# --------------------------------------------------------------------------
def example_cells(n_cells: int = 8, seed: int = 0) -> list:
    """``n_cells`` synthetic cells: three quarters ALIF (known time constants), one quarter AdEx.

    ALIF cells come from :func:`cellfit.data.synthetic.alif_panel` (excitatory tau_m 15-35 ms,
    inhibitory 8-15 ms: a heterogeneous panel), AdEx cells from
    :func:`~cellfit.data.synthetic.mismatch_panel` (outside the model family, as real cells
    are). Classes alternate; each class cycles through :data:`EXAMPLE_LINES` and every cell
    through :data:`EXAMPLE_LAYERS`. Two Noise 1 (train) and three Noise 2 (test) sweeps each.
    """
    if n_cells < 1:
        raise ValueError(f"n_cells must be >= 1, got {n_cells}")
    n_adex = n_cells // 4
    cells = alif_panel(n_cells - n_adex, seed=seed) + mismatch_panel(n_adex, seed=seed)
    out, used = [], {"excitatory": 0, "inhibitory": 0}
    for i, cell in enumerate(cells):
        lines = EXAMPLE_LINES[cell.cell_class]
        line = lines[used[cell.cell_class] % len(lines)]
        used[cell.cell_class] += 1
        out.append(dataclasses.replace(cell, noise1_repeats=2, noise2_repeats=3, transgenic_line=line,
                                       layer=EXAMPLE_LAYERS[i % len(EXAMPLE_LAYERS)]))
    return out


def example_cache(out_dir: os.PathLike | str | None = None, n_cells: int = 8,
                  seed: int = 0) -> tuple[pathlib.Path, list[int]]:
    """Write (or reuse) the synthetic Allen cache of :func:`example_cells`; return ``(cache_dir, ids)``.

    The cache lives in ``EXAMPLES/cache_n<n_cells>_seed<seed>`` (the cells' parameters depend
    on both). A cell is written again only when its ``ephys.nwb`` or ``truth.json`` is missing.
    """
    cache = examples_dir(out_dir) / f"cache_n{int(n_cells)}_seed{int(seed)}"
    cells = example_cells(n_cells, seed)
    ids = [int(c.specimen_id) if c.specimen_id is not None else FIRST_SYNTHETIC_ID + i for i, c in enumerate(cells)]
    missing = [c for c, i in zip(cells, ids)
               if not all((cache / f"specimen_{i}" / name).exists() for name in ("ephys.nwb", "truth.json"))]
    if missing:
        logger.info("writing %d synthetic cells to %s", len(missing), cache)
        write_synthetic_cache(cache, missing, seed=seed, sampling_rate_hz=SAMPLING_RATE_HZ)
    return cache, ids


@contextlib.contextmanager
def _in_process_client() -> Iterator[object]:
    """One single-threaded Dask worker inside this process (no worker start-up, imports shared)."""
    dlog = logging.getLogger("distributed")  # keep Dask's INFO chatter (start/stop) out of notebooks
    level = dlog.level
    dlog.setLevel(max(level, logging.WARNING))
    try:
        with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
            yield client
    finally:
        dlog.setLevel(level)


def _config(dt_ms: float, arp_ms: float, epochs: int):
    return FitConfig(dt_ms=dt_ms, arp_ms=arp_ms, epochs=epochs)


# --------------------------------------------------------------------------
# example results
# --------------------------------------------------------------------------
def example_panel(out_dir: os.PathLike | str | None = None, *, n_cells: int = 8, dt_ms: float = 0.5,
                  arp_ms: float = 2.0, epochs: int = 5, seed: int = 0, figures: bool = False,
                  progress: bool = False) -> pathlib.Path:
    """A batch run of :func:`example_cells` (``EXAMPLES/panel``), as ``python -m cellfit.batch`` writes it.

    Args:
        out_dir: examples directory (default :func:`examples_dir`).
        n_cells: cells of the panel (mixed classes, lines and layers).
        dt_ms, arp_ms, epochs: the fit (coarse DT and few epochs keep it to seconds per cell).
        seed: data and fit seed.
        figures: also write every cell's fit.png.
        progress: show the batch progress bar.

    Returns:
        The run directory (``summary.csv``, ``config.json``, ``<id>/result.json`` ...).
    """
    root = examples_dir(out_dir)
    cache, ids = example_cache(root, n_cells, seed)
    run_dir = root / "panel"
    with _in_process_client() as client:
        run_batch(ids, _config(dt_ms, arp_ms, epochs), run_dir, scheduler=client, device="cpu", cache_dir=cache,
                  seed=seed, window_s=1.0, figures=figures, progress=progress)
    return run_dir


def example_sweep(out_dir: os.PathLike | str | None = None, *, n_cells: int = 3, panel_cells: int = 8,
                  dts: Sequence[float] = (0.2, 1.0, 4.0), arps: Sequence[float] = (2.0, 4.0, 8.0),
                  arp_sweep_dt: float = 0.2, epochs: int = 3, seed: int = 0,
                  progress: bool = False) -> pathlib.Path:
    """A DT/ARP sweep of the first ``n_cells`` example cells (``EXAMPLES/sweep``), as ``pipelines.ephys_sweep``.

    The cells are the first ``n_cells`` of the ``panel_cells`` cells of :func:`example_panel`
    (same cache, same ids), so the sweep and the panel show the same cells.

    The default grid has 5 settings: DT 0.2, 1 and 4 ms (ARP = max(2 ms, DT)) and ARP 2, 4
    and 8 ms at DT 0.2 ms, which includes the pair of Figure 5c at a coarser fine step
    (DT 0.2 vs 4 ms, both at ARP 4 ms). DTs must be multiples of the synthetic data's
    0.1 ms sampling interval. Arguments as :func:`example_panel` and
    :func:`cellfit.batch.sweep.run_sweep`.

    Returns:
        The sweep directory (read it with :func:`cellfit.batch.sweep.collect`).
    """
    root = examples_dir(out_dir)
    if not 1 <= n_cells <= panel_cells:
        raise ValueError(f"n_cells must be between 1 and panel_cells ({panel_cells}), got {n_cells}")
    cache, ids = example_cache(root, panel_cells, seed)
    sweep_dir = root / "sweep"
    base = _config(float(arp_sweep_dt), max(2.0, float(arp_sweep_dt)), epochs)
    with _in_process_client() as client:
        run_sweep(ids[:n_cells], sweep_dir, base, dts=dts, arps=arps, arp_sweep_dt=arp_sweep_dt, progress=progress,
                  scheduler=client, device="cpu", cache_dir=cache, seed=seed, window_s=1.0, figures=False)
    return sweep_dir


def example_benchmark(out_dir: os.PathLike | str | None = None, *, repeats: int = 3, seed: int = 0) -> pathlib.Path:
    """A seconds-long Block vs standard benchmark on this machine's CPU (``EXAMPLES/benchmark/results.csv``).

    Five configurations of the ``quick`` grid's network (16 recurrent neurons, 32 Poisson
    inputs): T 128 and 256 x ARP 8 and 16 steps at batch 4, plus batch 8 at T 256, ARP 16,
    so that the speed notebook can plot speedup against ARP, T and batch. Times on tiny
    networks are dominated by overhead; the speedups are far below a GPU's.

    Returns:
        The CSV path (columns :data:`cellfit.bench.report.CSV_COLUMNS`); an existing file is reused.
    """
    csv = examples_dir(out_dir) / "benchmark" / "results.csv"
    if csv.exists():
        return csv
    base = grid("quick")[0]
    cases = [dataclasses.replace(base, T=t, arp_steps=a, batch=4) for t in (128, 256) for a in (8, 16)]
    cases.append(dataclasses.replace(base, T=256, arp_steps=16, batch=8))
    config = BenchmarkConfig(cases=tuple(cases), device="cpu", repeats=repeats, warmup=1, seed=seed,
                             grid_name="example", progress=False)
    df = run_benchmark(config)
    write_csv_atomic(df, csv)
    return csv


def build_examples(out_dir: os.PathLike | str | None = None) -> dict[str, pathlib.Path]:
    """Build (or reuse) all three examples; returns ``{"panel": ..., "sweep": ..., "benchmark": ...}``."""
    return {"panel": example_panel(out_dir), "sweep": example_sweep(out_dir), "benchmark": example_benchmark(out_dir)}


# --------------------------------------------------------------------------
# reading results back
# --------------------------------------------------------------------------
TRUTH_COLUMNS = ["specimen_id", "model", "cell_class", "tau_m_ms", "tau_adapt_ms", "adapt_scale"]


def truth_table(run_dir: os.PathLike | str, cache_dir: os.PathLike | str | None = None,
                specimens: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """Ground-truth parameters of the synthetic cells of a batch run (empty for real cells).

    Args:
        run_dir: a batch run directory (its ``config.json`` names the cache and the cells).
        cache_dir: the Allen cache (default: the run's ``cache_dir``).
        specimens: the cells (default: the run's).

    Returns:
        One row per synthetic cell, columns ``specimen_id, model, cell_class, tau_m_ms,
        tau_adapt_ms, adapt_scale``. AdEx cells have only ``tau_m_ms`` (C / g_L): their
        adaptation is a current, not the ALIF threshold, so it has no comparable value.
        Cells without ``truth.json`` (every real Allen cell) are left out.
    """
    saved = read_config(run_dir) or {}
    cache = cache_dir or saved.get("cache_dir")
    ids = specimens if specimens is not None else saved.get("specimens", [])
    rows = []
    if cache:
        for sid in ids:
            try:
                truth = load_truth(cache, int(sid))
            except CellDataError:
                continue
            p = truth["params"]
            alif = truth.get("model") == "alif"
            rows.append(dict(specimen_id=int(sid), model=truth.get("model"), cell_class=truth.get("cell_class"),
                             tau_m_ms=float(p["tau_m_ms"]),
                             tau_adapt_ms=float(p["tau_adapt_ms"]) if alif else np.nan,
                             adapt_scale=float(p["adapt_scale"]) if alif else np.nan))
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)


if __name__ == "__main__":
    for name, path in build_examples().items():
        print(f"{name}: {path}")
