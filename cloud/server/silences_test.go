package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/edge/uplink"
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

// A silenced device's incidents are listed (marked silenced) but not
// posted to the webhook; another device's are.
func TestSilencedDeviceSkipsWebhook(t *testing.T) {
	var mu sync.Mutex
	hooked := map[string]int{} // device → posts
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a anomaly.Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		hooked[a.Device]++
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := server.Config{Data: t.TempDir(), Anomaly: server.AnomalyConfig{Webhook: hook.URL}}
	r := start(t, cfg, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}})
	tok, err := r.s.Tokens().Issue("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	admin := "http://" + r.s.AdminAddr()
	if code, body := jsonReq(t, "POST", admin+"/api/v1/silences", `{"device":"node-0","duration":"1h"}`, nil, nil); code != 201 {
		t.Fatalf("silence node-0: %d %s", code, body)
	}

	rs := series(2, 1000, 0, 900) // node-0 spikes at point 900
	rs[900*2+1].Value += 30       // and so does node-1
	ship(t, newSrc(rs), uplink.Config{URL: "http://" + r.s.Addr(), Token: tok})

	var al struct{ Alerts []monitor.AlertEntry }
	loud := 0
	eventually(t, "both spikes' alerts", func() bool {
		al.Alerts = nil // a fresh decode: silenced is omitted when false
		getJSON(t, admin+"/api/v1/alerts?limit=1000", &al)
		var quiet bool
		loud = 0
		for _, a := range al.Alerts {
			switch a.Device {
			case "node-0":
				quiet = true
				if !a.Silenced {
					t.Fatalf("alert of the silenced node-0 not marked silenced: %+v", a)
				}
			default:
				if a.Silenced {
					t.Fatalf("alert of %s marked silenced: %+v", a.Device, a)
				}
				loud++
			}
		}
		return quiet && loud > 0
	})
	eventually(t, "node-1's alerts posted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return hooked["node-1"] >= loud
	})
	mu.Lock()
	defer mu.Unlock()
	t.Logf("webhook posts by device: %v; alerts kept: %d", hooked, len(al.Alerts))
	if hooked["node-0"] != 0 {
		t.Errorf("the silenced node-0's alerts were posted %d times", hooked["node-0"])
	}
}
