"""Fixtures of the batch tests: a 6-cell synthetic Allen cache and a shared local Dask cluster.

Fits are kept tiny so that the module runs in about two minutes on 2 CPU cores:
DT 0.5 ms (ARP 2 ms = 4 steps), 1 s windows, 3 epochs, one Noise 1 and two
Noise 2 sweeps per cell at 4 kHz (0.25 ms samples, so DT 0.5 ms is two samples).
Worker processes start once (``dask_cluster``) and the tests that do not test
the local cluster itself connect to it by address (``--scheduler tcp://...``),
which also covers that scheduler option.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib

import pytest

from cellfit.data.synthetic import alif_panel, write_synthetic_cache

N_CELLS = 6


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No downloads, and a default cache that is never the user's home."""
    monkeypatch.setenv("CELLFIT_OFFLINE", "1")
    monkeypatch.setenv("CELLFIT_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture(scope="session")
def synth_cache(tmp_path_factory) -> tuple[pathlib.Path, list[int]]:
    """Six ALIF cells (alternately excitatory and inhibitory) in the AllenSDK cache layout."""
    cache = tmp_path_factory.mktemp("batch-cache")
    cells = [dataclasses.replace(c, noise1_repeats=1, noise2_repeats=2) for c in alif_panel(N_CELLS, seed=0)]
    ids = write_synthetic_cache(cache, cells, seed=0, sampling_rate_hz=4000)
    return cache, ids


@pytest.fixture(scope="module")
def dask_cluster():
    """A local cluster of 2 single-threaded worker processes, imports warmed, shared by a module."""
    from distributed import Client, LocalCluster

    mp = pytest.MonkeyPatch()
    mp.setenv("CELLFIT_OFFLINE", "1")  # worker processes inherit the environment when they start
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0")
    try:
        with Client(cluster) as client:
            client.run(_warm_imports)
        yield cluster
    finally:
        cluster.close()
        mp.undo()


def _warm_imports() -> int:
    for name in ("cellfit.batch.run", "cellfit.data", "cellfit.fit"):  # cellfit.data: allensdk, several seconds
        importlib.import_module(name)
    return os.getpid()
