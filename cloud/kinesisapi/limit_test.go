package kinesisapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
)

// Limited: with one call in progress (a client still sending its body),
// a second call is refused at once with LimitExceededException, which the
// SDK knows as a throttling error; once the first ends, calls go through
// again.
func TestLimitedInFlight(t *testing.T) {
	e, _ := startStream(t, 1, unlimited)
	hs := httptest.NewServer(e.API.Limited(1))
	defer hs.Close()
	c := kinesisapitest.Client(t, hs.URL, kinesisapitest.AccessKeyID, kinesisapitest.SecretAccessKey, noRetry)

	body := `{"StreamName":"s","PartitionKey":"k","Data":"aGVsbG8="}`
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, hs.URL, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecord")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	first := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	// The write returns once the handler reads it: the call holds the slot.
	if _, err := io.WriteString(pw, body[:10]); err != nil {
		t.Fatal(err)
	}
	_, err = c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if code := apiCode(err); code != "LimitExceededException" {
		t.Errorf("second call while one is in progress: %v, want LimitExceededException", err)
	}
	io.WriteString(pw, body[10:])
	pw.Close()
	if code := <-first; code != http.StatusOK {
		t.Errorf("the call in progress: status %d", code)
	}
	if _, err := c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("s")}); err != nil {
		t.Errorf("after the call ended: %v", err)
	}
}
