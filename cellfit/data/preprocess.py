"""Noise sweeps to binned arrays: epochs, spike detection, resampling.

For every sweep: the three noise epochs (2-5 s, 10-13 s, 18-21 s) are cut
out; spikes are detected over each full 3 s epoch with AllenSDK's
``EphysSweepFeatureExtractor`` (``threshold_t``); then the first
``window_s`` of each epoch is resampled to bins of ``dt_ms``: current and
voltage are averaged over the ``k = dt / sampling interval`` samples of a
bin, spikes are counted per bin (bins with 2+ spikes are reported and
capped at 1).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Iterable, Sequence

import numpy as np

from .cache import RawSweep
from .errors import CellDataError
from .protocol import DT_MAX_MS, DT_MIN_MS, EPOCH_LENGTH_S, EPOCH_STARTS_S
from .spikes import detect_spike_samples  # noqa: F401  (re-exported in __all__; the detectors live in spikes.py)
from .types import CellMeta, CellRecording, TraceSet

__all__ = [
    "samples_per_bin",
    "bessel_filter_khz",
    "detect_spike_samples",
    "bin_spike_samples",
    "SweepBins",
    "bin_sweep",
    "build_traceset",
    "build_recording",
    "bin_sweeps",
    "check_dt_window",
]

logger = logging.getLogger(__name__)



def check_dt_window(dt_ms: float, window_s: float) -> tuple[float, float]:
    """Validate the bin width and the window; return them as floats."""
    try:
        dt_ms, window_s = float(dt_ms), float(window_s)
    except (TypeError, ValueError) as exc:
        raise CellDataError(f"dt {dt_ms!r} ms and window {window_s!r} s must be numbers") from exc
    if not (DT_MIN_MS - 1e-12 <= dt_ms <= DT_MAX_MS + 1e-12):
        raise CellDataError(f"dt {dt_ms:g} ms is outside the supported range {DT_MIN_MS:g}-{DT_MAX_MS:g} ms; "
                            "choose a DT within it")
    if not (0.0 < window_s <= EPOCH_LENGTH_S + 1e-12):
        raise CellDataError(f"window {window_s:g} s must lie in (0, {EPOCH_LENGTH_S:g}] s "
                            "(1 s as in the paper, or the full 3 s epoch)")
    return dt_ms, window_s


def samples_per_bin(dt_ms: float, sampling_rate_hz: float, where: str = "") -> int:
    """Number of samples in a bin of ``dt_ms``; CellDataError if not a whole number."""
    k = dt_ms * 1e-3 * sampling_rate_hz
    k_int = int(round(k))
    if k_int < 1 or abs(k - k_int) > 1e-6 * max(1.0, k):
        interval = 1e3 / sampling_rate_hz
        raise CellDataError(f"{where}dt {dt_ms:g} ms is not a multiple of the sampling interval "
                            f"{interval:g} ms ({sampling_rate_hz:g} Hz); choose a dt that is")
    return k_int


def bessel_filter_khz(sampling_rate_hz: float) -> float:
    """Cutoff of AllenSDK's 4-pole Bessel filter valid at this rate: 10 kHz, at most 0.4 x the rate."""
    return float(min(10.0, 0.4 * sampling_rate_hz / 1000.0))


def bin_spike_samples(rel_samples: np.ndarray, k: int, n_bins: int) -> tuple[np.ndarray, int]:
    """Bin spike sample offsets (from the window start) into ``n_bins`` bins of ``k`` samples.

    Returns ``(spikes, n_multi)``: float32 0/1 per bin (capped) and the number
    of bins that held two or more spikes. Offsets outside the window are ignored.
    """
    rel = np.asarray(rel_samples, dtype=np.int64)
    rel = rel[(rel >= 0) & (rel < n_bins * k)]
    counts = np.bincount(rel // k, minlength=n_bins)[:n_bins]
    return np.minimum(counts, 1).astype(np.float32), int(np.count_nonzero(counts > 1))


@dataclasses.dataclass(frozen=True)
class SweepBins:
    """One sweep, binned: (E, T) arrays and per-epoch spike sample offsets."""

    sweep_number: int
    current_pA: np.ndarray
    voltage_mV: np.ndarray
    spikes: np.ndarray
    spike_offsets: tuple  # per epoch: int64 sample offsets from the window start
    n_multi: int
    max_abs_current_pA: float  # over the full 3 s epochs at the sampling rate
    sampling_rate_hz: float
    detected: np.ndarray  # detected spike samples over the full epochs, from sample 0 of the sweep


def bin_sweep(raw: RawSweep, dt_ms: float, window_s: float, *, specimen_id: int | str,
              epoch_starts_s: Sequence[float] = EPOCH_STARTS_S,
              spike_samples: np.ndarray | None = None, detector: str = "auto") -> SweepBins:
    """Cut the noise epochs of ``raw``, detect spikes, bin to ``dt_ms``.

    ``spike_samples``: spike sample indices already detected in this sweep
    (``SweepBins.detected`` of an earlier call); None runs the spike detector
    ``detector`` (:func:`cellfit.data.spikes.resolve_detector`).
    """
    fs = raw.sampling_rate_hz
    where = f"specimen {specimen_id}: "
    k = samples_per_bin(dt_ms, fs, where)
    n_epoch = int(round(EPOCH_LENGTH_S * fs))
    n_bins = int(round(window_s * fs)) // k
    if n_bins < 1:
        raise CellDataError(f"{where}window {window_s:g} s is shorter than one bin of {dt_ms:g} ms")
    label = f"{where}sweep {raw.sweep_number} ({raw.stimulus_name})"
    n = min(raw.voltage_mV.shape[0], raw.current_pA.shape[0])
    cur_rows, volt_rows, spk_rows, offsets, detected = [], [], [], [], []
    n_multi, max_abs = 0, 0.0
    for start_s in epoch_starts_s:
        i0 = int(round(start_s * fs))
        i1 = i0 + n_epoch
        if i1 > n or i1 - 1 > raw.valid_end:
            raise _Truncated(f"{label} ends at {min(n, raw.valid_end + 1) / fs:.3f} s, before the end of "
                             f"the epoch {start_s:g}-{start_s + EPOCH_LENGTH_S:g} s")
        cur = raw.current_pA[i0:i1]
        volt = raw.voltage_mV[i0:i1]
        for name, arr in (("current", cur), ("voltage", volt)):
            bad = ~np.isfinite(arr)
            if bad.any():
                first = (i0 + int(np.flatnonzero(bad)[0])) / fs
                raise CellDataError(f"{label}: {int(bad.sum())} NaN/inf values in the {name} trace "
                                    f"(first at {first:.4f} s); the recording is unusable, drop this cell "
                                    "(or sweep) from the panel")
        max_abs = max(max_abs, float(np.max(np.abs(cur))))
        if spike_samples is None:
            found = detect_spike_samples(raw.voltage_mV, raw.current_pA, fs, i0, i1, bessel_filter_khz(fs),
                                         detector=detector)
        else:
            found = spike_samples[(spike_samples >= i0) & (spike_samples < i1)]
        detected.append(found)
        spk = found - i0
        m = n_bins * k
        cur_rows.append(cur[:m].reshape(n_bins, k).mean(axis=1))
        volt_rows.append(volt[:m].reshape(n_bins, k).mean(axis=1))
        s01, multi = bin_spike_samples(spk, k, n_bins)
        spk_rows.append(s01)
        n_multi += multi
        offsets.append(spk[spk < m])
    return SweepBins(
        sweep_number=raw.sweep_number,
        current_pA=np.asarray(cur_rows, dtype=np.float32),
        voltage_mV=np.asarray(volt_rows, dtype=np.float32),
        spikes=np.asarray(spk_rows, dtype=np.float32),
        spike_offsets=tuple(offsets),
        n_multi=n_multi,
        max_abs_current_pA=max_abs,
        sampling_rate_hz=fs,
        detected=np.concatenate(detected).astype(np.int64),
    )


class _Truncated(CellDataError):
    """A sweep that stops before its last epoch ends (dropped with a warning)."""


def build_traceset(bins: Sequence[SweepBins], dt_ms: float,
                   epoch_starts_s: Sequence[float] = EPOCH_STARTS_S) -> TraceSet:
    """Stack binned sweeps (repeats) into a :class:`TraceSet`."""
    fs = bins[0].sampling_rate_hz
    return TraceSet(
        current_pA=np.stack([b.current_pA for b in bins]),
        voltage_mV=np.stack([b.voltage_mV for b in bins]),
        spikes=np.stack([b.spikes for b in bins]),
        spike_times_s=tuple(tuple(off.astype(np.float64) / fs for off in b.spike_offsets) for b in bins),
        sweep_numbers=np.asarray([b.sweep_number for b in bins], dtype=np.int64),
        epoch_starts_s=np.asarray(epoch_starts_s, dtype=np.float64),
        dt_ms=float(dt_ms),
    )


def bin_sweeps(raws: Iterable[RawSweep], dt_ms: float, window_s: float, *, specimen_id: int | str,
               detected: dict[int, np.ndarray] | None = None, detector: str = "auto") -> list[SweepBins]:
    """Bin each sweep; drop (with a warning) sweeps cut short before their last epoch.

    ``detected`` maps sweep numbers to previously detected spike samples
    (reused instead of running the detector again); ``detector`` as in :func:`bin_sweep`.
    """
    out = []
    detected = detected or {}
    for raw in raws:
        try:
            out.append(bin_sweep(raw, dt_ms, window_s, specimen_id=specimen_id,
                                 spike_samples=detected.get(raw.sweep_number), detector=detector))
        except _Truncated as exc:
            logger.warning("%s; sweep dropped", exc)
    return out


def build_recording(meta: CellMeta, dt_ms: float, window_s: float, train: Sequence[SweepBins],
                    test: Sequence[SweepBins], source: str = "") -> CellRecording:
    """Assemble a :class:`CellRecording`; the current scale is max |I| over all Noise 1 epochs."""
    scale = max(b.max_abs_current_pA for b in train)
    if not (scale > 0 and math.isfinite(scale)):
        raise CellDataError(f"specimen {meta.specimen_id}: the Noise 1 stimulus current is zero in every "
                            "epoch; these are not noise sweeps")
    n_multi = sum(b.n_multi for b in train) + sum(b.n_multi for b in test)
    if n_multi:
        logger.warning("specimen %s: %d bins of %g ms held 2 or more spikes (capped at 1); "
                       "use a smaller dt to keep every spike", meta.specimen_id, n_multi, dt_ms)
    rates = {b.sampling_rate_hz for b in list(train) + list(test)}
    return CellRecording(
        meta=meta, dt_ms=float(dt_ms), window_s=float(window_s),
        train=build_traceset(train, dt_ms), test=build_traceset(test, dt_ms),
        current_scale_pA=float(scale), n_multi_spike_bins=int(n_multi),
        sampling_rate_hz=float(rates.pop()) if len(rates) == 1 else float("nan"),
        source=source,
    )
