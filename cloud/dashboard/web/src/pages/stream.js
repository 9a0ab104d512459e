// The stream: its shards, how they split the hash key space, their write
// rate against the per-shard limit, and how far the consumer lags; each
// shard's utilisation against its limits (/api/v1/autoscale), the
// autoscaler's decisions, and the planner's monthly estimate for the
// current traffic on each engine (/api/v1/plan).
import { get } from "../api.js";
import { h, replace } from "../dom.js";
import { fmtAgo, fmtBytes, fmtMs, fmtNum } from "../format.js";
import { capacityCard, meter, planCard, shortID } from "./capacity.js";

// short abbreviates a 128-bit decimal hash key.
function short(k) {
  if (!k) return "–";
  return k.length > 12 ? `${k.slice(0, 5)}…${k.slice(-4)}` : k;
}

export function streamPage(main, _params, { hook }) {
  const keyspace = h("div", { class: "keyspace" });
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  main.append(
    h("h1", {}, "Stream"),
    h("section", { class: "card" }, h("h2", {}, "Hash key space (open shards)"), keyspace,
      h("div", { class: "axis" }, h("span", {}, "0"), h("span", {}, "2¹²⁸ − 1"))),
    h("section", { class: "card" }, h("h2", {}, "Shards"),
      h("div", { class: "scroll" }, h("table", { class: "grid", id: "shards" },
        h("thead", {}, h("tr", {}, ["Shard", "State", "Parent", "Hash range", "Share", "Records in", "Bytes in", "Consumer lag", "Last batch"].map((c) => h("th", {}, c)))),
        body)), note),
  );
  const capacity = capacityCard(main);
  const estimate = planCard(main);

  async function refresh() {
    const [s, a, p] = await Promise.allSettled([get("stream"), get("autoscale"), get("plan")]);
    if (s.status === "fulfilled") render(s.value);
    else replace(note, h("span", { class: "error" }, `Cannot load the stream: ${s.reason.message}`));
    const closed = new Set(s.status === "fulfilled" ? s.value.shards.filter((x) => x.listed && !x.open).map((x) => x.id) : []);
    capacity.render(a.status === "fulfilled" ? a.value : null, a.reason, closed);
    estimate.render(p.status === "fulfilled" ? p.value : null, p.reason);
    hook.ready = s.status === "fulfilled";
  }

  function render(s) {
    const open = s.shards.filter((x) => x.open && x.keyspace_fraction > 0);
    replace(keyspace, open.length
      ? open.map((x, i) => {
        const seg = h("div", { class: `seg c${i % 6} ${x.utilization > 0.8 ? "hot" : ""}`, title: `${x.id}: ${x.starting_hash_key} – ${x.ending_hash_key}` },
          h("span", {}, shortID(x.id)));
        seg.style.flexGrow = String(x.keyspace_fraction);
        return seg;
      })
      : h("div", { class: "empty" }, "Hash ranges unknown (the backend lists no shards)."));
    replace(body, s.shards.length ? s.shards.map((x) => h("tr", { dataset: { shard: x.id } },
      h("td", {}, x.id),
      h("td", {}, h("span", { class: `pill ${x.open ? "ok" : "off"}` }, x.open ? "open" : "closed")),
      h("td", { class: "muted", title: [x.parent, x.adjacent_parent].filter(Boolean).join(" + ") }, [x.parent, x.adjacent_parent].filter(Boolean).map(shortID).join(" + ") || "–"),
      h("td", { class: "mono", title: x.starting_hash_key ? `${x.starting_hash_key} – ${x.ending_hash_key}` : "" }, x.starting_hash_key ? `${short(x.starting_hash_key)} – ${short(x.ending_hash_key)}` : "–"),
      h("td", { class: "num" }, x.keyspace_fraction ? `${fmtNum(x.keyspace_fraction * 100, 1)}%` : "–"),
      h("td", {}, meter(x.records_per_sec, x.limit_records_per_sec, `${fmtNum(x.records_per_sec, 1)} / ${fmtNum(x.limit_records_per_sec, 0)} rec/s`)),
      h("td", {}, meter(x.bytes_per_sec, x.limit_bytes_per_sec, `${fmtBytes(x.bytes_per_sec)}/s of ${fmtBytes(x.limit_bytes_per_sec)}/s`)),
      h("td", { class: `num ${x.lag_ms > 10000 ? "warn-text" : ""}` }, x.lag_ms == null ? "–" : fmtMs(x.lag_ms)),
      h("td", { class: "muted" }, x.last_batch ? fmtAgo(x.last_batch) : "never"),
    )) : h("tr", {}, h("td", { colspan: 9, class: "empty" }, "No shard seen yet.")));
    replace(note, s.error ? h("span", { class: "error" }, `Shard listing failed: ${s.error}. Showing the shards seen in batches.`) :
      "Rates: records with new readings over the last 10 s, by stream arrival time (redelivered records are not counted), against the per-shard write limits. Lag: MillisBehindLatest of the shard's last batch.");
  }

  refresh();
  const timer = setInterval(refresh, 2000);
  return () => clearInterval(timer);
}
