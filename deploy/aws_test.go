package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// get returns the value of key in a YAML mapping node (nil if absent).
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// at follows keys through nested mappings.
func at(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = get(n, k)
	}
	return n
}

// tagged reports whether n is the short-form intrinsic tag (e.g. !GetAtt)
// with the scalar value.
func tagged(n *yaml.Node, tag, value string) bool {
	return n != nil && n.Tag == tag && n.Kind == yaml.ScalarNode && n.Value == value
}

// strs returns a scalar or a sequence of scalars as strings.
func strs(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, c.Value)
	}
	return out
}

// kinesisCalls finds the Kinesis API operations the cloud code calls
// through the SDK: every call needs its kinesis.<Op>Input. The embedded
// store's own API server (kinesisapi) and shardstore serve Kinesis rather
// than call it, so they are left out.
func kinesisCalls(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`\bkinesis\.([A-Z][A-Za-z]+)Input\b`)
	seen := map[string]bool{}
	for _, f := range goFiles(t, "cloud") {
		if strings.Contains(f, "/kinesisapi/") || strings.Contains(f, "/shardstore/") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			seen["kinesis:"+m[1]] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestCloudFormation checks deploy/aws/tributary-streams.yaml: two
// KMS-encrypted streams named like the cloud's defaults, with mode, shard
// count and retention parameters; a managed policy that allows exactly
// the Kinesis calls the cloud code makes, on those two streams only, plus
// the stream key through Kinesis; and the outputs.
func TestCloudFormation(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(readText(t, "deploy/aws/tributary-streams.yaml")), &doc); err != nil {
		t.Fatal(err)
	}
	top := doc.Content[0]
	if v := get(top, "AWSTemplateFormatVersion"); v == nil || v.Value != "2010-09-09" {
		t.Errorf("AWSTemplateFormatVersion: %v", v)
	}
	params := get(top, "Parameters")
	for name, def := range map[string]string{"TelemetryStreamName": "telemetry", "AlertsStreamName": "alerts",
		"StreamMode": "ON_DEMAND", "ShardCount": "4", "RetentionHours": "24"} {
		if d := at(params, name, "Default"); d == nil || d.Value != def {
			t.Errorf("parameter %s: default %v, want %s", name, d, def)
		}
	}

	res := get(top, "Resources")
	streams := map[string]string{"TelemetryStream": "TelemetryStreamName", "AlertsStream": "AlertsStreamName"}
	for id, nameParam := range streams {
		r := get(res, id)
		if v := get(r, "Type"); v == nil || v.Value != "AWS::Kinesis::Stream" {
			t.Errorf("%s: Type %v, want AWS::Kinesis::Stream", id, v)
			continue
		}
		p := get(r, "Properties")
		if !tagged(get(p, "Name"), "!Ref", nameParam) {
			t.Errorf("%s: Name is not !Ref %s", id, nameParam)
		}
		if !tagged(get(p, "RetentionPeriodHours"), "!Ref", "RetentionHours") {
			t.Errorf("%s: RetentionPeriodHours is not !Ref RetentionHours", id)
		}
		if !tagged(at(p, "StreamModeDetails", "StreamMode"), "!Ref", "StreamMode") {
			t.Errorf("%s: StreamModeDetails.StreamMode is not !Ref StreamMode", id)
		}
		if sc := get(p, "ShardCount"); sc == nil || sc.Tag != "!If" {
			t.Errorf("%s: ShardCount should be !If [Provisioned, ...] (ON_DEMAND takes none)", id)
		}
		enc := get(p, "StreamEncryption")
		if get(enc, "EncryptionType").Value != "KMS" || get(enc, "KeyId").Value != "alias/aws/kinesis" {
			t.Errorf("%s: StreamEncryption %v/%v, want KMS with alias/aws/kinesis", id, get(enc, "EncryptionType").Value, get(enc, "KeyId").Value)
		}
	}
	if sc := at(res, "TelemetryStream", "Properties", "ShardCount"); sc != nil && len(sc.Content) == 3 && !tagged(sc.Content[1], "!Ref", "ShardCount") {
		t.Errorf("TelemetryStream ShardCount does not use the ShardCount parameter")
	}

	// The policy.
	pol := get(res, "CloudPolicy")
	if v := get(pol, "Type"); v == nil || v.Value != "AWS::IAM::ManagedPolicy" {
		t.Fatalf("CloudPolicy: Type %v, want AWS::IAM::ManagedPolicy", v)
	}
	var kinesisActions, kmsActions []string
	for _, s := range at(pol, "Properties", "PolicyDocument", "Statement").Content {
		if get(s, "Effect").Value != "Allow" {
			t.Errorf("statement %s: Effect %s", get(s, "Sid").Value, get(s, "Effect").Value)
		}
		actions := strs(get(s, "Action"))
		resources := get(s, "Resource")
		for _, a := range actions {
			if strings.Contains(a, "*") {
				t.Errorf("action %s: no wildcards", a)
			}
			switch {
			case strings.HasPrefix(a, "kinesis:"):
				kinesisActions = append(kinesisActions, a)
				// Only the two streams.
				if resources == nil || resources.Kind != yaml.SequenceNode || len(resources.Content) != 2 ||
					!tagged(resources.Content[0], "!GetAtt", "TelemetryStream.Arn") || !tagged(resources.Content[1], "!GetAtt", "AlertsStream.Arn") {
					t.Errorf("%s: Resource should be exactly [!GetAtt TelemetryStream.Arn, !GetAtt AlertsStream.Arn]", a)
				}
			case strings.HasPrefix(a, "kms:"):
				kmsActions = append(kmsActions, a)
				if resources == nil || resources.Tag != "!Sub" || !strings.Contains(resources.Value, ":kms:") {
					t.Errorf("%s: Resource should be the region's KMS keys (!Sub arn:...:kms:...)", a)
				}
				if v := at(s, "Condition", "StringEquals", "kms:ViaService"); v == nil || !strings.HasPrefix(v.Value, "kinesis.") {
					t.Errorf("%s: want Condition StringEquals kms:ViaService kinesis.REGION.amazonaws.com", a)
				}
			default:
				t.Errorf("action %s: neither kinesis nor kms", a)
			}
		}
	}
	slices.Sort(kinesisActions)
	used := kinesisCalls(t)
	if len(used) == 0 {
		t.Fatal("found no kinesis.<Op>Input in cloud/: the scan is broken")
	}
	if !slices.Equal(kinesisActions, used) {
		t.Errorf("the policy allows %v; the cloud code calls %v: allow exactly those", kinesisActions, used)
	}
	for _, a := range kmsActions {
		if a != "kms:GenerateDataKey" && a != "kms:Decrypt" {
			t.Errorf("%s: the stream key needs only kms:GenerateDataKey (write) and kms:Decrypt (read)", a)
		}
	}
	t.Logf("the cloud calls %v; the policy allows them and %v", used, kmsActions)

	out := get(top, "Outputs")
	for name, ok := range map[string]func(*yaml.Node) bool{
		"TelemetryStreamArn": func(n *yaml.Node) bool { return tagged(n, "!GetAtt", "TelemetryStream.Arn") },
		"AlertsStreamArn":    func(n *yaml.Node) bool { return tagged(n, "!GetAtt", "AlertsStream.Arn") },
		"CloudPolicyArn":     func(n *yaml.Node) bool { return tagged(n, "!Ref", "CloudPolicy") },
	} {
		if !ok(at(out, name, "Value")) {
			t.Errorf("output %s: wrong or missing Value", name)
		}
	}
}
