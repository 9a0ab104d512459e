package node

import "sync"

// pack is one encoded SenML-CBOR pack waiting to be published, or in
// flight. Packs are recycled through packPool once nothing refers to them.
type pack struct {
	data     []byte
	readings int
	first    int64 // time of the first reading, µs (for logs)
}

var packPool = sync.Pool{New: func() any { return &pack{data: make([]byte, 0, 256)} }}

func newPack() *pack { return packPool.Get().(*pack) }

// free returns p to the pool. Only call it when paho no longer holds the
// payload: after its publish completed successfully, or when it was never
// handed to paho (or handed to a connection that is gone).
func (p *pack) free() {
	if cap(p.data) > 64<<10 { // do not keep rare giants alive
		return
	}
	p.data, p.readings, p.first = p.data[:0], 0, 0
	packPool.Put(p)
}

// queue is the node's bounded FIFO of packs that are not yet published:
// the sampler pushes at the back, the sender pops at the front and puts
// failed publishes back at the front, in order. It holds at most limit
// readings (but always the newest pack); beyond that it drops the oldest
// packs and counts their readings. Safe for concurrent use.
type queue struct {
	mu       sync.Mutex
	ring     []*pack // circular; len(ring) is the capacity, a power of 2 or 0
	head, n  int
	readings int
	limit    int
	dropped  func(p *pack) // called with mu held, for every dropped pack
}

func newQueue(limit int, dropped func(p *pack)) *queue {
	return &queue{limit: limit, dropped: dropped}
}

func (q *queue) at(i int) int { return (q.head + i) & (len(q.ring) - 1) }

func (q *queue) grow() {
	if q.n < len(q.ring) {
		return
	}
	size := max(8, 2*len(q.ring))
	ring := make([]*pack, size)
	for i := 0; i < q.n; i++ {
		ring[i] = q.ring[q.at(i)]
	}
	q.ring, q.head = ring, 0
}

// push appends p and trims.
func (q *queue) push(p *pack) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.grow()
	q.ring[q.at(q.n)] = p
	q.n++
	q.readings += p.readings
	q.trim()
}

// pushFront puts ps back at the front, keeping their order, and trims (the
// oldest go first, so these are the first dropped).
func (q *queue) pushFront(ps []*pack) {
	if len(ps) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := len(ps) - 1; i >= 0; i-- {
		q.grow()
		q.head = (q.head - 1) & (len(q.ring) - 1)
		q.ring[q.head] = ps[i]
		q.n++
		q.readings += ps[i].readings
	}
	q.trim()
}

// trim drops the oldest packs while over the limit, keeping the newest.
func (q *queue) trim() {
	for q.readings > q.limit && q.n > 1 {
		p := q.popLocked()
		if q.dropped != nil {
			q.dropped(p)
		}
		p.free()
	}
}

// pop removes and returns the oldest pack, or nil.
func (q *queue) pop() *pack {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.popLocked()
}

func (q *queue) popLocked() *pack {
	if q.n == 0 {
		return nil
	}
	p := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = q.at(1)
	q.n--
	q.readings -= p.readings
	if len(q.ring) > 64 && q.n < len(q.ring)/4 { // give back what an outage grew
		ring := make([]*pack, len(q.ring)/2)
		for i := 0; i < q.n; i++ {
			ring[i] = q.ring[q.at(i)]
		}
		q.ring, q.head = ring, 0
	}
	return p
}

// len returns the packs and readings held.
func (q *queue) len() (packs, readings int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.readings
}
