package protocol

import (
	"fmt"
	"strings"
)

// MQTT topics (MQTT 3.1.1) between devices and the gateway.
const (
	// TopicPrefix starts every Tributary device topic.
	TopicPrefix = "tributary/v1/devices/"
	// TelemetryFilter subscribes to every device's telemetry.
	TelemetryFilter = TopicPrefix + "+/telemetry"
	// StatusFilter subscribes to every device's status (birth, last will).
	StatusFilter = TopicPrefix + "+/status"
	// DeviceIDPattern documents the device id syntax.
	DeviceIDPattern = `^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`
)

// ValidDeviceID reports whether id matches DeviceIDPattern.
func ValidDeviceID(id string) bool {
	if len(id) == 0 || len(id) > MaxDeviceIDBytes || !alnum(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !alnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// CheckDeviceID returns an error that says what is wrong with id, or nil.
func CheckDeviceID(id string) error {
	if ValidDeviceID(id) {
		return nil
	}
	switch {
	case id == "":
		return fmt.Errorf("protocol: %w: empty", ErrBadDeviceID)
	case len(id) > MaxDeviceIDBytes:
		return fmt.Errorf("protocol: %w: %d bytes, limit %d", ErrBadDeviceID, len(id), MaxDeviceIDBytes)
	}
	return fmt.Errorf("protocol: %w: %q must match %s (letters, digits, '.', '_', ':', '-'; first a letter or digit)",
		ErrBadDeviceID, truncate(id), DeviceIDPattern)
}

// TelemetryTopic returns tributary/v1/devices/{device}/telemetry.
func TelemetryTopic(device string) string { return TopicPrefix + device + "/telemetry" }

// StatusTopic returns tributary/v1/devices/{device}/status.
func StatusTopic(device string) string { return TopicPrefix + device + "/status" }

// CommandTopic returns tributary/v1/devices/{device}/cmd/{name}.
func CommandTopic(device, name string) string { return TopicPrefix + device + "/cmd/" + name }

// CommandFilter subscribes to every command for one device.
func CommandFilter(device string) string { return TopicPrefix + device + "/cmd/+" }

// TopicKind says which kind of device topic a topic is.
type TopicKind uint8

const (
	TopicTelemetry TopicKind = iota + 1
	TopicStatus
	TopicCommand
)

// Topic is a parsed device topic.
type Topic struct {
	Kind    TopicKind
	Device  string
	Command string // for TopicCommand
}

// ParseTopic parses a Tributary device topic and validates its device id.
// Errors wrap ErrBadTopic or ErrBadDeviceID and say what is wrong.
func ParseTopic(topic string) (Topic, error) {
	rest, ok := strings.CutPrefix(topic, TopicPrefix)
	if !ok {
		return Topic{}, fmt.Errorf("protocol: %w: %q does not start with %q", ErrBadTopic, truncate(topic), TopicPrefix)
	}
	device, tail, ok := strings.Cut(rest, "/")
	if !ok {
		return Topic{}, fmt.Errorf("protocol: %w: %q has no kind after the device id", ErrBadTopic, truncate(topic))
	}
	if err := CheckDeviceID(device); err != nil {
		return Topic{}, err
	}
	switch {
	case tail == "telemetry":
		return Topic{Kind: TopicTelemetry, Device: device}, nil
	case tail == "status":
		return Topic{Kind: TopicStatus, Device: device}, nil
	case strings.HasPrefix(tail, "cmd/"):
		name := tail[len("cmd/"):]
		if !ValidName(name) || strings.Contains(name, "/") {
			return Topic{}, fmt.Errorf("protocol: %w: command name %q is not valid", ErrBadTopic, truncate(name))
		}
		return Topic{Kind: TopicCommand, Device: device, Command: name}, nil
	}
	return Topic{}, fmt.Errorf("protocol: %w: %q: kind %q is not telemetry, status or cmd/{name}", ErrBadTopic, truncate(topic), truncate(tail))
}
