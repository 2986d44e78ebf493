"""The built-in demo cell and specimen / cache-directory resolution."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from cellfit.data import DEMO_SPECIMEN_ID, CellDataError, default_cache_dir, ensure_demo_cell, load_cell, resolve_specimen
from cellfit.data.demo import demo_cache_dir
from cellfit.data.synthetic import load_truth


def test_default_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLFIT_CACHE", str(tmp_path / "env"))
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert default_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("CELLFIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "cellfit" / "allen"


def test_demo_cell_is_generated_once_and_loads_offline(tmp_path):
    cache, sid = ensure_demo_cell(tmp_path)
    assert (cache, sid) == (tmp_path / "demo", DEMO_SPECIMEN_ID)
    nwb = cache / f"specimen_{sid}" / "ephys.nwb"
    mtime = nwb.stat().st_mtime_ns
    assert ensure_demo_cell(tmp_path) == (cache, sid)
    assert nwb.stat().st_mtime_ns == mtime  # reused, not regenerated
    assert resolve_specimen("demo", cache_dir=tmp_path) == (cache, sid)
    assert resolve_specimen(" Demo ", cache_dir=tmp_path) == (cache, sid)
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary directories left

    truth = load_truth(cache, sid)
    p = truth["params"]
    assert truth["model"] == "alif" and p["arp_ms"] == 2.0
    assert 15 <= p["tau_m_ms"] <= 30 and 100 <= p["tau_adapt_ms"] <= 300
    rec = load_cell(sid, dt_ms=0.1, cache_dir=cache)
    assert rec.train.spikes.shape == (3, 3, 10_000) and rec.test.spikes.shape == (4, 3, 10_000)
    assert rec.train.spikes.sum() > 20 and rec.meta.cell_class == "excitatory"
    assert rec.current_scale_pA == pytest.approx(truth["current_scale_pA"])


def test_demo_cell_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLFIT_CACHE", str(tmp_path / "allen"))
    assert demo_cache_dir() == tmp_path / "allen" / "demo"
    monkeypatch.delenv("CELLFIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo_cache_dir() == tmp_path / "home" / ".cache" / "cellfit" / "allen" / "demo"


def test_stale_demo_is_replaced(tmp_path):
    cache = demo_cache_dir(tmp_path)
    cache.mkdir()
    (cache / "demo.json").write_text('{"generator_version": -1}')
    (cache / "leftover").write_text("from an older generator")
    assert ensure_demo_cell(tmp_path)[0] == cache
    assert '"generator_version": -1' not in (cache / "demo.json").read_text()
    assert not (cache / "leftover").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_resolve_specimen_ids(tmp_path):
    assert resolve_specimen("485909730", cache_dir=tmp_path) == (tmp_path, 485909730)
    assert resolve_specimen(np.int64(7), cache_dir=tmp_path) == (tmp_path, 7)
    for bad in ("demo2", "", "1e5", None):
        with pytest.raises(CellDataError, match="positive integer"):
            resolve_specimen(bad, cache_dir=tmp_path)


def test_unwritable_demo_location(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CellDataError, match="cannot write the demo cell"):
        ensure_demo_cell(pathlib.Path(blocker))
