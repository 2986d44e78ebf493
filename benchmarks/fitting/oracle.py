"""Does the choice or the candidate set limit a cell? Every candidate of the default fit, scored on held-out data.

Usage::

    python benchmarks/fitting/oracle.py CACHE OUT.jsonl --label dev_seed1 [--specimens ID ...] [--variant default]

For the cells of a synthetic panel (an Allen-format cache) this trains the candidates the default fit chooses
from (:func:`cellfit.fit.select.fit_candidates`: the same starts, variants, gain starts and validation seconds as
``python -m cellfit.fit``, no bootstrap refits; or those of a ``panel_eval.py`` variant), applies its choice, and
writes one JSON line per candidate: its variant and start, training loss, validation ETV, training-window ETV
(where the choice scores it; with ``--train-etv`` for every candidate), held-out ETV (Noise 2) and whether the choice kept it; then prints one line per cell. Where no candidate reaches a held-out ETV, no choice rule can (the candidate set or the
model class limits the cell); where one does but is not kept, the choice does. The held-out column is for this
diagnosis on development panels only: no rule may read it (FITTING.md, round 19).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import statistics
from typing import Optional

import torch

from cellfit.data import load_cell
from cellfit.data.protocol import EPOCH_LENGTH_S
from cellfit.fit import FitConfig
from cellfit.fit.api import held_out_scores
from cellfit.fit.fitter import TrainingSet
from cellfit.fit.select import ValidationSet, choice, fit_candidates, validation_scores
from panel_eval import VARIANTS, specimen_ids  # this folder (run as a script)


def candidates_held_out(cache: pathlib.Path, ids: list[int], config: FitConfig, window_s: float = 1.0,
                        seed: int = 0, keep_models: bool = False, train_etv: bool = False) -> list:
    """Per cell, one dict per candidate of the default fit (module docstring); with ``keep_models``, per cell
    ``(rows, candidates, recording)``: the candidates' fitted states and the cell's training-window recording too;
    with ``train_etv``, every candidate's training-window ETV (not only where the choice scores it)."""
    loaded = min(EPOCH_LENGTH_S, window_s + config.validation_s)
    whole = [load_cell(sid, config.dt_ms, loaded, cache) for sid in ids]
    n_train = int(round(window_s * 1000.0 / config.dt_ms))
    validation = [ValidationSet(r.normalised_current("train"), r.train.spikes, n_train) if r.train.n_bins > n_train
                  else None for r in whole]
    recs = [r.first(window_s) for r in whole]
    sets = [TrainingSet(r.normalised_current("train"), r.train.spikes, r.normalised_voltage("train")) for r in recs]
    cands, _ = fit_candidates(sets, config, device="cpu", seed=seed, progress=False, names=[str(i) for i in ids],
                              keys=ids, validation=validation)
    out = []
    for rec, cs, data, val in zip(recs, cands, sets, validation):
        kept, _, scores, train = choice(cs, data, val, config)
        if train is None and train_etv:
            train = validation_scores(cs, ValidationSet(data.current, data.spikes, 0), config.dt_ms)
        rows = []
        for i, c in enumerate(cs):
            held = math.nan if c.failed else held_out_scores(c.model, rec, config.dt_ms)[0]["etv"]
            rows.append(dict(specimen_id=int(rec.meta.specimen_id), candidate=i, model=c.init.get("model", "alif"),
                             start=c.init.get("method", ""), train_loss=c.best_loss,
                             validation_etv=None if scores is None else scores[i],
                             train_etv=None if train is None else train[i], held_out_etv=held,
                             kept=i == kept, failed=c.failed))
        out.append((rows, cs, rec) if keep_models else rows)
    return out


def append_rows(path: pathlib.Path, rows: list[dict]) -> None:
    """Append ``rows`` to the JSON-lines file ``path`` in one write: a panel's rows are all there or none."""
    with open(path, "a") as fh:
        fh.write("".join(json.dumps(row) + "\n" for row in rows))


def cells_of(path: pathlib.Path, labels: list[str], variant: Optional[str] = None) -> dict:
    """Candidate rows (:func:`candidates_held_out`'s, as the studies append them) of ``labels`` in the JSON-lines file
    ``path``, per cell: ``{(label, specimen_id): [row, ...]}`` in file order; with ``variant``, only the rows of that
    fit variant (a file that holds several variants' fits of the same cells needs it)."""
    cells: dict = {}
    with open(path) as fh:
        for line in fh:
            r = json.loads(line)
            if r["label"] in labels and (variant is None or r.get("variant", "default") == variant):
                cells.setdefault((r["label"], r["specimen_id"]), []).append(r)
    return cells


def unvetoed_rows(members: list[dict], veto: float = 0.1) -> list[dict]:
    """The rows of one variant's candidates (first = its best grid point) that did not fail and that the validation
    seconds do not veto (``FitConfig.validation_veto``'s default; every one that did not fail where the first has no
    score or is a bursting start): :func:`cellfit.fit.select._not_vetoed` on rows."""
    first = members[0]
    alive = [r for r in members if not r["failed"]]
    if not finite(first["validation_etv"]) or "bursting start" in first["start"]:
        return alive
    return [r for r in alive if r is first or (finite(r["validation_etv"])
                                               and r["validation_etv"] >= first["validation_etv"] - veto)]


def finite(v) -> bool:
    """A row's score that was computed (not None, not NaN)."""
    return v is not None and math.isfinite(v)


def kept_row(rows: list[dict]) -> dict:
    """The candidate row the choice kept, of one cell's rows."""
    return next(r for r in rows if r["kept"])


def print_rules(cells: dict, labels: list[str], rules: dict, width: int) -> None:
    """For each choice rule (name -> function of one cell's candidate rows returning the row it keeps): the median,
    mean and minimum held-out ETV of the kept rows over ``cells`` (:func:`cells_of`), how many lie below 0.7, and how
    many cells rise or fall by more than 0.02 against the rows' own kept candidate; then the best candidate held out
    (not a rule). ``width``: the name column's."""
    ok = finite
    base = {c: kept_row(rs)["held_out_etv"] for c, rs in cells.items()}
    print(f"{len(cells)} cells ({', '.join(labels)})")
    for name, rule in rules.items():
        etvs = {c: rule(rs)["held_out_etv"] for c, rs in cells.items()}
        v = [x for x in etvs.values() if ok(x)]
        up = sum(1 for c in cells if ok(etvs[c]) and ok(base[c]) and etvs[c] > base[c] + 0.02)
        down = sum(1 for c in cells if ok(etvs[c]) and ok(base[c]) and etvs[c] < base[c] - 0.02)
        print(f"{name:{width}s} median {statistics.median(v):.3f} mean {statistics.mean(v):.3f} min {min(v):.3f} "
              f"below 0.7: {sum(x < 0.7 for x in v):2d}  up {up:2d} down {down:2d}")
    best = [max(r["held_out_etv"] for r in rs if not r["failed"] and ok(r["held_out_etv"])) for rs in cells.values()]
    print(f"{'best candidate (held out; not a rule)':{width}s} median {statistics.median(best):.3f} "
          f"mean {statistics.mean(best):.3f} min {min(best):.3f} below 0.7: {sum(x < 0.7 for x in best):2d}")


def cache_specimens(ap: argparse.ArgumentParser, cache: pathlib.Path, specimens: Optional[list[int]]) -> list[int]:
    """The specimen ids to fit: ``specimens`` (all of the cache's where None); a usage error (exit 2) for a folder that
    is not a synthetic cache or for ids it does not hold."""
    ids = specimen_ids(cache)
    if not ids:
        ap.error(f"{cache} holds no specimen_*/ephys.nwb: give a cache written by python -m cellfit.data synthetic")
    unknown = sorted(set(specimens or []) - set(ids))
    if unknown:
        ap.error(f"specimens {unknown} are not in {cache}: choose among {ids}")
    return list(specimens) if specimens else ids


def study_parser(description: str, summary_option: str, summary_help: str) -> argparse.ArgumentParser:
    """The arguments the studies built on :func:`candidates_held_out` share: ``CACHE OUT.jsonl --label L`` to fit a
    panel, or ``summary_option ROWS --label L ...`` to read rows back; ``--seed``, ``--threads``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("cache", type=pathlib.Path, nargs="?", help="Allen-format cache of a synthetic panel")
    ap.add_argument("out", type=pathlib.Path, nargs="?", help="JSON lines file to append to")
    ap.add_argument("--label", nargs="+", required=True, help="the panel's label (with a summary: the labels to read)")
    ap.add_argument(summary_option, type=pathlib.Path, default=None, help=summary_help)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    return ap


def probe_main(doc: str, run, summarise) -> None:
    """The command line of a probe over one panel's cells: ``CACHE OUT.jsonl --label L [--specimens ...]`` calls
    ``run(cache, out, label, specimen ids, seed)``; ``--summary ROWS --label L ...`` calls ``summarise(ROWS, labels)``
    (``doc``: the probe's docstring, whose first paragraph describes it)."""
    ap = study_parser(doc.split("\n\n")[0], "--summary", "rows written by this probe: print the summary")
    ap.add_argument("--specimens", type=int, nargs="+", default=None)
    args = study_args(ap, "--summary", summarise)
    if args is None:
        return
    if len(args.label) != 1:
        ap.error("give one --label when fitting")
    run(args.cache, args.out, args.label[0], cache_specimens(ap, args.cache, args.specimens), args.seed)


def study_args(ap: argparse.ArgumentParser, summary_option: str, summarise) -> Optional[argparse.Namespace]:
    """Parse a :func:`study_parser`'s arguments: with ``summary_option ROWS``, ``summarise(ROWS, labels)`` and None;
    otherwise the arguments (CACHE and OUT.jsonl required), with torch's threads set."""
    args = ap.parse_args()
    rows = getattr(args, summary_option.lstrip("-"))
    if rows is not None:
        summarise(rows, args.label)
        return None
    if args.cache is None or args.out is None:
        ap.error(f"give CACHE and OUT.jsonl (or {summary_option} ROWS)")
    torch.set_num_threads(args.threads)
    return args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cache", type=pathlib.Path, help="Allen-format cache of a synthetic panel")
    ap.add_argument("out", type=pathlib.Path, help="JSON lines file to append to")
    ap.add_argument("--label", required=True, help="panel label written with every row (dev, dev_seed1, ...)")
    ap.add_argument("--specimens", type=int, nargs="+", default=None, help="only these cells (default: all)")
    ap.add_argument("--variant", default="default", choices=sorted(VARIANTS),
                    help="the configuration whose candidates are scored (panel_eval.py's VARIANTS; default FitConfig())")
    ap.add_argument("--train-etv", action="store_true",
                    help="score every candidate's training-window ETV (by default only where the choice reads it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ids = cache_specimens(ap, args.cache, args.specimens)
    torch.set_num_threads(args.threads)
    options = dict(VARIANTS[args.variant])
    window = options.pop("window", 1.0)
    per_cell = candidates_held_out(args.cache, ids, FitConfig(**{"dt_ms": 0.1, **options}),
                                   window_s=window, seed=args.seed, train_etv=args.train_etv)
    append_rows(args.out, [dict(label=args.label, variant=args.variant, **row) for rows in per_cell for row in rows])
    for rows in per_cell:
        best = max((r["held_out_etv"] for r in rows if not r["failed"]), default=math.nan)
        kept = next(r for r in rows if r["kept"])
        print(f"{args.label} {rows[0]['specimen_id']}: kept {kept['model']} {kept['held_out_etv']:.3f}, best "
              f"candidate {best:.3f} | " + " ".join(f"{r['model'].replace('alif_', '') or 'alif'}:"
                                                 f"{r['held_out_etv']:.2f}" for r in rows), flush=True)


if __name__ == "__main__":
    main()
