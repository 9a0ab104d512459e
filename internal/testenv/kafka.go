package testenv

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Kafka is a Kafka wire-protocol broker (franz-go's kfake) running as its
// own process with a data folder, started by StartKafka: it can be killed
// with SIGKILL and started again with what it had acknowledged.
type Kafka struct {
	Addr       string // 127.0.0.1:PORT, the bootstrap broker
	Dir        string // the broker's data folder
	controlURL string
	*Daemon
}

// KafkaOptions configures StartKafka. The zero value is one broker with
// fsynced writes and no topics.
type KafkaOptions struct {
	// Topics to create at start, by name: their partition counts.
	Topics map[string]int32
	// SCRAM, as "USER:PASS", makes the broker require SASL/SCRAM-SHA-512.
	SCRAM string
	// NoSync acknowledges produced records before they are fsynced (what
	// Kafka does by default): a SIGKILL can lose them.
	NoSync bool
}

// StartKafka builds ./internal/testenv/cmd/kafkabroker and runs it on a
// free loopback port with a data folder in t.TempDir() until the test ends
// (stopped cleanly). It needs no outside program.
//
// kfake writes topic metadata at a clean stop only: a test that creates
// topics (with kadm or auto-creation) and then kills the broker should call
// Restart once in between.
func StartKafka(t testing.TB, o KafkaOptions) *Kafka {
	t.Helper()
	bin := Binary(t, "./internal/testenv/cmd/kafkabroker")
	dir := t.TempDir()
	var k *Kafka
	RetryAddrInUse(t, func() error {
		addr, control := FreeAddr(t), FreeAddr(t)
		args := []string{"-listen", addr, "-data", filepath.Join(dir, "data"), "-control", control,
			"-sync=" + strconv.FormatBool(!o.NoSync)}
		for name, n := range o.Topics {
			args = append(args, "-topic", fmt.Sprintf("%s:%d", name, n))
		}
		if o.SCRAM != "" {
			args = append(args, "-scram-sha-512", o.SCRAM)
		}
		k = &Kafka{Addr: addr, Dir: filepath.Join(dir, "data"), controlURL: "http://" + control}
		k.Daemon = NewDaemon(t, dir, "kafkabroker", bin, args, func() bool {
			return dialable(addr) && dialable(control)
		})
		_, err := k.TryStart()
		return err
	})
	return k
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Restart stops the broker cleanly (it writes its metadata) and starts it
// again on the same port with the same data.
func (k *Kafka) Restart() {
	k.t.Helper()
	k.Stop()
	k.Start()
}

// Fault makes the broker fail the next count requests with the Kafka API
// key (0 is Produce) with the Kafka error code (for example 19,
// NOT_ENOUGH_REPLICAS; 7, REQUEST_TIMED_OUT); count -1 fails them until
// ClearFaults. topic, if not empty, limits the fault to that topic.
func (k *Kafka) Fault(key, code int16, count int, topic string) {
	k.t.Helper()
	q := url.Values{"key": {strconv.Itoa(int(key))}, "code": {strconv.Itoa(int(code))},
		"count": {strconv.Itoa(count)}, "topic": {topic}}
	k.control("/fault?" + q.Encode())
}

// ClearFaults removes every fault Fault installed.
func (k *Kafka) ClearFaults() {
	k.t.Helper()
	k.control("/faults/clear")
}

func (k *Kafka) control(path string) {
	k.t.Helper()
	resp, err := http.Post(k.controlURL+path, "text/plain", nil)
	if err != nil {
		k.t.Fatalf("testenv: kafkabroker control: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	if resp.StatusCode != http.StatusOK {
		k.t.Fatalf("testenv: kafkabroker control %s: %s: %s", path, resp.Status, b.String())
	}
}
