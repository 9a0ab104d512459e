package tlsfiles_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, as PEM files in a temp dir.
type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newPKI(t *testing.T) pki {
	t.Helper()
	ca := testenv.NewPKI(t)
	p := pki{ca: ca.CAFile}
	p.serverCert, p.serverKey = ca.Server(t, "server")
	p.clientCert, p.clientKey = ca.Client(t, "client")
	return p
}

// handshake runs a TLS handshake over loopback TCP and returns both sides'
// errors. The client reads one byte after its handshake, so that a server
// refusing the client's certificate (checked after the client finished, in
// TLS 1.3) shows on the client too.
func handshake(t *testing.T, srv, cli *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, srv)
		err = s.Handshake()
		if err == nil {
			_, err = s.Write([]byte{1})
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, cli)
	clientErr = tc.Handshake()
	if clientErr == nil {
		_, clientErr = tc.Read(make([]byte, 1))
	}
	return <-done, clientErr
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	srv, err := tlsfiles.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.ca}.Load()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsfiles.Client{CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "127.0.0.1"}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if se, ce := handshake(t, srv, cli); se != nil || ce != nil {
		t.Fatalf("mutual TLS handshake: server %v, client %v", se, ce)
	}
	// Without a client certificate the server must refuse.
	anon, err := tlsfiles.Client{CAFile: p.ca, ServerName: "127.0.0.1"}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if se, _ := handshake(t, srv, anon); se == nil {
		t.Fatal("server accepted a client without a certificate")
	}
	// A client that does not trust the CA must refuse the server.
	sys, err := tlsfiles.Client{ServerName: "127.0.0.1"}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, ce := handshake(t, srv, sys); ce == nil {
		t.Fatal("client accepted a server signed by an unknown CA")
	}
}

func TestErrors(t *testing.T) {
	p := newPKI(t)
	notPEM := filepath.Join(t.TempDir(), "ca.der")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		load func() error
		want string
	}{
		"cert without key": {func() error { _, err := tlsfiles.Client{CertFile: p.clientCert}.Load(); return err }, "go together"},
		"ca without PEM":   {func() error { _, err := tlsfiles.Client{CAFile: notPEM}.Load(); return err }, "ca_file: " + notPEM + " holds no PEM certificate"},
		"missing ca":       {func() error { _, err := tlsfiles.Client{CAFile: notPEM + ".x"}.Load(); return err }, "no such file"},
		"key mismatch": {func() error {
			_, err := tlsfiles.Client{CertFile: p.clientCert, KeyFile: p.serverKey}.Load()
			return err
		}, "cert_file " + p.clientCert},
		"client ca, no cert": {func() error { _, err := tlsfiles.Server{ClientCAFile: p.ca}.Load(); return err }, "client certificates need TLS"},
		"server bad ca": {func() error {
			_, err := tlsfiles.Server{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: notPEM}.Load()
			return err
		}, "client_ca_file: "},
	} {
		err := tc.load()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
	if c, err := (tlsfiles.Server{}).Load(); c != nil || err != nil {
		t.Errorf("zero Server: %v, %v; want plain TCP (nil, nil)", c, err)
	}
}
