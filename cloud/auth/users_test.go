package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/argon2"

	"github.com/tributary-iot/tributary/cloud/auth"
)

func openUsers(t *testing.T, path string) *auth.Users {
	t.Helper()
	u, err := auth.OpenUsers(path, auth.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUsersAddVerifyRemove(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "users.db")
	u := openUsers(t, path)
	if err := u.Add("alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, pw string
		err      error
	}{
		{"alice", "correct horse battery", nil},
		{"alice", "correct horse batterY", auth.ErrNoUser},
		{"alice", "", auth.ErrNoUser},
		{"bob", "correct horse battery", auth.ErrNoUser},
		{"Alice", "correct horse battery", auth.ErrNoUser},
		{"alice", "correct horse battery" + strings.Repeat("x", 2000), auth.ErrNoUser},
	} {
		cred, err := u.Verify(ctx, c.name, c.pw)
		if !errors.Is(err, c.err) || (err == nil) != (cred != "") {
			t.Errorf("Verify(%q, %.30q) = %q, %v; want %v", c.name, c.pw, cred, err, c.err)
		}
	}
	cred, _ := u.Verify(ctx, "alice", "correct horse battery")
	if !u.Current("alice", cred) || u.Current("alice", cred+"x") || u.Current("bob", cred) {
		t.Error("Current")
	}
	if err := u.Add("alice", "another password"); !errors.Is(err, auth.ErrUserExists) {
		t.Errorf("second Add: %v", err)
	}
	if err := u.SetPassword("bob", "another password"); !errors.Is(err, auth.ErrNoUser) {
		t.Errorf("SetPassword of nobody: %v", err)
	}
	for _, bad := range []string{"", "-x", "a b", "a/b", strings.Repeat("a", 65), "é"} {
		if err := u.Add(bad, "long enough password"); !errors.Is(err, auth.ErrBadName) {
			t.Errorf("Add(%q): %v, want ErrBadName", bad, err)
		}
	}
	if err := u.Add("bob", "short"); !errors.Is(err, auth.ErrWeak) {
		t.Errorf("short password: %v", err)
	}
	if err := u.Add("bob", strings.Repeat("p", auth.MaxPasswordLen+1)); err == nil {
		t.Error("a password over MaxPasswordLen accepted")
	}
	// A new password ends the sessions of the old one.
	if err := u.SetPassword("alice", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if u.Current("alice", cred) {
		t.Error("old credential still current after SetPassword")
	}
	if _, err := u.Verify(ctx, "alice", "correct horse battery"); err == nil {
		t.Error("old password still accepted")
	}
	cred, err := u.Verify(ctx, "alice", "a brand new password")
	if err != nil {
		t.Fatal(err)
	}
	if list := u.List(); len(list) != 1 || list[0].Name != "alice" || list[0].KDF != "argon2id m=19456,t=2,p=1" || list[0].Created.IsZero() {
		t.Errorf("List = %+v", list)
	}
	if err := u.Remove("alice"); err != nil {
		t.Fatal(err)
	}
	if err := u.Remove("alice"); !errors.Is(err, auth.ErrNoUser) {
		t.Errorf("second Remove: %v", err)
	}
	if u.Current("alice", cred) || u.Len() != 0 {
		t.Error("removed user still current")
	}
}

// The file holds an argon2id PHC string with the stated parameters, which
// an independent computation verifies, and never the password.
func TestUsersFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	u := openUsers(t, path)
	const pw = "the password itself"
	if err := u.Add("ops", pw); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	db.View(func(tx *bolt.Tx) error {
		raw = append(raw, tx.Bucket([]byte("users")).Get([]byte("ops"))...)
		return nil
	})
	db.Close()
	if strings.Contains(string(raw), pw) {
		t.Fatal("the password is in the file")
	}
	var rec struct{ Hash string }
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	parts := strings.Split(rec.Hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" || parts[3] != "m=19456,t=2,p=1" {
		t.Fatalf("hash %q", rec.Hash)
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("salt %x key %x", salt, key)
	}
	if got := argon2.IDKey([]byte(pw), salt, 2, 19456, 1, 32); string(got) != string(key) {
		t.Error("the stored key is not argon2id(password, salt)")
	}
}

// A second process (the user command) adds and removes users; the
// server's store sees it after Reload. A damaged record is ignored, not
// fatal.
func TestUsersReloadAndDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	server := openUsers(t, path)
	cmd := openUsers(t, path)
	if err := cmd.Add("carol", "twelve chars!"); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Verify(context.Background(), "carol", "twelve chars!"); err != nil {
		t.Fatalf("after Reload: %v", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{
		"junk":  "not json",
		"huge":  `{"hash":"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"}`,
		"other": `{"hash":"$2a$10$abcdefghijklmnopqrstuv"}`,
	} {
		db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("users")).Put([]byte(name), []byte(v)) })
	}
	db.Close()
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if list := server.List(); len(list) != 1 || list[0].Name != "carol" {
		t.Errorf("damaged records listed: %+v", list)
	}
}
