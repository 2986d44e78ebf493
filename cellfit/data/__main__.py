"""Command line for the data layer: fetch Allen data, list panels, write synthetic caches.

    python -m cellfit.data fetch --panel paper146           # download (online) into the cache
    python -m cellfit.data fetch --specimen 485909730 --cache-dir /data/allen
    python -m cellfit.data fetch --specimen demo            # the built-in demo cell (offline)
    python -m cellfit.data panel paper146                   # print the panel's specimen ids
    python -m cellfit.data synthetic /tmp/syn --alif 4 --mismatch 6
    python -m cellfit.data synthetic --panel test --out /tmp/test_panel   # the held-out test panel
    python -m cellfit.data demo                             # create the demo cell, print where

Arguments are checked before AllenSDK and torch are imported (:mod:`cellfit.cli`).
Data errors print one line and exit with status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from cellfit import cli

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m cellfit.data", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{fetch,panel,synthetic,demo}")

    p = sub.add_parser("fetch", help="download cells through AllenSDK into the cache (needs internet and "
                                     "pip install 'cellfit[allen]'), or create the demo cell (--specimen demo)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--panel", help="a named panel, e.g. paper146")
    group.add_argument("--specimen", "--specimens", type=cli.specimen_name, nargs="+", metavar="ID",
                       help="explicit specimen ids, or demo for the built-in synthetic cell")
    cli.add_common(p, "cache_dir")

    p = sub.add_parser("panel", help="print the specimen ids of a panel")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("panel", nargs="?", help="paper146, comma-separated specimen ids, or demo")
    group.add_argument("--specimen", "--specimens", type=cli.specimen_name, nargs="+", metavar="ID",
                       help="explicit specimen ids, or demo (printed as they resolve)")
    cli.add_common(p, "cache_dir")

    p = sub.add_parser("synthetic", help="write synthetic cells with known truth as an Allen cache")
    p.add_argument("out_dir", nargs="?", metavar="OUT", help="cache directory to write (created if missing)")
    cli.add_common(p, "out", help={"out": "the same, as an option"})
    p.add_argument("--panel", choices=("dev", "test"),
                   help="a held-out panel: development (tune fitting choices on it) or test (report only)")
    p.add_argument("--alif", type=cli.nonneg_int, default=0,
                   help="number of ALIF cells (ground truth inside the model family)")
    p.add_argument("--mismatch", type=cli.nonneg_int, default=0,
                   help="number of AdEx cells (outside the ALIF family)")
    p.add_argument("--rate", type=cli.positive_float, default=20_000.0, help="sampling rate of the NWB traces, Hz")
    cli.add_common(p, "seed", help={"seed": "seed of parameters and noise (default 0)"})

    p = sub.add_parser("demo", help="create the built-in demo cell and print its cache directory")
    cli.add_common(p, "cache_dir")
    return parser


def _validate(args: argparse.Namespace) -> None:
    if getattr(args, "cache_dir", None) is not None:
        cli.check_cache_dir(args.cache_dir)
    if getattr(args, "specimen", None):
        cli.check_specimens(args.specimen, "--specimen")
    if args.command == "synthetic":
        args.out = args.out or args.out_dir
        if not args.out:
            raise cli.UsageError("no output directory: give it as an argument or with --out DIR")
        if args.alif + args.mismatch == 0 and not args.panel:
            raise cli.UsageError("nothing to write: give --panel dev|test, or --alif and/or --mismatch a positive count")
        cli.check_out_dir(args.out, "OUT")


def _run(args: argparse.Namespace) -> int:
    # the heavy imports (AllenSDK, torch), deferred so that bad arguments answer first (cellfit.cli)
    from cellfit.data import allen
    from cellfit.data.demo import ensure_demo_cell
    from cellfit.data.panels import select_panel
    from cellfit.data.synthetic import (
        alif_panel,
        development_panel,
        mismatch_panel,
        test_panel,
        write_synthetic_cache,
    )

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    wants_demo = getattr(args, "specimen", None) == ["demo"] or getattr(args, "panel", None) == "demo"
    if args.command == "demo" or (args.command == "fetch" and wants_demo):
        cache, sid = ensure_demo_cell(args.cache_dir)
        print(f"demo cell {sid} in {cache}")
    elif args.command == "panel":
        ids = [ensure_demo_cell(args.cache_dir)[1]] if wants_demo else select_panel(args.panel or args.specimen,
                                                                                    args.cache_dir)
        for sid in ids:
            print(sid)
    elif args.command == "fetch":
        if not allen.allensdk_installed():
            raise cli.UsageError(f"fetch downloads from the Allen API, which needs AllenSDK: {allen.ALLEN_INSTALL}; "
                                 "an existing cache is read without it (see data/README.md)")
        cache = allen.default_cache_dir(args.cache_dir)
        ids = select_panel(args.panel, cache) if args.panel else select_panel(args.specimen)
        store = allen.open_allen_cache(cache, "allensdk")
        known = store.cells()
        unknown = [sid for sid in ids if sid not in known]
        if unknown:
            raise cli.UsageError(f"unknown specimen(s) {unknown}: not in the cell table of {cache}")
        total = 0
        for i, sid in enumerate(ids, 1):
            store.sweep_table(sid)
            size = store.fetch_nwb(sid).stat().st_size
            total += size
            print(f"[{i}/{len(ids)}] specimen {sid}: {size / 1e6:.0f} MB")
        print(f"{len(ids)} cells, {total / 1e9:.2f} GB of NWB files in {cache}")
    else:  # synthetic
        panels = {"dev": development_panel, "test": test_panel}
        cells = ((panels[args.panel](args.seed) if args.panel else []) + alif_panel(args.alif, args.seed)
                 + mismatch_panel(args.mismatch, args.seed))
        start = time.perf_counter()
        ids = write_synthetic_cache(args.out, cells, seed=args.seed, sampling_rate_hz=args.rate)
        print(f"wrote {len(ids)} synthetic cells to {args.out} in {time.perf_counter() - start:.0f} s: "
              f"{' '.join(map(str, ids))}")
    return 0


def main(argv=None) -> int:
    return cli.run_main(
        build_parser(), _run, argv, validate=_validate,
        interrupted="interrupted; rerun the same command to continue (cells already in the cache are not fetched again)",
    )


if __name__ == "__main__":
    sys.exit(main())
