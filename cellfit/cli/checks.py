"""Checks before work: values, DT/ARP rules, the output and cache folders, the cluster commands.

All light (no torch, no AllenSDK, no Dask): they run before a command line's heavy imports.
A failed check raises :class:`UsageError`, which :func:`cellfit.cli.run_main` prints as one line (exit 2).
"""

from __future__ import annotations

import argparse
import os
import pathlib
from typing import Optional, Sequence, Union

from cellfit.data.protocol import DT_MAX_MS, DT_MIN_MS
from cellfit.timegrid import suggest_dt_arp


class UsageError(ValueError):
    """A bad argument found after parsing: the message names the thing and the fix (exit code 2)."""


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


def check_fit_options(args: argparse.Namespace) -> None:
    """``--adapt-search`` chooses among its own starts (one per grid tau_adapt) by the training loss, within one
    model variant: it does not combine with ``--restarts`` or ``--model auto``."""
    if not getattr(args, "adapt_search", False):
        return
    if getattr(args, "restarts", None) is not None:
        raise UsageError(f"--adapt-search makes its own 5 starts; drop --restarts {args.restarts}")
    if getattr(args, "model", "alif") == "auto":
        raise UsageError("--adapt-search ranks fits of one model variant by training loss; use it with --model alif "
                         "(or another single variant), not auto")


def check_specimens(specimens: Optional[Sequence[str]], flag: str = "--specimens") -> None:
    """``demo`` stands alone (it lives in its own cache): raise :class:`UsageError` if it is mixed with ids."""
    if specimens and "demo" in specimens and len(specimens) > 1:
        raise UsageError(f"{flag} demo is the built-in demo cell, which lives in its own cache; give it alone "
                         f"({flag} demo) or give Allen ids only")


def check_cluster_options(args: argparse.Namespace) -> None:
    """Before any work: the ``--cluster-config`` file exists and the scheduler's commands are on PATH."""
    from cellfit.batch.jobwatch import check_commands  # light: no Dask, no torch

    if args.cluster_config and not pathlib.Path(args.cluster_config).is_file():
        why = "is not a file" if pathlib.Path(args.cluster_config).exists() else "does not exist"
        raise UsageError(f"--cluster-config {args.cluster_config} {why}; give a YAML file of job options")
    check_commands(args.scheduler)

