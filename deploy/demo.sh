#!/usr/bin/env bash
# make demo: a real mosquitto broker and a fleet of simulated sensor nodes
# with injected anomalies, plus a live count of what arrives. Ctrl-C stops
# everything. Later issues grow this into the whole system (agent + cloud +
# dashboard).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${DEMO_DEVICES:-300}
PORT=${DEMO_MQTT_PORT:-18830}
OUT=${DEMO_DIR:-$(mktemp -d /tmp/tributary-demo.XXXXXX)}
mkdir -p "$OUT"

cat > "$OUT/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
# mosquitto's stock limits (20 in flight, 1000 queued per session) silently
# drop messages for a subscriber that falls behind: lift them.
max_inflight_messages 0
max_queued_messages 0
CONF

pids=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "stopping..."
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "truth file (injected anomalies and faults): $OUT/truth.jsonl"
}
trap cleanup INT TERM EXIT

mosquitto -c "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

echo "broker:    tcp://127.0.0.1:$PORT (mosquitto)"
echo "devices:   $DEVICES simulated nodes (real firmware, simulated BME280 on I2C), 1 sample/s"
echo "watch:     mosquitto_sub -h 127.0.0.1 -p $PORT -t 'tributary/v1/devices/+/status' -v"
echo "Ctrl-C to stop."
echo

./bin/tributary-sim -broker "tcp://127.0.0.1:$PORT" -devices "$DEVICES" -rate 1 \
	-truth "$OUT/truth.jsonl" -anomaly-rate 6 -stats-every 5s &
pids+=($!)
wait "${pids[-1]}"
