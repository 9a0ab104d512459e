package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/jsonkeys"
)

// stallingListener accepts connections and never answers; accepted gets
// a value at each connection.
func stallingListener(t *testing.T) (addr string, accepted <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), ch
}

// SIGTERM (the context's end) during a start that waits on a Kinesis
// endpoint that never answers ends the start at once, with the context's
// error.
func TestStartHonoursContext(t *testing.T) {
	addr, accepted := stallingListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		s   *server.Server
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := server.New(ctx, server.Config{Data: t.TempDir(), Listen: "127.0.0.1:0", KinesisListen: "off",
			Stream: server.StreamConfig{Backend: server.BackendKinesis, Kinesis: server.KinesisConfig{
				Endpoint: "http://" + addr, Region: "us-east-1", AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}}},
			server.Options{Logger: slog.New(slog.DiscardHandler)})
		done <- result{s, err}
	}()
	select {
	case <-accepted: // the start is waiting on Kinesis
	case r := <-done:
		t.Fatalf("the start did not wait on Kinesis: %v", r.err)
	}
	cancel()
	select {
	case r := <-done:
		if r.s != nil {
			r.s.Close()
		}
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("start: %v, want context.Canceled", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the start went on for 5s after its context ended")
	}
}

// A Kinesis stream that does not exist stops the start with an error that
// says what to do.
func TestStartMissingKinesisStream(t *testing.T) {
	store := start(t, server.Config{Data: t.TempDir()}, shardstore.Options{})
	_, err := server.New(t.Context(), server.Config{Data: t.TempDir(), Listen: "127.0.0.1:0", KinesisListen: "off",
		Stream: server.StreamConfig{Name: "nope", Backend: server.BackendKinesis, Kinesis: server.KinesisConfig{
			Endpoint: "http://" + store.s.KinesisAddr(), Region: "us-east-1", AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}}},
		server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "stream nope does not exist: provision it") {
		t.Errorf("start: %v", err)
	}
}

// Every key of the cloud's /healthz document is snake_case.
func TestHealthSchemaSnakeCase(t *testing.T) {
	if err := jsonkeys.CheckSchema(server.Health{}); err != nil {
		t.Error(err)
	}
}
