"""Would the training window's ETV rank a variant's candidates better than their training loss? (development only)

Usage::

    python benchmarks/fitting/oracle.py DEV0 OUT.jsonl --label dev_seed0 --train-etv      # and draws 1-8
    python benchmarks/fitting/train_etv_rules.py OUT.jsonl --label dev_seed0 ... dev_seed8

The default keeps, within each model variant, the lowest final training loss among the candidates the validation
seconds do not veto. The loss is the van Rossum distance to the repeats' mean; the held-out score is an explained
variance (the mean rate taken out, normalised by the variances). Round 35 trained on that form and lost (the HH IB
fits over-fit it); this reads it without training on it: each candidate's ETV on its own training window, with the
distance still the loss. The rules below change only the pick within the kept candidate's variant (the variant
the default keeps stays), so they are a first read of such a choice, not the choice itself:

- the highest training-window ETV among the variant's candidates the veto keeps;
- the same among those whose loss is within 2%, 5% or 10% of the lowest such loss;
- the kept one unless another's training-window ETV is 0.05, 0.08, 0.1, 0.15 or 0.2 higher (round 37: 0.1);
- the same over every variant's unvetoed starts, not only the kept one's (``FitConfig.train_etv_scope="all"``,
  round 38).

Printed: :func:`oracle.print_rules`'s summary, over every cell and per family. The held-out column is for this
diagnosis only.
"""

from __future__ import annotations

import argparse
import math
import pathlib

from oracle import cells_of, finite, kept_row, print_rules, unvetoed_rows

def _pool(rs: list[dict], scope: str = "variant") -> list[dict]:
    """The kept candidate's variant (model name; ``scope="all"``: every variant), not failed, not vetoed by the
    validation seconds (each variant's veto against its own first candidate)."""
    kept = kept_row(rs)
    models = [kept["model"]] if scope == "variant" else list(dict.fromkeys(r["model"] for r in rs))
    pool = [r for m in models for r in unvetoed_rows([r for r in rs if r["model"] == m])]
    return pool or [kept]


def _etv(r: dict) -> float:
    return r["train_etv"] if finite(r.get("train_etv")) else -math.inf


def highest(within=None):
    """The kept variant's unvetoed start with the highest training-window ETV (``within``: among those whose loss is
    at most that fraction above the lowest such loss)."""
    def rule(rs):
        pool = _pool(rs)
        if within is not None:
            low = min(r["train_loss"] for r in pool)
            pool = [r for r in pool if r["train_loss"] <= low * (1.0 + within)]
        return max(pool, key=_etv)
    return rule


def unless_higher(margin, scope="variant"):
    """The kept candidate unless its variant's (``scope="all"``: any variant's) unvetoed start with the highest
    training-window ETV is ``margin`` higher (``FitConfig.train_etv_switch``, ``FitConfig.train_etv_scope``)."""
    def rule(rs):
        kept = kept_row(rs)
        best = max(_pool(rs, scope), key=_etv)
        return best if _etv(best) >= _etv(kept) + margin else kept
    return rule


def _val(r: dict) -> float:
    return r["validation_etv"] if finite(r.get("validation_etv")) else -math.inf


def mixed(weight, margin):
    """On top of round 38 (``--round38``): the kept candidate unless an unvetoed start of any variant scores
    ``margin`` higher on ``weight`` x training-window ETV + (1 - weight) x validation ETV (the training-window ETV
    alone where either has no validation score)."""
    def rule(rs):
        kept = kept_row(rs)

        def score(r):
            if not (finite(r.get("validation_etv")) and finite(kept.get("validation_etv"))):
                return _etv(r)
            return weight * _etv(r) + (1.0 - weight) * _val(r)
        best = max(_pool(rs, "all"), key=score)
        return best if score(best) >= score(kept) + margin else kept
    return rule


def guarded(margin, guard):
    """Round 38's switch (``margin`` over every variant's unvetoed starts) on the rows' own kept candidate (round 36's
    choice), taken only where the replacement's validation ETV is at most ``guard`` below the kept one's (where both
    have one): the switch may not give up what the validation seconds saw (after round 41; development only)."""
    def rule(rs):
        kept = kept_row(rs)
        best = max(_pool(rs, "all"), key=_etv)
        if not _etv(best) >= _etv(kept) + margin:
            return kept
        if finite(best.get("validation_etv")) and finite(kept.get("validation_etv")) \
                and best["validation_etv"] < kept["validation_etv"] - guard:
            return kept
        return best
    return rule


ROUND38_RULES = {"round 38's choice (kept)": kept_row,
                 **{f"w {w:g} x train + val, {m:g} higher": mixed(w, m) for w in (0.5, 0.7) for m in (0.05, 0.1, 0.15)}}
GUARD_RULES = {"round 36's choice (rows' kept)": kept_row, "round 38's switch (the default)": unless_higher(0.1, "all"),
               **{f"round 38's switch, validation at most {g:g} lower": guarded(0.1, g) for g in (0.0, 0.05, 0.1, 0.2)}}


def as_round38(cells: dict) -> dict:
    """The rows with ``kept`` moved to round 38's choice (:func:`unless_higher` 0.1 over every variant) of the
    rows' own kept candidate (rows written under round 36's choice)."""
    rule = unless_higher(0.1, "all")
    out = {}
    for cell, rs in cells.items():
        pick = rule(rs)
        out[cell] = [dict(r, kept=r is pick) for r in rs]
    return out


RULES = {"today's choice (kept)": kept_row, "highest training-window ETV": highest(),
         "... loss within 2% of the lowest": highest(0.02), "... loss within 5%": highest(0.05),
         "... loss within 10%": highest(0.10),
         **{f"kept unless another's is {m:g} higher": unless_higher(m) for m in (0.05, 0.08, 0.1, 0.15, 0.2)},
         **{f"... any variant's, {m:g} higher": unless_higher(m, "all") for m in (0.05, 0.08, 0.1, 0.15, 0.2)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rows", type=pathlib.Path, help="oracle.py --train-etv rows (development draws only)")
    ap.add_argument("--label", nargs="+", required=True)
    ap.add_argument("--variant", default="default", help="the rows of this fit variant (default %(default)s)")
    ap.add_argument("--families", type=int, nargs="*", default=[],
                    help="also print these panel positions alone (specimen id modulo 100)")
    ap.add_argument("--round38", action="store_true",
                    help="rules on top of round 38's choice (training-window and validation ETVs mixed; after round 39)")
    ap.add_argument("--guard", action="store_true",
                    help="round 38's switch with a validation guard (after round 41)")
    a = ap.parse_args()
    cells = cells_of(a.rows, a.label, a.variant)
    rules = RULES
    if a.round38:
        cells, rules = as_round38(cells), ROUND38_RULES
    elif a.guard:
        rules = GUARD_RULES
    print_rules(cells, a.label, rules, 40)
    for pos in a.families:
        some = {c: rs for c, rs in cells.items() if c[1] % 100 == pos}
        if some:
            print(f"\n-- panel position {pos}")
            print_rules(some, a.label, rules, 40)


if __name__ == "__main__":
    main()
