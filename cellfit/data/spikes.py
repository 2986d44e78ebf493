"""Spike times of a recorded sweep: AllenSDK's extractor where it is installed, else ipfx.

Both detectors are the Allen Institute's threshold-based spike finder (dV/dt crossing
20 V/s, peak at least 2 mV above threshold and above -30 mV, threshold refined to 5% of
the mean upstroke dV/dt, a 4-pole Bessel filter on dV/dt): AllenSDK's
``allensdk.ephys.ephys_extractor.EphysSweepFeatureExtractor`` (AllenSDK 2.16, the last
release, installs only on Python <= 3.11 with numpy < 1.24) and its maintained successor
``ipfx.feature_extractor.SpikeFeatureExtractor`` (ipfx >= 2.1, numpy 2, no AllenSDK).
A spike's time is the extractor's ``threshold_t``; ``threshold_v`` is the voltage at
that sample (``v[threshold_index]`` in both packages), so the threshold voltages used
to estimate a cell's threshold are ``voltage_mV[detected samples]``.

Which one runs: ``detector="auto"`` (the default) takes ``$CELLFIT_SPIKE_DETECTOR``
when set (``allensdk`` or ``ipfx``), else AllenSDK when it is importable (the spike
times of earlier cellfit releases), else ipfx. Their agreement on the same sweeps is
tested (``tests/data/test_data_allen_files.py``) and recorded in ``data/README.md``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import warnings

import numpy as np

from .errors import CellDataError

__all__ = [
    "DETECTORS",
    "DETECTOR_ENV",
    "INSTALL_HINT",
    "available_detectors",
    "resolve_detector",
    "detector_label",
    "installed_detector_label",
    "detect_spike_samples",
    "DETECT_PAD_S",
]

#: the spike detectors cellfit can use, in the order ``auto`` prefers them
DETECTORS = ("allensdk", "ipfx")
DETECTOR_ENV = "CELLFIT_SPIKE_DETECTOR"
INSTALL_HINT = ("install ipfx (pip install 'cellfit[ipfx]'; any Python >= 3.11, numpy 2) or AllenSDK "
                "(pip install 'cellfit[allen]'; Python 3.11, numpy < 1.24)")

#: seconds of trace kept before/after an epoch for the spike detector's filter
DETECT_PAD_S = (0.005, 0.01)

_MODULES = {"allensdk": "allensdk.ephys.ephys_extractor", "ipfx": "ipfx.feature_extractor"}


@functools.lru_cache(maxsize=None)
def _importable(name: str) -> bool:
    top = name.split(".")[0]
    return importlib.util.find_spec(top) is not None


def available_detectors() -> tuple[str, ...]:
    """The installed detectors, in the order ``auto`` prefers them."""
    return tuple(d for d in DETECTORS if _importable(d))


def resolve_detector(detector: str = "auto") -> str:
    """``"allensdk"`` or ``"ipfx"``: the detector that ``detector`` (or ``"auto"``) means here.

    Raises :class:`CellDataError` (one line, with the install command) when the
    requested detector, or for ``auto`` any detector, is not installed.
    """
    name = (detector or "auto").strip().lower()
    if name == "auto":
        name = os.environ.get(DETECTOR_ENV, "").strip().lower() or "auto"
    if name == "auto":
        found = available_detectors()
        if not found:
            raise CellDataError(f"spike detection on recorded sweeps needs a spike extractor: {INSTALL_HINT}")
        return found[0]
    if name not in DETECTORS:
        raise CellDataError(f"unknown spike detector {detector!r} (from the argument or ${DETECTOR_ENV}); "
                            f"use one of {', '.join(('auto',) + DETECTORS)}")
    if not _importable(name):
        extra = "allen" if name == "allensdk" else "ipfx"
        raise CellDataError(f"spike detector {name!r} is not installed; pip install 'cellfit[{extra}]'")
    return name


def detector_label(detector: str = "auto") -> str:
    """``"<name> <version>"`` of the detector that ``detector`` resolves to (stored with cached spikes)."""
    name = resolve_detector(detector)
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:  # importable from a path without metadata
        version = "unknown"
    return f"{name} {version}"


def installed_detector_label(detector: str = "auto") -> str | None:
    """:func:`detector_label`, or None when ``detector`` is ``"auto"`` and no extractor is installed.

    Lets a loader check the detector's name before any work and still report the
    missing extractor where spikes are first needed (after the checks of its input).
    """
    auto = (detector or "auto").strip().lower() == "auto" and not os.environ.get(DETECTOR_ENV, "").strip()
    if auto and not available_detectors():
        return None
    return detector_label(detector)


def detect_spike_samples(voltage_mV: np.ndarray, current_pA: np.ndarray, sampling_rate_hz: float,
                         start: int, stop: int, filter_khz: float, detector: str = "auto") -> np.ndarray:
    """Sample indices (from sample 0 of the sweep) of the spikes' ``threshold_t`` in ``[start, stop)``.

    The extractor sees the stretch ``[start - 5 ms, stop + 10 ms)`` of the sweep with
    ``t = sample / rate`` (so ``threshold_t * rate`` is an index), the analysis window
    ``[start, stop - 1]`` in samples, and a 4-pole Bessel filter of ``filter_khz`` on dV/dt.

    Parameters
    ----------
    voltage_mV, current_pA : (n_samples,) arrays of the whole sweep
    sampling_rate_hz : samples per second
    start, stop : sample range to report spikes in
    filter_khz : Bessel cutoff (10 kHz, at most 0.4 x the rate; see ``preprocess.bessel_filter_khz``)
    detector : ``"auto"``, ``"allensdk"`` or ``"ipfx"`` (see the module docstring)

    Returns
    -------
    (n_spikes,) int64, sorted, unique
    """
    name = resolve_detector(detector)
    fs = float(sampling_rate_hz)
    n = voltage_mV.shape[0]
    a = max(0, start - int(round(DETECT_PAD_S[0] * fs)))
    b = min(n, stop + int(round(DETECT_PAD_S[1] * fs)))
    t = np.arange(a, b, dtype=np.float64) / fs
    v = np.asarray(voltage_mV[a:b], dtype=np.float64)
    i = np.asarray(current_pA[a:b], dtype=np.float64)
    run = _allensdk_threshold_t if name == "allensdk" else _ipfx_threshold_t
    try:
        thr = run(t, v, i, start / fs, (stop - 1) / fs, float(filter_khz))
    except (ValueError, IndexError) as exc:  # both packages raise plain ValueErrors on odd traces
        raise CellDataError(f"{name} spike detection failed between {start / fs:g} and {stop / fs:g} s "
                            f"({type(exc).__name__}: {exc}); check the sweep's voltage and sampling rate "
                            f"({fs:g} Hz; real Allen data is sampled at 200 kHz)") from exc
    idx = np.round(np.asarray(thr, dtype=np.float64) * fs).astype(np.int64)
    return np.unique(idx[(idx >= start) & (idx < stop)])


def _allensdk_threshold_t(t, v, i, start_s, end_s, filter_khz) -> np.ndarray:
    from allensdk.ephys.ephys_extractor import EphysSweepFeatureExtractor
    from allensdk.ephys.ephys_features import FeatureError

    ext = EphysSweepFeatureExtractor(t=t, v=v, i=i, start=start_s, end=end_s, filter=filter_khz)
    try:
        with warnings.catch_warnings():
            # AllenSDK 2.16 uses pandas idioms that pandas 1.5 flags as deprecated
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="allensdk")
            warnings.filterwarnings("ignore", category=FutureWarning, module="allensdk")
            ext.process_spikes()
    except FeatureError as exc:
        raise ValueError(str(exc)) from exc
    return np.asarray(ext.spike_feature("threshold_t"), dtype=np.float64)


def _ipfx_threshold_t(t, v, i, start_s, end_s, filter_khz) -> np.ndarray:
    from ipfx.error import FeatureError
    from ipfx.feature_extractor import SpikeFeatureExtractor

    ext = SpikeFeatureExtractor(start=start_s, end=end_s, filter=filter_khz)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="ipfx")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="ipfx")
            table = ext.process(t, v, i)
    except FeatureError as exc:
        raise ValueError(str(exc)) from exc
    if table.empty:
        return np.zeros(0)
    return table["threshold_t"].to_numpy(dtype=np.float64)
