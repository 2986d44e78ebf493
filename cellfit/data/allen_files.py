"""Read an existing Allen Cell Types cache directory without AllenSDK (json, pandas, h5py).

The cache that AllenSDK's ``CellTypesCache`` writes is plain files (see data/README.md):

- ``manifest.json``: AllenSDK manifest 1.1, ``{"manifest": [{"type": "manifest_version",
  "value": "1.1"}, {"key": "BASEDIR", "type": "dir", "spec": "."}, {"key": K, "type":
  "file", "spec": S, "parent_key": "BASEDIR"}, ...]}``; ``S`` may hold ``%d`` (specimen id).
  Without a manifest the layout AllenSDK writes by default is used.
- ``cells.json``: the API's cell records (``specimen__id``, ``donor__species``, ...),
  returned in AllenSDK's simplified form (``id``, ``species``, ``structure_layer_name``,
  ``dendrite_type``, ...) exactly as ``CellTypesCache.get_cells()`` does.
- ``ephys_features.csv``: read with ``pandas.read_csv(path, parse_dates=True)`` and
  ``to_dict("records")``, exactly as AllenSDK does (empty fields are NaN).
- ``specimen_<id>/ephys_sweeps.json``: the sweep table, a JSON list.
- ``specimen_<id>/ephys.nwb``: NWB 1 (AIBS layout), plain HDF5. Sweep ``N`` is
  ``/epochs/Sweep_N/{stimulus,response}/timeseries`` (links to
  ``/stimulus/presentation/Sweep_N`` and ``/acquisition/timeseries/Sweep_N``), whose
  ``data`` is in the SI unit its ``unit`` attribute names (Amps, Volts); the rate is the
  ``rate`` attribute of the stimulus' ``starting_time``; the last valid sample is
  ``idx_start + count - 1`` of ``/epochs/Experiment_N/stimulus`` (of ``Sweep_N`` when
  there is no experiment epoch), as ``NwbDataSet.get_sweep`` gives in ``index_range``.

Values are what AllenSDK 2.16's ``NwbDataSet.get_sweep`` returns with h5py 3: the data
as stored. (Its check of the file's pipeline version compares the bytes h5py 3 returns
with a str, finds no version and so never multiplies by the ``conversion`` attribute;
this reader does the same, and logs a warning for a file whose ``conversion`` is not 1.)
This reader cannot download: a missing file is one :class:`CellDataError` line saying
that downloading needs AllenSDK (``pip install 'cellfit[allen]'``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import pathlib
from typing import Iterable, Iterator

import h5py
import numpy as np
import pandas as pd

from .cache import (
    ALLEN_INSTALL,
    OFFLINE_ENV,
    README_HINT,
    CacheFiles,
    RawSweep,
    cells_by_id,
    features_by_id,
    is_offline,
    relative,
    short,
)
from .errors import CellDataError

__all__ = ["AllenFileCache", "DEFAULT_LAYOUT", "MANIFEST_VERSION", "simplify_cell_record"]

logger = logging.getLogger(__name__)

MANIFEST_VERSION = "1.1"
#: the file keys of AllenSDK's CellTypesCache manifest, with the specs it writes by default
DEFAULT_LAYOUT = {
    "CELLS": "cells.json",
    "EPHYS_FEATURES": "ephys_features.csv",
    "EPHYS_SWEEPS": "specimen_%d/ephys_sweeps.json",
    "EPHYS_DATA": "specimen_%d/ephys.nwb",
}
#: simplified key -> API key, as ``CellTypesApi.simplify_cells_api``
_SIMPLE_KEYS = {
    "reporter_status": "cell_reporter_status",
    "species": "donor__species",
    "id": "specimen__id",
    "name": "specimen__name",
    "structure_layer_name": "structure__layer",
    "structure_area_id": "structure_parent__id",
    "structure_area_abbrev": "structure_parent__acronym",
    "transgenic_line": "line_name",
    "dendrite_type": "tag__dendrite_type",
    "apical": "tag__apical",
    "reconstruction_type": "nr__reconstruction_type",
    "disease_state": "donor__disease_state",
    "donor_id": "donor__id",
    "structure_hemisphere": "specimen__hemisphere",
    "normalized_depth": "csl__normalized_depth",
}

_DOWNLOAD = f"downloading it from the Allen API needs AllenSDK: {ALLEN_INSTALL}"
_CACHE_FIX = ("run once with internet on a stack with AllenSDK to download the data "
              f"({ALLEN_INSTALL}), pass --cache-dir (or set CELLFIT_CACHE) pointing at an Allen Cell Types "
              f"cache, or use --specimen demo ({README_HINT})")
_FILE_FIX = (f"{_DOWNLOAD}; or pass --cache-dir pointing at an Allen cache that has it ({README_HINT})")
_REDOWNLOAD = f"delete it and download it again ({_DOWNLOAD})"


def simplify_cell_record(cell: dict) -> dict:
    """An API cell record in AllenSDK's simplified form (``CellTypesApi.simplify_cells_api``)."""
    out = {}
    for simple, api in _SIMPLE_KEYS.items():
        out[simple] = cell.get(api)
        if simple == "species":
            out["cell_soma_location"] = [cell.get("csl__x"), cell.get("csl__y"), cell.get("csl__z")]
    return out


class AllenFileCache:
    """An Allen Cell Types cache directory, read with json, pandas and h5py (no AllenSDK).

    The same interface as :class:`cellfit.data.allen.AllenSDKCache`; made by
    :func:`cellfit.data.allen.open_allen_cache`.
    """

    name = "files"

    def __init__(self, cache: os.PathLike | str):
        self.cache = pathlib.Path(cache)
        self._specs = self._read_manifest()

    # -- layout ------------------------------------------------------------
    def _read_manifest(self) -> dict[str, pathlib.Path]:
        cache, manifest = self.cache, self.cache / "manifest.json"
        defaults = {k: cache / v for k, v in DEFAULT_LAYOUT.items()}
        if not manifest.exists():
            if not cache.exists():
                why = "does not exist"
            elif not any(cache.iterdir()):
                why = "is empty (no manifest.json)"
            elif not (cache / DEFAULT_LAYOUT["CELLS"]).exists():
                why = "has no manifest.json and no cells.json"
            else:
                return defaults  # files without their manifest: AllenSDK's default layout
            offline = f" [{OFFLINE_ENV} is set]" if is_offline() else ""
            raise CellDataError(f"cache directory {cache} {why}; {_CACHE_FIX}{offline}")
        try:
            entries = json.loads(manifest.read_text())["manifest"]
            version = next((e.get("value") for e in entries if e.get("type") == "manifest_version"), None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CellDataError(f"{manifest} is not a valid AllenSDK manifest ({short(exc)}); delete it "
                                "(cellfit then reads AllenSDK's default layout)") from exc
        if version != MANIFEST_VERSION:
            raise CellDataError(f"{manifest} has the wrong manifest version {version!r} (expected "
                                f"{MANIFEST_VERSION}); delete it (cellfit then reads AllenSDK's default layout)")
        dirs: dict[str, pathlib.Path] = {}
        specs = dict(defaults)
        for e in entries:
            kind, key, spec = e.get("type"), e.get("key"), e.get("spec")
            if kind not in ("dir", "file") or not key or spec is None:
                continue
            parent = dirs.get(e.get("parent_key"), manifest.parent)
            path = pathlib.Path(spec) if str(spec).startswith("/") else parent / spec
            if kind == "dir":
                dirs[key] = path
            else:
                specs[key] = path
        return specs

    def _path(self, key: str, specimen_id: int | None = None) -> pathlib.Path:
        spec = str(self._specs[key])
        return pathlib.Path(spec % int(specimen_id) if specimen_id is not None and "%" in spec else spec)

    def files(self, specimen_id: int) -> CacheFiles:
        """Paths of ``cells.json``, ``ephys_features.csv``, the sweep table and the NWB file."""
        return CacheFiles(cells=self._path("CELLS"), features=self._path("EPHYS_FEATURES"),
                          sweeps=self._path("EPHYS_SWEEPS", specimen_id), nwb=self._path("EPHYS_DATA", specimen_id))

    # -- tables ------------------------------------------------------------
    def _need(self, path: pathlib.Path, missing: str, fix: str) -> None:
        if not path.exists():
            raise CellDataError(f"{missing}; {fix}")

    def cells(self) -> dict[int, dict]:
        """All cell records in AllenSDK's simplified form, by specimen id."""
        path = self._path("CELLS")
        self._need(path, f"cache directory {self.cache} has no cells.json", _CACHE_FIX)
        raw = _read_json(path, "cell table")
        if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
            raise CellDataError(f"cell table {path} is not a list of cell records; {_REDOWNLOAD}")
        return cells_by_id((simplify_cell_record(c) for c in raw), path, _REDOWNLOAD)

    def features(self) -> dict[int, dict]:
        """Ephys feature rows (``ephys_features.csv``), by specimen id; empty fields are NaN."""
        path = self._path("EPHYS_FEATURES")
        self._need(path, f"cache directory {self.cache} has no ephys_features.csv", _CACHE_FIX)
        try:
            rows = pd.read_csv(path, parse_dates=True).to_dict("records")
        except (OSError, ValueError) as exc:  # pandas' parser errors are ValueErrors
            raise CellDataError(f"ephys feature table {path} is corrupt ({short(exc)}); {_REDOWNLOAD}") from exc
        return features_by_id(rows)

    def sweep_table(self, specimen_id: int) -> list[dict]:
        """The sweep records of ``specimen_<id>/ephys_sweeps.json``."""
        path = self._path("EPHYS_SWEEPS", specimen_id)
        self._need(path, f"specimen {specimen_id}: no file {relative(path, self.cache)} in {self.cache}", _FILE_FIX)
        table = _read_json(path, f"sweep table of specimen {specimen_id}")
        if not isinstance(table, list):
            raise CellDataError(f"specimen {specimen_id}: sweep table {path} is not a list of sweeps; {_REDOWNLOAD}")
        return table

    def fetch_nwb(self, specimen_id: int) -> pathlib.Path:
        """The specimen's NWB file (it must be in the cache: this reader cannot download)."""
        path = self._path("EPHYS_DATA", specimen_id)
        self._need(path, f"specimen {specimen_id}: no file {relative(path, self.cache)} in {self.cache}", _FILE_FIX)
        return path

    # -- sweeps ------------------------------------------------------------
    def read_sweeps(self, specimen_id: int, numbers: Iterable[int], stimulus_name: str) -> Iterator[RawSweep]:
        """The sweeps ``numbers`` of the specimen's NWB 1 file, one at a time (pA / mV)."""
        path = self.fetch_nwb(specimen_id)
        fix = _REDOWNLOAD
        try:
            with h5py.File(path, "r") as f:
                for n in numbers:
                    yield _read_nwb1_sweep(f, path, int(n), stimulus_name, specimen_id, fix)
        except OSError as exc:  # not HDF5, truncated
            raise CellDataError(f"specimen {specimen_id}: cannot read NWB file {path}, it is truncated or corrupt "
                                f"({short(exc, 100)}); {fix}") from exc


def _read_json(path: pathlib.Path, what: str):
    try:
        with open(path) as fh:
            return json.load(fh)
    except OSError as exc:
        raise CellDataError(f"cannot read {what} {path} ({type(exc).__name__}: {short(exc)})") from exc
    except ValueError as exc:
        raise CellDataError(f"{what} {path} is corrupt ({short(exc)}); {_REDOWNLOAD}") from exc


def _text(x) -> str:
    if isinstance(x, np.ndarray):
        x = x.item() if x.size == 1 else x
    return x.decode("utf-8") if isinstance(x, (bytes, np.bytes_)) else str(x)


def _unit_name(ds: h5py.Dataset) -> str:
    """``NwbDataSet``'s ``stimulus_unit``: "Amps", "Volts" or "Unknown" (no ``unit`` attribute)."""
    if "unit" not in ds.attrs:
        return "Unknown"
    unit = _text(ds.attrs["unit"])
    return "Amps" if unit.startswith("A") else "Volts" if unit.startswith("V") else f"unrecognised ({unit})"


def _read_nwb1_sweep(f: h5py.File, path: pathlib.Path, n: int, stimulus_name: str, specimen_id: int,
                     fix: str) -> RawSweep:
    label = f"specimen {specimen_id}: sweep {n} ({stimulus_name})"
    try:
        swp = f["epochs"][f"Sweep_{n}"]
        stim, resp = swp["stimulus"], swp["response"]
        stim_ds, resp_ds = stim["timeseries"]["data"], resp["timeseries"]["data"]
        rate = float(stim["timeseries"]["starting_time"].attrs["rate"])
        start, count = int(stim["idx_start"][()]), int(stim["count"][()])
        exp = f["epochs"].get(f"Experiment_{n}")
        if exp is not None:
            valid_end = int(exp["stimulus"]["idx_start"][()]) + int(exp["stimulus"]["count"][()]) - 1
        else:
            valid_end = start + count - 1
        unit = _unit_name(stim_ds)
        for ds in (stim_ds, resp_ds):
            conv = float(ds.attrs.get("conversion", 1.0))
            if conv != 1.0:
                logger.warning("%s: %s has conversion %g; read as stored (in SI units), as AllenSDK 2.16 does",
                               label, ds.name, conv)
        stimulus = stim_ds[()]
        response = resp_ds[()]
    except KeyError as exc:
        raise CellDataError(f"{label} is listed in ephys_sweeps.json but missing from {path} "
                            f"({short(exc, 100)}); {fix}") from exc
    except OSError as exc:  # a damaged chunk inside an otherwise readable file
        raise CellDataError(f"specimen {specimen_id}: cannot read NWB file {path}, it is truncated or corrupt "
                            f"({short(exc, 100)}); {fix}") from exc
    if start != 0:
        raise CellDataError(f"{label} in {path} does not start at sample 0 (idx_start {start}); {fix}")
    if unit == "Volts":
        raise CellDataError(f"{label} in {path} is a voltage-clamp sweep; cellfit needs current-clamp noise sweeps")
    if unit not in ("Amps", "Unknown"):
        raise CellDataError(f"{label} in {path}: stimulus unit {unit}; {fix}")
    if not math.isfinite(rate) or rate <= 0:
        raise CellDataError(f"{label} in {path} has sampling rate {rate}; {fix}")
    return RawSweep(
        sweep_number=n,
        stimulus_name=stimulus_name,
        sampling_rate_hz=rate,
        current_pA=np.asarray(stimulus, dtype=np.float64) * 1e12,
        voltage_mV=np.asarray(response, dtype=np.float64) * 1e3,
        valid_end=valid_end,
    )
