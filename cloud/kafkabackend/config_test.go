package kafkabackend_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-iot/tributary/cloud/kafkabackend"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  kafkabackend.Config
		want string
	}{
		{kafkabackend.Config{}, "no brokers"},
		{kafkabackend.Config{Brokers: []string{"kafka"}}, `broker "kafka" is not host:port`},
		{kafkabackend.Config{Brokers: []string{"k:9092"}, Topic: "a/b"}, `topic "a/b"`},
		{kafkabackend.Config{Brokers: []string{"k:9092"}, Partitions: -1}, "Partitions -1"},
		{kafkabackend.Config{Brokers: []string{"k:9092"}, SASL: kafkabackend.SASLConfig{Mechanism: "plain"}}, `mechanism "plain"`},
		{kafkabackend.Config{Brokers: []string{"k:9092"}, SASL: kafkabackend.SASLConfig{Mechanism: "scram-sha-512", Username: "u"}}, "needs a username and a password"},
		{kafkabackend.Config{Brokers: []string{"k:9092"}, SASL: kafkabackend.SASLConfig{Mechanism: "aws-msk-iam", Password: "p"}}, "AWS credential chain"},
		{kafkabackend.Config{Brokers: []string{"k:9092"}, PutTimeout: -time.Second}, "PutTimeout is negative"},
		{kafkabackend.Config{Brokers: []string{"k:9092"}, MaxBufferedRecords: -1}, "MaxBufferedRecords -1"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
	if err := (kafkabackend.Config{Brokers: []string{"k:9092"}, Topic: "telemetry"}).Validate(); err != nil {
		t.Errorf("a minimal config: %v", err)
	}
}

// TestEnsureTopics creates what is missing with the configured partitions
// and reports, without changing it, a topic with another count.
func TestEnsureTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "old"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	b, err := kafkabackend.New(ctx, kafkabackend.Config{Brokers: c.ListenAddrs(), Partitions: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.EnsureTopics(ctx, "new", "old")
	if !errors.Is(err, kafkabackend.ErrPartitionMismatch) || !strings.Contains(err.Error(), "old has 2 partitions") {
		t.Errorf("EnsureTopics: %v, want ErrPartitionMismatch for old", err)
	}
	if err := b.EnsureTopics(ctx, "new"); err != nil {
		t.Errorf("EnsureTopics of the created topic: %v", err)
	}
	if err := b.EnsureTopics(ctx, ".."); err == nil {
		t.Error("EnsureTopics of an invalid name: no error")
	}
}

// TestMSKIAM: with aws-msk-iam the client authenticates with the
// AWS_MSK_IAM mechanism, signing kafka-cluster:Connect with the default
// credential chain (here the environment's keys). The broker's side is
// played by controls on an in-process kfake, which has no such mechanism.
func TestMSKIAM(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDMSKTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "telemetry"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var mech string
	var auth map[string]string
	c.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLHandshakeRequest)
		mu.Lock()
		mech = r.Mechanism
		mu.Unlock()
		resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{"AWS_MSK_IAM"}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLAuthenticateRequest)
		mu.Lock()
		_ = json.Unmarshal(r.SASLAuthBytes, &auth)
		mu.Unlock()
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.SASLAuthBytes = []byte(`{"version":"2020_10_22","request-id":"test"}`)
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := kafkabackend.New(ctx, kafkabackend.Config{Brokers: c.ListenAddrs(), Topic: "telemetry",
		SASL: kafkabackend.SASLConfig{Mechanism: kafkabackend.MechanismAWSMSKIAM}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.EnsureTopics(ctx, "telemetry"); err != nil && !errors.Is(err, kafkabackend.ErrPartitionMismatch) {
		t.Fatalf("EnsureTopics through AWS_MSK_IAM: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if mech != "AWS_MSK_IAM" {
		t.Errorf("SASL mechanism %q, want AWS_MSK_IAM", mech)
	}
	if auth["action"] != "kafka-cluster:Connect" || !strings.HasPrefix(auth["x-amz-credential"], "AKIDMSKTEST/") ||
		!strings.Contains(auth["x-amz-credential"], "/eu-west-1/kafka-cluster/aws4_request") || auth["x-amz-signature"] == "" {
		t.Errorf("AWS_MSK_IAM payload %v: want kafka-cluster:Connect signed with the environment's key for eu-west-1", auth)
	}
}
