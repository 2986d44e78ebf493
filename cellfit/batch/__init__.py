"""Batch fitting of many cells with Dask: locally, on a SLURM/PBS cluster, or on a running scheduler.

>>> from cellfit.batch import run_batch, summarise
>>> from cellfit.fit import FitConfig
>>> df = run_batch("paper146", FitConfig(dt_ms=0.1), "runs/panel", workers=2)   # resumable
>>> summarise("runs/panel").query("status == 'ok'").groupby("cell_class").tau_m_ms.describe()

- :mod:`cellfit.batch.run`: :func:`run_batch` (chunks of K cells per task, files as results);
- :mod:`cellfit.batch.store`: the run directory (config.json, result.json, summary.csv);
- :mod:`cellfit.batch.cluster`: local / SLURM / PBS clusters and scheduler addresses;
- ``python -m cellfit.batch``: the command line (:mod:`cellfit.batch.__main__`);
- ``cellfit/batch/README.md``: the cluster recipe.
"""

from cellfit._lazy import lazy_exports

# imported on first use (see cellfit._lazy): `python -m cellfit.batch` parses its
# arguments before torch, pandas and Dask are loaded
__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "cellfit.batch.jobwatch": "ClusterError",
    "cellfit.batch.cluster": "ClusterOptions",
    "cellfit.batch.run": "default_cells_per_task fit_chunk run_batch",
    "cellfit.batch.store": "RunConfig RunConfigError SUMMARY_COLUMNS load_run_fit starting_values summarise write_summary",
})

__all__ = _NAMES
