"""Result types of the data layer: cell metadata and binned noise sweeps.

Units are part of the field names: pA, mV, ms, s. Arrays are numpy float32
with shape ``(n_repeats, n_epochs, T)``: one row per recorded repeat (sweep)
of a stimulus, one column per noise epoch (2-5 s, 10-13 s, 18-21 s), and
``T = window / dt`` time bins.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np

__all__ = ["CellMeta", "TraceSet", "CellRecording", "SPLITS", "SOURCE_FEATURES", "SOURCE_BASELINE",
           "SOURCE_SPIKES", "SOURCE_MISSING", "SOURCE_GIVEN"]

#: valid ``split`` arguments of :class:`CellRecording` methods
SPLITS = ("train", "test")

#: where :attr:`CellMeta.v_rest_mV` / :attr:`CellMeta.v_thresh_mV` came from
SOURCE_FEATURES = "ephys_features"
SOURCE_BASELINE = "estimated from baseline"
SOURCE_SPIKES = "estimated from recorded spikes"
SOURCE_GIVEN = "given"
SOURCE_MISSING = "missing"  # only while loading: replaced by an estimate before a CellMeta is returned


@dataclasses.dataclass(frozen=True)
class CellMeta:
    """Metadata of one Allen Cell Types specimen.

    ``cell_class`` maps the dendrite type: ``"spiny"`` -> ``"excitatory"``,
    ``"aspiny"`` -> ``"inhibitory"``, anything else -> ``"unknown"``.
    ``v_rest_mV`` is the ephys feature ``vrest`` and ``v_thresh_mV`` the
    feature ``threshold_v_long_square`` (spike threshold at rheobase); they
    define the normalised voltage ``(v - v_rest) / (v_thresh - v_rest)``.
    ``v_rest_source`` / ``v_thresh_source`` say where each came from:
    ``"ephys_features"`` (the default), ``"estimated from baseline"`` (median
    pre-stimulus voltage of the noise sweeps), ``"estimated from recorded
    spikes"`` (median threshold voltage of the detected spikes) or ``"given"``
    (by the caller); see :mod:`cellfit.data.load`.
    """

    specimen_id: int
    name: str
    species: str
    layer: str
    dendrite_type: str
    cell_class: str
    transgenic_line: str
    disease_state: str
    v_rest_mV: float
    v_thresh_mV: float
    v_rest_source: str = SOURCE_FEATURES
    v_thresh_source: str = SOURCE_FEATURES


@dataclasses.dataclass(frozen=True, eq=False)
class TraceSet:
    """One stimulus (Noise 1 = train, Noise 2 = test), binned at ``dt_ms``.

    Attributes
    ----------
    current_pA : (n_repeats, n_epochs, T) float32
        Stimulus current averaged over each bin.
    voltage_mV : (n_repeats, n_epochs, T) float32
        Membrane potential averaged over each bin.
    spikes : (n_repeats, n_epochs, T) float32
        1 where the bin holds a spike (AllenSDK ``threshold_t``), else 0.
        Bins that held two or more spikes are capped at 1
        (counted in :attr:`CellRecording.n_multi_spike_bins`).
    spike_times_s : tuple of tuples of 1-D float64 arrays
        ``spike_times_s[r][e]``: spike times of repeat r, epoch e, in seconds
        from the start of the epoch window, exact (not binned).
    sweep_numbers : (n_repeats,) int64
        NWB sweep number of each repeat.
    epoch_starts_s : (n_epochs,) float64
        Start of each window within the sweep, in seconds.
    dt_ms : float
        Bin width.
    """

    current_pA: np.ndarray
    voltage_mV: np.ndarray
    spikes: np.ndarray
    spike_times_s: Tuple[Tuple[np.ndarray, ...], ...]
    sweep_numbers: np.ndarray
    epoch_starts_s: np.ndarray
    dt_ms: float

    @property
    def n_repeats(self) -> int:
        return int(self.current_pA.shape[0])

    @property
    def n_epochs(self) -> int:
        return int(self.current_pA.shape[1])

    @property
    def n_bins(self) -> int:
        return int(self.current_pA.shape[2])

    def window(self, start: int, stop: int) -> "TraceSet":
        """Bins ``[start, stop)`` of every repeat and epoch; spike times kept in that window, from its start."""
        lo_s, hi_s = start * self.dt_ms / 1000.0, stop * self.dt_ms / 1000.0
        times = tuple(tuple(t[(t >= lo_s) & (t < hi_s)] - lo_s for t in rep) for rep in self.spike_times_s)
        return dataclasses.replace(
            self, current_pA=self.current_pA[..., start:stop], voltage_mV=self.voltage_mV[..., start:stop],
            spikes=self.spikes[..., start:stop], spike_times_s=times,
            epoch_starts_s=self.epoch_starts_s + lo_s)


@dataclasses.dataclass(frozen=True, eq=False)
class CellRecording:
    """The training and test noise sweeps of one cell, binned and ready to fit.

    ``current_scale_pA`` is the largest absolute stimulus current over all
    Noise 1 epochs (full 3 s each, at the file's sampling rate), so it does
    not depend on ``dt_ms`` or ``window_s``. The normalised current
    ``current_pA / current_scale_pA`` lies in [-1, 1] on the training set.
    """

    meta: CellMeta
    dt_ms: float
    window_s: float
    train: TraceSet
    test: TraceSet
    current_scale_pA: float
    n_multi_spike_bins: int
    sampling_rate_hz: float = float("nan")
    source: str = ""

    def first(self, window_s: float) -> "CellRecording":
        """The same cell with only the first ``window_s`` seconds of every epoch (train and test)."""
        n = int(round(window_s * 1000.0 / self.dt_ms))
        if not 0 < n <= self.train.n_bins:
            raise ValueError(f"window {window_s} s is not within this recording's {self.window_s} s")
        if n == self.train.n_bins:
            return self
        return dataclasses.replace(self, window_s=float(window_s), train=self.train.window(0, n),
                                   test=self.test.window(0, n))

    def traces(self, split: str) -> TraceSet:
        """Return the :class:`TraceSet` of ``split`` ("train" or "test")."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.train if split == "train" else self.test

    def normalised_current(self, split: str) -> np.ndarray:
        """Current in unit range: ``current_pA / current_scale_pA``, (R, E, T) float32."""
        cur = self.traces(split).current_pA
        return (cur / np.float32(self.current_scale_pA)).astype(np.float32)

    def normalised_voltage(self, split: str) -> np.ndarray:
        """Voltage ``(v - v_rest) / (v_thresh - v_rest)``: rest 0, threshold 1, (R, E, T) float32."""
        v = self.traces(split).voltage_mV
        span = self.meta.v_thresh_mV - self.meta.v_rest_mV
        return ((v - np.float32(self.meta.v_rest_mV)) / np.float32(span)).astype(np.float32)
