package intake

import (
	"fmt"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// fakeMsg records its Ack.
type fakeMsg struct {
	mqtt.Message
	id   uint64
	acks *[]uint64
}

func (m fakeMsg) Ack() { *m.acks = append(*m.acks, m.id) }

func TestFinishAcksInOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []uint64        // finish order
		never map[uint64]bool // finished without ack
		want  string
	}{
		{"in order", []uint64{0, 1, 2, 3}, nil, "[0 1 2 3]"},
		{"reversed", []uint64{3, 2, 1, 0}, nil, "[0 1 2 3]"},
		{"shuffled", []uint64{2, 0, 3, 1, 4}, nil, "[0 1 2 3 4]"},
		{"gap stops later acks", []uint64{0, 2, 1, 3}, map[uint64]bool{1: true}, "[0]"},
		{"gap first", []uint64{1, 2, 0}, map[uint64]bool{0: true}, "[]"},
		{"gap lowered later", []uint64{0, 1, 3, 4, 2}, map[uint64]bool{4: true, 2: true}, "[0 1]"},
	} {
		s := newSession()
		acks := []uint64{}
		for _, seq := range tc.order {
			if tc.never[seq] {
				s.finish(seq, nil)
			} else {
				s.finish(seq, fakeMsg{id: seq, acks: &acks})
			}
		}
		if got := fmt.Sprint(acks); got != tc.want {
			t.Errorf("%s: acks %s, want %s", tc.name, got, tc.want)
		}
		if len(s.done) != 0 && tc.never == nil {
			t.Errorf("%s: %d finished messages left waiting", tc.name, len(s.done))
		}
		if tc.never != nil && len(s.done) != 0 {
			t.Errorf("%s: %d messages kept after the stop", tc.name, len(s.done))
		}
	}
}
