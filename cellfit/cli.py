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

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pathlib
import re
import signal
import sys
import threading
import warnings
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from cellfit.data.errors import CellDataError
from cellfit.data.protocol import DT_MAX_MS, DT_MIN_MS
from cellfit.names import DEFAULT_ENGINE, ENGINE_NAMES
from cellfit.timegrid import fmt_ms, suggest_dt_arp

__all__ = [
    "UsageError", "ArgumentParser", "LazyChoices", "add_common", "add_cell_source", "add_deprecated_alias",
    "COMMON_FLAGS", "positive_float", "positive_int", "nonneg_int", "device_name", "scheduler_name",
    "specimen_name", "check_dt_arp", "check_out_dir", "check_cache_dir", "check_specimens", "run_main",
    "TRACEBACK_ENV", "check_lazy_choices"
]

#: set this environment variable to see the traceback of an error instead of its one line
TRACEBACK_ENV = "CELLFIT_TRACEBACK"

#: what a Ctrl-C prints: a fixed line, or one built from the parsed arguments
Interrupted = Union[str, Callable[[argparse.Namespace], str]]


class UsageError(ValueError):
    """A bad argument found after parsing: the message names the thing and the fix (exit code 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``<prog>: error: <message>``, exit code 2, no usage dump).

    ``epilog_factory``: a function returning the epilog, called only when ``--help`` is
    printed (so it may import heavy modules).
    """

    def __init__(self, *args, epilog_factory: Optional[Callable[[], str]] = None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self._epilog_factory = epilog_factory

    def format_help(self) -> str:
        if self._epilog_factory is not None:
            self.epilog, self._epilog_factory = self._epilog_factory(), None
        return super().format_help()

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


class LazyChoices:
    """The choices of a flag, defined in a module that is slow to import (``module``'s ``attr``).

    While parsing every value is accepted, so that a misspelt flag elsewhere answers at
    once; :func:`run_main` checks the value against the real choices after the light
    checks (an unknown one: ``invalid choice``, exit 2) and ``--help`` lists them. Give the
    argument a ``metavar`` (argparse would otherwise list the choices when the argument is
    added) and write ``%(choices)s`` in its help.
    """

    def __init__(self, module: str, attr: str, *, sort: bool = False):
        self.module, self.attr, self.sort = module, attr, sort
        self._values: Optional[list[str]] = None

    def values(self) -> list[str]:
        if self._values is None:
            values = [str(v) for v in getattr(importlib.import_module(self.module), self.attr)]
            self._values = sorted(values) if self.sort else values
        return self._values

    def __contains__(self, value) -> bool:
        return True  # checked after parsing, see check_lazy_choices

    def __iter__(self):
        return iter(self.values())

    def __len__(self) -> int:
        return len(self.values())


def check_lazy_choices(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` for a value of a :class:`LazyChoices` flag that is not a choice."""
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its actions there
        if not isinstance(action.choices, LazyChoices):
            continue
        given = getattr(args, action.dest, None)
        for value in given if isinstance(given, (list, tuple)) else [given]:
            if value is not None and value != action.default and value not in action.choices.values():
                name = "/".join(action.option_strings) or action.dest
                options = ", ".join(map(repr, action.choices.values()))
                raise UsageError(f"argument {name}: invalid choice: {value!r} (choose from {options})")


# --------------------------------------------------------------------------
# value types (argparse ``type=``): the message names the rule
# --------------------------------------------------------------------------
def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _whole(text, 1)


def nonneg_int(text: str) -> int:
    """A whole number >= 0."""
    return _whole(text, 0)


_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether that device exists is checked later, with torch)."""
    value = text.strip().lower()
    if not _DEVICE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda or cuda:N (e.g. cuda:0)")
    return value


_SCHEDULERS = ("local", "slurm", "pbs")


def scheduler_name(text: str) -> str:
    """``local``, ``slurm``, ``pbs`` or the address of a running Dask scheduler (``tcp://HOST:PORT``)."""
    value = text.strip()
    if value.lower() not in _SCHEDULERS and ":" not in value:
        raise argparse.ArgumentTypeError(
            f"unknown scheduler {text!r}; use local, slurm, pbs or a scheduler address tcp://HOST:PORT")
    return value


def specimen_name(text: str) -> str:
    """An Allen specimen id (digits) or ``demo`` (the built-in synthetic cell)."""
    value = text.strip()
    if value.lower() == "demo":
        return "demo"
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected an Allen specimen id (a positive whole number, e.g. 485909730) or demo, got {text!r}")
    return str(int(value))


# --------------------------------------------------------------------------
# the common flags
# --------------------------------------------------------------------------
_CACHE_HELP = "Allen cache directory (default: $CELLFIT_CACHE or ~/.cache/cellfit/allen)"

#: name -> (option strings, argparse keyword arguments); ``{default}`` in a help text is
#: replaced by the default (or the command line's ``default_text``)
COMMON_FLAGS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "dt": (("--dt",), dict(
        type=positive_float, default=0.1, metavar="MS",
        help=f"simulation time step in ms ({fmt_ms(DT_MIN_MS)}-{fmt_ms(DT_MAX_MS)} for recordings; "
             "default {default})")),
    "arp": (("--arp",), dict(
        type=positive_float, default=2.0, metavar="MS",
        help="absolute refractory period in ms, a whole multiple of --dt (default {default})")),
    "engine": (("--engine",), dict(
        choices=ENGINE_NAMES, default=DEFAULT_ENGINE,
        help="simulation engine: blocks (the Block algorithm, fast) or standard (step by step, the reference; "
             "default {default})")),
    "epochs": (("--epochs",), dict(
        type=positive_int, default=200, metavar="N", help="maximum training epochs (default {default})")),
    "restarts": (("--restarts",), dict(
        type=positive_int, default=3, metavar="N",
        help="candidate fits per cell from different starting points; the one that predicts held-out Noise 1 "
             "seconds best is kept (default {default})")),
    "bootstrap": (("--bootstrap",), dict(
        type=nonneg_int, default=6, metavar="N",
        help="refits on resampled training traces for parameter intervals (0: no intervals, faster; "
             "default {default})")),
    "window": (("--window",), dict(
        type=float, choices=[1.0, 3.0], default=1.0, metavar="S",
        help="seconds used from each 3 s noise epoch: 1 (as the paper) or 3 (all; default {default})")),
    "device": (("--device",), dict(
        type=device_name, default="auto", metavar="DEVICE",
        help="auto (CUDA when a GPU is visible, else the CPU), cpu, cuda or cuda:N (default {default})")),
    "seed": (("--seed",), dict(
        type=nonneg_int, default=0,
        help="random seed: the same seed on the same device gives the same result (default {default})")),
    "out": (("--out",), dict(
        metavar="DIR", help="output folder, created if missing (default {default})")),
    "cache_dir": (("--cache-dir",), dict(metavar="DIR", default=None, help=_CACHE_HELP)),
    "scheduler": (("--scheduler",), dict(
        type=scheduler_name, default="local",
        help="local (processes on this machine), slurm, pbs, or the address of a running Dask scheduler, "
             "tcp://HOST:PORT (default {default})")),
    "workers": (("--workers",), dict(
        type=positive_int, default=None, metavar="N",
        help="Dask workers: local processes (default: half the CPU cores) or slurm/pbs jobs (default 1)")),
    "cells_per_task": (("--cells-per-task",), dict(
        type=positive_int, default=None, metavar="K",
        help="cells fitted together in one task (default: 16 on a GPU, 4 on the CPU, fewer if that leaves "
             "workers idle)")),
    "synthetic_model": (("--synthetic-model",), dict(
        choices=["adex", "alif", "mixed"], default="adex",
        help="generator of the --synthetic cells: adex (outside the ALIF family), alif (inside it, known truth) "
             "or mixed (default {default})")),
    "force": (("--force",), dict(
        action="store_true",
        help="--out holds a run with other options: replace its configuration and refit every cell")),
    "no_figures": (("--no-figures",), dict(
        action="store_true", help="do not draw fit.png for each cell (saves about 1 s per cell)")),
    "no_progress": (("--no-progress",), dict(action="store_true", help="hide the progress bar")),
}

COMMON_TITLE = "common options (the same in every cellfit command line)"


def _add_flag(container, name: str, default=None, has_default: bool = False, text: Optional[str] = None,
              shown: Optional[str] = None, required: bool = False) -> None:
    flags, kwargs = COMMON_FLAGS[name]
    kwargs = dict(kwargs)
    if has_default:
        kwargs["default"] = default
    if required:
        kwargs.pop("default", None)
        kwargs["required"] = True
    text = kwargs.get("help", "") if text is None else text
    if shown is None:
        value = kwargs.get("default")
        shown = "required" if required else (fmt_ms(value) if isinstance(value, float) else str(value))
    text = text.replace("{default}", shown)
    kwargs["help"] = text if "%(" in text else text.replace("%", "%%")
    container.add_argument(*flags, **kwargs)


def add_common(parser: argparse.ArgumentParser, *names: str, defaults: Optional[Mapping[str, Any]] = None,
               default_text: Optional[Mapping[str, str]] = None, required: Iterable[str] = (),
               help: Optional[Mapping[str, str]] = None) -> argparse._ArgumentGroup:  # noqa: A002 - argparse's word
    """Add the :data:`COMMON_FLAGS` ``names`` to ``parser``, in one group, in the order given.

    ``defaults`` overrides a default (e.g. ``{"out": "runs/fit"}``), ``default_text``
    the way a default is described (``{"dt": "the data set's"}``), ``help`` a whole
    help text; ``required`` names flags without a default. Returns the group.
    """
    defaults, default_text, help = dict(defaults or {}), dict(default_text or {}), dict(help or {})
    required = set(required)
    unknown = (set(names) | set(defaults) | set(default_text) | set(help) | required) - set(COMMON_FLAGS)
    if unknown:
        raise ValueError(f"unknown common flag(s) {sorted(unknown)}; known: {sorted(COMMON_FLAGS)}")
    group = next((g for g in parser._action_groups if g.title == COMMON_TITLE), None)  # noqa: SLF001
    group = group or parser.add_argument_group(COMMON_TITLE)
    for name in names:
        _add_flag(group, name, defaults.get(name), name in defaults, help.get(name), default_text.get(name),
                  name in required)
    return group


def add_cell_source(parser: argparse.ArgumentParser, what: str = "cells to fit") -> None:
    """The choice of cells of the batch command lines: ``--panel`` | ``--specimens`` | ``--synthetic N``.

    ``--specimens demo`` (also spelt ``--specimen demo``) is the built-in synthetic demo cell
    and ``--synthetic N`` an N-cell synthetic panel (``--synthetic-model``): both need no
    download.
    """
    group = parser.add_argument_group(what)
    src = group.add_mutually_exclusive_group(required=True)
    src.add_argument("--panel", help="a named panel ('paper146') or a comma-separated list of specimen ids")
    src.add_argument("--specimens", "--specimen", nargs="+", type=specimen_name, metavar="ID",
                     help="Allen specimen ids, or demo for the built-in synthetic cell (no download)")
    src.add_argument("--synthetic", type=positive_int, metavar="N",
                     help="N synthetic cells generated under --out (no download; see --synthetic-model)")
    _add_flag(group, "synthetic_model")


class _DeprecatedAlias(argparse.Action):
    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs) -> None:
    """Accept the old spelling ``old`` of ``new`` (hidden from --help; a one-line warning when used)."""
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


# --------------------------------------------------------------------------
# checks after parsing (light: no torch, no data)
# --------------------------------------------------------------------------
def check_dt_arp(dt_ms: float, arp_ms: Optional[float] = None, *, interval_ms: Optional[float] = None,
                 data: str = "the data", dt_range: Optional[tuple[float, float]] = (DT_MIN_MS, DT_MAX_MS),
                 dt_flag: str = "--dt", arp_flag: str = "--arp") -> None:
    """Raise :class:`UsageError` unless DT and the ARP satisfy :mod:`cellfit.timegrid`'s rules.

    The message suggests values that satisfy every rule. ``dt_range`` None skips the
    recordings' DT range (for command lines that do not bin recordings); ``interval_ms``
    is the data's sampling interval when it is known before loading.
    """
    problem = suggest_dt_arp(dt_ms, arp_ms, dt_range=dt_range or (0.0, float("inf")), interval_ms=interval_ms,
                             data=data, dt_flag=dt_flag, arp_flag=arp_flag)
    if problem is not None:
        raise UsageError(f"{problem.problem}; {problem.fix}")


def _exists(path: pathlib.Path, flag: str) -> bool:
    try:
        return path.exists()
    except OSError as exc:  # e.g. a parent folder that cannot be searched
        raise UsageError(f"cannot check {flag} {path} ({exc.strerror}); choose another {flag}") from None


def _writable(folder: pathlib.Path) -> bool:
    # os.access asks the kernel with the real ids; root passes it everywhere but on read-only file systems
    return os.access(folder, os.W_OK | os.X_OK)


def check_out_dir(path: Union[str, os.PathLike], flag: str = "--out") -> pathlib.Path:
    """Raise :class:`UsageError` unless ``path`` is, or can be created as, a writable folder.

    Creates nothing: a missing folder needs its nearest existing parent to be a
    writable folder. Returns the path.
    """
    out = pathlib.Path(path).expanduser()
    if _exists(out, flag):
        if not out.is_dir():
            raise UsageError(f"{flag} {path} is a file, not a folder; give a folder (created if missing) "
                             "or move the file away")
        if not _writable(out):
            raise UsageError(f"{flag} {path} is not writable; choose another {flag} or make it writable")
        return out
    parent = out.absolute().parent
    while not _exists(parent, flag):
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"cannot create {flag} {path}: {parent} is a file; choose another {flag}")
    if not _writable(parent):
        raise UsageError(f"cannot create {flag} {path}: {parent} is not writable; choose another {flag}")
    return out


def check_cache_dir(path: Optional[Union[str, os.PathLike]], flag: str = "--cache-dir") -> None:
    """Raise :class:`UsageError` if ``path`` exists and is not a folder (a missing one is the data layer's call)."""
    if path is not None:
        p = pathlib.Path(path).expanduser()
        if _exists(p, flag) and not p.is_dir():
            raise UsageError(f"{flag} {path} is a file, not a folder; give the folder of an Allen cache")


def check_specimens(specimens: Optional[Sequence[str]], flag: str = "--specimens") -> None:
    """``demo`` stands alone (it lives in its own cache): raise :class:`UsageError` if it is mixed with ids."""
    if specimens and "demo" in specimens and len(specimens) > 1:
        raise UsageError(f"{flag} demo is the built-in demo cell, which lives in its own cache; give it alone "
                         f"({flag} demo) or give Allen ids only")


# --------------------------------------------------------------------------
# the frame of every command line
# --------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _quiet_after_ctrl_c():
    """On the first Ctrl-C, mute warnings and log records below ERROR, then raise KeyboardInterrupt.

    What a library prints while it tears down after an interrupt (Dask closing its workers,
    leaked-resource warnings) is not news to the user; the one line of :func:`run_main` is.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # someone else handles Ctrl-C (or it cannot be handled here)
        return
    muted = []

    def on_sigint(signum, frame):
        if not muted:
            muted.append(True)
            logging.disable(logging.WARNING)
            warnings.simplefilter("ignore")
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if muted:
            logging.disable(logging.NOTSET)


def run_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], Optional[int]],
             argv: Optional[Sequence[str]] = None, *,
             validate: Optional[Callable[[argparse.Namespace], None]] = None,
             interrupted: Interrupted = "interrupted; nothing to resume, rerun the command to start again",
             errors: tuple[type[BaseException], ...] = ()) -> int:
    """Parse ``argv``, ``validate`` the arguments, then ``run(args)``; return the exit code.

    - ``--help``: its exit code (0); a parse error: argparse's one line, 2;
    - :class:`UsageError`, :class:`cellfit.data.CellDataError`, ``ValueError`` and the
      command line's own ``errors``, from the checks or from ``run``: one line
      ``<prog>: error: ...`` on stderr, 2 (no traceback);
    - Ctrl-C (``KeyboardInterrupt``) at any point: one line ``<prog>: <interrupted>``, 130
      (warnings and log records below ERROR printed while the work winds down are muted);
    - otherwise what ``run`` returns (None counts as 0).

    ``interrupted`` says what stopped and how to resume: a string, or a function of the
    parsed arguments. With ``$CELLFIT_TRACEBACK`` set, errors keep their traceback (for
    reporting a bug).
    """
    args = None
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, or a parse error already printed as one line
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if validate is not None:
            validate(args)
        check_lazy_choices(parser, args)
        with _quiet_after_ctrl_c():
            code = run(args)
        return 0 if code is None else int(code)
    except KeyboardInterrupt:
        if callable(interrupted):
            message = interrupted(args) if args is not None else "interrupted"
        else:
            message = interrupted
        print(f"{parser.prog}: {message}", file=sys.stderr)
        return 130
    except (UsageError, CellDataError, ValueError, *errors) as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"{parser.prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """The SLURM/PBS job options (``--cluster-config``, ``--queue``, ...) of the commands that run batches."""
    jobs = parser.add_argument_group("batch jobs (--scheduler slurm|pbs)")
    jobs.add_argument("--cluster-config", default=None, metavar="FILE.yaml",
                      help="YAML file of job options (queue, walltime, memory, cores, processes, gpus_per_job, "
                           "account, job_extra, job_script_prologue, worker_extra_args, interface, "
                           "local_directory, log_directory, python, start_timeout); the flags below override it")
    jobs.add_argument("--queue", default=None, help="partition (SLURM) or queue (PBS) to submit to")
    jobs.add_argument("--walltime", default=None, help="wall-clock limit per job, HH:MM:SS (default 01:00:00)")
    jobs.add_argument("--memory", default=None, help="memory per job, e.g. 16GB (default 16GB)")
    jobs.add_argument("--cores", type=positive_int, default=None, help="CPU cores per job (default 4)")
    jobs.add_argument("--gpus-per-job", type=nonneg_int, default=None, help="GPUs per job (default 0)")
    jobs.add_argument("--account", default=None, help="account/project charged for the jobs")
    jobs.add_argument("--start-timeout", type=float, default=None, metavar="SECONDS",
                      help="stop with the scheduler's reason when no worker job has started for this long "
                           "(default 1800; 0: no limit); jobs that fail at start-up stop the run at once")


def check_cluster_options(args: argparse.Namespace) -> None:
    """Before any work: the ``--cluster-config`` file exists and the scheduler's commands are on PATH."""
    from cellfit.batch.jobwatch import check_commands  # light: no Dask, no torch

    if args.cluster_config and not pathlib.Path(args.cluster_config).is_file():
        why = "is not a file" if pathlib.Path(args.cluster_config).exists() else "does not exist"
        raise UsageError(f"--cluster-config {args.cluster_config} {why}; give a YAML file of job options")
    check_commands(args.scheduler)

