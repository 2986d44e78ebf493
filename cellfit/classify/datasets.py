r"""Spiking classification data sets as dense spike tensors: SHD, N-MNIST and a synthetic task.

Every data set here is a :class:`torch.utils.data.Dataset` whose items are
``(x, label)``: ``x`` a float32 tensor of shape ``(n_in, n_steps)`` holding the
number of input events of each channel in each time bin (almost always 0 or 1),
and ``label`` an ``int``. Binning convention, for a time step ``dt_ms``:

.. math:: \text{bin}(t) = \lfloor t / \Delta t \rfloor, \qquad
          \text{bin } k \text{ holds the events with } k\,\Delta t \le t < (k+1)\,\Delta t,

with ``t`` in ms from the start of the recording (no re-alignment to the first
event), and events at or after ``duration_ms`` dropped, so ``n_steps =
ceil(duration_ms / dt_ms)``.

Real formats (the data cannot be downloaded by this package; see ``data_help``):

- **SHD** (Spiking Heidelberg Digits; Cramer et al. 2020): ``shd_train.h5`` and
  ``shd_test.h5`` from https://zenkelab.org/datasets/ (served gzipped as
  ``shd_*.h5.gz``; a gzipped file found in the directory is decompressed next to
  it on first use). HDF5 layout: ``spikes/times`` (variable-length float arrays,
  seconds), ``spikes/units`` (variable-length integer arrays, channel 0-699,
  aligned with the times) and ``labels`` (integers 0-19); 700 input channels,
  20 classes (digits 0-9 spoken in English and German). An ``extra`` group
  (speakers, keys) may be present and is ignored.
- **N-MNIST** (Orchard et al. 2015): ``Train/<digit>/*.bin`` and
  ``Test/<digit>/*.bin`` from https://www.garrickorchard.com/datasets/n-mnist
  (``Train.zip`` / ``Test.zip``, unzipped). Each file is a stream of 40-bit
  (5-byte, big-endian) events: bits 39-32 X address, bits 31-24 Y address
  (pixels, 0-33), bit 23 polarity (1 = ON), bits 22-0 timestamp in microseconds.
  An event with Y = 240 is a timestamp-overflow marker of the ATIS format (adds
  :math:`2^{23}` µs to all later events; N-MNIST files contain none). Input
  channel of an event: ``x + 34 * y + 34 * 34 * polarity`` (2312 channels), or
  ``x + 34 * y`` (1156) with ``merge_polarity=True`` (as the Block reference code).
- **synthetic**: :class:`SyntheticSpikes`, class-specific Poisson rate patterns
  over a few channels and time segments, generated in memory.

Missing or unreadable files raise :class:`DataError` with a one-line message
that names the expected files and where to download them.

The module is a little over 500 lines: three readers of one concern (events binned by
the one convention above into one :class:`SpikeDataset` type), kept together so that the
convention has a single home.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import pathlib
import shutil
import uuid
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

__all__ = [
    "DataError",
    "SpikeDataset",
    "SHD",
    "NMNIST",
    "SyntheticSpikes",
    "DATASETS",
    "load_datasets",
    "subsample",
    "dataset_info",
    "bin_events",
    "decode_nmnist",
    "encode_nmnist",
    "SHD_URL",
    "NMNIST_URL",
    "NMNIST_SIZE",
]

logger = logging.getLogger(__name__)

SHD_URL = "https://zenkelab.org/datasets/"
NMNIST_URL = "https://www.garrickorchard.com/datasets/n-mnist"
NMNIST_SIZE = 34
"""N-MNIST sensor width and height in pixels."""
_NMNIST_OVERFLOW_Y = 240
_NMNIST_TS_BITS = 23


class DataError(RuntimeError):
    """A data set's files are missing, incomplete or corrupt (the message is one line)."""


def n_bins(duration_ms: float, dt_ms: float) -> int:
    """Number of time bins ``ceil(duration_ms / dt_ms)`` (tolerant to float rounding)."""
    if not (dt_ms > 0 and math.isfinite(dt_ms)):
        raise ValueError(f"dt_ms must be a positive number, got {dt_ms!r}")
    if not (duration_ms > 0 and math.isfinite(duration_ms)):
        raise ValueError(f"duration_ms must be a positive number, got {duration_ms!r}")
    return max(1, math.ceil(duration_ms / dt_ms - 1e-9))


def bin_events(channels: np.ndarray, times_ms: np.ndarray, n_in: int, dt_ms: float, n_steps: int) -> torch.Tensor:
    """Dense ``(n_in, n_steps)`` float32 event counts from event channels and times (ms).

    Event ``i`` is counted in ``[channels[i], floor(times_ms[i] / dt_ms)]``; events
    before 0 or at/after ``n_steps * dt_ms`` are dropped. Channels must lie in
    ``[0, n_in)`` (callers validate).
    """
    channels = np.asarray(channels, dtype=np.int64)
    bins = np.floor(np.asarray(times_ms, dtype=np.float64) / dt_ms).astype(np.int64)
    keep = (bins >= 0) & (bins < n_steps)
    flat = channels[keep] * n_steps + bins[keep]
    counts = np.bincount(flat, minlength=n_in * n_steps).astype(np.float32)
    return torch.from_numpy(counts.reshape(n_in, n_steps))


class SpikeDataset(Dataset):
    """Common interface: ``n_in``, ``n_classes``, ``n_steps``, ``dt_ms``, ``labels`` and ``(x, label)`` items."""

    name: str = "spikes"
    n_in: int
    n_classes: int
    dt_ms: float
    duration_ms: float

    @property
    def n_steps(self) -> int:
        """Number of time bins T of every sample."""
        return n_bins(self.duration_ms, self.dt_ms)

    @property
    def labels(self) -> np.ndarray:
        """(n_samples,) int64 class labels."""
        return self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def describe(self) -> dict:
        """Shape facts for config files: name, n_in, n_classes, n_steps, dt_ms, duration_ms, n_samples."""
        return {
            "name": self.name,
            "n_in": self.n_in,
            "n_classes": self.n_classes,
            "n_steps": self.n_steps,
            "dt_ms": self.dt_ms,
            "duration_ms": self.duration_ms,
            "n_samples": len(self),
        }


# --------------------------------------------------------------------------------------
# SHD
# --------------------------------------------------------------------------------------

_SHD_HINT = (
    f"it must hold shd_train.h5 and shd_test.h5: download shd_train.h5.gz and shd_test.h5.gz from {SHD_URL} "
    "(the .gz files are decompressed automatically)"
)


def _require_dir(root: pathlib.Path, what: str, hint: str) -> None:
    if not root.exists():
        raise DataError(f"{what} data directory {root} does not exist; {hint}")
    if not root.is_dir():
        raise DataError(f"{what} data directory {root} is not a directory; {hint}")


def _gunzip_atomic(src: pathlib.Path, dst: pathlib.Path) -> None:
    tmp = str(dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp"))
    try:
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, length=1 << 20)
        os.replace(tmp, dst)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"could not decompress {src} ({exc}); re-download it from {SHD_URL}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _shd_file(root: pathlib.Path, train: bool) -> pathlib.Path:
    name = "shd_train.h5" if train else "shd_test.h5"
    path = root / name
    if path.is_file():
        return path
    gz = root / (name + ".gz")
    if gz.is_file():
        logger.info("decompressing %s -> %s", gz, path)
        _gunzip_atomic(gz, path)
        return path
    raise DataError(f"SHD file {path} not found; {_SHD_HINT}")


class SHD(SpikeDataset):
    """Spiking Heidelberg Digits from its HDF5 file, binned at ``dt_ms``.

    Args:
        root: directory holding ``shd_train.h5`` / ``shd_test.h5`` (or their ``.gz``).
        train: the training split (else the test split).
        dt_ms: bin width in ms (paper: 2 ms).
        duration_ms: samples are cut at this time (default 1200 ms, as the Block
            reference code; a few SHD samples run to about 1.4 s).

    All events are read into memory once (as stored: float times, integer units);
    ``__getitem__`` bins one sample: ``x`` (700, n_steps) float32.
    """

    name = "shd"
    N_IN = 700
    N_CLASSES = 20

    def __init__(self, root, train: bool = True, dt_ms: float = 2.0, duration_ms: float = 1200.0):
        import h5py

        self.root = pathlib.Path(root)
        self.train = bool(train)
        self.dt_ms, self.duration_ms = float(dt_ms), float(duration_ms)
        self.n_in, self.n_classes = self.N_IN, self.N_CLASSES
        n_bins(self.duration_ms, self.dt_ms)  # validates
        _require_dir(self.root, "SHD", _SHD_HINT)
        path = _shd_file(self.root, self.train)
        self.path = path
        try:
            with h5py.File(path, "r") as f:
                missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
                if missing:
                    raise DataError(
                        f"{path} is not an SHD file: missing dataset(s) {', '.join(missing)}; re-download it from {SHD_URL}"
                    )
                times = f["spikes/times"][...]
                units = f["spikes/units"][...]
                labels = np.asarray(f["labels"][...])
        except DataError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            msg = " ".join(str(exc).split())
            raise DataError(f"cannot read SHD file {path} (corrupt or incomplete download?): {msg}; re-download it from {SHD_URL}") from None
        self._check(path, times, units, labels)
        self._times = [np.asarray(t) for t in times]
        self._units = [np.asarray(u) for u in units]
        self._labels = labels.astype(np.int64)

    def _check(self, path, times, units, labels) -> None:
        bad = f"; re-download it from {SHD_URL}"
        if labels.ndim != 1 or not (len(times) == len(units) == len(labels)):
            raise DataError(
                f"corrupt SHD file {path}: spikes/times ({len(times)}), spikes/units ({len(units)}) "
                f"and labels ({labels.shape}) must be 1-D of equal length{bad}"
            )
        numeric = np.issubdtype(labels.dtype, np.number)
        if len(labels) and (
            not numeric or labels.min() < 0 or labels.max() >= self.N_CLASSES or not np.all(labels == np.round(labels))
        ):
            raise DataError(f"corrupt SHD file {path}: labels must be integers 0-{self.N_CLASSES - 1}{bad}")
        for i, (t, u) in enumerate(zip(times, units)):
            t, u = np.asarray(t), np.asarray(u)
            if t.shape != u.shape or t.ndim != 1:
                raise DataError(f"corrupt SHD file {path}: sample {i} has {t.size} times but {u.size} units{bad}")
            if u.size and (u.min() < 0 or u.max() >= self.N_IN):
                raise DataError(f"corrupt SHD file {path}: sample {i} has units outside 0-{self.N_IN - 1}{bad}")

    def __getitem__(self, index: int):
        t_ms = self._times[index].astype(np.float64) * 1000.0
        x = bin_events(self._units[index], t_ms, self.n_in, self.dt_ms, self.n_steps)
        return x, int(self._labels[index])


# --------------------------------------------------------------------------------------
# N-MNIST
# --------------------------------------------------------------------------------------

_NMNIST_HINT = (
    f"it must hold Train/<digit>/*.bin and Test/<digit>/*.bin: download Train.zip and Test.zip from {NMNIST_URL} "
    "and unzip them there"
)
_NMNIST_REDOWNLOAD = f"re-download Train.zip and Test.zip from {NMNIST_URL}"


def decode_nmnist(raw: bytes | np.ndarray) -> dict[str, np.ndarray]:
    """Decode an N-MNIST ``.bin`` byte stream into event arrays.

    Returns a dict of equal-length arrays: ``x``, ``y`` (int64 pixels), ``p``
    (int64 polarity 0/1) and ``t_us`` (int64 µs, overflow markers applied and
    removed). Raises :class:`DataError` if the length is not a multiple of 5 bytes.
    """
    buf = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray, memoryview)) else np.asarray(raw, dtype=np.uint8)
    if buf.size % 5:
        raise DataError(f"N-MNIST event stream of {buf.size} bytes is not a whole number of 5-byte events")
    ev = buf.reshape(-1, 5).astype(np.int64)
    x, y = ev[:, 0], ev[:, 1]
    p = ev[:, 2] >> 7
    t = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    overflow = y == _NMNIST_OVERFLOW_Y
    if overflow.any():
        t = t + (np.cumsum(overflow) << _NMNIST_TS_BITS)
        keep = ~overflow
        x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    return {"x": x, "y": y, "p": p, "t_us": t}


def encode_nmnist(x, y, p, t_us) -> bytes:
    """Pack events into the N-MNIST 40-bit format (inverse of :func:`decode_nmnist` without overflow markers).

    ``x``, ``y`` in 0-255, ``p`` in {0, 1}, ``t_us`` in 0 to 2^23 - 1.
    """
    x, y, p, t = (np.asarray(a, dtype=np.int64).ravel() for a in (x, y, p, t_us))
    if not (x.shape == y.shape == p.shape == t.shape):
        raise ValueError("x, y, p and t_us must have the same length")
    if ((x < 0) | (x > 255) | (y < 0) | (y > 255)).any():
        raise ValueError("x and y must be in 0-255")
    if ((p != 0) & (p != 1)).any():
        raise ValueError("p must be 0 or 1")
    if ((t < 0) | (t >= 1 << _NMNIST_TS_BITS)).any():
        raise ValueError(f"t_us must be in 0-{(1 << _NMNIST_TS_BITS) - 1}")
    out = np.empty((x.size, 5), dtype=np.uint8)
    out[:, 0] = x
    out[:, 1] = y
    out[:, 2] = (p << 7) | (t >> 16)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    return out.tobytes()


class NMNIST(SpikeDataset):
    """Neuromorphic MNIST from its binary event files, binned at ``dt_ms``.

    Args:
        root: directory holding ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``.
        train: the training split (else the test split).
        dt_ms: bin width in ms (paper: 1 ms).
        duration_ms: samples are cut at this time (default 300 ms: each sample is
            three ~100 ms saccades; the few events after 300 ms are dropped).
        merge_polarity: map ON and OFF events to the same channel (1156 inputs).

    Files are listed (and their sizes checked) at construction and decoded in
    ``__getitem__``: ``x`` (2312 or 1156, n_steps) float32.
    """

    name = "nmnist"
    N_CLASSES = 10

    def __init__(
        self,
        root,
        train: bool = True,
        dt_ms: float = 1.0,
        duration_ms: float = 300.0,
        merge_polarity: bool = False,
    ):
        self.root = pathlib.Path(root)
        self.train = bool(train)
        self.dt_ms, self.duration_ms = float(dt_ms), float(duration_ms)
        n_bins(self.duration_ms, self.dt_ms)
        self.merge_polarity = bool(merge_polarity)
        self.n_in = NMNIST_SIZE * NMNIST_SIZE * (1 if self.merge_polarity else 2)
        self.n_classes = self.N_CLASSES
        _require_dir(self.root, "N-MNIST", _NMNIST_HINT)
        split = self.root / ("Train" if self.train else "Test")
        if not split.is_dir():
            raise DataError(f"N-MNIST folder {split} not found; {_NMNIST_HINT}")
        files, labels = [], []
        for digit in range(10):
            d = split / str(digit)
            if d.is_dir():
                found = sorted(d.glob("*.bin"))
                files += found
                labels += [digit] * len(found)
        if not files:
            raise DataError(f"no N-MNIST .bin files in {split}/<digit>/; {_NMNIST_HINT}")
        for f in files:
            size = f.stat().st_size
            if size % 5:
                raise DataError(f"corrupt N-MNIST file {f}: {size} bytes is not a whole number of 5-byte events; {_NMNIST_REDOWNLOAD}")
        self.files = files
        self._labels = np.asarray(labels, dtype=np.int64)

    def read_events(self, index: int) -> dict[str, np.ndarray]:
        """Decoded events of sample ``index`` (see :func:`decode_nmnist`), coordinates checked."""
        path = self.files[index]
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read N-MNIST file {path}: {exc.strerror or exc}") from None
        try:
            ev = decode_nmnist(raw)
        except DataError as exc:
            raise DataError(f"corrupt N-MNIST file {path}: {exc}; {_NMNIST_REDOWNLOAD}") from None
        if ev["x"].size and (ev["x"].max() >= NMNIST_SIZE or ev["y"].max() >= NMNIST_SIZE):
            raise DataError(
                f"corrupt N-MNIST file {path}: pixel addresses outside 0-{NMNIST_SIZE - 1}; {_NMNIST_REDOWNLOAD}"
            )
        return ev

    def channels(self, ev: dict[str, np.ndarray]) -> np.ndarray:
        """Input channel of each event: ``x + 34 y (+ 34*34 p unless merge_polarity)``."""
        ch = ev["x"] + NMNIST_SIZE * ev["y"]
        if not self.merge_polarity:
            ch = ch + NMNIST_SIZE * NMNIST_SIZE * ev["p"]
        return ch

    def __getitem__(self, index: int):
        ev = self.read_events(index)
        x = bin_events(self.channels(ev), ev["t_us"] / 1000.0, self.n_in, self.dt_ms, self.n_steps)
        return x, int(self._labels[index])


# --------------------------------------------------------------------------------------
# Synthetic task
# --------------------------------------------------------------------------------------


class SyntheticSpikes(SpikeDataset):
    """A small learnable spike-pattern task, generated in memory (for tests and demos).

    Each class has a template: time is cut into ``n_segments`` equal segments, and
    in each segment every channel fires as a Poisson process at ``high_hz`` with
    probability ``p_active`` or at ``low_hz`` otherwise. Classes come in pairs whose
    templates are the same segments in reverse order (when ``mirror_pairs``), so
    half of the distinctions need spike *timing*, not just per-channel counts.
    Samples draw Bernoulli spikes (rate x DT per bin) from their class template.

    The templates depend only on ``task_seed``; the samples on ``task_seed`` and
    ``split`` ("train" or "test"), so the two splits share the task but no samples.
    """

    name = "synthetic"

    def __init__(
        self,
        n_samples: int = 512,
        split: str = "train",
        *,
        n_in: int = 40,
        n_classes: int = 4,
        dt_ms: float = 1.0,
        duration_ms: float = 100.0,
        n_segments: int = 4,
        p_active: float = 0.3,
        high_hz: float = 200.0,
        low_hz: float = 5.0,
        mirror_pairs: bool = True,
        task_seed: int = 0,
    ):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if n_samples < 1 or n_in < 1 or n_classes < 2 or n_segments < 1:
            raise ValueError("need n_samples >= 1, n_in >= 1, n_classes >= 2 and n_segments >= 1")
        self.n_in, self.n_classes = int(n_in), int(n_classes)
        self.dt_ms, self.duration_ms = float(dt_ms), float(duration_ms)
        self.split, self.task_seed = split, int(task_seed)
        T = self.n_steps
        if high_hz * dt_ms / 1000.0 > 1.0:
            raise ValueError(f"high_hz={high_hz} is more than one spike per {dt_ms} ms bin")
        rng = np.random.default_rng([self.task_seed, 0])
        seg_rates = np.where(rng.random((n_classes, n_in, n_segments)) < p_active, high_hz, low_hz)
        if mirror_pairs:
            for c in range(1, n_classes, 2):
                seg_rates[c] = seg_rates[c - 1, :, ::-1]
        seg_of_bin = np.minimum((np.arange(T) * n_segments) // T, n_segments - 1)
        self.templates = seg_rates[:, :, seg_of_bin]  # (classes, n_in, T) in Hz
        srng = np.random.default_rng([self.task_seed, 1 if split == "train" else 2])
        self._labels = srng.integers(0, n_classes, size=n_samples).astype(np.int64)
        prob = self.templates[self._labels] * (self.dt_ms / 1000.0)
        self._x = torch.from_numpy((srng.random(prob.shape) < prob).astype(np.float32))

    def __getitem__(self, index: int):
        return self._x[index], int(self._labels[index])


# --------------------------------------------------------------------------------------
# Entry point used by the pipeline
# --------------------------------------------------------------------------------------

DATASETS = ("shd", "nmnist", "synthetic")


def subsample(dataset: SpikeDataset, max_samples: Optional[int], seed: int = 0):
    """A seeded random subset of at most ``max_samples`` items (in index order), or ``dataset`` itself.

    Random rather than the first N, because files may be sorted by label.
    """
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    if max_samples < 1:
        raise ValueError(f"max_samples must be >= 1, got {max_samples}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:max_samples])
    return Subset(dataset, idx.tolist())


def dataset_info(dataset) -> dict:
    """:meth:`SpikeDataset.describe` of a data set or of a (nested) ``Subset`` of one, with its own length."""
    base = dataset
    while isinstance(base, Subset):
        base = base.dataset
    if not isinstance(base, SpikeDataset):
        raise TypeError(f"expected a SpikeDataset (or a Subset of one), got {type(base).__name__}")
    return {**base.describe(), "n_samples": len(dataset)}


def load_datasets(
    name: str,
    data_dir=None,
    *,
    dt_ms: float,
    duration_ms: float,
    max_samples: Optional[int] = None,
    seed: int = 0,
    synthetic_sizes: Sequence[int] = (512, 256),
    **kwargs,
):
    """``(train_set, test_set)`` for ``name`` in :data:`DATASETS`.

    ``data_dir`` is required for ``"shd"`` and ``"nmnist"`` (raises :class:`DataError`
    if missing). ``max_samples`` caps each split with :func:`subsample`. Extra
    keyword arguments go to the data set class (e.g. ``merge_polarity``).
    """
    if name == "synthetic":
        n_train, n_test = synthetic_sizes
        if max_samples is not None:
            n_train, n_test = min(n_train, max_samples), min(n_test, max_samples)
        kw = dict(dt_ms=dt_ms, duration_ms=duration_ms, **kwargs)
        return SyntheticSpikes(n_train, "train", **kw), SyntheticSpikes(n_test, "test", **kw)
    if name not in ("shd", "nmnist"):
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}")
    if data_dir is None:
        hint = _SHD_HINT if name == "shd" else _NMNIST_HINT
        raise DataError(f"--data-dir is required for {name}; {hint}")
    cls = SHD if name == "shd" else NMNIST
    train = cls(data_dir, train=True, dt_ms=dt_ms, duration_ms=duration_ms, **kwargs)
    test = cls(data_dir, train=False, dt_ms=dt_ms, duration_ms=duration_ms, **kwargs)
    return subsample(train, max_samples, seed), subsample(test, max_samples, seed + 1)
