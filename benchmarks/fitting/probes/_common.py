"""Shared set-up of the probes: development (or probe-cell) caches in, loaded recordings out.

Never a test panel, except to check a rule decided and committed before that test draw was written (FITTING.md)."""

from __future__ import annotations

import argparse
import json
import pathlib

import torch

from cellfit.data import load_cell
from cellfit.fit.config import GRID_RESTARTS

#: the default fit when these probes ran (rounds 2-3 of FITTING.md): one start, the best grid point
ONE_START = dict(restarts=1, **GRID_RESTARTS)


def parse(description: str, cells: str, extra=None) -> argparse.Namespace:
    """The probes' common options; ``extra(parser)`` adds a probe's own."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("caches", nargs="+", type=pathlib.Path,
                    help="development-panel caches (python -m cellfit.data synthetic --panel dev [--seed N]) or "
                         "probe-cell caches (alif_probe_cells.py)")
    ap.add_argument("--cells", default=cells, help="panel positions, 1-based, comma-separated: the cache's cells in "
                                                   "the order of their specimen ids (default %(default)s)")
    ap.add_argument("--out", type=pathlib.Path, default=None, help="JSON lines file to append rows to")
    ap.add_argument("--threads", type=int, default=2)
    if extra is not None:
        extra(ap)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    return a


def load(a: argparse.Namespace) -> tuple[list, list]:
    """``(recordings, keys)``: 3 s of every epoch (the validation seconds too), keys ``(cache name, position)``."""
    recs, keys = [], []
    for cache in a.caches:
        ids = sorted(int(p.name.split("_")[1]) for p in cache.glob("specimen_*"))
        for i in (int(c) for c in a.cells.split(",")):
            if not 1 <= i <= len(ids):
                raise SystemExit(f"--cells {i}: {cache} holds {len(ids)} cells (positions 1-{len(ids)})")
            recs.append(load_cell(ids[i - 1], 0.1, 3.0, cache))
            keys.append((cache.name, i))
    return recs, keys


def append_rows(path, rows) -> None:
    """Append ``rows`` (dicts) to the JSON-lines file ``path`` in one write (nothing when ``path`` is None)."""
    if path:
        with open(path, "a") as fh:
            fh.write("".join(json.dumps(row) + "\n" for row in rows))
