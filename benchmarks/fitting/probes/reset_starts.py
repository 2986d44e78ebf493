"""Probe (after round 12): do the intrinsically bursting cells fit better from a high reset, and what would
choose such a fit? Per cell, every candidate of today's default fit (its five ALIF starts and, for a bursting cell,
its two bursting starts), and ``alif_reset_asc`` from the best grid point with the reset potential started at each
of ``--resets`` (threshold units) and the after-spike currents at 0 (the AdEx cells' bursts come from a reset near
threshold, not from a depolarising current). For each: final training loss, validation ETV, ETV on the training
window, spike counts per epoch summed over the epochs (training second, validation seconds, Noise 2's scored
second; mean over repeats; the cell's on the first line), and held-out ETV on Noise 2 (never used to choose). Then,
offline, the held-out ETV that some choice rules would keep, per cell (``RULES``). Development cells only; nothing
here changes the library."""

from __future__ import annotations

import statistics

import numpy as np

from _common import append_rows, load, parse
from cellfit.fit import FitConfig
from cellfit.fit.api import _validation, score_model
from cellfit.fit.fitter import TrainingSet, fit_population, predict_population, unique_stimuli
from cellfit.fit.select import choose, fit_candidates, validation_scores
from cellfit.modules import V_RESET_MAX

WINDOW = 10000  # bins of the training second at 0.1 ms


def _counts(rec, config: FitConfig, model) -> tuple[float, float, float]:
    """Spikes of ``model`` (or the recording's, ``model`` None), mean over repeats, summed over epochs: training
    second, validation seconds, Noise 2's first second."""
    out = []
    for split, lo, hi in (("train", 0, WINDOW), ("train", WINDOW, None), ("test", 0, WINDOW)):
        if model is None:
            spikes = getattr(rec, split).spikes
        else:
            stimuli, index = unique_stimuli(rec.normalised_current(split).astype(np.float32))
            spikes = predict_population([model], stimuli)[0][index]
        out.append(float(spikes[..., lo:hi].sum(-1).mean(0).sum()))
    return tuple(out)


def _probe(rec, config: FitConfig, resets, reset_high=None) -> dict:
    first = rec.first(1.0)
    data = TrainingSet(first.normalised_current("train"), first.train.spikes, first.normalised_voltage("train"))
    val = _validation(rec, WINDOW, config)
    cands = fit_candidates([data], config, device="cpu", seed=0, progress=False, validation=[val])[0][0]
    start = cands[0].init  # the best grid point (the ALIF start of rank 1)
    # with --reset-high, only these fits get the wider range (today's candidates keep theirs): each carries it
    own = {} if reset_high is None else dict(v_reset_bounds=[config.v_reset_bounds[0], float(reset_high)])
    inits = [dict(start, **dict(config.variant_start("alif_reset_asc"), v_reset=float(v), **own),
                  method=f"{start.get('method', '')} + reset {v:g}") for v in resets]
    if inits:
        cands += fit_population([data] * len(inits), config, device="cpu", seed=0, progress=False, inits=inits)
    scores = validation_scores(cands, val, config.dt_ms)
    n_default = len(cands) - len(inits)
    kept = choose(cands[:n_default], scores[:n_default], config.validation_veto, config.extension_margin)[0]
    test = first.normalised_current("test"), first.test.spikes
    train = first.normalised_current("train"), first.train.spikes
    rows = []
    for i, (c, s) in enumerate(zip(cands, scores)):
        rows.append(dict(model=c.init.get("model", "alif"), start=c.init.get("method", ""),
                         burst=bool(c.init.get("burst")),
                         reset=c.init.get("v_reset") if i >= n_default else None, loss=float(c.best_loss),
                         validation_etv=s, counts=_counts(rec, config, c.model),
                         train_etv=float(score_model(c.model, *train, config.dt_ms)[0].etv),
                         held_out=float(score_model(c.model, *test, config.dt_ms)[0].etv), kept=i == kept))
    return dict(cell=_counts(rec, config, None), candidates=rows)


def _rule(cell: dict, resets=(), silent=None, margin=0.05, veto=0.1, by="loss", default_reset=False) -> float:
    """Held-out ETV of the candidate a rule keeps: ALIF by the default's veto and training loss; the bursting fits
    (without those firing under ``silent`` x the cell's validation spikes; the lowest loss among them) and the
    reset fits of ``resets``, each kept over ALIF where its training loss is ``margin`` lower (the lowest such), or,
    ``by="train_etv"``, where its ETV on the training window is higher (the highest such). ``default_reset``: the
    reset fit among today's own candidates (round 13's, from 0.8) competes too."""
    cands = cell["candidates"]
    alif = [c for c in cands if c["model"] == "alif"]
    ok = [c for c in alif if c is alif[0] or c["validation_etv"] >= alif[0]["validation_etv"] - veto]
    base = min(ok, key=lambda c: c["loss"])
    picks = [c for c in cands if c["burst"] and (silent is None or c["counts"][1] >= silent * cell["cell"][1])]
    picks = [min(picks, key=lambda c: c["loss"])] if picks else []
    picks += [c for c in cands if c["reset"] in resets]
    if default_reset:
        picks += [c for c in cands if c["model"] == "alif_reset_asc" and c["reset"] is None]
    if by == "train_etv":
        better = [c for c in picks if c["train_etv"] > base["train_etv"]]
        return max(better, key=lambda c: c["train_etv"])["held_out"] if better else base["held_out"]
    better = [c for c in picks if c["loss"] < base["loss"] * (1.0 - margin)]
    return min(better, key=lambda c: c["loss"])["held_out"] if better else base["held_out"]


RULES = {
    "today's default": {},
    "+ reset 0.5": dict(resets=(0.5,)),
    "+ reset 0.8": dict(resets=(0.8,)),
    "+ both resets": dict(resets=(0.5, 0.8)),
    "bursting fits silent in validation (< 0.5 x the cell's spikes) dropped": dict(silent=0.5),
    "... dropped, + both resets": dict(silent=0.5, resets=(0.5, 0.8)),
    "< 0.25 x dropped, + both resets": dict(silent=0.25, resets=(0.5, 0.8)),
    "variants compared by training-window ETV": dict(by="train_etv"),
    "... + reset 0.5": dict(by="train_etv", resets=(0.5,)),
    "... + reset 0.8": dict(by="train_etv", resets=(0.8,)),
    "... + both resets": dict(by="train_etv", resets=(0.5, 0.8)),
}


def main() -> None:
    a = parse(__doc__.splitlines()[0], "7,12",
              lambda ap: (ap.add_argument("--resets", default="0.5,0.8", help="reset starts (default %(default)s)"),
                          ap.add_argument("--reset-high", type=float, default=None,
                                          help="upper bound of the reset for these starts (default: FitConfig's)"),
                          ap.add_argument("--all-high", type=float, default=None,
                                          help="upper bound of the reset for every fit, today's candidates too")))
    resets = [float(v) for v in a.resets.split(",") if v]
    rules = dict(RULES, **{"round 13 (today's default: training-window ETV, reset fit from 0.8)":
                           dict(by="train_etv", default_reset=True)})
    rules.update({f"round 13 + reset {v:g}": dict(by="train_etv", default_reset=True, resets=(v,)) for v in resets})
    if len(resets) > 1:
        rules["round 13 + every reset start"] = dict(by="train_etv", default_reset=True, resets=tuple(resets))
    # (--all-high: the per-start range must lie above the usual one, so it opens to the engine's limit)
    config = FitConfig() if a.all_high is None else FitConfig(v_reset_bounds=(-1.0, a.all_high),
                                                              high_reset_bounds=(-1.0, V_RESET_MAX))
    recs, keys = load(a)
    cells = []
    for rec, key in zip(recs, keys):
        cell = dict(cache=key[0], position=key[1], reset_high=a.reset_high, all_high=a.all_high, **_probe(rec, config, resets, a.reset_high))
        cells.append(cell)
        print(f"{key[0]} cell {key[1]}: spikes (training, validation, Noise 2) {cell['cell']}", flush=True)
        for c in cell["candidates"]:
            print(f"  {'*' if c['kept'] else ' '} {c['model']:15s} {c['start'][-28:]:28s} loss {c['loss']:7.3f} "
                  f"validation {c['validation_etv']:6.3f} training ETV {c['train_etv']:6.3f} spikes {c['counts']} "
                  f"held-out {c['held_out']:.3f}", flush=True)
        append_rows(a.out, [cell])
    for name, kw in rules.items():
        held = [_rule(c, **kw) for c in cells]
        print(f"{name:72s} mean {statistics.mean(held):.3f}, < 0.7: {sum(h < 0.7 for h in held):2d}  "
              + " ".join(f"{h:.2f}" for h in held))


if __name__ == "__main__":
    main()
