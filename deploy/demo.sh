#!/usr/bin/env bash
# make demo: the whole system on one machine, on embedded defaults:
#   tributary-sim (a few hundred simulated sensor nodes, injected anomalies)
#     → tributary-agent (embedded MQTT broker, bbolt queue, uplink)
#     → tributary-cloud (ingest, embedded shard store, Kinesis API,
#       monitor, anomaly detection, dashboard)
# Ctrl-C stops the fleet, drains the agent, checks the stream against the
# simulator's truth (tributary-sim verify), then stops the cloud.
#
# Environment: DEMO_DEVICES (300), DEMO_RATE (samples/s per device, 2),
# DEMO_ANOMALY_RATE (per device-hour, 6), DEMO_DIR (a new temp folder),
# DEMO_HTTP_PORT (8080: ingest), DEMO_ADMIN_PORT (8081: dashboard, API,
# /metrics), DEMO_KINESIS_PORT (4567), DEMO_MQTT_PORT (1883),
# DEMO_AGENT_PORT (8284). Every listener is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${DEMO_DEVICES:-300}
RATE=${DEMO_RATE:-2}
ANOMALIES=${DEMO_ANOMALY_RATE:-6}
HTTP=${DEMO_HTTP_PORT:-8080}
ADMIN=${DEMO_ADMIN_PORT:-8081}
KIN=${DEMO_KINESIS_PORT:-4567}
MQTT=${DEMO_MQTT_PORT:-1883}
AGENT=${DEMO_AGENT_PORT:-8284}
OUT=${DEMO_DIR:-$(mktemp -d /tmp/tributary-demo.XXXXXX)}
GW=demo-gw
mkdir -p "$OUT"

for port in "$HTTP" "$ADMIN" "$KIN" "$MQTT" "$AGENT"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "demo: port $port is in use; set DEMO_HTTP_PORT, DEMO_ADMIN_PORT, DEMO_KINESIS_PORT, DEMO_MQTT_PORT or DEMO_AGENT_PORT" >&2
		exit 1
	fi
done

# http_get PORT PATH: the body of a 200 answer from 127.0.0.1 (bash only,
# no curl needed).
http_get() {
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	local status
	IFS= read -r status <&3 || { exec 3>&-; return 1; }
	case "$status" in *" 200 "*) ;; *) exec 3>&-; return 1 ;; esac
	sed '1,/^\r\{0,1\}$/d' <&3
	exec 3>&-
}

wait_http() { # port path name log
	for _ in $(seq 300); do
		http_get "$1" "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "demo: $3 did not start; see $4" >&2
	tail -20 "$4" >&2
	exit 1
}

cloud_pid= agent_pid= sim_pid=
stop() { # pid: SIGTERM, wait
	[ -n "$1" ] && kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null || true
}
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "stopping the fleet..."
	stop "$sim_pid"
	echo "draining the agent..."
	stop "$agent_pid"
	if [ -n "$cloud_pid" ] && [ -s "$OUT/truth.jsonl" ]; then
		echo "checking the stream against the simulator's truth (tributary-sim verify)..."
		./bin/tributary-sim verify -truth "$OUT/truth.jsonl" -endpoint "http://127.0.0.1:$KIN" \
			-alerts-stream alerts -settle 2s -timeout 2m -progress 0 -show-devices 5 || true
	fi
	stop "$cloud_pid"
	echo "logs, data and the truth file: $OUT"
}
trap cleanup INT TERM EXIT

# The gateway's token goes to a file only its owner can read, never on a
# command line (ps shows those).
mkdir -p "$OUT/agent"
(umask 077 && ./bin/tributary-cloud -data "$OUT/cloud" token issue "$GW" 2>/dev/null >"$OUT/agent/token")
# Each process runs in its own session, so that Ctrl-C reaches only this
# script, which stops them in order (fleet, agent, verify, cloud).
setsid ./bin/tributary-cloud -data "$OUT/cloud" -listen "127.0.0.1:$HTTP" -admin-listen "127.0.0.1:$ADMIN" \
	-kinesis-listen "127.0.0.1:$KIN" >"$OUT/cloud.log" 2>&1 &
cloud_pid=$!
wait_http "$HTTP" /healthz tributary-cloud "$OUT/cloud.log"
wait_http "$ADMIN" /healthz "tributary-cloud's admin listener" "$OUT/cloud.log"

setsid ./bin/tributary-agent -data "$OUT/agent" -gateway "$GW" -cloud "http://127.0.0.1:$HTTP" -token-file "$OUT/agent/token" \
	-listen "127.0.0.1:$AGENT" -mqtt-listen "127.0.0.1:$MQTT" >"$OUT/agent.log" 2>&1 &
agent_pid=$!
wait_http "$AGENT" /healthz tributary-agent "$OUT/agent.log"

setsid ./bin/tributary-sim -broker "tcp://127.0.0.1:$MQTT" -devices "$DEVICES" -rate "$RATE" \
	-truth "$OUT/truth.jsonl" -summary "$OUT/summary.json" -anomaly-rate "$ANOMALIES" -stats-every 30s \
	>"$OUT/sim.log" 2>&1 &
sim_pid=$!

cat <<MSG

  Dashboard:     http://127.0.0.1:$ADMIN/
  JSON API:      http://127.0.0.1:$ADMIN/api/v1/overview   (cloud/monitor/API.md)
  Ingest API:    http://127.0.0.1:$HTTP/v1/ingest   (the gateway uploads here)
  Kinesis API:   http://127.0.0.1:$KIN   (stream telemetry, alerts)
  Gateway:       $GW, MQTT on 127.0.0.1:$MQTT, health on http://127.0.0.1:$AGENT/healthz
  Fleet:         $DEVICES simulated nodes, $RATE samples/s each, ~$ANOMALIES anomalies per device-hour
                 (the detectors learn for ~$((200 / RATE))s before they score)
  Logs:          $OUT/{cloud,agent,sim}.log

  Ctrl-C stops everything and checks that every reading arrived exactly once.

MSG

while kill -0 "$sim_pid" 2>/dev/null; do
	sleep 10
	http_get "$ADMIN" /api/v1/overview 2>/dev/null |
		sed -E 's/.*"devices":\{"total":([0-9]+),"online":([0-9]+).*"ingest_rate":([0-9.]+).*"anomalies_last_hour":([0-9]+).*/  devices online \2\/\1, ingest \3 readings\/s, anomalies last hour \4/' || true
done
