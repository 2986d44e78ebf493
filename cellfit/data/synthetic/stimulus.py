"""The Allen "Noise 1" / "Noise 2" stimulus of synthetic cells.

Pink (1/f power, 1-100 Hz) noise with coefficient of variation
:data:`NOISE_CV` on a DC offset of :data:`AMPLITUDES` (0.75, 1.0, 1.5) x the
cell's stimulus rheobase in the epochs 2-5 s, 10-13 s and 18-21 s, a -20 pA,
10 ms test pulse at 20 ms, zero elsewhere; sweeps are :data:`SWEEP_LENGTH_S`
long. The noise waveform is fixed per stimulus name (one seed for Noise 1,
another for Noise 2, shared by all cells as in the Allen data), so every
repeat of a stimulus is identical; repeats differ only through the cell's
intrinsic noise. Currents are quantised like an ADC (:data:`I_QUANTUM_A`)
and stored as float32 amperes.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..protocol import EPOCH_LENGTH_S, EPOCH_STARTS_S, TEST_STIMULUS, TRAIN_STIMULUS

__all__ = [
    "SWEEP_LENGTH_S",
    "EXPERIMENT_START_S",
    "TEST_PULSE",
    "NOISE_CV",
    "NOISE_BAND_HZ",
    "AMPLITUDES",
    "STIMULI",
    "I_QUANTUM_A",
    "noise_stimulus",
    "epoch_starts",
]

SWEEP_LENGTH_S = 22.0
EXPERIMENT_START_S = 0.75
TEST_PULSE = (0.02, 0.01, -20.0)  # start s, duration s, amplitude pA
NOISE_CV = 0.2
NOISE_BAND_HZ = (1.0, 100.0)
AMPLITUDES = (0.75, 1.0, 1.5)
#: per stimulus: (pink-noise seed, Allen stimulus code)
STIMULI = {
    TRAIN_STIMULUS: (1150204, "C1NSSEED_1150204"),
    TEST_STIMULUS: (2150112, "C1NSSEED_2150112"),
}
I_QUANTUM_A = 2.0**-46  # about 0.014 pA


def epoch_starts(fs: float) -> list[int]:
    """Sample indices at which the three noise epochs start."""
    return [int(round(s * fs)) for s in EPOCH_STARTS_S]


@functools.lru_cache(maxsize=8)
def _pink_epochs(seed: int, n: int, fs: float) -> np.ndarray:
    """Unit-s.d. pink noise (1/f power, 1-100 Hz), one row per epoch: (n_epochs, n)."""
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    shape = np.zeros_like(freqs)
    band = (freqs >= NOISE_BAND_HZ[0]) & (freqs <= NOISE_BAND_HZ[1])
    shape[band] = 1.0 / np.sqrt(freqs[band])
    out = np.empty((len(EPOCH_STARTS_S), n))
    for e in range(len(EPOCH_STARTS_S)):
        z = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
        out[e] = (z - z.mean()) / z.std()
    out.setflags(write=False)
    return out


def noise_stimulus(stimulus_name: str, rheobase_pA: float, fs: float,
                   amplitudes: Sequence[float] = AMPLITUDES) -> np.ndarray:
    """The full-sweep stimulus of ``stimulus_name`` in pA, quantised as stored.

    Returns a float64 array of ``SWEEP_LENGTH_S * fs`` samples whose values
    are exactly the float32 amperes in the file times 1e12.
    """
    seed, _ = STIMULI[stimulus_name]
    n_sweep = int(round(SWEEP_LENGTH_S * fs))
    n_ep = int(round(EPOCH_LENGTH_S * fs))
    z = _pink_epochs(seed, n_ep, float(fs))
    stim = np.zeros(n_sweep)
    t0, dur, amp = TEST_PULSE
    stim[int(round(t0 * fs)): int(round((t0 + dur) * fs))] = amp
    for e, start in enumerate(EPOCH_STARTS_S):
        i0 = int(round(start * fs))
        stim[i0:i0 + n_ep] = amplitudes[e] * rheobase_pA * (1.0 + NOISE_CV * z[e])
    return _quantise_current_pA(stim)


def _quantise_current_pA(stim_pA: np.ndarray) -> np.ndarray:
    q = np.round(stim_pA * 1e-12 / I_QUANTUM_A) * I_QUANTUM_A
    return q.astype(np.float32).astype(np.float64) * 1e12
