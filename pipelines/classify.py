"""Train the Block paper's spiking classifier on SHD, N-MNIST or a synthetic task.

Examples::

    python -m pipelines.classify --dataset synthetic --epochs 5
    python -m pipelines.classify --dataset shd --data-dir data/shd --engine blocks --arp 20
    python -m pipelines.classify --dataset nmnist --data-dir data/N-MNIST --engine standard --arp 10
    python -m pipelines.classify --dataset synthetic --compare-engines

Data (not downloaded by this command): SHD needs ``shd_train.h5`` and
``shd_test.h5`` (or the ``.gz`` files from https://zenkelab.org/datasets/) in
``--data-dir``; N-MNIST needs ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``
(``Train.zip``/``Test.zip`` from https://www.garrickorchard.com/datasets/n-mnist,
unzipped). Outputs go to ``--out`` (default
``runs/classify/<dataset>-<engine>-arp<ARP>-seed<seed>``): ``config.json``,
``metrics.csv``, ``best_model.pt`` and ``curves.png``. ``--compare-engines`` also runs
every batch through the other engine from the same weights and adds both engines'
forward + backward times, spike counts and their agreement to each epoch's row
(:mod:`cellfit.classify.compare`).

Arguments and the output folder are checked before torch is imported (:mod:`cellfit.cli`).
Usage and data errors print one line on stderr and exit with status 2; Ctrl-C exits
with 130. ``--dt-ms``, ``--arp-ms`` and ``--workers`` are deprecated spellings of
``--dt``, ``--arp`` and ``--loader-workers``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from cellfit import cli

__all__ = ["main", "build_parser"]


def _defaults_table() -> str:
    """The per-data-set defaults, for --help (imports the classifier, so only when help is printed)."""
    from cellfit.classify.train import DATASET_DEFAULTS

    names = {"dt_ms": "--dt", "arp_ms": "--arp", "duration_ms": "--duration-ms", "epochs": "--epochs",
             "milestones": "--milestones", "lr": "--lr", "batch_size": "--batch-size"}
    lines = ["defaults per data set:"]
    for dataset, values in DATASET_DEFAULTS.items():
        shown = ", ".join(f"{names.get(k, k)} {' '.join(map(str, v)) if isinstance(v, tuple) else v}"
                          for k, v in values.items() if not (isinstance(v, tuple) and not v))
        lines.append(f"  {dataset}: {shown}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    per_set = "default: per data set, see below"
    p = cli.ArgumentParser(prog="python -m pipelines.classify", description=__doc__.split("\n\n")[0],
                           epilog_factory=_defaults_table)
    p.add_argument("--dataset", required=True, metavar="NAME",
                   choices=cli.LazyChoices("cellfit.classify.datasets", "DATASETS"),
                   help="data set to train on: %(choices)s")
    p.add_argument("--data-dir", default=None, help="directory with the data set's files (required for shd and nmnist)")
    p.add_argument("--duration-ms", type=cli.positive_float, default=None, metavar="MS", help=f"samples are cut at this time in ms ({per_set})")
    p.add_argument("--batch-size", type=cli.positive_int, default=None, help=f"samples per batch ({per_set})")
    p.add_argument("--lr", type=cli.positive_float, default=None, help=f"Adam learning rate ({per_set})")
    p.add_argument("--milestones", type=cli.positive_int, nargs="*", default=None, help=f"epochs after which the learning rate is multiplied by --gamma ({per_set})")
    p.add_argument("--gamma", type=cli.positive_float, default=None, help="learning-rate decay factor at each milestone (default 0.1)")
    p.add_argument("--hidden", type=cli.positive_int, default=None, help="neurons per hidden ALIF layer (default 256)")
    p.add_argument("--layers", type=cli.positive_int, default=None, help="number of hidden ALIF layers (default 2)")
    p.add_argument("--surrogate", default=None, metavar="NAME", choices=cli.LazyChoices("cellfit.functional.surrogate", "SURROGATES", sort=True),
                   help="surrogate gradient: %(choices)s (default multi_gaussian)")
    p.add_argument("--recurrent-init", default=None, metavar="NAME", choices=cli.LazyChoices("cellfit.classify.model", "RECURRENT_INITS"),
                   help="initial recurrent weights: %(choices)s (default identity, as the reference code)")
    p.add_argument("--input-gain", type=cli.positive_float, default=None, help="fixed gain g of the hidden layers' weights, W = g * W_raw (default 1/(1-exp(-DT/20 ms)), matching the reference code's dynamics)")
    p.add_argument("--dtype", default=None, metavar="NAME", choices=cli.LazyChoices("cellfit.classify.train", "DTYPES", sort=True),
                   help="floating-point type of the model: %(choices)s (default float32)")
    p.add_argument("--max-samples", type=cli.positive_int, default=None, help="use at most this many (seeded random) samples of each split")
    p.add_argument("--loader-workers", type=cli.nonneg_int, default=None, metavar="N", help="DataLoader worker processes (default 0)")
    p.add_argument("--threads", type=cli.positive_int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--merge-polarity", action="store_true", help="N-MNIST: one channel per pixel for both polarities (1156 inputs instead of 2312)")
    p.add_argument("--compare-engines", action="store_true", help="also run every batch through the other engine (same weights) and report both engines' times, spike counts and agreement per epoch")
    p.add_argument("--quiet", action="store_true", help="no per-epoch log lines")
    cli.add_common(p, "engine", "dt", "arp", "epochs", "device", "seed", "out", "no_progress",
                   defaults={"dt": None, "arp": None, "epochs": None, "out": None},
                   help={"dt": f"time step in ms ({per_set})",
                         "arp": f"absolute refractory period in ms, a whole multiple of --dt ({per_set})",
                         "epochs": f"training epochs ({per_set})"},
                   default_text={"out": "runs/classify/<dataset>-<engine>-arp<ARP>-seed<seed>"})
    cli.add_deprecated_alias(p, "--dt-ms", "--dt", "dt", type=cli.positive_float)
    cli.add_deprecated_alias(p, "--arp-ms", "--arp", "arp", type=cli.positive_float)
    cli.add_deprecated_alias(p, "--workers", "--loader-workers (DataLoader processes)", "loader_workers", type=cli.nonneg_int)
    return p  # fmt: skip


def _validate(args: argparse.Namespace) -> None:
    if args.dt is not None and args.arp is not None:  # one of them missing: the data set's default, checked later
        cli.check_dt_arp(args.dt, args.arp, dt_range=None)
    cli.check_out_dir(args.out or "runs/classify")


def _run(args: argparse.Namespace) -> int:
    # the heavy imports (torch), deferred so that bad arguments answer first (cellfit.cli)
    import torch

    from cellfit.classify.compare import engine_summary
    from cellfit.classify.datasets import DataError, load_datasets
    from cellfit.classify.train import ClassifierConfig, train_classifier
    from cellfit.device import resolve_device

    if not args.quiet and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        config = ClassifierConfig.for_dataset(
            args.dataset,
            engine=args.engine,
            arp_ms=args.arp,
            dt_ms=args.dt,
            duration_ms=args.duration_ms,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            milestones=args.milestones,
            gamma=args.gamma,
            hidden=args.hidden,
            n_layers=args.layers,
            surrogate=args.surrogate,
            recurrent_init=args.recurrent_init,
            input_gain=args.input_gain,
            device=args.device,
            dtype=args.dtype,
            seed=args.seed,
            num_workers=args.loader_workers,
            max_samples=args.max_samples,
            compare_engines=args.compare_engines,
        )
        resolve_device(config.device)
        extra = {"merge_polarity": True} if args.merge_polarity and args.dataset == "nmnist" else {}
        train_set, test_set = load_datasets(
            args.dataset,
            args.data_dir,
            dt_ms=config.dt_ms,
            duration_ms=config.duration_ms,
            max_samples=config.max_samples,
            seed=config.seed,
            **extra,
        )
        out = args.out or f"runs/classify/{config.dataset}-{config.engine}-arp{config.arp_ms:g}-seed{config.seed}"
        results = train_classifier(config, train_set, test_set, out_dir=out, progress=not args.no_progress)
    except DataError as exc:  # N-MNIST files are decoded lazily, so a corrupt one may surface during training
        raise cli.UsageError(str(exc)) from exc
    best = results.best
    print(
        f"best epoch {results.best_epoch}: test accuracy {100 * best['test_acc']:.2f}%, "
        f"train accuracy {100 * best['train_acc']:.2f}%, epoch time {best['epoch_time_s']:.2f} s; results in {results.out_dir}"
    )
    if config.compare_engines:
        print(engine_summary(results.history, config.engine))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the pipeline; returns the exit status (0 ok, 2 usage or data error, 130 interrupted)."""
    return cli.run_main(
        build_parser(), _run, argv, validate=_validate,
        interrupted="interrupted; training does not resume, rerun the command to start again "
                    "(metrics.csv and best_model.pt hold the epochs finished so far)",
    )


if __name__ == "__main__":
    sys.exit(main())
