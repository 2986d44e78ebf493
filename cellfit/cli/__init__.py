"""What every command line shares: the common flags, checks before work, one-line errors, exit codes.

Every cellfit command line (``python -m cellfit.fit``, ``cellfit.batch``, ``cellfit.data``,
``pipelines.benchmark``, ``pipelines.classify``, ``pipelines.ephys_sweep``) is built the same way::

    from cellfit import cli

    def build_parser():
        p = cli.ArgumentParser(prog="python -m cellfit.fit", description=...)
        p.add_argument("--specimen", ...)                          # its own flags
        cli.add_common(p, "dt", "arp", "device", "seed", "out", defaults={"out": "runs/fit"})
        return p

    def _validate(args):            # light checks: values, the output folder
        cli.check_dt_arp(args.dt, args.arp)
        cli.check_out_dir(args.out)

    def _run(args):                 # the heavy imports (torch, AllenSDK, Dask), then the work
        from cellfit.fit.api import fit_cell
        ...

    def main(argv=None):
        return cli.run_main(build_parser(), _run, argv, validate=_validate, interrupted=...)

So the order is always: parse, check (both with light imports only: this module, argparse,
pathlib), then import the heavy modules (in the CLI's ``_run``, the one place where a
command line imports lazily), then work. A misspelt flag, a value out of range or an
unwritable ``--out`` answers in well under a second, before torch is loaded. The package
``__init__`` files import their exports on first use (:mod:`cellfit._lazy`) for the same
reason. Flags whose choices live in a heavy module use :class:`LazyChoices`.

Common flags (:data:`COMMON_FLAGS`, :func:`add_common`) have the same name, type, unit,
help and default in every command line that takes them (``--workers`` always means Dask
workers; ``--device`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` everywhere).

Exit codes (:func:`run_main`): 0 success; 1 the run finished but found failures (command
specific); 2 bad arguments or data: one line ``<prog>: error: <what> ...; <fix>`` on stderr,
no traceback; 130 interrupted (Ctrl-C): one line saying what stopped and how to resume.
"""

from cellfit.cli.checks import (
    UsageError,
    check_cache_dir,
    check_cluster_options,
    check_dt_arp,
    check_fit_options,
    check_out_dir,
    check_specimens,
)
from cellfit.cli.flags import (
    COMMON_FLAGS,
    ArgumentParser,
    LazyChoices,
    add_cell_source,
    add_cluster_options,
    add_common,
    add_deprecated_alias,
    check_lazy_choices,
    device_name,
    nonneg_int,
    positive_float,
    positive_int,
    scheduler_name,
    specimen_name,
)
from cellfit.cli.main import TRACEBACK_ENV, run_main

__all__ = [
    "UsageError", "ArgumentParser", "LazyChoices", "add_common", "add_cell_source", "add_deprecated_alias",
    "add_cluster_options", "COMMON_FLAGS", "positive_float", "positive_int", "nonneg_int", "device_name",
    "scheduler_name", "specimen_name", "check_dt_arp", "check_fit_options", "check_out_dir", "check_cache_dir",
    "check_specimens", "check_cluster_options", "run_main", "TRACEBACK_ENV", "check_lazy_choices",
]
