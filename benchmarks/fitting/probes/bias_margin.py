"""Probe: where in the range of biases that the training window cannot tell apart should a fit sit?

After the HH IB probe family (FITTING.md): a bias shift of a few hundredths that leaves the model's training-window
spike counts unchanged moves the held-out ETV by up to 0.6 either way. For each cell: the default fit, then its bias
shifted by each of ``SHIFTS`` (normalised current units); per shift, whether the model's spike count in each training
epoch equals the unshifted fit's and the ETV on the validation seconds (both training data), and the held-out ETV on
Noise 2 (an oracle for this diagnosis and for checking a rule: no rule may read it). One JSON line per cell
(``--out``); ``--rules ROWS [--label L ...]`` compares, offline, today's bias with the largest shift of the
unchanged-count run around zero, half-way to it, the run's middle and the shift of the run with the best validation
ETV. One cache per call when ``--label`` is given.

    python benchmarks/fitting/probes/bias_margin.py PROBE_IB85 --cells 1,2,3,4,5,6 --label probe_hh_ib_s85 --out rows.jsonl
    python benchmarks/fitting/probes/bias_margin.py --rules rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys

import numpy as np

from _common import append_rows, load, parse
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.api import score_model
from cellfit.fit.fitter import predict_spikes, unique_stimuli
from cellfit.fit.metrics import etv_components
from cellfit.fit import select
from cellfit.fit.select import bias_shifted

SHIFTS = tuple(round(0.01 * k, 2) for k in range(-10, 11))


def validation_etv(model, whole, n_train: int, dt_ms: float) -> float | None:
    """ETV on the validation seconds (Noise 1 after the training window; the model run from each epoch's onset)."""
    stimuli, index = unique_stimuli(whole.normalised_current("train"))
    pred = np.asarray(predict_spikes(model, stimuli)["spikes"])[..., n_train:]
    try:
        return etv_components(pred[index].mean(axis=0), whole.train.spikes[..., n_train:], dt_ms).etv
    except ValueError:  # no reliable validation spikes
        return None


def cell_row(fit, whole, cfg: FitConfig) -> dict:
    rec = whole.first(1.0)  # the training window, and the held-out second the result is scored on
    n_train = rec.train.n_bins
    stimuli, _ = unique_stimuli(rec.normalised_current("train"))
    counts, etvs, vals = [], [], []
    for d in SHIFTS:
        model = bias_shifted(fit.model, d)
        counts.append(np.asarray(predict_spikes(model, stimuli)["spikes"]).sum(-1).tolist())
        vals.append(validation_etv(model, whole, n_train, cfg.dt_ms))
        try:
            etvs.append(score_model(model, rec.normalised_current("test"), rec.test.spikes, cfg.dt_ms)[0].etv)
        except ValueError:
            etvs.append(None)
    zero = SHIFTS.index(0.0)
    same = [c == counts[zero] for c in counts]
    return dict(specimen_id=int(rec.meta.specimen_id), model=fit.result.model, shifts=list(SHIFTS), etv=etvs,
                same_count=same, train_counts=counts, validation_etv=vals)


def unchanged_run(row: dict) -> list[int]:
    """Indices of the shifts around zero whose training-window counts equal the unshifted fit's (a contiguous run;
    the library's :func:`cellfit.fit.select.unchanged_run`)."""
    lo, hi = select.unchanged_run(row["same_count"], row["shifts"].index(0.0))
    return list(range(lo, hi + 1))


def _best_validation(row: dict, run: list[int]) -> int:
    """The shift of ``run`` with the highest validation ETV, as the library's tie-break picks it
    (:func:`cellfit.fit.select.best_in_run`)."""
    return select.best_in_run(row["validation_etv"], run[0], run[-1], row["shifts"].index(0.0))


def rules(path: pathlib.Path, labels: list[str]) -> None:
    rows = [r for r in map(json.loads, open(path)) if not labels or r["label"] in labels]
    base = [r["etv"][r["shifts"].index(0.0)] for r in rows]
    runs = [unchanged_run(r) for r in rows]
    out = {"today's bias": base,
           "largest shift, counts unchanged": [r["etv"][run[-1]] for r, run in zip(rows, runs)],
           "half-way to the largest": [r["etv"][(r["shifts"].index(0.0) + run[-1]) // 2] for r, run in zip(rows, runs)],
           "middle of the unchanged run": [r["etv"][run[len(run) // 2]] for r, run in zip(rows, runs)]}
    if all("validation_etv" in r for r in rows):
        out["best validation ETV in the unchanged run"] = [r["etv"][_best_validation(r, run)]
                                                           for r, run in zip(rows, runs)]
    width = statistics.median(len(run) - 1 for run in runs) * 0.01
    print(f"{len(rows)} cells; unchanged run width: median {width:.2f} (bias units)")
    for name, v in out.items():
        v = [x if x is not None else float("nan") for x in v]
        up = sum(a > b + 0.05 for a, b in zip(v, base))
        down = sum(a < b - 0.05 for a, b in zip(v, base))
        print(f"{name:36s} median {np.nanmedian(v):.3f} mean {np.nanmean(v):.3f} min {np.nanmin(v):.3f} "
              f"below 0.7: {sum(x < 0.7 for x in v):2d}  up {up:2d} down {down:2d}")


def main() -> None:
    if "--rules" in sys.argv:  # offline: no caches, no fitting
        ap = argparse.ArgumentParser(description="compare biases on recorded rows")
        ap.add_argument("--rules", type=pathlib.Path, required=True, help="rows written by --out")
        ap.add_argument("--label", nargs="*", default=[], help="the labels to read (default all)")
        b = ap.parse_args()
        rules(b.rules, b.label)
        return
    a = parse(__doc__.splitlines()[0], "1,2,3,4,5,6",
              lambda ap: ap.add_argument("--label", default="", help="label written with every row (default the "
                                                                      "cache's folder name)"))
    if a.label and len(a.caches) > 1:
        raise SystemExit("--label names one cache's rows: give one cache per call (or no --label: each cache's name)")
    recs, keys = load(a)
    cfg = FitConfig()
    fits = fit_recordings(recs, cfg, window_s=1.0, device="cpu", progress=False)
    rows = [dict(label=a.label or cache, position=i, **cell_row(f, rec, cfg)) for (cache, i), f, rec in
            zip(keys, fits, recs)]
    append_rows(a.out, rows)
    for r in rows:
        run = unchanged_run(r)
        print(f"{r['label']}/{r['position']} {r['model']}: unchanged "
              f"{r['shifts'][run[0]]:+.2f}..{r['shifts'][run[-1]]:+.2f} | "
              + " ".join(f"{s:+.2f}:{'-' if e is None else format(e, '.2f')}{'' if ok else '*'}"
                         for s, e, ok in zip(r["shifts"], r["etv"], r["same_count"])), flush=True)


if __name__ == "__main__":
    main()
