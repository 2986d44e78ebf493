r"""Calibrating a cell's drive so that it fires at a requested rate.

A :class:`~cellfit.data.synthetic.SyntheticCell` with ``target_rate_hz=(lo, hi)``
gets the ``drive`` (stimulus rheobase / model DC rheobase; for ALIF cells
the factor in the gain) at which its mean rate over the three Noise 1 epochs
is the geometric middle :math:`\sqrt{lo \cdot hi}` of the range:

1. the three Noise 1 epochs (3 s each, the cell's ``amplitudes``) are
   simulated once per candidate drive, with the cell's intrinsic noise drawn
   from a calibration stream (seeded by :data:`CALIBRATION_SEED` and the
   specimen id, shared by all candidates, so that the rate is a smooth
   function of the drive; independent of the data's ``seed``);
2. :data:`N_CANDIDATES` drives on a geometric grid over :data:`DRIVE_RANGE`
   (neighbours 22% apart) are tried; the drive is interpolated, rate linear
   in log(drive), between the two neighbours around the target.

All candidates of all cells of one family run in one vectorised simulation
(one pass: the cost of the HH integration is per step, nearly independent of
the number of rows).
The achieved rates of the written data (other noise, several repeats)
scatter around the target and are recorded in ``truth.json``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from ..protocol import EPOCH_LENGTH_S, TRAIN_STIMULUS
from .cells import SyntheticCell
from .engine import model_inputs, run_models, stimulus_rheobase
from .stimulus import epoch_starts, noise_stimulus

__all__ = ["CALIBRATION_SEED", "DRIVE_RANGE", "N_CANDIDATES", "Calibration", "calibrate_drives", "target_rate"]

CALIBRATION_SEED = 730_001
DRIVE_RANGE = (0.4, 8.0)
N_CANDIDATES = 16


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Result of a rate calibration: the drive, the target and every candidate tried."""

    target_rate_hz: tuple
    drive: float
    drives: tuple
    rates_hz: tuple

    @property
    def target_hz(self) -> float:
        return target_rate(*self.target_rate_hz)

    def as_dict(self) -> dict:
        return dict(target_rate_hz=list(self.target_rate_hz), target_hz=self.target_hz, drive=self.drive,
                    candidate_drives=list(self.drives), candidate_rates_hz=list(self.rates_hz),
                    method="Noise 1 epochs, calibration noise stream, rate interpolated linearly in log(drive)")


def target_rate(lo: float, hi: float) -> float:
    """The rate a calibration aims at: the geometric middle of ``(lo, hi)``."""
    return math.sqrt(lo * hi)


_CACHE: dict = {}


def calibrate_drives(cells: Sequence[SyntheticCell], ids: Sequence[int], fs: float) -> list[Calibration | None]:
    """The calibration of each cell with a ``target_rate_hz`` (None for the others); cached per (cell, id, fs)."""
    todo = [(c, int(s)) for c, s in zip(cells, ids) if c.target_rate_hz is not None and (c, int(s), fs) not in _CACHE]
    if todo:
        _calibrate(todo, float(fs))
    return [_CACHE[(c, int(s), fs)] if c.target_rate_hz is not None else None for c, s in zip(cells, ids)]


def _noise1_rates(items: list[tuple[SyntheticCell, int]], drives: list[np.ndarray], fs: float) -> list[np.ndarray]:
    """Mean Noise 1 rate (Hz) of each cell at each of its candidate drives."""
    dt_ms = 1000.0 / fs
    n_ep = int(round(EPOCH_LENGTH_S * fs))
    starts = epoch_starts(fs)
    jobs = []
    for (cell, sid), ds in zip(items, drives):
        rng = np.random.default_rng(np.random.SeedSequence([CALIBRATION_SEED, sid % (2**32)]))
        xi = rng.standard_normal((len(starts), n_ep))
        blocks = []
        for d in ds:
            rheobase = stimulus_rheobase(cell, float(d), fs)
            stim = noise_stimulus(TRAIN_STIMULUS, rheobase, fs, cell.amplitudes)
            rows = np.stack([stim[i0:i0 + n_ep] for i0 in starts])
            scale = float(np.max(np.abs(rows)))
            blocks.append(model_inputs(cell.params, rows, xi, scale, rheobase, float(d), dt_ms)["inputs"])
        jobs.append((cell.params, np.concatenate(blocks)))
    rates = []
    for ds, (_, spikes) in zip(drives, run_models(jobs, dt_ms)):
        counts = np.array([np.count_nonzero(s < n_ep) for s in spikes]).reshape(len(ds), len(starts))
        rates.append(counts.sum(axis=1) / (len(starts) * EPOCH_LENGTH_S))
    return rates


def _calibrate(items: list[tuple[SyntheticCell, int]], fs: float) -> None:
    grid = np.geomspace(*DRIVE_RANGE, N_CANDIDATES)
    for (cell, sid), r in zip(items, _noise1_rates(items, [grid] * len(items), fs)):
        goal = target_rate(*cell.target_rate_hz)
        what = f"specimen {sid} ({cell.model} {cell.firing_class_name}, target {cell.target_rate_hz} Hz)"
        if not np.any(r >= goal):
            raise ValueError(f"{what}: reaches only {r.max():.2f} Hz at drive {grid[-1]:g}; lower the target "
                             "or make the cell more excitable")
        j = int(np.argmax(r >= goal))
        if j == 0:
            raise ValueError(f"{what}: fires {r[0]:.2f} Hz already at drive {grid[0]:g}; raise the target "
                             "or make the cell less excitable")
        frac = (goal - r[j - 1]) / (r[j] - r[j - 1])
        drive = float(np.exp(np.log(grid[j - 1]) + frac * (np.log(grid[j]) - np.log(grid[j - 1]))))
        _CACHE[(cell, sid, fs)] = Calibration(target_rate_hz=tuple(cell.target_rate_hz), drive=drive,
                                              drives=tuple(float(d) for d in grid),
                                              rates_hz=tuple(float(x) for x in r))
