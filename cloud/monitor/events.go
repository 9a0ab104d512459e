package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// writeTimeout bounds one write to an event client, so a client that
// stopped reading cannot hold its handler forever.
const writeTimeout = 10 * time.Second

// hub fans events out to the event clients. Sends never block: a client
// whose buffer is full is dropped (and counted), and its browser
// reconnects and starts over from the current state.
type hub struct {
	max, buf int
	n        atomic.Int64
	dropped  atomic.Uint64
	refused  atomic.Uint64

	mu  sync.Mutex
	set map[*client]struct{}
}

type client struct {
	device, metric string // subscribed series ("" metric: all of the device's; "" device: none)
	ch             chan []byte
	gone           chan struct{} // closed when the hub dropped the client
}

func newHub(max, buf int) *hub {
	return &hub{max: max, buf: buf, set: make(map[*client]struct{})}
}

func (h *hub) active() bool { return h.n.Load() > 0 }
func (h *hub) clients() int { return int(h.n.Load()) }

func (h *hub) join(device, metric string) (*client, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.set) >= h.max {
		h.refused.Add(1)
		return nil, false
	}
	c := &client{device: device, metric: metric, ch: make(chan []byte, h.buf), gone: make(chan struct{})}
	h.set[c] = struct{}{}
	h.n.Add(1)
	return c, true
}

func (h *hub) leave(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.set[c]; ok {
		delete(h.set, c)
		h.n.Add(-1)
	}
}

// send queues frame for c, or drops c if it is full. h.mu is held.
func (h *hub) send(c *client, frame []byte) {
	select {
	case c.ch <- frame:
	default:
		delete(h.set, c)
		h.n.Add(-1)
		close(c.gone)
		h.dropped.Add(1)
	}
}

func (h *hub) publishAlert(a AlertEntry) {
	if !h.active() {
		return
	}
	frame := eventFrame("alert", strconv.FormatUint(a.ID, 10), a)
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.set {
		h.send(c, frame)
	}
}

func (h *hub) publishPoints(s *pointSink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range s.groups {
		g := &s.groups[i]
		var frame []byte
		for c := range h.set {
			if c.device != g.Device || c.metric != "" && c.metric != g.Metric {
				continue
			}
			if frame == nil {
				frame = eventFrame("points", "", g)
			}
			h.send(c, frame)
		}
	}
}

// PointsEvent is the data of a "points" event: new points of one series,
// T in seconds since the epoch.
type PointsEvent struct {
	Device string    `json:"device"`
	Metric string    `json:"metric"`
	T      []float64 `json:"t"`
	V      []float64 `json:"v"`
}

// pointSink collects the points of one batch by series.
type pointSink struct {
	idx    map[[2]string]int
	groups []PointsEvent
}

func (s *pointSink) add(device, metric string, t int64, v float64) {
	k := [2]string{device, metric}
	i, ok := s.idx[k]
	if !ok {
		if s.idx == nil {
			s.idx = make(map[[2]string]int)
		}
		i = len(s.groups)
		s.idx[k] = i
		s.groups = append(s.groups, PointsEvent{Device: device, Metric: metric})
	}
	s.groups[i].T = append(s.groups[i].T, seconds(t))
	s.groups[i].V = append(s.groups[i].V, v)
}

func eventFrame(event, id string, data any) []byte {
	b, err := json.Marshal(data)
	if err != nil { // our own types: cannot happen
		b = []byte(strconv.Quote(err.Error()))
	}
	var f bytes.Buffer
	if id != "" {
		fmt.Fprintf(&f, "id: %s\n", id)
	}
	fmt.Fprintf(&f, "event: %s\ndata: %s\n\n", event, b)
	return f.Bytes()
}

// serveEvents is GET /api/v1/events.
func (m *Monitor) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	device, metric := q.Get("device"), q.Get("metric")
	if device != "" && !protocol.ValidDeviceID(device) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w: device %q is not a valid device id", ErrBadQuery, device))
		return
	}
	if metric != "" && (device == "" || !protocol.ValidName(metric)) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w: metric %q needs a device and a valid metric name", ErrBadQuery, metric))
		return
	}
	c, ok := m.hub.join(device, metric)
	if !ok {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("monitor: too many event clients (%d)", m.opt.MaxClients))
		return
	}
	defer m.hub.leave(c)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // not every writer supports it
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	var lastOv []byte
	overview := func() bool {
		ov := m.cachedOverview()
		ov.Time = time.Time{}
		b, _ := json.Marshal(ov)
		if bytes.Equal(b, lastOv) {
			return true
		}
		lastOv = b
		ov.Time = m.now()
		return write(eventFrame("overview", "", ov))
	}
	if !write([]byte("retry: 2000\n\n")) || !overview() {
		return
	}
	hb := time.NewTicker(m.opt.Heartbeat)
	defer hb.Stop()
	ovt := time.NewTicker(m.opt.OverviewEvery)
	defer ovt.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case f := <-c.ch:
			if !write(f) {
				return
			}
		case <-hb.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		case <-ovt.C:
			if !overview() {
				return
			}
		}
	}
}
