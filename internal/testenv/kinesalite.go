package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// kinesaliteRel is where `make deps-kinesalite` installs kinesalite, under
// the module root.
const kinesaliteRel = ".tools/kinesalite/node_modules/.bin/kinesalite"

// KinesaliteBinary returns the kinesalite executable, or "" if none:
// $KINESALITE, then the module's .tools folder, then $PATH. It also needs
// node on $PATH.
func KinesaliteBinary() string {
	if Look("node") == "" {
		return ""
	}
	if p := os.Getenv("KINESALITE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	if root, err := ModuleRoot(); err == nil {
		p := filepath.Join(root, kinesaliteRel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return Look("kinesalite")
}

// Kinesalite is a running kinesalite, an independent Kinesis emulator
// (npm), started by StartKinesalite.
type Kinesalite struct {
	Endpoint string // http://127.0.0.1:PORT
	Addr     string // 127.0.0.1:PORT
	proc     *Proc
	log      *Buffer
}

// StartKinesalite runs kinesalite in memory on a free loopback port until
// the test ends, with streams that turn ACTIVE after 50 ms and room for
// 100 shards. kinesalite never throttles and lacks UpdateShardCount and
// ListShards paging. A missing kinesalite (or node) skips the test (fails
// it under TRIBUTARY_INTEROP=1).
func StartKinesalite(t testing.TB) *Kinesalite {
	t.Helper()
	bin := KinesaliteBinary()
	if bin == "" {
		Missing(t, "kinesalite (and node; `make deps-kinesalite`)")
	}
	var k *Kinesalite
	RetryAddrInUse(t, func() (err error) {
		k, err = startKinesalite(t, bin)
		return err
	})
	t.Cleanup(func() {
		k.proc.Kill9() // node and its children: kinesalite keeps nothing
		if t.Failed() {
			t.Logf("kinesalite log:\n%s", k.log.String())
		}
	})
	return k
}

func startKinesalite(t testing.TB, bin string) (*Kinesalite, error) {
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	k := &Kinesalite{Addr: addr, Endpoint: "http://" + addr, log: &Buffer{}}
	cmd := exec.Command(bin, "--port", port, "--createStreamMs", "50",
		"--deleteStreamMs", "50", "--updateStreamMs", "50", "--shardLimit", "100")
	cmd.Stdout, cmd.Stderr = k.log, k.log
	p, err := start(cmd)
	if err != nil {
		return nil, err
	}
	k.proc = p
	if err := waitListening(p, addr, 20*time.Second); err != nil {
		return nil, startError("kinesalite", err, k.log.String())
	}
	return k, nil
}
