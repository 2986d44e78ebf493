"""Would an onset the fit did not see choose better among the candidates? Each candidate refitted without one epoch.

Usage::

    python benchmarks/fitting/epoch_cv_study.py CACHE OUT.jsonl --label dev_seed1 [--specimens ID ...]
    python benchmarks/fitting/epoch_cv_study.py --rules OUT.jsonl --label dev_seed0 dev_seed1 ...

The held-out score sees each Noise 2 epoch's onset (its first second, from rest). The validation seconds that the
choice reads see the adapted state (seconds 2-3 of each Noise 1 epoch), and each epoch's onset is in the training
window. This study asks whether the onset of an epoch the fit did not see tells the candidates apart better: for the
cells of a synthetic panel it fits the default's candidates (as ``oracle.py``), then refits every candidate from its
own start, with the default's schedule, once per Noise 1 epoch on the training windows of the other epochs
(leave one epoch out; one batched model per variant), and predicts the left-out epoch's training window with that
refit. The three left-out predictions, one per epoch, are scored together against the recorded repeats (ETV,
Gaussian 10 ms as the held-out score): ``cv_etv``. One JSON line per candidate: ``oracle.py``'s fields (the
held-out ETV on Noise 2 is for this diagnosis only: no rule may read it) and ``cv_etv``, ``cv_fold_etv`` (each
left-out epoch on its own; None where its repeats hold no reliable spikes).

``--rules`` reads such rows and prints, per choice rule (rules read only training data: loss, validation ETV,
``cv_etv``), the median, mean and minimum held-out ETV of the chosen candidates, how many lie below 0.7, and how
many cells rise or fall by more than 0.02 against the kept candidate. Costs about twice the candidates' training.
"""

from __future__ import annotations

import math
import pathlib
import statistics
import sys
import time

import numpy as np

from cellfit.device import resolve_device
from cellfit.fit import FitConfig
from cellfit.fit.fitter import TrainingSet, predict_population, unique_stimuli
from cellfit.fit.metrics import etv_components
from cellfit.fit.select import fit_by_variant

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from oracle import (append_rows, cache_specimens, candidates_held_out, cells_of, finite, kept_row,  # noqa: E402
                    print_rules, study_args, study_parser)  # (this folder)


def _without_epoch(data: TrainingSet, e: int) -> TrainingSet:
    keep = [i for i in range(data.current.shape[1]) if i != e]
    return TrainingSet(data.current[:, keep], data.spikes[:, keep],
                       None if data.voltage is None else data.voltage[:, keep])


def _etv(pred: np.ndarray, rec: np.ndarray, dt_ms: float) -> float:
    try:
        return float(etv_components(pred, rec, dt_ms).etv)
    except ValueError:  # repeats without reliable spikes
        return math.nan


def study(cache: pathlib.Path, ids: list[int], seed: int = 0) -> list[dict]:
    config = FitConfig(dt_ms=0.1)
    per_cell = candidates_held_out(cache, ids, config, seed=seed, keep_models=True)
    jobs, where = [], []
    for k, (rows, cands, rec) in enumerate(per_cell):
        data = TrainingSet(rec.normalised_current("train"), rec.train.spikes, rec.normalised_voltage("train"))
        n_ep = data.current.shape[1]
        for i, c in enumerate(cands):
            if c.failed:
                continue
            for e in range(n_ep):
                jobs.append((k, _without_epoch(data, e), dict(c.init)))
                where.append((k, i, e))
    fitted = fit_by_variant(jobs, config, resolve_device("cpu"), seed, False, None)
    folds: dict = {}
    for (k, i, e), st in zip(where, fitted):
        folds.setdefault((k, i), {})[e] = st
    out = []
    for k, (rows, cands, rec) in enumerate(per_cell):
        current = np.asarray(rec.normalised_current("train"), dtype=np.float32)  # (R, E, T): the training window
        recorded = np.asarray(rec.train.spikes)
        n_ep = current.shape[1]
        for r in rows:
            fold = folds.get((k, r["candidate"]))
            if fold is None or any(fold[e].failed for e in range(n_ep)):
                out.append(dict(r, cv_etv=None, cv_fold_etv=None))
                continue
            pred = np.zeros(current.shape[1:], dtype=np.float64)  # (E, T)
            for e in range(n_ep):
                stimuli, index = unique_stimuli(current[:, e:e + 1])
                spikes = predict_population([fold[e].model], stimuli)[0]  # (U, T)
                pred[e] = spikes[index[:, 0]].mean(axis=0)
            whole = _etv(pred, recorded, config.dt_ms)
            each = [_etv(pred[e:e + 1], recorded[:, e:e + 1], config.dt_ms) for e in range(n_ep)]
            out.append(dict(r, cv_etv=None if math.isnan(whole) else whole,
                            cv_fold_etv=[None if math.isnan(x) else x for x in each]))
    return out


def _rules(path: pathlib.Path, labels: list[str]) -> None:
    cells = cells_of(path, labels)
    ok, kept = finite, kept_row

    def best_cv(rs):
        scored = [r for r in rs if not r["failed"] and ok(r["cv_etv"])]
        return max(scored, key=lambda r: r["cv_etv"]) if scored else kept(rs)

    def kept_unless_cv(m):
        def pick(rs):
            k, b = kept(rs), best_cv(rs)  # the kept one unscored: the best scored one
            return b if not ok(k["cv_etv"]) or b["cv_etv"] >= k["cv_etv"] + m else k
        return pick

    def cv_veto(d):  # today's within-variant rule with the veto measured on cv_etv from the variant's best
        def pick(rs):
            k = kept(rs)
            pool = [r for r in rs if r["model"] == k["model"] and not r["failed"] and ok(r["cv_etv"])]
            if not pool:
                return k
            top = max(r["cv_etv"] for r in pool)
            return min((r for r in pool if r["cv_etv"] >= top - d), key=lambda r: r["train_loss"])
        return pick

    rules = {"default (kept)": kept, "best cv_etv": best_cv}
    for m in (0.05, 0.1, 0.2):
        rules[f"kept unless cv_etv higher by {m:g}"] = kept_unless_cv(m)
    for d in (0.05, 0.1):
        rules[f"kept variant: lowest loss within {d:g} of its best cv_etv"] = cv_veto(d)
    print_rules(cells, labels, rules, 58)
    # which score orders a cell's candidates as Noise 2 does? Spearman within each cell with 3+ scored candidates
    for key in ("validation_etv", "cv_etv", "train_loss"):
        rhos = []
        for rs in cells.values():
            pts = [(r[key], r["held_out_etv"]) for r in rs if not r["failed"] and ok(r[key]) and ok(r["held_out_etv"])]
            if len(pts) >= 3:
                a = np.argsort(np.argsort([p[0] for p in pts])).astype(float)
                b = np.argsort(np.argsort([p[1] for p in pts])).astype(float)
                if a.std() > 0 and b.std() > 0:
                    rhos.append(float(np.corrcoef(a, b)[0, 1]) * (-1.0 if key == "train_loss" else 1.0))
        if rhos:
            print(f"rank correlation with the held-out ETV within a cell, {key}{' (negated)' if key == 'train_loss' else ''}: "
                  f"median {statistics.median(rhos):.2f} over {len(rhos)} cells")


def main() -> None:
    ap = study_parser(__doc__.split("\n\n")[0], "--rules", "rows to apply the choice rules to")
    ap.add_argument("--specimens", type=int, nargs="+", default=None, help="only these cells (default: all)")
    args = study_args(ap, "--rules", _rules)
    if args is None:
        return
    ids = cache_specimens(ap, args.cache, args.specimens)
    t0 = time.perf_counter()
    rows = study(args.cache, ids, seed=args.seed)
    wall = time.perf_counter() - t0
    append_rows(args.out, [dict(label=args.label[0], wall_s=wall, **r) for r in rows])
    by_cell: dict = {}
    for r in rows:
        by_cell.setdefault(r["specimen_id"], []).append(r)
    for sid, rs in by_cell.items():
        k = next(r for r in rs if r["kept"])
        print(f"{args.label[0]} {sid}: kept {k['model']} held {k['held_out_etv']:.3f} | " + " ".join(
            f"{r['model'].replace('alif_', '') or 'alif'}:{r['held_out_etv']:.2f}/"
            f"{'-' if r['cv_etv'] is None else format(r['cv_etv'], '.2f')}" for r in rs), flush=True)


if __name__ == "__main__":
    main()
