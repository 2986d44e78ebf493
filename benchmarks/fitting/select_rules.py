"""Evaluate selection rules offline on the candidates written by ``select_study.py``.

Usage::

    python benchmarks/fitting/select_rules.py OUT.jsonl [--label dev dev_seed1 dev_seed2]

A rule picks one candidate per cell from what a fit can see (validation ETVs, training
loss); the held-out ETV of the picked candidate is then summarised over the cells (and, on
ALIF cells, how often the picked tau_adapt lies within 15% of the truth). Rows of
``select_study.py --diverse`` (one start per grid tau_adapt, round 4) get the rules over starts
of one model class (``search_rules``), the others the rules over model classes (``rules``). Run it on
development rows only: a rule chosen on the test panel's rows would be tuned on the test panel.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict

import numpy as np

MODELS_ALL = ("alif", "alif_asc", "alif_reset_asc")


def _pick(cands: list[dict], models: tuple, starts: int, window: str | None, margin: float) -> dict:
    """The candidate a rule keeps: among ``models`` x the first ``starts`` grid points, the best by
    ``window``'s validation ETV, where a candidate of another model than ALIF must beat the best ALIF
    candidate by ``margin``; ``window=None``: the lowest training loss."""
    pool = [c for c in cands if c["model"] in models and c["start_rank"] < starts and not c["failed"]]
    if not pool:
        return cands[0]
    if window is None:
        return min(pool, key=lambda c: c["train_loss"])
    def score(c):
        v = c[window]
        v = -math.inf if v is None or not math.isfinite(v) else v
        return v - (margin if c["model"] != "alif" else 0.0)
    return max(pool, key=score)


def rules() -> dict:
    out = {"default (alif, first start)": (("alif",), 1, "val_2nd", 0.0)}
    for window in ("val_2nd", "val_2nd_3rd"):
        for models in (MODELS_ALL, ("alif", "alif_asc")):
            for starts in (1, 2):
                for margin in (0.0, 0.05, 0.1):
                    name = f"{'+'.join(m.replace('alif_', '') for m in models)} x{starts} {window} m{margin:g}"
                    out[name] = (models, starts, window, margin)
        out[f"alif x2 {window}"] = (("alif",), 2, window, 0.0)
    out["alif x2 train loss"] = (("alif",), 2, None, 0.0)
    out["all x2 train loss"] = (MODELS_ALL, 2, None, 0.0)
    return out


def _val(c: dict) -> float:
    v = c.get("val_2nd_3rd")
    return -math.inf if v is None or not math.isfinite(v) else v


def search_rules(classes: list) -> dict:
    """Rules over the starts of ``select_study.py --diverse`` (one start per grid tau_adapt, best grid point
    first, per model class ``classes``; rules across classes where there are several): each a function of
    a cell's candidates and a number of starts."""
    def alif(cs, n):
        return [c for c in cs if c["model"] == "alif"][:n]

    def first(cs, n):
        return alif(cs, n)[0]

    def lowest(cs, n):
        return min((c for c in alif(cs, n) if not c["failed"]), key=lambda c: c["train_loss"], default=cs[0])

    def best_val(cs, n):
        return max((c for c in alif(cs, n) if not c["failed"]), key=_val, default=cs[0])

    def margin(m):
        def rule(cs, n):
            b, f = lowest(cs, n), first(cs, n)
            return b if b["train_loss"] < f["train_loss"] * (1 - m) else f
        return rule

    def vetoed(pool, d):  # FitConfig.validation_veto, within one model class
        ok = [c for c in pool if not c["failed"] and (c is pool[0] or _val(c) >= _val(pool[0]) - d)]
        return min(ok, key=lambda c: c["train_loss"], default=pool[0])

    def veto(d):
        return lambda cs, n: vetoed(alif(cs, n), d)

    def per_class(models, m):  # the veto within each class, then the best validation ETV across classes
        def rule(cs, n):
            picks = [vetoed([c for c in cs if c["model"] == k][:n], 0.1) for k in models]
            return max(picks, key=lambda c: _val(c) - (m if c["model"] != "alif" else 0.0))
        return rule

    out = {}
    for n in (2, 3, 4, 5):
        out.update({f"x{n} lowest training loss": (lowest, n), f"x{n} best validation ETV (2nd+3rd s)": (best_val, n)})
        out.update({f"x{n} training loss, margin {m:g}": (margin(m), n) for m in (0.01, 0.02, 0.05)})
        out.update({f"x{n} training loss, validation veto {d:g}": (veto(d), n) for d in (0.0, 0.05, 0.1, 0.2)})
    def every(cs):
        return [c for c in cs if not c["failed"]]

    def lowest_of(pool, cs):
        return min(pool, key=lambda c: c["train_loss"], default=cs[0])

    def all_vetoed(d):  # over every class: not vetoed against the ALIF first start
        return lambda cs, n: lowest_of([c for c in every(cs) if c is cs[0] or _val(c) >= _val(cs[0]) - d], cs)

    def near_best(d):  # over every class: within d of the best validation ETV
        return lambda cs, n: lowest_of([c for c in every(cs) if _val(c) >= max(map(_val, every(cs))) - d], cs)

    def extension_margin(m):  # FitConfig.extension_margin: the ALIF search's pick unless an extension's is m lower
        def rule(cs, n):
            base = vetoed(alif(cs, n), 0.1)
            pool = [vetoed([c for c in cs if c["model"] == k][:n], 0.1) for k in classes if k != "alif"]
            better = [c for c in pool if c["train_loss"] < base["train_loss"] * (1 - m)]
            return lowest_of(better, cs) if better else base
        return rule

    if len(classes) > 1:
        for models in (tuple(classes), ("alif", "alif_asc")):
            out.update({f"x5 veto 0.1 per class ({'+'.join(models)}), best validation ETV, margin {m:g}":
                        (per_class(models, m), 5) for m in (0.0, 0.05, 0.1)})
        out["x5 lowest training loss over all classes"] = (lambda cs, n: lowest_of(every(cs), cs), 5)
        out.update({f"x5 all classes, lowest loss not vetoed ({d:g}) against the ALIF first start": (all_vetoed(d), 5)
                    for d in (0.1, 0.2, 0.3, 0.5)})
        out.update({f"x5 all classes, lowest loss within {d:g} of the best validation ETV": (near_best(d), 5)
                    for d in (0.1, 0.2, 0.3, 0.5)})
        out.update({f"x5 ALIF search unless an extension's loss is {m:g} lower": (extension_margin(m), 5)
                    for m in (0.02, 0.05, 0.1)})
    def oracle(cs, n):  # not a rule: it reads the held-out ETV
        return max(alif(cs, n), key=lambda c: c["test_etv"] or 0.0)

    return {"first start (best grid point)": (first, 1), **out, "oracle: best ALIF start held out (no rule)": (oracle, 5)}


def _summary(name: str, picks: list, base: np.ndarray) -> None:
    etv = np.array([p["test_etv"] or 0.0 for p in picks])
    d = etv - base
    line = (f"{name:42s} {np.median(etv):.3f}  {etv.mean():.3f}  {etv.min():.3f}  {(etv < 0.7).sum():3d}  "
            f"{(d > 0.01).sum():5d} {(d < -0.01).sum():5d}")
    alif = [p for p in picks if p.get("family") == "alif" and p.get("true_tau_adapt_ms") and p.get("tau_adapt_ms")]
    if alif:
        err = [abs(p["tau_adapt_ms"] / p["true_tau_adapt_ms"] - 1) for p in alif]
        line += f"   {sum(e <= 0.15 for e in err)}/{len(alif)} ({np.median(err):.0%})"
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows")
    ap.add_argument("--label", nargs="+", default=None)
    a = ap.parse_args()
    cells: dict = defaultdict(list)
    for line in open(a.rows):
        r = json.loads(line)
        if a.label is None or r["label"] in a.label:
            cells[(r["label"], r["specimen_id"])].append(r)
    keys = sorted(cells)
    base = np.array([(cells[k][0]["test_etv"] or 0.0) for k in keys])  # the first candidate: the best grid point
    oracle = np.array([max((c["test_etv"] or 0.0) for c in cells[k]) for k in keys])
    print(f"{len(keys)} cells; oracle (held-out best of all candidates): median {np.median(oracle):.3f}, "
          f"min {oracle.min():.3f}, < 0.7: {(oracle < 0.7).sum()}")
    print(f"{'rule':42s} median   mean    min  <0.7  better worse   ALIF tau_adapt within 15% (median error)")
    if all("start_tau_adapt_ms" in c for k in keys for c in cells[k]):  # select_study.py --diverse
        classes = sorted({c["model"] for k in keys for c in cells[k]})
        for name, (rule, n) in search_rules(classes).items():
            _summary(name, [rule(cells[k], n) for k in keys], base)
        return
    for name, (models, starts, window, margin) in rules().items():
        _summary(name, [_pick(cells[k], models, starts, window, margin) for k in keys], base)


if __name__ == "__main__":
    main()
