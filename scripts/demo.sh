#!/usr/bin/env bash
# demo.sh - the README's first command: a simulated home run by hearthd.
#
# Installs what is missing (scripts/deps.sh), builds into build/, then
# scripts/demo.py starts a private mosquitto on a free loopback port, hearthd
# and hearth-sim (tests/sim/homes/demo.json), sends a few intents and tells
# what happened; everything it started is stopped by PID at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/deps.sh
echo "demo: building hearth (build/) ..."
cmake -S . -B build -DPython3_EXECUTABLE=/usr/bin/python3 >build-demo-cmake.log 2>&1 ||
	{ cat build-demo-cmake.log; exit 1; }
cmake --build build -j"$(nproc)" >build-demo-make.log 2>&1 || { tail -40 build-demo-make.log; exit 1; }
rm -f build-demo-cmake.log build-demo-make.log
exec /usr/bin/python3 scripts/demo.py "$@"
