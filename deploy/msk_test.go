package deploy_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.yaml.in/yaml/v3"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kafkabackend"
)

// mskActions maps the Kafka APIs a client sends to the MSK IAM actions
// that authorize them ("IAM access control" in the Amazon MSK developer
// guide: Connect for every request, DescribeTopic for Metadata and
// ListOffsets, WriteData for Produce, WriteDataIdempotently for
// InitProducerId without a transactional id, ReadData for Fetch,
// CreateTopic for CreateTopics). An API the code starts to send that is not
// here fails the test: look its action up and add both.
var mskActions = map[kmsg.Key][]string{
	kmsg.ApiVersions:      {"kafka-cluster:Connect"},
	kmsg.SASLHandshake:    {"kafka-cluster:Connect"},
	kmsg.SASLAuthenticate: {"kafka-cluster:Connect"},
	kmsg.Metadata:         {"kafka-cluster:Connect", "kafka-cluster:DescribeTopic"},
	kmsg.ListOffsets:      {"kafka-cluster:Connect", "kafka-cluster:DescribeTopic"},
	kmsg.CreateTopics:     {"kafka-cluster:Connect", "kafka-cluster:CreateTopic"},
	kmsg.InitProducerID:   {"kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"},
	kmsg.Produce:          {"kafka-cluster:Connect", "kafka-cluster:WriteData"},
	kmsg.Fetch:            {"kafka-cluster:Connect", "kafka-cluster:ReadData"},
}

// kafkaCalls runs what tributary-cloud does with the kafka backend (create
// the topics, write, read the crash window back) against an in-process
// Kafka-protocol broker and returns the Kafka APIs it sent.
func kafkaCalls(t *testing.T) []kmsg.Key {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	seen := map[kmsg.Key]bool{}
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		seen[kmsg.Key(req.Key())] = true
		mu.Unlock()
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := kafkabackend.New(ctx, kafkabackend.Config{Brokers: c.ListenAddrs(), Topic: "telemetry"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.EnsureTopics(ctx, "telemetry", "alerts"); err != nil {
		t.Fatal(err)
	}
	from := time.Now().Add(-time.Second)
	res, err := b.Put(ctx, "telemetry", []ingest.Entry{{PartitionKey: "dev-1", Data: []byte("x")}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("put: %v %v", err, res)
	}
	n := 0
	if err := b.Scan(ctx, "telemetry", from, time.Now().Add(time.Second), func([]byte) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("scan: %d records, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	var keys []kmsg.Key
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestMSKTemplate checks deploy/aws/tributary-msk.yaml: a serverless and a
// provisioned cluster (one of them by condition), both with IAM
// authentication over TLS; the provisioned one's topic defaults; and a
// managed policy that allows exactly the MSK IAM actions of the Kafka APIs
// the cloud code sends, on the cluster and the two topics only.
func TestMSKTemplate(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(readText(t, "deploy/aws/tributary-msk.yaml")), &doc); err != nil {
		t.Fatal(err)
	}
	top := doc.Content[0]
	res := get(top, "Resources")
	for id, typ := range map[string]string{"ServerlessCluster": "AWS::MSK::ServerlessCluster", "ProvisionedCluster": "AWS::MSK::Cluster"} {
		r := get(res, id)
		if v := get(r, "Type"); v == nil || v.Value != typ {
			t.Errorf("%s: Type %v, want %s", id, v, typ)
		}
		if v := at(r, "Properties", "ClientAuthentication", "Sasl", "Iam", "Enabled"); v == nil || v.Value != "true" {
			t.Errorf("%s: IAM authentication not enabled", id)
		}
	}
	if v := at(res, "ProvisionedCluster", "Properties", "EncryptionInfo", "EncryptionInTransit", "ClientBroker"); v == nil || v.Value != "TLS" {
		t.Error("ProvisionedCluster: client-broker traffic must be TLS")
	}
	props := at(res, "BrokerConfiguration", "Properties", "ServerProperties")
	for _, want := range []string{"auto.create.topics.enable=false", "default.replication.factor=3", "min.insync.replicas=2", "unclean.leader.election.enable=false"} {
		if props == nil || !strings.Contains(props.Value, want) {
			t.Errorf("BrokerConfiguration: ServerProperties lacks %s", want)
		}
	}

	want := map[string]bool{}
	calls := kafkaCalls(t)
	for _, k := range calls {
		acts, ok := mskActions[k]
		if !ok {
			t.Errorf("the cloud code sends %s, whose MSK IAM action is not in mskActions", kmsg.NameForKey(int16(k)))
		}
		for _, a := range acts {
			want[a] = true
		}
	}
	pol := get(res, "CloudPolicy")
	var allowed []string
	for _, s := range at(pol, "Properties", "PolicyDocument", "Statement").Content {
		if get(s, "Effect").Value != "Allow" {
			t.Errorf("statement %s: Effect %s", get(s, "Sid").Value, get(s, "Effect").Value)
		}
		r := get(s, "Resource")
		for _, a := range strs(get(s, "Action")) {
			allowed = append(allowed, a)
			switch a {
			case "kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently":
				if r == nil || r.Tag != "!If" || len(r.Content) != 3 || !tagged(r.Content[1], "!GetAtt", "ServerlessCluster.Arn") || !tagged(r.Content[2], "!GetAtt", "ProvisionedCluster.Arn") {
					t.Errorf("%s: Resource should be the cluster's ARN only", a)
				}
			default:
				topics := strs(r)
				if len(topics) != 2 || r.Content[0].Tag != "!Sub" || !strings.HasSuffix(topics[0], ":topic/${ClusterName}/*/${TelemetryTopicName}") ||
					!strings.HasSuffix(topics[1], ":topic/${ClusterName}/*/${AlertsTopicName}") {
					t.Errorf("%s: Resource should be exactly the two topics of the cluster, got %v", a, topics)
				}
			}
		}
	}
	var needed []string
	for a := range want {
		needed = append(needed, a)
	}
	slices.Sort(needed)
	slices.Sort(allowed)
	if !slices.Equal(allowed, needed) {
		t.Errorf("the policy allows %v; the cloud code's Kafka calls need %v: allow exactly those", allowed, needed)
	}
	names := make([]string, len(calls))
	for i, k := range calls {
		names[i] = kmsg.NameForKey(int16(k))
	}
	t.Logf("the cloud sends %v; the policy allows %v", names, allowed)
}
