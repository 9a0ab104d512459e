// The monitor's JSON API (cloud/monitor/API.md) and its event stream.

export async function get(path) {
  const resp = await fetch(`/api/v1/${path}`, { headers: { Accept: "application/json" } });
  if (resp.status === 401) {
    // The session ended (expired, signed out elsewhere, user removed):
    // sign in again, then come back here.
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.hash)}`);
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.error || `${resp.status} ${resp.statusText}`);
  return body;
}

// send makes a state-changing request (POST, DELETE) with a JSON body.
// The browser marks it same-origin (Sec-Fetch-Site, Origin), which the
// admin listener's cross-site protection requires; the session cookie
// authenticates it.
export async function send(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(`/api/v1/${path}`, init);
  if (resp.status === 401) location.assign(`/login?next=${encodeURIComponent(location.pathname + location.hash)}`);
  const out = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(out.error || `${resp.status} ${resp.statusText}`);
  return out;
}

// Live keeps one EventSource to /api/v1/events. Pages add listeners with
// on(name, fn) for "overview", "points", "alert" and "reopen" (the stream
// reconnected, so events may have been missed); on() returns a function
// that removes the listener. subscribe() reopens the stream for another
// device's points.
export class Live {
  constructor(indicator) {
    this.indicator = indicator;
    this.listeners = { overview: new Set(), points: new Set(), alert: new Set() };
    this.reopened = new Set(); // called when the stream reconnects: events may have been missed
    this.device = null;
    this.lastOverview = null;
    this.open();
  }

  subscribe(device) {
    if (device === this.device) return;
    this.device = device;
    this.open();
  }

  open() {
    this.es?.close();
    const q = this.device ? `?device=${encodeURIComponent(this.device)}` : "";
    const es = new EventSource(`/api/v1/events${q}`);
    this.es = es;
    this.setState("connecting");
    let opened = false;
    es.onopen = () => {
      this.setState("live");
      if (opened) for (const fn of this.reopened) fn();
      opened = true;
    };
    es.onerror = () => this.setState(es.readyState === EventSource.CLOSED ? "offline" : "reconnecting");
    for (const name of Object.keys(this.listeners)) {
      es.addEventListener(name, (ev) => {
        const data = JSON.parse(ev.data);
        if (name === "overview") this.lastOverview = data;
        for (const fn of this.listeners[name]) fn(data);
      });
    }
  }

  on(name, fn) {
    if (name === "reopen") {
      this.reopened.add(fn);
      return () => this.reopened.delete(fn);
    }
    this.listeners[name].add(fn);
    if (name === "overview" && this.lastOverview) fn(this.lastOverview);
    return () => this.listeners[name].delete(fn);
  }

  setState(s) {
    this.state = s;
    this.indicator.dataset.state = s;
    this.indicator.querySelector(".label").textContent = s;
  }
}

// throttle runs fn at most once per ms, trailing calls coalesced.
export function throttle(fn, ms) {
  let last = 0, timer = null;
  const run = () => { timer = null; last = Date.now(); fn(); };
  const t = () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(run, wait);
  };
  t.cancel = () => clearTimeout(timer);
  return t;
}
