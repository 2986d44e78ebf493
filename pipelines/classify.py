"""Train the Block paper's spiking classifier on SHD, N-MNIST or a synthetic task.

Examples::

    python -m pipelines.classify --dataset synthetic --epochs 5
    python -m pipelines.classify --dataset shd --data-dir data/shd --engine blocks --arp-ms 20
    python -m pipelines.classify --dataset nmnist --data-dir data/N-MNIST --engine standard --arp-ms 10
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

Usage and data errors print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

import torch

from cellfit.device import resolve_device
from cellfit.classify.datasets import DATASETS, DataError, load_datasets
from cellfit.classify.model import RECURRENT_INITS
from cellfit.classify.compare import engine_summary
from cellfit.classify.train import DATASET_DEFAULTS, DTYPES, ClassifierConfig, train_classifier
from cellfit.functional.alif import ENGINES
from cellfit.functional.surrogate import SURROGATES

__all__ = ["main", "build_parser"]



class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    def defaults(key):
        return ", ".join(f"{k} {DATASET_DEFAULTS[k][key]}" for k in DATASETS)

    p = _Parser(prog="python -m pipelines.classify", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=DATASETS, help="data set to train on")
    p.add_argument("--data-dir", default=None, help="directory with the data set's files (required for shd and nmnist)")
    p.add_argument("--engine", default="blocks", choices=sorted(ENGINES), help="ALIF engine: Block algorithm or step-by-step (default blocks)")
    p.add_argument("--arp-ms", type=float, default=None, help=f"absolute refractory period in ms, a multiple of DT (default: {defaults('arp_ms')})")
    p.add_argument("--dt-ms", type=float, default=None, help=f"time step in ms (default: {defaults('dt_ms')})")
    p.add_argument("--duration-ms", type=float, default=None, help=f"samples are cut at this time in ms (default: {defaults('duration_ms')})")
    p.add_argument("--epochs", type=int, default=None, help=f"training epochs (default: {defaults('epochs')})")
    p.add_argument("--batch-size", type=int, default=None, help="samples per batch (default 64; synthetic 32)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3; synthetic 5e-3)")
    p.add_argument("--milestones", type=int, nargs="*", default=None, help="epochs after which the learning rate is multiplied by --gamma (default: shd 15, otherwise none)")
    p.add_argument("--gamma", type=float, default=None, help="learning-rate decay factor at each milestone (default 0.1)")
    p.add_argument("--hidden", type=int, default=None, help="neurons per hidden ALIF layer (default 256)")
    p.add_argument("--layers", type=int, default=None, help="number of hidden ALIF layers (default 2)")
    p.add_argument("--surrogate", default=None, choices=sorted(SURROGATES), help="surrogate gradient (default multi_gaussian)")
    p.add_argument("--recurrent-init", default=None, choices=RECURRENT_INITS, help="initial recurrent weights (default identity, as the reference code)")
    p.add_argument("--input-gain", type=float, default=None, help="fixed gain g of the hidden layers' weights, W = g * W_raw (default 1/(1-exp(-DT/20 ms)), matching the reference code's dynamics)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train; auto picks CUDA when present (default auto)")
    p.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="floating-point type of the model (default float32)")
    p.add_argument("--seed", type=int, default=0, help="seeds torch, numpy and the data order (default 0)")
    p.add_argument("--out", default=None, help="output directory (default runs/classify/<dataset>-<engine>-arp<ARP>-seed<seed>)")
    p.add_argument("--max-samples", type=int, default=None, help="use at most this many (seeded random) samples of each split")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--merge-polarity", action="store_true", help="N-MNIST: one channel per pixel for both polarities (1156 inputs instead of 2312)")
    p.add_argument("--compare-engines", action="store_true", help="also run every batch through the other engine (same weights) and report both engines' times, spike counts and agreement per epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no per-epoch log lines")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the pipeline; returns the exit status (0 ok, 2 usage or data error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line already printed)
        return int(exc.code or 0)
    if not args.quiet and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    def fail(msg: str) -> int:
        print(f"{parser.prog}: error: {' '.join(str(msg).split())}", file=sys.stderr)
        return 2

    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        config = ClassifierConfig.for_dataset(
            args.dataset,
            engine=args.engine,
            arp_ms=args.arp_ms,
            dt_ms=args.dt_ms,
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
            num_workers=args.workers,
            max_samples=args.max_samples,
            compare_engines=args.compare_engines,
        )
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
        resolve_device(config.device)
    except (DataError, ValueError) as exc:
        return fail(exc)
    out = args.out or f"runs/classify/{config.dataset}-{config.engine}-arp{config.arp_ms:g}-seed{config.seed}"
    try:
        results = train_classifier(config, train_set, test_set, out_dir=out, progress=not args.no_progress)
    except DataError as exc:  # N-MNIST files are decoded lazily, so a corrupt one surfaces here
        return fail(exc)
    best = results.best
    print(
        f"best epoch {results.best_epoch}: test accuracy {100 * best['test_acc']:.2f}%, "
        f"train accuracy {100 * best['train_acc']:.2f}%, epoch time {best['epoch_time_s']:.2f} s; results in {results.out_dir}"
    )
    if config.compare_engines:
        print(engine_summary(results.history, config.engine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
