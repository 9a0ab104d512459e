package server_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// jsonReq sends a JSON body with the session cookie (if any) and extra
// headers, and returns the status and body.
func jsonReq(t *testing.T, method, url, body string, ck *http.Cookie, header map[string]string) (int, string) {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	if ck != nil {
		r.AddCookie(ck)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Silences and acknowledgements change state: they need a session (or
// token) and are refused cross-site, and a refused one stores nothing.
// What is stored survives a restart (dashboard.db in the data folder).
func TestSilencesAuthAndCrossSite(t *testing.T) {
	cfg := server.Config{Data: filepath.Join(t.TempDir(), "data"), Admin: server.AdminConfig{Tokens: []string{server.HashAdminToken(adminTok)}}}
	addUser(t, cfg.Data, adminUser, adminPass)
	r := start(t, cfg, shardstore.Options{})
	base := "http://" + r.s.AdminAddr()
	ck := signIn(t, noFollow, base)
	silence := `{"device":"dev-a","metric":"temp","duration":"1h"}`
	listed := func() string {
		code, body := jsonReq(t, "GET", base+"/api/v1/silences", "", nil, map[string]string{"Authorization": "Bearer " + adminTok})
		if code != 200 {
			t.Fatalf("GET silences: %d %s", code, body)
		}
		return body
	}
	for _, c := range []struct {
		name   string
		ck     *http.Cookie
		header map[string]string
		want   int
	}{
		{"no session", nil, nil, 401},
		{"wrong token", nil, map[string]string{"Authorization": "Bearer nope"}, 401},
		{"cross-site with a session", ck, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"other origin with a session", ck, map[string]string{"Origin": "https://evil.example"}, 403},
	} {
		if code, body := jsonReq(t, "POST", base+"/api/v1/silences", silence, c.ck, c.header); code != c.want {
			t.Errorf("POST silences, %s: %d %s, want %d", c.name, code, body, c.want)
		}
		if code, body := jsonReq(t, "POST", base+"/api/v1/incidents/x/ack", "", c.ck, c.header); code != c.want {
			t.Errorf("POST ack, %s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
	if got := listed(); !strings.Contains(got, `"silences":[]`) {
		t.Fatalf("a refused request stored a silence: %s", got)
	}
	code, body := jsonReq(t, "POST", base+"/api/v1/silences", silence, ck, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if code != 201 {
		t.Fatalf("same-origin POST with a session: %d %s", code, body)
	}
	if got := listed(); !strings.Contains(got, `"device":"dev-a"`) {
		t.Fatalf("silence not listed: %s", got)
	}
	if code, body := jsonReq(t, "POST", base+"/api/v1/incidents/x/ack", "", ck, nil); code != 404 {
		t.Errorf("ack of an unknown incident: %d %s", code, body)
	}

	// Restart on the same data folder: the silence is still there.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r2 := start(t, cfg, shardstore.Options{})
	code, body = jsonReq(t, "GET", "http://"+r2.s.AdminAddr()+"/api/v1/silences", "", nil, map[string]string{"Authorization": "Bearer " + adminTok})
	if code != 200 || !strings.Contains(body, `"device":"dev-a"`) {
		t.Errorf("silences after restart: %d %s", code, body)
	}
}
