"""``python -m cellfit.fit --specimen ID --dt 0.1``: fit one cell and write its results.

Fits an ALIF neuron to the cell's Noise 1 sweeps, scores it by ETV on the held-out
Noise 2 sweeps, writes ``<out>/<ID>/{result.json, model.pt, predictions.nwb, fit.png}``
and prints one summary line. ``--specimen demo`` fits the built-in synthetic cell
(generated on first use, no network needed).

Exit codes: 0 success; 2 bad arguments or data (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

__all__ = ["main", "build_parser", "summary_line"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cellfit.fit",
        description="Fit an adaptive LIF neuron to one Allen Cell Types cell (Noise 1 = train, Noise 2 = test).",
    )
    p.add_argument("--specimen", required=True, help="Allen specimen id, or 'demo' for the built-in synthetic cell")
    p.add_argument("--dt", type=float, default=0.1, help="simulation time step in ms (0.05-4; default 0.1)")
    p.add_argument("--arp", type=float, default=2.0, help="absolute refractory period in ms, a multiple of --dt (default 2)")
    p.add_argument("--engine", choices=["blocks", "standard"], default="blocks",
                   help="simulation engine: the Block algorithm (fast) or step by step (reference)")
    p.add_argument("--window", type=float, choices=[1.0, 3.0], default=1.0,
                   help="seconds used from each 3 s noise epoch: 1 (as the paper) or 3 (all)")
    p.add_argument("--epochs", type=int, default=200, help="maximum training epochs (default 200)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: FitConfig's)")
    p.add_argument("--init", choices=["voltage", "default"], default="voltage",
                   help="initialise tau_m, gain and bias from the subthreshold voltage, or from fixed defaults")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, or cuda[:N]")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same device: same result)")
    p.add_argument("--cache-dir", default=None,
                   help="Allen cache directory (default: $CELLFIT_CACHE or ~/.cache/cellfit/allen)")
    p.add_argument("--out", default="runs/fit", help="output directory (default runs/fit)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
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
        f"({r.n_test_repeats} repeats) | tau_m {r.tau_m_ms:.1f} ms, tau_adapt {r.tau_adapt_ms:.0f} ms, "
        f"adaptation {phys.adapt_mV_per_spike:.2f} mV/spike, R_in {phys.input_resistance_MOhm:.0f} MOhm | "
        f"{r.epochs} epochs, fit {r.fit_seconds:.1f} s, total {total_s:.1f} s on {r.device} -> {cell_dir}"
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from cellfit.data import CellDataError
    from cellfit.fit.api import fit_cell
    from cellfit.fit.fitter import FitConfig
    from cellfit.fit.outputs import write_cell_outputs

    t0 = time.perf_counter()
    try:
        cfg = FitConfig(dt_ms=args.dt, arp_ms=args.arp, engine=args.engine, epochs=args.epochs, init=args.init)
        if args.lr is not None:
            cfg = dataclasses.replace(cfg, lr=args.lr)
        fit = fit_cell(args.specimen, config=cfg, window_s=args.window, device=args.device, seed=args.seed,
                       cache_dir=args.cache_dir, progress=not args.no_progress)
        cell_dir = write_cell_outputs(fit, args.out)
    except (CellDataError, ValueError) as exc:
        print(f"cellfit.fit: error: {exc}", file=sys.stderr)
        return 2
    print(summary_line(fit.result, cell_dir, time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
