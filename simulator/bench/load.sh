#!/usr/bin/env bash
# load.sh BINDIR [DEVICES] [DURATION] — the whole system under fleet load:
# tributary-sim (DEVICES devices, SHT3x: 2 readings per sample, one sample
# every 2 s = 1 reading/s per device) → tributary-agent (embedded broker,
# batch_age 50ms, 8 requests in flight) → tributary-cloud (embedded store, monitor consumer,
# anomaly detectors, dashboard) on this machine.
#
# Reports: sustained readings/s into the stream, device → consumer latency
# (p50/p99 from the cloud's tributary_consumer_latency_seconds histogram:
# device time to handled by the live monitor consumer), device → stream
# arrival latency and loss/duplicates (tributary-sim verify), and CPU
# (cores) and RSS (average and peak) of the agent and the cloud, sampled
# from procfs every 5 s. The simulator's own CPU and RSS come from its
# summary. Needs bash, awk, procfs.
set -euo pipefail
if [[ $# -lt 1 || $# -gt 3 ]]; then
	echo "usage: $0 BINDIR [DEVICES=10000] [DURATION=10m]" >&2
	exit 2
fi
BIN=$1
DEVICES=${2:-10000}
DURATION=${3:-10m}
for b in tributary-cloud tributary-agent tributary-sim; do
	[[ -x $BIN/$b ]] || { echo "load.sh: $BIN/$b missing (run make build)" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d /tmp/tributary-load.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "load.sh: logs in $WORK" >&2
}
trap cleanup EXIT

freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 10000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
http_get() { # PORT PATH
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	sed '1,/^\r\{0,1\}$/d' <&3
	exec 3>&-
}
wait_up() { for _ in $(seq 300); do http_get "$1" /healthz >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "load.sh: $2 did not start" >&2; exit 1; }

HTTP=$(freeport) KIN=$(freeport) ADMIN=$(freeport) MQTT=$(freeport) AGENT=$(freeport)
TOKEN=$("$BIN/tributary-cloud" -data "$WORK/cloud" token issue gw-load 2>/dev/null)
# Every series scored, as before anomaly.max_series' default became 6,000
# (a 512 MiB budget): 10,000 devices × 2 readings is 20,000 series (~1.6 GiB).
printf 'anomaly:\n  max_series: 25000\n' >"$WORK/cloud.yaml"
"$BIN/tributary-cloud" -config "$WORK/cloud.yaml" -data "$WORK/cloud" -listen "127.0.0.1:$HTTP" -kinesis-listen "127.0.0.1:$KIN" -admin-listen "127.0.0.1:$ADMIN" -log-level warn \
	>"$WORK/cloud.log" 2>&1 &
CLOUD=$!
PIDS+=("$CLOUD")
wait_up "$HTTP" tributary-cloud
cat >"$WORK/agent.yaml" <<YAML
gateway: gw-load
data: $WORK/agent
listen: "127.0.0.1:$AGENT"
log_level: warn
mqtt:
  listen: "127.0.0.1:$MQTT"
cloud:
  url: http://127.0.0.1:$HTTP
  token: "$TOKEN"
  batch_age: 50ms
  max_in_flight: 8
YAML
"$BIN/tributary-agent" -config "$WORK/agent.yaml" >"$WORK/agent.log" 2>&1 &
AGENTPID=$!
PIDS+=("$AGENTPID")
wait_up "$AGENT" tributary-agent

TICK=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }

"$BIN/tributary-sim" -broker "tcp://127.0.0.1:$MQTT" -devices "$DEVICES" -sensors sht3x -rate 0.5 -duration "$DURATION" \
	-truth "$WORK/truth.jsonl" -summary "$WORK/summary.json" -stats-every 30s >"$WORK/sim.log" 2>&1 &
SIM=$!
PIDS+=("$SIM")

# Measure after the connection ramp: from the first minute on.
sleep 60
A0=$(cpu "$AGENTPID") C0=$(cpu "$CLOUD") T0=$(date +%s.%N)
R0=$(http_get "$ADMIN" /metrics | awk '/^tributary_ingest_readings_total / { print $2 }')
http_get "$ADMIN" /metrics | grep '^tributary_consumer_latency_seconds_bucket' >"$WORK/lat0.txt"
: >"$WORK/rss.txt"
while kill -0 "$SIM" 2>/dev/null; do
	echo "$(rss "$AGENTPID") $(rss "$CLOUD")" >>"$WORK/rss.txt"
	# Stop measuring just before the fleet stops (it stops on its own).
	A1=$(cpu "$AGENTPID") C1=$(cpu "$CLOUD") T1=$(date +%s.%N)
	R1=$(http_get "$ADMIN" /metrics | awk '/^tributary_ingest_readings_total / { print $2 }')
	http_get "$ADMIN" /metrics | grep '^tributary_consumer_latency_seconds_bucket' >"$WORK/lat1.txt"
	AH=$(hwm "$AGENTPID") CH=$(hwm "$CLOUD")
	sleep 5
done
wait "$SIM" || true
kill -TERM "$AGENTPID"
wait "$AGENTPID" || true

echo "verifying (tributary-sim verify)..." >&2
"$BIN/tributary-sim" verify -truth "$WORK/truth.jsonl" -endpoint "http://127.0.0.1:$KIN" -settle 3s -timeout 10m \
	-progress 0 -json >"$WORK/verify.json" 2>"$WORK/verify.log" || true

# p QUANTILE: from the latency histogram's increase over the measured window
# (linear within a bucket).
paste -d' ' "$WORK/lat0.txt" "$WORK/lat1.txt" | awk -F'[{}" ]+' '
{ le = $3; n0 = $(NF-2); n1 = $NF; if (le == "+Inf") le = 1e12; print le, n1 - n0 }' >"$WORK/lat.txt"
q() {
	awk -v q="$1" '{ le[NR] = $1; c[NR] = $2 } END {
		total = c[NR]; want = q * total; prev = 0; pc = 0
		for (i = 1; i <= NR; i++) { if (c[i] >= want) { f = (c[i] > pc) ? (want - pc) / (c[i] - pc) : 0; printf "%.0f", 1000 * (prev + f * (le[i] - prev)); exit }
			prev = le[i]; pc = c[i] } }' "$WORK/lat.txt"
}
field() { grep -o "\"$1\": *[-0-9.e+]*" "$2" | head -1 | cut -d: -f2 | tr -d ' '; }
vfield() { python3 -c "import json,sys; d=json.load(open('$WORK/verify.json')); print($1)" 2>/dev/null || echo "?"; }

awk -v dev="$DEVICES" -v dur="$DURATION" -v t0="$T0" -v t1="$T1" -v r0="$R0" -v r1="$R1" \
	-v a="$(( A1 - A0 ))" -v c="$(( C1 - C0 ))" -v tick="$TICK" -v ah="$AH" -v ch="$CH" \
	-v p50="$(q 0.5)" -v p99="$(q 0.99)" \
	-v simcpu="$(awk -v u="$(field cpu_user_seconds "$WORK/summary.json")" -v s="$(field cpu_system_seconds "$WORK/summary.json")" -v w="$(field run_seconds "$WORK/summary.json")" 'BEGIN { printf "%.2f", (u + s) / w }')" \
	-v simrss="$(field max_rss_bytes "$WORK/summary.json")" \
	-v lost="$(vfield "d['totals']['lost']")" -v dup="$(vfield "d['totals']['duplicated']")" \
	-v expected="$(vfield "d['totals']['expected']")" -v ap99="$(vfield "d['latency']['p99_ms']")" -v ap50="$(vfield "d['latency']['p50_ms']")" '
BEGIN {
	wall = t1 - t0
	printf "load: %d devices x 1 reading/s (SHT3x, a sample every 2 s) for %s through one agent, on this machine\n", dev, dur
	printf "  sustained into the stream   %.0f readings/s (measured over %.0f s after the first minute)\n", (r1 - r0) / wall, wall
	printf "  device -> consumer latency  p50 %s ms, p99 %s ms (monitor consumer, histogram)\n", p50, p99
	printf "  device -> stream arrival    p50 %s ms, p99 %s ms (verify)\n", ap50, ap99
	printf "  verify                      %s expected, %s lost, %s duplicated\n", expected, lost, dup
	printf "  agent                       %.2f cores, RSS peak %.0f MiB\n", a / tick / wall, ah / 1024
	printf "  cloud                       %.2f cores, RSS peak %.0f MiB\n", c / tick / wall, ch / 1024
	printf "  simulator                   %s cores, peak RSS %.0f MiB\n", simcpu, simrss / 1048576
}'
awk '{ a += $1; c += $2; n++ } END { if (n) printf "  RSS averages over the run   agent %.0f MiB, cloud %.0f MiB\n", a / n / 1024, c / n / 1024 }' "$WORK/rss.txt"
