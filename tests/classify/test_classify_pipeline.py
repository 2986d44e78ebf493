"""``python -m pipelines.classify`` end to end on tiny real-format files, and its error paths."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from cellfit.classify import ClassifierConfig, build_model
from pipelines.classify import main

from test_classify_datasets import make_nmnist, write_shd


FAST = ["--hidden", "8", "--batch-size", "4", "--no-progress", "--quiet", "--device", "cpu"]


def read_metrics(out):
    with open(out / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def shd_dir(root, n_train=10, n_test=6, seed=0):
    rng = np.random.default_rng(seed)

    def samples(n):
        out = []
        for _ in range(n):
            k = int(rng.integers(5, 60))
            out.append((np.sort(rng.uniform(0, 0.05, k)), rng.integers(0, 700, k)))
        return out

    root.mkdir(parents=True, exist_ok=True)
    write_shd(root / "shd_train.h5", samples(n_train), rng.integers(0, 20, n_train))
    write_shd(root / "shd_test.h5", samples(n_test), rng.integers(0, 20, n_test))
    return root


def nmnist_dir(root, seed=0):
    rng = np.random.default_rng(seed)
    files = {}
    for split, n in (("Train", 8), ("Test", 4)):
        for i in range(n):
            k = int(rng.integers(5, 40))
            evs = list(zip(rng.integers(0, 34, k), rng.integers(0, 34, k), rng.integers(0, 2, k), np.sort(rng.integers(0, 30_000, k))))
            files[(split, i % 10, f"{i:05d}.bin")] = [tuple(int(v) for v in e) for e in evs]
    make_nmnist(root, files)
    return root


def check_outputs(out, epochs, n_in, n_classes):
    rows = read_metrics(out)
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    for key in ("train_acc", "test_acc", "epoch_time_s", "train_spikes_l1", "test_spikes_l2"):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    meta = json.loads((out / "config.json").read_text())
    cfg = ClassifierConfig.from_dict(meta["config"])
    assert meta["data"]["train"]["n_in"] == n_in
    state = torch.load(out / "best_model.pt", weights_only=True)
    model = build_model(cfg, n_in, n_classes)
    model.load_state_dict(state)
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))
    return rows, cfg


def test_shd_files_train_end_to_end(tmp_path, capsys):
    data = shd_dir(tmp_path / "shd")
    out = tmp_path / "out"
    rc = main(["--dataset", "shd", "--data-dir", str(data), "--epochs", "2", "--duration-ms", "40", "--out", str(out), *FAST])
    assert rc == 0
    rows, cfg = check_outputs(out, 2, 700, 20)
    assert (cfg.dt_ms, cfg.arp_ms, cfg.engine) == (2.0, 20.0, "blocks")
    assert "best epoch" in capsys.readouterr().out


def test_nmnist_files_train_end_to_end_standard_engine(tmp_path):
    data = nmnist_dir(tmp_path / "nmnist")
    out = tmp_path / "out"
    argv = ["--dataset", "nmnist", "--data-dir", str(data), "--epochs", "1", "--duration-ms", "30",
            "--engine", "standard", "--arp", "3", "--max-samples", "6", "--out", str(out), *FAST]
    assert main(argv) == 0
    rows, cfg = check_outputs(out, 1, 2312, 10)
    assert cfg.engine == "standard" and cfg.arp_ms == 3.0 and cfg.max_samples == 6
    meta = json.loads((out / "config.json").read_text())
    assert meta["data"]["train"]["n_samples"] == 6 and meta["data"]["test"]["n_samples"] == 4


@pytest.mark.parametrize("engine", ["blocks", "standard"])
def test_compare_engines_reports_both_engines_per_epoch(tmp_path, capsys, engine):
    out = tmp_path / "out"
    argv = ["--dataset", "synthetic", "--hidden", "16", "--epochs", "2", "--max-samples", "48", "--dtype", "float64",
            "--engine", engine, "--compare-engines", "--out", str(out), "--seed", "3", *FAST]  # fmt: skip
    assert main(argv) == 0
    rows = read_metrics(out)
    other = "standard" if engine == "blocks" else "blocks"
    from cellfit.classify.train import COMPARE_COLUMNS

    for r in rows:
        assert set(COMPARE_COLUMNS) <= set(r) and r["compare_engine"] == other
        assert float(r["fwd_bwd_s"]) > 0 and float(r["compare_fwd_bwd_s"]) > 0 and float(r["compare_eval_time_s"]) > 0
        # float64: the engines' spikes are identical and their gradients agree to rounding
        # (sums of the same terms in other orders: ~1e-16 relative each; 1e-9 leaves room for cancellation)
        assert int(r["engine_spike_mismatches"]) == 0
        assert float(r["engine_grad_rel_diff"]) < 1e-9
        for k in (1, 2):
            for split in ("train", "test"):
                assert float(r[f"compare_{split}_spikes_l{k}"]) == pytest.approx(float(r[f"{split}_spikes_l{k}"]), rel=1e-12)
    assert float(rows[0]["train_spikes_l1"]) > 0
    printed = capsys.readouterr().out
    assert f"engines per epoch: {engine} fwd+bwd" in printed and "differing spike entries 0" in printed
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["compare_engines"] is True and meta["block_kernel"] == "blockwise"


def test_synthetic_cli_learns_and_is_reproducible(tmp_path):
    argv = ["--dataset", "synthetic", "--hidden", "32", "--epochs", "4", "--max-samples", "192",
            "--no-progress", "--quiet", "--device", "cpu", "--seed", "1"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    rows = read_metrics(tmp_path / "a")
    assert max(float(r["test_acc"]) for r in rows) >= 0.5  # chance 0.25
    assert main([*argv, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    first = read_metrics(tmp_path / "b")[0]
    same = {k: v for k, v in rows[0].items() if not k.endswith("time_s")}
    assert same == {k: v for k, v in first.items() if not k.endswith("time_s")}


def one_line_error(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m pipelines.classify: error:"), err
    for frag in fragments:
        assert frag in err, err


def test_error_paths_exit_2_with_one_line(tmp_path, capsys):
    q = ["--quiet", "--no-progress", "--out", str(tmp_path / "out")]
    one_line_error(capsys, ["--dataset", "shd", *q], "--data-dir is required", "zenkelab.org")
    one_line_error(capsys, ["--dataset", "shd", "--data-dir", str(tmp_path / "missing"), *q], "does not exist", "shd_train.h5")
    data = shd_dir(tmp_path / "shd")
    (data / "shd_test.h5").unlink()
    one_line_error(capsys, ["--dataset", "shd", "--data-dir", str(data), *q], "shd_test.h5 not found", "zenkelab.org")
    (data / "shd_test.h5").write_bytes(b"\x00" * 100)
    one_line_error(capsys, ["--dataset", "shd", "--data-dir", str(data), *q], "cannot read SHD file")
    one_line_error(capsys, ["--dataset", "nmnist", "--data-dir", str(tmp_path), *q], "Train not found", "garrickorchard.com")
    nm = nmnist_dir(tmp_path / "nmnist")
    (nm / "Test" / "1" / "00001.bin").write_bytes(b"\x01\x02\x03")
    one_line_error(capsys, ["--dataset", "nmnist", "--data-dir", str(nm), *q], "corrupt N-MNIST file", "00001.bin")
    # a bad address is found only when the file is decoded, during training
    (nm / "Test" / "1" / "00001.bin").write_bytes(bytes([40, 0, 0, 0, 1]))
    one_line_error(capsys, ["--dataset", "nmnist", "--data-dir", str(nm), "--epochs", "1", "--duration-ms", "10", *FAST, *q,
                                    "--out", str(tmp_path / "lazy")],
                   "pixel addresses outside")
    one_line_error(capsys, ["--dataset", "synthetic", "--arp", "2.5", *q], "whole number")
    one_line_error(capsys, ["--dataset", "mnist", *q], "invalid choice")
    one_line_error(capsys, ["--dataset", "synthetic", "--epochs", "0", *q], "--epochs: must be >= 1")
    assert not (tmp_path / "out").exists()  # errors before training leave no output behind
