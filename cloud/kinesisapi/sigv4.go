package kinesisapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 4 verification of the Authorization header
// (service "kinesis"), for servers configured with credentials.

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFmt   = "20060102T150405Z"
	maxClockSkew = 15 * time.Minute
)

// sigV4 is a request's signature, its headers checked (checkSigV4) and
// its body not yet.
type sigV4 struct {
	signedHeaders, sig, amzDate, secret string
	date, region, service               string
}

// checkSigV4 checks what the headers alone tell of r's signature, before
// the body is read: the Authorization header's form, the credential's
// scope (date, region, service) and key, the date and its skew, and that
// host and x-amz-target are signed. A request refused here costs no body
// read and no hashing.
func (s *Server) checkSigV4(r *http.Request) (*sigV4, *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, clientErr(typeMissingAuth, "Missing Authentication Token")
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != sigAlgorithm {
		return nil, clientErr(typeIncompleteSignature, "Authorization header must use %s, got %q", sigAlgorithm, alg)
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			params[k] = v
		}
	}
	cred, signedHeaders, sig := params["Credential"], params["SignedHeaders"], params["Signature"]
	if cred == "" || signedHeaders == "" || sig == "" {
		return nil, clientErr(typeIncompleteSignature, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=%s", auth)
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return nil, clientErr(typeIncompleteSignature, "Credential should be scoped to a valid region and service: ACCESSKEY/DATE/REGION/SERVICE/aws4_request, got %q", cred)
	}
	sv := &sigV4{signedHeaders: signedHeaders, sig: sig, date: scope[1], region: scope[2], service: scope[3]}
	if sv.service != "kinesis" {
		return nil, clientErr(typeInvalidSignature, "Credential should be scoped to correct service: 'kinesis', got %q", sv.service)
	}
	if sv.region != s.opts.Region {
		return nil, clientErr(typeInvalidSignature, "Credential should be scoped to a valid region, not '%s' (this server is %s).", sv.region, s.opts.Region)
	}
	signed := strings.Split(signedHeaders, ";")
	for _, need := range []string{"host", "x-amz-target"} {
		if !slices.Contains(signed, need) {
			return nil, clientErr(typeIncompleteSignature, "SignedHeaders %q must include %s.", signedHeaders, need)
		}
	}
	var ok bool
	if sv.secret, ok = s.opts.Credentials[scope[0]]; !ok {
		return nil, clientErr(typeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	sv.amzDate = r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFmt, sv.amzDate)
	if err != nil {
		return nil, clientErr(typeIncompleteSignature, "Authorization header requires existence of a valid 'X-Amz-Date' header, got %q", sv.amzDate)
	}
	if sv.amzDate[:8] != sv.date {
		return nil, clientErr(typeInvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'", sv.date, sv.amzDate[:8])
	}
	if now := s.now(); t.Before(now.Add(-maxClockSkew)) || t.After(now.Add(maxClockSkew)) {
		return nil, clientErr(typeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - 15 min.)", sv.amzDate, now.Add(-maxClockSkew).UTC().Format(amzDateFmt), now.UTC().Format(amzDateFmt))
	}
	return sv, nil
}

// verify checks the signature itself over r and its body.
func (sv *sigV4) verify(r *http.Request, body []byte) *apiError {
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != "UNSIGNED-PAYLOAD" && h != payloadHash {
		return clientErr(typeInvalidSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}

	var canon strings.Builder
	canon.WriteString(r.Method)
	canon.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon.WriteString(escape(path, true))
	canon.WriteByte('\n')
	canon.WriteString(canonicalQuery(r.URL.RawQuery))
	canon.WriteByte('\n')
	for _, h := range strings.Split(sv.signedHeaders, ";") {
		canon.WriteString(h)
		canon.WriteByte(':')
		canon.WriteString(headerValue(r, h))
		canon.WriteByte('\n')
	}
	canon.WriteByte('\n')
	canon.WriteString(sv.signedHeaders)
	canon.WriteByte('\n')
	canon.WriteString(payloadHash)

	crSum := sha256.Sum256([]byte(canon.String()))
	strToSign := sigAlgorithm + "\n" + sv.amzDate + "\n" + sv.date + "/" + sv.region + "/" + sv.service + "/aws4_request\n" + hex.EncodeToString(crSum[:])
	key := hmacSHA256([]byte("AWS4"+sv.secret), sv.date)
	key = hmacSHA256(key, sv.region)
	key = hmacSHA256(key, sv.service)
	key = hmacSHA256(key, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(key, strToSign))
	if !hmac.Equal([]byte(want), []byte(sv.sig)) {
		return clientErr(typeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return stripSpaces(r.Host)
	case "content-length":
		if r.Header.Get("Content-Length") == "" {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	}
	vals := r.Header.Values(name)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = stripSpaces(v)
	}
	return strings.Join(out, ",")
}

// stripSpaces trims v and collapses runs of spaces, as SigV4 asks.
func stripSpaces(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, _ := url.ParseQuery(raw)
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			parts = append(parts, escape(k, false)+"="+escape(v, false))
		}
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes every byte but the unreserved ones (and '/' if
// keepSlash), upper-case hex, as SigV4 asks.
func escape(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || keepSlash && c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
