package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/internal/boltfile/bolttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, path string) *auth.Store {
	t.Helper()
	s, err := auth.Open(path, auth.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssueVerifyRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	s := open(t, path)
	tok, err := s.Issue("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != auth.TokenLen || !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("token %q", tok)
	}
	if gw, ok := s.Verify(tok); !ok || gw != "gw-1" {
		t.Fatalf("Verify = %q, %v", gw, ok)
	}
	if _, err := s.Issue("gw-1"); !errors.Is(err, auth.ErrExists) {
		t.Errorf("second Issue: %v, want ErrExists", err)
	}
	if _, err := s.Rotate("gw-2"); !errors.Is(err, auth.ErrNoToken) {
		t.Errorf("Rotate without a token: %v, want ErrNoToken", err)
	}
	if _, err := s.Issue("bad id!"); err == nil {
		t.Error("Issue accepted an invalid gateway id")
	}
	tok2, err := s.Issue("gw-2")
	if err != nil {
		t.Fatal(err)
	}

	// Rotation: the old token stops working, the new one works.
	rot, err := s.Rotate("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Verify(tok); ok {
		t.Error("the rotated-out token still verifies")
	}
	if gw, ok := s.Verify(rot); !ok || gw != "gw-1" {
		t.Errorf("rotated token: %q %v", gw, ok)
	}

	// Tampering with any character of a valid token fails.
	for i := len(auth.TokenPrefix); i < len(rot); i++ {
		b := []byte(rot)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, ok := s.Verify(string(b)); ok {
			t.Fatalf("tampered token (char %d) verifies", i)
		}
	}
	for _, bad := range []string{"", "trib_", rot + "x", rot[:len(rot)-1], " " + rot[1:], strings.ToUpper(rot)} {
		if _, ok := s.Verify(bad); ok {
			t.Errorf("Verify(%q) ok", bad)
		}
	}

	list := s.List()
	if len(list) != 2 || list[0].Gateway != "gw-1" || list[1].Gateway != "gw-2" || list[0].Created.IsZero() {
		t.Errorf("List = %+v", list)
	}
	if err := s.Revoke("gw-2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Verify(tok2); ok {
		t.Error("revoked token verifies")
	}
	if err := s.Revoke("gw-2"); !errors.Is(err, auth.ErrNoToken) {
		t.Errorf("second Revoke: %v", err)
	}

	// Reopen: the tokens persist; the file holds no secret.
	s2 := open(t, path)
	if gw, ok := s2.Verify(rot); !ok || gw != "gw-1" {
		t.Errorf("after reopen: %q %v", gw, ok)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{rot, tok, tok2} {
		if bytes.Contains(data, []byte(tk[len(auth.TokenPrefix)+12:])) {
			t.Error("the file contains a token's text")
		}
		_, sec, _ := auth.ParseToken(tk)
		if bytes.Contains(data, sec[:]) {
			t.Error("the file contains a token's secret")
		}
	}
}

// Another process (the token command) changes the file while the server's
// Store is open: Watch picks the change up within one interval.
func TestWatchSeesOtherProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokens.db")
		server := open(t, path)
		cli := open(t, path)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			server.Watch(ctx, time.Second)
			close(done)
		}()
		defer func() { cancel(); <-done }()
		afterTick := func() {
			time.Sleep(time.Second)
			synctest.Wait() // the reload is done
		}

		tok, err := cli.Issue("gw-1")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := server.Verify(tok); ok {
			t.Fatal("the token verifies before Watch ran")
		}
		afterTick()
		if _, ok := server.Verify(tok); !ok {
			t.Fatal("the issued token does not verify after one interval")
		}
		if err := cli.Revoke("gw-1"); err != nil {
			t.Fatal(err)
		}
		afterTick()
		if _, ok := server.Verify(tok); ok {
			t.Fatal("the revoked token still verifies after one interval")
		}
	})
}

// Many quick changes in a row, within one tick of the file's clock (same
// size, same modification time): each reload sees the last one.
func TestReloadSeesQuickChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	server := open(t, path)
	cli := open(t, path)
	last, err := cli.Issue("gw-2")
	for i := range 20 {
		if err != nil {
			t.Fatal(err)
		}
		if err := server.Reload(); err != nil {
			t.Fatal(err)
		}
		if _, ok := server.Verify(last); !ok {
			t.Fatalf("change %d: the last token does not verify after a reload", i)
		}
		last, err = cli.Rotate("gw-2")
	}
}

// A writer holding the file makes Issue wait, then fail with ErrLocked.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	s, err := auth.Open(path, auth.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := s.Issue("gw-1"); !errors.Is(err, auth.ErrLocked) {
		t.Errorf("Issue while locked: %v, want ErrLocked", err)
	}
}

// Verify runs concurrently with changes (run with -race).
func TestConcurrentVerify(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "tokens.db"))
	tok, err := s.Issue("gw-0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if gw, ok := s.Verify(tok); !ok || gw != "gw-0" {
					t.Error("Verify failed during changes")
					return
				}
			}
		})
	}
	for i := range 20 {
		gw := "gw-" + string(rune('a'+i))
		if _, err := s.Issue(gw); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// A damaged token file is an error that names it and says what to do,
// never a crash: at Open, and at a reload, which keeps the tokens in
// force.
func TestDamagedFile(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	s := open(t, good)
	for i := range 100 {
		if _, err := s.Issue(fmt.Sprintf("gw-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "tokens.db")
	bolttest.Each(t, good, path, func(t *testing.T) {
		_, err := auth.Open(path, auth.Options{LockTimeout: time.Second})
		bolttest.CheckOpenError(t, err, path, "issue every gateway a new token")
	})

	// Damaged under a running store.
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	live := open(t, path)
	tok, err := live.Issue("gw-live")
	if err != nil {
		t.Fatal(err)
	}
	if data, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bolttest.Damages(data)[1].Data, 0o600); err != nil {
		t.Fatal(err)
	}
	bolttest.CheckOpenError(t, live.Reload(), path, "issue every gateway a new token")
	if gw, ok := live.Verify(tok); !ok || gw != "gw-live" {
		t.Fatalf("after a failed reload: Verify = %q, %v; want the last good tokens in force", gw, ok)
	}
}
