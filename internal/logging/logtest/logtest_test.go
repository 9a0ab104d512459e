package logtest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/logging/logtest"
)

func TestCheckLine(t *testing.T) {
	for _, tc := range []struct {
		line      string
		durations int
		err       string // "" for a good line
	}{
		{`{"msg":"ok","took":"1.5s","n":3}`, 1, ""},
		{`{"msg":"ok","g":{"wait":"-2ms","x":[1,2]},"list":[{"a":1},{"a":2}]}`, 1, ""},
		{`{"msg":"dup","component":"queue","component":"queue"}`, 0, `duplicate key: "component"`},
		{`{"msg":"dup","g":{"a":1,"b":{"c":1,"c":2}}}`, 0, `duplicate key: "g.b.c"`},
		{`{"msg":"ns","drain_timeout":30000000000}`, 0, `duration "drain_timeout" logged as 30000000000`},
		{`{"msg":"ms","retry_after_ms":500}`, 0, `duration "retry_after_ms" logged as 500`},
		{`{"msg":"bad","backoff":"soon"}`, 0, `duration "backoff" is "soon"`},
		{`[1]`, 0, "not a JSON object"},
		{`{"a":1}{"b":2}`, 0, "more than one JSON value"},
		{`{"a":`, 0, "EOF"},
	} {
		n, err := logtest.CheckLine([]byte(tc.line))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.line, err)
		case tc.err != "" && (!errors.Is(err, logtest.ErrBadLine) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.line, err, tc.err)
		case n != tc.durations:
			t.Errorf("%s: %d durations, want %d", tc.line, n, tc.durations)
		}
	}
}

func TestCheck(t *testing.T) {
	sum, err := logtest.Check([]byte("{\"a\":1}\n\n{\"age\":\"1m0s\"}\n{\"a\":1,\"a\":2}\n"))
	if sum.Lines != 3 || sum.Durations != 1 || err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("%+v %v", sum, err)
	}
}

func TestDurationKey(t *testing.T) {
	for key, want := range map[string]bool{
		"drain_timeout": true, "took": true, "after_backoff": true, "oldest_unsent_age": true, "wait_ms": true,
		"bytes_after": false, "message": false, "agent": false, "storage": false, "shards": false,
	} {
		if got := logtest.DurationKey(key); got != want {
			t.Errorf("%s: %v", key, got)
		}
	}
}

func TestWriterWait(t *testing.T) {
	var w logtest.Writer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan map[string]any, 1)
	go func() {
		m, err := w.Wait(ctx, "started")
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	fmt.Fprint(&w, `{"msg":"other"}`+"\n"+`{"msg":"started","lis`)
	fmt.Fprint(&w, `ten":"127.0.0.1:1"}`+"\n")
	if m := <-got; m["listen"] != "127.0.0.1:1" {
		t.Errorf("%v", m)
	}
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if _, err := w.Wait(short, "never"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait: %v", err)
	}
}
