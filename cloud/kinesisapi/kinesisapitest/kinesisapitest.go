// Package kinesisapitest serves the Kinesis API (kinesisapi over a
// shardstore in the test's temporary folder) on 127.0.0.1:0 and builds
// unmodified aws-sdk-go-v2 Kinesis clients for it, so that any package
// can test its Kinesis code against the real wire protocol.
package kinesisapitest

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/defaults"
)

// Test credentials: any signature passes unless the server is given
// Credentials.
const (
	AccessKeyID     = "AKIDEXAMPLE"
	SecretAccessKey = "dummy-secret"
)

// Server is a store and the API over it, served until the test ends.
type Server struct {
	Store *shardstore.Store
	API   *kinesisapi.Server
	URL   string // http://127.0.0.1:PORT
}

// Start opens a store in t.TempDir() (with no background trimming unless
// so.TrimInterval asks for it) and serves the API over it.
func Start(t testing.TB, so shardstore.Options, ao kinesisapi.Options) *Server {
	t.Helper()
	defaults.Set(&so.TrimInterval, -1)
	st, err := shardstore.Open(filepath.Join(t.TempDir(), "streams.db"), so)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := kinesisapi.New(st, ao)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	return &Server{Store: st, API: srv, URL: hs.URL}
}

// Client is a client of s signed with the test credentials; opts adjust
// it (retries, for one).
func (s *Server) Client(t testing.TB, opts ...func(*kinesis.Options)) *kinesis.Client {
	return Client(t, s.URL, AccessKeyID, SecretAccessKey, opts...)
}

// Client is kinesis.NewFromConfig with static credentials, region
// us-east-1 and BaseEndpoint url, nothing else changed and nothing read
// from the environment (profiles, AWS_CA_BUNDLE, endpoint variables); opts
// adjust it. Its idle connections are closed when the test ends.
func Client(t testing.TB, url, akid, secret string, opts ...func(*kinesis.Options)) *kinesis.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16 // concurrent writers and readers keep their connections
	hc := &http.Client{Transport: tr}
	t.Cleanup(hc.CloseIdleConnections)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(akid, secret, "")),
		HTTPClient:  hc,
	}
	endpoint := func(o *kinesis.Options) { o.BaseEndpoint = aws.String(url) }
	return kinesis.NewFromConfig(cfg, append([]func(*kinesis.Options){endpoint}, opts...)...)
}
