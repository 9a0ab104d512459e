package node

import (
	"context"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tributary-iot/tributary/internal/backoff"
	"github.com/tributary-iot/tributary/protocol"
)

// flight is a pack handed to paho and its token.
type flight struct {
	p   *pack
	tok mqtt.Token
}

// sender is the state of the goroutine that runs Run: it connects, feeds
// packs from the queue to paho within the in-flight window, reaps their
// tokens in order and handles commands. Only that goroutine touches it.
type sender struct {
	n        *Node
	inflight []flight
	failed   []*pack // failed publishes, in order, waiting for the window to empty
	everUp   bool
}

func done(t mqtt.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// run connects and reconnects with jittered exponential backoff until ctx
// is done, then stops cleanly.
func (n *Node) run(ctx context.Context, samplerDone <-chan struct{}) {
	s := &sender{n: n}
	retry := backoff.Backoff{Initial: n.cfg.ReconnectBackoff, Max: n.cfg.MaxReconnectBackoff}
	wait := time.Duration(0)
	attempts := 0
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				s.stopOffline(samplerDone)
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			s.stopOffline(samplerDone)
			return
		}
		if err := s.connect(); err != nil {
			attempts++
			if ctx.Err() != nil {
				continue // stopping: the dial was aborted
			}
			if ok, suppressed := n.connLog.Allow(); ok {
				n.log.Warn("cannot connect to the broker; retrying", "broker", n.cfg.Broker,
					"err", err, "attempts", attempts, "suppressed", suppressed)
			}
			wait = retry.Next()
			continue
		}
		if s.everUp {
			n.stats.reconnects.Add(1)
		}
		s.everUp = true
		n.log.Info("connected", "broker", n.cfg.Broker, "attempts", attempts+1)
		attempts = 0
		n.connLog.Reset()
		if stop := s.session(ctx); stop {
			s.stop(samplerDone)
			return
		}
		retry.Reset()
		wait = retry.Next()
	}
}

// connect makes one connection attempt; paho bounds it by ConnectTimeout.
func (s *sender) connect() error {
	// A loss signal left over from the previous connection is stale.
	select {
	case <-s.n.lost:
	default:
	}
	tok := s.n.client.Connect()
	tok.Wait()
	return tok.Error()
}

// session runs one connection: birth, command subscription, then
// publishing until the connection is lost (false) or ctx is done (true).
func (s *sender) session(ctx context.Context) (stop bool) {
	n := s.n
	n.connected.Store(true)
	defer n.connected.Store(false)
	n.publishStatus(n.birth())
	sub := n.client.Subscribe(protocol.CommandFilter(n.cfg.Device), n.qos, n.onCommand)
	if !sub.WaitTimeout(n.cfg.ConnectTimeout) || sub.Error() != nil {
		n.log.Warn("cannot subscribe to commands", "filter", protocol.CommandFilter(n.cfg.Device), "err", sub.Error())
	}
	for {
		s.fill()
		var head <-chan struct{}
		if len(s.inflight) > 0 {
			head = s.inflight[0].tok.Done()
		}
		select {
		case <-ctx.Done():
			return true
		case <-n.notify:
		case <-head:
			if !s.reap() {
				return false
			}
		case <-n.lost:
			if !n.client.IsConnectionOpen() {
				s.abandon()
				n.log.Warn("connection to the broker lost; buffering", "buffered", n.Stats().Buffered)
				return false
			}
		case m := <-n.cmds:
			n.handleCommand(m)
		}
	}
}

// fill publishes queued packs while the window has room, the connection
// is open and no publish of this window failed.
func (s *sender) fill() {
	n := s.n
	for len(s.inflight) < n.cfg.MaxInflight && len(s.failed) == 0 && n.client.IsConnectionOpen() {
		p := n.queue.pop()
		if p == nil {
			return
		}
		tok := n.client.Publish(n.topic, n.qos, false, p.data)
		s.inflight = append(s.inflight, flight{p, tok})
		n.stats.inflight.Store(int64(len(s.inflight)))
	}
}

// reap takes completed publishes off the head of the window, in order.
// A failed one is kept, with every later one that fails, until the window
// is empty; then they go back to the front of the queue in order. reap
// returns false when the session must end: publishes failed and the
// connection is gone, or is reported open but does not work.
func (s *sender) reap() bool {
	n := s.n
	for len(s.inflight) > 0 && done(s.inflight[0].tok) {
		f := s.inflight[0]
		// Shift down rather than reslice, so that appends reuse the array.
		last := len(s.inflight) - 1
		copy(s.inflight, s.inflight[1:])
		s.inflight[last] = flight{}
		s.inflight = s.inflight[:last]
		if err := f.tok.Error(); err != nil {
			s.failed = append(s.failed, f.p)
			continue
		}
		n.stats.packs.Add(1)
		n.stats.readings.Add(uint64(f.p.readings))
		f.p.free()
	}
	n.stats.inflight.Store(int64(len(s.inflight)))
	if len(s.inflight) > 0 || len(s.failed) == 0 {
		return true
	}
	n.queue.pushFront(s.failed)
	clear(s.failed)
	s.failed = s.failed[:0]
	if n.client.IsConnectionOpen() {
		// Publishes fail on a connection paho still calls open (a write
		// timed out): start over on a new one.
		n.log.Warn("publishes failing on an open connection; reconnecting")
		n.client.Disconnect(0)
	}
	return false
}

// abandon ends the window of a lost connection: paho completes the tokens
// of a lost clean session with an error before it reports the loss, so
// this only waits in the unexpected case; whatever did not succeed goes
// back to the front of the queue.
func (s *sender) abandon() {
	n := s.n
	for _, f := range s.inflight {
		if f.tok.WaitTimeout(n.cfg.ConnectTimeout) && f.tok.Error() == nil {
			n.stats.packs.Add(1)
			n.stats.readings.Add(uint64(f.p.readings))
			f.p.free()
			continue
		}
		s.failed = append(s.failed, f.p) // not freed: paho may hold it
	}
	clear(s.inflight)
	s.inflight = s.inflight[:0]
	n.stats.inflight.Store(0)
	n.queue.pushFront(s.failed)
	clear(s.failed)
	s.failed = s.failed[:0]
}

// stop ends a connected node: wait for the sampler's last pack, flush the
// queue for at most DrainTimeout, publish the shutdown status and
// disconnect, so that the broker does not send the last will.
func (s *sender) stop(samplerDone <-chan struct{}) {
	n := s.n
	<-samplerDone
	timer := time.NewTimer(n.cfg.DrainTimeout)
	defer timer.Stop()
drain:
	for {
		s.fill()
		if len(s.inflight) == 0 {
			break // queue empty, or publishes failed and went back to it
		}
		select {
		case <-s.inflight[0].tok.Done():
			if !s.reap() {
				break drain
			}
		case <-n.lost:
			if !n.client.IsConnectionOpen() {
				break drain
			}
		case <-timer.C:
			break drain
		}
	}
	if n.client.IsConnectionOpen() {
		tok := n.publishStatus(n.offline())
		tok.WaitTimeout(min(n.cfg.ConnectTimeout, max(n.cfg.DrainTimeout, time.Second)))
		n.client.Disconnect(250)
	}
	s.abandon() // Disconnect completed every token: count the acked, requeue the rest
	s.countUnsent()
	n.log.Info("stopped", "published", n.stats.readings.Load(), "dropped", n.stats.dropped.Load(),
		"unsent", n.stats.unsent.Load())
}

// stopOffline ends a node that is not connected.
func (s *sender) stopOffline(samplerDone <-chan struct{}) {
	<-samplerDone
	s.countUnsent()
	s.n.log.Info("stopped while disconnected", "published", s.n.stats.readings.Load(),
		"dropped", s.n.stats.dropped.Load(), "unsent", s.n.stats.unsent.Load())
}

// countUnsent empties the queue into Stats.Unsent.
func (s *sender) countUnsent() {
	n := s.n
	var unsent uint64
	for p := n.queue.pop(); p != nil; p = n.queue.pop() {
		unsent += uint64(p.readings)
		p.free()
	}
	if unsent > 0 {
		n.stats.unsent.Add(unsent)
		n.log.Warn("readings not published before stop", "unsent", unsent)
	}
}
