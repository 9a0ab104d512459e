package kafkabackend_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kafkabackend"
	"github.com/tributary-iot/tributary/protocol"
)

// TestPutScan: every entry is acknowledged with its partition and offset,
// a device's records are on one partition in order, and Scan reads back
// exactly the records of its time range.
func TestPutScan(t *testing.T) {
	k := startKafka(t)
	b := newBackend(t, k, nil)
	ctx := context.Background()
	if err := b.EnsureTopics(ctx, "telemetry", "alerts"); err != nil {
		t.Fatalf("EnsureTopics on existing topics: %v", err)
	}
	t0 := time.Now()
	first := entries(t, 20, 0)
	// A second record for dev-3 in the same Put: after the first.
	first = append(first, ingest.Entry{PartitionKey: "dev-3", Data: record(t, "gw-1", "dev-3", 100, 2)})
	res, err := b.Put(ctx, "", first)
	if err != nil {
		t.Fatal(err)
	}
	part := map[string]string{}
	var off3 []int64
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
		key := first[i].PartitionKey
		if p, ok := part[key]; ok && p != r.ShardID {
			t.Errorf("%s on partitions %s and %s", key, p, r.ShardID)
		}
		part[key] = r.ShardID
		if key == "dev-3" {
			o, _ := strconv.ParseInt(r.SequenceNumber, 10, 64)
			off3 = append(off3, o)
		}
	}
	if len(off3) != 2 || off3[1] <= off3[0] {
		t.Errorf("dev-3's offsets %v: want two, rising", off3)
	}
	mid := time.Now()
	time.Sleep(5 * time.Millisecond) // record timestamps are in ms: keep the ranges apart
	res, err = b.Put(ctx, "telemetry", entries(t, 5, 200))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("second put, entry %d: %v", i, r.Err)
		}
	}

	scan := func(from, to time.Time) map[string]int {
		got := map[string]int{}
		err := b.Scan(ctx, "telemetry", from, to, func(data []byte) error {
			rec, err := protocol.DecodeRecord(data)
			if err != nil {
				return err
			}
			got[rec.Device] += len(rec.Readings)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	all := scan(t0.Add(-time.Second), time.Now().Add(time.Second))
	if len(all) != 20 || all["dev-3"] != 3+2+3 || all["dev-19"] != 3 {
		t.Errorf("scan of everything: %v", all)
	}
	late := scan(mid.Add(time.Millisecond), time.Now().Add(time.Second))
	if len(late) != 5 || late["dev-0"] != 3 {
		t.Errorf("scan of the second put: %v, want dev-0..dev-4 with 3 readings each", late)
	}
	early := scan(t0.Add(-time.Second), mid.Add(time.Millisecond))
	if len(early) != 20 || early["dev-0"] != 3 || early["dev-3"] != 5 {
		t.Errorf("scan of the first put: %v", early)
	}
	if got := scan(time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)); len(got) != 0 {
		t.Errorf("scan of the future: %v", got)
	}
}

// TestInvalidEntries fail alone; the others are written.
func TestInvalidEntries(t *testing.T) {
	k := startKafka(t)
	b := newBackend(t, k, nil)
	es := []ingest.Entry{
		{PartitionKey: "", Data: []byte("x")},
		{PartitionKey: "dev-1", Data: make([]byte, kafkabackend.MaxRecordBytes)},
		{PartitionKey: "dev-2", Data: record(t, "gw", "dev-2", 0, 1)},
	}
	res, err := b.Put(context.Background(), "telemetry", es)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if !errors.Is(res[i].Err, kafkabackend.ErrInvalidEntry) {
			t.Errorf("entry %d: %v, want ErrInvalidEntry", i, res[i].Err)
		}
	}
	if res[2].Err != nil {
		t.Errorf("valid entry: %v", res[2].Err)
	}
	if _, err := b.Put(context.Background(), "no/such", es); err == nil {
		t.Error("Put to an invalid topic name: no error")
	}
}
