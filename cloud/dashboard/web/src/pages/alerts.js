// Anomalies: the alerts the detectors raised, newest first, live. Each
// links to its device's chart around the alert's time.
import { get } from "../api.js";
import { deviceLink, h, replace } from "../dom.js";
import { fmtAgo, fmtNum, fmtTime } from "../format.js";

const kinds = ["spike", "level_shift", "drift", "stuck", "noise", "missing", "pattern"];

// chartLink: a live 5-minute chart for a recent alert, else the hour
// around it.
export function chartHref(a) {
  const t = new Date(a.time).getTime();
  const base = `#/device/${encodeURIComponent(a.device)}?metric=${encodeURIComponent(a.metric)}&at=${t}`;
  return Date.now() - t < 4 * 60 * 1000 ? `${base}&window=5m` : `${base}&window=1h&end=${t + 30 * 60 * 1000}`;
}

export function alertsPage(main, params, { live, hook }) {
  const filter = { device: params.device || "", kind: "" };
  const body = h("tbody");
  const count = h("span", { class: "muted" });
  let alerts = [];
  const fresh = new Set();

  main.append(
    h("h1", {}, "Anomalies"),
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, "Alerts ", count),
        h("div", { class: "controls" },
          h("input", { type: "search", placeholder: "Device…", value: filter.device, "aria-label": "Filter by device",
            oninput: (e) => { filter.device = e.target.value.trim(); render(); } }),
          h("select", { "aria-label": "Kind", onchange: (e) => { filter.kind = e.target.value; render(); } },
            h("option", { value: "" }, "all kinds"), kinds.map((k) => h("option", { value: k }, k.replace("_", " ")))))),
      h("table", { class: "grid", id: "alerts" },
        h("thead", {}, h("tr", {}, ["Time", "Device", "Metric", "Kind", "Score", "Value", ""].map((c) => h("th", {}, c)))),
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
      h("td", {}, h("span", { class: `kind k-${a.kind}` }, a.kind.replace("_", " "))),
      h("td", { class: "num" }, fmtNum(a.score, 2)),
      h("td", { class: "num" }, fmtNum(a.value, 3)),
      h("td", {}, h("a", { href: chartHref(a), class: "button" }, "chart")),
    )) : h("tr", {}, h("td", { colspan: 7, class: "empty" }, alerts.length ? "No alert matches the filter." : "No anomaly detected yet.")));
  }

  get("alerts?limit=500")
    .then(({ alerts: list }) => {
      const known = new Set(alerts.map((a) => a.id));
      alerts = alerts.concat(list.filter((a) => !known.has(a.id))).sort((a, b) => b.id - a.id);
      render();
      hook.ready = true;
    })
    .catch((err) => replace(body, h("tr", {}, h("td", { colspan: 7, class: "error" }, `Cannot load alerts: ${err.message}`))));

  const off = live.on("alert", (a) => {
    if (alerts.some((x) => x.id === a.id)) return;
    alerts.unshift(a);
    alerts.length = Math.min(alerts.length, 500);
    fresh.add(a.id);
    setTimeout(() => { fresh.delete(a.id); }, 3000);
    render();
  });
  render();
  return off;
}
