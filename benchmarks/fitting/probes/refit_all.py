"""Would the kept fit predict Noise 2 better after training on all of Noise 1? (study after round 41, development only)

Usage::

    python benchmarks/fitting/probes/refit_all.py DEV0 OUT.jsonl --label dev_seed0 --specimens 991000013 991000015
    python benchmarks/fitting/probes/refit_all.py --summary OUT.jsonl --label dev_seed0 dev_seed1 ...

The default trains every start on the first second of each Noise 1 epoch and keeps one by the training loss, the
validation seconds (the other two) and the training-window ETV. The seconds it chose with then go unused. For the cells
(:func:`oracle.candidates_held_out`, the default's candidates and choice) this trains the kept fit again, from its
own fitted parameters and with the default's schedule, on all three seconds of every epoch (``refit3``), and, as a
control for the extra training alone, on the first second again (``refit1``), and writes one row per cell: the kept
fit's held-out ETV and both refits'. ``--summary`` prints them per panel position. The held-out column is for this
diagnosis only.
"""

from __future__ import annotations

import json
import math
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # benchmarks/fitting

from cellfit.data import load_cell  # noqa: E402
from cellfit.data.protocol import EPOCH_LENGTH_S  # noqa: E402
from cellfit.fit import FitConfig  # noqa: E402
from cellfit.fit.api import held_out_scores  # noqa: E402
from cellfit.fit.fitter import TrainingSet  # noqa: E402
from cellfit.fit.select import fit_by_variant, start_from_fit  # noqa: E402
from oracle import append_rows, candidates_held_out, probe_main  # noqa: E402


def run(cache: pathlib.Path, out: pathlib.Path, label: str, ids: list[int], seed: int) -> None:
    config = FitConfig()
    cells = candidates_held_out(cache, ids, config, seed=seed, keep_models=True)
    jobs3, jobs1, meta = [], [], []
    for k, (rows, cands, rec) in enumerate(cells):
        kept = next(r for r in rows if r["kept"])
        state = cands[kept["candidate"]]
        if state.failed:
            continue
        whole = load_cell(int(rec.meta.specimen_id), config.dt_ms, EPOCH_LENGTH_S, cache)
        three = TrainingSet(whole.normalised_current("train"), whole.train.spikes, whole.normalised_voltage("train"))
        one = TrainingSet(rec.normalised_current("train"), rec.train.spikes, rec.normalised_voltage("train"))
        start = start_from_fit(state)
        jobs3.append((k, three, start))
        jobs1.append((k, one, start))
        meta.append((rec, kept))
    # one batched model per window length (the cells of one model share T)
    states3 = fit_by_variant(jobs3, config, "cpu", seed, False, None)
    states1 = fit_by_variant(jobs1, config, "cpu", seed, False, None)
    out_rows = []
    for (rec, kept), s3, s1 in zip(meta, states3, states1):
        def held(st):
            return math.nan if st.failed else held_out_scores(st.model, rec, config.dt_ms)[0]["etv"]
        row = dict(label=label, specimen_id=int(rec.meta.specimen_id), model=kept["model"], start=kept["start"],
                   kept_etv=kept["held_out_etv"], refit3_etv=held(s3), refit1_etv=held(s1),
                   refit3_epochs=s3.epochs, refit1_epochs=s1.epochs)
        out_rows.append(row)
        print(f"{label} {row['specimen_id']} {row['model']:14s} kept {row['kept_etv']:.3f}  refit on 3 s "
              f"{row['refit3_etv']:.3f} ({s3.epochs} epochs)  refit on 1 s {row['refit1_etv']:.3f} ({s1.epochs})")
    append_rows(out, out_rows)


def summarise(path: pathlib.Path, labels: list[str]) -> None:
    rows = [r for r in map(json.loads, open(path)) if r["label"] in labels]
    groups: dict = {}
    for r in rows:
        groups.setdefault(r["specimen_id"] % 100, []).append(r)
    groups["all"] = rows
    print("| panel position | cells | kept: mean, below 0.7 | refit on 3 s: mean, below 0.7, up / down | "
          "refit on 1 s: mean, below 0.7, up / down |")
    print("|---|---|---|---|---|")
    for pos, rs in groups.items():
        def col(key):
            v = [r[key] for r in rs]
            up = sum(r[key] > r["kept_etv"] + 0.02 for r in rs)
            down = sum(r[key] < r["kept_etv"] - 0.02 for r in rs)
            return f"{statistics.mean(v):.3f}, {sum(x < 0.7 for x in v)}, {up} / {down}"
        kept = [r["kept_etv"] for r in rs]
        print(f"| {pos} | {len(rs)} | {statistics.mean(kept):.3f}, {sum(x < 0.7 for x in kept)} | {col('refit3_etv')} "
              f"| {col('refit1_etv')} |")


if __name__ == "__main__":
    probe_main(__doc__, run, summarise)
