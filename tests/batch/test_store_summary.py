"""The batch summary: rows from FitResult records, and the one-line run summary with ETV and Gamma."""

import pandas as pd

from cellfit.batch.store import run_summary
from cellfit.fit.results import SUMMARY_COLUMNS


def test_run_summary_line_gives_counts_and_median_scores():
    rows = [dict(specimen_id=1, status="ok", etv=0.9, gamma=0.7, repeat_ceiling=1.0),
            dict(specimen_id=2, status="ok", etv=0.5, gamma=0.3, repeat_ceiling=1.02),
            dict(specimen_id=3, status="failed", etv=None, gamma=None, repeat_ceiling=None),
            dict(specimen_id=4, status="missing")]
    df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    line = run_summary(df)
    assert line.startswith("4 cells: 2 ok, 1 failed, 1 missing")
    assert "median ETV 0.700" in line and "median Gamma 0.500" in line and "median repeat ceiling 1.010" in line
    assert run_summary(df[df.status != "ok"]) == "2 cells: 0 ok, 1 failed, 1 missing"


def test_run_summary_line_counts_the_flagged_cells():
    rows = [dict(specimen_id=1, status="ok", etv=0.9, undetermined="tau_adapt_ms", at_bound=""),
            dict(specimen_id=2, status="ok", etv=0.1, undetermined="tau_m_ms tau_adapt_ms", at_bound="tau_m_ms"),
            dict(specimen_id=3, status="ok", etv=0.8, undetermined=None, at_bound=None)]  # empty cells read from CSV
    line = run_summary(pd.DataFrame(rows, columns=SUMMARY_COLUMNS))
    assert line.endswith("| 2 with a time constant undetermined | 1 with a parameter at its bound")
    rows[1].update(at_bound="")
    assert "bound" not in run_summary(pd.DataFrame(rows, columns=SUMMARY_COLUMNS))
