package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/protocol"
)

// trickle opens a connection to addr that sends a request line and then
// one header line every 100 ms, never ending its headers. It returns a
// channel that gets how long the server took to close the connection (or
// the read error that is not the server's close).
func trickle(t *testing.T, addr string, stop <-chan struct{}, wg *sync.WaitGroup) <-chan error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(c, "X-Trickle: 1\r\n"); err != nil {
					return
				}
			}
		}
	})
	wg.Go(func() {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, c) // a 408, then the close
		if errors.Is(err, os.ErrDeadlineExceeded) {
			closed <- err
			return
		}
		closed <- nil
	})
	return closed
}

// 300 connections trickling their headers on the ingest listener (and one
// on each other listener) are cut off after the header timeout, and do
// not delay an authenticated upload meanwhile by more than 2 s.
func TestSlowHeadersCutOff(t *testing.T) {
	const timeout = 3 * time.Second
	r := startWith(t, server.Config{Data: t.TempDir()}, server.Options{ReadHeaderTimeout: timeout})
	tok, err := r.s.Tokens().Issue("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	var closed []<-chan error
	for range 300 {
		closed = append(closed, trickle(t, r.s.Addr(), stop, &wg))
	}
	closed = append(closed, trickle(t, r.s.AdminAddr(), stop, &wg), trickle(t, r.s.KinesisAddr(), stop, &wg))
	started := time.Now()

	raw, err := protocol.AppendBatch(nil, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: 1, Readings: readings(50, 5, t0)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.s.Addr()+"/v1/ingest", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	req.Close = true
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(sent); resp.StatusCode != 200 || d > 2*time.Second {
		t.Errorf("upload beside 300 trickling connections: %d after %v, want 200 within 2s", resp.StatusCode, d)
	}
	for i, ch := range closed[:300] {
		select {
		case <-ch:
			t.Fatalf("trickling connection %d was closed before the upload ended: the test proves nothing", i)
		default:
		}
	}

	for i, ch := range closed {
		if err := <-ch; err != nil {
			t.Fatalf("trickling connection %d still open after 20s: %v", i, err)
		}
	}
	if d := time.Since(started); d > timeout+5*time.Second {
		t.Errorf("trickling connections closed after %v, header timeout %v", d, timeout)
	}
}

// Headers beyond MaxHeaderBytes are refused (431).
func TestHeadersTooLarge(t *testing.T) {
	r := start(t, server.Config{Data: t.TempDir()}, shardstore.Options{})
	for _, addr := range []string{r.s.Addr(), r.s.AdminAddr()} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
		req.Header.Set("X-Big", string(bytes.Repeat([]byte("a"), 2*server.MaxHeaderBytes)))
		req.Close = true
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: %d, want 431", addr, resp.StatusCode)
		}
	}
}

// TestIngestLimitsWired: ingest.max_devices_per_gateway reaches the
// ingest (readings of the device beyond it are acknowledged, counted in
// the answer and on /metrics), and the anomaly registry's metrics are
// served with the default bound.
func TestIngestLimitsWired(t *testing.T) {
	r := start(t, server.Config{Data: t.TempDir(), Ingest: server.IngestConfig{MaxDevicesPerGateway: 1}}, shardstore.Options{})
	tok, err := r.s.Tokens().Issue("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := protocol.AppendBatch(nil, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: 1,
		Readings: readings(10, 2, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.s.Addr()+"/v1/ingest", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ack struct{ Stored, Refused int }
	err = json.NewDecoder(resp.Body).Decode(&ack)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || ack.Stored != 5 || ack.Refused != 5 {
		t.Fatalf("%d %+v %v: want 5 stored and node-1's 5 refused", resp.StatusCode, ack, err)
	}
	m := get(t, "http://"+r.s.AdminAddr()+"/metrics")
	for _, want := range []string{`tributary_ingest_capped_readings_total{cap="devices",gateway="gw-1"} 5`, "tributary_anomaly_max_series 6000"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
