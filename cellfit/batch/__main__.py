"""``python -m cellfit.batch --panel paper146 --dt 0.1 --out runs/panel``: fit many cells with Dask.

A thin wrapper of :func:`cellfit.batch.run_batch`: the same command resumes an
interrupted run (cells with an ok result.json are skipped). See
``cellfit/batch/README.md`` for the SLURM/PBS recipe.

Exit codes: 0 every cell fitted; 1 the run finished but some cells failed or are
missing (see RUN_DIR/summary.csv); 2 bad arguments or data, a RUN_DIR holding a
run with another configuration, or a SLURM/PBS cluster that cannot give a worker
(one line on stderr, no traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cellfit.batch",
        description="Fit adaptive LIF neurons to many Allen Cell Types cells with Dask (resumable).",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--panel", help="a named panel ('paper146') or a comma-separated list of specimen ids")
    which.add_argument("--specimens", nargs="+", metavar="ID", help="Allen specimen ids to fit")
    p.add_argument("--dt", type=float, default=0.1, help="simulation time step in ms (0.05-4; default 0.1)")
    p.add_argument("--arp", type=float, default=2.0,
                   help="absolute refractory period in ms, a multiple of --dt (default 2)")
    p.add_argument("--out", required=True, help="run directory: config.json, summary.csv and one folder per cell")
    p.add_argument("--cells-per-task", type=int, default=None,
                   help="cells fitted together in one task (default: 16 on a GPU, 4 on the CPU, "
                        "fewer if that leaves workers idle)")
    p.add_argument("--scheduler", default="local",
                   help="local (processes on this machine), slurm, pbs, or the address of a running "
                        "Dask scheduler, tcp://HOST:PORT (default local)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: half the CPU cores) or slurm/pbs jobs (default 1)")
    p.add_argument("--device", default="auto", help="auto (CUDA if the worker has one), cpu, or cuda")
    p.add_argument("--cache-dir", default=None,
                   help="Allen cache directory, shared with the workers "
                        "(default: $CELLFIT_CACHE or ~/.cache/cellfit/allen)")
    p.add_argument("--seed", type=int, default=0, help="random seed, the same for every cell (default 0)")
    p.add_argument("--epochs", type=int, default=200, help="maximum training epochs per cell (default 200)")
    p.add_argument("--engine", choices=["blocks", "standard"], default="blocks",
                   help="simulation engine: the Block algorithm (fast) or step by step (reference)")
    p.add_argument("--window", type=float, choices=[1.0, 3.0], default=1.0,
                   help="seconds used from each 3 s noise epoch: 1 (as the paper) or 3 (all)")
    p.add_argument("--force", action="store_true",
                   help="RUN_DIR holds a run with other options: replace its config.json and refit every cell")
    p.add_argument("--no-figures", action="store_true", help="do not draw fit.png for each cell (saves ~1 s per cell)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (Dask set-up, chunks, failures)")
    jobs = p.add_argument_group("batch jobs (--scheduler slurm|pbs)")
    jobs.add_argument("--cluster-config", default=None, metavar="FILE.yaml",
                      help="YAML file of job options (queue, walltime, memory, cores, processes, gpus_per_job, "
                           "account, job_extra, job_script_prologue, worker_extra_args, interface, "
                           "local_directory, log_directory, python, start_timeout); the flags below override it")
    jobs.add_argument("--queue", default=None, help="partition (SLURM) or queue (PBS) to submit to")
    jobs.add_argument("--walltime", default=None, help="wall-clock limit per job, HH:MM:SS (default 01:00:00)")
    jobs.add_argument("--memory", default=None, help="memory per job, e.g. 16GB (default 16GB)")
    jobs.add_argument("--cores", type=int, default=None, help="CPU cores per job (default 4)")
    jobs.add_argument("--gpus-per-job", type=int, default=None, help="GPUs per job (default 0)")
    jobs.add_argument("--account", default=None, help="account/project charged for the jobs")
    jobs.add_argument("--start-timeout", type=float, default=None, metavar="SECONDS",
                      help="stop with the scheduler's reason when no worker job has started for this long "
                           "(default 1800; 0: no limit); jobs that fail at start-up stop the run at once")
    return p


def _cluster_options(args):
    from cellfit.batch.cluster import ClusterOptions

    overrides = dict(queue=args.queue, walltime=args.walltime, memory=args.memory, cores=args.cores,
                     gpus_per_job=args.gpus_per_job, account=args.account, start_timeout=args.start_timeout)
    if args.cluster_config:
        return ClusterOptions.from_yaml(args.cluster_config, **overrides)
    return ClusterOptions.from_dict({}, **overrides)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("cellfit").setLevel(logging.INFO if args.verbose else logging.WARNING)
    from cellfit.batch.jobwatch import ClusterError, check_commands

    try:
        check_commands(args.scheduler)  # sbatch/qsub on PATH: answered before the heavy imports
    except ClusterError as exc:
        print(f"cellfit.batch: error: {exc}", file=sys.stderr)
        return 2
    from cellfit.batch.run import run_batch
    from cellfit.data import CellDataError
    from cellfit.fit import FitConfig

    t0 = time.perf_counter()
    try:
        cfg = FitConfig(dt_ms=args.dt, arp_ms=args.arp, engine=args.engine, epochs=args.epochs)
        df = run_batch(
            args.panel if args.panel is not None else args.specimens, cfg, args.out,
            cells_per_task=args.cells_per_task, scheduler=args.scheduler, workers=args.workers, device=args.device,
            cache_dir=args.cache_dir, seed=args.seed, window_s=args.window, force=args.force,
            progress=not args.no_progress, cluster_options=_cluster_options(args), figures=not args.no_figures,
        )
    except (CellDataError, ValueError, OSError, ClusterError) as exc:
        print(f"cellfit.batch: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cellfit.batch: interrupted; rerun the same command to resume ({args.out})", file=sys.stderr)
        return 130
    counts = df.status.value_counts().to_dict()
    ok = df[df.status == "ok"]
    etv = f" | median ETV {ok.etv.median():.3f}" if len(ok) and ok.etv.notna().any() else ""
    others = ", ".join(f"{n} {s}" for s, n in counts.items() if s != "ok")
    print(f"cellfit.batch: {len(df)} cells: {counts.get('ok', 0)} ok" + (f", {others}" if others else "")
          + f"{etv} | {time.perf_counter() - t0:.1f} s -> {args.out}/summary.csv")
    if len(ok) < len(df):
        bad = df[df.status != "ok"]
        for row in bad.head(10).itertuples():
            print(f"  {row.specimen_id}: {row.status}: {row.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
