// Package tlsfiles builds crypto/tls configurations from the PEM files a
// config names: CA bundles, certificate and key pairs. Every binary's
// "tls:" section is one of its two types, so the YAML keys, the checks and
// the error messages are the same everywhere.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Client is the TLS a client uses towards a server (an MQTT broker, the
// cloud's ingest API).
type Client struct {
	// CAFile is a PEM bundle of the CAs that sign the server's
	// certificate; "" means the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key for
	// mutual TLS; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. Testing only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// IsZero reports whether nothing is configured.
func (c Client) IsZero() bool { return c == Client{} }

// Validate checks what can be checked without reading the files.
func (c Client) Validate() error { return pair(c.CertFile, c.KeyFile) }

// Load reads the files and returns the client configuration (TLS 1.2 or
// newer).
func (c Client) Load() (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pool, err := CertPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Server is the TLS of a listener. With ClientCAFile, clients must present
// a certificate signed by one of its CAs.
type Server struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// IsZero reports whether nothing is configured (the listener is plain TCP).
func (s Server) IsZero() bool { return s == Server{} }

// Validate checks what can be checked without reading the files.
func (s Server) Validate() error {
	if s.ClientCAFile != "" && s.CertFile == "" {
		return errors.New("client_ca_file: client certificates need TLS: set cert_file and key_file too")
	}
	return pair(s.CertFile, s.KeyFile)
}

// Load reads the files and returns the listener's configuration, or nil
// (and no error) when s is zero: plain TCP.
func (s Server) Load() (*tls.Config, error) {
	if s.IsZero() {
		return nil, nil
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.CertFile == "" {
		return nil, errors.New("cert_file and key_file: required for a TLS listener")
	}
	cert, err := KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if s.ClientCAFile != "" {
		pool, err := CertPool(s.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// CertPool reads a PEM bundle of CA certificates; a file without any is an
// error (a key or a DER file named by mistake would otherwise trust nothing
// and fail every handshake later, far from the cause).
func CertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// KeyPair reads a PEM certificate (chain) and its private key.
func KeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert_file %s / key_file %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

func pair(cert, key string) error {
	if (cert == "") != (key == "") {
		return errors.New("cert_file and key_file go together: set both for a certificate, or neither")
	}
	return nil
}
