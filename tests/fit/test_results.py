"""FitResult: the typed record of a fit, its JSON round trip, and its documentation (RESULTS.md)."""

import dataclasses
import json
import pathlib
import re

import pytest

from cellfit.fit.results import SCHEMA_VERSION, SUMMARY_COLUMNS, FitResult, LossStage, PhysicalParameters

ROOT = pathlib.Path(__file__).resolve().parents[2]


def ok_result(**over) -> FitResult:
    phys = PhysicalParameters.from_fit(dict(tau_m_ms=20.0, tau_adapt_ms=150.0, adapt_scale=0.2, gain=2.0, bias=0.1),
                                       v_rest_mV=-70.0, v_thresh_mV=-50.0, current_scale_pA=100.0)
    fields = dict(specimen_id=123, etv=0.9, tau_m_ms=20.0, tau_adapt_ms=150.0, adapt_scale=0.2, gain=2.0, bias=0.1,
                  physical=phys, loss_history=(1.0, 0.5), loss_stage=(0, 1),
                  loss_stages=(LossStage(100.0, 1, 1, 1.0, "plateau: next stage"), LossStage(10.0, 2, 2, 0.5, "converged")),
                  config={"dt_ms": 0.1}, etv_per_epoch=(0.8, None, 1.0))
    fields.update(over)
    return FitResult.ok(**fields)


def test_round_trip_through_json():
    r = ok_result()
    back = FitResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert back.to_dict()["schema_version"] == SCHEMA_VERSION


def test_physical_units_follow_the_normalisation():
    p = ok_result().physical
    # span 20 mV: R_in = gain * span / scale = 2 * 20 mV / 100 pA = 0.4 GOhm
    assert p.input_resistance_MOhm == pytest.approx(400.0)
    assert p.v_rest_mV == pytest.approx(-70.0 + 0.1 * 20.0)
    assert p.adapt_mV_per_spike == pytest.approx(4.0)
    assert p.bias_pA == pytest.approx(0.1 * 100.0 / 2.0)
    assert (p.v_thresh_mV, p.v_reset_mV) == (-50.0, -70.0)


def test_older_and_newer_records_are_read_without_loss():
    v1 = {"specimen_id": "7", "status": "ok", "etv": 0.5, "tau_m_ms": 10.0, "tau_adapt_ms": 100.0,
          "adapt_scale": 0.1, "gain": 1.0, "bias": 0.0, "loss_history": [1.0, 0.9]}
    r = FitResult.from_dict(v1)
    assert r.schema_version == 1 and r.specimen_id == 7 and r.loss_history == (1.0, 0.9) and r.gamma is None
    newer = dict(ok_result().to_dict(), future_field={"a": 1})
    r2 = FitResult.from_dict(newer)
    assert r2.extra == {"future_field": {"a": 1}} and r2.to_dict()["future_field"] == {"a": 1}


def test_constructors_check_what_they_build():
    with pytest.raises(ValueError, match="etv"):
        FitResult.ok(specimen_id=1, tau_m_ms=1.0, tau_adapt_ms=1.0, adapt_scale=1.0, gain=1.0, bias=0.0)
    f = FitResult.failed(5, "no  Noise 2\nsweeps")
    assert f.status == "failed" and f.error == "no Noise 2 sweeps" and not f.is_ok
    with pytest.raises(ValueError, match="status"):
        FitResult(specimen_id=1, status="done")
    assert set(f.summary_row()) == set(SUMMARY_COLUMNS)
    assert ok_result().summary_row()["phys_input_resistance_MOhm"] == pytest.approx(400.0)


def test_results_md_documents_every_field():
    text = (ROOT / "RESULTS.md").read_text()
    table = set(re.findall(r"^\| `([a-z_A-Z0-9]+)` \|", text, flags=re.M))
    fields = {f.name for f in dataclasses.fields(FitResult)} - {"extra"}
    assert fields == table, (fields - table, table - fields)
    for sub in (PhysicalParameters, LossStage):
        for f in dataclasses.fields(sub):
            assert f"`{f.name}`" in text, f"{sub.__name__}.{f.name} is not documented in RESULTS.md"
    for col in SUMMARY_COLUMNS:
        assert f"`{col}`" in text, f"summary column {col} is not documented in RESULTS.md"


def test_flags_show_in_the_time_constant_text_and_the_summary_row():
    r = ok_result(intervals={"tau_m_ms": [18.0, 199.8]}, undetermined=("tau_m_ms",),
                  at_bound=("tau_m_ms", "v_reset"), tau_m_ms=199.7)
    assert r.time_constant_text("tau_m_ms", ".1f") == "199.7 [18.0-199.8] ms (undetermined) (at its bound)"
    assert r.time_constant_text("tau_adapt_ms", ".0f") == "150 ms"  # no interval, no flag
    assert r.other_bounds_text() == ", v_reset at bound"
    row = r.summary_row()
    assert (row["undetermined"], row["at_bound"]) == ("tau_m_ms", "tau_m_ms v_reset")
    assert FitResult.from_dict(json.loads(json.dumps(r.to_dict()))).at_bound == ("tau_m_ms", "v_reset")
    assert ok_result().other_bounds_text() == "" and ok_result().summary_row()["at_bound"] == ""
