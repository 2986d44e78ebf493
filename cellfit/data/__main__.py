"""Command line for the data layer: fetch Allen data, list panels, write synthetic caches.

    python -m cellfit.data fetch --panel paper146           # download (online) into the cache
    python -m cellfit.data fetch --specimen 485909730 --cache-dir /data/allen
    python -m cellfit.data panel paper146                   # print the panel's specimen ids
    python -m cellfit.data synthetic /tmp/syn --alif 4 --mismatch 6
    python -m cellfit.data demo                             # create the demo cell, print where

Data errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import allen
from .demo import ensure_demo_cell
from .errors import CellDataError
from .panels import select_panel
from .synthetic import alif_panel, mismatch_panel, write_synthetic_cache


def _fetch(args) -> None:
    if not allen.allensdk_installed():
        raise CellDataError(f"fetch downloads from the Allen API, which needs AllenSDK: {allen.ALLEN_INSTALL}; "
                            "an existing cache is read without it (see data/README.md)")
    cache = allen.default_cache_dir(args.cache_dir)
    ids = select_panel(args.panel, cache) if args.panel else select_panel(args.specimen)
    store = allen.open_allen_cache(cache, "allensdk")
    known = store.cells()
    unknown = [sid for sid in ids if sid not in known]
    if unknown:
        raise CellDataError(f"unknown specimen(s) {unknown}: not in the cell table of {cache}")
    total = 0
    for i, sid in enumerate(ids, 1):
        store.sweep_table(sid)
        size = store.fetch_nwb(sid).stat().st_size
        total += size
        print(f"[{i}/{len(ids)}] specimen {sid}: {size / 1e6:.0f} MB")
    print(f"{len(ids)} cells, {total / 1e9:.2f} GB of NWB files in {cache}")


def _panel(args) -> None:
    for sid in select_panel(args.panel, args.cache_dir):
        print(sid)


def _synthetic(args) -> None:
    cells = alif_panel(args.alif, args.seed) + mismatch_panel(args.mismatch, args.seed)
    if not cells:
        raise CellDataError("nothing to write: give --alif and/or --mismatch a positive count")
    ids = write_synthetic_cache(args.out, cells, seed=args.seed, sampling_rate_hz=args.rate)
    print(f"wrote {len(ids)} synthetic cells to {args.out}: {' '.join(map(str, ids))}")


def _demo(args) -> None:
    cache, sid = ensure_demo_cell(args.cache_dir)
    print(f"demo cell {sid} in {cache}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cellfit.data", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True)
    cache_help = "Allen cache directory (default: $CELLFIT_CACHE or ~/.cache/cellfit/allen)"

    p = sub.add_parser("fetch", help="download cells through AllenSDK into the cache (needs internet and "
                                     "pip install 'cellfit[allen]')")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--panel", help="a named panel, e.g. paper146")
    group.add_argument("--specimen", type=int, nargs="+", help="explicit specimen ids")
    p.add_argument("--cache-dir", help=cache_help)
    p.set_defaults(func=_fetch)

    p = sub.add_parser("panel", help="print the specimen ids of a panel")
    p.add_argument("panel", help="paper146, or comma-separated specimen ids")
    p.add_argument("--cache-dir", help=cache_help)
    p.set_defaults(func=_panel)

    p = sub.add_parser("synthetic", help="write synthetic cells with known truth as an Allen cache")
    p.add_argument("out", help="cache directory to write (created if missing)")
    p.add_argument("--alif", type=int, default=0, help="number of ALIF cells (ground truth inside the model family)")
    p.add_argument("--mismatch", type=int, default=0, help="number of AdEx cells (outside the ALIF family)")
    p.add_argument("--seed", type=int, default=0, help="seed of parameters and noise")
    p.add_argument("--rate", type=float, default=20_000.0, help="sampling rate of the NWB traces, Hz")
    p.set_defaults(func=_synthetic)

    p = sub.add_parser("demo", help="create the built-in demo cell and print its cache directory")
    p.add_argument("--cache-dir", help=cache_help)
    p.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        args.func(args)
    except CellDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
