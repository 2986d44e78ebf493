"""Probe: the stimulus high-passed, x - k * lowpass_tau(x) (a linear subthreshold adaptation current, without
spikes), before the default fit; does it lift the cells no model class fits? Development cells only."""

from __future__ import annotations

from unittest import mock

import numpy as np

from _common import ONE_START, load, parse
from cellfit.data.types import CellRecording
from cellfit.fit import FitConfig, fit_recordings

SETTINGS = "0:0,0.5:50,0.5:300,0.9:50,0.9:300,0.9:1000"  # k:tau_ms pairs


def lowpass(x: np.ndarray, tau_ms: float, dt_ms: float) -> np.ndarray:
    """Unit-gain exponential low-pass along the last axis, from 0 at the window's start (the epoch's rest)."""
    a = np.exp(-dt_ms / tau_ms)
    T = x.shape[-1]
    kernel = (1 - a) * a ** np.arange(T)
    return np.fft.irfft(np.fft.rfft(x, 2 * T) * np.fft.rfft(kernel, 2 * T), 2 * T)[..., :T]


def main() -> None:
    a = parse(__doc__.splitlines()[0], "6,7,10,12,13", lambda ap: ap.add_argument(
        "--settings", default=SETTINGS, help="k:tau_ms pairs, comma-separated (default %(default)s)"))
    settings = [tuple(float(v) for v in s.split(":")) for s in a.settings.split(",")]
    recs, keys = load(a)
    plain = CellRecording.normalised_current
    for k, tau in settings:
        def high_passed(self, split, k=k, tau=tau):
            x = plain(self, split)
            return x if k == 0 else (x - k * lowpass(x, tau, self.dt_ms)).astype(np.float32)
        with mock.patch.object(CellRecording, "normalised_current", high_passed):
            etv = [f.result.etv for f in fit_recordings(recs, FitConfig(**ONE_START), window_s=1.0, device="cpu", progress=False)]
        print(f"k {k} tau {tau:g} ms: " + " ".join(f"{c}/{i}:{e:.2f}" for (c, i), e in zip(keys, etv))
              + f" | median {np.median(etv):.3f}", flush=True)

if __name__ == "__main__":
    main()
