"""``python -m cellfit.fit --specimen ID --dt 0.1``: fit one cell and write its results.

Fits an ALIF neuron to the cell's Noise 1 sweeps, scores it by ETV on the held-out
Noise 2 sweeps, writes ``<out>/<ID>/{result.json, model.pt, predictions.nwb, fit.png}``
and prints one summary line. ``--specimen demo`` fits the built-in synthetic cell
(generated on first use, no network needed).

Arguments and the output folder are checked before torch is imported (:mod:`cellfit.cli`).
Exit codes: 0 success; 2 bad arguments or data (one line on stderr, no traceback);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from cellfit import cli

__all__ = ["main", "build_parser", "summary_line"]


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m cellfit.fit",
        description="Fit an adaptive LIF neuron to one Allen Cell Types cell (Noise 1 = train, Noise 2 = test).",
    )
    p.add_argument("--specimen", required=True, type=cli.specimen_name,
                   help="Allen specimen id, or demo for the built-in synthetic cell (no download)")
    p.add_argument("--lr", type=cli.positive_float, default=None, help="Adam learning rate (default: FitConfig's)")
    p.add_argument("--init", choices=["voltage", "default"], default="voltage",
                   help="initialise tau_m, gain and bias from the subthreshold voltage, or from fixed defaults")
    cli.add_common(p, "dt", "arp", "engine", "window", "epochs", "model", "restarts", "adapt_search", "bootstrap", "device", "seed", "cache_dir", "out",
                   "no_progress", defaults={"out": "runs/fit"})
    return p


def summary_line(r, cell_dir, total_s: float) -> str:
    """The one line printed after a fit: held-out scores, parameters, work done, where the files are."""
    if not r.is_ok:
        return f"specimen {r.specimen_id} ({r.cell_class}): fit failed: {r.error} -> {cell_dir}"
    gamma = "n/a" if r.gamma is None else f"{r.gamma:.2f}"
    ceiling = "" if r.repeat_ceiling is None else f" (repeat ceiling {r.repeat_ceiling:.2f})"
    phys = r.physical
    return (
        f"specimen {r.specimen_id} ({r.cell_class}): held-out ETV {r.etv:.3f}{ceiling}, Gamma {gamma} "
        f"({r.n_test_repeats} repeats) | {r.model}: tau_m {r.time_constant_text('tau_m_ms', '.1f')}, "
        f"tau_adapt {r.time_constant_text('tau_adapt_ms', '.0f')}{r.other_bounds_text()}, "
        f"adaptation {phys.adapt_mV_per_spike:.2f} mV/spike, R_in {phys.input_resistance_MOhm:.0f} MOhm | "
        f"{r.epochs} epochs, fit {r.fit_seconds:.1f} s, "
        f"total {total_s:.1f} s on {r.device} -> {cell_dir}"
    )


def _validate(args: argparse.Namespace) -> None:
    cli.check_dt_arp(args.dt, args.arp)
    cli.check_fit_options(args)
    cli.check_out_dir(args.out)
    cli.check_cache_dir(args.cache_dir)


def _run(args: argparse.Namespace) -> int:
    # the heavy imports (torch, AllenSDK), deferred so that bad arguments answer first (cellfit.cli)
    from cellfit.data.demo import DEMO_SAMPLING_RATE_HZ
    from cellfit.device import resolve_device
    from cellfit.fit.api import fit_cell
    from cellfit.fit.config import fit_config
    from cellfit.fit.outputs import write_cell_outputs

    t0 = time.perf_counter()
    if args.specimen == "demo":
        cli.check_dt_arp(args.dt, args.arp, interval_ms=1e3 / DEMO_SAMPLING_RATE_HZ, data="the demo cell")
    resolve_device(args.device)  # a missing GPU answers now, not after loading the data
    cfg = fit_config(adapt_search=args.adapt_search, dt_ms=args.dt, arp_ms=args.arp, engine=args.engine,
                     epochs=args.epochs, init=args.init, model=args.model, restarts=args.restarts,
                     bootstrap=args.bootstrap)
    if args.lr is not None:
        cfg = dataclasses.replace(cfg, lr=args.lr)
    fit = fit_cell(args.specimen, config=cfg, window_s=args.window, device=args.device, seed=args.seed,
                   cache_dir=args.cache_dir, progress=not args.no_progress)
    cell_dir = write_cell_outputs(fit, args.out)
    print(summary_line(fit.result, cell_dir, time.perf_counter() - t0))
    return 0


def main(argv=None) -> int:
    return cli.run_main(
        build_parser(), _run, argv, validate=_validate, errors=(OSError,),
        interrupted=lambda a: (f"interrupted: the fit of specimen {a.specimen} stopped (a fit does not resume); "
                               "rerun the same command to fit it again"),
    )


if __name__ == "__main__":
    sys.exit(main())
