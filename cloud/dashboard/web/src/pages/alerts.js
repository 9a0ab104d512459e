// Anomalies: the incidents (open or resolved, each with Acknowledge and
// Silence controls) and the alerts the detectors raised, newest first,
// live. Each links to its device's chart around the alert's time.
import { get, send, throttle } from "../api.js";
import { deviceLink, h, replace } from "../dom.js";
import { fmtAgo, fmtNum, fmtTime } from "../format.js";
import { ackControl, fmtExpected, fmtSpan, silenceControl, stateLabel } from "../incidents.js";

const kinds = ["spike", "level_shift", "drift", "stuck", "noise", "missing", "pattern"];

// chartLink: a live 5-minute chart for a recent alert, else the hour
// around it.
export function chartHref(a) {
  const t = new Date(a.time).getTime();
  const base = `#/device/${encodeURIComponent(a.device)}?metric=${encodeURIComponent(a.metric)}&at=${t}`;
  return Date.now() - t < 4 * 60 * 1000 ? `${base}&window=5m` : `${base}&window=1h&end=${t + 30 * 60 * 1000}`;
}

// incidentsSection: the incidents table with its state filter, and the
// active silences. It returns { el, reload }.
function incidentsSection(params, hook) {
  let state = params.state === "open" || params.state === "resolved" ? params.state : "open";
  const body = h("tbody");
  const silences = h("ul", { class: "silences", id: "silences" });
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const renderTabs = () => replace(tabs, [["open", "Open"], ["resolved", "Resolved"], ["", "All"]].map(([v, label]) =>
    h("a", { href: "#", role: "tab", class: v === state ? "active" : "", dataset: { state: v || "all" },
      onclick: (e) => { e.preventDefault(); state = v; renderTabs(); reload(); } }, label)));
  renderTabs();
  const row = (i) => h("tr", { dataset: { incident: i.id, state: i.state } },
    h("td", {}, stateLabel(i)),
    h("td", {}, deviceLink(i.device)),
    h("td", {}, i.metric || "–"),
    h("td", {}, h("span", { class: `kind k-${i.kind}` }, i.kind.replace("_", " "))),
    h("td", { title: fmtAgo(i.start) }, fmtSpan(i)),
    h("td", { class: "num" }, fmtExpected(i)),
    h("td", { class: "num" }, fmtNum(i.peak, 2)),
    h("td", { class: "actions" }, ackControl(i, () => reload()), " ", i.silenced ? h("span", { class: "pill off" }, "silenced") : null, " ",
      silenceControl(i, () => reload()), " ", h("a", { href: chartHref(i.latest), class: "button" }, "chart")));

  async function reload() {
    try {
      const q = new URLSearchParams({ limit: "500" });
      if (state) q.set("state", state);
      if (params.device) q.set("device", params.device);
      const [{ incidents }, sil] = await Promise.all([get(`incidents?${q}`), get("silences").catch(() => ({ silences: [] }))]);
      hook.incidents = incidents.map((i) => ({ id: i.id, metric: i.metric, state: i.state, acknowledged: !!i.acknowledged }));
      replace(body, incidents.length ? incidents.map(row)
        : h("tr", {}, h("td", { colspan: 8, class: "empty" }, state ? `No ${state} incident.` : "No incident yet.")));
      replace(silences, sil.silences.map((s) => h("li", { dataset: { silence: s.id } },
        `${s.device}${s.metric ? " / " + s.metric : ""} silenced until ${fmtTime(s.until)} `,
        h("button", { type: "button", class: "button", onclick: () => send("DELETE", `silences/${encodeURIComponent(s.id)}`).then(reload, () => {}) }, "end"))));
    } catch (err) {
      replace(body, h("tr", {}, h("td", { colspan: 8, class: "error" }, `Cannot load incidents: ${err.message}`)));
    }
  }
  const el = h("section", { class: "card" },
    h("div", { class: "card-head" }, h("h2", {}, "Incidents"), h("div", { class: "controls" }, tabs)),
    h("table", { class: "grid", id: "incidents" },
      h("thead", {}, h("tr", {}, ["State", "Device", "Metric", "Kind", "Span", "Expected", "Peak", ""].map((c) => h("th", {}, c)))),
      body),
    silences);
  return { el, reload };
}

export function alertsPage(main, params, { live, hook }) {
  const filter = { device: params.device || "", kind: "" };
  const inc = incidentsSection(params, hook);
  const reloadIncidents = throttle(inc.reload, 500);
  const body = h("tbody");
  const count = h("span", { class: "muted" });
  let alerts = [];
  const fresh = new Set();

  main.append(
    h("h1", {}, "Anomalies"),
    inc.el,
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, "Alerts ", count),
        h("div", { class: "controls" },
          h("input", { type: "search", placeholder: "Device…", value: filter.device, "aria-label": "Filter by device",
            oninput: (e) => { filter.device = e.target.value.trim(); render(); } }),
          h("select", { "aria-label": "Kind", onchange: (e) => { filter.kind = e.target.value; render(); } },
            h("option", { value: "" }, "all kinds"), kinds.map((k) => h("option", { value: k }, k.replace("_", " ")))))),
      h("table", { class: "grid", id: "alerts" },
        h("thead", {}, h("tr", {}, ["Time", "Device", "Metric", "Event", "Kind", "Score", "Value", ""].map((c) => h("th", {}, c)))),
        body)),
  );

  function render() {
    const shown = alerts.filter((a) => (!filter.device || a.device.includes(filter.device)) && (!filter.kind || a.kind === filter.kind));
    hook.alertsShown = shown.length;
    count.textContent = `(${shown.length}${shown.length !== alerts.length ? ` of ${alerts.length}` : ""})`;
    replace(body, shown.length ? shown.map((a) => h("tr", { class: fresh.has(a.id) ? "fresh" : "", dataset: { alert: a.id } },
      h("td", { title: fmtAgo(a.time) }, fmtTime(a.time)),
      h("td", {}, deviceLink(a.device)),
      h("td", {}, a.metric),
      h("td", {}, a.event || "–", a.silenced ? h("span", { class: "muted" }, " (silenced)") : null),
      h("td", {}, h("span", { class: `kind k-${a.kind}` }, a.kind.replace("_", " "))),
      h("td", { class: "num" }, fmtNum(a.score, 2)),
      h("td", { class: "num" }, fmtNum(a.value, 3)),
      h("td", {}, h("a", { href: chartHref(a), class: "button" }, "chart")),
    )) : h("tr", {}, h("td", { colspan: 8, class: "empty" }, alerts.length ? "No alert matches the filter." : "No anomaly detected yet.")));
  }

  get("alerts?limit=500")
    .then(({ alerts: list }) => {
      const known = new Set(alerts.map((a) => a.id));
      alerts = alerts.concat(list.filter((a) => !known.has(a.id))).sort((a, b) => b.id - a.id);
      render();
      hook.ready = true;
    })
    .catch((err) => replace(body, h("tr", {}, h("td", { colspan: 8, class: "error" }, `Cannot load alerts: ${err.message}`))));

  inc.reload();
  const off = live.on("alert", (a) => {
    reloadIncidents();
    if (alerts.some((x) => x.id === a.id)) return;
    alerts.unshift(a);
    alerts.length = Math.min(alerts.length, 500);
    fresh.add(a.id);
    setTimeout(() => { fresh.delete(a.id); }, 3000);
    render();
  });
  render();
  return () => { off(); reloadIncidents.cancel(); };
}
