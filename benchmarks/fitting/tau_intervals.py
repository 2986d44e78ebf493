"""Round 23: how far the tau_adapt interval reaches, evaluated offline on recorded rows.

Usage::

    python benchmarks/fitting/tau_intervals.py benchmarks/fitting/burst-restarts-dev.jsonl \\
        benchmarks/fitting/weak-adapt-dev.jsonl benchmarks/fitting/interval-dev.jsonl \\
        --label dev dev_seed1 dev_seed2 dev_seed3 dev_seed4 dev_seed5 probe_fast probe_slow \\
                dev_seed6 dev_seed7 dev_seed8 probe_fast_s81 probe_slow_s80

For every ALIF cell of the rows (``panel_eval.py`` rows of round 20's default, ``--variant reset_x3``, or of
today's fits before any reach, ``--variant raw_tau``, or ``raw_tau38`` for round 38's choice (its rows also hold
every start's training-window ETV): the kept fit's tau_adapt interval and every start's fitted
tau_adapt) this recomputes the interval with the library's rule (:func:`cellfit.fit.select.widen_searched`, as
``interval_table``) for a grid of

- ``start_gap``: how far each end reaches, in log, towards the nearest start outside it (0.5 round 7's, 1 all the
  way, today's default since round 23);
- ``bound_gap``: how far an end with no start beyond it reaches towards tau_adapt's bound (5 or 5000 ms);
- ``weak_adaptation``: below which ``adapt_scale`` the interval spans the bounds (round 22);
- ``val_tol`` (round 33, ``--val-tol``; off by default): the candidates of the kept fit's variant, not vetoed, whose
  validation ETV is at least the kept fit's minus ``val_tol`` join the fits the data cannot tell apart (their tau_m
  and tau_adapt widen the intervals before any reach, as ``FitConfig.equivalent_validation``);
- ``train_tol`` (round 41, ``--train-tol``; off by default): likewise the candidates, not vetoed, whose
  training-window ETV (``selection.candidates[].train_etv``, recorded since round 37) is at least the kept fit's minus
  ``train_tol`` (as ``FitConfig.equivalent_train_etv``);

and prints the tau_adapt target (within 15%, or flagged with the truth inside), how many intervals hold the truth
and the median width (hi / lo), and the tau_m target, per group of labels (``--groups`` names them:
``NAME=LABEL,LABEL``). The fits themselves do not change. Choose on development rows only.

Rows of ``--variant reset_x3`` recorded the interval with round 7's reach (half of the way, in log, to the nearest
start outside); rows of ``--variant raw_tau`` (round 33) and ``raw_tau38`` (round 41) recorded it before any reach. Either is first taken back
to the interval before any reach (exactly: the recorded end lies between the start it reached towards and the
end before the reach, so that start is the nearest one beyond the recorded end), then widened by the rule.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math

import numpy as np

from cellfit.fit import FitConfig
from cellfit.fit.select import widen_searched
from oracle import unvetoed_rows  # this folder (run as a script)

NAME = "tau_adapt_ms"
#: the reach (start_gap) each recordable variant's rows were written with; no bound reach, no weak rule
RECORDED_GAP = {"reset_x3": 0.5, "raw_tau": 0.0, "raw_tau38": 0.0}


def alif_rows(paths: list[str], labels: list[str], variants: list[str]) -> list[dict]:
    """The rows of ``variants``' ALIF cells fitted (with intervals) under ``labels`` in the JSON-lines ``paths``."""
    unknown = set(variants) - set(RECORDED_GAP)
    if unknown:
        raise SystemExit(f"--variant {sorted(unknown)}: only {sorted(RECORDED_GAP)} rows can be taken back to the "
                         "interval before any reach")
    cells = []
    for path in paths:
        with open(path) as fh:
            cells += [r for r in map(json.loads, filter(str.strip, fh)) if r["variant"] in variants
                      and r["family"] == "alif" and r["label"] in labels and r["status"] == "ok" and r["intervals"]]
    return cells


def _kept_variant(row: dict) -> list[dict]:
    cands = row["selection"]["candidates"]
    model = cands[row["selection"]["chosen"]]["model"]
    return [c for c in cands if c["model"] == model and not c["failed"]]


def starts_of(row: dict) -> list[float]:
    """The fitted tau_adapt of every start of the kept fit's variant that did not fail (as ``interval_table``)."""
    return [c[NAME] for c in _kept_variant(row) if c.get(NAME)]


def _unvetoed(row: dict) -> list[dict]:
    """The candidates of the kept fit's variant that did not fail and that the validation seconds do not veto, as the
    library's choice (:func:`oracle.unvetoed_rows` on the row's candidates, ``FitConfig().validation_veto``)."""
    cands = row["selection"]["candidates"]
    model = cands[row["selection"]["chosen"]]["model"]
    return unvetoed_rows([c for c in cands if c["model"] == model], FitConfig().validation_veto)


def validation_equivalent(row: dict, val_tol: float | None) -> list[dict]:
    """The candidates of the kept fit's variant, not vetoed (:func:`_unvetoed`, as the library's choice), whose
    validation ETV is at least the kept one's minus ``val_tol`` (ALIF rows: no bursting start, so the validation
    seconds judge every candidate; none where the kept fit or the variant's first has no validation ETV)."""
    cands = row["selection"]["candidates"]
    kept = cands[row["selection"]["chosen"]]
    first = next(c for c in cands if c["model"] == kept["model"])
    if val_tol is None or kept.get("validation_etv") is None or first.get("validation_etv") is None:
        return []
    floor = kept["validation_etv"] - val_tol
    return [c for c in _unvetoed(row) if c.get("validation_etv") is not None and c["validation_etv"] >= floor]


def train_equivalent(row: dict, train_tol: float | None) -> list[dict]:
    """The candidates of the kept fit's variant, not vetoed, whose training-window ETV is at least the kept one's
    minus ``train_tol`` (none where the row has no training-window ETVs)."""
    kept = row["selection"]["candidates"][row["selection"]["chosen"]]
    if train_tol is None or kept.get("train_etv") is None or not math.isfinite(kept["train_etv"]):
        return []
    floor = kept["train_etv"] - train_tol
    return [c for c in _unvetoed(row) if c.get("train_etv") is not None and c["train_etv"] >= floor]


def equivalent(row: dict, val_tol: float | None, train_tol: float | None) -> list[dict]:
    """The candidates either rule adds to the fits the data cannot tell apart."""
    return validation_equivalent(row, val_tol) + train_equivalent(row, train_tol)


def before_reach(row: dict) -> tuple[float, float]:
    """``row``'s tau_adapt interval before any reach towards the starts (see the module docstring)."""
    lo, hi = row["intervals"][NAME]
    g = RECORDED_GAP[row["variant"]]
    starts = starts_of(row)
    below, above = [v for v in starts if v < lo], [v for v in starts if v > hi]
    if g and below:
        lo = math.exp((math.log(lo) - g * math.log(max(below))) / (1.0 - g))
    if g and above:
        hi = math.exp((math.log(hi) - g * math.log(min(above))) / (1.0 - g))
    # an end that was a start's own value (the kept fit's, an equivalent's) comes back within rounding of it: snap it,
    # else the rule would see a start just outside and reach only that far
    snap = [v for v in starts if abs(v / lo - 1.0) < 1e-4]
    lo = snap[0] if snap else lo
    snap = [v for v in starts if abs(v / hi - 1.0) < 1e-4]
    hi = snap[0] if snap else hi
    return lo, hi


def interval(row: dict, start_gap: float, bound_gap: float | None, weak: float | None,
             val_tol: float | None = None, train_tol: float | None = None) -> tuple[float, float]:
    """``row``'s tau_adapt interval under the rule."""
    lo, hi = before_reach(row)
    also = [c[NAME] for c in equivalent(row, val_tol, train_tol) if c.get(NAME)]
    lo, hi = min([lo, *also]), max([hi, *also])
    config = FitConfig(start_gap=start_gap or None, bound_gap=bound_gap, weak_adaptation=weak)
    return widen_searched(lo, hi, starts_of(row), row["adapt_scale"], config)  # the library's rule


def tau_m_interval(row: dict, val_tol: float | None, train_tol: float | None = None) -> tuple[float, float]:
    """``row``'s tau_m interval (no reach), widened to the equivalent candidates' tau_m."""
    lo, hi = row["intervals"]["tau_m_ms"]
    also = [c["tau_m_ms"] for c in equivalent(row, val_tol, train_tol) if c.get("tau_m_ms")]
    return min([lo, *also]), max([hi, *also])


def _target(fit: float, truth: float, lo: float, hi: float) -> bool:
    return abs(fit / truth - 1) <= 0.15 or (lo <= truth <= hi and hi / lo > FitConfig().undetermined_ratio)


def score(cells: list[dict], start_gap: float, bound_gap: float | None, weak: float | None,
          val_tol: float | None = None, train_tol: float | None = None) -> str:
    target = inside = tau_m = 0
    widths = []
    for r in cells:
        lo, hi = interval(r, start_gap, bound_gap, weak, val_tol, train_tol)
        truth = r["true_" + NAME]
        target += _target(r[NAME], truth, lo, hi)
        inside += lo <= truth <= hi
        widths.append(hi / lo)
        tau_m += _target(r["tau_m_ms"], r["true_tau_m_ms"], *tau_m_interval(r, val_tol, train_tol))
    return f"{target}/{len(cells)} | {inside}/{len(cells)} | {np.median(widths):.1f}x | {tau_m}/{len(cells)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+", help="panel_eval.py rows (JSON lines)")
    ap.add_argument("--label", nargs="+", required=True)
    ap.add_argument("--groups", nargs="*", default=[], help="NAME=LABEL,LABEL: also a column per group")
    ap.add_argument("--variant", nargs="+", default=["reset_x3"],
                    help="the rows' variants: reset_x3 (round 20's), raw_tau (round 33's), raw_tau38 (round 41's)")
    ap.add_argument("--start-gap", type=float, nargs="+", default=[0.5, 0.75, 1.0])
    ap.add_argument("--bound-gap", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    ap.add_argument("--weak", type=float, nargs="+", default=[0.0, 0.03], help="0: off")
    ap.add_argument("--val-tol", type=float, nargs="+", default=[-1.0],
                    help="validation-equivalent candidates within this of the kept one's validation ETV (-1: off)")
    ap.add_argument("--train-tol", type=float, nargs="+", default=[-1.0],
                    help="training-window-equivalent candidates within this of the kept one's training-window ETV "
                         "(-1: off; rows written since round 37)")
    a = ap.parse_args()
    cells = alif_rows(a.rows, a.label, a.variant)
    groups = {"all": cells}
    for g in a.groups:
        name, labels = g.split("=")
        groups[name] = [r for r in cells if r["label"] in labels.split(",")]
    print(f"{len(cells)} ALIF cells ({', '.join(a.label)}; variants {', '.join(a.variant)})\n")
    print("| start_gap | bound_gap | weak below | validation within | training window within |"
          + "".join(f" {g} ({len(c)}): target | truth inside | median width | tau_m target |"
                    for g, c in groups.items()))
    print("|---|---|---|---|---|" + "---|---|---|---|" * len(groups))
    for start_gap, bound_gap, weak, tol, ttol in itertools.product(a.start_gap, a.bound_gap, a.weak, a.val_tol,
                                                                    a.train_tol):
        tol = None if tol < 0 else tol
        ttol = None if ttol < 0 else ttol
        cols = " | ".join(score(c, start_gap, bound_gap or None, weak or None, tol, ttol) for c in groups.values())
        print(f"| {start_gap:g} | {bound_gap:g} | {weak:g} | {'-' if tol is None else f'{tol:g}'} | "
              f"{'-' if ttol is None else f'{ttol:g}'} | {cols} |")


if __name__ == "__main__":
    main()
