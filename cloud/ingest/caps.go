package ingest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
	"github.com/tributary-iot/tributary/protocol"
)

// seriesCaps bounds the devices and series (device, metric) each gateway
// may send: MaxDevicesPerGateway and MaxSeriesPerGateway. A gateway's
// first devices and series are admitted until its caps; readings of any
// other are refused. What was admitted is kept in the ack log's file
// (bucket "series", one key per series, its value the day it was last
// sent), so a restart neither re-admits another device in the place of
// one that was flowing nor refuses one that was: which devices get
// through is stable. A series not sent for SeriesTTL stops counting
// (Expire), so decommissioned devices free their place. The state is
// bounded: at most MaxSeriesPerGateway series per gateway with a token.
type seriesCaps struct {
	maxDevices, maxSeries int
	path                  string
	db                    *bolt.DB

	mu    sync.Mutex
	gws   map[string]*gwSeries
	total atomic.Int64
}

// gwSeries is one gateway's admitted series.
type gwSeries struct {
	mu      sync.Mutex
	devices map[string]map[string]seen // device → metric → days
	series  int
}

// seen holds days since the Unix epoch: the last the series was sent,
// and the one stored in the file.
type seen struct{ day, saved uint32 }

var seriesBucket = []byte("series")

func seriesKey(gateway, device, metric string) []byte {
	b := make([]byte, 0, len(gateway)+len(device)+len(metric)+2)
	b = append(b, gateway...)
	b = append(b, 0) // ids never hold a NUL; the metric comes last
	b = append(b, device...)
	b = append(b, 0)
	return append(b, metric...)
}

func parseSeriesKey(k []byte) (gateway, device, metric string, ok bool) {
	gw, rest, ok1 := bytes.Cut(k, []byte{0})
	dev, name, ok2 := bytes.Cut(rest, []byte{0})
	if !ok1 || !ok2 || protocol.CheckDeviceID(string(gw)) != nil || protocol.CheckDeviceID(string(dev)) != nil || len(name) == 0 {
		return "", "", "", false
	}
	return string(gw), string(dev), string(name), true
}

// openSeriesCaps loads the admitted series from the ack log's file.
// Corrupt entries are skipped (and counted in the returned number).
func openSeriesCaps(acks *ackLog, maxDevices, maxSeries int) (*seriesCaps, int, error) {
	c := &seriesCaps{maxDevices: maxDevices, maxSeries: maxSeries, path: acks.path, db: acks.db, gws: map[string]*gwSeries{}}
	bad := 0
	err := c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(seriesBucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			gw, dev, name, ok := parseSeriesKey(k)
			day, n := binary.Uvarint(v)
			if !ok || n <= 0 || day > 1<<32-1 {
				bad++
				return nil
			}
			g := c.gateway(gw)
			ms := g.devices[dev]
			if ms == nil {
				ms = map[string]seen{}
				g.devices[dev] = ms
			}
			ms[name] = seen{uint32(day), uint32(day)}
			g.series++
			c.total.Add(1)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("ingest: ack log: series: %w", err)
	}
	return c, bad, nil
}

func (c *seriesCaps) gateway(gw string) *gwSeries {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gws[gw]
	if g == nil {
		g = &gwSeries{devices: map[string]map[string]seen{}}
		c.gws[gw] = g
	}
	return g
}

// count is the number of series admitted, over all gateways.
func (c *seriesCaps) count() int64 {
	if c == nil {
		return 0
	}
	return c.total.Load()
}

// admission is what admit decided about a batch's fresh readings.
type admission struct {
	refused        []uint64 // seqs, ascending
	byDevices      int      // readings refused by the device cap
	bySeries       int      // readings refused by the series cap
	refusedDevices []string // a few of the devices refused by the device cap, for the log
	added          [][]byte // keys of the series admitted now
}

// admit admits or refuses the readings at the fresh seqs of b, in seq
// order, and marks the known series as sent on day.
func (c *seriesCaps) admit(b *protocol.Batch, fresh spans, day uint32) admission {
	var a admission
	g := c.gateway(b.Gateway)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range fresh {
		for seq := s.lo; ; seq++ {
			r := &b.Readings[seq-b.FirstSeq]
			ms := g.devices[r.Device]
			if x, ok := ms[r.Name]; ok {
				if x.day != day {
					x.day = day
					ms[r.Name] = x
				}
			} else if ms == nil && len(g.devices) >= c.maxDevices {
				a.refused = append(a.refused, seq)
				a.byDevices++
				if len(a.refusedDevices) < 5 && !slices.Contains(a.refusedDevices, r.Device) {
					a.refusedDevices = append(a.refusedDevices, r.Device)
				}
			} else if g.series >= c.maxSeries {
				a.refused = append(a.refused, seq)
				a.bySeries++
			} else {
				if ms == nil {
					ms = map[string]seen{}
					g.devices[strings.Clone(r.Device)] = ms
				}
				ms[strings.Clone(r.Name)] = seen{day: day}
				g.series++
				c.total.Add(1)
				a.added = append(a.added, seriesKey(b.Gateway, r.Device, r.Name))
			}
			if seq == s.hi {
				break
			}
		}
	}
	return a
}

// save makes the series just admitted durable (their next save, if this
// one fails, is flush's).
func (c *seriesCaps) save(gateway string, keys [][]byte, day uint32) error {
	val := binary.AppendUvarint(nil, uint64(day))
	err := c.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(seriesBucket)
		for _, k := range keys {
			if err := b.Put(k, val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if boltfile.NoSpace(err) {
			return errNoSpace(c.path, err)
		}
		return fmt.Errorf("ingest: ack log: saving the series of gateway %s: %w", gateway, err)
	}
	g := c.gateway(gateway)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		_, dev, name, _ := parseSeriesKey(k)
		if ms := g.devices[dev]; ms != nil {
			if x, ok := ms[name]; ok {
				x.saved = day
				ms[name] = x
			}
		}
	}
	return nil
}

// flush stores the days series were last sent (at most one write per
// series per day) and forgets the series not sent since before oldest. It
// returns how many series it forgot.
func (c *seriesCaps) flush(oldest uint32) (int, error) {
	c.mu.Lock()
	gws := make(map[string]*gwSeries, len(c.gws))
	for id, g := range c.gws {
		gws[id] = g
	}
	c.mu.Unlock()
	type put struct {
		key []byte
		day uint32
	}
	var puts []put
	var dels [][]byte
	for id, g := range gws {
		g.mu.Lock()
		for dev, ms := range g.devices {
			for name, x := range ms {
				switch {
				case x.day < oldest:
					delete(ms, name)
					g.series--
					c.total.Add(-1)
					dels = append(dels, seriesKey(id, dev, name))
				case x.saved != x.day:
					puts = append(puts, put{seriesKey(id, dev, name), x.day})
					x.saved = x.day
					ms[name] = x
				}
			}
			if len(ms) == 0 {
				delete(g.devices, dev)
			}
		}
		g.mu.Unlock()
	}
	if len(puts) == 0 && len(dels) == 0 {
		return 0, nil
	}
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(seriesBucket)
		for _, p := range puts {
			if err := b.Put(p.key, binary.AppendUvarint(nil, uint64(p.day))); err != nil {
				return err
			}
		}
		for _, k := range dels {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return len(dels), fmt.Errorf("ingest: ack log: saving the series' last days: %w", err)
	}
	return len(dels), nil
}

func unixDay(t time.Time) uint32 { return uint32(t.Unix() / 86400) }

// applyCaps refuses the fresh readings of devices and series beyond the
// gateway's caps: they are left out of the write, acknowledged with the
// batch, counted in the answer (refused) and in capped_readings_total, and
// logged. Series admitted now are saved before anything is written.
func (op *storeOp) applyCaps() *httpError {
	in, b := op.in, op.b
	if op.fresh.count() == 0 {
		return nil
	}
	day := unixDay(in.opts.Now())
	a := in.caps.admit(b, op.fresh, day)
	if len(a.added) > 0 {
		if err := in.caps.save(b.Gateway, a.added, day); err != nil {
			op.log.Error("cannot write the ack log", "err", err)
			return &httpError{status: http.StatusServiceUnavailable, retryAfter: true, msg: err.Error()}
		}
	}
	if len(a.refused) == 0 {
		return nil
	}
	for _, s := range fromSeqs(a.refused) {
		op.fresh = op.fresh.remove(s.lo, s.hi)
	}
	op.again = intersectAll(op.st.pending, op.fresh)
	op.resp.Refused = len(a.refused)
	var why []string
	if a.byDevices > 0 {
		in.m.capped.WithLabelValues(b.Gateway, "devices").Add(float64(a.byDevices))
		why = append(why, fmt.Sprintf("%d readings of devices beyond the gateway's %d (ingest.max_devices_per_gateway), e.g. %s",
			a.byDevices, in.opts.MaxDevicesPerGateway, strings.Join(a.refusedDevices, ", ")))
	}
	if a.bySeries > 0 {
		in.m.capped.WithLabelValues(b.Gateway, "series").Add(float64(a.bySeries))
		why = append(why, fmt.Sprintf("%d readings of series beyond the gateway's %d (ingest.max_series_per_gateway)",
			a.bySeries, in.opts.MaxSeriesPerGateway))
	}
	op.resp.RefusedReason = "refused " + strings.Join(why, "; ") + ": they are acknowledged and not stored"
	if ok, n := in.capLog.Allow(b.Gateway); ok {
		op.log.Warn("readings refused: the gateway is at its device or series cap; raise the cap, or retire devices (their place frees after ingest.series_ttl)",
			"epoch", b.Epoch, "refused_devices", a.byDevices, "refused_series", a.bySeries, "devices", a.refusedDevices, "suppressed", n)
	}
	return nil
}
