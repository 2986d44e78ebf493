"""Spiking classification on the ALIF engines (Block paper section 4.2): N-MNIST, SHD and a synthetic task.

- :mod:`cellfit.classify.datasets`: the real file formats (SHD HDF5, N-MNIST binary
  events) and a synthetic task, as data sets of dense ``(n_in, T)`` spike tensors;
- :mod:`cellfit.classify.model`: :class:`SpikingClassifier`, recurrent ALIF layers and
  an integrator readout whose summed potential scores the classes;
- :mod:`cellfit.classify.train`: :func:`train_classifier`, the training loop that
  ``python -m pipelines.classify`` calls.

Example (a notebook)::

    from cellfit.classify import ClassifierConfig, load_datasets, train_classifier
    cfg = ClassifierConfig.for_dataset("shd", engine="blocks", arp_ms=20.0)
    train, test = load_datasets("shd", "data/shd", dt_ms=cfg.dt_ms, duration_ms=cfg.duration_ms)
    res = train_classifier(cfg, train, test, out_dir="runs/classify/shd-blocks")
    res.best_test_acc, res.history[-1]["epoch_time_s"]
"""

from cellfit.classify.datasets import (
    DATASETS,
    NMNIST,
    SHD,
    DataError,
    SyntheticSpikes,
    decode_nmnist,
    encode_nmnist,
    load_datasets,
)
from cellfit.classify.model import ClassifierOutput, SpikingClassifier
from cellfit.classify.train import (
    DATASET_DEFAULTS,
    ClassifierConfig,
    ClassifierResults,
    build_model,
    evaluate,
    train_classifier,
)

__all__ = [
    "DATASETS",
    "DATASET_DEFAULTS",
    "NMNIST",
    "SHD",
    "DataError",
    "SyntheticSpikes",
    "decode_nmnist",
    "encode_nmnist",
    "load_datasets",
    "ClassifierOutput",
    "SpikingClassifier",
    "ClassifierConfig",
    "ClassifierResults",
    "build_model",
    "evaluate",
    "train_classifier",
]
