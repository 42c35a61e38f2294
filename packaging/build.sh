#!/usr/bin/env bash
# Build the one-folder CPU bundle: dist/naviewer/{naviewer,naviewer-gui,_internal/}.
#
#   packaging/build.sh [BUILD_VENV]      (default /tmp/naviewer-bundle-venv)
#
# The stack is CPU-only: torch 2.13.0+cpu (pip picks the +cpu wheel for ==2.13.0 where one is
# offered, e.g. /opt/wheels here) and the registry's torchvision 0.28.0 installed with --no-deps
# (its CUDA-linked _C.so is satisfied by stand-ins from make_cuda_stubs.sh). Never install
# `torch torchvision` unpinned: that pulls the CUDA build and ~3 GB of nvidia-* packages.
# Output goes to $NAVIEWER_BUNDLE_OUT (default build/bundle/ in the repository).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
venv=${1:-/tmp/naviewer-bundle-venv}
out=${NAVIEWER_BUNDLE_OUT:-$repo/build/bundle}
py=${PYTHON:-python3}

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
pip install -q "torch==2.13.0"
"$venv/bin/python" -c "import torch, sys; v = torch.__version__; sys.exit(0 if '+cpu' in v else f'not a CPU torch: {v}')"
pip install -q --no-deps "torchvision==0.28.0"
pip install -q numpy "Pillow>=10.0" "hnswlib>=0.8" "scikit-learn>=1.3" "tomli-w>=1.0" \
    "PySide6-Essentials>=6.6,<6.12" "pyqtgraph>=0.13.4" "pyinstaller>=6.10"
# Install naviewer from a copy of the tracked files (pip would write build/ and egg-info in-tree).
src=$(mktemp -d)
(cd "$repo" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$src"
pip install -q --no-deps --force-reinstall "$src"
rm -rf "$src"
if pip list 2>/dev/null | grep -qiE '^(nvidia-|triton)'; then echo "CUDA packages found in $venv" >&2; exit 1; fi

site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
stubs="$out/cuda-stubs"
"$here/make_cuda_stubs.sh" "$site" "$stubs"
export NAVIEWER_CUDA_STUBS=$stubs
# PyInstaller resolves _C.so's NEEDED libs through the loader path: point it at the stand-ins.
export LD_LIBRARY_PATH="$stubs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$out/dist" --workpath "$out/work" "$here/naviewer.spec"
du -sh "$out/dist/naviewer"
