package protocol_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/protocol"
)

func TestValidDeviceID(t *testing.T) {
	good := []string{"a", "node-1", "A.b_c:d-e", "0", strings.Repeat("x", 128), "urn:dev:ow:10e2"}
	bad := []string{"", "-a", ".a", "a/b", "a+b", "a#", "a b", "é", strings.Repeat("x", 129), "a\x00"}
	for _, s := range good {
		if !protocol.ValidDeviceID(s) || protocol.CheckDeviceID(s) != nil {
			t.Errorf("%q should be valid", s)
		}
	}
	for _, s := range bad {
		if protocol.ValidDeviceID(s) {
			t.Errorf("%q should be invalid", s)
		}
		if err := protocol.CheckDeviceID(s); !errors.Is(err, protocol.ErrBadDeviceID) {
			t.Errorf("CheckDeviceID(%q) = %v", s, err)
		}
	}
}

func TestTopics(t *testing.T) {
	if got := protocol.TelemetryTopic("n1"); got != "tributary/v1/devices/n1/telemetry" {
		t.Errorf("TelemetryTopic = %q", got)
	}
	cases := []struct {
		topic string
		want  protocol.Topic
		err   error
	}{
		{protocol.TelemetryTopic("n1"), protocol.Topic{Kind: protocol.TopicTelemetry, Device: "n1"}, nil},
		{protocol.StatusTopic("n:1"), protocol.Topic{Kind: protocol.TopicStatus, Device: "n:1"}, nil},
		{protocol.CommandTopic("n1", "interval"), protocol.Topic{Kind: protocol.TopicCommand, Device: "n1", Command: "interval"}, nil},
		{"tributary/v1/devices/n1/cmd/a/b", protocol.Topic{}, protocol.ErrBadTopic},
		{"tributary/v1/devices/n1/cmd/", protocol.Topic{}, protocol.ErrBadTopic},
		{"tributary/v1/devices/n1", protocol.Topic{}, protocol.ErrBadTopic},
		{"tributary/v1/devices/n1/other", protocol.Topic{}, protocol.ErrBadTopic},
		{"tributary/v2/devices/n1/telemetry", protocol.Topic{}, protocol.ErrBadTopic},
		{"tributary/v1/devices/-x/telemetry", protocol.Topic{}, protocol.ErrBadDeviceID},
		{"tributary/v1/devices//telemetry", protocol.Topic{}, protocol.ErrBadDeviceID},
	}
	for _, c := range cases {
		got, err := protocol.ParseTopic(c.topic)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v, %v", c.topic, got, err, c.want, c.err)
		}
	}
}
