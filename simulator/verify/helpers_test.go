package verify_test

import (
	"testing"
	"time"

	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/model"
	"github.com/tributary-iot/tributary/simulator/verify"
)

// t0 is the start of every hand-built run.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

var metrics = []string{"temperature", "humidity", "pressure"}

// sample returns the readings of device dev's k-th sample (one a second
// from t0 + 100ms, three metrics sharing the time).
func sample(dev string, k int) []protocol.Reading {
	tm := t0.Add(100*time.Millisecond + time.Duration(k)*time.Second).UnixMicro()
	rs := make([]protocol.Reading, len(metrics))
	for i, m := range metrics {
		rs[i] = protocol.Reading{Device: dev, Name: m, Unit: "Cel", Kind: protocol.KindFloat, Value: float64(k), Time: tm, Received: tm}
	}
	return rs
}

// record encodes readings of one device as a stream record arriving after
// delay past the first reading's time.
func record(t testing.TB, rs []protocol.Reading, delay time.Duration) *verify.Record {
	t.Helper()
	data, err := protocol.AppendRecord(nil, "gw-1", rs)
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMicro(rs[0].Time).Add(delay)
	return &verify.Record{PartitionKey: rs[0].Device, Data: data, Arrival: at, Read: at.Add(time.Second)}
}

// published is the truth line of a device that published n samples.
func published(dev string, n int) model.Event {
	return model.Event{Device: dev, Kind: model.KindPublished, Start: t0, End: t0.Add(time.Duration(n)*time.Second + time.Millisecond),
		Readings: uint64(n * len(metrics))}
}

func mustTruth(t testing.TB, events ...model.Event) *verify.Truth {
	t.Helper()
	tr, err := verify.NewTruth(events)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
