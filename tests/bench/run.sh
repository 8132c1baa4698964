#!/usr/bin/env bash
# run.sh - hearthd against its peers (echo floor, Node-RED): intent -> device
# command latency, throughput, memory and CPU on one private loopback broker.
# See README.md beside this file.
#
#   tests/bench/run.sh                       # 2 rounds, several minutes
#   QUICK=1 ROUNDS=1 tests/bench/run.sh      # smoke run, about a minute
#   TARGETS="echo hearthd" tests/bench/run.sh
#
# Builds hearthd (Release, build-bench/), then runs the shared peer bench
# (../shared/bench/peer/run.sh, beside the repository) with
# HEARTHD_CMD="<build-bench>/bin/hearthd --data hearth-data --log-level warn
# --config <build-bench>/bench-hearth.json" (rate limits off).
# The peer bench starts hearthd in a fresh folder of its run directory for
# each round, so the relative data dir is new every time. QUICK, ROUNDS,
# TARGETS, LOADGEN_ARGS, READY_S and BENCH_WORK pass through the environment.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEER_DIR=$(cd "$ROOT/.." && pwd)/shared/bench/peer
PEER=$PEER_DIR/run.sh
BUILD=$ROOT/build-bench
WORK=${BENCH_WORK:-/tmp/hearth-bench}

if [[ ! -f $PEER ]]; then
	echo "bench: $PEER is missing: the peer bench lives in shared/bench/peer," >&2
	echo "bench: next to this repository (../shared from $ROOT). Check out shared/ there." >&2
	exit 1
fi

# ---------------------------------------------------------------- processes
PEER_PID=
cleanup() {
	if [[ -n $PEER_PID ]] && kill -0 "$PEER_PID" 2>/dev/null; then
		kill -TERM "$PEER_PID" 2>/dev/null || true # it stops its own broker and targets
		wait "$PEER_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build
echo "bench: building hearthd (Release) in $BUILD" >&2
mkdir -p "$BUILD"
BLOG=$BUILD/bench-build.log
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHEARTH_TESTS=OFF \
	-DPython3_EXECUTABLE=/usr/bin/python3 >"$BLOG" 2>&1 ||
	{ tail -30 "$BLOG" >&2; echo "bench: cmake failed (log: $BLOG)" >&2; exit 1; }
cmake --build "$BUILD" -j2 --target hearthd >>"$BLOG" 2>&1 ||
	{ tail -30 "$BLOG" >&2; echo "bench: build failed (log: $BLOG)" >&2; exit 1; }
HEARTHD=$BUILD/bin/hearthd
[[ -x $HEARTHD ]] || { echo "bench: $HEARTHD was not built" >&2; exit 1; }

# ---------------------------------------------------------------- run
# The load generator sends every intent without a source (one anonymous
# bucket) far above the default rate limit: this bench measures the pipeline,
# so the limit is off (tests/bench/flood_bench.py measures the limit itself).
BENCH_CONF=$BUILD/bench-hearth.json
echo '{"limits":{"intent_rate":0}}' >"$BENCH_CONF"
export HEARTHD_CMD="$HEARTHD --data hearth-data --log-level warn --config $BENCH_CONF"
echo "bench: HEARTHD_CMD=$HEARTHD_CMD" >&2
mkdir -p "$WORK"
before=$(find "$WORK" -maxdepth 1 -name 'run.*' -type d | sort)
set +e
bash "$PEER" &
PEER_PID=$!
wait "$PEER_PID"
rc=$?
set -e
PEER_PID=
if ((rc != 0)); then
	echo "bench: the peer bench failed (exit $rc)" >&2
	exit "$rc"
fi

# The peer bench skips a target that never answers; say so loudly.
run=$(comm -13 <(echo "$before") <(find "$WORK" -maxdepth 1 -name 'run.*' -type d | sort) | tail -1)
if [[ ${TARGETS:-hearthd} == *hearthd* ]]; then
	if [[ -z $run ]] || ! grep -q '"target":"hearthd"' "$run/results.jsonl" 2>/dev/null; then
		echo "bench: no hearthd results: it did not answer the probe intent" \
			"(see ${run:-$WORK/run.*}/hearthd.r*/log)" >&2
		exit 1
	fi
fi
echo "bench: results in $run" >&2
