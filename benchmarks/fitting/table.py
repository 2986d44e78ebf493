"""Summarise benchmarks/fitting/variants.jsonl into the FITTING.md table (markdown on stdout)."""
import json, sys
import pandas as pd

rows = [json.loads(l) for l in open(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/fitting/variants.jsonl")]
df = pd.DataFrame(rows)
df["err_tau_m"] = (df.tau_m_ms / df.true_tau_m_ms - 1).abs()
df["err_tau_a"] = (df.tau_adapt_ms / df.true_tau_adapt_ms - 1).abs()
order = list(dict.fromkeys(df.variant))
print("| panel | variant | median ETV (min-max) | median abs. error tau_m | median abs. error tau_adapt | cells within 15% (tau_m / tau_adapt) | epochs (median) | wall s per panel |")
print("|---|---|---|---|---|---|---|---|")
for panel in dict.fromkeys(df.panel):
    for v in order:
        g = df[(df.panel == panel) & (df.variant == v)]
        if g.empty:
            continue
        n = len(g)
        ok_m = int((g.err_tau_m <= 0.15).sum()); ok_a = int((g.err_tau_a <= 0.15).sum())
        print(f"| {panel} | {v} | {g.etv.median():.3f} ({g.etv.min():.2f}-{g.etv.max():.2f}) | {100*g.err_tau_m.median():.0f}% | "
              f"{100*g.err_tau_a.median():.0f}% | {ok_m}/{n} / {ok_a}/{n} | {int(g.epochs.median())} | {g.panel_wall_s.iloc[0]:.0f} |")
