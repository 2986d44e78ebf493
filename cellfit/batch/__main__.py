"""``python -m cellfit.batch --panel paper146 --dt 0.1 --out runs/panel``: fit many cells with Dask.

A thin wrapper of :func:`cellfit.batch.run_batch`: the same command resumes an
interrupted run (cells with an ok result.json are skipped). See
``cellfit/batch/README.md`` for the SLURM/PBS recipe. Without Allen data,
``--specimens demo`` fits the built-in demo cell and ``--synthetic N`` an N-cell
synthetic panel written under ``--out``.

Arguments, the output folder and the SLURM/PBS commands are checked before torch,
pandas and Dask are imported (:mod:`cellfit.cli`). Exit codes: 0 every cell fitted;
1 the run finished but some cells failed or are missing (see RUN_DIR/summary.csv);
2 bad arguments or data, a RUN_DIR holding a run with another configuration, or a
SLURM/PBS cluster that cannot give a worker (one line on stderr, no traceback);
130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time

from cellfit import cli
from cellfit.batch.jobwatch import ClusterError
from cellfit.batch.worker_setup import prepare_worker_processes

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m cellfit.batch",
        description="Fit adaptive LIF neurons to many Allen Cell Types cells with Dask (resumable).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (Dask set-up and warnings, chunks, failures)")
    cli.add_cell_source(p)
    cli.add_common(p, "dt", "arp", "engine", "window", "epochs", "model", "restarts", "adapt_search", "bootstrap", "device", "seed", "cache_dir",
                   "out", "scheduler", "workers", "cells_per_task", "force", "no_figures", "no_progress",
                   required=["out"],
                   help={"out": "run directory: config.json, summary.csv and one folder per cell (required)"})
    cli.add_cluster_options(p)
    return p


def _validate(args: argparse.Namespace) -> None:
    cli.check_dt_arp(args.dt, args.arp)
    cli.check_fit_options(args)
    cli.check_specimens(args.specimens)
    cli.check_out_dir(args.out)
    cli.check_cache_dir(args.cache_dir)
    cli.check_cluster_options(args)  # the YAML file, and sbatch/qsub on PATH (a ClusterError: one line, exit 2)


def _run(args: argparse.Namespace) -> int:
    prepare_worker_processes(verbose=args.verbose)  # before Dask is imported: quiet workers that ignore Ctrl-C
    # the heavy imports (torch, pandas, Dask), deferred so that bad arguments answer first (cellfit.cli)
    from cellfit.batch.cluster import cluster_options_from_args
    from cellfit.batch.run import run_batch
    from cellfit.batch.store import run_summary
    from cellfit.data.demo import DEMO_SAMPLING_RATE_HZ, ensure_demo_cell, synthetic_panel
    from cellfit.fit.config import fit_config

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("cellfit").setLevel(logging.INFO if args.verbose else logging.WARNING)
    t0 = time.perf_counter()
    cache, specimens = args.cache_dir, args.panel if args.panel is not None else args.specimens
    if args.specimens == ["demo"] or args.synthetic:
        what = "the demo cell" if args.synthetic is None else "the synthetic cells"
        cli.check_dt_arp(args.dt, args.arp, interval_ms=1e3 / DEMO_SAMPLING_RATE_HZ, data=what)
        if args.synthetic:
            cache, specimens = synthetic_panel(pathlib.Path(args.out) / "synthetic_cache", args.synthetic,
                                               args.synthetic_model, args.seed)
        else:
            cache, demo_id = ensure_demo_cell(args.cache_dir)
            specimens = [demo_id]
    cfg = fit_config(adapt_search=args.adapt_search, dt_ms=args.dt, arp_ms=args.arp, engine=args.engine,
                     epochs=args.epochs, model=args.model, restarts=args.restarts, bootstrap=args.bootstrap)
    df = run_batch(
        specimens, cfg, args.out,
        cells_per_task=args.cells_per_task, scheduler=args.scheduler, workers=args.workers, device=args.device,
        cache_dir=cache, seed=args.seed, window_s=args.window, force=args.force,
        progress=not args.no_progress, cluster_options=cluster_options_from_args(args), figures=not args.no_figures,
    )
    ok = df[df.status == "ok"]
    print(f"cellfit.batch: {run_summary(df)} | {time.perf_counter() - t0:.1f} s -> {args.out}/summary.csv")
    if len(ok) < len(df):
        bad = df[df.status != "ok"]
        for row in bad.head(10).itertuples():
            print(f"  {row.specimen_id}: {row.status}: {row.error}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    # RunConfigError (another run in --out) is a ValueError; OSError: a folder that cannot be written
    return cli.run_main(build_parser(), _run, argv, validate=_validate, errors=(OSError, ClusterError),
                        interrupted=lambda a: f"interrupted; rerun the same command to resume ({a.out})")


if __name__ == "__main__":
    sys.exit(main())
