// Tributary's dashboard: a hash-routed single page over the monitor API.
//
//   #/                 fleet: gateways and devices
//   #/device/{id}      live charts of a device (?window=5m|1h|24h&end=ms&at=ms&metric=)
//   #/stream           shards, hash ranges, rates against limits, lag; utilisation
//                      against the shard limits, the autoscaler's decisions,
//                      the monthly estimate of the current traffic per engine
//   #/alerts           anomalies, live
import { Live } from "./api.js";
import { h, replace } from "./dom.js";
import { fmtRate } from "./format.js";
import { fleetPage } from "./pages/fleet.js";
import { devicePage } from "./pages/device.js";
import { streamPage } from "./pages/stream.js";
import { alertsPage } from "./pages/alerts.js";

// window.__tributary is the hook end-to-end tests read.
const hook = (window.__tributary = {
  page: null,
  ready: false,
  charts: {},
  chartLen(metric) {
    const c = this.charts[metric];
    return c ? c.length : -1;
  },
  alertsShown: 0,
});

const main = document.getElementById("main");
const live = new Live(document.getElementById("live"));
let cleanup = null;

function route() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const params = Object.fromEntries(new URLSearchParams(query));
  const parts = path.split("/").filter(Boolean);
  cleanup?.();
  hook.charts = {};
  hook.ready = false;
  let page = "fleet", mount = fleetPage;
  if (parts[0] === "device" && parts[1]) {
    page = "device";
    mount = devicePage;
    params.id = decodeURIComponent(parts.slice(1).join("/"));
  } else if (parts[0] === "stream") {
    page = "stream";
    mount = streamPage;
  } else if (parts[0] === "alerts") {
    page = "alerts";
    mount = alertsPage;
  }
  hook.page = page;
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === page || (page === "device" && a.dataset.nav === "fleet"));
  }
  if (page !== "device") live.subscribe(null);
  replace(main);
  cleanup = mount(main, params, { live, hook });
  window.scrollTo(0, 0);
}

// The header summary follows every overview event.
const summary = document.getElementById("summary");
const badge = document.getElementById("alert-badge");
live.on("overview", (o) => {
  replace(summary,
    h("span", {}, h("b", {}, `${o.devices.online}`), `/${o.devices.total} devices online`),
    h("span", {}, h("b", {}, `${o.gateways.online}`), `/${o.gateways.total} gateways`),
    h("span", {}, h("b", {}, fmtRate(o.ingest_rate)), " ingest"),
  );
  badge.hidden = !o.anomalies_last_hour;
  badge.textContent = o.anomalies_last_hour;
  badge.title = `${o.anomalies_last_hour} anomalies in the last hour`;
});

window.addEventListener("hashchange", route);
route();
