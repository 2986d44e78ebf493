"""Speed benchmark of the Block vs standard ALIF engines (and peer libraries): ``python -m pipelines.benchmark``.

A thin command line over :mod:`cellfit.bench`: it parses the flags, builds a frozen
:class:`cellfit.bench.BenchmarkConfig`, calls :func:`cellfit.bench.run_benchmark` and
writes under ``--out``:

- ``results.csv``: one row per configuration and system (written atomically after every
  configuration, so a long run leaves its finished rows behind);
- ``speedup_vs_arp.png`` and, when network size varies, ``speedup_vs_size.png``
  (:func:`cellfit.figures.speed.plot_speedups`).

Without flags it runs the small default grid (minutes on 2 CPU cores, with a progress bar
and an ETA); ``--full`` runs the paper's Figure 3 grid (hours on a CPU: a GPU job).
``--peers all`` adds Norse, snnTorch and SpikingJelly on the same inputs (those installed;
each missing one is skipped with one line). It prints a short table and which grid ran at
the end. Arguments and the output folder are checked before torch is imported
(:mod:`cellfit.cli`). Exit codes: 0 success; 1 the engines disagreed in float64 (a
correctness failure); 2 bad arguments (one line on stderr); 130 interrupted.

Examples::

    python -m pipelines.benchmark                      # small default grid
    python -m pipelines.benchmark --quick --device cpu
    python -m pipelines.benchmark --grid paper-synthetic --repeats 5 --peers all
    python -m pipelines.benchmark --full --device cuda

See ``cellfit/bench/README.md`` for what each grid measures and how to read the CSV.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from cellfit import cli
from cellfit.names import DEFAULT_GRID, ENGINE_NAMES, FULL_GRID, PEER_NAMES

logger = logging.getLogger("pipelines.benchmark")

QUICK_REPEATS, QUICK_WARMUP = 2, 1
SMALL_REPEATS, SMALL_WARMUP = 3, 1  # the default grid: minutes on 2 CPU cores
DEFAULT_REPEATS, DEFAULT_WARMUP = 10, 2


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m pipelines.benchmark",
        description="Time the Block and standard ALIF engines (forward and training step) on synthetic "
        "Poisson input, after checking in float64 that both give identical spikes.",
    )
    cli.add_common(p, "out", "device", "seed", default_text={"out": "runs/benchmark/<grid>"},
                   help={"seed": "base seed of the Poisson inputs and network parameters (also seeds torch and "
                                 "numpy; default 0)"})
    p.add_argument("--grid", default=None, metavar="NAME", choices=cli.LazyChoices("cellfit.bench", "GRIDS", sort=True),
                   help=f"named set of configurations: %(choices)s (default: {DEFAULT_GRID}, minutes on 2 CPU "
                   "cores; see cellfit/bench/README.md)")
    p.add_argument("--full", action="store_true",
                   help=f"the paper's full Figure 3 grid (= --grid {FULL_GRID}; about 4.5 h on 2 CPU cores)")
    p.add_argument("--quick", action="store_true",
                   help=f"tiny grid that runs in seconds on a CPU (= --grid quick, --repeats {QUICK_REPEATS}, "
                   f"--warmup {QUICK_WARMUP} unless given)")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed runs per configuration, system and measurement (default {DEFAULT_REPEATS}, "
                   f"{SMALL_REPEATS} on the default grid; the median and IQR are over these)")
    p.add_argument("--warmup", type=int, default=None,
                   help=f"untimed warm-up runs before timing (default {DEFAULT_WARMUP}, {SMALL_WARMUP} on the "
                   "default grid)")
    p.add_argument("--peers", nargs="+", choices=[*PEER_NAMES, "all"], default=[], metavar="PEER",
                   help="also time other libraries on the same inputs and weights: "
                   f"{', '.join(PEER_NAMES)} or all (installed by the 'peers' extra; a missing one is "
                   "skipped with one line)")
    p.add_argument("--engines", nargs="+", choices=ENGINE_NAMES, default=list(ENGINE_NAMES),
                   help="engines to time; 'standard' is the speedup baseline (the float64 check always runs both)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision of the timed runs")
    p.add_argument("--time-budget", type=cli.positive_float, default=None, metavar="SECONDS",
                   help="stop repeating a measurement once its timed runs have used this many seconds "
                   "(at least one run is timed; the CSV records how many ran)")
    p.add_argument("--max-run-seconds", type=cli.positive_float, default=None, metavar="SECONDS",
                   help="skip a measurement whose warm-up run takes longer than this (NaN times and a note "
                   "in the CSV) instead of repeating it")
    p.add_argument("--lengths", type=int, nargs="+", default=None, metavar="T",
                   help="replace the grid's simulation lengths (time steps)")
    p.add_argument("--arp-steps", type=int, nargs="+", default=None, metavar="STEPS",
                   help="replace the grid's ARP lengths (time steps; DT 0.1 ms, so 10 steps = 1 ms)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None, metavar="B",
                   help="replace the grid's batch sizes")
    p.add_argument("--hidden", type=int, nargs="+", default=None, metavar="H",
                   help="replace the grid's hidden units per layer")
    p.add_argument("--layers", type=int, nargs="+", default=None, metavar="L",
                   help="replace the grid's numbers of layers")
    p.add_argument("--connectivity", nargs="+", choices=("recurrent", "feedforward"), default=None,
                   help="replace the grid's connectivity")
    p.add_argument("--block-kernel", choices=("auto", "torch", "triton", "blockwise"), default="auto",
                   help="the Block engine's kernel: 'auto' = fused Triton kernel on CUDA, blockwise on a CPU; "
                        "'torch' = the PyTorch loop with the FFT replay (the reference)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch during the run (default: torch's own choice, usually one per core)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p  # fmt: skip


def _grid_name(args: argparse.Namespace) -> str:
    if args.quick and args.grid not in (None, "quick"):
        raise cli.UsageError(f"--quick runs the 'quick' grid; it cannot be combined with --grid {args.grid}")
    if args.full and (args.quick or args.grid not in (None, FULL_GRID)):
        raise cli.UsageError(f"--full runs the '{FULL_GRID}' grid; it cannot be combined with "
                             + ("--quick" if args.quick else f"--grid {args.grid}"))
    return "quick" if args.quick else FULL_GRID if args.full else (args.grid or DEFAULT_GRID)


def _validate(args: argparse.Namespace) -> None:
    cli.check_out_dir(args.out if args.out is not None else Path("runs") / "benchmark" / _grid_name(args))


def _config(bench, args: argparse.Namespace, peers: tuple[str, ...]):
    """The :class:`cellfit.bench.BenchmarkConfig` of the flags (``bench``: the imported module)."""
    grid_name = _grid_name(args)
    repeats, warmup = {"quick": (QUICK_REPEATS, QUICK_WARMUP), DEFAULT_GRID: (SMALL_REPEATS, SMALL_WARMUP)}.get(
        grid_name, (DEFAULT_REPEATS, DEFAULT_WARMUP))
    repeats = args.repeats if args.repeats is not None else repeats
    warmup = args.warmup if args.warmup is not None else warmup
    recurrent = None if args.connectivity is None else [c == "recurrent" for c in dict.fromkeys(args.connectivity)]
    cases = bench.override_cases(
        bench.grid(grid_name),
        T=args.lengths,
        arp_steps=args.arp_steps,
        batch=args.batch_sizes,
        hidden=args.hidden,
        layers=args.layers,
        recurrent=recurrent,
    )
    return bench.BenchmarkConfig(
        cases=cases,
        engines=tuple(dict.fromkeys(args.engines)),
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
        repeats=repeats,
        warmup=warmup,
        time_budget_s=args.time_budget,
        max_run_s=args.max_run_seconds,
        grid_name=grid_name,
        progress=not args.no_progress,
        threads=args.threads,
        block_kernel=args.block_kernel,
        peers=peers,
    )


def _run(args: argparse.Namespace) -> int:
    # the heavy imports (torch), deferred so that bad arguments answer first (cellfit.cli)
    import random

    import numpy as np
    import torch

    from cellfit import bench
    from cellfit.bench.report import grid_summary, peer_table
    from cellfit.device import resolve_device
    from cellfit.figures.speed import plot_speedups
    from cellfit.functional.alif import resolve_block_kernel

    peers, skipped = bench.resolve_peers(args.peers)
    config = _config(bench, args, peers)
    device = resolve_device(config.device)  # fail early, before any work
    try:
        resolve_block_kernel(config.block_kernel, device)
    except RuntimeError as exc:  # e.g. the Triton kernel without a GPU
        raise cli.UsageError(str(exc)) from exc

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed % 2**32)
    random.seed(args.seed)

    out = Path(args.out) if args.out is not None else Path("runs") / "benchmark" / config.grid_name
    csv_path = out / "results.csv"
    for line in skipped:
        print(line, file=sys.stderr)
    n_other = sum(c.task != "spike_count" for c in config.cases)
    if config.peers and n_other:
        print(f"peers skipped on {n_other} configuration(s) of another task than the synthetic network "
              "(they run the spike_count task only)", file=sys.stderr)
    systems = config.engines + config.peers
    print(
        f"benchmark: grid {config.grid_name!r}, {len(config.cases)} configuration(s) x {len(systems)} system(s) "
        f"({', '.join(systems)}) "
        f"on {bench.device_name(device, config.threads)} (block kernel: "
        f"{resolve_block_kernel(config.block_kernel, device)}), {config.dtype}, repeats {config.repeats}, "
        f"warm-up {config.warmup} -> {out}",
        file=sys.stderr,
    )
    try:
        df = bench.run_benchmark(config, on_case=lambda partial: bench.write_csv_atomic(partial, csv_path))
    except bench.SpikeMismatchError as exc:
        print(f"python -m pipelines.benchmark: FAILED: {exc}", file=sys.stderr)
        return 1
    bench.write_csv_atomic(df, csv_path)
    plots = plot_speedups(df, out)
    print(bench.summary_table(df))
    if config.peers:
        print("systems side by side (time relative to the fastest per configuration; spikes = unequal work):")
        print(peer_table(df).to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-"))
    for note in df.loc[df["note"].astype(str).str.len() > 0, ["case", "engine", "note"]].itertuples(index=False):
        print(f"note: case {note.case} {note.engine}: {note.note}")
    print(grid_summary(config.grid_name, len(config.cases), len(systems)))
    print(f"wrote {csv_path}" + "".join(f", {p}" for p in plots))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark CLI; returns the exit status (0 ok, 1 engines disagree, 2 bad arguments, 130 Ctrl-C)."""
    return cli.run_main(build_parser(), _run, argv, validate=_validate,
                        interrupted="interrupted; results.csv under --out keeps the configurations finished so "
                                    "far (a rerun starts again)")


if __name__ == "__main__":
    sys.exit(main())
