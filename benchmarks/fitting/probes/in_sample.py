"""Probe: can the model classes fit the worst cells at all? Each is fitted to its held-out Noise 2 sweeps
(the training window is Noise 2's first second, the following Noise 2 seconds validate) and scored on the
same second: an in-sample ceiling of what a class can represent, not a result. Development cells only.
Where even this stays below 0.7 the class, not the fit or the data, is what limits the cell."""

from __future__ import annotations

import dataclasses

import numpy as np

from _common import load, parse
from cellfit.fit import FitConfig, fit_recordings

MODELS = ("alif", "alif_asc", "alif_reset_asc")


def main() -> None:
    a = parse(__doc__.splitlines()[0], "7,10,12,13")
    recs, keys = load(a)
    if min(r.test.n_bins for r in recs) < recs[0].train.n_bins:
        raise SystemExit("Noise 2 is shorter than Noise 1 here: load fewer seconds")
    swapped = [dataclasses.replace(r, train=r.test) for r in recs]  # Noise 2 trains, validates and scores
    for model in MODELS:
        fits = fit_recordings(swapped, FitConfig(model=model), window_s=1.0, device="cpu", progress=False)
        etv = [f.result.etv for f in fits]
        print(f"{model} in sample: " + " ".join(f"{c}/{i}:{e:.2f}" for (c, i), e in zip(keys, etv))
              + f" | median {np.median(etv):.3f}", flush=True)


if __name__ == "__main__":
    main()
