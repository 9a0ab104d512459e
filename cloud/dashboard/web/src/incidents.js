// Incidents (cloud/monitor/API.md, /api/v1/incidents): the pieces the
// device and alerts pages share, and the acknowledge and silence actions.
import { send } from "./api.js";
import { h } from "./dom.js";
import { fmtNum, fmtTime, parseTime } from "./format.js";

export const silenceFor = ["1h", "8h", "24h"];

// span is an incident as the chart draws it (seconds; end null: open).
export function span(i) {
  const end = i.state === "resolved" ? parseTime(i.end) : null;
  const ex = i.expected;
  const start = parseTime(i.start) || parseTime(i.latest?.time) || new Date();
  return { start: start.getTime() / 1000, end: end ? end.getTime() / 1000 : null,
    low: ex ? ex.low : null, high: ex ? ex.high : null };
}

export function stateLabel(i) {
  return h("span", { class: `pill ${i.state === "open" ? "bad" : "ok"}`, dataset: { role: "state" } }, i.state);
}

export function fmtExpected(i) {
  return i.expected ? `${fmtNum(i.expected.low, 3)} – ${fmtNum(i.expected.high, 3)}` : "–";
}

export function fmtSpan(i) {
  return `${fmtTime(i.start)} → ${i.state === "resolved" ? fmtTime(i.end) : "now"}`;
}

// ackControl: "acknowledged" once done, else a button that acknowledges
// the incident and calls done(incident) with the answer.
export function ackControl(i, done) {
  if (i.acknowledged) return h("span", { class: "pill info", dataset: { role: "acked" }, title: fmtTime(i.acknowledged) }, "acknowledged");
  const b = h("button", { type: "button", class: "button", dataset: { role: "ack" } }, "Acknowledge");
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      done(await send("POST", `incidents/${encodeURIComponent(i.id)}/ack`));
    } catch (err) {
      b.disabled = false;
      b.title = err.message;
      b.textContent = "Acknowledge (failed)";
    }
  });
  return b;
}

// silenceControl: a select that silences the incident's device and
// metric for the chosen period, then calls done(silence).
export function silenceControl(i, done) {
  const sel = h("select", { "aria-label": "Silence", dataset: { role: "silence" } },
    h("option", { value: "" }, "Silence…"), silenceFor.map((d) => h("option", { value: d }, `for ${d}`)));
  sel.addEventListener("change", async () => {
    const duration = sel.value;
    if (!duration) return;
    sel.disabled = true;
    try {
      const body = { device: i.device, duration };
      if (i.metric) body.metric = i.metric;
      done(await send("POST", "silences", body));
    } catch (err) {
      sel.title = err.message;
    } finally {
      sel.disabled = false;
      sel.value = "";
    }
  });
  return sel;
}
