"""What limits an ALIF-generated cell's fit: the optimiser (the true parameters have a lower training loss than the kept
fit) or the data (the kept fit's training loss is as low or lower and it predicts all of Noise 1 as well as the
truth, yet not Noise 2).

For one ALIF cell of a synthetic cache (the only cells whose true parameters are in the fitted model class) and its
row of ``panel_eval.py``, prints for the true parameters (deterministic: without the intrinsic noise) and for the
kept fit: the training loss (van Rossum distance at the final loss stage, on the training window), the held-out ETV
(Noise 2) and the ETV on all three seconds of the Noise 1 epochs (training and validation data together).

Usage: ``python benchmarks/fitting/truth_check.py CACHE LABEL [SPECIMEN_ID ...] [--variant sub_band_both]
[--rows benchmarks/fitting/test-panel.jsonl]``; without ids, every ALIF cell of that panel's rows (FITTING.md,
round 19).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import torch

from cellfit.data import load_cell
from cellfit.fit import FitConfig
from cellfit.fit.api import score_model
from cellfit.fit.fitter import TrainingSet, predict_population, training_tensors

KEYS = ("tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias")


def check(cache: pathlib.Path, row: dict, window_s: float = 1.0) -> dict:
    """``{"truth": ..., "fit": ...}``, each with its training loss, held-out ETV, Noise 1 ETV and parameters."""
    cfg = FitConfig(dt_ms=row.get("dt_ms", 0.1))
    sid = int(row["specimen_id"])
    truth = json.loads((cache / f"specimen_{sid}" / "truth.json").read_text())
    if truth.get("model") != "alif":
        raise ValueError(f"specimen {sid} is a {truth.get('model')!r} cell: only ALIF cells have true ALIF parameters; "
                         f"give an ALIF cell")
    whole = load_cell(sid, cfg.dt_ms, 3.0, cache)  # the 3 s epochs: training window and validation seconds
    rec = whole.first(window_s)
    data = TrainingSet(rec.normalised_current("train"), rec.train.spikes, rec.normalised_voltage("train"))
    x, targets = training_tensors([data], cfg, "cpu")
    final = np.array([len(cfg.loss_taus_ms) - 1])
    out = {}
    for name, params in (("truth", {k: truth["params"][k] for k in KEYS}), ("fit", {k: row[k] for k in KEYS})):
        model = cfg.build_model(dict(model="alif", **params))
        spikes = torch.as_tensor(predict_population([model], x[:, 0].numpy())).transpose(0, 1).to(x.dtype)
        out[name] = dict(train_loss=float(targets.loss(spikes, final)[0]),
                         held_out_etv=score_model(model, rec.normalised_current("test"), rec.test.spikes,
                                                  cfg.dt_ms)[0].etv,
                         noise1_etv=score_model(model, whole.normalised_current("train"), whole.train.spikes,
                                                cfg.dt_ms)[0].etv,
                         **params)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cache", type=pathlib.Path, help="Allen-format cache of a synthetic panel")
    ap.add_argument("label", help="the panel's label in the rows (test_seed36, ...)")
    ap.add_argument("specimen_id", type=int, nargs="*", help="cells to check (default: every ALIF cell of the rows)")
    ap.add_argument("--variant", default="sub_band_both", help="the fit's variant in the rows")
    ap.add_argument("--rows", type=pathlib.Path, default=pathlib.Path(__file__).with_name("test-panel.jsonl"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
    panel = {r["specimen_id"]: r for r in rows if r.get("label") == args.label and r.get("variant") == args.variant}
    ids = args.specimen_id or [sid for sid, r in sorted(panel.items()) if r.get("family") == "alif"]
    missing = [sid for sid in ids if sid not in panel]
    if missing or not ids:
        ap.error(f"no row of {args.rows} has label {args.label}, variant {args.variant} and specimen "
                 f"{missing[0] if missing else '(an ALIF cell)'}: check the three")
    for sid in ids:
        try:
            result = check(args.cache, panel[sid], panel[sid].get("window_s", 1.0))
        except ValueError as exc:
            ap.error(str(exc))  # exit code 2
        for name, r in result.items():
            print(f"{sid} {name:5s}: training loss {r['train_loss']:.3f}, held-out ETV {r['held_out_etv']:.3f}, "
                  f"Noise 1 (3 s) ETV {r['noise1_etv']:.3f}; " + ", ".join(f"{k} {r[k]:.3g}" for k in KEYS),
                  flush=True)


if __name__ == "__main__":
    main()
