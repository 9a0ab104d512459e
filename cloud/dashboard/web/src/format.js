// Number and time formatting for tables and charts.

export function fmtNum(v, digits = 2) {
  if (v == null || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toFixed(digits)).toLocaleString("en-US", { maximumFractionDigits: digits });
}

export function fmtRate(v) {
  if (v == null) return "–";
  if (v >= 1000) return `${fmtNum(v / 1000, 1)}k/s`;
  return `${fmtNum(v, 1)}/s`;
}

export function fmtBytes(v) {
  if (v == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${fmtNum(v, i ? 1 : 0)} ${units[i]}`;
}

export function fmtDuration(s) {
  if (s == null) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 90) return `${fmtNum(s, 1)} s`;
  if (s < 5400) return `${fmtNum(s / 60, 1)} min`;
  if (s < 172800) return `${fmtNum(s / 3600, 1)} h`;
  return `${fmtNum(s / 86400, 1)} d`;
}

const zeroTime = "0001-01-01T00:00:00Z";

export function parseTime(s) {
  if (!s || s === zeroTime) return null;
  const t = new Date(s);
  return Number.isNaN(t.getTime()) ? null : t;
}

// fmtAgo: "12 s ago" from an RFC 3339 string or Date.
export function fmtAgo(s, now = Date.now()) {
  const t = s instanceof Date ? s : parseTime(s);
  if (!t) return "never";
  const d = (now - t.getTime()) / 1000;
  if (d < 1) return "just now";
  return `${fmtDuration(d)} ago`;
}

export function fmtTime(s) {
  const t = s instanceof Date ? s : parseTime(s);
  if (!t) return "–";
  const p = (n) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
}

export function fmtMs(ms) {
  if (ms == null) return "–";
  return fmtDuration(Math.abs(ms) / 1000).replace(/^/, ms < 0 ? "−" : "");
}
