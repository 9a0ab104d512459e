package intake

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"
)

// Device is what the last status message of a device said.
type Device struct {
	ID    string
	State string    // "online", "offline" or "unknown" (unparsable status)
	Since time.Time // when that status arrived
}

// maxStatusBytes bounds the status payloads parsed.
const maxStatusBytes = 16 << 10

// parseState reads {"state": "online"|"offline", ...}.
func parseState(payload []byte) string {
	if len(payload) == 0 || len(payload) > maxStatusBytes {
		return "unknown"
	}
	var st struct {
		State string `json:"state"`
	}
	if json.Unmarshal(payload, &st) != nil {
		return "unknown"
	}
	switch s := strings.ToLower(st.State); s {
	case "online", "offline":
		return s
	}
	return "unknown"
}

// devices is a bounded table of device states: when full, a new device
// evicts the one whose status is oldest.
type devices struct {
	max int
	mu  sync.Mutex
	m   map[string]Device
}

func newDevices(max int) *devices { return &devices{max: max, m: make(map[string]Device)} }

func (d *devices) set(id, state string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[id]; !ok && len(d.m) >= d.max {
		var oldest string
		var t time.Time
		for k, v := range d.m {
			if oldest == "" || v.Since.Before(t) {
				oldest, t = k, v.Since
			}
		}
		delete(d.m, oldest)
	}
	d.m[id] = Device{ID: id, State: state, Since: at}
}

func (d *devices) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}

func (d *devices) list() []Device {
	d.mu.Lock()
	out := make([]Device, 0, len(d.m))
	for _, v := range d.m {
		out = append(out, v)
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
	return out
}
