package server

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tributary-iot/tributary/internal/defaults"
)

// inProcess is an http.RoundTripper that serves requests with a handler
// in this process: the cloud's own consumers read the embedded store
// through the very Kinesis API handler and SDK that outside consumers use
// (same code path, same errors, same limits), without a socket or a
// listener (kinesis_listen may be off).
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	w := &memResponse{header: make(http.Header)}
	r.RemoteAddr = "in-process"
	if r.Body == nil {
		r.Body = http.NoBody
	}
	t.h.ServeHTTP(w, r)
	defaults.Set(&w.code, http.StatusOK)
	return &http.Response{
		Status: strconv.Itoa(w.code) + " " + http.StatusText(w.code), StatusCode: w.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()), Request: r,
	}, nil
}

type memResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *memResponse) Header() http.Header { return w.header }
func (w *memResponse) WriteHeader(code int) {
	defaults.Set(&w.code, code)
}
func (w *memResponse) Write(b []byte) (int, error) {
	defaults.Set(&w.code, http.StatusOK)
	return w.body.Write(b)
}

// inProcessClient is an unmodified SDK Kinesis client whose requests are
// served by h. With SigV4 credentials configured on the API, it signs
// with one of them.
func inProcessClient(h http.Handler, region string, creds map[string]string) *kinesis.Client {
	id, secret := "tributary-in-process", "unused"
	for k, v := range creds {
		id, secret = k, v
		break
	}
	if region == "" {
		region = "us-east-1"
	}
	return kinesis.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, "")),
		HTTPClient:  &http.Client{Transport: inProcess{h}},
	}, func(o *kinesis.Options) { o.BaseEndpoint = aws.String("http://in-process") })
}
