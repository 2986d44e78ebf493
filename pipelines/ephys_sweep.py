"""``python -m pipelines.ephys_sweep``: ETV vs DT and vs ARP over a panel (the paper's Figure 5c-f).

Refits the panel for every DT (ARP = max(2 ms, DT)) and every ARP (at DT 0.1 ms)
through the batch machinery (one resumable run per setting under ``--out``), then
writes ``sweep.csv`` (one row per setting and cell), ``sweep_summary.csv`` (median
ETV and standard error per setting) and the plots ``etv_vs_dt.png``,
``etv_vs_arp.png`` and ``etv_scatter.png`` (per cell, DT 0.1 vs 4 ms at ARP 4 ms).

Without Allen data, ``--synthetic N`` builds an N-cell synthetic panel (cells outside
the ALIF family by default) under ``--out`` and sweeps it; ``--specimens demo`` sweeps
the built-in demo cell.

Arguments and the output folder are checked before the heavy imports (:mod:`cellfit.cli`).
Exit codes: 0 success; 2 bad arguments or data (one line on stderr); 130 interrupted
(rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

from cellfit import cli
from cellfit.batch.worker_setup import prepare_worker_processes

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m pipelines.ephys_sweep", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (Dask's warnings included)")
    cli.add_cell_source(p, "cells to sweep")
    p.add_argument("--dts", type=cli.positive_float, nargs="+", default=None, metavar="MS",
                   help="DT grid in ms (default 0.05 0.1 0.2 0.5 1 2 4; ARP = max(2 ms, DT))")
    p.add_argument("--arps", type=cli.positive_float, nargs="+", default=None, metavar="MS",
                   help="ARP grid in ms, multiples of --arp-sweep-dt (default 1 2 4 8 16)")
    p.add_argument("--arp-sweep-dt", type=cli.positive_float, default=0.1, metavar="MS",
                   help="DT of the ARP sweep in ms (default 0.1)")
    cli.add_common(p, "epochs", "model", "restarts", "bootstrap", "window", "device", "seed", "cache_dir", "out", "scheduler", "workers",
                   "cells_per_task", "force", "no_figures", "no_progress", defaults={"out": "runs/ephys_sweep"},
                   help={"force": "refit settings whose saved configuration differs"})
    cli.add_cluster_options(p)
    return p


def _check_grid(args: argparse.Namespace, interval_ms=None, data: str = "the data") -> None:
    """Every DT in range (and on the data's sampling grid when known), every ARP a multiple of its DT."""
    for dt in args.dts or ():
        cli.check_dt_arp(dt, interval_ms=interval_ms, data=data, dt_flag="--dts")
    for arp in args.arps or [None]:
        cli.check_dt_arp(args.arp_sweep_dt, arp, interval_ms=interval_ms, data=data, dt_flag="--arp-sweep-dt",
                         arp_flag="--arps")


def _validate(args: argparse.Namespace) -> None:
    _check_grid(args)
    cli.check_specimens(args.specimens)
    cli.check_out_dir(args.out)
    cli.check_cache_dir(args.cache_dir)
    cli.check_cluster_options(args)


def _run(args: argparse.Namespace) -> int:
    prepare_worker_processes(verbose=args.verbose)  # before Dask is imported: quiet workers that ignore Ctrl-C
    # the heavy imports (torch, pandas, Dask), deferred so that bad arguments answer first (cellfit.cli)
    from cellfit.batch.cluster import cluster_options_from_args
    from cellfit.batch.sweep import DEFAULT_ARPS, DEFAULT_DTS, collect, run_sweep, sweep_table
    from cellfit.data.demo import DEMO_SAMPLING_RATE_HZ, ensure_demo_cell, synthetic_panel
    from cellfit.figures.sweep import plot_sweep
    from cellfit.fit.config import fit_config
    from cellfit.io import write_text_atomic

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    out = pathlib.Path(args.out)
    cache, specimens = args.cache_dir, args.panel or args.specimens
    if args.synthetic or args.specimens == ["demo"]:
        what = "the demo cell" if args.synthetic is None else "the synthetic cells"
        _check_grid(args, interval_ms=1e3 / DEMO_SAMPLING_RATE_HZ, data=what)
        if args.synthetic:
            cache, specimens = synthetic_panel(out / "synthetic_cache", args.synthetic, args.synthetic_model,
                                               args.seed)
        else:
            cache, demo_id = ensure_demo_cell(args.cache_dir)
            specimens = [demo_id]
    base = fit_config(epochs=args.epochs, model=args.model, restarts=args.restarts, bootstrap=args.bootstrap)
    run_sweep(
        specimens, out, base,
        dts=args.dts or DEFAULT_DTS, arps=args.arps or DEFAULT_ARPS, arp_sweep_dt=args.arp_sweep_dt,
        progress=not args.no_progress, scheduler=args.scheduler, workers=args.workers, device=args.device,
        cache_dir=cache, seed=args.seed, window_s=args.window, cells_per_task=args.cells_per_task,
        force=args.force, figures=not args.no_figures, cluster_options=cluster_options_from_args(args),
    )
    df = collect(out)
    table = sweep_table(df)
    write_text_atomic(out / "sweep.csv", df.to_csv(index=False))
    write_text_atomic(out / "sweep_summary.csv", table.to_csv(index=False))
    plot_sweep(df, out, arp_sweep_dt=args.arp_sweep_dt)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def main(argv=None) -> int:
    # RunConfigError (a setting's folder holds another run) is a ValueError
    return cli.run_main(build_parser(), _run, argv, validate=_validate, errors=(OSError,),
                        interrupted=lambda a: f"interrupted; rerun the same command to resume ({a.out})")


if __name__ == "__main__":
    sys.exit(main())
