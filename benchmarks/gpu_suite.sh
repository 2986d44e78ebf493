#!/usr/bin/env bash
# Every GPU number of BENCHMARKS.md, in parts that each fit one 10-minute command.
#
#   bash benchmarks/gpu_suite.sh core  OUT_DIR   # fit step, single fits, panel, synthetic net, engine tests (capped steps)
#   bash benchmarks/gpu_suite.sh fused OUT_DIR   # fused-kernel rows without the standard engine, panel at K=146
#   bash benchmarks/gpu_suite.sh sweep OUT_DIR   # the paper's Figure 3 grid (time-capped)
#   bash benchmarks/gpu_suite.sh smoke OUT_DIR   # checks this script on a CPU in a minute
#
# Installs the package first (`pip install -e .`, the core: the panel is built in memory by
# benchmarks/panel_benchmark.py --in-memory, so no spike extractor and no Allen data are needed)
# into the machine's python3, which already holds PyTorch with CUDA and Triton (Python 3.12,
# numpy 2). The lent GPU machines reach no package index: the core requirements their image
# lacks (pynwb, hdmf, dask, distributed, dask-jobqueue and theirs) come from the wheel folder
# $CELLFIT_WHEELS (default .whl), which `bash benchmarks/gpu_wheels.sh` fills where pip reaches
# an index (carry .whl with the device run). Without that folder pip uses its index. Writes
# OUT_DIR/<benchmark>/results.csv
# (the layout cellfit.figures.speed.load_benchmarks and the notebooks read: copy OUT_DIR's folders into
# benchmarks/gpu/), panel.csv, single-cell.csv and log.txt (at most 8 files, which is what the
# device tool returns) and prints a short table last.
# Exit status: 0 if every step ran, 1 if any failed (the others still run).
set -uo pipefail
part=${1:?usage: gpu_suite.sh core|fused|sweep|smoke OUT_DIR}
out=${2:?usage: gpu_suite.sh core|fused|sweep|smoke OUT_DIR}
mkdir -p "$out"
work=$(mktemp -d)
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}  # the GPU machines' python3 holds PyTorch
device=${CELLFIT_SUITE_DEVICE:-cuda}  # the smoke part runs on cpu
[ "$part" = smoke ] && device=cpu
status=0
exec > >(tee -a "$out/log.txt") 2>&1

step() {  # step NAME COMMAND...: run, time, keep going on failure; cap=SECONDS before it stops it there
    local name=$1; shift
    echo "== $name: $*${cap:+ (capped at $cap s)}"
    local t0=$SECONDS
    if [ -n "${cap:-}" ] && [ "$(type -t "$1")" = file ]; then timeout "$cap" "$@"; else "$@"; fi
    local rc=$?
    if [ $rc -eq 0 ]; then echo "== $name: ok in $((SECONDS - t0)) s"; else echo "== $name: FAILED (exit $rc) after $((SECONDS - t0)) s"; status=1; fi
    return $rc
}
bench() {  # bench NAME ARGS...: pipelines.benchmark into $work/NAME, CSV copied to OUT/NAME/results.csv
    local name=$1; shift
    step "$name" "$PY" -m pipelines.benchmark --device "$device" --no-progress --out "$work/$name" "$@" \
        && mkdir -p "$out/$name" && cp "$work/$name/results.csv" "$out/$name/results.csv"
}

echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?') part=$part"
wheels=${CELLFIT_WHEELS:-.whl}
from_wheels=()
[ -d "$wheels" ] && from_wheels=(--no-index --find-links "$wheels")
# --no-build-isolation: build the editable install with the image's setuptools (no download)
if ! "$PY" -m pip install --quiet --no-build-isolation "${from_wheels[@]}" -e .; then
    echo "== install FAILED: pip install -e . (wheels from '$wheels'; see benchmarks/gpu_wheels.sh)"; exit 1
fi
(cd "$work" && "$PY" -c "import importlib.metadata as m, cellfit, pipelines; print('cellfit', m.version('cellfit'), 'installed:', cellfit.__file__)") \
    || { echo "== install FAILED: cellfit is not importable outside the checkout"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"

case $part in
core)
    # ordered by what BENCHMARKS.md's GPU rows need most, each step capped (cap=seconds) so that the
    # whole part, install included, ends inside one 10-minute command with every step given its turn;
    # a step cut off at its cap is reported FAILED (exit 124) and its lines stay in log.txt
    # single-cell fit step (3 sweeps x 10,000 steps, ARP 2 ms): fused kernel (auto)
    cap=75 bench fit-cell --grid fit-cell --repeats 20 --warmup 3 --time-budget 20
    # full single-cell fits, one cell per batch (4 cells), then the whole panel (146 cells, DT 0.1 ms,
    # ARP 2 ms, up to 200 epochs), K cells per batch
    cap=80 step single "$PY" benchmarks/panel_benchmark.py --in-memory --cells 4 --cells-per-batch 1 \
        --device "$device" --out "$work/single" && cp "$work/single/panel.csv" "$out/single-cell.csv"
    cap=140 step panel "$PY" benchmarks/panel_benchmark.py --in-memory --cells 146 --cells-per-batch 146 73 \
        --device "$device" --out "$work/panel" && cp "$work/panel/panel.csv" "$out/panel.csv"
    # synthetic training step (1 recurrent layer of 128, 1000 inputs, ARP 40, batch 64, T 1024/2048)
    cap=60 bench paper-synthetic --grid paper-synthetic --repeats 10 --warmup 2 --time-budget 20
    # engine tests; on a GPU the fused-kernel property tests run the compiled kernel on CUDA
    cap=80 step engine-tests "$PY" -m pytest -q -p no:cacheprovider -x tests/functional
    # the PyTorch block loop for the same two steps, and the stage times (in log.txt)
    cap=40 bench fit-cell-torchloop --grid fit-cell --block-kernel torch --engines blocks --repeats 10 --warmup 2
    cap=40 bench paper-synthetic-torchloop --grid paper-synthetic --block-kernel torch --engines blocks --repeats 10 --warmup 2
    cap=30 step breakdown "$PY" benchmarks/engine_breakdown.py --T 2048 --device "$device"
    ;;
fused)
    # what the core part's caps cut off on an H200 (2026-12-04), as one short command: the fused kernel's
    # steps without the standard engine (its 10,000 sequential steps alone outlast the cap) and the panel at K=146
    cap=60 bench fit-cell --grid fit-cell --engines blocks --repeats 10 --warmup 2 --time-budget 10
    cap=150 step panel "$PY" benchmarks/panel_benchmark.py --in-memory --cells 146 --cells-per-batch 146 \
        --device "$device" --out "$work/panel" && cp "$work/panel/panel.csv" "$out/panel.csv"
    cap=40 bench paper-synthetic --grid paper-synthetic --engines blocks --repeats 10 --warmup 2 --time-budget 10
    ;;
smoke)  # the script's own plumbing, in a minute on a CPU (no GPU needed)
    cap=60 bench quick --quick
    step panel "$PY" benchmarks/panel_benchmark.py --in-memory --cells 2 --cells-per-batch 2 --epochs 2 \
        --device "$device" --out "$work/panel" && cp "$work/panel/panel.csv" "$out/panel.csv"
    ;;
sweep)
    # Figure 3: T x ARP x batch, then hidden x layers (capped so that the part ends inside 10 minutes)
    # written straight into OUT (rewritten after every configuration), so a run cut off at the
    # command's limit still returns the configurations it finished
    step sweep "$PY" -m pipelines.benchmark --device "$device" --no-progress --out "$out/sweep" \
        --grid sweep --repeats 3 --warmup 1 --time-budget 2 --max-run-seconds 20
    ;;
*)
    echo "unknown part '$part': choose core, fused, sweep or smoke"; exit 2 ;;
esac

echo "== summary"
"$PY" - "$out" <<'EOF'
import pathlib, sys
import pandas as pd
out = pathlib.Path(sys.argv[1])
for f in sorted(out.rglob("*.csv")):
    df = pd.read_csv(f)
    if "fwd_bwd_median_s" in df:
        cols = [c for c in ("T", "arp_steps", "batch", "hidden", "layers", "engine", "block_kernel",
                            "fwd_median_s", "fwd_bwd_median_s", "speedup_fwd_bwd") if c in df]
        view = df[cols] if len(df) <= 12 else df.groupby(["engine", "block_kernel"], dropna=False)[
            ["fwd_median_s", "fwd_bwd_median_s"]].median().reset_index()
    else:
        view = df[[c for c in ("cells", "cells_per_batch", "fit_s", "fit_s_per_cell", "median_epochs",
                               "max_epochs_run", "median_etv", "failed", "peak_gpu_mem_gb") if c in df]]
    print(f"-- {f.relative_to(out)}")
    print(view.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
EOF
rm -rf "$work"
exit $status
