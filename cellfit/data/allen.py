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

import logging
import math
import os
import pathlib
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from .allen_files import AllenFileCache
from .cache import (  # re-exported: the names every reader shares
    ALLEN_INSTALL,
    CACHE_ENV,
    CACHE_FIX,
    FILE_FIX,
    OFFLINE_ENV,
    README_HINT,
    READERS,
    CacheFiles,
    RawSweep,
    allensdk_installed,
    cell_class_of,
    cells_by_id,
    default_cache_dir,
    feature_float,
    features_by_id,
    is_offline,
    record_str,
    relative,
    short,
)
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
    "record_str",
    "feature_float",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")




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
        return AllenFileCache(cache)
    if name != "allensdk":
        raise CellDataError(f"unknown cache reader {reader!r}; use one of auto, {', '.join(READERS)}")
    if not allensdk_installed():
        raise CellDataError(f"reading the cache through AllenSDK needs it installed: {ALLEN_INSTALL}; "
                            "or use reader='files' (reads an existing cache without AllenSDK)")
    return AllenSDKCache(cache)


# --------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------
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
            raise CellDataError(f"cache directory {cache} {why}; {CACHE_FIX} [{OFFLINE_ENV} is set]")
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
            raise CellDataError(f"cannot read {what} {path} ({type(exc).__name__}: {short(exc)}); "
                                "delete it so AllenSDK downloads it again") from exc
        raise CellDataError(f"{missing} and the Allen API could not be reached "
                            f"({type(exc).__name__}: {short(exc, 80)}); {fix}") from exc
    except ValueError as exc:  # JSON / CSV parse errors
        raise CellDataError(f"{what} {path} is corrupt ({short(exc)}); delete it so AllenSDK "
                            "downloads it again") from exc


def get_cells(ctc, cache: pathlib.Path) -> dict[int, dict]:
    """All cell records (AllenSDK's simplified form), by specimen id."""
    files = cache_files(ctc, 0)
    cells = _fetch(files.cells, ctc.get_cells, what="cell table",
                   missing=f"cache directory {cache} has no cells.json", fix=CACHE_FIX)
    return cells_by_id(cells, files.cells, "delete it so AllenSDK downloads it again")


def get_features(ctc, cache: pathlib.Path) -> dict[int, dict]:
    """Ephys feature records (``ephys_features.csv``), by specimen id."""
    files = cache_files(ctc, 0)
    rows = _fetch(files.features, ctc.get_ephys_features, what="ephys feature table",
                  missing=f"cache directory {cache} has no ephys_features.csv", fix=CACHE_FIX)
    return features_by_id(rows)


def get_sweep_table(ctc, specimen_id: int, cache: pathlib.Path) -> list[dict]:
    """The sweep records of ``specimen_<id>/ephys_sweeps.json``."""
    path = cache_files(ctc, specimen_id).sweeps
    sweeps = _fetch(path, lambda: ctc.get_ephys_sweeps(specimen_id), what=f"sweep table of specimen {specimen_id}",
                    missing=f"specimen {specimen_id}: no file {relative(path, cache)} in {cache}", fix=FILE_FIX)
    if not isinstance(sweeps, list):
        raise CellDataError(f"specimen {specimen_id}: sweep table {path} is not a list of sweeps; "
                            "delete it so AllenSDK downloads it again")
    return sweeps


def open_nwb(ctc, specimen_id: int, cache: pathlib.Path):
    """Return AllenSDK's ``NwbDataSet`` for the specimen (downloading the file when online)."""
    path = cache_files(ctc, specimen_id).nwb
    return _fetch(path, lambda: ctc.get_ephys_data(specimen_id), what=f"NWB file of specimen {specimen_id}",
                  missing=f"specimen {specimen_id}: no file {relative(path, cache)} in {cache}", fix=FILE_FIX)


def read_sweep(ds, sweep_number: int, stimulus_name: str, specimen_id: int) -> RawSweep:
    """Read one sweep through ``NwbDataSet.get_sweep`` and convert it to pA / mV."""
    path = ds.file_name
    fix = "delete it so AllenSDK downloads it again"
    try:
        d = ds.get_sweep(int(sweep_number))
    except OSError as exc:
        raise CellDataError(f"specimen {specimen_id}: cannot read NWB file {path}, it is truncated or corrupt "
                            f"({short(exc, 100)}); {fix}") from exc
    except KeyError as exc:
        raise CellDataError(f"specimen {specimen_id}: sweep {sweep_number} ({stimulus_name}) is listed in "
                            f"ephys_sweeps.json but missing from {path} ({short(exc, 100)}); {fix}") from exc
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


