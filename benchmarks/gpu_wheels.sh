#!/usr/bin/env bash
# Wheels that `pip install -e .` needs on the lent GPU machines beyond what their image holds.
#
#   bash benchmarks/gpu_wheels.sh [DIR]     # default DIR: .whl (git-ignored)
#
# Run here, where pip reaches a package index; the GPU machines reach none. Their image
# (Python 3.12) already has torch, triton, numpy 2, pandas, scipy, h5py, matplotlib, tqdm,
# pyyaml, click, cloudpickle, fsspec, toolz, msgpack, psutil, sortedcontainers, jinja2,
# attrs, python-dateutil, pytest and hypothesis; the rest of the core requirements are
# downloaded here for CPython 3.12 on x86-64 Linux (about 10 MB), at the versions a clean
# resolve of the core gave on Python 3.11 (pynwb 4.2 / hdmf 6.2: the newest, no ipfx).
# benchmarks/gpu_suite.sh installs from DIR (CELLFIT_WHEELS) when it exists; carry DIR with
# the device run (it is ignored by git, so name it in the run's carry list).
# Set CELLFIT_WHEELS_PY=3.11 to fetch them for this machine's Python instead (to check the
# offline install here).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.whl}
py=${CELLFIT_WHEELS_PY:-3.12}
mkdir -p "$out"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d "$out" \
    pynwb==4.2.0 hdmf==6.2.0 ruamel.yaml==0.19.1 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
    referencing==0.37.0 rpds-py==2026.9.1 platformdirs==4.14.9 dask==2026.8.0 distributed==2026.8.0 \
    dask-jobqueue==0.9.0 partd==1.4.2 locket==1.0.0 tblib==3.2.2 zict==3.0.0 tornado==6.6.1 \
    importlib_metadata==10.2.0 lazy-importer==0.1.0  # these two only for Python < 3.12
ls "$out"
du -sh "$out"
