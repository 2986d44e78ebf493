"""The paper146 panel rule on fixture metadata, and explicit panels."""

from __future__ import annotations

import pytest

from cellfit.data import CellDataError, select_panel
from cellfit.data.allen import open_allen_cache
from cellfit.data.panels import panel_reason



def test_paper146_rule_on_fixture_cache(panel_cache, panel_ids, panel_pass, reader, monkeypatch):
    if reader == "files":  # the rule on a cache read without AllenSDK
        monkeypatch.setattr("cellfit.data.allen.allensdk_installed", lambda: False)
    chosen = select_panel("paper146", cache_dir=panel_cache)
    assert chosen == sorted(panel_ids[k] for k in panel_pass)


def test_each_criterion_excludes_its_cell(panel_cache, panel_ids):
    store = open_allen_cache(panel_cache)  # AllenSDK where installed, else the files reader
    cells, features = store.cells(), store.features()
    expected = {
        "good": "", "good_inh": "",
        "human": "species 'Homo Sapiens'",
        "layer5": "layer '5'",
        "diseased": "disease_state 'epilepsy'",
        "no_noise1": "no 'Noise 1' sweep",
        "no_noise2": "0 'Noise 2' sweeps, not 4",
        "one_test_repeat": "1 'Noise 2' sweeps, not 4",
        "three_test_repeats": "3 'Noise 2' sweeps, not 4",
        "no_features": "no row in ephys_features.csv",
    }
    for name, want in expected.items():
        sid = panel_ids[name]
        why = panel_reason(cells[sid], features.get(sid), store.sweep_table(sid))
        assert why.startswith(want) if want else why == "", (name, why)


def test_rule_on_plain_records():
    rec = {"species": "Mus musculus", "structure_layer_name": "4", "disease_state": None}
    four = [{"stimulus_name": "Noise 1"}] + [{"stimulus_name": "Noise 2"}] * 4
    assert panel_reason(rec, {"vrest": -70}, four) == ""  # None counts as empty
    assert panel_reason(rec, {"vrest": -70}, four + [{"stimulus_name": "Noise 2"}]).startswith("5 'Noise 2'")
    assert panel_reason({**rec, "structure_layer_name": "2/3"}, {}, four).startswith("layer")
    assert panel_reason(rec, {"vrest": -70}, None) == ""


def test_explicit_panels():
    assert select_panel([3, 1, 3, "7"]) == [3, 1, 7]
    assert select_panel("5, 2,9") == [5, 2, 9]
    with pytest.raises(CellDataError, match="unknown panel 'paper147'"):
        select_panel("paper147")
    with pytest.raises(CellDataError, match="empty list"):
        select_panel([])
    with pytest.raises(CellDataError, match="positive integer"):
        select_panel([1, -2])


def test_paper146_needs_a_cache(tmp_path):
    with pytest.raises(CellDataError, match="is empty"):
        select_panel("paper146", cache_dir=tmp_path)
