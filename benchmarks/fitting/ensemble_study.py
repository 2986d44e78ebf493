"""Would averaging the look-alike candidates' predictions help? Held-out ETV of ensembles of the default's candidates.

Usage::

    python benchmarks/fitting/ensemble_study.py CACHE OUT.jsonl --label dev_seed6
    python benchmarks/fitting/ensemble_study.py --summary OUT.jsonl --label dev_seed6 dev_seed7 dev_seed8

For the cells of a synthetic panel this fits the default's candidates (as ``oracle.py``), predicts Noise 2 with
each, and scores the mean of the predictions of several pools of candidates (each pool read from training data only:
training losses and the choice) with the held-out ETV (a mean of spike trains is a rate; the ETV smooths it as it
smooths a spike train). The control: the kept fit's prediction alone, smoothed by a further Gaussian
(:data:`SMOOTH_MS`), also a rate: the part of an ensemble's gain that smoothing alone would give. One JSON line per
cell: the kept fit's ETV and each pool's. ``--summary`` prints, per pool,
median, mean, minimum and how many cells lie below 0.7, and how many rose or fell by more than 0.02. A study on
development panels: an ensemble is a prediction, not a parameter set, so the library would report the kept fit's
parameters either way.
"""

from __future__ import annotations

import json
import math
import pathlib
import statistics
import sys

import numpy as np

from cellfit.fit import FitConfig
from cellfit.fit.api import score_model
from cellfit.fit.metrics import etv_components, gaussian_smooth

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from oracle import append_rows, candidates_held_out, study_args, study_parser  # noqa: E402  (this folder)
from panel_eval import specimen_ids  # noqa: E402

WITHIN = (0.02, 0.05, 0.1, 0.2)
#: extra Gaussian smoothing of the kept fit's prediction alone (ms): how much of an ensemble's gain smoothing gives
SMOOTH_MS = (2.0, 5.0, 10.0)


def pools(cands, kept: int) -> dict[str, list[int]]:
    """Pool name -> candidate indices (training data only: losses, model variants, the kept index)."""
    alive = [i for i, c in enumerate(cands) if not c.failed]
    loss = {i: cands[i].best_loss for i in alive}
    model = {i: cands[i].init.get("model", "alif") for i in alive}
    out = {"kept": [kept]}
    for w in WITHIN:
        out[f"loss within {w:g} of kept"] = sorted({kept} | {i for i in alive if loss[i] <= loss[kept] * (1 + w)})
        out[f"kept's class, loss within {w:g}"] = sorted(
            {kept} | {i for i in alive if model[i] == model[kept] and loss[i] <= loss[kept] * (1 + w)})
    by_loss = sorted(alive, key=loss.get)
    for k in (2, 3):
        out[f"kept and the {k - 1} lowest other losses"] = sorted({kept} | set([i for i in by_loss if i != kept][:k - 1]))
    return out


def study(cache: pathlib.Path, seed: int = 0) -> list[dict]:
    config = FitConfig(dt_ms=0.1)
    out = []
    for rows, cands, rec in candidates_held_out(cache, specimen_ids(cache), config, seed=seed, keep_models=True):
        kept = next(r["candidate"] for r in rows if r["kept"])
        current, spikes = rec.normalised_current("test"), rec.test.spikes
        preds = {i: score_model(c.model, current, spikes, config.dt_ms)[1] for i, c in enumerate(cands)
                 if not c.failed}
        scores = {}
        for extra in SMOOTH_MS:  # the control: the kept fit's prediction alone, smoothed more (a rate, as a mean is)
            smooth = gaussian_smooth(preds[kept], extra, config.dt_ms)
            scores[f"kept, smoothed {extra:g} ms more"] = dict(
                etv=etv_components(smooth, spikes, config.dt_ms).etv, n=1)
        for name, members in pools(cands, kept).items():
            mean = np.mean([preds[i] for i in members], axis=0)
            try:
                scores[name] = dict(etv=etv_components(mean, spikes, config.dt_ms).etv, n=len(members))
            except ValueError:
                scores[name] = dict(etv=math.nan, n=len(members))
        out.append(dict(specimen_id=rows[0]["specimen_id"], kept_etv=rows[kept]["held_out_etv"], pools=scores,
                        best_candidate=max(r["held_out_etv"] for r in rows if not r["failed"])))
    return out


def summary(path: pathlib.Path, labels: list[str]) -> None:
    rows = [r for r in map(json.loads, open(path)) if r["label"] in labels]
    print(f"{len(rows)} cells ({', '.join(labels)})")
    base = [r["kept_etv"] for r in rows]
    for name in rows[0]["pools"]:
        v = [r["pools"][name]["etv"] for r in rows]
        size = statistics.mean(r["pools"][name]["n"] for r in rows)
        up = sum(1 for a, b in zip(v, base) if a > b + 0.02)
        down = sum(1 for a, b in zip(v, base) if a < b - 0.02)
        print(f"{name:40s} median {statistics.median(v):.3f} mean {statistics.mean(v):.3f} min {min(v):.3f} "
              f"below 0.7: {sum(x < 0.7 for x in v):2d}  up {up:2d} down {down:2d}  mean pool size {size:.1f}")
    best = [r["best_candidate"] for r in rows]
    print(f"{'best single candidate (not a rule)':40s} median {statistics.median(best):.3f} mean "
          f"{statistics.mean(best):.3f} min {min(best):.3f} below 0.7: {sum(x < 0.7 for x in best):2d}")


def main() -> None:
    ap = study_parser(__doc__.split("\n\n")[0], "--summary", "rows to summarise")
    args = study_args(ap, "--summary", summary)
    if args is None:
        return
    rows = study(args.cache, seed=args.seed)
    append_rows(args.out, [dict(label=args.label[0], **r) for r in rows])
    for r in rows:
        print(args.label[0], r["specimen_id"], f"kept {r['kept_etv']:.3f}", " ".join(
            f"{name.split(' of ')[0]}:{p['etv']:.2f}" for name, p in r["pools"].items()), flush=True)


if __name__ == "__main__":
    main()
