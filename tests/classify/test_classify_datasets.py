"""Loaders of cellfit.classify.datasets on tiny files written in the real SHD and N-MNIST formats.

Every expected tensor here is written out by hand from the events, independently
of the loader's binning code: bin k at DT holds the events with k*DT <= t < (k+1)*DT.
"""

from __future__ import annotations

import gzip

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cellfit.classify.datasets import (
    NMNIST,
    SHD,
    DataError,
    SyntheticSpikes,
    dataset_info,
    decode_nmnist,
    encode_nmnist,
    load_datasets,
    subsample,
)


def write_shd(path, samples, labels, times_dtype=np.float64, with_extra=True):
    """An SHD-format HDF5 file: vlen spikes/times (s), vlen spikes/units, labels (and an extra group)."""
    with h5py.File(path, "w") as f:
        n = len(samples)
        times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.dtype(times_dtype)))
        units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.dtype("uint16")))
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, dtype=times_dtype)
            units[i] = np.asarray(u, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        if with_extra:
            f.create_dataset("extra/speaker", data=np.arange(n, dtype=np.uint8))


def pack_event(x: int, y: int, p: int, t_us: int) -> bytes:
    """One N-MNIST event as 40 bits, big-endian: X (39-32), Y (31-24), polarity (23), timestamp (22-0)."""
    return ((x << 32) | (y << 24) | (p << 23) | t_us).to_bytes(5, "big")


# --------------------------------------------------------------------------------------
# SHD
# --------------------------------------------------------------------------------------

SHD_SAMPLES = [
    # (times in s, units): at DT 2 ms and 20 ms (10 bins):
    # 0.5 ms and 1.1 ms on unit 3 -> bin 0 (count 2); 7.1 ms on unit 699 -> bin 3;
    # 19.0 ms on unit 10 -> bin 9; 25 ms on unit 5 -> after the 20 ms cut, dropped.
    ([0.0005, 0.0011, 0.0071, 0.0190, 0.0250], [3, 3, 699, 10, 5]),
    ([], []),  # an empty recording is valid
    ([0.0030], [0]),  # 3.0 ms -> bin 1
]


def test_shd_bins_hand_checked_events(tmp_path):
    write_shd(tmp_path / "shd_train.h5", SHD_SAMPLES, [7, 0, 19])
    ds = SHD(tmp_path, train=True, dt_ms=2.0, duration_ms=20.0)
    assert (len(ds), ds.n_in, ds.n_classes, ds.n_steps) == (3, 700, 20, 10)
    x, label = ds[0]
    expected = torch.zeros(700, 10)
    expected[3, 0] = 2
    expected[699, 3] = 1
    expected[10, 9] = 1
    assert label == 7 and x.dtype == torch.float32
    assert torch.equal(x, expected)
    x1, l1 = ds[1]
    assert l1 == 0 and x1.sum() == 0 and x1.shape == (700, 10)
    x2, l2 = ds[2]
    assert l2 == 19 and x2[0, 1] == 1 and x2.sum() == 1
    assert ds.labels.tolist() == [7, 0, 19]


def test_shd_float16_times_and_other_dt(tmp_path):
    # The published files store times as small floats; mid-bin times are unambiguous in float16.
    write_shd(tmp_path / "shd_test.h5", [([0.0015, 0.0105], [1, 2])], [4], times_dtype=np.float16, with_extra=False)
    ds = SHD(tmp_path, train=False, dt_ms=1.0, duration_ms=12.0)
    x, label = ds[0]
    assert ds.n_steps == 12 and label == 4
    assert x[1, 1] == 1 and x[2, 10] == 1 and x.sum() == 2


def test_shd_gzipped_download_is_decompressed(tmp_path):
    src = tmp_path / "plain.h5"
    write_shd(src, SHD_SAMPLES, [1, 2, 3])
    with open(src, "rb") as fin, gzip.open(tmp_path / "shd_train.h5.gz", "wb") as fout:
        fout.write(fin.read())
    src.unlink()
    ds = SHD(tmp_path, train=True, dt_ms=2.0, duration_ms=20.0)
    assert (tmp_path / "shd_train.h5").is_file()
    assert ds[0][0][3, 0] == 2
    assert not list(tmp_path.glob(".*.tmp"))


def test_shd_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="does not exist.*zenkelab"):
        SHD(tmp_path / "nowhere")
    with pytest.raises(DataError, match="shd_test.h5 not found.*shd_train.h5 and shd_test.h5"):
        SHD(tmp_path, train=False)
    (tmp_path / "shd_train.h5").write_bytes(b"this is not an HDF5 file")
    with pytest.raises(DataError, match="cannot read SHD file") as exc:
        SHD(tmp_path)
    assert "\n" not in str(exc.value)
    with h5py.File(tmp_path / "shd_train.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros(2, dtype=np.uint8))
    with pytest.raises(DataError, match="missing dataset"):
        SHD(tmp_path)
    write_shd(tmp_path / "shd_train.h5", [([0.001], [700])], [0])
    with pytest.raises(DataError, match="units outside"):
        SHD(tmp_path)
    write_shd(tmp_path / "shd_train.h5", [([0.001], [1])], [20])
    with pytest.raises(DataError, match="labels"):
        SHD(tmp_path)
    (tmp_path / "shd_train.h5").unlink()
    (tmp_path / "shd_train.h5.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="could not decompress"):
        SHD(tmp_path)


# --------------------------------------------------------------------------------------
# N-MNIST
# --------------------------------------------------------------------------------------


def test_nmnist_decode_hand_packed_bytes():
    raw = bytes([5, 7, 0x80, 0x04, 0xD2])  # x 5, y 7, ON, t = 0x0004D2 = 1234 us
    raw += bytes([33, 0, 0x12, 0x34, 0x56])  # x 33, y 0, OFF, t = 0x123456 = 1193046 us
    ev = decode_nmnist(raw)
    assert ev["x"].tolist() == [5, 33]
    assert ev["y"].tolist() == [7, 0]
    assert ev["p"].tolist() == [1, 0]
    assert ev["t_us"].tolist() == [1234, 1193046]
    assert encode_nmnist(ev["x"], ev["y"], ev["p"], ev["t_us"]) == raw


def test_nmnist_timestamp_overflow_marker():
    raw = pack_event(1, 2, 0, 100) + pack_event(0, 240, 0, 0) + pack_event(3, 4, 1, 50)
    ev = decode_nmnist(raw)
    assert ev["x"].tolist() == [1, 3] and ev["t_us"].tolist() == [100, 50 + 2**23]


events = st.lists(
    st.tuples(st.integers(0, 255), st.integers(0, 239), st.integers(0, 1), st.integers(0, 2**23 - 1)),
    max_size=40,
)


@given(events)
def test_nmnist_bit_packing_round_trip(evs):
    raw = b"".join(pack_event(*e) for e in evs)
    ev = decode_nmnist(raw)
    got = list(zip(ev["x"].tolist(), ev["y"].tolist(), ev["p"].tolist(), ev["t_us"].tolist()))
    assert got == [tuple(e) for e in evs]
    cols = list(zip(*evs)) if evs else [[], [], [], []]
    assert encode_nmnist(*cols) == raw


def make_nmnist(root, files: dict):
    """files: {(split, digit, name): [(x, y, p, t_us), ...]} written as bit-packed .bin files."""
    for (split, digit, name), evs in files.items():
        d = root / split / str(digit)
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(b"".join(pack_event(*e) for e in evs))


def test_nmnist_bins_hand_checked_events(tmp_path):
    make_nmnist(
        tmp_path,
        {
            ("Train", 3, "00002.bin"): [(5, 7, 1, 1234), (0, 0, 0, 299_999), (33, 33, 1, 300_000), (5, 7, 1, 1999)],
            ("Train", 0, "00001.bin"): [(1, 0, 0, 0)],
            ("Test", 9, "00005.bin"): [],
        },
    )
    ds = NMNIST(tmp_path, train=True, dt_ms=1.0, duration_ms=300.0)
    assert (len(ds), ds.n_in, ds.n_classes, ds.n_steps) == (2, 2312, 10, 300)
    assert ds.labels.tolist() == [0, 3]  # digit folders in order
    x0, l0 = ds[0]
    assert l0 == 0 and x0[1, 0] == 1 and x0.sum() == 1
    x, label = ds[1]
    expected = torch.zeros(2312, 300)
    expected[5 + 34 * 7 + 34 * 34 * 1, 1] = 2  # 1.234 ms and 1.999 ms, ON
    expected[0, 299] = 1  # 299.999 ms, OFF, pixel (0, 0)
    # (33, 33) at 300.000 ms is after the cut
    assert label == 3 and torch.equal(x, expected)

    merged = NMNIST(tmp_path, train=True, dt_ms=2.0, duration_ms=300.0, merge_polarity=True)
    xm, _ = merged[1]
    assert merged.n_in == 1156 and merged.n_steps == 150
    assert xm[5 + 34 * 7, 0] == 2 and xm[0, 149] == 1 and xm.sum() == 3

    test = NMNIST(tmp_path, train=False)
    assert len(test) == 1 and test[0][1] == 9 and test[0][0].sum() == 0


def test_nmnist_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="does not exist.*garrickorchard"):
        NMNIST(tmp_path / "nowhere")
    with pytest.raises(DataError, match="Train not found.*Train/<digit>/\\*.bin"):
        NMNIST(tmp_path)
    (tmp_path / "Train" / "1").mkdir(parents=True)
    with pytest.raises(DataError, match="no N-MNIST .bin files"):
        NMNIST(tmp_path)
    (tmp_path / "Train" / "1" / "a.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(DataError, match="not a whole number of 5-byte events"):
        NMNIST(tmp_path)
    (tmp_path / "Train" / "1" / "a.bin").write_bytes(pack_event(34, 0, 0, 10))
    ds = NMNIST(tmp_path)  # sizes are fine; the address is checked when read
    with pytest.raises(DataError, match="pixel addresses outside") as exc:
        ds[0]
    assert "\n" not in str(exc.value)


# --------------------------------------------------------------------------------------
# synthetic task, subsets, load_datasets
# --------------------------------------------------------------------------------------


def test_synthetic_task_is_deterministic_and_split():
    a = SyntheticSpikes(32, "train", task_seed=3)
    b = SyntheticSpikes(32, "train", task_seed=3)
    c = SyntheticSpikes(32, "test", task_seed=3)
    assert torch.equal(a[5][0], b[5][0]) and a.labels.tolist() == b.labels.tolist()
    assert not torch.equal(a._x, c._x)
    assert np.array_equal(a.templates, c.templates)
    x, y = a[0]
    assert x.shape == (a.n_in, a.n_steps) and set(x.unique().tolist()) <= {0.0, 1.0}
    # mirrored class pairs have the same per-channel rates but in reverse time order
    assert np.array_equal(a.templates[1], a.templates[0][:, ::-1])


def test_subsample_and_load_datasets(tmp_path):
    write_shd(tmp_path / "shd_train.h5", SHD_SAMPLES * 4, list(range(12)))
    write_shd(tmp_path / "shd_test.h5", SHD_SAMPLES, [0, 1, 2])
    train, test = load_datasets("shd", tmp_path, dt_ms=2.0, duration_ms=20.0, max_samples=5, seed=1)
    assert len(train) == 5 and len(test) == 3
    info = dataset_info(train)
    assert info["n_in"] == 700 and info["n_samples"] == 5 and info["n_steps"] == 10
    again = subsample(SHD(tmp_path, dt_ms=2.0, duration_ms=20.0), 5, seed=1)
    assert again.indices == train.indices
    with pytest.raises(DataError, match="--data-dir is required"):
        load_datasets("nmnist", None, dt_ms=1.0, duration_ms=10.0)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_datasets("cifar", tmp_path, dt_ms=1.0, duration_ms=10.0)
