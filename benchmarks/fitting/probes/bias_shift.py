"""Probe: is the firing rate what limits the worst cells? The default fit, then its bias shifted (a rate
change) and scored on Noise 2, an oracle that no fit may use: a diagnostic of development cells only.
Per cell and shift: held-out ETV and the model's rate in the training window (against the recorded one)."""

from __future__ import annotations

from _common import load, parse
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.api import score_model
from cellfit.fit.fitter import predict_spikes, unique_stimuli
from cellfit.fit.select import bias_shifted

SHIFTS = (-0.1, 0.0, 0.05, 0.1, 0.2, 0.3)  # added to the fitted bias (normalised current units)


def main() -> None:
    a = parse(__doc__.splitlines()[0], "1,4,5,10,13")
    recs, keys = load(a)
    cfg = FitConfig()
    fits = fit_recordings(recs, cfg, window_s=1.0, device="cpu", progress=False)
    for (c, i), f, rec in zip(keys, fits, recs):
        rec = rec.first(1.0)  # the training window, and the held-out second the result was scored on
        stimuli, _ = unique_stimuli(rec.normalised_current("train"))
        recorded = rec.train.spikes.sum(-1).mean()
        cols = []
        for d in SHIFTS:
            model = bias_shifted(f.model, d)
            etv, _ = score_model(model, rec.normalised_current("test"), rec.test.spikes, cfg.dt_ms)
            rate = predict_spikes(model, stimuli)["spikes"].sum(-1).mean()
            cols.append(f"{d:+.2f}: {etv.etv:.2f} ({rate:.1f} Hz)")
        print(f"{c}/{i} (recorded {recorded:.1f} Hz): " + ", ".join(cols), flush=True)


if __name__ == "__main__":
    main()
