"""NWB 2 input and output (pynwb).

Reading: :func:`read_nwb2_sweeps` takes an intracellular-ephys NWB 2 file as
distributed on DANDI for the Allen Cell Types data: one ``CurrentClampSeries``
per sweep in ``acquisition`` (e.g. ``data_00012_AD0``) and its
``CurrentClampStimulusSeries`` in ``stimulus`` (``data_00012_DA0``), paired by
``sweep_number``; the stimulus is named by ``stimulus_description``
(``C1NSSEED_1...`` = "Noise 1", ``C1NSSEED_2...`` = "Noise 2"; the plain
names are accepted too). :func:`load_nwb2_cell` turns such a file into the same
:class:`~cellfit.data.CellRecording` as :func:`~cellfit.data.load_cell`.
:func:`write_nwb2_sweeps` writes such a file (used by the tests and to convert
synthetic cells).

Writing predictions: :func:`write_predictions_nwb2` stores a fitted model's
predicted spikes next to the recorded spikes and the input current as NWB 2
``TimeSeries`` in the processing module ``cellfit``; arrays keep their shape
with time moved to the first axis. :func:`read_predictions_nwb2` reads them back.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import pathlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pynwb.core
from hdmf.backends.hdf5.h5_utils import H5DataIO
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

from cellfit.io import atomic_path
from .cache import RawSweep, cell_class_of
from .errors import CellDataError
from .preprocess import bin_sweeps, build_recording, check_dt_window
from .protocol import EPOCH_STARTS_S, MIN_TEST_REPEATS, TEST_STIMULUS, TRAIN_STIMULUS
from .types import SOURCE_BASELINE, SOURCE_GIVEN, SOURCE_SPIKES, CellMeta, CellRecording

__all__ = [
    "STIMULUS_CODES",
    "stimulus_name_of",
    "read_nwb2_sweeps",
    "write_nwb2_sweeps",
    "load_nwb2_cell",
    "write_predictions_nwb2",
    "read_predictions_nwb2",
]

#: stimulus_description prefixes of the Allen noise stimuli
STIMULUS_CODES = {TRAIN_STIMULUS: "C1NSSEED_1", TEST_STIMULUS: "C1NSSEED_2"}
_DEFAULT_START = _dt.datetime(2023, 1, 1, tzinfo=_dt.timezone.utc)
_TO_PA = {"amperes": 1e12, "amps": 1e12, "a": 1e12, "pa": 1.0}
_TO_MV = {"volts": 1e3, "v": 1e3, "mv": 1.0}


@contextlib.contextmanager
def _shared_type_map():
    """Speed up pynwb 2.8: reuse one type map while building containers.

    pynwb 2.8's ``NWBMixin._get_type_map`` deep-copies the whole namespace
    type map on every container field assignment (about 40 ms each), which
    makes opening an icephys file take seconds per sweep. Inside this
    context it returns one copy, made once; the map is only read there (to
    look up term-set configuration).
    """

    original = pynwb.core.get_type_map
    shared = original()

    def cached(*args, **kwargs):
        return shared if not args and not kwargs else original(*args, **kwargs)

    pynwb.core.get_type_map = cached
    try:
        yield
    finally:
        pynwb.core.get_type_map = original


def stimulus_name_of(description: str | None) -> str:
    """Allen stimulus name of an NWB 2 ``stimulus_description``."""
    desc = (description or "").strip()
    for name, code in STIMULUS_CODES.items():
        if desc == name or desc.upper().startswith(code):
            return name
    return desc


def _io_error(path, exc: BaseException) -> CellDataError:
    return CellDataError(f"cannot read NWB 2 file {path}, it is truncated, corrupt or not NWB 2 "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); obtain the file again")


def read_nwb2_sweeps(path: os.PathLike | str, stimulus_names: Iterable[str] | None = (TRAIN_STIMULUS, TEST_STIMULUS)
                     ) -> list[RawSweep]:
    """Current-clamp sweeps of an NWB 2 file, in pA / mV, sorted by sweep number.

    ``stimulus_names``: keep only these stimuli (None keeps all). Trailing NaN
    samples (unrecorded end of a sweep) set ``valid_end``; NaNs inside the
    sweep are left for the preprocessing to report.
    """

    path = pathlib.Path(path)
    if not path.exists():
        raise CellDataError(f"no NWB 2 file {path}; check the path")
    keep = None if stimulus_names is None else set(stimulus_names)
    out = []
    try:
        with _shared_type_map(), NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
            nwb = io.read()
            stims = {}
            for ts in nwb.stimulus.values():
                if isinstance(ts, CurrentClampStimulusSeries) and ts.sweep_number is not None:
                    stims[int(ts.sweep_number)] = ts
            for resp in nwb.acquisition.values():
                if not isinstance(resp, CurrentClampSeries):
                    continue
                if resp.sweep_number is None:
                    raise CellDataError(f"NWB 2 file {path}: series {resp.name} has no sweep_number, so its "
                                        "stimulus cannot be found")
                num = int(resp.sweep_number)
                stim = stims.get(num)
                desc = resp.stimulus_description or (stim.stimulus_description if stim is not None else "")
                name = stimulus_name_of(desc)
                if keep is not None and name not in keep:
                    continue
                if stim is None:
                    raise CellDataError(f"NWB 2 file {path}: sweep {num} ({name}) has a response but no "
                                        "CurrentClampStimulusSeries with the same sweep_number")
                out.append(_raw_sweep(path, num, name, stim, resp))
    except (OSError, KeyError, ValueError) as exc:
        raise _io_error(path, exc) from exc
    return sorted(out, key=lambda s: s.sweep_number)


def _series_values(ts, table: Mapping[str, float], what: str, path) -> tuple[np.ndarray, float]:
    unit = (ts.unit or "").strip().lower()
    if unit not in table:
        raise CellDataError(f"NWB 2 file {path}: {what} series {ts.name} has unit {ts.unit!r}, expected one of "
                            f"{sorted(table)}")
    if ts.rate is None:
        raise CellDataError(f"NWB 2 file {path}: series {ts.name} has timestamps, not a sampling rate; "
                            "cellfit needs regularly sampled sweeps")
    offset = float(getattr(ts, "offset", 0.0) or 0.0)
    values = (np.asarray(ts.data[:], dtype=np.float64) * float(ts.conversion) + offset) * table[unit]
    return values, float(ts.rate)


def _raw_sweep(path, num: int, name: str, stim, resp) -> RawSweep:
    cur, fs_i = _series_values(stim, _TO_PA, "stimulus", path)
    volt, fs_v = _series_values(resp, _TO_MV, "response", path)
    if fs_i != fs_v:
        raise CellDataError(f"NWB 2 file {path}: sweep {num} stimulus ({fs_i:g} Hz) and response ({fs_v:g} Hz) "
                            "differ in sampling rate")
    n = min(cur.shape[0], volt.shape[0])
    finite = np.flatnonzero(np.isfinite(volt[:n]) & np.isfinite(cur[:n]))
    valid_end = int(finite[-1]) if finite.size else -1
    return RawSweep(sweep_number=num, stimulus_name=name, sampling_rate_hz=fs_v, current_pA=cur[:n],
                    voltage_mV=volt[:n], valid_end=valid_end)


def write_nwb2_sweeps(path: os.PathLike | str, sweeps: Sequence[RawSweep], *, identifier: str,
                      session_description: str = "current-clamp sweeps",
                      session_start_time: _dt.datetime | None = None, gap_s: float = 5.0) -> None:
    """Write sweeps as an Allen-style intracellular-ephys NWB 2 file (atomically).

    Each sweep becomes ``data_<n>_AD0`` (``CurrentClampSeries``, volts) and
    ``data_<n>_DA0`` (``CurrentClampStimulusSeries``, amperes) with
    ``sweep_number`` n and ``stimulus_description`` the Allen code
    (``C1NSSEED_1``/``C1NSSEED_2`` for the noise stimuli), linked in the
    ``intracellular_recordings`` table. Samples after ``valid_end`` are not written.
    """
    with _shared_type_map():
        _write_sweeps(path, sweeps, identifier, session_description, session_start_time or _DEFAULT_START, gap_s)


def _write_sweeps(path, sweeps, identifier, session_description, session_start_time, gap_s) -> None:

    nwb = NWBFile(session_description=session_description, identifier=identifier,
                  session_start_time=session_start_time)
    device = nwb.create_device(name="amplifier", description="patch-clamp amplifier")
    electrode = nwb.create_icephys_electrode(name="electrode_0", description="whole-cell patch electrode",
                                             device=device)
    t0 = 0.0
    for s in sweeps:
        n = s.valid_end + 1
        code = STIMULUS_CODES.get(s.stimulus_name, s.stimulus_name)
        fs = float(s.sampling_rate_hz)
        stim = CurrentClampStimulusSeries(
            name=f"data_{s.sweep_number:05d}_DA0",
            data=H5DataIO((s.current_pA[:n] * 1e-12).astype(np.float32), compression="gzip", shuffle=True),
            electrode=electrode, gain=1.0, stimulus_description=code, sweep_number=np.uint32(s.sweep_number),
            rate=fs, starting_time=t0, conversion=1.0)
        resp = CurrentClampSeries(
            name=f"data_{s.sweep_number:05d}_AD0",
            data=H5DataIO((s.voltage_mV[:n] * 1e-3).astype(np.float32), compression="gzip", shuffle=True),
            electrode=electrode, gain=1.0, stimulus_description=code, sweep_number=np.uint32(s.sweep_number),
            rate=fs, starting_time=t0, conversion=1.0, bias_current=0.0, bridge_balance=0.0,
            capacitance_compensation=0.0)
        nwb.add_stimulus(stimulus=stim)
        nwb.add_acquisition(resp)
        nwb.add_intracellular_recording(electrode=electrode, stimulus=stim, response=resp)
        t0 += n / fs + gap_s
    with atomic_path(path, suffix=".nwb") as tmp:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)


def load_nwb2_cell(path: os.PathLike | str, dt_ms: float = 0.1, window_s: float = 1.0, *,
                   specimen_id: int = 0, meta: CellMeta | None = None, v_rest_mV: float | None = None,
                   v_thresh_mV: float | None = None, dendrite_type: str = "") -> CellRecording:
    """Load the Noise 1 / Noise 2 sweeps of an NWB 2 file into a :class:`CellRecording`.

    The file carries no ephys features, so unless ``meta`` or ``v_rest_mV`` /
    ``v_thresh_mV`` are given they are estimated from the Noise 1 sweeps:
    rest = median voltage between 0.1 s and the first epoch, threshold = 5th
    percentile of the voltage at AllenSDK's spike thresholds (the least
    adapted spikes, close to the threshold at rheobase that Allen reports).
    """
    dt_ms, window_s = check_dt_window(dt_ms, window_s)
    raws = read_nwb2_sweeps(path)
    train_raw = [r for r in raws if r.stimulus_name == TRAIN_STIMULUS]
    test_raw = [r for r in raws if r.stimulus_name == TEST_STIMULUS]
    label = f"NWB 2 file {path}"
    if not train_raw:
        raise CellDataError(f"{label} has no '{TRAIN_STIMULUS}' sweeps (training set)")
    if not test_raw:
        raise CellDataError(f"{label} has no '{TEST_STIMULUS}' sweeps (held-out test set)")
    if len(test_raw) < MIN_TEST_REPEATS:
        raise CellDataError(f"{label} has only {len(test_raw)} '{TEST_STIMULUS}' sweep, the test score needs at "
                            f"least {MIN_TEST_REPEATS} repeats")
    train = bin_sweeps(train_raw, dt_ms, window_s, specimen_id=specimen_id or str(path))
    test = bin_sweeps(test_raw, dt_ms, window_s, specimen_id=specimen_id or str(path))
    if not train or len(test) < MIN_TEST_REPEATS:
        raise CellDataError(f"{label}: too few noise sweeps cover all three epochs")
    if meta is None:
        sources = {"v_rest_source": SOURCE_GIVEN if v_rest_mV is not None else SOURCE_BASELINE,
                   "v_thresh_source": SOURCE_GIVEN if v_thresh_mV is not None else SOURCE_SPIKES}
        if v_rest_mV is None or v_thresh_mV is None:
            est_rest, est_thr = _estimate_rest_threshold(train_raw, train)
            v_rest_mV = est_rest if v_rest_mV is None else v_rest_mV
            v_thresh_mV = est_thr if v_thresh_mV is None else v_thresh_mV
        if not (math.isfinite(v_rest_mV) and math.isfinite(v_thresh_mV) and v_thresh_mV > v_rest_mV):
            raise CellDataError(f"{label}: cannot estimate rest / threshold voltage (got {v_rest_mV}, "
                                f"{v_thresh_mV} mV); pass v_rest_mV and v_thresh_mV")
        meta = CellMeta(specimen_id=int(specimen_id), name=pathlib.Path(path).stem, species="", layer="",
                        dendrite_type=dendrite_type, cell_class=cell_class_of(dendrite_type), transgenic_line="",
                        disease_state="", v_rest_mV=float(v_rest_mV), v_thresh_mV=float(v_thresh_mV), **sources)
    return build_recording(meta, dt_ms, window_s, train, test, source=str(path))


def _estimate_rest_threshold(raws: Sequence[RawSweep], bins) -> tuple[float, float]:
    rest, thr = [], []
    for raw, b in zip(raws, bins):
        fs = raw.sampling_rate_hz
        a, z = int(0.1 * fs), int(EPOCH_STARTS_S[0] * fs)
        rest.append(np.median(raw.voltage_mV[a:z]))
        if b.detected.size:
            thr.extend(raw.voltage_mV[b.detected].tolist())
    return float(np.median(rest)), float(np.percentile(thr, 5)) if thr else float("nan")


# --------------------------------------------------------------------------
# predictions
# --------------------------------------------------------------------------
def _as_array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim < 1 or a.shape[-1] == 0:
        raise ValueError(f"{name} must be an array whose last axis is time, got shape {a.shape}")
    return a


_CURRENT_UNITS = {"pA": ("amperes", 1e-12), "normalised": ("normalised", 1.0)}
_VOLTAGE_UNITS = {"mV": ("volts", 1e-3), "normalised": ("normalised", 1.0)}


def write_predictions_nwb2(path: os.PathLike | str, *, specimen_id: int, dt_ms: float, current,
                           predicted_spikes, recorded_spikes, voltage=None, current_unit: str = "pA",
                           voltage_unit: str = "mV", epoch_starts_s: Sequence[float] | None = None,
                           sweep_numbers: Sequence[int] | None = None, stimulus_name: str = "",
                           parameters: Mapping[str, Any] | None = None, description: str = "",
                           session_start_time: _dt.datetime | None = None) -> pathlib.Path:
    """Write model predictions for one cell as an NWB 2 file (tmp file + ``os.replace``).

    Arrays have time on the last axis, e.g. ``current`` (n_epochs, T) or
    (n_repeats, n_epochs, T), ``predicted_spikes`` (n_epochs, T) or
    (n_samples, n_epochs, T), ``recorded_spikes`` (n_repeats, n_epochs, T),
    optional ``voltage`` (..., T); all share ``T`` bins of ``dt_ms``. They are
    stored in processing module ``cellfit`` as TimeSeries ``current``,
    ``predicted_spikes``, ``recorded_spikes``, ``voltage`` with time moved to
    axis 0. Values are stored as given, with the NWB ``conversion`` to SI:
    ``current_unit`` "pA" (unit amperes, conversion 1e-12) or "normalised";
    ``voltage_unit`` "mV" (unit volts, conversion 1e-3) or "normalised".
    ``parameters`` (e.g. fitted values) are stored as JSON in the file's
    ``notes``, with ``sweep_numbers`` (the source sweep of each recorded repeat)
    and ``stimulus_name`` (e.g. "Noise 2"), which also appear in every series'
    description. Returns the path.
    """
    if current_unit not in _CURRENT_UNITS:
        raise ValueError(f"current_unit must be one of {list(_CURRENT_UNITS)}, got {current_unit!r}")
    if voltage_unit not in _VOLTAGE_UNITS:
        raise ValueError(f"voltage_unit must be one of {list(_VOLTAGE_UNITS)}, got {voltage_unit!r}")
    if not (dt_ms > 0):
        raise ValueError(f"dt_ms must be positive, got {dt_ms}")
    series = {"current": (_as_array(current, "current"), *_CURRENT_UNITS[current_unit]),
              "predicted_spikes": (_as_array(predicted_spikes, "predicted_spikes"), "spikes per bin", 1.0),
              "recorded_spikes": (_as_array(recorded_spikes, "recorded_spikes"), "spikes per bin", 1.0)}
    if voltage is not None:
        series["voltage"] = (_as_array(voltage, "voltage"), *_VOLTAGE_UNITS[voltage_unit])
    lengths = {k: v[0].shape[-1] for k, v in series.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"all arrays need the same number of time bins (last axis), got {lengths}")
    info = {"specimen_id": int(specimen_id), "dt_ms": float(dt_ms), "current_unit": current_unit,
            "voltage_unit": voltage_unit,
            "epoch_starts_s": None if epoch_starts_s is None else [float(x) for x in epoch_starts_s],
            "sweep_numbers": None if sweep_numbers is None else [int(x) for x in sweep_numbers],
            "stimulus_name": str(stimulus_name),
            "parameters": dict(parameters) if parameters is not None else {}}
    source = (f"{stimulus_name or 'stimulus'} sweeps {info['sweep_numbers']}" if sweep_numbers is not None
              else (stimulus_name or "the recorded sweeps"))
    info["descriptions"] = {
        "current": f"injected current of {source}, mean per {dt_ms:g} ms bin",
        "predicted_spikes": f"spikes of the fitted model driven by the current of {source}: 1 in a bin with a "
                            "spike (one row per noise epoch; a rate in [0, 1] where repeats had different stimuli)",
        "recorded_spikes": f"recorded spikes of {source} (spike threshold times), 1 in a bin with a spike; "
                           "one row per recorded repeat (sweep, in the order of sweep_numbers) and noise epoch",
        "voltage": f"recorded membrane potential of {source}, mean per {dt_ms:g} ms bin",
    }
    with _shared_type_map():
        _write_predictions(pathlib.Path(path), specimen_id, dt_ms, series, info, description, session_start_time)
    return pathlib.Path(path)


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"parameters must be JSON-serialisable, got {type(obj).__name__}")


def _write_predictions(path, specimen_id, dt_ms, series, info, description, session_start_time) -> None:

    nwb = NWBFile(session_description=description or f"cellfit predictions for specimen {specimen_id}",
                  identifier=f"cellfit-predictions-{int(specimen_id)}",
                  session_start_time=session_start_time or _dt.datetime.now(_dt.timezone.utc),
                  notes=json.dumps(info, default=_json_default))
    mod = nwb.create_processing_module(name="cellfit", description="cellfit model predictions and the "
                                       "recorded data they are scored against; time is axis 0")
    for name, (arr, unit, conversion) in series.items():
        shape = list(arr.shape)
        data = np.ascontiguousarray(np.moveaxis(arr, -1, 0))  # values as given; conversion -> SI
        mod.add(TimeSeries(name=name, data=H5DataIO(data, compression="gzip"), unit=unit, conversion=conversion,
                           rate=1000.0 / float(dt_ms), starting_time=0.0, description=info["descriptions"][name],
                           comments=json.dumps({"shape": shape, "time_axis": "last in cellfit, first in file"})))
    with atomic_path(path, suffix=".nwb") as tmp:
        with NWBHDF5IO(str(tmp), "w") as io:
            # core NWB types only: readers need no cached spec, and caching it costs ~1 s per file
            io.write(nwb, cache_spec=False)


def read_predictions_nwb2(path: os.PathLike | str) -> dict:
    """Read a file of :func:`write_predictions_nwb2`: arrays in their written shape and units, plus metadata."""

    try:
        with _shared_type_map(), NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
            nwb = io.read()
            info = json.loads(nwb.notes)
            mod = nwb.processing["cellfit"]
            out: dict[str, Any] = dict(info)
            for name in ("current", "predicted_spikes", "recorded_spikes", "voltage"):
                if name in mod.data_interfaces:
                    out[name] = np.moveaxis(np.asarray(mod[name].data[:]), 0, -1)
    except (OSError, KeyError, ValueError) as exc:
        raise CellDataError(f"cannot read predictions file {path} ({type(exc).__name__}: {exc}); "
                            "write it again with write_predictions_nwb2") from exc
    return out
