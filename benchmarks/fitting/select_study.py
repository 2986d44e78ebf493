"""How a cell's fit should be chosen: every candidate's validation and held-out scores, per cell.

Usage::

    python benchmarks/fitting/select_study.py CACHE OUT.jsonl --label dev [--restarts 2] [--diverse]

For every cell of a synthetic panel (an Allen-format cache) this trains the candidates a
choice could pick from (each model variant of ``--models``, from each of the ``--restarts``
best grid points; 1 s of each Noise 1 epoch, no bootstrap refits) and writes one JSON line
per candidate: its validation ETV on the second and on the third second of each Noise 1
epoch and on both together (the model runs through the earlier seconds first), its final
training loss, its fitted time constants (and the true ones, where the cache has them), and
its held-out ETV on Noise 2. ``--diverse`` starts the restarts from the best grid point of
each grid tau_adapt (``FitConfig.diverse_restarts``, the search of ``--adapt-search``). A selection rule (which candidates, which
validation seconds, how large a margin an extension needs) can then be evaluated offline
on the development panel by ``select_rules.py``, without refitting. The held-out column is
only for the evaluation of rules on the development panel: no rule may read it. The rows of
the three development draws are committed: ``benchmarks/fitting/select-dev.jsonl`` (round 2) and,
for ``--models alif --restarts 5 --diverse`` (round 4), ``benchmarks/fitting/search-dev.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import torch

from cellfit.data import load_cell
from panel_eval import _true_taus, _truth, specimen_ids  # this folder (run as a script)
from cellfit.fit import FitConfig
from cellfit.fit.api import held_out_scores
from cellfit.fit.fitter import TrainingSet, physical_parameters
from cellfit.fit.select import ValidationSet, fit_candidates, validation_scores

#: validation windows (seconds of each 3 s Noise 1 epoch): [start, stop)
WINDOWS = {"val_2nd": (1.0, 2.0), "val_3rd": (2.0, 3.0), "val_2nd_3rd": (1.0, 3.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", type=pathlib.Path)
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--label", required=True)
    ap.add_argument("--restarts", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["alif", "alif_asc", "alif_reset_asc"])
    ap.add_argument("--diverse", action="store_true", help="restarts from each grid tau_adapt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = FitConfig(model="auto", candidate_models=tuple(a.models), restarts=a.restarts, bootstrap=0,
                    diverse_restarts=a.diverse)
    ids = specimen_ids(a.cache)
    recs = [load_cell(i, cfg.dt_ms, 3.0, a.cache) for i in ids]
    n_train = int(round(1000.0 / cfg.dt_ms))
    firsts = [r.first(1.0) for r in recs]
    sets = [TrainingSet(r.normalised_current("train"), r.train.spikes, r.normalised_voltage("train")) for r in firsts]
    t0 = time.perf_counter()
    candidates, _ = fit_candidates(sets, cfg, device="cpu", seed=a.seed, progress=False, keys=ids)
    wall = time.perf_counter() - t0
    with open(a.out, "a") as fh:
        for rec, first, cands in zip(recs, firsts, candidates):
            cur, spk = rec.normalised_current("train"), rec.train.spikes
            val = {}
            for name, (lo, hi) in WINDOWS.items():
                start, stop = int(round(lo * n_train)), int(round(hi * n_train))
                val[name] = validation_scores(cands, ValidationSet(cur[..., :stop], spk[..., :stop], start), cfg.dt_ms)
            truth = _truth(a.cache, rec.meta.specimen_id)
            true_m, true_a = _true_taus(truth)
            for i, st in enumerate(cands):
                test, par = None, ({} if st.failed else physical_parameters(st.model))
                if not st.failed:
                    try:
                        test = held_out_scores(st.model, first, cfg.dt_ms)[0]["etv"]
                    except ValueError:
                        pass
                row = dict(label=a.label, specimen_id=rec.meta.specimen_id, candidate=i,
                           model=st.init.get("model", "alif"), start_rank=i % a.restarts, failed=st.failed,
                           train_loss=st.best_loss, epochs=st.epochs, test_etv=test,
                           start_tau_adapt_ms=st.init.get("tau_adapt_ms"), tau_m_ms=par.get("tau_m_ms"),
                           tau_adapt_ms=par.get("tau_adapt_ms"), true_tau_m_ms=true_m, true_tau_adapt_ms=true_a,
                           family=truth.get("family", truth.get("model")), firing_class=truth.get("firing_class"),
                           **{k: v[i] for k, v in val.items()}, panel_wall_s=wall)
                fh.write(json.dumps(row, default=float) + "\n")
    print(f"{a.label}: {len(recs)} cells, {sum(map(len, candidates))} candidates, {wall:.0f} s", flush=True)


if __name__ == "__main__":
    main()
