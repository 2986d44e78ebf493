"""Would one model with the subthreshold current AND a reset with after-spike currents fit the candidate-limited cells?
(study after round 42, development only)

Usage::

    python benchmarks/fitting/probes/combined_variant.py DEV0 OUT.jsonl --label dev_seed0 --specimens 991000007 991000012 991000013
    python benchmarks/fitting/probes/combined_variant.py --summary OUT.jsonl --label dev_seed0 dev_seed1 ...

The default's candidates add a learnable reset with after-spike currents (``alif_reset_asc``: bursts) or a linear
subthreshold current that follows the stimulus (``alif_sub``: rebound and adaptation of the input), never both. A
low-threshold spiking cell bursts on release from hyperpolarisation, which asks for both. The subthreshold current
only transforms the input, so every engine runs the combination (``alif_sub_reset_asc``) as it runs
``alif_reset_asc``. Per cell, this probe trains it (default schedule, the training window) from the kept fit and from the best-loss candidate of each other variant, each given the extras it lacks (the burst reset
start and zero after-spike currents, or the default subthreshold start). One row per start: its training loss,
training-window ETV, validation ETV and held-out ETV beside the kept fit's. The held-out column is for this diagnosis
only.
"""

from __future__ import annotations

import json
import math
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # benchmarks/fitting

from cellfit.fit import FitConfig  # noqa: E402
from cellfit.fit.api import held_out_scores  # noqa: E402
from cellfit.fit.fitter import TrainingSet  # noqa: E402
from cellfit.fit.select import ValidationSet, fit_by_variant, start_from_fit, validation_scores  # noqa: E402
from oracle import append_rows, candidates_held_out, probe_main  # noqa: E402
from cellfit.data import load_cell  # noqa: E402
from cellfit.data.protocol import EPOCH_LENGTH_S  # noqa: E402

COMBINED = "alif_sub_reset_asc"


def combined_start(state, config: FitConfig) -> dict:
    """A start of the combined variant at a fitted candidate's parameters, with the extras it lacks at their starts."""
    start = start_from_fit(state)
    extras = config.variant_start(COMBINED)
    if "v_reset" not in start:
        start.update(config.burst_reset_start(config.burst_reset_starts[0]))
    for key in ("asc_amp", "tau_asc_ms", "sub_amp", "tau_sub_ms"):
        start.setdefault(key, extras[key])
    start["model"] = COMBINED
    return start


def run(cache: pathlib.Path, out: pathlib.Path, label: str, ids: list[int], seed: int) -> None:
    config = FitConfig()
    cells = candidates_held_out(cache, ids, config, seed=seed, keep_models=True, train_etv=True)
    jobs, meta = [], []
    for k, (rows, cands, rec) in enumerate(cells):
        kept = next(r for r in rows if r["kept"])
        bases = {kept["candidate"]: "kept"}
        for model in {r["model"] for r in rows} - {kept["model"]}:
            alive = [r for r in rows if r["model"] == model and not r["failed"]]
            if alive:
                bases.setdefault(min(alive, key=lambda r: r["train_loss"])["candidate"], f"best {model}")
        whole = load_cell(int(rec.meta.specimen_id), config.dt_ms, EPOCH_LENGTH_S, cache)
        n = rec.train.n_bins
        stop = min(whole.train.n_bins, n + int(round(config.validation_s * 1000.0 / config.dt_ms)))
        val = ValidationSet(whole.normalised_current("train")[..., :stop], whole.train.spikes[..., :stop], n)
        data = TrainingSet(rec.normalised_current("train"), rec.train.spikes, rec.normalised_voltage("train"))
        for i, how in bases.items():
            if cands[i].failed:
                continue
            jobs.append((k, data, combined_start(cands[i], config)))
            meta.append((rec, kept, rows[i], how, val, data))
    states = fit_by_variant(jobs, config, "cpu", seed, False, None)
    out_rows = []
    for (rec, kept, base, how, val, data), st in zip(meta, states):
        if st.failed:
            vals = (math.nan, math.nan, math.nan)
        else:
            v = validation_scores([st], val, config.dt_ms)[0]
            t = validation_scores([st], ValidationSet(data.current, data.spikes, 0), config.dt_ms)[0]
            vals = (held_out_scores(st.model, rec, config.dt_ms)[0]["etv"], v, t)
        row = dict(label=label, specimen_id=int(rec.meta.specimen_id), kept_model=kept["model"],
                   kept_etv=kept["held_out_etv"], kept_validation=kept["validation_etv"], kept_train_etv=kept["train_etv"],
                   kept_loss=kept["train_loss"], base=how, base_model=base["model"], base_etv=base["held_out_etv"],
                   combined_etv=vals[0], combined_validation=vals[1], combined_train_etv=vals[2],
                   combined_loss=st.best_loss, epochs=st.epochs, failed=st.failed)
        out_rows.append(row)
        print(f"{label} {row['specimen_id']} kept {row['kept_model']:14s} {row['kept_etv']:.3f} (val "
              f"{row['kept_validation'] or math.nan:.3f}, train {row['kept_train_etv'] or math.nan:.3f}, loss "
              f"{row['kept_loss']:.4f}) | from {how:20s} {row['combined_etv']:.3f} (val {vals[1]:.3f}, train "
              f"{vals[2]:.3f}, loss {st.best_loss:.4f})")
    append_rows(out, out_rows)


def summarise(path: pathlib.Path, labels: list[str]) -> None:
    rows = [r for r in map(json.loads, open(path)) if r["label"] in labels]
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["label"], r["specimen_id"]), []).append(r)
    print("| panel position | cells | kept: mean, below 0.7 | best combined (held out, oracle): mean, below 0.7 | "
          "combined alone, by training loss: mean, below 0.7 | by validation ETV: mean, below 0.7 | round 43's rule: "
          "mean, below 0.7, up / down |")
    print("|---|---|---|---|---|---|---|")
    groups: dict = {}
    for (_, sid), rs in cells.items():
        groups.setdefault(sid % 100, []).append(rs)
    groups["all"] = list(cells.values())
    for pos, cs in groups.items():
        kept = [rs[0]["kept_etv"] for rs in cs]
        ok = lambda rs: [r for r in rs if not r["failed"]]  # noqa: E731

        def pick(key, rs, lowest=False):
            alive = ok(rs)
            if not alive:
                return rs[0]["kept_etv"]
            best = (min if lowest else max)(alive, key=lambda r: r[key] if r[key] == r[key] else -math.inf)
            return best["combined_etv"]
        oracle = [max([rs[0]["kept_etv"], *(r["combined_etv"] for r in ok(rs))]) for rs in cs]
        by_loss = [pick("combined_loss", rs, lowest=True) for rs in cs]
        by_val = [pick("combined_validation", rs) for rs in cs]
        rule = [_rule(rs) for rs in cs]
        up = sum(r > k + 0.02 for r, k in zip(rule, kept))
        down = sum(r < k - 0.02 for r, k in zip(rule, kept))

        def col(v):
            return f"{statistics.mean(v):.3f}, {sum(x < 0.7 for x in v)}"
        print(f"| {pos} | {len(cs)} | {col(kept)} | {col(oracle)} | {col(by_loss)} | {col(by_val)} | {col(rule)}, "
              f"{up} / {down} |")


def _rule(rs: list[dict], margin: float = 0.05) -> float:
    """Round 43's rule (``FitConfig.sub_reset_asc``) on one cell's rows: a kept ``alif_sub`` fit gives way to the
    combined fit started from it where that fit's training loss is ``margin`` (the extension margin) lower."""
    own = [r for r in rs if r["base"] == "kept" and not r["failed"] and r["kept_model"] == "alif_sub"]
    if own and own[0]["combined_loss"] <= (1.0 - margin) * own[0]["kept_loss"]:
        return own[0]["combined_etv"]
    return rs[0]["kept_etv"]


if __name__ == "__main__":
    probe_main(__doc__, run, summarise)
