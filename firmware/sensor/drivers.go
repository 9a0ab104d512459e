package sensor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/tributary-iot/tributary/firmware/drivers/bme280"
	"github.com/tributary-iot/tributary/firmware/drivers/mcp3008"
	"github.com/tributary-iot/tributary/firmware/drivers/pulse"
	"github.com/tributary-iot/tributary/firmware/drivers/sht3x"
)

// SenML units of the measurements.
const (
	unitCelsius  = "Cel"
	unitRH       = "%RH"
	unitPascal   = "Pa"
	unitVolt     = "V"
	unitCount    = "count"
	perSecondFmt = "%s/s"
)

// openI2C opens the spec's I2C bus and the chip at the spec's address, or
// at def when the spec leaves it out, with the driver's New and its
// default options.
func openI2C[D any, O any](b Buses, s Spec, def uint16, newDev func(i2c.Bus, uint16, *O) (D, error)) (D, error) {
	bus, err := b.I2C(s.Bus)
	if err != nil {
		var none D
		return none, fmt.Errorf("open I2C bus %s: %w", busName(s.Bus), err)
	}
	addr := s.Addr
	if addr == 0 {
		addr = def
	}
	return newDev(bus, addr, nil)
}

// envDev is a driver of a chip that measures several quantities at once
// into an E (the BME280, the SHT3x).
type envDev[E any] interface {
	Sense(*E) error
	Halt() error
	fmt.Stringer
}

// envSensor is a Sensor on an envDev: values lists a measurement's
// quantities in the order of units, and names[i] is the metric of units[i].
type envSensor[E any] struct {
	dev    envDev[E]
	desc   string
	names  []string
	units  []string
	values func(*E) []float64
	once   sync.Once
	err    error
}

func newEnvSensor[E any](s Spec, dev envDev[E], units []string, values func(*E) []float64) *envSensor[E] {
	return &envSensor[E]{dev: dev, desc: describe(s, dev), names: s.MetricNames(), units: units, values: values}
}

func (x *envSensor[E]) Sense(ctx context.Context) ([]Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var e E
	if err := x.dev.Sense(&e); err != nil {
		return nil, err
	}
	vs := x.values(&e)
	ms := make([]Measurement, len(vs))
	for i, v := range vs {
		ms[i] = Measurement{Name: x.names[i], Unit: x.units[i], Value: v}
	}
	return ms, nil
}

func (x *envSensor[E]) String() string { return x.desc }

// Close halts the chip once; later calls return the first call's error.
func (x *envSensor[E]) Close() error {
	x.once.Do(func() { x.err = x.dev.Halt() })
	return x.err
}

func openBME280(b Buses, s Spec) (Sensor, error) {
	dev, err := openI2C(b, s, bme280.DefaultAddr, bme280.New)
	if err != nil {
		return nil, err
	}
	return newEnvSensor(s, dev, []string{unitCelsius, unitRH, unitPascal}, func(e *bme280.Env) []float64 {
		return []float64{e.Temperature, e.Humidity, e.Pressure}
	}), nil
}

// openSHT3x opens an SHT3x in single-shot mode, where it sleeps by itself
// between measurements.
func openSHT3x(b Buses, s Spec) (Sensor, error) {
	dev, err := openI2C(b, s, sht3x.DefaultAddr, sht3x.New)
	if err != nil {
		return nil, err
	}
	return newEnvSensor(s, dev, []string{unitCelsius, unitRH}, func(e *sht3x.Env) []float64 {
		return []float64{e.Temperature, e.Humidity}
	}), nil
}

// ---- mcp3008

type mcp3008Sensor struct {
	dev      *mcp3008.Dev
	desc     string
	channels []Channel // with defaults applied
	names    []string
}

func openMCP3008(b Buses, s Spec) (Sensor, error) {
	port, err := b.SPI(s.Bus)
	if err != nil {
		return nil, fmt.Errorf("open SPI port %s: %w", busName(s.Bus), err)
	}
	dev, err := mcp3008.New(port, &mcp3008.Opts{VRef: s.VRef})
	if err != nil {
		return nil, err
	}
	chans := make([]Channel, len(s.Channels))
	for i, c := range s.Channels {
		if c.Unit == "" {
			c.Unit = unitVolt
		}
		if c.Scale == 0 {
			c.Scale = 1
		}
		chans[i] = c
	}
	return &mcp3008Sensor{dev: dev, desc: describe(s, dev), channels: chans, names: s.MetricNames()}, nil
}

func (x *mcp3008Sensor) Sense(ctx context.Context) ([]Measurement, error) {
	ms := make([]Measurement, 0, len(x.channels))
	for i, c := range x.channels {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var code uint16
		var err error
		if c.Differential {
			code, err = x.dev.ReadDiff(c.Channel)
		} else {
			code, err = x.dev.Read(c.Channel)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		ms = append(ms, Measurement{Name: x.names[i], Unit: c.Unit, Value: x.dev.ToVolts(code)*c.Scale + c.Offset})
	}
	return ms, nil
}

func (x *mcp3008Sensor) String() string { return x.desc }

// Close has nothing to stop: the converter idles between conversions.
func (x *mcp3008Sensor) Close() error { return nil }

// ---- pulse

type pulseSensor struct {
	dev        *pulse.Dev
	desc       string
	names      []string // total, rate
	perUnit    float64
	unit       string
	rateUnit   string
	rateFactor float64
	stop       context.CancelFunc
	done       chan struct{}

	mu        sync.Mutex
	lastCount uint64
	lastTime  time.Time

	once sync.Once
	err  error
}

// rateUnits maps a counter's unit to the unit of its rate and the factor
// from units per second to it.
var rateUnits = map[string]struct {
	unit   string
	factor float64
}{
	unitCount: {"1/s", 1},
	"l":       {"l/s", 1},
	"m3":      {"m3/s", 1},
	"m":       {"m/s", 1},
	"J":       {"W", 1},
	"Wh":      {"W", 3600},
	"kWh":     {"kW", 3600},
}

func openPulse(ctx context.Context, b Buses, s Spec) (Sensor, error) {
	pin, err := b.GPIO(s.Bus)
	if err != nil {
		return nil, fmt.Errorf("open GPIO pin %q: %w", s.Bus, err)
	}
	dev, err := pulse.New(pin, &pulse.Opts{Debounce: s.Debounce})
	if err != nil {
		return nil, err
	}
	x := &pulseSensor{
		dev:      dev,
		desc:     describe(s, dev),
		names:    s.MetricNames(),
		perUnit:  s.PulsesPerUnit,
		unit:     s.Unit,
		done:     make(chan struct{}),
		lastTime: time.Now(),
	}
	if x.perUnit == 0 {
		x.perUnit = 1
	}
	if x.unit == "" {
		x.unit = unitCount
	}
	if r, ok := rateUnits[x.unit]; ok {
		x.rateUnit, x.rateFactor = r.unit, r.factor
	} else {
		x.rateUnit, x.rateFactor = fmt.Sprintf(perSecondFmt, x.unit), 1
	}
	// The counter lives until Close, not until ctx is done, but keeps its
	// values.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	x.stop = stop
	go func() {
		defer close(x.done)
		_ = dev.Run(runCtx) // nil on cancel; ErrRunning cannot happen: Run starts once
	}()
	return x, nil
}

func (x *pulseSensor) Sense(ctx context.Context) ([]Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n, now := x.dev.Count(), time.Now()
	total := float64(n) / x.perUnit
	var rate float64
	if dt := now.Sub(x.lastTime).Seconds(); dt > 0 {
		rate = float64(n-x.lastCount) / x.perUnit / dt * x.rateFactor
	}
	x.lastCount, x.lastTime = n, now
	return []Measurement{
		{Name: x.names[0], Unit: x.unit, Value: total, Sum: &total},
		{Name: x.names[1], Unit: x.rateUnit, Value: rate},
	}, nil
}

func (x *pulseSensor) String() string { return x.desc }

// Close stops counting and waits for the counting goroutine to end.
func (x *pulseSensor) Close() error {
	x.once.Do(func() {
		x.stop()
		x.err = x.dev.Halt()
		<-x.done
	})
	return x.err
}

func describe(s Spec, dev fmt.Stringer) string {
	return fmt.Sprintf("%s on %s", label(s.Kind, s.Name), dev)
}
