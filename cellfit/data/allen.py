"""The Allen Cell Types cache: one entry point, two readers, and the AllenSDK boundary.

:func:`open_allen_cache` is the one place that picks how a cache directory is read:

- ``"allensdk"`` (:class:`AllenSDKCache`, the default where AllenSDK is installed):
  every getter goes through ``allensdk.core.cell_types_cache.CellTypesCache``; a file
  present in the cache is read from disk, a missing one is downloaded from the Allen
  Brain Atlas API. Everything that touches ``allensdk`` lives in this module and in
  :mod:`cellfit.data.spikes` (imported lazily: AllenSDK takes seconds to import).
- ``"files"`` (:class:`cellfit.data.allen_files.AllenFileCache`, the default without
  AllenSDK, e.g. on numpy 2 / Python 3.12): the same files read with json, pandas and
  h5py (NWB 1 is plain HDF5), same records and sweeps; it cannot download, and a
  missing file says that downloading needs ``pip install 'cellfit[allen]'``.

Both return the same things (:class:`CacheFiles`, cell records in AllenSDK's simplified
form by id, feature rows by id, sweep tables, :class:`RawSweep` in pA / mV). Errors
(network, missing or corrupt files) become one-line :class:`CellDataError` messages.

Environment:
    ``CELLFIT_CACHE``   cache directory (default ``~/.cache/cellfit/allen``)
    ``CELLFIT_OFFLINE`` if set to 1/true/yes: never try to download; a
                        missing file is an error at once.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
import pathlib
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from cellfit.io import user_dir
from .errors import CellDataError

__all__ = [
    "CACHE_ENV",
    "OFFLINE_ENV",
    "READERS",
    "ALLEN_INSTALL",
    "allensdk_installed",
    "open_allen_cache",
    "AllenSDKCache",
    "RawSweep",
    "default_cache_dir",
    "is_offline",
    "open_cache",
    "CacheFiles",
    "cache_files",
    "get_cells",
    "get_features",
    "get_sweep_table",
    "open_nwb",
    "read_sweep",
    "cell_class_of",
    "cells_by_id",
    "features_by_id",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "CELLFIT_CACHE"
OFFLINE_ENV = "CELLFIT_OFFLINE"
README_HINT = "see data/README.md"
#: how a cache directory can be read (see :func:`open_allen_cache`)
READERS = ("allensdk", "files")
#: the one line that says how to get AllenSDK (needed only to download from the Allen API)
ALLEN_INSTALL = "pip install 'cellfit[allen]' (AllenSDK 2.16: Python 3.11, numpy < 1.24)"
T = TypeVar("T")


def allensdk_installed() -> bool:
    """True when ``allensdk`` can be imported (checked without importing it)."""
    return importlib.util.find_spec("allensdk") is not None


def open_allen_cache(cache_dir: os.PathLike | str | None = None, reader: str = "auto"):
    """Open an Allen Cell Types cache directory for reading: the one function that picks the reader.

    ``reader``: ``"auto"`` (AllenSDK when installed, so that missing files are
    downloaded; else the files reader), ``"allensdk"`` or ``"files"``. Returns an
    :class:`AllenSDKCache` or an :class:`~cellfit.data.allen_files.AllenFileCache`;
    both have ``cache``, ``name``, ``files(id)``, ``cells()``, ``features()``,
    ``sweep_table(id)``, ``fetch_nwb(id)`` and ``read_sweeps(id, numbers, stimulus_name)``.
    """
    cache = default_cache_dir(cache_dir)
    name = (reader or "auto").strip().lower()
    if name == "auto":
        name = "allensdk" if allensdk_installed() else "files"
    if name == "files":
        from .allen_files import AllenFileCache

        return AllenFileCache(cache)
    if name != "allensdk":
        raise CellDataError(f"unknown cache reader {reader!r}; use one of auto, {', '.join(READERS)}")
    if not allensdk_installed():
        raise CellDataError(f"reading the cache through AllenSDK needs it installed: {ALLEN_INSTALL}; "
                            "or use reader='files' (reads an existing cache without AllenSDK)")
    return AllenSDKCache(cache)


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


# --------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------
_CACHE_FIX = (f"run once with internet so AllenSDK downloads the data, pass --cache-dir (or set {CACHE_ENV}) "
              f"pointing at an Allen Cell Types cache, or use --specimen demo ({README_HINT})")
_FILE_FIX = ("run on a machine with internet to download it through AllenSDK, or pass --cache-dir pointing at "
             f"an Allen cache ({README_HINT})")


def open_cache(cache_dir: pathlib.Path):
    """Return a ``CellTypesCache`` on ``cache_dir/manifest.json``.

    Without a manifest, AllenSDK writes a fresh one (online); offline that is
    an error naming the directory.
    """
    cache = pathlib.Path(cache_dir)
    manifest = cache / "manifest.json"
    if not manifest.exists():
        if is_offline():
            if not cache.exists():
                why = "does not exist"
            elif not any(cache.iterdir()):
                why = "is empty (no manifest.json)"
            else:
                why = "has no manifest.json"
            raise CellDataError(f"cache directory {cache} {why}; {_CACHE_FIX} [{OFFLINE_ENV} is set]")
    from allensdk.config.manifest import ManifestVersionError
    from allensdk.core.cell_types_cache import CellTypesCache

    try:
        return CellTypesCache(manifest_file=str(manifest))
    except ManifestVersionError as exc:
        raise CellDataError(f"{manifest} has the wrong manifest version for AllenSDK "
                            f"(expected 1.1); delete it and AllenSDK will write a new one") from exc
    except (ValueError, KeyError) as exc:
        raise CellDataError(f"{manifest} is not a valid AllenSDK manifest ({exc}); "
                            "delete it and AllenSDK will write a new one") from exc
    except OSError as exc:
        raise CellDataError(f"cannot create or read {manifest} ({exc}); pass --cache-dir pointing "
                            f"at a writable directory ({README_HINT})") from exc


@dataclasses.dataclass(frozen=True)
class CacheFiles:
    """Paths of the cache files one specimen depends on."""

    cells: pathlib.Path
    features: pathlib.Path
    sweeps: pathlib.Path
    nwb: pathlib.Path

    def all(self) -> tuple[pathlib.Path, ...]:
        return (self.cells, self.features, self.sweeps, self.nwb)


def cache_files(ctc, specimen_id: int) -> CacheFiles:
    """The manifest paths of ``cells.json``, ``ephys_features.csv``, the sweep table and the NWB file."""
    return CacheFiles(
        cells=pathlib.Path(ctc.get_cache_path(None, ctc.CELLS_KEY)),
        features=pathlib.Path(ctc.get_cache_path(None, ctc.EPHYS_FEATURES_KEY)),
        sweeps=pathlib.Path(ctc.get_cache_path(None, ctc.EPHYS_SWEEPS_KEY, specimen_id)),
        nwb=pathlib.Path(ctc.get_cache_path(None, ctc.EPHYS_DATA_KEY, specimen_id)),
    )


def _fetch(path: pathlib.Path, call: Callable[[], T], *, what: str, missing: str, fix: str) -> T:
    """Run an AllenSDK getter for ``path``; turn network and file errors into CellDataError.

    ``missing`` says what is absent and ``fix`` how to get it, for the
    message when the file is not in the cache and cannot be downloaded.
    """
    present = path.exists()
    if not present and is_offline():
        raise CellDataError(f"{missing}; {fix} [{OFFLINE_ENV} is set]")
    try:
        return call()
    except OSError as exc:  # urllib/requests errors are OSErrors too
        if present:
            raise CellDataError(f"cannot read {what} {path} ({type(exc).__name__}: {_short(exc)}); "
                                "delete it so AllenSDK downloads it again") from exc
        raise CellDataError(f"{missing} and the Allen API could not be reached "
                            f"({type(exc).__name__}: {_short(exc, 80)}); {fix}") from exc
    except ValueError as exc:  # JSON / CSV parse errors
        raise CellDataError(f"{what} {path} is corrupt ({_short(exc)}); delete it so AllenSDK "
                            "downloads it again") from exc


def _short(exc: BaseException, limit: int = 160) -> str:
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


def get_cells(ctc, cache: pathlib.Path) -> dict[int, dict]:
    """All cell records (AllenSDK's simplified form), by specimen id."""
    files = cache_files(ctc, 0)
    cells = _fetch(files.cells, ctc.get_cells, what="cell table",
                   missing=f"cache directory {cache} has no cells.json", fix=_CACHE_FIX)
    return cells_by_id(cells, files.cells, "delete it so AllenSDK downloads it again")


def get_features(ctc, cache: pathlib.Path) -> dict[int, dict]:
    """Ephys feature records (``ephys_features.csv``), by specimen id."""
    files = cache_files(ctc, 0)
    rows = _fetch(files.features, ctc.get_ephys_features, what="ephys feature table",
                  missing=f"cache directory {cache} has no ephys_features.csv", fix=_CACHE_FIX)
    return features_by_id(rows)


def get_sweep_table(ctc, specimen_id: int, cache: pathlib.Path) -> list[dict]:
    """The sweep records of ``specimen_<id>/ephys_sweeps.json``."""
    path = cache_files(ctc, specimen_id).sweeps
    sweeps = _fetch(path, lambda: ctc.get_ephys_sweeps(specimen_id), what=f"sweep table of specimen {specimen_id}",
                    missing=f"specimen {specimen_id}: no file {_rel(path, cache)} in {cache}", fix=_FILE_FIX)
    if not isinstance(sweeps, list):
        raise CellDataError(f"specimen {specimen_id}: sweep table {path} is not a list of sweeps; "
                            "delete it so AllenSDK downloads it again")
    return sweeps


def _rel(path: pathlib.Path, cache: pathlib.Path) -> str:
    try:
        return str(path.relative_to(cache))
    except ValueError:
        return str(path)


def open_nwb(ctc, specimen_id: int, cache: pathlib.Path):
    """Return AllenSDK's ``NwbDataSet`` for the specimen (downloading the file when online)."""
    path = cache_files(ctc, specimen_id).nwb
    return _fetch(path, lambda: ctc.get_ephys_data(specimen_id), what=f"NWB file of specimen {specimen_id}",
                  missing=f"specimen {specimen_id}: no file {_rel(path, cache)} in {cache}", fix=_FILE_FIX)


def read_sweep(ds, sweep_number: int, stimulus_name: str, specimen_id: int) -> RawSweep:
    """Read one sweep through ``NwbDataSet.get_sweep`` and convert it to pA / mV."""
    path = ds.file_name
    fix = "delete it so AllenSDK downloads it again"
    try:
        d = ds.get_sweep(int(sweep_number))
    except OSError as exc:
        raise CellDataError(f"specimen {specimen_id}: cannot read NWB file {path}, it is truncated or corrupt "
                            f"({_short(exc, 100)}); {fix}") from exc
    except KeyError as exc:
        raise CellDataError(f"specimen {specimen_id}: sweep {sweep_number} ({stimulus_name}) is listed in "
                            f"ephys_sweeps.json but missing from {path} ({_short(exc, 100)}); {fix}") from exc
    if d.get("stimulus_unit") == "Volts":
        raise CellDataError(f"specimen {specimen_id}: sweep {sweep_number} ({stimulus_name}) in {path} is a "
                            "voltage-clamp sweep; cellfit needs current-clamp noise sweeps")
    fs = float(d["sampling_rate"])
    if not math.isfinite(fs) or fs <= 0:
        raise CellDataError(f"specimen {specimen_id}: sweep {sweep_number} in {path} has sampling rate {fs}; {fix}")
    return RawSweep(
        sweep_number=int(sweep_number),
        stimulus_name=stimulus_name,
        sampling_rate_hz=fs,
        current_pA=np.asarray(d["stimulus"], dtype=np.float64) * 1e12,
        voltage_mV=np.asarray(d["response"], dtype=np.float64) * 1e3,
        valid_end=int(d["index_range"][1]),
    )


class AllenSDKCache:
    """A cache directory read (and, online, filled) through AllenSDK's ``CellTypesCache``.

    The same interface as :class:`cellfit.data.allen_files.AllenFileCache`; made by
    :func:`open_allen_cache`.
    """

    name = "allensdk"

    def __init__(self, cache: os.PathLike | str):
        self.cache = pathlib.Path(cache)
        self.ctc = open_cache(self.cache)

    def files(self, specimen_id: int) -> CacheFiles:
        return cache_files(self.ctc, specimen_id)

    def cells(self) -> dict[int, dict]:
        return get_cells(self.ctc, self.cache)

    def features(self) -> dict[int, dict]:
        return get_features(self.ctc, self.cache)

    def sweep_table(self, specimen_id: int) -> list[dict]:
        return get_sweep_table(self.ctc, specimen_id, self.cache)

    def fetch_nwb(self, specimen_id: int) -> pathlib.Path:
        """Make sure the specimen's NWB file is in the cache (downloading it when online); its path."""
        open_nwb(self.ctc, specimen_id, self.cache)
        return self.files(specimen_id).nwb

    def read_sweeps(self, specimen_id: int, numbers: Iterable[int], stimulus_name: str) -> Iterator[RawSweep]:
        """The sweeps ``numbers`` of the specimen's NWB file, one at a time (pA / mV)."""
        ds = open_nwb(self.ctc, specimen_id, self.cache)
        for n in numbers:
            yield read_sweep(ds, n, stimulus_name, specimen_id)


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
