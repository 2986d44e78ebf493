"""Would a guard on round 42's refit keep the better fit? (round 48, a study on development cells)

Usage::

    python benchmarks/fitting/probes/refit_guard.py DEV0 rows.jsonl --label dev_seed0   # every cell of the draw
    python benchmarks/fitting/probes/refit_guard.py --summary rows.jsonl --label dev_seed0 dev_seed1 ...

Since round 42 a kept ``alif_sub`` fit is trained again on all of Noise 1 and that refit is reported. The opt-in
``FitConfig.refit_guard`` keeps the refit only where its ETV over all of Noise 1 (the data it trained on) is at least
the first fit's there (:func:`cellfit.fit.select.keeps_refit`). One run of today's default (the given cells fitted
together, as ``panel_eval.py`` fits them) gives both answers: for each refitted cell this writes the two fits' ETV
over all of Noise 1 (``noise1_first``, ``noise1_refit``: what the guard compares, computed as it computes them), on
the training window and on the validation seconds alone, held out on Noise 2's first second (``held_first``,
``held_refit``: the panel's score; ``final`` is the default's reported ETV, equal to ``held_refit``) and on its three
seconds (``held3_*``). The guard's ETV for a cell is ``held_refit`` where ``noise1_refit >= noise1_first`` and
``held_first`` otherwise. The held-out columns are for this diagnosis only.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # benchmarks/fitting

import cellfit.fit.api as api  # noqa: E402
from cellfit.data import load_cell  # noqa: E402
from cellfit.data.protocol import EPOCH_LENGTH_S  # noqa: E402
from cellfit.fit import FitConfig  # noqa: E402
from cellfit.fit.select import ValidationSet, keeps_refit, refit_explains_as_well, validation_scores  # noqa: E402
from oracle import append_rows, probe_main  # noqa: E402


def run(cache: pathlib.Path, out: pathlib.Path, label: str, ids: list[int], seed: int) -> None:
    config = FitConfig()
    seen = []
    original = api.refit_whole

    def spy(chosen, wholes, cfg, **kw):  # the first fits, the refits' data and the refits, as the default makes them
        refits = original(chosen, wholes, cfg, **kw)
        seen.append((chosen, wholes, refits))
        return refits

    api.refit_whole = spy
    try:
        recs = [load_cell(i, config.dt_ms, EPOCH_LENGTH_S, cache) for i in ids]
        fits = api.fit_recordings(recs, config, window_s=1.0, device="cpu", seed=seed, progress=False)
    finally:
        api.refit_whole = original
    (chosen, wholes, refits), = seen
    rows = []
    for k, (sid, first, data, refit) in enumerate(zip(ids, chosen, wholes, refits)):
        if data is None or refit is None or refit.failed:
            continue
        steps = data.current.shape[-1]
        _, first_etv, refit_etv = keeps_refit(first, refit, data, config)  # the guard's own comparison
        scored = dict(noise1_first=first_etv, noise1_refit=refit_etv)
        for name, start, stop in (("train", 0, steps // 3), ("val", steps // 3, steps)):
            part = ValidationSet(data.current[..., :stop], data.spikes[..., :stop], start)
            scored[f"{name}_first"], scored[f"{name}_refit"] = validation_scores([first, refit], part, config.dt_ms)
        for name, model in (("first", first.model), ("refit", refit.model)):
            scored[f"held_{name}"] = api.held_out_scores(model, recs[k].first(1.0), config.dt_ms)[0]["etv"]
            scored[f"held3_{name}"] = api.held_out_scores(model, recs[k], config.dt_ms)[0]["etv"]
        rows.append(dict(label=label, specimen_id=sid, model=first.init.get("model", "alif"),
                         first_loss=first.best_loss, refit_loss=refit.best_loss, refit_epochs=refit.epochs,
                         **{key: float(v) for key, v in scored.items()}, final=fits[k].result.etv))
        print(f"{sid}: Noise 1 {scored['noise1_first']:.3f} -> {scored['noise1_refit']:.3f}, held out "
              f"{scored['held_first']:.3f} -> {scored['held_refit']:.3f}")
    append_rows(out, rows)


def guarded(row: dict) -> float:
    """The held-out ETV the guard reports for a cell (its rule, :func:`refit_explains_as_well`, on the row's ETVs)."""
    return row["held_refit"] if refit_explains_as_well(row["noise1_first"], row["noise1_refit"]) else row["held_first"]


def summarise(path: pathlib.Path, labels: list[str]) -> None:
    rows = [r for r in map(json.loads, open(path)) if not labels or r["label"] in labels]
    if not rows:
        raise SystemExit(f"no rows of {labels} in {path}")
    default = [r["held_refit"] for r in rows]
    guard = [guarded(r) for r in rows]
    for r, g in zip(rows, guard):
        change = "" if abs(g - r["held_refit"]) <= 0.02 else (" up" if g > r["held_refit"] else " down")
        print(f"{r['label']} {r['specimen_id']}: Noise 1 {r['noise1_first']:.3f} -> {r['noise1_refit']:.3f}; held out "
              f"{r['held_first']:.3f} -> {r['held_refit']:.3f}; guard {g:.3f}{change}")
    for name, values in (("default (refit kept)", default), ("refit_guard", guard)):
        print(f"{name}: {len(values)} cells, median {statistics.median(values):.3f}, mean {statistics.mean(values):.3f},"
              f" min {min(values):.3f}, below 0.7 {sum(v < 0.7 for v in values)}")
    up = sum(g > d + 0.02 for g, d in zip(guard, default))
    down = sum(g < d - 0.02 for g, d in zip(guard, default))
    print(f"guard against the default: {up} up / {down} down (> 0.02)")


if __name__ == "__main__":
    probe_main(__doc__, run, summarise)
