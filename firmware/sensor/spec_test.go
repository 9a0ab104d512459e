package sensor_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/firmware/sensor"
)

func TestValidate(t *testing.T) {
	ch := func(n int, name string) sensor.Channel { return sensor.Channel{Channel: n, Name: name} }
	for _, tc := range []struct {
		name string
		spec sensor.Spec
		want string // whole message; "" means valid
	}{
		{"bme280 defaults", sensor.Spec{Kind: "bme280"}, ""},
		{"bme280 full", sensor.Spec{Kind: "bme280", Name: "room", Bus: "1", Addr: 0x77, Interval: time.Minute}, ""},
		{"sht3x", sensor.Spec{Kind: "sht3x", Name: "attic/north", Addr: 0x45}, ""},
		{"mcp3008", sensor.Spec{Kind: "mcp3008", Bus: "/dev/spidev0.0", VRef: 5, Channels: []sensor.Channel{
			{Channel: 0, Name: "battery", Unit: "V", Scale: 2},
			{Channel: 7, Differential: true, Name: "bridge", Unit: "Pa", Scale: 1000, Offset: -5},
		}}, ""},
		{"pulse", sensor.Spec{Kind: "pulse", Name: "water", Bus: "GPIO17", PulsesPerUnit: 450, Unit: "l", Debounce: time.Millisecond}, ""},

		{"no kind", sensor.Spec{Name: "x"}, `sensor ("x"): kind is missing (want bme280, sht3x, mcp3008 or pulse)`},
		{"unknown kind", sensor.Spec{Kind: "dht22"}, `sensor (dht22): unknown kind "dht22" (want bme280, sht3x, mcp3008 or pulse)`},
		{"bad name", sensor.Spec{Kind: "sht3x", Name: "living room"}, `sensor (sht3x "living room"): name "living room" is not a valid SenML name (letters, digits and - : . / _, starting with a letter or digit)`},
		{"name starts with a dot", sensor.Spec{Kind: "sht3x", Name: ".x"}, `sensor (sht3x ".x"): name ".x" is not a valid SenML name (letters, digits and - : . / _, starting with a letter or digit)`},
		{"bme280 address", sensor.Spec{Kind: "bme280", Name: "room", Addr: 0x99}, `sensor (bme280 "room"): address 0x99 is not a BME280 address (0x76 or 0x77)`},
		{"sht3x address", sensor.Spec{Kind: "sht3x", Addr: 0x76}, `sensor (sht3x): address 0x76 is not an SHT3x address (0x44 or 0x45)`},
		{"address on SPI", sensor.Spec{Kind: "mcp3008", Addr: 0x10, Channels: []sensor.Channel{ch(0, "a")}}, `sensor (mcp3008): address 0x10 is only for I2C sensors (bme280, sht3x)`},
		{"channels on bme280", sensor.Spec{Kind: "bme280", Channels: []sensor.Channel{ch(0, "a")}}, `sensor (bme280): channels are only for mcp3008`},
		{"pulse fields on sht3x", sensor.Spec{Kind: "sht3x", PulsesPerUnit: 2, Unit: "l"},
			"sensor (sht3x): pulses_per_unit is only for pulse\nsensor (sht3x): unit is only for pulse (mcp3008 channels have their own)"},
		{"mcp3008 without channels", sensor.Spec{Kind: "mcp3008"}, `sensor (mcp3008): channels are missing: list at least one (channel, name, unit, scale, offset)`},
		{"mcp3008 channel out of range", sensor.Spec{Kind: "mcp3008", Channels: []sensor.Channel{ch(0, "a"), ch(8, "b")}}, `sensor (mcp3008): channels entry 2 ("b"): channel 8 is outside 0..7`},
		{"mcp3008 pair out of range", sensor.Spec{Kind: "mcp3008", Channels: []sensor.Channel{{Channel: -1, Differential: true, Name: "d"}}}, `sensor (mcp3008): channels entry 1 ("d"): differential pair -1 is outside 0..7`},
		{"mcp3008 channel without name", sensor.Spec{Kind: "mcp3008", Channels: []sensor.Channel{ch(3, "")}}, `sensor (mcp3008): channels entry 1: name is missing`},
		{"mcp3008 duplicate names", sensor.Spec{Kind: "mcp3008", Channels: []sensor.Channel{ch(0, "a"), ch(1, "a")}}, `sensor (mcp3008): channels entry 2 ("a"): name "a" is used twice`},
		{"mcp3008 negative vref", sensor.Spec{Kind: "mcp3008", VRef: -3.3, Channels: []sensor.Channel{ch(0, "a")}}, `sensor (mcp3008): vref -3.3 V is negative`},
		{"pulse without pin", sensor.Spec{Kind: "pulse", Name: "gas"}, `sensor (pulse "gas"): bus is missing: name the GPIO pin, e.g. "GPIO17"`},
		{"pulse negative", sensor.Spec{Kind: "pulse", Bus: "GPIO4", PulsesPerUnit: -1, Debounce: -time.Second},
			"sensor (pulse): pulses_per_unit -1 is negative\nsensor (pulse): debounce -1s is negative"},
		{"pulse unit with space", sensor.Spec{Kind: "pulse", Bus: "GPIO4", Unit: "cubic metre"}, `sensor (pulse): unit "cubic metre" has spaces; use a SenML unit such as count, l, m3 or Wh`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("Validate =\n%s\nwant\n%s", err, tc.want)
			}
			var se *sensor.SpecError
			if !errors.As(err, &se) || se.Kind != tc.spec.Kind || se.Name != tc.spec.Name {
				t.Errorf("Validate error %#v is not a *SpecError for the spec", err)
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []sensor.Spec
		want  string
	}{
		{"empty", nil, ""},
		{"distinct names", []sensor.Spec{{Kind: "bme280", Name: "in"}, {Kind: "sht3x", Name: "out"}, {Kind: "pulse", Bus: "GPIO4"}}, ""},
		{
			"second sensor bad",
			[]sensor.Spec{{Kind: "sht3x"}, {Kind: "bme280", Name: "room", Addr: 0x99}},
			`sensor 2 (bme280 "room"): address 0x99 is not a BME280 address (0x76 or 0x77)`,
		},
		{
			"same measurement twice",
			[]sensor.Spec{{Kind: "bme280"}, {Kind: "pulse", Bus: "GPIO4"}, {Kind: "sht3x"}},
			"sensor 3 (sht3x): measurement \"temperature\" is also produced by sensor 1 (bme280); give one of them a different name\n" +
				"sensor 3 (sht3x): measurement \"humidity\" is also produced by sensor 1 (bme280); give one of them a different name",
		},
		{
			"mcp3008 channel against a prefixed name",
			[]sensor.Spec{{Kind: "sht3x", Name: "room"}, {Kind: "mcp3008", Channels: []sensor.Channel{{Name: "room.humidity"}}}},
			`sensor 2 (mcp3008): measurement "room.humidity" is also produced by sensor 1 (sht3x "room"); give one of them a different name`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sensor.ValidateAll(tc.specs)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("ValidateAll =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestMetricNames(t *testing.T) {
	senml := func(n string) bool {
		if n == "" || !strings.ContainsAny(n[:1], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") {
			return false
		}
		return strings.Trim(n, "-:./_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == ""
	}
	for _, tc := range []struct {
		spec sensor.Spec
		want []string
	}{
		{sensor.Spec{Kind: "bme280"}, []string{"temperature", "humidity", "pressure"}},
		{sensor.Spec{Kind: "bme280", Name: "room"}, []string{"room.temperature", "room.humidity", "room.pressure"}},
		{sensor.Spec{Kind: "sht3x", Name: "a:b"}, []string{"a:b.temperature", "a:b.humidity"}},
		{sensor.Spec{Kind: "mcp3008", Channels: []sensor.Channel{{Name: "x"}, {Name: "y"}}}, []string{"x", "y"}},
		{sensor.Spec{Kind: "mcp3008", Name: "adc", Channels: []sensor.Channel{{Name: "x"}}}, []string{"adc.x"}},
		{sensor.Spec{Kind: "pulse", Bus: "GPIO4"}, []string{"pulses", "pulses.rate"}},
		{sensor.Spec{Kind: "pulse", Name: "water", Bus: "GPIO4"}, []string{"water", "water.rate"}},
	} {
		got := tc.spec.MetricNames()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: MetricNames = %q, want %q", tc.spec.Kind, tc.spec.Name, got, tc.want)
		}
		for _, n := range got {
			if !senml(n) {
				t.Errorf("%q is not a valid SenML name", n)
			}
		}
	}
}
