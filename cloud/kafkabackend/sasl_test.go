package kafkabackend_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kafkabackend"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// TestSCRAM: with the broker's SCRAM-SHA-512 user the backend creates
// topics and writes; with a wrong password nothing is written and Put
// reports the entries as not written.
func TestSCRAM(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{SCRAM: "tributary:s3cret"})
	ok := newBackend(t, k, func(c *kafkabackend.Config) {
		c.SASL = kafkabackend.SASLConfig{Mechanism: kafkabackend.MechanismSCRAMSHA512, Username: "tributary", Password: "s3cret"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ok.EnsureTopics(ctx, "telemetry"); err != nil {
		t.Fatalf("EnsureTopics with the right password: %v", err)
	}
	es := entries(t, 5, 0)
	res, err := ok.Put(ctx, "telemetry", es)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("entry %d: %v", i, r.Err)
		}
	}

	bad := newBackend(t, k, func(c *kafkabackend.Config) {
		c.SASL = kafkabackend.SASLConfig{Mechanism: kafkabackend.MechanismSCRAMSHA512, Username: "tributary", Password: "wrong"}
	})
	if err := bad.EnsureTopics(ctx, "telemetry"); err == nil {
		t.Error("EnsureTopics with a wrong password: no error")
	}
	short, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	res, err = bad.Put(short, "telemetry", entries(t, 5, 100))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err == nil || errors.Is(r.Err, ingest.ErrOutcomeUnknown) {
			t.Errorf("entry %d with a wrong password: %v, want not written", i, r.Err)
		}
	}
	if n := countRecords(t, ok, "telemetry"); n != 5 {
		t.Errorf("%d records in the topic, want the 5 of the right password", n)
	}

	if _, err := kafkabackend.New(ctx, kafkabackend.Config{Brokers: []string{k.Addr},
		SASL: kafkabackend.SASLConfig{Mechanism: kafkabackend.MechanismSCRAMSHA512, Username: "u"}}); err == nil {
		t.Error("SCRAM without a password: no error")
	}
}
