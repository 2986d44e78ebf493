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
_EXPORTS = {
    "ClusterError": "cellfit.batch.jobwatch",
    "ClusterOptions": "cellfit.batch.cluster",
    "default_cells_per_task": "cellfit.batch.run",
    "fit_chunk": "cellfit.batch.run",
    "run_batch": "cellfit.batch.run",
    "RunConfig": "cellfit.batch.store",
    "RunConfigError": "cellfit.batch.store",
    "SUMMARY_COLUMNS": "cellfit.batch.store",
    "load_run_fit": "cellfit.batch.store",
    "starting_values": "cellfit.batch.store",
    "summarise": "cellfit.batch.store",
    "write_summary": "cellfit.batch.store",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ClusterError",
    "ClusterOptions",
    "RunConfig",
    "RunConfigError",
    "SUMMARY_COLUMNS",
    "default_cells_per_task",
    "fit_chunk",
    "load_run_fit",
    "run_batch",
    "starting_values",
    "summarise",
    "write_summary",
]
