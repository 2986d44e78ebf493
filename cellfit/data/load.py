"""Load one cell: Allen cache -> binned Noise 1 / Noise 2 arrays, with a processed-array cache.

The cache directory is read by :func:`cellfit.data.allen.open_allen_cache` (AllenSDK where
it is installed, else the files reader of :mod:`cellfit.data.allen_files`) and spikes are
found by :mod:`cellfit.data.spikes` (AllenSDK's extractor, else ipfx's).

The processed arrays of each ``(specimen, dt, window)`` are kept as
``<cache>/cellfit_processed/specimen_<id>/dt<dt>ms_win<window>s.npz`` so that a
refit does not reread the NWB file. The file stores the size and mtime of
``cells.json``, ``ephys_features.csv``, the sweep table and the NWB file, and the
spike detector (name and version); when any of them changes, the arrays are rebuilt.
The spike times (which do not depend on dt or window) are kept next to them in
``spikes.npz``, keyed by the NWB file's size and mtime and the detector, so loading
the same cell at another dt skips the spike detector.

Voltage normalisation: ``vrest`` and ``threshold_v_long_square`` come from
``ephys_features.csv``. Real records sometimes leave one empty; then it is estimated
from the cell's own noise sweeps (all repeats of Noise 1 and Noise 2 that cover the
three epochs):

- threshold: the median, over every detected spike, of the extractor's ``threshold_v``
  (the voltage at the ``threshold_t`` sample; same detector as the spike times);
- rest: the median, over the sweeps, of each sweep's median voltage in the
  :data:`BASELINE_S` seconds before the first noise epoch (no stimulus there).

``CellMeta.v_rest_source`` / ``v_thresh_source`` say where each value came from.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
import zipfile
from typing import Iterable

import numpy as np

from . import allen
from cellfit.io import atomic_path, file_stamp
from .allen import RawSweep, default_cache_dir
from .errors import CellDataError
from .preprocess import SweepBins, bessel_filter_khz, bin_sweeps, build_recording, check_dt_window
from .protocol import EPOCH_STARTS_S, MIN_TEST_REPEATS, TEST_STIMULUS, TRAIN_STIMULUS
from .spikes import installed_detector_label
from .types import (
    SOURCE_BASELINE,
    SOURCE_FEATURES,
    SOURCE_MISSING,
    SOURCE_SPIKES,
    CellMeta,
    CellRecording,
    TraceSet,
)

__all__ = ["load_cell", "as_specimen_id", "cell_meta", "noise_sweep_numbers", "processed_path",
           "PROCESSED_DIR", "BASELINE_S"]

logger = logging.getLogger(__name__)

PROCESSED_DIR = "cellfit_processed"
#: bumped whenever the processing changes, so old processed files are rebuilt
#: (2: the spike detector and the sources of rest / threshold are stored)
PROCESSED_VERSION = 2
#: seconds before the first noise epoch whose median voltage is a sweep's baseline
BASELINE_S = 0.5


def as_specimen_id(specimen_id) -> int:
    """An Allen specimen id as int (accepts ints and digit strings)."""
    if isinstance(specimen_id, (bool, np.bool_)):
        raise CellDataError(f"specimen id must be a positive integer, got {specimen_id!r}")
    if isinstance(specimen_id, (int, np.integer)):
        sid = int(specimen_id)
    elif isinstance(specimen_id, str) and specimen_id.strip().isdigit():
        sid = int(specimen_id.strip())
    else:
        raise CellDataError(f"specimen id must be a positive integer (an Allen specimen id) or 'demo', "
                            f"got {specimen_id!r}")
    if sid <= 0:
        raise CellDataError(f"specimen id must be a positive integer, got {sid}")
    return sid


def cell_meta(specimen_id: int, record: dict, features: dict | None) -> CellMeta:
    """Build :class:`CellMeta` from a cell record and its ephys features.

    A rest or threshold voltage that ``ephys_features.csv`` leaves empty (or a
    cell without a row there) is NaN with source ``"missing"``; :func:`load_cell`
    estimates it from the recordings. Two values that are both present must
    have the threshold above rest (checked here, before any sweep is read).
    """
    v_rest = allen.feature_float(features, "vrest")
    v_thresh = allen.feature_float(features, "threshold_v_long_square")
    if math.isfinite(v_rest) and math.isfinite(v_thresh) and v_thresh <= v_rest:
        raise CellDataError(f"specimen {specimen_id}: threshold {v_thresh:g} mV is not above rest "
                            f"{v_rest:g} mV in ephys_features.csv; pick another cell")
    dendrite = allen.record_str(record, "dendrite_type")
    return CellMeta(
        specimen_id=int(specimen_id),
        name=allen.record_str(record, "name"),
        species=allen.record_str(record, "species"),
        layer=allen.record_str(record, "structure_layer_name"),
        dendrite_type=dendrite,
        cell_class=allen.cell_class_of(dendrite),
        transgenic_line=allen.record_str(record, "transgenic_line"),
        disease_state=allen.record_str(record, "disease_state"),
        v_rest_mV=v_rest,
        v_thresh_mV=v_thresh,
        v_rest_source=SOURCE_FEATURES if math.isfinite(v_rest) else SOURCE_MISSING,
        v_thresh_source=SOURCE_FEATURES if math.isfinite(v_thresh) else SOURCE_MISSING,
    )


@dataclasses.dataclass
class _VoltageStats:
    """What the estimates of rest and threshold need from each binned sweep."""

    baselines_mV: list = dataclasses.field(default_factory=list)
    thresholds_mV: list = dataclasses.field(default_factory=list)

    def add(self, raw: RawSweep, bins: SweepBins) -> None:
        fs = raw.sampling_rate_hz
        i1 = int(round(EPOCH_STARTS_S[0] * fs))
        i0 = max(0, i1 - int(round(BASELINE_S * fs)))
        self.baselines_mV.append(float(np.median(raw.voltage_mV[i0:i1])))
        self.thresholds_mV.append(raw.voltage_mV[bins.detected])  # threshold_v of each detected spike


def _complete_meta(meta: CellMeta, stats: _VoltageStats | None) -> CellMeta:
    """Fill a rest / threshold voltage missing from the features with its estimate (module docstring)."""
    if stats is None:
        return meta
    sid = meta.specimen_id
    changes = {}
    if meta.v_rest_source == SOURCE_MISSING:
        if not stats.baselines_mV:
            raise CellDataError(f"specimen {sid}: no 'vrest' in ephys_features.csv and no noise sweep to estimate "
                                "it from; pick another cell")
        changes.update(v_rest_mV=float(np.median(stats.baselines_mV)), v_rest_source=SOURCE_BASELINE)
    if meta.v_thresh_source == SOURCE_MISSING:
        thr = np.concatenate(stats.thresholds_mV) if stats.thresholds_mV else np.zeros(0)
        if thr.size == 0:
            raise CellDataError(f"specimen {sid}: no 'threshold_v_long_square' in ephys_features.csv and no spike "
                                "in its noise sweeps to estimate it from; pick another cell")
        changes.update(v_thresh_mV=float(np.median(thr)), v_thresh_source=SOURCE_SPIKES)
    out = dataclasses.replace(meta, **changes)
    if not out.v_thresh_mV > out.v_rest_mV:
        raise CellDataError(f"specimen {sid}: threshold {out.v_thresh_mV:.2f} mV ({out.v_thresh_source}) is not "
                            f"above rest {out.v_rest_mV:.2f} mV ({out.v_rest_source}); pick another cell")
    logger.info("specimen %d: rest %.2f mV (%s), threshold %.2f mV (%s)", sid, out.v_rest_mV, out.v_rest_source,
                out.v_thresh_mV, out.v_thresh_source)
    return out


def noise_sweep_numbers(sweep_table: list[dict], specimen_id: int) -> tuple[list[int], list[int]]:
    """Sweep numbers of Noise 1 (train) and Noise 2 (test); errors when either is unusable."""
    train = sorted(int(s["sweep_number"]) for s in sweep_table if s.get("stimulus_name") == TRAIN_STIMULUS)
    test = sorted(int(s["sweep_number"]) for s in sweep_table if s.get("stimulus_name") == TEST_STIMULUS)
    _check_counts(specimen_id, len(train), len(test), "in its sweep table")
    return train, test


def _check_counts(specimen_id: int, n_train: int, n_test: int, where: str) -> None:
    hint = "pick a cell of the panel (cellfit.data.select_panel('paper146'))"
    if n_train == 0:
        raise CellDataError(f"specimen {specimen_id} has no '{TRAIN_STIMULUS}' sweeps (training set) {where}; {hint}")
    if n_test == 0:
        raise CellDataError(f"specimen {specimen_id} has no '{TEST_STIMULUS}' sweeps (held-out test set) {where}; {hint}")
    if n_test < MIN_TEST_REPEATS:
        raise CellDataError(f"specimen {specimen_id} has only {n_test} '{TEST_STIMULUS}' sweep {where}, the test "
                            f"score needs at least {MIN_TEST_REPEATS} repeats; {hint}")


def processed_path(cache_dir: os.PathLike | str, specimen_id: int, dt_ms: float, window_s: float) -> pathlib.Path:
    """Where the processed arrays of ``(specimen, dt, window)`` live."""
    return (pathlib.Path(cache_dir) / PROCESSED_DIR / f"specimen_{int(specimen_id)}"
            / f"dt{float(dt_ms):.6g}ms_win{float(window_s):.6g}s.npz")


def load_cell(specimen_id, dt_ms: float = 0.1, window_s: float = 1.0, cache_dir=None, *,
              use_processed_cache: bool = True, reader: str = "auto", detector: str = "auto") -> CellRecording:
    """Load the Noise 1 (train) and Noise 2 (test) sweeps of one Allen cell, binned at ``dt_ms``.

    Parameters
    ----------
    specimen_id : Allen specimen id (int or digit string)
    dt_ms : bin width, 0.05-4 ms, a multiple of the file's sampling interval
    window_s : seconds kept from the start of each 3 s epoch (1.0 as the paper, 3.0 for all)
    cache_dir : Allen cache directory (default: ``$CELLFIT_CACHE`` or ``~/.cache/cellfit/allen``);
        with AllenSDK installed, files missing there are downloaded when online
    use_processed_cache : read/write the processed ``.npz`` arrays
    reader : how the cache is read: ``"auto"``, ``"allensdk"`` or ``"files"``
        (:func:`cellfit.data.allen.open_allen_cache`)
    detector : spike detector: ``"auto"``, ``"allensdk"`` or ``"ipfx"``
        (:func:`cellfit.data.spikes.resolve_detector`)

    Raises
    ------
    CellDataError
        unknown specimen, missing data offline (or without AllenSDK), missing
        Noise 1/Noise 2, fewer than 2 test repeats, NaNs, a dt that does not
        divide the sampling interval, a truncated or corrupt NWB file, an empty
        cache directory, no spike detector installed, rest / threshold missing
        from the features and not estimable.
    """
    sid = as_specimen_id(specimen_id)
    dt_ms, window_s = check_dt_window(dt_ms, window_s)
    cache = default_cache_dir(cache_dir)
    label = installed_detector_label(detector)  # None: no extractor installed (the first detection says so)
    detector_name = label.split()[0] if label else "auto"
    try:
        store = allen.open_allen_cache(cache, reader)
    except CellDataError as exc:  # name the specimen the user asked for
        raise CellDataError(f"specimen {sid}: {exc}") from exc
    files = store.files(sid)
    ppath = processed_path(cache, sid, dt_ms, window_s)
    if use_processed_cache and label:
        stamps = _stamps(files)
        if (stamps >= 0).all():
            hit = _read_processed(ppath, stamps, dt_ms, window_s, label)
            if hit is not None:
                return hit
    cells = store.cells()
    if sid not in cells:
        raise CellDataError(f"unknown specimen {sid}: not in the cell table {files.cells} ({len(cells)} cells); "
                            "check the id (Allen specimen ids have 9 digits) or use --specimen demo")
    features = store.features()
    meta = cell_meta(sid, cells[sid], features.get(sid))
    table = store.sweep_table(sid)
    train_nums, test_nums = noise_sweep_numbers(table, sid)
    nwb = store.fetch_nwb(sid)
    spath = ppath.parent / "spikes.npz"
    detected = _read_spikes(spath, file_stamp(nwb), label) if use_processed_cache and label else {}
    stats = _VoltageStats() if SOURCE_MISSING in (meta.v_rest_source, meta.v_thresh_source) else None

    def binned(numbers: list[int], stimulus: str) -> list[SweepBins]:
        return _bin_and_measure(store.read_sweeps(sid, numbers, stimulus), dt_ms, window_s, sid, detected,
                                detector_name, stats)

    train = binned(train_nums, TRAIN_STIMULUS)
    test = binned(test_nums, TEST_STIMULUS)
    _check_counts(sid, len(train), len(test), "that cover all three epochs")
    meta = _complete_meta(meta, stats)
    rec = build_recording(meta, dt_ms, window_s, train, test, source=str(nwb))
    if use_processed_cache:
        found = {b.sweep_number: b.detected for b in list(train) + list(test)}
        if any(n not in detected for n in found):
            _write_spikes(spath, file_stamp(nwb), found, rec.sampling_rate_hz, label)
        _write_processed(ppath, rec, _stamps(files), label)
    return rec


def _bin_and_measure(raws: Iterable[RawSweep], dt_ms: float, window_s: float, sid: int,
                     detected: dict[int, np.ndarray], detector: str, stats: _VoltageStats | None) -> list[SweepBins]:
    """``bin_sweeps`` one sweep at a time, noting what the rest / threshold estimates need."""
    out: list[SweepBins] = []
    for raw in raws:
        bins = bin_sweeps([raw], dt_ms, window_s, specimen_id=sid, detected=detected, detector=detector)
        if bins and stats is not None:
            stats.add(raw, bins[0])
        out.extend(bins)
    return out


# --------------------------------------------------------------------------
# processed-array cache
# --------------------------------------------------------------------------
def _stamps(files: allen.CacheFiles) -> np.ndarray:
    return np.asarray([file_stamp(p) for p in files.all()], dtype=np.int64)


_META_STR = ("name", "species", "layer", "dendrite_type", "cell_class", "transgenic_line", "disease_state",
             "v_rest_source", "v_thresh_source")


def _write_processed(path: pathlib.Path, rec: CellRecording, stamps: np.ndarray, detector: str) -> None:
    arrays: dict[str, np.ndarray] = {
        "version": np.int64(PROCESSED_VERSION),
        "stamps": stamps,
        "detector": np.str_(detector),
        "filter_khz": np.float64(bessel_filter_khz(rec.sampling_rate_hz) if math.isfinite(rec.sampling_rate_hz) else -1),
        "dt_ms": np.float64(rec.dt_ms),
        "window_s": np.float64(rec.window_s),
        "current_scale_pA": np.float64(rec.current_scale_pA),
        "n_multi_spike_bins": np.int64(rec.n_multi_spike_bins),
        "sampling_rate_hz": np.float64(rec.sampling_rate_hz),
        "source": np.str_(rec.source),
        "meta_specimen_id": np.int64(rec.meta.specimen_id),
        "meta_v_rest_mV": np.float64(rec.meta.v_rest_mV),
        "meta_v_thresh_mV": np.float64(rec.meta.v_thresh_mV),
    }
    for f in _META_STR:
        arrays[f"meta_{f}"] = np.str_(getattr(rec.meta, f))
    for split in ("train", "test"):
        ts: TraceSet = getattr(rec, split)
        counts = np.asarray([[len(e) for e in rep] for rep in ts.spike_times_s], dtype=np.int64)
        flat = [e for rep in ts.spike_times_s for e in rep]
        arrays.update({
            f"{split}_current_pA": ts.current_pA,
            f"{split}_voltage_mV": ts.voltage_mV,
            f"{split}_spikes": ts.spikes,
            f"{split}_sweep_numbers": ts.sweep_numbers,
            f"{split}_epoch_starts_s": ts.epoch_starts_s,
            f"{split}_spike_counts": counts,
            f"{split}_spike_times_s": np.concatenate(flat) if flat else np.zeros(0),
        })
    _save_npz(path, arrays)


def _save_npz(path: pathlib.Path, arrays: dict) -> None:
    try:
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    except OSError as exc:
        logger.warning("could not write processed arrays %s (%s); they will be rebuilt next time", path, exc)


def _write_spikes(path: pathlib.Path, nwb_stamp: tuple, found: dict[int, np.ndarray], fs: float,
                  detector: str) -> None:
    arrays = {"version": np.int64(PROCESSED_VERSION), "nwb_stamp": np.asarray(nwb_stamp, dtype=np.int64),
              "detector": np.str_(detector),
              "filter_khz": np.float64(bessel_filter_khz(fs) if math.isfinite(fs) else -1)}
    arrays.update({f"sweep_{n}": np.asarray(v, dtype=np.int64) for n, v in found.items()})
    _save_npz(path, arrays)


def _read_spikes(path: pathlib.Path, nwb_stamp: tuple, detector: str) -> dict[int, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if (int(z["version"]) != PROCESSED_VERSION or tuple(z["nwb_stamp"]) != tuple(nwb_stamp)
                    or str(z["detector"]) != detector):
                return {}
            return {int(k[len("sweep_"):]): z[k] for k in z.files if k.startswith("sweep_")}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        logger.warning("spike cache %s is unreadable (%s); detecting spikes again", path, exc)
        return {}


def _read_processed(path: pathlib.Path, stamps: np.ndarray, dt_ms: float, window_s: float,
                    detector: str) -> CellRecording | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if (int(z["version"]) != PROCESSED_VERSION or not np.array_equal(z["stamps"], stamps)
                    or str(z["detector"]) != detector):
                logger.info("processed arrays %s are stale or from another spike detector; rebuilding", path)
                return None
            if float(z["dt_ms"]) != dt_ms or float(z["window_s"]) != window_s:
                return None
            meta = CellMeta(
                specimen_id=int(z["meta_specimen_id"]),
                v_rest_mV=float(z["meta_v_rest_mV"]),
                v_thresh_mV=float(z["meta_v_thresh_mV"]),
                **{f: str(z[f"meta_{f}"]) for f in _META_STR},
            )
            sets = {}
            for split in ("train", "test"):
                counts = z[f"{split}_spike_counts"]
                flat = z[f"{split}_spike_times_s"]
                ends = np.cumsum(counts.ravel())
                pieces = np.split(flat, ends[:-1]) if ends.size else []
                n_rep, n_ep = counts.shape
                st = tuple(tuple(pieces[r * n_ep + e] for e in range(n_ep)) for r in range(n_rep))
                sets[split] = TraceSet(
                    current_pA=z[f"{split}_current_pA"], voltage_mV=z[f"{split}_voltage_mV"],
                    spikes=z[f"{split}_spikes"], spike_times_s=st,
                    sweep_numbers=z[f"{split}_sweep_numbers"], epoch_starts_s=z[f"{split}_epoch_starts_s"],
                    dt_ms=dt_ms)
            return CellRecording(
                meta=meta, dt_ms=dt_ms, window_s=window_s, train=sets["train"], test=sets["test"],
                current_scale_pA=float(z["current_scale_pA"]), n_multi_spike_bins=int(z["n_multi_spike_bins"]),
                sampling_rate_hz=float(z["sampling_rate_hz"]), source=str(z["source"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        logger.warning("processed arrays %s are unreadable (%s); rebuilding", path, exc)
        return None
