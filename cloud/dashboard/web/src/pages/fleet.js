// Fleet overview: headline figures, gateways with their agents' health,
// and a filterable, paged device list. Refreshed on overview events.
import { get, throttle } from "../api.js";
import { deviceLink, flag, h, replace, status } from "../dom.js";
import { fmtAgo, fmtBytes, fmtDuration, fmtMs, fmtNum, fmtRate } from "../format.js";

const pageSize = 50;

function kpi(label, value, sub, tone = "") {
  return h("div", { class: `kpi ${tone}` }, h("div", { class: "kpi-label" }, label),
    h("div", { class: "kpi-value" }, value), h("div", { class: "kpi-sub" }, sub));
}

export function fleetPage(main, _params, { live, hook }) {
  const kpis = h("section", { class: "kpis" });
  const gwBody = h("tbody");
  const devBody = h("tbody");
  const pager = h("div", { class: "pager" });
  const state = { q: "", status: "", gateway: "", offset: 0 };
  const gwSelect = h("select", { "aria-label": "Gateway", onchange: (e) => { state.gateway = e.target.value; state.offset = 0; refresh(); } },
    h("option", { value: "" }, "all gateways"));

  let searchTimer;
  const controls = h("div", { class: "controls" },
    h("input", { type: "search", placeholder: "Filter devices by id…", "aria-label": "Filter devices",
      oninput: (e) => { clearTimeout(searchTimer); searchTimer = setTimeout(() => { state.q = e.target.value.trim(); state.offset = 0; refresh(); }, 200); } }),
    h("select", { "aria-label": "Status", onchange: (e) => { state.status = e.target.value; state.offset = 0; refresh(); } },
      h("option", { value: "" }, "any status"), h("option", { value: "online" }, "online"), h("option", { value: "offline" }, "offline")),
    gwSelect,
  );

  main.append(
    h("h1", {}, "Fleet"),
    kpis,
    h("section", { class: "card" },
      h("h2", {}, "Gateways"),
      h("table", { class: "grid", id: "gateways" },
        h("thead", {}, h("tr", {}, ["Gateway", "Status", "Devices", "Ingest", "Queue", "Queue file", "Oldest unsent", "Dropped", "Clock", "Uplink", "Uplink delay", "Last seen"].map((c) => h("th", {}, c)))),
        gwBody)),
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, "Devices"), controls),
      h("table", { class: "grid", id: "devices" },
        h("thead", {}, h("tr", {}, ["Device", "Status", "Gateway", "Rate", "Metrics", "Readings", "Clock skew", "Unsynced", "Anomalies", "Last seen"].map((c) => h("th", {}, c)))),
        devBody),
      pager),
  );

  function renderKpis(o) {
    replace(kpis,
      kpi("Devices online", `${o.devices.online} / ${o.devices.total}`, `${o.devices.offline} offline`, o.devices.offline ? "warn" : "good"),
      kpi("Gateways online", `${o.gateways.online} / ${o.gateways.total}`, `${o.gateways.offline} offline`, o.gateways.offline ? "warn" : "good"),
      kpi("Ingest rate", fmtRate(o.ingest_rate), `${fmtNum(o.readings, 0)} readings, ${fmtNum(o.duplicates, 0)} duplicates`),
      kpi("Anomalies (1 h)", String(o.anomalies_last_hour), `${o.alerts} since start`, o.anomalies_last_hour ? "alert" : ""),
      kpi("Consumer lag", fmtMs(o.max_lag_ms), `${o.shards} shards, ${o.series} series`, o.max_lag_ms > 10000 ? "warn" : ""),
    );
  }

  async function refresh() {
    try {
      const q = new URLSearchParams({ limit: pageSize, offset: state.offset });
      if (state.q) q.set("q", state.q);
      if (state.status) q.set("status", state.status);
      if (state.gateway) q.set("gateway", state.gateway);
      const [{ gateways }, page] = await Promise.all([get("gateways"), get(`devices?${q}`)]);
      renderGateways(gateways);
      renderDevices(page);
      hook.ready = true;
    } catch (err) {
      replace(devBody, h("tr", {}, h("td", { colspan: 10, class: "error" }, `Cannot load: ${err.message}`)));
    }
  }

  function renderGateways(gateways) {
    const selected = gwSelect.value;
    replace(gwSelect, h("option", { value: "" }, "all gateways"), gateways.map((g) => h("option", { value: g.id }, g.id)));
    gwSelect.value = selected;
    if (!gateways.length) {
      replace(gwBody, h("tr", {}, h("td", { colspan: 12, class: "empty" }, "No gateway has reported yet.")));
      return;
    }
    replace(gwBody, gateways.map((g) => {
      const hl = g.health;
      return h("tr", { dataset: { gateway: g.id } },
        h("td", {}, h("a", { href: `#/device/${encodeURIComponent(g.id)}`, title: "The agent's health readings" }, g.id)),
        h("td", {}, status(g.online)),
        h("td", { class: "num" }, `${g.devices_online} / ${g.devices}`),
        h("td", { class: "num" }, fmtRate(g.rate)),
        h("td", { class: "num" }, fmtNum(hl.queue_depth, 0)),
        h("td", { class: "num" }, fmtBytes(hl.queue_file_bytes)),
        h("td", { class: `num ${hl.oldest_unsent_age_s > 60 ? "warn-text" : ""}` }, fmtDuration(hl.oldest_unsent_age_s)),
        h("td", { class: `num ${hl.dropped > 0 ? "bad-text" : ""}` }, fmtNum(hl.dropped, 0)),
        h("td", {}, flag(hl.clock_synced, "synced", "unsynced")),
        h("td", {}, flag(hl.uplink_ok, "ok", "down")),
        h("td", { class: "num" }, fmtMs(g.uplink_delay_ms)),
        h("td", { class: "muted" }, fmtAgo(g.last_seen)),
      );
    }));
  }

  function renderDevices(p) {
    if (!p.devices.length) {
      replace(devBody, h("tr", {}, h("td", { colspan: 10, class: "empty" }, p.total ? "No device on this page." : "No device matches.")));
    } else {
      replace(devBody, p.devices.map((d) => h("tr", { dataset: { device: d.id } },
        h("td", {}, deviceLink(d.id)),
        h("td", {}, status(d.online)),
        h("td", {}, d.gateway || "–"),
        h("td", { class: "num" }, fmtRate(d.rate)),
        h("td", { class: "num" }, d.metrics),
        h("td", { class: "num" }, fmtNum(d.readings, 0)),
        h("td", { class: `num ${Math.abs(d.clock_skew_ms ?? 0) > 2000 ? "warn-text" : ""}` }, fmtMs(d.clock_skew_ms)),
        h("td", { class: `num ${d.clock_unsynced_readings ? "warn-text" : ""}` }, fmtNum(d.clock_unsynced_readings, 0)),
        h("td", { class: `num ${d.anomalies ? "bad-text" : ""}` }, d.anomalies ? h("a", { href: `#/alerts?device=${encodeURIComponent(d.id)}` }, d.anomalies) : "0"),
        h("td", { class: "muted" }, fmtAgo(d.last_seen)),
      )));
    }
    const last = Math.min(p.offset + p.devices.length, p.total);
    replace(pager,
      h("span", { class: "muted" }, p.total ? `${p.offset + 1}–${last} of ${p.total}` : "0 devices"),
      h("button", { disabled: p.offset === 0 || null, onclick: () => { state.offset = Math.max(0, state.offset - pageSize); refresh(); } }, "‹ Previous"),
      h("button", { disabled: last >= p.total || null, onclick: () => { state.offset += pageSize; refresh(); } }, "Next ›"),
    );
  }

  const later = throttle(refresh, 1000);
  const off = live.on("overview", (o) => { renderKpis(o); later(); });
  refresh();
  return () => { off(); later.cancel(); clearTimeout(searchTimer); };
}
