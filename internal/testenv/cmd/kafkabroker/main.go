// Command kafkabroker runs franz-go's kfake, a Kafka wire-protocol broker,
// as its own process, so that tests can SIGKILL it and start it again with
// its data: the stand-in for Apache Kafka and Amazon MSK (neither can be
// installed on the CI machines; see TOOLING.md).
//
//	kafkabroker -listen 127.0.0.1:PORT [-data DIR] [-sync] [-topic telemetry:8]...
//	            [-scram-sha-512 USER:PASS] [-control 127.0.0.1:PORT]
//
// It serves one broker on the loopback port of -listen (kfake binds
// 127.0.0.1 only) and prints "kafkabroker: ready ADDR" on stderr once it
// accepts connections. With -data it keeps its log and metadata there;
// -sync (the default) fsyncs every produced batch, so acknowledged records
// survive a SIGKILL. Topic metadata is written at a clean stop (SIGTERM or
// SIGINT), so a test that creates topics and then kills the broker must
// stop it cleanly once in between (see testenv.Kafka.Restart).
//
// -control serves a small HTTP API on a loopback address for fault
// injection, which a real cluster does through quotas and broker failures:
//
//	POST /fault?key=0&code=19&count=5[&topic=T]   fail the next 5 Produce (key 0)
//	                                              requests with NOT_ENOUGH_REPLICAS
//	                                              (count -1: until removed)
//	POST /faults/clear                            remove every fault installed
//
// This program is test tooling: it lives under internal/testenv and is
// built by testenv.StartKafka.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicsFlag map[string]int32

func (f topicsFlag) String() string { return fmt.Sprint(map[string]int32(f)) }

func (f topicsFlag) Set(s string) error {
	name, n, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return fmt.Errorf("want NAME:PARTITIONS, got %q", s)
	}
	p, err := strconv.ParseInt(n, 10, 32)
	if err != nil || p < 1 {
		return fmt.Errorf("want NAME:PARTITIONS with PARTITIONS >= 1, got %q", s)
	}
	f[name] = int32(p)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kafkabroker:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "", "the broker's address, 127.0.0.1:PORT (required)")
	data := flag.String("data", "", "the broker's data folder (empty: in memory)")
	sync := flag.Bool("sync", true, "fsync every produced batch before acknowledging it")
	control := flag.String("control", "", "loopback address of the fault-injection HTTP API (empty: none)")
	partitions := flag.Int("default-partitions", 1, "partitions of auto-created topics")
	scram := flag.String("scram-sha-512", "", "USER:PASS: require SASL/SCRAM-SHA-512 with this user")
	topics := topicsFlag{}
	flag.Var(topics, "topic", "NAME:PARTITIONS: a topic to create at start (repeatable)")
	flag.Parse()

	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		return fmt.Errorf("-listen %q: want 127.0.0.1:PORT (kfake listens on loopback only)", *listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("-listen %q: bad port", *listen)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1), kfake.Ports(port), kfake.ClusterID("tributary-test"),
		kfake.DefaultNumPartitions(*partitions),
	}
	if *data != "" {
		opts = append(opts, kfake.DataDir(*data))
		if *sync {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	for name, n := range topics {
		opts = append(opts, kfake.SeedTopics(n, name))
	}
	if *scram != "" {
		user, pass, ok := strings.Cut(*scram, ":")
		if !ok || user == "" || pass == "" {
			return errors.New("-scram-sha-512: want USER:PASS")
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if *control != "" {
		if err := serveControl(c, *control); err != nil {
			c.Close()
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "kafkabroker: ready %s\n", c.ListenAddrs()[0])

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	fmt.Fprintf(os.Stderr, "kafkabroker: %v: stopping\n", s)
	c.Close() // writes the metadata
	fmt.Fprintln(os.Stderr, "kafkabroker: stopped")
	return nil
}

// serveControl starts the fault-injection API on addr (loopback only).
func serveControl(c *kfake.Cluster, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-control %q: want a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("-control: %w", err)
	}
	var (
		mu      sync.Mutex
		handles []*kfake.FaultHandle
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /fault", func(w http.ResponseWriter, r *http.Request) {
		f, err := parseFault(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h := c.Fault(f)
		mu.Lock()
		handles = append(handles, h)
		mu.Unlock()
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /faults/clear", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		for _, h := range handles {
			h.Remove()
		}
		handles = nil
		mu.Unlock()
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // serves until the process exits
	return nil
}

func parseFault(r *http.Request) (kfake.Fault, error) {
	q := r.URL.Query()
	var f kfake.Fault
	if k := q.Get("key"); k != "" {
		key, err := strconv.ParseInt(k, 10, 16)
		if err != nil {
			return f, fmt.Errorf("key %q: want a Kafka API key number (0 = Produce)", k)
		}
		f.Keys = []kmsg.Key{kmsg.Key(key)}
	}
	code, err := strconv.ParseInt(q.Get("code"), 10, 16)
	if err != nil {
		return f, fmt.Errorf("code %q: want a Kafka error code number", q.Get("code"))
	}
	f.Err = kerr.TypedErrorForCode(int16(code))
	if f.Err == nil {
		return f, fmt.Errorf("code %d: not a Kafka error code", code)
	}
	f.Count = 1
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n == 0 || n < -1 {
			return f, fmt.Errorf("count %q: want N >= 1 or -1", s)
		}
		f.Count = n
	}
	f.Topic = q.Get("topic")
	return f, nil
}
