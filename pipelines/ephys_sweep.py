"""``python -m pipelines.ephys_sweep``: ETV vs DT and vs ARP over a panel (the paper's Figure 5c-f).

Refits the panel for every DT (ARP = max(2 ms, DT)) and every ARP (at DT 0.1 ms)
through the batch machinery (one resumable run per setting under ``--out``), then
writes ``sweep.csv`` (one row per setting and cell), ``sweep_summary.csv`` (median
ETV and standard error per setting) and the plots ``etv_vs_dt.png``,
``etv_vs_arp.png`` and ``etv_scatter.png`` (per cell, DT 0.1 vs 4 ms at ARP 4 ms).

Without Allen data, ``--synthetic N`` builds an N-cell synthetic panel (cells outside
the ALIF family by default) under ``--out`` and sweeps it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import pathlib
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.ephys_sweep", description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--panel", help="named panel, e.g. paper146")
    src.add_argument("--specimens", nargs="+", type=int, help="explicit Allen specimen ids")
    src.add_argument("--synthetic", type=int, metavar="N", help="build and sweep an N-cell synthetic panel")
    p.add_argument("--synthetic-model", choices=["adex", "alif", "mixed"], default="adex",
                   help="generator of the synthetic panel (adex: outside the ALIF family)")
    p.add_argument("--dts", type=float, nargs="+", default=None, help="DT grid in ms (default 0.05 0.1 0.2 0.5 1 2 4)")
    p.add_argument("--arps", type=float, nargs="+", default=None, help="ARP grid in ms (default 1 2 4 8 16)")
    p.add_argument("--arp-sweep-dt", type=float, default=0.1, help="DT of the ARP sweep in ms (default 0.1)")
    p.add_argument("--epochs", type=int, default=200, help="maximum training epochs per fit")
    p.add_argument("--window", type=float, choices=[1.0, 3.0], default=1.0, help="seconds used per noise epoch")
    p.add_argument("--out", default="runs/ephys_sweep", help="output directory")
    p.add_argument("--cache-dir", default=None, help="Allen cache directory")
    p.add_argument("--scheduler", default="local", help="local, slurm, pbs or tcp://HOST:PORT")
    p.add_argument("--workers", type=int, default=None, help="local worker processes / cluster jobs")
    p.add_argument("--cells-per-task", type=int, default=None, help="cells fitted together in one task")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--force", action="store_true", help="refit settings whose saved configuration differs")
    p.add_argument("--no-figures", action="store_true", help="skip the per-cell fit.png files")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def _synthetic_panel(out: pathlib.Path, n: int, model: str, seed: int) -> tuple[pathlib.Path, list[int]]:
    from cellfit.data.synthetic import alif_panel, mismatch_panel, write_synthetic_cache

    cache = out / "synthetic_cache"
    if model == "adex":
        cells = mismatch_panel(n, seed=seed)
    elif model == "alif":
        cells = alif_panel(n, seed=seed)
    else:
        cells = alif_panel((n + 1) // 2, seed=seed) + mismatch_panel(n // 2, seed=seed)
    ids = [c.specimen_id for c in cells]
    if not all((cache / f"specimen_{i}" / "ephys.nwb").exists() for i in ids):
        write_synthetic_cache(cache, cells, seed=seed)
    return cache, ids


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from cellfit.batch.store import RunConfigError
    from cellfit.batch.sweep import DEFAULT_ARPS, DEFAULT_DTS, collect, run_sweep, sweep_table
    from cellfit.data import CellDataError
    from cellfit.figures.sweep import plot_sweep
    from cellfit.fit import FitConfig
    from cellfit.io import write_text_atomic

    out = pathlib.Path(args.out)
    try:
        cache = args.cache_dir
        if args.synthetic is not None:
            if args.synthetic < 1:
                raise ValueError(f"--synthetic needs at least 1 cell, got {args.synthetic}")
            cache, specimens = _synthetic_panel(out, args.synthetic, args.synthetic_model, args.seed)
        else:
            specimens = args.panel or args.specimens
        base = dataclasses.replace(FitConfig(), epochs=args.epochs)
        run_sweep(
            specimens, out, base,
            dts=args.dts or DEFAULT_DTS, arps=args.arps or DEFAULT_ARPS, arp_sweep_dt=args.arp_sweep_dt,
            progress=not args.no_progress, scheduler=args.scheduler, workers=args.workers, device=args.device,
            cache_dir=cache, seed=args.seed, window_s=args.window, cells_per_task=args.cells_per_task,
            force=args.force, figures=not args.no_figures,
        )
    except (CellDataError, RunConfigError, ValueError) as exc:
        print(f"ephys_sweep: error: {exc}", file=sys.stderr)
        return 2
    df = collect(out)
    table = sweep_table(df)
    write_text_atomic(out / "sweep.csv", df.to_csv(index=False))
    write_text_atomic(out / "sweep_summary.csv", table.to_csv(index=False))
    plot_sweep(df, out, arp_sweep_dt=args.arp_sweep_dt)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
