package alerts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a webhook payload's signature when
// Config.WebhookSecret is set:
//
//	X-Tributary-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// t is the Unix time of the attempt in seconds; v1 is the lower-case hex
// HMAC-SHA256, keyed by the secret, of t, a full stop and the exact body
// bytes ("1767225600.{...}"). A receiver recomputes it, compares in
// constant time, and refuses a t too far from its clock (five minutes,
// say) so that a recorded request cannot be replayed later. Each retry is
// signed afresh. Later schemes would add v2=..., so parse by key.
const SignatureHeader = "X-Tributary-Signature"

// Sign is the SignatureHeader value for body sent at t with secret.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of signature checks.
var (
	ErrBadSignature = errors.New("alerts: bad webhook signature")
	ErrStale        = errors.New("alerts: webhook signature too old or from the future")
)

// VerifySignature checks a SignatureHeader value against body, as a
// receiver written in Go would: the v1 HMAC must match (constant time)
// and t must be within tolerance of now.
func VerifySignature(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=UNIX,v1=HEX", ErrBadSignature)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		ok = hmac.Equal(s, want) || ok
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %v off", ErrStale, d.Round(time.Second))
	}
	return nil
}

// RedactURL is a URL as logs and errors show it: user info and query
// values replaced by REDACTED, the fragment dropped (a webhook URL often
// carries its secret there: https://hooks.slack.com/... has it in the
// path, which stays, so prefer a signing secret).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL, redacted)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// errRedirect is a webhook's redirect: not followed (the request would
// carry the alert and its signature to wherever the receiver points).
var errRedirect = errors.New("alerts: the webhook answered with a redirect, which is not followed: point anomaly.webhook at the final URL")

// noRedirects makes a client that returns redirects instead of following
// them (a copy: the caller's client is left alone).
func noRedirects(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// redactErr keeps the webhook URL's secrets out of a client error
// (*url.Error carries the URL).
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}
