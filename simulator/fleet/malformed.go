package fleet

import (
	"context"
	"math/rand/v2"
	"net"
	"net/url"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/model"
)

// malformedPayloads are what a device sends when a malformed-payload fault
// hits it, in turn: each is rejected by protocol.DecodeSenML, for a
// different reason, so a gateway's error paths all get exercised.
var malformedPayloads = [][]byte{
	[]byte("temperature=21.5"),                      // neither JSON nor CBOR
	[]byte(`[{"n":"temperature","u":"Cel","v":21.`), // truncated JSON
	[]byte(`[]`),                                                  // empty pack
	[]byte(`[{"n":"bad name!","v":1}]`),                           // invalid name
	[]byte(`[{"n":"temperature","u":"Cel"}]`),                     // no value
	[]byte(`[{"n":"temperature","v":1,"vs":"one"}]`),              // two values
	[]byte(`[{"bver":99,"n":"temperature","v":1}]`),               // unknown version
	[]byte(`[{"n":"temperature","v":1,"n":"humidity"}]`),          // duplicate label
	{0x81, 0xA2, 0x00, 0x6B, 't', 'e', 'm', 'p'},                  // truncated CBOR
	{0x81, 0xA2, 0x00, 0x64, 't', 'e', 'm', 'p', 0x02, 0x63, 'x'}, // CBOR value of the wrong type
}

// malformedLoop publishes malformed payloads on random devices' telemetry
// topics through one extra MQTT client, MalformedRate per device-hour
// fleet-wide (a Poisson process from the seed), until ctx ends. Each
// payload is a truth line (kind malformed) and is counted apart from the
// nodes' readings: sent when the broker acknowledged it, failed otherwise.
func (r *runner) malformedLoop(ctx context.Context) error {
	cfg := &r.cfg
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.Prefix + "malformed").
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetOrderMatters(false).
		SetCustomOpenConnectionFn(func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
			defer cancel()
			if err := r.connects.Wait(dctx); err != nil {
				return nil, err
			}
			return r.dialer.DialContext(dctx, "tcp", uri.Host)
		})
	client := mqtt.NewClient(opts)
	client.Connect() // retries in the background; publishes wait for it
	defer client.Disconnect(250)

	// Acknowledgements are reaped in order by one goroutine; the channel
	// bounds the payloads in flight.
	acks := make(chan mqtt.Token, 256)
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		for tok := range acks {
			if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
				r.malformed.sent.Add(1)
			} else {
				r.malformed.failed.Add(1)
			}
		}
	}()
	defer func() { close(acks); <-reaped }()

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), saltMalformed))
	perSecond := cfg.MalformedRate * float64(cfg.Devices) / 3600
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 0; ; k++ {
		next = next.Add(time.Duration(rng.ExpFloat64() / perSecond * float64(time.Second)))
		d := r.devices[rng.IntN(len(r.devices))]
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		now := time.Now().UTC()
		r.truth.write(model.Event{Device: d.id, Kind: model.KindMalformed, Start: now, End: now.Add(time.Millisecond)})
		tok := client.Publish(protocol.TelemetryTopic(d.id), byte(cfg.QoS), false, malformedPayloads[k%len(malformedPayloads)])
		select {
		case acks <- tok:
		case <-ctx.Done():
			r.malformed.failed.Add(1)
			return nil
		}
	}
}
