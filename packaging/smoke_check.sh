#!/usr/bin/env bash
# Smoke-check a built bundle without a display or a GPU.
#
#   packaging/smoke_check.sh [DIST_DIR] [--quick]   (default build/bundle/dist/naviewer)
#
# 1. `naviewer --version`: imports torch + torchvision (proves the CUDA stand-ins load).
# 2. `naviewer-gui` offscreen with NAVIEWER_STARTUP_PROBE=1: the window is shown, the probe line
#    printed and the app quits by itself (proves Qt plugins and naviewer.resources are bundled).
# 3. unless --quick: `naviewer demo --no-gui --epochs 1` in a temporary folder: trains a tiny
#    model through naviewer.ssl.augment, i.e. torchvision.ops.roi_align on the CPU.
# 4. unless --quick: `naviewer-gui WS` offscreen on that demo workspace (with its detection pass
#    or its run): the window opens the workspace, shows, and quits cleanly through the probe.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dist=${1:-$here/../build/bundle/dist/naviewer}
quick=${2:-}
export QT_QPA_PLATFORM=offscreen
fail() { echo "SMOKE FAIL: $*" >&2; exit 1; }

echo "== naviewer --version"
version=$("$dist/naviewer" --version 2>&1) || fail "--version: $version"
echo "$version"
# --version prints "torch not available (...)" instead of failing when torch cannot be imported.
echo "$version" | grep -q "^torch [0-9]" || fail "torch does not import in the bundle"
echo "$version" | grep -q "^torchvision [0-9]" || fail "torchvision does not import in the bundle"

echo "== naviewer-gui startup probe (offscreen)"
probe=$(NAVIEWER_STARTUP_PROBE=1 timeout 120 "$dist/naviewer-gui" 2>&1) || fail "gui exited non-zero: $probe"
echo "$probe" | grep -q "NAVIEWER_WINDOW_EXPOSED" || fail "no probe line: $probe"
echo "$probe" | grep "NAVIEWER_WINDOW_EXPOSED"

if [ "$quick" != "--quick" ]; then
  echo "== naviewer demo --no-gui --epochs 1"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  timeout 600 "$dist/naviewer" demo --no-gui --epochs 1 --threads 2 --workspace "$tmp/ws" || fail "demo"

  echo "== naviewer-gui on the demo workspace (offscreen)"
  opened=$(NAVIEWER_STARTUP_PROBE=1 NAVIEWER_SETTINGS_DIR="$tmp/settings" timeout 120 "$dist/naviewer-gui" "$tmp/ws" 2>&1) \
    || fail "gui on the demo workspace exited non-zero: $opened"
  echo "$opened" | grep -q "NAVIEWER_WINDOW_EXPOSED" || fail "no probe line with the workspace: $opened"
  if echo "$opened" | grep -q "Traceback"; then fail "traceback while opening the workspace: $opened"; fi
  echo "$opened" | grep "NAVIEWER_WINDOW_EXPOSED"
fi
echo "SMOKE OK: $dist"
