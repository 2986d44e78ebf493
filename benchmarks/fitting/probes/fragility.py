"""Does a candidate's fit survive a small change of its input? (study after round 35, development panels only)

Usage::

    python benchmarks/fitting/probes/fragility.py CACHE OUT.jsonl --label dev_seed0 --specimens 991000007 991000012 \
        [--variant default] [--noise 0.05] [--gain 0.02 0.05] [--draws 3]
    python benchmarks/fitting/probes/fragility.py --rules OUT.jsonl --label dev_seed0 dev_seed1 ...

The bursting cells' candidates reach the same training-window ETV and then part on Noise 2 (0.08 and 0.81 at 0.86 on
the training window). A fit on a knife edge (a burst's length set by a reset a hair above the adapted threshold)
would also part from its own training window when its input moves a little, which the training data can show
without the held-out recording. For every candidate of the cells (:func:`oracle.candidates_held_out`) this scores the
training window's ETV again with the normalised current scaled by ``1 +- gain`` (each of ``--gain``) and with ``draws`` low-passed
(1 ms) Gaussian noises of ``noise`` times the current's standard deviation added, and writes the oracle's row with
``gain_etvs`` (per gain, the lower of the two scalings; ``gain_etv`` the first's), ``noise_etv`` (the mean over the noises). ``--rules`` prints the choice
rules that read them. The held-out column is for this diagnosis only.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys

import numpy as np
from scipy.signal import lfilter

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # benchmarks/fitting

from cellfit.fit import FitConfig  # noqa: E402
from cellfit.fit.fitter import unique_stimuli  # noqa: E402
from cellfit.fit.select import ValidationSet, validation_scores  # noqa: E402
from oracle import (append_rows, cache_specimens, candidates_held_out, cells_of, finite,  # noqa: E402
                    kept_row, print_rules, study_args, study_parser, unvetoed_rows)
from panel_eval import VARIANTS  # noqa: E402


def perturbed_etvs(cands, rec, dt_ms: float, gains: list, noise: float, draws: int, seed: int) -> list[tuple]:
    """Per candidate ``(gain_etvs, noise_etv)`` on the training window: for each of ``gains`` the lower ETV of the
    two scalings ``1 +- gain``, and the mean over the noises (NaN for a failed candidate or an unscorable
    prediction)."""
    current = np.asarray(rec.normalised_current("train"), dtype=np.float32)
    stimuli, index = unique_stimuli(current)
    spikes = np.asarray(rec.train.spikes)
    rng = np.random.default_rng(seed)
    sd = float(stimuli.std())
    k = math.exp(-dt_ms / 1.0)  # a 1 ms low pass, normalised to unit variance
    inputs = [stimuli * (1.0 + s * g) for g in gains for s in (1.0, -1.0)]
    for _ in range(draws):
        y = lfilter([1.0], [1.0, -k], rng.standard_normal(stimuli.shape), axis=1)
        inputs.append((stimuli + noise * sd * y / y.std()).astype(np.float32))
    n = 2 * len(gains)
    # each input as the choice scores the training window (select.validation_scores), one row per candidate
    scores = np.array([validation_scores(cands, ValidationSet(x[index], spikes, 0), dt_ms) for x in inputs])
    out = [([math.nan] * len(gains), math.nan)] * len(cands)
    for i, c in enumerate(cands):
        if not c.failed:
            gain_etvs = [float(np.nanmin(scores[2 * g:2 * g + 2, i])) for g in range(len(gains))]
            out[i] = (gain_etvs, float(np.nanmean(scores[n:, i])) if draws else math.nan)
    return out


def emulated_choice(rs: list[dict], drop=None, robust: bool = False, key: str = "gain_etv") -> dict:
    """A bursting cell's choice (``FitConfig.burst_choice="train_etv"``, the default's veto 0.1, no penalty) on its
    candidate rows: per variant the lowest training loss among the candidates the validation seconds do not veto, then
    another variant's pick where its training-window ETV is higher. ``drop``: leave out the candidates whose ETV under
    ``key`` (a perturbed input) lies more than this below their training-window ETV (a variant left empty drops
    out; none left: today's choice); ``robust``: compare the variants by the lower of the two ETVs."""
    def fragile(r):
        return drop is not None and finite(r.get(key)) and r["train_etv"] - r[key] > drop

    def etv(r):
        v = r["train_etv"]
        if robust and finite(r.get(key)):
            v = min(v, r[key])
        return v if finite(v) else -math.inf

    groups: dict = {}
    for r in rs:
        groups.setdefault(r["model"], []).append(r)
    picks = []
    for members in groups.values():
        alive = [r for r in unvetoed_rows(members) if not fragile(r)]
        if alive:
            picks.append(min(alive, key=lambda r: r["train_loss"]))
    if not picks:
        return emulated_choice(rs)
    base = picks[0]
    better = [r for r in picks[1:] if etv(r) > etv(base)]
    return max(better, key=etv) if better else base


def rules(path: pathlib.Path, labels: list[str]) -> None:
    """Print the choice rules over the rows of ``labels`` in ``path``, per variant of the fit and per cell."""
    with open(path) as fh:
        variants = sorted({json.loads(line)["variant"] for line in fh})
    for variant in variants:
        by_cell = cells_of(path, labels, variant)
        for rs in by_cell.values():
            for r in rs:
                r.setdefault("gain5_etv", r["gain_etvs"][-1])
        for sid in sorted({c[1] for c in by_cell}):
            cells = {c: rs for c, rs in by_cell.items() if c[1] == sid}
            if not cells:
                continue
            print(f"== {variant}, cell {sid}")
            rule_set = {"today's choice (kept)": kept_row, "emulated today": emulated_choice}
            for key in ("gain_etv", "gain5_etv", "noise_etv"):
                for drop in (0.1, 0.2, 0.3):
                    rule_set[f"{key} drop > {drop:g} out"] = (
                        lambda rs, d=drop, k=key: emulated_choice(rs, d, key=k))
                rule_set[f"{key} robust compare"] = lambda rs, k=key: emulated_choice(rs, None, True, key=k)
                rule_set[f"{key} drop > 0.2 out, robust"] = lambda rs, k=key: emulated_choice(rs, 0.2, True, key=k)
            print_rules(cells, labels, rule_set, 36)


def main() -> None:
    ap = study_parser(__doc__.split("\n\n")[0], "--rules", "print the choice rules over these rows and stop")
    ap.add_argument("--specimens", type=int, nargs="+", default=None)
    ap.add_argument("--variant", default="default", choices=sorted(VARIANTS))
    ap.add_argument("--gain", type=float, nargs="+", default=[0.02, 0.05])
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--draws", type=int, default=3)
    args = study_args(ap, "--rules", rules)
    if args is None:
        return
    ids = cache_specimens(ap, args.cache, args.specimens)
    options = dict(VARIANTS[args.variant])
    window = options.pop("window", 1.0)
    config = FitConfig(**{"dt_ms": 0.1, **options})
    per_cell = candidates_held_out(args.cache, ids, config, window_s=window, seed=args.seed, keep_models=True)
    out = []
    for rows, cands, rec in per_cell:
        pert = perturbed_etvs(cands, rec, config.dt_ms, args.gain, args.noise, args.draws, args.seed)
        if rows[0]["train_etv"] is None:  # the choice did not score it: score it here
            base = perturbed_etvs(cands, rec, config.dt_ms, [0.0], 0.0, 0, args.seed)
            for r, b in zip(rows, base):
                r["train_etv"] = b[0][0]
        for r, (g, n) in zip(rows, pert):
            out.append(dict(label=args.label[0], variant=args.variant, gains=args.gain, noise=args.noise,
                            gain_etvs=g, gain_etv=g[0], gain5_etv=g[-1], noise_etv=n, **r))
        print(f"{args.label[0]} {rows[0]['specimen_id']}: " + " ".join(
            f"{'*' if r['kept'] else ''}{r['model'].replace('alif_', '') or 'alif'}:tr {r['train_etv']:.2f} "
            f"g {'/'.join(f'{x:.2f}' for x in g)} n {n:.2f} ho {r['held_out_etv']:.2f}" for r, (g, n) in zip(rows, pert)), flush=True)
    append_rows(args.out, out)


if __name__ == "__main__":
    main()
