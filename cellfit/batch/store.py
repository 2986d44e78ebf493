"""The results store of a batch run: one directory, plain files, rebuilt summaries.

Layout of ``RUN_DIR``::

    config.json          the run's configuration (written once; see RunConfig)
    summary.csv          one row per cell, rebuilt from the result.json files
    <specimen_id>/       what ``cellfit.fit.write_cell_outputs`` writes, all at once:
        result.json      a cellfit.fit.FitResult (schema: RESULTS.md)
        model.pt, predictions.nwb, fit.png, training.png   (ok cells only)

Nothing is kept in memory between runs: a cell counts as done when its
``result.json`` says ``status == "ok"`` and was fitted with this run's
configuration (same FitConfig, seed and window). Everything else (failed,
missing, fitted with another configuration) is fitted again on resume.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pathlib
import time
from typing import Optional, Sequence

import pandas as pd

import cellfit
from cellfit.fit.outputs import load_fit
from cellfit.fit.results import RESULT_FILE, SUMMARY_COLUMNS, FitResult
from cellfit.io import write_json_atomic, write_text_atomic

__all__ = [
    "CONFIG_FILE",
    "SUMMARY_FILE",
    "SUMMARY_COLUMNS",
    "RunConfig",
    "RunConfigError",
    "check_or_write_config",
    "read_config",
    "cell_state",
    "summarise",
    "write_summary",
    "failed_result",
    "load_run_fit",
    "starting_values",
    "run_summary",
]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.csv"

#: configuration keys that decide what a fitted cell looks like; a change in any of
#: them makes earlier results incompatible (operational keys such as cells_per_task,
#: scheduler or workers may change freely between resumes)
_COMPARED = ("window_s", "seed", "device", "specimens")


class RunConfigError(ValueError):
    """The configuration of a run does not match the one saved in RUN_DIR/config.json."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything saved in ``RUN_DIR/config.json``.

    ``fit`` is :meth:`cellfit.fit.FitConfig.to_dict` (includes dt_ms and arp_ms).
    ``fit``, ``window_s``, ``seed``, ``device`` and ``specimens`` must match on
    resume; the rest describes how the work was spread and may change.
    """

    fit: dict
    window_s: float
    seed: int
    device: str
    specimens: tuple
    panel: Optional[str] = None
    cells_per_task: Optional[int] = None
    scheduler: str = "local"
    workers: Optional[int] = None
    cache_dir: Optional[str] = None
    figures: bool = True

    def to_dict(self) -> dict:
        return {
            "dt_ms": self.fit["dt_ms"],
            "arp_ms": self.fit["arp_ms"],
            "window_s": self.window_s,
            "seed": self.seed,
            "device": self.device,
            "panel": self.panel,
            "specimens": [int(s) for s in self.specimens],
            "fit": _plain(self.fit),
            "cells_per_task": self.cells_per_task,
            "scheduler": self.scheduler,
            "workers": self.workers,
            "cache_dir": self.cache_dir,
            "figures": self.figures,
            "cellfit_version": cellfit.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def compared(self) -> dict:
        """The keys that must match on resume, flattened: FitConfig fields plus window/seed/device/specimens."""
        d = self.to_dict()
        out = dict(d["fit"])
        out.update({k: d[k] for k in _COMPARED})
        return out

    def matches_result(self, result: FitResult) -> bool:
        """True when ``result`` was fitted with this configuration."""
        return (
            _plain(result.config) == _plain(self.fit)
            and result.seed == self.seed
            and _close(self.window_s if result.window_s is None else result.window_s, self.window_s)
        )


def _plain(obj):
    """JSON round trip: tuples become lists, so that saved and fresh dicts compare equal."""
    return json.loads(json.dumps(obj))


def _close(a, b) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    except (TypeError, ValueError):
        return False


def read_config(run_dir: os.PathLike | str) -> Optional[dict]:
    """The saved ``config.json`` of a run directory, or None if there is none."""
    path = pathlib.Path(run_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunConfigError(f"{path} is not valid JSON ({exc}); delete it or pass --force") from exc


def _flat_saved(saved: dict) -> dict:
    out = dict(saved.get("fit", {}))
    out.update({k: saved.get(k) for k in _COMPARED})
    return out


def check_or_write_config(run_dir: os.PathLike | str, config: RunConfig, *, force: bool = False) -> bool:
    """Save ``config`` in ``run_dir`` or check it against the saved one.

    Returns True when the run starts fresh (no config.json before, or ``force``).
    With ``force`` the saved configuration is replaced and the result.json of every
    cell in ``config.specimens`` is deleted first, so that all of them are fitted again.

    Raises:
        RunConfigError: the saved configuration differs in a compared key (the
            message names each key with its saved and new value) and ``force`` is False.
    """
    run_dir = pathlib.Path(run_dir)
    saved = read_config(run_dir) if not force else None
    if saved is not None:
        old, new = _flat_saved(saved), _plain(config.compared())
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            parts = [f"{k} ({_short(old.get(k))} -> {_short(new.get(k))})" for k in diff]
            raise RunConfigError(
                f"{run_dir} holds a run with a different configuration: {', '.join(parts)}; "
                "rerun with the original options, choose another --out, or pass --force to refit every cell"
            )
        return False
    run_dir.mkdir(parents=True, exist_ok=True)
    if force:
        for sid in config.specimens:
            path = run_dir / str(int(sid)) / RESULT_FILE
            if path.exists():
                path.unlink()
    write_json_atomic(run_dir / CONFIG_FILE, config.to_dict())
    return True


def _short(value) -> str:
    if isinstance(value, list) and len(value) > 4:
        return f"[{len(value)} items]"
    return json.dumps(value)


def _read_result(path: pathlib.Path) -> Optional[FitResult]:
    try:
        return FitResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def cell_state(run_dir: os.PathLike | str, specimen_id: int, config: Optional[RunConfig] = None) -> str:
    """``"ok"``, ``"failed"``, ``"missing"`` or ``"stale"`` (fitted with another configuration)."""
    path = pathlib.Path(run_dir) / str(int(specimen_id)) / RESULT_FILE
    try:
        result = _read_result(path)
    except (json.JSONDecodeError, ValueError, TypeError):
        return "failed"
    if result is None:
        return "missing"
    if config is not None and not config.matches_result(result):
        return "stale"
    return "ok" if result.is_ok else "failed"


def failed_result(specimen_id: int, error: str, config: RunConfig, *, cell_class: str = "unknown") -> FitResult:
    """The result of a cell that could not be fitted (bad data, crashed task)."""
    return FitResult.failed(
        int(specimen_id), error, cell_class=cell_class, dt_ms=config.fit["dt_ms"], arp_ms=config.fit["arp_ms"],
        engine=config.fit.get("engine", ""), device=config.device, seed=config.seed, window_s=config.window_s,
        cellfit_version=cellfit.__version__, config=_plain(config.fit),
    )


def _row(specimen_id: int, result: Optional[FitResult], config: Optional[RunConfig], why: str = "") -> dict:
    if result is None:
        row = {k: None for k in SUMMARY_COLUMNS}
        row.update(specimen_id=int(specimen_id), status="missing",
                   error=why or "no result.json: the cell's task did not finish")
        return row
    row = result.summary_row()
    row["specimen_id"] = int(specimen_id)
    if config is not None and not config.matches_result(result):
        row["status"] = "stale"
        row["error"] = "result.json was fitted with a different configuration than config.json"
    return row


def summarise(run_dir: os.PathLike | str, specimens: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """One row per cell of a run, rebuilt from the per-cell result.json files.

    Args:
        run_dir: the run directory.
        specimens: the cells to list; default: ``config.json``'s specimen list, or
            every sub-directory holding a result.json when there is no config.json.

    Returns:
        A DataFrame with :data:`SUMMARY_COLUMNS`. ``status`` is ``ok`` or ``failed``
        as in result.json, ``missing`` for a cell without result.json, or ``stale``
        for a result fitted with a different configuration than config.json.
    """
    run_dir = pathlib.Path(run_dir)
    saved = read_config(run_dir)
    config = _config_from_saved(saved)
    if specimens is None:
        if saved is not None:
            specimens = saved.get("specimens", [])
        else:
            specimens = sorted(int(p.name) for p in run_dir.iterdir()
                               if p.is_dir() and p.name.isdigit() and (p / RESULT_FILE).exists()) \
                if run_dir.is_dir() else []
    rows = []
    for sid in specimens:
        path = run_dir / str(int(sid)) / RESULT_FILE
        try:
            result = _read_result(path)
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            rows.append(dict(_row(sid, None, config), status="failed", error=f"unreadable {path.name}: {exc}"))
            continue
        rows.append(_row(sid, result, config))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _config_from_saved(saved: Optional[dict]) -> Optional[RunConfig]:
    if saved is None or "fit" not in saved:
        return None
    return RunConfig(fit=saved["fit"], window_s=saved.get("window_s", 1.0), seed=saved.get("seed", 0),
                     device=saved.get("device", "auto"), specimens=tuple(saved.get("specimens", ())))


def starting_values(run_dir: os.PathLike | str, specimens: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """The starting point of every fitted cell's training (``result.json`` ``init``), one row per cell.

    Columns ``specimen_id, tau_m_ms, tau_adapt_ms, adapt_scale, method``: the voltage-based
    tau_m and the adaptation picked by the initial grid (:class:`cellfit.fit.FitConfig`).
    Compare with the fitted values (:func:`cellfit.figures.panel.plot_recovery` with
    ``reference_label="initial"``) to see whether training moved the parameters: a spread of
    fitted values that is only the spread of the starting points says little about spike timing.
    """
    run_dir = pathlib.Path(run_dir)
    if specimens is None:
        specimens = (read_config(run_dir) or {}).get("specimens") or sorted(
            int(d.name) for d in run_dir.iterdir() if d.name.isdigit())
    rows = []
    for sid in specimens:
        try:
            result = _read_result(run_dir / str(int(sid)) / RESULT_FILE)
        except (json.JSONDecodeError, ValueError, TypeError):
            continue
        if result is not None and result.is_ok and result.init:
            init = result.init
            rows.append(dict(specimen_id=int(sid), tau_m_ms=init.get("tau_m_ms"), tau_adapt_ms=init.get("tau_adapt_ms"),
                             adapt_scale=init.get("adapt_scale"), method=init.get("method", "")))
    return pd.DataFrame(rows, columns=["specimen_id", "tau_m_ms", "tau_adapt_ms", "adapt_scale", "method"])


def load_run_fit(run_dir: os.PathLike | str, specimen_id: int, *, recompute: bool = False):
    """:func:`cellfit.fit.load_fit` of one cell of a batch run, with the run's own Allen cache."""
    saved = read_config(run_dir) or {}
    return load_fit(pathlib.Path(run_dir) / str(int(specimen_id)), saved.get("cache_dir"), recompute=recompute)


def run_summary(df: pd.DataFrame) -> str:
    """One line about a run's summary table: cells per status and the medians of the held-out scores."""
    counts = df.status.value_counts().to_dict()
    ok = df[df.status == "ok"]
    parts = [f"{len(df)} cells: {counts.get('ok', 0)} ok"] + [f"{n} {s}" for s, n in counts.items() if s != "ok"]
    line = ", ".join(parts)
    for column, label in (("etv", "ETV"), ("gamma", "Gamma"), ("repeat_ceiling", "repeat ceiling")):
        values = pd.to_numeric(ok[column], errors="coerce").dropna() if column in ok else pd.Series(dtype=float)
        if len(values):
            line += f" | median {label} {values.median():.3f}"
    for column, label in (("undetermined", "a time constant undetermined"), ("at_bound", "a parameter at its bound")):
        flagged = int(ok[column].fillna("").astype(str).str.strip().ne("").sum()) if column in ok else 0
        if flagged:
            line += f" | {flagged} with {label}"
    return line


def write_summary(run_dir: os.PathLike | str) -> pd.DataFrame:
    """Rebuild ``RUN_DIR/summary.csv`` (atomically) from the result.json files and return it."""
    df = summarise(run_dir)
    write_text_atomic(pathlib.Path(run_dir) / SUMMARY_FILE, df.to_csv(index=False))
    return df
