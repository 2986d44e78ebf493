"""Probe (after round 13): does a longer training window lift the worst development cells? The default fit
(today's FitConfig) trained on the first ``--window`` seconds of every Noise 1 epoch, with the rest of the
3 s epoch (``3 - window`` s) as its validation seconds, and scored as always on the first second of Noise 2
(never used to choose). One line per cell: the kept variant and its held-out ETV; compare with the default's
rows (window 1 s) in benchmarks/fitting/dev-panel.jsonl, label dev|dev_seedN, variant burst_etv. Development
cells only; nothing here changes the library."""

from __future__ import annotations

import statistics
import time

from _common import append_rows, load, parse
from cellfit.fit import FitConfig
from cellfit.fit.api import fit_recordings, score_model


def main() -> None:
    a = parse(__doc__.splitlines()[0], "7,12,13",
              lambda ap: ap.add_argument("--window", type=float, default=2.0,
                                         help="training seconds of each epoch (default %(default)s)"))
    if not 1.0 <= a.window < 3.0:
        raise SystemExit("--window must lie in [1, 3) s (the rest of the 3 s epoch validates)")
    config = FitConfig(validation_s=min(2.0, 3.0 - a.window))
    recs, keys = load(a)
    t0 = time.perf_counter()
    fits = fit_recordings(recs, config, window_s=a.window, device="cpu", seed=0, progress=False)
    wall = time.perf_counter() - t0
    held = []
    for rec, key, fit in zip(recs, keys, fits):
        first = rec.first(1.0)
        etv = float(score_model(fit.model, first.normalised_current("test"), first.test.spikes, config.dt_ms)[0].etv)
        held.append(etv)
        row = dict(cache=key[0], position=key[1], window_s=a.window, model=fit.result.model, held_out=etv,
                   etv_on_window=fit.result.etv, selection=fit.result.selection, wall_s=wall, n_cells=len(fits))
        print(f"{key[0]} cell {key[1]}: window {a.window:g} s, kept {fit.result.model}, held-out ETV (first second) "
              f"{etv:.3f}", flush=True)
        append_rows(a.out, [row])
    print(f"{len(held)} cells, {wall:.0f} s: mean {statistics.mean(held):.3f}, median {statistics.median(held):.3f}, "
          f"< 0.7: {sum(h < 0.7 for h in held)}")


if __name__ == "__main__":
    main()
