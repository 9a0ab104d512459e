package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tributary-iot/tributary/protocol"
)

// Status states and reasons, the values of Status.State and Status.Reason.
const (
	StateOnline    = "online"
	StateOffline   = "offline"
	ReasonLost     = "lost"     // the last will: the broker lost the node's connection
	ReasonShutdown = "shutdown" // the node stopped cleanly
)

// Status is the JSON body of the retained message on
// protocol.StatusTopic(device): the birth message a node publishes on
// every connect and whenever an interval changes, its last will, or the
// message of a clean stop:
//
//	{"state":"online","time":"2026-11-25T10:00:00.000Z","firmware":"v1.2.0","interval_ms":1000,
//	 "sensors":[{"id":"room","kind":"bme280","interval_ms":1000,"metrics":["room.temperature",...]}]}
//	{"state":"offline","reason":"lost"}
//	{"state":"offline","reason":"shutdown","time":"2026-11-25T10:05:00.000Z"}
type Status struct {
	State      string         `json:"state"`
	Reason     string         `json:"reason,omitempty"`
	Time       string         `json:"time,omitempty"` // node clock, RFC 3339 UTC
	Firmware   string         `json:"firmware,omitempty"`
	IntervalMS int64          `json:"interval_ms,omitempty"` // the node's default interval
	Sensors    []SensorStatus `json:"sensors,omitempty"`
}

// SensorStatus describes one sensor in a birth message.
type SensorStatus struct {
	ID         string   `json:"id"` // the name commands use: Spec.Name, else Spec.Kind (#N when repeated)
	Kind       string   `json:"kind,omitempty"`
	Desc       string   `json:"desc"` // the sensor's String()
	IntervalMS int64    `json:"interval_ms"`
	Metrics    []string `json:"metrics,omitempty"`
}

// Commands a node obeys, the {name} of protocol.CommandTopic.
const (
	CommandInterval = "interval"
	CommandPing     = "ping"
)

// MaxCommandBytes bounds a command's payload.
const MaxCommandBytes = 4 << 10

// ReplyTopic returns tributary/v1/devices/{device}/reply/{command}, where
// a node publishes its Reply to a command (not retained). It is outside
// protocol.CommandFilter (cmd/+ matches one level) and is not a telemetry
// or status topic, so protocol.ParseTopic rejects it and gateways
// subscribed to telemetry never see replies.
func ReplyTopic(device, command string) string {
	return protocol.TopicPrefix + device + "/reply/" + command
}

// Reply is the JSON body a node publishes on ReplyTopic after a command.
//
//	cmd/ping      any payload, or {"id":"x"}
//	              -> {"ok":true,"command":"ping","id":"x","time":"...","uptime":"1m0s","stats":{...}}
//	cmd/interval  "5s", or {"interval":"5s","sensor":"room","id":"x"} (sensor optional: all sensors)
//	              -> {"ok":true,"command":"interval","interval":"5s","sensors":["room"]}
//	              -> {"ok":false,"command":"interval","error":"interval 1ms is outside 10ms..24h0m0s"}
type Reply struct {
	OK       bool     `json:"ok"`
	Command  string   `json:"command"`
	ID       string   `json:"id,omitempty"` // copied from the request
	Error    string   `json:"error,omitempty"`
	Time     string   `json:"time,omitempty"`
	Uptime   string   `json:"uptime,omitempty"`
	Interval string   `json:"interval,omitempty"`
	Sensors  []string `json:"sensors,omitempty"`
	Stats    *Stats   `json:"stats,omitempty"`
}

// IntervalCommand is the JSON form of a cmd/interval payload.
type IntervalCommand struct {
	Interval string `json:"interval"`
	Sensor   string `json:"sensor,omitempty"`
	ID       string `json:"id,omitempty"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types, which always marshal
	}
	return b
}

func (n *Node) now() string { return n.clock().UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func (n *Node) birth() Status {
	st := Status{State: StateOnline, Time: n.now(), Firmware: n.firmware, IntervalMS: n.cfg.Interval.Milliseconds()}
	for _, src := range n.sampler.sources {
		ss := SensorStatus{ID: src.id, Desc: src.desc, IntervalMS: time.Duration(src.interval.Load()).Milliseconds()}
		if src.spec != nil {
			ss.Kind, ss.Metrics = src.spec.Kind, src.spec.MetricNames()
		}
		st.Sensors = append(st.Sensors, ss)
	}
	return st
}

func (n *Node) offline() Status {
	return Status{State: StateOffline, Reason: ReasonShutdown, Time: n.now()}
}

// publishStatus publishes a retained status; the caller may wait on the
// token or not.
func (n *Node) publishStatus(st Status) mqtt.Token {
	return n.client.Publish(n.status, n.qos, true, mustJSON(st))
}

// onCommand runs on paho's router goroutine: it must not block, so it
// hands the message to the sender goroutine, or drops it when commands
// arrive faster than they are handled.
func (n *Node) onCommand(_ mqtt.Client, m mqtt.Message) {
	select {
	case n.cmds <- m:
	default:
		if ok, suppressed := n.cmdLog.Allow(); ok {
			n.log.Warn("command dropped: too many pending", "topic", m.Topic(), "suppressed", suppressed)
		}
	}
}

// handleCommand obeys one command and publishes the reply.
func (n *Node) handleCommand(m mqtt.Message) {
	t, err := protocol.ParseTopic(m.Topic())
	if err != nil || t.Kind != protocol.TopicCommand || t.Device != n.cfg.Device {
		n.log.Warn("ignoring message on an unexpected topic", "topic", m.Topic())
		return
	}
	r := n.command(t.Command, m.Payload())
	if !r.OK {
		n.log.Warn("command refused", "command", t.Command, "err", r.Error)
	} else {
		n.log.Info("command", "command", t.Command, "interval", r.Interval, "sensors", r.Sensors)
	}
	n.client.Publish(ReplyTopic(n.cfg.Device, t.Command), n.qos, false, mustJSON(r))
}

func (n *Node) command(name string, payload []byte) Reply {
	r := Reply{Command: name}
	fail := func(format string, a ...any) Reply {
		r.OK, r.Error = false, fmt.Sprintf(format, a...)
		return r
	}
	if len(payload) > MaxCommandBytes {
		return fail("payload is %d bytes, limit %d", len(payload), MaxCommandBytes)
	}
	payload = bytes.TrimSpace(payload)
	switch name {
	case CommandPing:
		var req struct {
			ID string `json:"id"`
		}
		if len(payload) > 0 && payload[0] == '{' {
			_ = json.Unmarshal(payload, &req) // the id is a courtesy
		}
		st := n.Stats()
		r.OK, r.ID, r.Time, r.Uptime, r.Stats = true, req.ID, n.now(), time.Since(n.started).Round(time.Millisecond).String(), &st
		return r
	case CommandInterval:
		req, d, err := parseInterval(payload)
		r.ID = req.ID
		if err != nil {
			return fail("%v", err)
		}
		var hit []*source
		for _, src := range n.sampler.sources {
			if req.Sensor == "" || req.Sensor == src.id {
				hit = append(hit, src)
			}
		}
		if len(hit) == 0 {
			ids := make([]string, len(n.sampler.sources))
			for i, src := range n.sampler.sources {
				ids[i] = src.id
			}
			return fail("no sensor %q: this node has %s", truncate(req.Sensor), strings.Join(ids, ", "))
		}
		for _, src := range hit {
			src.interval.Store(int64(d))
			r.Sensors = append(r.Sensors, src.id)
		}
		select {
		case n.sampler.wake <- struct{}{}:
		default:
		}
		n.publishStatus(n.birth()) // the retained status shows the new intervals
		r.OK, r.Interval = true, d.String()
		return r
	}
	return fail("unknown command %q: this node obeys %s and %s", name, CommandInterval, CommandPing)
}

// parseInterval decodes a cmd/interval payload: a duration ("5s"), a JSON
// string ("\"5s\"") or an IntervalCommand, and checks the bounds.
func parseInterval(payload []byte) (IntervalCommand, time.Duration, error) {
	var req IntervalCommand
	payload = bytes.TrimSpace(payload)
	switch {
	case len(payload) > MaxCommandBytes:
		return req, 0, fmt.Errorf("payload is %d bytes, limit %d", len(payload), MaxCommandBytes)
	case len(payload) == 0:
		return req, 0, errors.New(`payload is empty: send a duration such as "5s", or {"interval":"5s","sensor":"name"}`)
	case payload[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return req, 0, fmt.Errorf(`payload is not {"interval":"5s","sensor":"name"}: %w`, err)
		}
		if dec.More() {
			return req, 0, errors.New(`payload has more after the JSON object`)
		}
	case payload[0] == '"':
		if err := json.Unmarshal(payload, &req.Interval); err != nil {
			return req, 0, fmt.Errorf("payload is not a JSON string: %w", err)
		}
	default:
		req.Interval = string(payload)
	}
	d, err := time.ParseDuration(req.Interval)
	if err != nil {
		return req, 0, fmt.Errorf(`interval %q is not a duration such as "500ms" or "5s"`, truncate(req.Interval))
	}
	if d < MinInterval || d > MaxInterval {
		return req, 0, fmt.Errorf("interval %s is outside %s..%s", d, MinInterval, MaxInterval)
	}
	return req, d, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
