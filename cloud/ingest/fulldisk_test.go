//go:build linux

package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// The full-disk test: a child process (this test binary, re-executed with
// fullDiskEnv set) limits the size of the files it writes (RLIMIT_FSIZE,
// so writes past it fail with EFBIG, as on a full disk) and sends batches
// of new epochs, each growing the ack log, until one is refused; the
// parent checks the answer (503 with Retry-After), then that every batch
// acknowledged before is still recognised, and that a child without the
// limit acknowledges batches again.

const (
	fullDiskEnv      = "TRIBUTARY_INGEST_FULLDISK" // the ack log file
	fullDiskFromEnv  = "TRIBUTARY_INGEST_FULLDISK_FROM"
	fullDiskBatches  = 100
	fullDiskReadings = 3
)

const fullDiskHelperName = "ingest-fulldisk"

func init() { childHelpers[fullDiskHelperName] = fullDiskChild }

// fullDiskGateway has a long id, so that each epoch's key takes room.
var fullDiskGateway = "gw-" + strings.Repeat("x", 120)

type fullDiskToken struct{}

func (fullDiskToken) Verify(tok string) (string, bool) { return fullDiskGateway, tok == "full-disk" }

// postEpoch sends the batch of one epoch and returns the answer.
func postEpoch(url string, epoch uint64) (status int, retryAfter string, body map[string]any, err error) {
	b, err := protocol.AppendBatch(nil, &protocol.Batch{Gateway: fullDiskGateway, Epoch: epoch, FirstSeq: 1, Readings: readings(fullDiskReadings, 1, t0)})
	if err != nil {
		return 0, "", nil, err
	}
	req, _ := http.NewRequest(http.MethodPost, url+ingest.Path, bytes.NewReader(b))
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	req.Header.Set("Authorization", "Bearer full-disk")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body, err
}

// fullDiskChild sends the batches of epochs FROM on and prints "epoch
// status Retry-After error" for each, stopping at the first refused.
func fullDiskChild() {
	path := os.Getenv(fullDiskEnv)
	from, _ := strconv.ParseUint(os.Getenv(fullDiskFromEnv), 10, 64)
	in, err := ingest.New(context.Background(), ingest.Options{Backend: newMemBackend(protocol.DefaultStream, 4), Tokens: fullDiskToken{}, Path: path})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	srv := httptest.NewServer(in)
	for epoch := from; epoch < from+fullDiskBatches; epoch++ {
		status, retryAfter, body, err := postEpoch(srv.URL, epoch)
		if err != nil {
			fmt.Println("post:", err)
			os.Exit(2)
		}
		msg, _ := body["error"].(string)
		fmt.Printf("%d %d %q %q\n", epoch, status, retryAfter, msg)
		if status != http.StatusOK {
			break
		}
	}
	srv.Close()
	in.Close()
}

type fullDiskAnswer struct {
	epoch      uint64
	status     int
	retryAfter string
	err        string
}

func runFullDiskChild(t *testing.T, path string, limit, from uint64) []fullDiskAnswer {
	t.Helper()
	cmd := testenv.HelperFileLimit(t, fullDiskHelperName, limit, fullDiskEnv+"="+path, fmt.Sprintf("%s=%d", fullDiskFromEnv, from))
	var answers []fullDiskAnswer
	for _, l := range testenv.OutputLines(t, cmd) {
		var a fullDiskAnswer
		if _, err := fmt.Sscanf(l, "%d %d %q %q", &a.epoch, &a.status, &a.retryAfter, &a.err); err != nil {
			t.Fatalf("child said %q: %v", l, err)
		}
		answers = append(answers, a)
	}
	return answers
}

func TestFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ingest.db")
	// bbolt grows a small file to 32 KiB, then 64 KiB: the limit lets the
	// first happen, not the second.
	answers := runFullDiskChild(t, path, 40<<10, 1)
	last := answers[len(answers)-1]
	t.Logf("%d batches acknowledged before the limit; then %+v", len(answers)-1, last)
	if len(answers) < 2 || last.status != http.StatusServiceUnavailable || last.retryAfter == "" ||
		!strings.Contains(last.err, "no space") || !strings.Contains(last.err, "free disk space") {
		t.Fatalf("answers %+v: want some 200s, then 503 with Retry-After saying the disk is full", answers)
	}

	// Every batch acknowledged is recognised; the refused one is stored now.
	in, err := ingest.New(context.Background(), ingest.Options{Backend: newMemBackend(protocol.DefaultStream, 4), Tokens: fullDiskToken{}, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	for _, a := range answers {
		status, _, body, err := postEpoch(srv.URL, a.epoch)
		want := map[bool]float64{true: fullDiskReadings, false: 0}[a.status == http.StatusOK]
		if err != nil || status != http.StatusOK || body["duplicates"] != want || body["stored"] != fullDiskReadings-want {
			t.Fatalf("epoch %d, first answered %d, resent: %d %v %v", a.epoch, a.status, status, body, err)
		}
	}
	srv.Close()
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}

	// Space returns: a new process acknowledges batches again.
	for _, a := range runFullDiskChild(t, path, 0, 1_000_000) {
		if a.status != http.StatusOK {
			t.Fatalf("without the limit: %+v", a)
		}
	}
}
