#!/usr/bin/env bash
# Every GPU number of BENCHMARKS.md, in two parts that each fit one 10-minute command.
#
#   bash benchmarks/gpu_suite.sh core  OUT_DIR   # engine tests, fit step, synthetic net, panel, single fits
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
part=${1:?usage: gpu_suite.sh core|sweep|smoke OUT_DIR}
out=${2:?usage: gpu_suite.sh core|sweep|smoke OUT_DIR}
mkdir -p "$out"
work=$(mktemp -d)
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}  # the GPU machines' python3 holds PyTorch
device=${CELLFIT_SUITE_DEVICE:-cuda}  # the smoke part runs on cpu
[ "$part" = smoke ] && device=cpu
status=0
exec > >(tee -a "$out/log.txt") 2>&1

step() {  # step NAME COMMAND...: run, time, keep going on failure
    local name=$1; shift
    echo "== $name: $*"
    local t0=$SECONDS
    "$@"
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
    # engine tests; on a GPU the fused-kernel property tests run the compiled kernel on CUDA
    step engine-tests "$PY" -m pytest -q -p no:cacheprovider tests/functional
    # single-cell fit step (3 sweeps x 10,000 steps, ARP 2 ms): fused kernel (auto), then the PyTorch block loop
    bench fit-cell --grid fit-cell --repeats 20 --warmup 3 --time-budget 20
    bench fit-cell-torchloop --grid fit-cell --block-kernel torch --engines blocks --repeats 10 --warmup 2
    # synthetic training step (1 recurrent layer of 128, 1000 inputs, ARP 40, batch 64, T 1024/2048)
    bench paper-synthetic --grid paper-synthetic --repeats 10 --warmup 2 --time-budget 20
    bench paper-synthetic-torchloop --grid paper-synthetic --block-kernel torch --engines blocks --repeats 10 --warmup 2
    step breakdown "$PY" benchmarks/engine_breakdown.py --T 2048 --device "$device"   # stage times, in log.txt
    # whole panel (146 cells, DT 0.1 ms, ARP 2 ms, up to 200 epochs), K cells per batch; then single-cell fits
    step panel "$PY" benchmarks/panel_benchmark.py --in-memory --cells 146 --cells-per-batch 146 73 16 \
        --device "$device" --out "$work/panel" && cp "$work/panel/panel.csv" "$out/panel.csv"
    step single "$PY" benchmarks/panel_benchmark.py --in-memory --cells 4 --cells-per-batch 1 \
        --device "$device" --out "$work/single" && cp "$work/single/panel.csv" "$out/single-cell.csv"
    ;;
smoke)  # the script's own plumbing, in a minute on a CPU (no GPU needed)
    bench quick --quick
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
    echo "unknown part '$part': choose core, sweep or smoke"; exit 2 ;;
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
