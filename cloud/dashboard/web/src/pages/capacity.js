// The stream page's capacity cards: each shard's utilisation against its
// limits and the autoscaler's decisions (/api/v1/autoscale), and the
// planner's monthly estimate for the current traffic (/api/v1/plan).
import { h, replace } from "../dom.js";
import { fmtBytes, fmtNum, fmtTime } from "../format.js";

// meter: a bar of value against limit (hot above 80%, warm above 50%).
export function meter(value, limit, text) {
  const frac = limit > 0 ? value / limit : 0;
  const bar = h("div", { class: "bar" });
  bar.style.width = `${Math.min(100, frac * 100).toFixed(1)}%`;
  return h("div", { class: `meter ${frac > 0.8 ? "hot" : frac > 0.5 ? "warm" : ""}`, title: `${(frac * 100).toFixed(1)}% of the limit` },
    h("div", { class: "track" }, bar), h("span", {}, text));
}

// shortID: shardId-000000000012 → #12.
export const shortID = (id) => id.replace(/^shardId-0*(?=\d)/, "#");

const usd = (v) => `$${v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

const pct = (v) => `${fmtNum(v * 100, 1)}%`;

const actions = {
  update_shard_count: "UpdateShardCount",
  split_shard: "SplitShard",
  hold: "hold",
  none: "none",
};

// capacityCard appends the utilisation and autoscaler cards to main and
// returns { render(status, err) }.
export function capacityCard(main) {
  const util = h("tbody");
  const utilNote = h("p", { class: "muted" });
  const scaler = h("div", { id: "autoscale" });
  main.append(
    h("section", { class: "card" }, h("h2", {}, "Utilisation against the shard limits"),
      h("div", { class: "scroll" }, h("table", { class: "grid", id: "utilisation" },
        h("thead", {}, h("tr", {}, ["Shard", "Write bytes", "Write records", "Read bytes", "Throttled", "Utilisation"].map((c) => h("th", {}, c)))),
        util)), utilNote),
    h("section", { class: "card" }, h("h2", {}, "Autoscaler"), scaler),
  );

  // render shows st (null: err); closed lists shards known closed: their
  // loads are those of the interval before a reshard, until the next one.
  function render(st, err, closed = new Set()) {
    if (!st) {
      replace(util, h("tr", {}, h("td", { colspan: 6, class: "empty" }, "–")));
      replace(utilNote, h("span", { class: "error" }, `Cannot load the shards' utilisation: ${err?.message ?? "unknown error"}`));
      replace(scaler, h("p", { class: "error" }, "Cannot load the autoscaler's status."));
      return;
    }
    renderUtilisation({ ...st, shards: st.shards.filter((x) => !closed.has(x.shard)) }, st.shards.length > 0);
    renderScaler(st);
  }

  function renderUtilisation(st, resharded) {
    const lim = st.limits;
    replace(util, st.shards.length ? st.shards.map((x) => {
      const throttled = x.write_throttled_per_sec + x.read_throttled_per_sec;
      return h("tr", { dataset: { shard: x.shard }, class: throttled > 0 ? "throttled" : null },
        h("td", {}, x.shard),
        h("td", {}, meter(x.incoming_bytes_per_sec, lim.write_bytes_per_sec, `${fmtBytes(x.incoming_bytes_per_sec)}/s of ${fmtBytes(lim.write_bytes_per_sec)}/s`)),
        h("td", {}, meter(x.incoming_records_per_sec, lim.write_records_per_sec, `${fmtNum(x.incoming_records_per_sec, 1)} / ${fmtNum(lim.write_records_per_sec, 0)} rec/s`)),
        h("td", {}, meter(x.outgoing_bytes_per_sec, lim.read_bytes_per_sec, `${fmtBytes(x.outgoing_bytes_per_sec)}/s of ${fmtBytes(lim.read_bytes_per_sec)}/s`)),
        h("td", { class: throttled > 0 ? "bad-text" : "muted" }, throttled > 0
          ? `${fmtNum(x.write_throttled_per_sec, 1)} writes/s, ${fmtNum(x.read_throttled_per_sec, 1)} reads/s throttled`
          : "none"),
        h("td", { class: `num ${x.utilisation > 1 ? "bad-text" : x.utilisation > 0.8 ? "warn-text" : ""}` }, pct(x.utilisation)),
      );
    }) : h("tr", {}, h("td", { colspan: 6, class: "empty" }, st.partitions ? "Kafka partitions have no shard limits: see the partition headroom below."
      : resharded ? "The shards changed: measuring the new ones." : "Not measured yet (two measurements are needed).")));
    replace(utilNote, "Per second over the last measurement interval. Write demand counts the throttled records too; utilisation is the largest of write bytes, write records and read bytes over the shard's limit.");
  }

  function renderScaler(st) {
    const parts = [];
    if (st.refused) parts.push(h("p", { class: "warn-text" }, st.refused));
    if (st.partitions) parts.push(headroom(st.partitions));
    if (!st.enabled && !st.refused) {
      parts.push(h("p", { class: "off-line" }, h("b", {}, "Autoscaling is off. "),
        "Set ", h("code", {}, "stream.autoscale.enabled: true"), " in the cloud's configuration to reshard the stream to fit its load (embedded store or Kinesis)."));
    }
    if (st.enabled) {
      const c = st.config;
      parts.push(h("p", { class: "muted" },
        `${c.min_shards}–${c.max_shards} shards, target ${pct(c.target_utilisation)} of the limits, measured every ${c.interval}, ` +
        `cooldown ${c.cooldown}, scale down after ${c.scale_down_delay}. UpdateShardCount calls in the last 24 h: ${st.update_shard_count_calls_last_24h} of 10.`));
      if (st.last) parts.push(h("p", {}, h("b", {}, "Latest: "), st.last.reason || actions[st.last.action] || st.last.action));
      const rows = collapseHolds([...st.decisions].reverse());
      parts.push(h("div", { class: "scroll" }, h("table", { class: "grid", id: "decisions" },
        h("thead", {}, h("tr", {}, ["Time", "Action", "Shards", "Reason"].map((c) => h("th", {}, c)))),
        h("tbody", {}, rows.length ? rows.map((d) => h("tr", { dataset: { action: d.action } },
          h("td", {}, fmtTime(d.time), d.holds > 1 ? h("div", { class: "muted" }, `${d.holds} holds since ${fmtTime(d.since)}`) : null),
          h("td", {}, h("span", { class: `pill ${d.error ? "bad" : d.action === "hold" ? "off" : "info"}` }, actions[d.action] || d.action)),
          h("td", { class: "num" }, `${d.from_shards} → ${d.to_shards}`),
          h("td", { class: "reason" }, d.reason, d.shard ? ` (${shortID(d.shard)})` : "", d.error ? h("div", { class: "error" }, d.error) : null),
        )) : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No decision yet: the load has not asked for a change."))))));
    }
    if (st.note && st.enabled) parts.push(h("p", { class: "muted" }, st.note));
    replace(scaler, parts);
  }
  return { render };
}

// collapseHolds merges runs of holds (newest first) into their newest,
// counting them: a hold is recorded whenever its reason changes, and the
// reason carries the load, so a held stream adds one every measurement.
function collapseHolds(ds) {
  const out = [];
  for (const d of ds) {
    const prev = out[out.length - 1];
    if (d.action === "hold" && prev?.action === "hold" && !d.error && !prev.error) {
      prev.holds++;
      prev.since = d.time;
      continue;
    }
    out.push({ ...d, holds: 1, since: d.time });
  }
  return out;
}

// headroom renders a Kafka topic's partition headroom.
function headroom(p) {
  return h("div", { id: "partitions" },
    h("p", {}, h("b", {}, `Topic ${p.topic}: ${p.partitions || "?"} partitions. `),
      p.busiest_bytes_per_sec > 0
        ? `Busiest partition ${p.busiest_partition}: ${fmtBytes(p.busiest_bytes_per_sec)}/s, ${pct(p.utilisation)} of the ${fmtBytes(p.quota_bytes_per_sec)}/s per-partition quota: headroom ${fmtNum(p.headroom, 1)}×.`
        : "No traffic measured in the last 10 s."),
    p.error ? h("p", { class: "error" }, p.error) : null,
    h("p", { class: "muted" }, p.note));
}

// planCard appends the monthly estimate card to main and returns
// { render(plan, err) }.
export function planCard(main) {
  const body = h("div", { id: "plan" });
  main.append(h("section", { class: "card" }, h("h2", {}, "Monthly estimate for the current traffic"), body));

  function render(p, err) {
    if (!p) {
      replace(body, h("p", { class: "error" }, `Cannot load the estimate: ${err?.message ?? "unknown error"}`));
      return;
    }
    if (!p.estimates) {
      replace(body, h("p", { class: "muted" }, p.error || "No estimate."));
      return;
    }
    const t = p.traffic, c = p.capacity, f = p.fleet;
    replace(body,
      h("p", {}, `${fmtNum(t.records_per_sec, 1)} records/s, ${fmtBytes(t.bytes_per_sec)}/s from ${t.devices} devices: `,
        h("b", {}, `${c.shards} shard${c.shards === 1 ? "" : "s"}`), ` (bound by ${c.binding}, with ${pct(c.headroom)} headroom), `,
        `${f.consumers} consumer${f.consumers === 1 ? "" : "s"}, retention ${String(f.retention).replace(/h0m0s$/, " h")}.`),
      h("div", { class: "scroll" }, h("table", { class: "grid", id: "estimates" },
        h("thead", {}, h("tr", {}, ["Engine", "Sizing", "USD a month"].map((x) => h("th", {}, x)))),
        h("tbody", {}, p.estimates.map((e) => h("tr", { dataset: { engine: e.engine } },
          h("td", {}, e.engine),
          h("td", { class: "muted", title: (e.notes || []).join("\n") }, e.sizing),
          h("td", { class: "num" }, usd(e.monthly_usd))))))),
      h("p", { class: "muted", id: "plan-prices" },
        `List prices of ${p.prices.region} as of ${p.prices.as_of} (${p.prices.file}), a month of ${p.prices.hours_per_month} h; `,
        "no taxes, free tiers or data transfer. ", (p.notes || []).join("; "), ". ",
        "For a whole fleet: ", h("code", {}, "tributary-cloud plan"), "."),
    );
  }
  return { render };
}
