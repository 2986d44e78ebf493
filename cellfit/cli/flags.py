"""The parser and the flags every command line shares (same names, types, units, help and defaults)."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import Any, Callable, Iterable, Mapping, Optional

from cellfit.data.protocol import DT_MAX_MS, DT_MIN_MS
from cellfit.names import DEFAULT_ENGINE, ENGINE_NAMES, MODEL_NAMES
from cellfit.timegrid import fmt_ms
from cellfit.cli.checks import UsageError


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
    "model": (("--model",), dict(
        choices=("auto", *MODEL_NAMES), default=None, metavar="NAME",
        help="model variant: " + ", ".join(("auto", *MODEL_NAMES)) + "; default: alif, and for a cell whose "
             "training spikes burst (20% of its intervals under 10 ms) also alif_asc from two bursting starts and "
             "alif_reset_asc from resets of 0.8 and 1.4 (a cell under 30% keeps its alif_sub starts too), an "
             "extension kept where it predicts the training window better "
             "(ETV) than the ALIF fit, and alif_sub for a cell whose voltage shows a subthreshold current "
             "(explained 0.15 better in R^2 with it, the plain fit explaining at least half; 0.05-0.15 better, or "
             "0.15 better where the plain fit explains 0.3-0.5: fitted both ways, alif_sub kept where its "
             "training loss is 5% lower); a variant named here is fitted alone; auto "
             "runs the default's search in every variant and keeps an extension only where its training loss is "
             "5% below the ALIF fit's (about 3.5x the time; FITTING.md); with --restarts N, the variant and start "
             "that predict held-out Noise 1 seconds best")),
    "restarts": (("--restarts",), dict(
        type=positive_int, default=None, metavar="N",
        help="fit from the N best starting points of the initial grid and keep the one that predicts held-out "
             "Noise 1 seconds best (1: one start, 0.65-0.85x the default's time, tau_adapt often too short); "
             "default: one start per adaptation time constant of the grid (5), the lowest training loss kept "
             "unless it predicts the held-out Noise 1 seconds clearly worse, and, where the kept fit never left "
             "its start, two more from 2x and 4x the gain (FITTING.md)")),
    "adapt_search": (("--adapt-search",), dict(
        action="store_true",
        help="the default's five starts, the lowest training loss kept without the held-out Noise 1 check "
             "(FITTING.md, round 3); not with --restarts or --model auto")),
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


