package testenv_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunHelper(map[string]func(){
		"write":  writeHelper,
		"ticker": tickerHelper,
		"tree":   treeHelper,
		"web":    webHelper,
	})
	os.Exit(m.Run())
}

// writeHelper writes $SIZE bytes to $FILE and prints what happened.
func writeHelper() {
	n, _ := strconv.Atoi(os.Getenv("SIZE"))
	err := os.WriteFile(os.Getenv("FILE"), make([]byte, n), 0o600)
	fmt.Printf("efbig=%v err=%v\n", errors.Is(err, syscall.EFBIG), err)
}

// tickerHelper says READY, then counts until it is killed.
func tickerHelper() {
	fmt.Println(testenv.ReadyLine)
	for i := 0; ; i++ {
		fmt.Println(i)
		time.Sleep(time.Millisecond)
	}
}

// treeHelper starts a grandchild (sleep), prints its pid and waits.
func treeHelper() {
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println(c.Process.Pid)
	c.Wait()
}

// webHelper serves HTTP on $ADDR.
func webHelper() {
	fmt.Println(http.ListenAndServe(os.Getenv("ADDR"), http.NotFoundHandler()))
	os.Exit(2)
}

func TestFreeAddr(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		addr := testenv.FreeAddr(t)
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		l.Close()
	}
}

func TestRetryAddrInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var tries int
	testenv.RetryAddrInUse(t, func() error {
		tries++
		addr := taken.Addr().String() // the first start finds its port taken
		if tries > 1 {
			addr = testenv.FreeAddr(t)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		return l.Close()
	})
	if tries != 2 {
		t.Errorf("%d tries, want 2", tries)
	}
	if !testenv.IsAddrInUse(nil, "listen tcp 127.0.0.1:1: bind: address already in use") || testenv.IsAddrInUse(errors.New("no such file")) {
		t.Error("IsAddrInUse")
	}
}

func TestLookAndNeed(t *testing.T) {
	if p := testenv.Look("sh"); p == "" {
		t.Error(`Look("sh") found nothing`)
	}
	if p := testenv.Look("no-such-program-tributary"); p != "" {
		t.Errorf("Look found %s", p)
	}
	if p := testenv.Need(t, "sh", ""); !filepath.IsAbs(p) {
		t.Errorf("Need(sh) = %q", p)
	}
}

// A missing program skips a test, or fails it under TRIBUTARY_INTEROP=1:
// checked in a subprocess running this very test binary on a test that
// needs a program nobody has.
func TestNeedMissing(t *testing.T) {
	if os.Getenv("TESTENV_NEED_MISSING") == "1" {
		testenv.Need(t, "no-such-program-tributary", "nowhere")
		t.Fatal("Need returned for a missing program")
	}
	for _, interop := range []string{"0", "1"} {
		exe, _ := os.Executable()
		cmd := exec.Command(exe, "-test.run=^TestNeedMissing$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "TESTENV_NEED_MISSING=1", testenv.InteropEnv+"="+interop)
		out, err := cmd.CombinedOutput()
		switch {
		case interop == "0" && (err != nil || !strings.Contains(string(out), "--- SKIP")):
			t.Errorf("without interop: %v\n%s", err, out)
		case interop == "1" && (err == nil || !strings.Contains(string(out), "--- FAIL") || !strings.Contains(string(out), "no-such-program-tributary (nowhere) is not installed")):
			t.Errorf("with interop: %v\n%s", err, out)
		}
	}
}

func TestHelperFileLimit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	for _, tc := range []struct {
		size  int
		efbig bool
	}{{4096, false}, {64 << 10, true}} {
		cmd := testenv.HelperFileLimit(t, "write", 16<<10, "FILE="+file, "SIZE="+strconv.Itoa(tc.size))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
		if got := strings.HasPrefix(string(out), fmt.Sprintf("efbig=%v", tc.efbig)); !got {
			t.Errorf("writing %d bytes under a 16 KiB limit: %s", tc.size, out)
		}
	}
	if fi, err := os.Stat(file); err != nil || fi.Size() != 16<<10 {
		t.Errorf("the file after the failed write: %v %v, want 16 KiB written", fi.Size(), err)
	}
}

func TestKillWhileRunning(t *testing.T) {
	lines, stderr := testenv.KillWhileRunning(t, testenv.Helper(t, "ticker"), 20*time.Millisecond, 50*time.Millisecond)
	if len(lines) == 0 || stderr != "" {
		t.Fatalf("%d lines, stderr %q", len(lines), stderr)
	}
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d is %q: every complete line, in order, want", i, l)
		}
	}
}

func TestProcKill9KillsTheGroup(t *testing.T) {
	var out testenv.Lines
	cmd := testenv.Helper(t, "tree")
	cmd.Stdout = &out
	p := testenv.Start(t, cmd)
	testenv.WaitFor(t, "the grandchild's pid", 10*time.Second, func() bool { return out.Len() > 0 })
	pid, err := strconv.Atoi(out.All()[0])
	if err != nil {
		t.Fatal(out.All())
	}
	p.Kill9()
	if !p.Exited() {
		t.Fatal("Kill9 returned before the child exited")
	}
	// The grandchild, in the same group, got SIGKILL too (its parent is
	// gone, so init reaps it: wait until it is no more).
	testenv.WaitFor(t, "the grandchild to die", 10*time.Second, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(b), ") Z ")
	})
}

func TestProcStop(t *testing.T) {
	p := testenv.Start(t, exec.Command("sleep", "60"))
	err := p.Stop(5 * time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Exited() {
		t.Errorf("sleep after SIGTERM: %v, want killed by the signal", err)
	}
	var out testenv.Lines
	cmd := exec.Command("sh", "-c", "trap '' TERM; echo trapped; sleep 60")
	cmd.Stdout = &out
	p = testenv.Start(t, cmd)
	testenv.WaitFor(t, "the trap", 10*time.Second, func() bool { return out.Len() > 0 })
	if err := p.Stop(200 * time.Millisecond); !errors.Is(err, testenv.ErrNoStop) {
		t.Errorf("a child ignoring SIGTERM: %v, want ErrNoStop", err)
	}
}

func TestDaemonRestarts(t *testing.T) {
	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	h := testenv.Helper(t, "web", "ADDR="+addr)
	d := testenv.NewDaemon(t, dir, "web", h.Path, h.Args[1:], testenv.HTTPReady("http://"+addr+"/"))
	d.Env = h.Env
	d.Start()
	d.Kill9()
	if testenv.HTTPReady("http://" + addr + "/")() {
		t.Fatal("still serving after Kill9")
	}
	d.Start()
	if d.Kills() != 1 {
		t.Errorf("%d kills", d.Kills())
	}
	d.Stop()
	if _, err := os.Stat(d.Log); err != nil {
		t.Error(err)
	}
}

func TestBinaryFollowsRace(t *testing.T) {
	bin := testenv.Binary(t, "./internal/testenv/testdata/raceprobe")
	if again := testenv.Binary(t, "./internal/testenv/testdata/raceprobe"); again != bin {
		t.Errorf("built twice: %s, %s", bin, again)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("race=%v\n", testenv.Race); string(out) != want {
		t.Errorf("the built binary says %q, want %q", out, want)
	}
}

func TestStartMosquitto(t *testing.T) {
	m := testenv.StartMosquitto(t, "max_connections 10")
	c, err := net.Dial("tcp", m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !strings.HasPrefix(m.URL, "tcp://127.0.0.1:") {
		t.Errorf("URL %s", m.URL)
	}
	m.Stop()
	m.Stop() // again: no effect
}

func TestStartKinesalite(t *testing.T) {
	k := testenv.StartKinesalite(t)
	if !testenv.HTTPReady(k.Endpoint)() {
		t.Errorf("kinesalite at %s does not answer", k.Endpoint)
	}
}
