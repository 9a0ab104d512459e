// One device: its state, and a live chart per numeric metric over a
// selectable window. ?end=ms shows a past window (no live updates);
// ?at=ms marks a moment (an alert) on ?metric's chart.
import { get, throttle } from "../api.js";
import { Chart } from "../chart.js";
import { h, replace, status } from "../dom.js";
import { fmtAgo, fmtMs, fmtNum, fmtRate, fmtTime } from "../format.js";
import { ackControl, fmtExpected, fmtSpan, span, stateLabel } from "../incidents.js";

const windows = { "5m": { label: "5 min", sec: 300, refetch: 0 }, "1h": { label: "1 hour", sec: 3600, refetch: 10000 }, "24h": { label: "24 hours", sec: 86400, refetch: 60000 } };

export function devicePage(main, params, { live, hook }) {
  const id = params.id;
  const win = windows[params.window] ? params.window : "5m";
  const end = params.end ? Number(params.end) : null;
  const focus = params.metric || "";
  const isLive = end == null;
  const charts = new Map(); // metric → { chart, card, value }
  const markers = new Map(); // metric → [seconds]
  let incidents = []; // the device's, from /api/v1/incidents
  if (params.at && focus) markers.set(focus, [Number(params.at) / 1000]);
  const href = (w, extra = "") => `#/device/${encodeURIComponent(id)}?window=${w}${focus ? `&metric=${encodeURIComponent(focus)}` : ""}${extra}`;

  const title = h("h1", {}, id);
  const info = h("section", { class: "facts" });
  const grid = h("section", { class: "charts" });
  const others = h("section", { class: "card", hidden: true });
  const tabs = h("div", { class: "tabs", role: "tablist" },
    Object.entries(windows).map(([w, { label }]) =>
      h("a", { href: href(w, end && !isLive ? `&end=${end}${params.at ? `&at=${params.at}` : ""}` : ""), class: w === win ? "active" : "", role: "tab" }, label)));
  const mode = isLive
    ? h("span", { class: "pill ok" }, "live")
    : h("span", { class: "history" }, `window ending ${fmtTime(new Date(end))} `, h("a", { href: href(win) }, "back to live"));

  main.append(
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "Fleet"), " / ", id),
    h("div", { class: "page-head" }, title, h("div", { class: "window" }, tabs, mode)),
    info, grid, others,
  );

  function renderInfo(d) {
    replace(title, d.id, " ", status(d.online), d.agent ? h("span", { class: "pill info" }, "gateway agent") : null);
    const fact = (k, v, cls = "") => h("div", { class: `fact ${cls}` }, h("div", { class: "k" }, k), h("div", { class: "v" }, v));
    replace(info,
      fact("Gateway", d.gateway ? h("a", { href: `#/device/${encodeURIComponent(d.gateway)}` }, d.gateway) : "–"),
      fact("Rate", fmtRate(d.rate)),
      fact("Readings", fmtNum(d.readings, 0)),
      fact("Clock skew", fmtMs(d.clock_skew_ms), Math.abs(d.clock_skew_ms ?? 0) > 2000 ? "warn" : ""),
      fact("Unsynced readings", fmtNum(d.clock_unsynced_readings, 0), d.clock_unsynced_readings ? "warn" : ""),
      fact("Anomalies", d.anomalies ? h("a", { href: `#/alerts?device=${encodeURIComponent(d.id)}` }, d.anomalies) : "0", d.anomalies ? "bad" : ""),
      fact("Last seen", fmtAgo(d.last_seen)),
    );
    const text = d.series.filter((s) => s.kind === "string" || s.kind === "data");
    others.hidden = !text.length;
    if (text.length) {
      replace(others, h("h2", {}, "Other values"), h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ["Metric", "Kind", "Last value", "Time"].map((c) => h("th", {}, c)))),
        h("tbody", {}, text.map((s) => h("tr", {}, h("td", {}, s.name), h("td", {}, s.kind), h("td", {}, s.str ?? "–"), h("td", { class: "muted" }, fmtTime(s.last_time)))))));
    }
  }

  function latest(c, v) {
    c.value.textContent = v == null ? "–" : `${fmtNum(v, 3)}${c.unit ? " " + c.unit : ""}`;
  }

  async function addChart(s) {
    const card = h("div", { class: `card chart-card${s.name === focus ? " focus" : ""}`, dataset: { metric: s.name } });
    const value = h("span", { class: "latest" });
    const plot = h("div", { class: "plot" });
    const list = h("ul", { class: "incidents", dataset: { metric: s.name } });
    card.append(h("div", { class: "chart-head" }, h("h3", {}, s.name), value), plot, list);
    grid.append(card);
    const c = { card, value, list, unit: s.unit, chart: null };
    charts.set(s.name, c);
    latest(c, s.value);
    const q = new URLSearchParams({ window: win });
    if (end) q.set("end", end);
    const data = await get(`devices/${encodeURIComponent(id)}/series/${encodeURIComponent(s.name).replaceAll("%2F", "/")}?${q}`);
    c.res = data.resolution;
    c.chart = new Chart(plot, { label: s.name, unit: s.unit, data, markers: () => markers.get(s.name) || [], spans: () => spansOf(s.name) });
    hook.charts[s.name] = c.chart;
    renderIncidents();
    if (s.name === focus) card.scrollIntoView({ block: "center" });
  }

  async function refetch(name) {
    const c = charts.get(name);
    if (!c?.chart) return;
    const q = new URLSearchParams({ window: win });
    const data = await get(`devices/${encodeURIComponent(id)}/series/${encodeURIComponent(name).replaceAll("%2F", "/")}?${q}`);
    c.res = data.resolution;
    if (!c.chart.set(data)) {
      c.chart.destroy();
      c.chart = new Chart(c.card.querySelector(".plot"), { label: name, unit: c.unit, data, markers: () => markers.get(name) || [], spans: () => spansOf(name) });
      hook.charts[name] = c.chart;
    }
  }

  let loaded = false;
  async function load() {
    try {
      const d = await get(`devices/${encodeURIComponent(id)}`);
      renderInfo(d);
      const numeric = d.series.filter((s) => s.kind === "number" || s.kind === "bool");
      await Promise.all(numeric.filter((s) => !charts.has(s.name)).map(addChart));
      if (!numeric.length && !loaded) grid.append(h("p", { class: "empty" }, "This device has no numeric metrics to chart."));
      if (!loaded) {
        loaded = true;
        const { alerts } = await get(`alerts?device=${encodeURIComponent(id)}&limit=200`);
        for (const a of alerts) if (a.event === "open") addMarker(a);
      }
      await loadIncidents();
      hook.ready = true;
    } catch (err) {
      replace(info, h("p", { class: "error" }, `Cannot load ${id}: ${err.message}`));
    }
  }

  // spansOf: the metric's incidents and the device-wide ones (missing
  // data of all its series, metric "").
  function spansOf(metric) {
    return incidents.filter((i) => i.metric === metric || i.metric === "").map(span);
  }

  // renderIncidents lists each chart's incidents under it (the shaded
  // spans' key) and redraws the charts.
  function renderIncidents() {
    for (const [name, c] of charts) {
      const mine = incidents.filter((i) => i.metric === name || i.metric === "");
      replace(c.list, mine.map((i) => h("li", { class: `incident ${i.state}`, dataset: { incident: i.id, state: i.state } },
        stateLabel(i), " ", h("span", { class: `kind k-${i.kind}` }, i.kind.replace("_", " ")), " ",
        h("span", { class: "span", dataset: { role: "span" } }, fmtSpan(i)), " ",
        h("span", { class: "muted" }, `expected ${fmtExpected(i)}, peak ${fmtNum(i.peak, 2)}`), " ",
        i.silenced ? h("span", { class: "pill off" }, "silenced") : null, " ",
        ackControl(i, (upd) => { incidents = incidents.map((x) => (x.id === upd.id ? upd : x)); renderIncidents(); }))));
      c.chart?.redraw();
    }
    hook.incidents = incidents.map((i) => ({ id: i.id, metric: i.metric, state: i.state, acknowledged: !!i.acknowledged }));
  }

  async function loadIncidents() {
    try {
      ({ incidents } = await get(`incidents?device=${encodeURIComponent(id)}&limit=200`));
      renderIncidents();
    } catch {
      // kept as they were; the next alert or overview tries again
    }
  }

  function addMarker(a) {
    const t = new Date(a.time).getTime() / 1000;
    if (!markers.has(a.metric)) markers.set(a.metric, []);
    markers.get(a.metric).push(t);
    charts.get(a.metric)?.chart?.redraw();
  }

  const offs = [];
  const refresh = throttle(load, 2000);
  const refreshIncidents = throttle(loadIncidents, 500);
  const resync = throttle(() => { for (const name of charts.keys()) refetch(name).catch(() => {}); }, 2000);
  offs.push(live.on("overview", () => refresh()));
  offs.push(live.on("alert", (a) => {
    if (a.device !== id) return;
    if (a.event === "open") addMarker(a);
    refreshIncidents();
  }));
  let timer = null;
  if (isLive) {
    live.subscribe(id);
    offs.push(live.on("points", (p) => {
      if (p.device !== id) return;
      const c = charts.get(p.metric);
      if (!c) return refresh(); // a new metric
      latest(c, p.v[p.v.length - 1]);
      if (win === "5m" && c.chart && c.res === "raw") c.chart.append(p.t, p.v, windows[win].sec);
      else if (win === "5m") resync(); // served from rollups: fetch the window again
    }));
    // The stream reconnected: points may have been missed.
    offs.push(live.on("reopen", () => resync()));
    const every = windows[win].refetch || 5000; // 5 min: resync with the server now and then
    timer = setInterval(resync, win === "5m" ? 30000 : every);
  } else {
    live.subscribe(null);
  }
  load();
  return () => {
    for (const off of offs) off();
    refresh.cancel();
    refreshIncidents.cancel();
    resync.cancel();
    clearInterval(timer);
    for (const c of charts.values()) c.chart?.destroy();
  };
}
