"""Would long-square steps choose better among the candidates? Every candidate scored on DC steps and held out.

Usage::

    python benchmarks/fitting/long_square_study.py CACHE OUT.jsonl --label dev_seed1 --panel dev --panel-seed 1
    python benchmarks/fitting/long_square_study.py --rules OUT.jsonl --label dev_seed0 dev_seed1 ...

The held-out score sees each epoch's onset (its first second, from rest); the validation seconds that the choice
reads see the adapted state, and the training window is what every candidate was fitted to. Allen records also
hold 1 s long-square steps from rest, which no fit here reads. This study asks whether such steps would tell the
look-alike candidates apart before the library reads them: for the cells of a synthetic panel (the cache written
by ``python -m cellfit.data synthetic --panel P --seed S``; ``--panel``/``--panel-seed`` rebuild the same cells) it
simulates each cell's response to 1 s DC steps at :data:`STEP_AMPLITUDES` x its long-square rheobase
(``threshold_i_long_square``), :data:`STEP_REPEATS` noisy repeats each (the generator's models, intrinsic noise
from a stream of its own, the model's spike times as ``synthetic_recordings`` takes them), fits the default's
candidates (as ``oracle.py``), and writes one JSON line per candidate: training loss, validation ETV, held-out ETV
(Noise 2, diagnosis only: no rule may read it), the kept flag, and the candidate's ETV on the steps
(``step_etv``, Gaussian 10 ms as the held-out score; ``step_etv50``, 50 ms: the rate profile).

``--rules`` reads such rows and prints, per choice rule, the median, mean and minimum held-out ETV of the chosen
candidates and how many lie below 0.7 (the rules read only training data and steps).
"""

from __future__ import annotations

import csv
import math
import pathlib
import sys

import numpy as np

from cellfit.data.synthetic import development_panel, test_panel
from cellfit.data.synthetic.allen_format import check_sampling_rate
from cellfit.data.synthetic.cells import specimen_ids as panel_ids
from cellfit.data.synthetic.engine import model_inputs, run_models
from cellfit.data.synthetic.sweeps import prepare_cell, precompute
from cellfit.fit import FitConfig
from cellfit.fit.fitter import predict_population
from cellfit.fit.metrics import etv_components
from cellfit.fit.select import by_variant

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from oracle import (append_rows, candidates_held_out, cells_of, finite, kept_row, print_rules,  # noqa: E402
                    study_args, study_parser)  # (this folder)
from panel_eval import specimen_ids  # noqa: E402

#: step amplitudes, times the cell's long-square rheobase (the noise epochs' means are 0.75, 1 and 1.5 x)
STEP_AMPLITUDES = (1.0, 1.25, 1.5, 2.0)
STEP_REPEATS = 2
STEP_S = 1.0
FS = 20_000.0
PANELS = {"dev": development_panel, "test": test_panel}


def step_responses(cells, seed: int, dt_ms: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per specimen id: ``(amplitudes_pA (E,), spikes (R, E, T))`` of 1 s DC steps from rest, binned at dt_ms."""
    fs = check_sampling_rate(FS)
    ids = panel_ids(cells)
    calibrations = precompute(cells, ids, fs)
    n = int(round(STEP_S * fs))
    per_bin = int(round(dt_ms * fs / 1000.0))
    jobs, amps = [], []
    for cell, sid, cal in zip(cells, ids, calibrations):
        drive = cal.drive if cal is not None else cell.effective_drive
        prep = prepare_cell(cell, sid, seed, fs, drive)  # the noise sweeps' scale, gain and rheobase
        a = np.array(STEP_AMPLITUDES) * prep["rheobase"]
        rows = np.repeat(a[None, :], STEP_REPEATS, axis=0).reshape(-1, 1) * np.ones((1, n))
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(sid) % (2**32), 7]))
        xi = rng.standard_normal(rows.shape)
        inputs = model_inputs(cell.params, rows, xi, prep["scale"], prep["rheobase"], drive, 1000.0 / fs)["inputs"]
        jobs.append((cell.params, inputs))
        amps.append(a)
    out = {}
    T = n // per_bin
    for sid, a, (_, spikes) in zip(ids, amps, run_models(jobs, 1000.0 / fs)):  # a[0]: the rheobase
        binned = np.zeros((STEP_REPEATS * len(a), T), dtype=np.float32)
        for r, s in enumerate(spikes):
            b = np.asarray(s, dtype=np.int64) // per_bin
            binned[r, b[b < T]] = 1.0
        out[int(sid)] = (a, binned.reshape(STEP_REPEATS, len(a), T))
    return out


def step_scores(models_by_variant, current: np.ndarray, rec: np.ndarray, dt_ms: float) -> dict[int, tuple]:
    """Candidate index -> (step ETV at 10 ms, at 50 ms) for the candidates' models on the steps."""
    out = {}
    for group, models in models_by_variant:
        pred = predict_population(models, current)  # (K, E, T)
        for i, p in zip(group, pred):
            try:
                out[i] = (etv_components(p, rec, dt_ms).etv, etv_components(p, rec, dt_ms, sigma_ms=50.0).etv)
            except ValueError:  # no reliable spikes in the steps
                out[i] = (math.nan, math.nan)
    return out


def _check_draw(cache: pathlib.Path, cells, steps) -> None:
    """Stop unless ``cells`` are the cache's draw: each cell's long-square rheobase and (ALIF, AdEx) membrane time
    constant as its ``ephys_features.csv`` row has them (both depend on the drawn parameters)."""
    with open(cache / "ephys_features.csv") as fh:
        rows = {int(r["specimen_id"]): r for r in csv.DictReader(fh)}
    for cell, sid in zip(cells, panel_ids(cells)):
        r = rows[int(sid)]
        tau = float(r["tau"])
        if not (math.isclose(float(r["threshold_i_long_square"]), steps[int(sid)][0][0], rel_tol=1e-5)
                and (cell.model == "hh" or math.isclose(tau, cell.params.tau_m_ms, rel_tol=1e-5))):
            raise SystemExit(f"{cache}: specimen {sid} is not the cell of this --panel-seed (its rheobase or tau "
                             "differs): give the --seed the cache was written with")


def study(cache: pathlib.Path, panel: str, panel_seed: int, seed: int = 0) -> list[dict]:
    config = FitConfig(dt_ms=0.1)
    ids = specimen_ids(cache)
    cells = PANELS[panel](panel_seed)
    if sorted(panel_ids(cells)) != sorted(ids):
        raise SystemExit(f"{cache} does not hold the cells of --panel {panel} --panel-seed {panel_seed}")
    steps = step_responses(cells, panel_seed, config.dt_ms)
    _check_draw(cache, cells, steps)
    rows = []
    for cell_rows, cands, rec in candidates_held_out(cache, ids, config, seed=seed, keep_models=True):
        sid = cell_rows[0]["specimen_id"]
        amps, spikes = steps[sid]
        current = (amps[:, None] / rec.current_scale_pA * np.ones((1, spikes.shape[-1]))).astype(np.float32)
        groups = [(g, [cands[i].model for i in g]) for g in by_variant(cands, alive_only=True)]
        scores = step_scores(groups, current, spikes, config.dt_ms)
        n_step = spikes.sum(axis=-1).mean(axis=0)
        for r in cell_rows:
            s10, s50 = scores.get(r["candidate"], (math.nan, math.nan))
            rows.append(dict(r, step_etv=s10, step_etv50=s50, step_spikes=[float(x) for x in n_step]))
    return rows


def _rules(path: pathlib.Path, labels: list[str]) -> None:
    cells = cells_of(path, labels)
    ok, default = finite, kept_row

    def best_step(key, within=None, of_kept=False):
        def pick(rs):
            alive = [r for r in rs if not r["failed"]]
            lo = default(rs)["train_loss"] if of_kept else min(r["train_loss"] for r in alive)
            cand = [r for r in alive if within is None or r["train_loss"] <= lo * (1 + within)]
            scored = [r for r in cand if ok(r[key])]
            return max(scored, key=lambda r: r[key]) if scored else default(rs)
        return pick

    def margin(key, m):
        def pick(rs):
            k = default(rs)
            alive = [r for r in rs if not r["failed"] and ok(r[key])]
            if not alive or not ok(k[key]):
                return k
            b = max(alive, key=lambda r: r[key])
            return b if b[key] >= k[key] + m else k
        return pick

    rules = {"default (kept)": default}
    for key in ("step_etv", "step_etv50"):
        rules[f"best {key}"] = best_step(key)
        for w in (0.05, 0.1, 0.25):
            rules[f"best {key}, loss within {w:g}"] = best_step(key, within=w)
            rules[f"best {key}, loss within {w:g} of kept"] = best_step(key, within=w, of_kept=True)
        for m in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
            rules[f"kept unless {key} higher by {m:g}"] = margin(key, m)
    print_rules(cells, labels, rules, 50)


def main() -> None:
    ap = study_parser(__doc__.split("\n\n")[0], "--rules", "rows to apply the choice rules to")
    ap.add_argument("--panel", choices=sorted(PANELS), default="dev")
    ap.add_argument("--panel-seed", type=int, default=0, help="the --seed the cache was written with")
    args = study_args(ap, "--rules", _rules)
    if args is None:
        return
    rows = study(args.cache, args.panel, args.panel_seed, seed=args.seed)
    append_rows(args.out, [dict(label=args.label[0], **r) for r in rows])
    by_cell: dict = {}
    for r in rows:
        by_cell.setdefault(r["specimen_id"], []).append(r)
    for sid, rs in by_cell.items():
        kept = next(r for r in rs if r["kept"])
        print(f"{args.label[0]} {sid}: kept {kept['model']} held {kept['held_out_etv']:.3f} step "
              f"{kept['step_etv']:.2f} | " + " ".join(
                  f"{r['model'].replace('alif_', '') or 'alif'}:{r['held_out_etv']:.2f}/{r['step_etv']:.2f}"
                  for r in rs), flush=True)


if __name__ == "__main__":
    main()
