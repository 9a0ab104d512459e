#!/usr/bin/env bash
# scale.sh BIN [DEVICES] [DURATION] — the simulator at fleet scale.
#
# Starts its own mosquitto (limits lifted, max_connections -1, on a free
# 127.0.0.1 port), runs `BIN -devices DEVICES -rate 1 -duration DURATION`
# against it and reports: devices, achieved readings/s and messages/s, the
# simulator's CPU (cores = (user+sys) / wall) and peak RSS, and the
# broker's CPU over the same run as the baseline. Needs only bash, procfs
# and mosquitto (`make deps`). Extra simulator flags: SIM_FLAGS="...".
#
# Target (simulator/README.md): 10,000 devices at 1 sample/s under 1 core
# and 1 GiB RSS for the simulator on a 2-core machine.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 3 ]]; then
	echo "usage: $0 BIN [DEVICES=10000] [DURATION=60s]" >&2
	exit 2
fi
BIN=$1
DEVICES=${2:-10000}
DURATION=${3:-60s}
[[ -x $BIN ]] || { echo "scale.sh: $BIN is not an executable (run make build)" >&2; exit 2; }

MOSQUITTO=$(command -v mosquitto || true)
for p in /usr/sbin/mosquitto /usr/local/sbin/mosquitto; do
	[[ -z $MOSQUITTO && -x $p ]] && MOSQUITTO=$p
done
[[ -n $MOSQUITTO ]] || { echo "scale.sh: mosquitto is not installed (run make deps)" >&2; exit 2; }

# Both processes hold one descriptor per device.
ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < DEVICES + 100 )); then
	echo "scale.sh: open-file limit $(ulimit -n) is too low for $DEVICES devices (raise ulimit -Hn)" >&2
	exit 2
fi

WORK=$(mktemp -d)
MPID=
cleanup() {
	[[ -n $MPID ]] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# start_broker: mosquitto on a free port below the ephemeral range.
for attempt in 1 2 3 4 5 6 7 8; do
	PORT=$((20000 + RANDOM % 10000))
	if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then continue; fi
	cat >"$WORK/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_connections -1
max_queued_messages 0
max_inflight_messages 0
max_queued_bytes 0
log_dest stderr
log_type error
log_type warning
EOF
	"$MOSQUITTO" -c "$WORK/mosquitto.conf" 2>"$WORK/mosquitto.log" &
	MPID=$!
	for _ in $(seq 50); do
		if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then break 2; fi
		kill -0 "$MPID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$MPID" 2>/dev/null || true
	wait "$MPID" 2>/dev/null || true
	MPID=
done
[[ -n $MPID ]] || { echo "scale.sh: mosquitto did not start:" >&2; cat "$WORK/mosquitto.log" >&2; exit 1; }

TICK=$(getconf CLK_TCK)
# cpu_ticks PID: user+system time of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
now() { date +%s.%N; }

M0=$(cpu_ticks "$MPID")
T0=$(now)
# The simulator reports its own rusage (user, system, peak RSS) in the
# summary, measured at its exit; its progress lines go to sim.log.
set +e
"$BIN" -broker "tcp://127.0.0.1:$PORT" -devices "$DEVICES" -rate 1 -duration "$DURATION" \
	-summary "$WORK/summary.json" -stats-every 10s ${SIM_FLAGS:-} 2>&1 | tee "$WORK/sim.log" >&2
RC=${PIPESTATUS[0]}
set -e
T1=$(now)
M1=$(cpu_ticks "$MPID")
[[ -n ${SIM_SUMMARY:-} && -s $WORK/summary.json ]] && cp "$WORK/summary.json" "$SIM_SUMMARY"
if [[ $RC -ne 0 || ! -s $WORK/summary.json ]]; then
	echo "scale.sh: $BIN failed (exit $RC)" >&2
	exit 1
fi

# The steady state: the last progress line before the stop (the run's
# average includes the connection ramp at the start).
STEADY=$(grep 'msg=progress' "$WORK/sim.log" | grep 'stopping=false' | tail -1 || true)
steady() { echo "$STEADY" | grep -o "$1=[0-9.]*" | cut -d= -f2; }

# field NAME: a number from the flat JSON summary.
field() { grep -o "\"$1\": *[-0-9.e+]*" "$WORK/summary.json" | head -1 | cut -d: -f2 | tr -d " "; }

awk -v dev="$DEVICES" -v dur="$DURATION" -v t0="$T0" -v t1="$T1" -v bin="$BIN" \
	-v secs="$(field run_seconds)" -v readings="$(field readings_published)" -v packs="$(field packs_published)" \
	-v connected="$(field max_connected)" -v dropped="$(field dropped)" -v unsent="$(field unsent)" \
	-v samples="$(field samples)" -v missed="$(field missed_ticks)" -v senseerr="$(field sense_errors)" \
	-v user="$(field cpu_user_seconds)" -v sys="$(field cpu_system_seconds)" -v rss="$(field max_rss_bytes)" \
	-v sr="$(steady readings_per_s)" -v sm="$(steady messages_per_s)" \
	-v mcpu="$(( M1 - M0 ))" -v tick="$TICK" '
BEGIN {
	wall = t1 - t0
	simcpu = user + sys
	printf "scale: %d devices at 1 sample/s for %s (simulator %s, mosquitto baseline in the same run)\n", dev, dur, bin
	printf "  devices connected (max)  %d\n", connected
	printf "  readings/s (run average) %.0f  (%d readings acked in %.1f s, connection ramp included)\n", readings / secs, readings, secs
	printf "  messages/s (run average) %.0f  (%d packs acked)\n", packs / secs, packs
	if (sr != "") printf "  steady state             %.0f readings/s, %.0f messages/s (last progress line)\n", sr, sm
	printf "  samples                  %d  (%d ticks missed, %d sense errors)\n", samples, missed, senseerr
	printf "  dropped, unsent          %d, %d\n", dropped, unsent
	printf "  simulator CPU            %.2f cores  (%.1f s user+sys over %.1f s wall)\n", simcpu / wall, simcpu, wall
	printf "  simulator peak RSS       %.0f MiB\n", rss / 1048576
	printf "  mosquitto CPU (baseline) %.2f cores  (%.1f s)\n", mcpu / tick / wall, mcpu / tick
	printf "  simulator / mosquitto    %.2f x CPU\n", (mcpu > 0 ? simcpu / (mcpu / tick) : 0)
}'
