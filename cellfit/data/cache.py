"""What every reader of an Allen Cell Types cache shares: where the cache is, sweeps, records, messages.

No AllenSDK here: :mod:`cellfit.data.allen` (through AllenSDK) and
:mod:`cellfit.data.allen_files` (plain files) both build on this module, and
:func:`cellfit.data.allen.open_allen_cache` picks between them.

Environment:
    ``CELLFIT_CACHE``   cache directory (default ``~/.cache/cellfit/allen``)
    ``CELLFIT_OFFLINE`` if set to 1/true/yes: never try to download; a
                        missing file is an error at once.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import pathlib
from typing import Iterable

import numpy as np

from cellfit.io import user_dir
from .errors import CellDataError

__all__ = [
    "CACHE_ENV",
    "OFFLINE_ENV",
    "README_HINT",
    "READERS",
    "ALLEN_INSTALL",
    "CACHE_FIX",
    "FILE_FIX",
    "allensdk_installed",
    "default_cache_dir",
    "is_offline",
    "RawSweep",
    "CacheFiles",
    "cell_class_of",
    "cells_by_id",
    "features_by_id",
    "record_str",
    "feature_float",
    "short",
    "relative",
]

CACHE_ENV = "CELLFIT_CACHE"
OFFLINE_ENV = "CELLFIT_OFFLINE"
README_HINT = "see data/README.md"
#: how a cache directory can be read (see :func:`open_allen_cache`)
READERS = ("allensdk", "files")
#: the one line that says how to get AllenSDK (needed only to download from the Allen API)
ALLEN_INSTALL = "pip install 'cellfit[allen]' (AllenSDK 2.16: Python 3.11, numpy < 1.24)"

def allensdk_installed() -> bool:
    """True when ``allensdk`` can be imported (checked without importing it)."""
    return importlib.util.find_spec("allensdk") is not None


def default_cache_dir(cache_dir: os.PathLike | str | None = None) -> pathlib.Path:
    """The Allen cache directory: ``cache_dir`` > ``$CELLFIT_CACHE`` > ``~/.cache/cellfit/allen``."""
    return user_dir(cache_dir, CACHE_ENV, "cellfit", "allen")


def is_offline() -> bool:
    """True when ``$CELLFIT_OFFLINE`` forbids downloads."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclasses.dataclass(frozen=True)
class RawSweep:
    """One current-clamp sweep at the file's sampling rate.

    ``current_pA`` and ``voltage_mV`` are float64 arrays from sample 0 of the
    sweep; ``valid_end`` is the index of the last valid sample (AllenSDK's
    ``index_range[1]``: real sweeps may be cut short).
    """

    sweep_number: int
    stimulus_name: str
    sampling_rate_hz: float
    current_pA: np.ndarray
    voltage_mV: np.ndarray
    valid_end: int


def cell_class_of(dendrite_type: str | None) -> str:
    """``"spiny"`` -> excitatory, ``"aspiny"`` -> inhibitory, else ``"unknown"``."""
    d = (dendrite_type or "").strip().lower()
    if d == "spiny":
        return "excitatory"
    if d == "aspiny":
        return "inhibitory"
    return "unknown"


CACHE_FIX = (f"run once with internet so AllenSDK downloads the data, pass --cache-dir (or set {CACHE_ENV}) "
              f"pointing at an Allen Cell Types cache, or use --specimen demo ({README_HINT})")
FILE_FIX = ("run on a machine with internet to download it through AllenSDK, or pass --cache-dir pointing at "
             f"an Allen cache ({README_HINT})")


@dataclasses.dataclass(frozen=True)
class CacheFiles:
    """Paths of the cache files one specimen depends on."""

    cells: pathlib.Path
    features: pathlib.Path
    sweeps: pathlib.Path
    nwb: pathlib.Path

    def all(self) -> tuple[pathlib.Path, ...]:
        return (self.cells, self.features, self.sweeps, self.nwb)


def short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cells_by_id(cells: Iterable[dict], path: pathlib.Path, fix: str) -> dict[int, dict]:
    """Simplified cell records by integer ``id``; CellDataError naming ``path`` if one has none."""
    try:
        return {int(c["id"]): c for c in cells}
    except (KeyError, TypeError, ValueError) as exc:
        raise CellDataError(f"cell table {path} has records without an integer 'id' ({exc}); {fix}") from exc


def features_by_id(rows: Iterable[dict]) -> dict[int, dict]:
    """Feature rows by integer ``specimen_id`` (rows without one are skipped)."""
    out = {}
    for r in rows:
        sid = r.get("specimen_id")
        if sid is None or (isinstance(sid, float) and math.isnan(sid)):
            continue
        out[int(sid)] = r
    return out


def relative(path: pathlib.Path, cache: pathlib.Path) -> str:
    try:
        return str(path.relative_to(cache))
    except ValueError:
        return str(path)


def record_str(record: dict, key: str) -> str:
    """A string field of a cell record; None/NaN become ""."""
    v = record.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def feature_float(record: dict | None, key: str) -> float:
    """A numeric feature, NaN when missing."""
    if record is None:
        return float("nan")
    v = record.get(key)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
