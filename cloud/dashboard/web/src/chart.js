// Time-series charts on uPlot: one per metric, raw points or rollups
// (mean line with a min–max band), with vertical markers at alerts and
// incidents shaded, their expected range drawn as a band.
import uPlot from "uplot";

const palette = { line: "#2563a6", band: "rgba(37, 99, 166, 0.13)", edge: "rgba(37, 99, 166, 0.35)", alert: "#d9480f",
  span: "rgba(217, 72, 15, 0.10)", resolved: "rgba(91, 104, 117, 0.10)", expected: "rgba(47, 158, 68, 0.22)", expectedEdge: "rgba(47, 158, 68, 0.7)" };

// spansPlugin shades each incident in getSpans() ({start, end, low,
// high} in seconds and values; end null: still open, drawn to the
// chart's right edge) under the series, with its expected range as a
// band across the span.
function spansPlugin(getSpans) {
  return {
    hooks: {
      drawAxes: (u) => {
        const { ctx, bbox } = u;
        const [lo, hi] = [u.scales.x.min, u.scales.x.max];
        ctx.save();
        for (const s of getSpans()) {
          const a = Math.max(s.start, lo), b = Math.min(s.end ?? hi, hi);
          if (b < a) continue;
          const x0 = u.valToPos(a, "x", true), x1 = Math.max(u.valToPos(b, "x", true), x0 + 2 * devicePixelRatio);
          ctx.fillStyle = s.end == null ? palette.span : palette.resolved;
          ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
          if (s.low == null || s.high == null) continue;
          const yTop = Math.max(u.valToPos(s.high, "y", true), bbox.top);
          const yBot = Math.min(u.valToPos(s.low, "y", true), bbox.top + bbox.height);
          if (yBot <= yTop) continue;
          ctx.fillStyle = palette.expected;
          ctx.fillRect(x0, yTop, x1 - x0, yBot - yTop);
          ctx.strokeStyle = palette.expectedEdge;
          ctx.lineWidth = devicePixelRatio;
          ctx.strokeRect(x0, yTop, x1 - x0, yBot - yTop);
        }
        ctx.restore();
      },
    },
  };
}

// markersPlugin draws a vertical line at each time in getMarkers() (s).
function markersPlugin(getMarkers) {
  return {
    hooks: {
      draw: (u) => {
        const { ctx, bbox } = u;
        const [lo, hi] = [u.scales.x.min, u.scales.x.max];
        ctx.save();
        ctx.strokeStyle = palette.alert;
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
        for (const t of getMarkers()) {
          if (t < lo || t > hi) continue;
          const x = Math.round(u.valToPos(t, "x", true));
          ctx.beginPath();
          ctx.moveTo(x, bbox.top);
          ctx.lineTo(x, bbox.top + bbox.height);
          ctx.stroke();
        }
        ctx.restore();
      },
    },
  };
}

// Chart wraps a uPlot for one series. data is the API's series document
// (t, v and, for rollups, min and max); markers() the alert times and
// spans() the incidents to draw (see spansPlugin).
export class Chart {
  constructor(el, { label, unit, data, markers = () => [], spans = () => [], height = 190 }) {
    this.el = el;
    this.rollup = Array.isArray(data.min);
    const series = [
      {},
      { label, stroke: palette.line, width: 1.6, fill: this.rollup ? undefined : palette.band,
        points: { show: false }, value: (u, v) => (v == null ? "–" : `${+v.toFixed(3)} ${unit || ""}`) },
    ];
    const opts = {
      width: Math.max(el.clientWidth, 300),
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { show: true, live: true },
      scales: { x: { time: true } },
      axes: [
        { stroke: "#5b6875", grid: { stroke: "#eef1f4" }, ticks: { stroke: "#dde3e8" } },
        { stroke: "#5b6875", grid: { stroke: "#eef1f4" }, ticks: { stroke: "#dde3e8" }, size: 56,
          label: unit || undefined, labelSize: unit ? 18 : 0 },
      ],
      series,
      plugins: [spansPlugin(spans), markersPlugin(markers)],
    };
    if (this.rollup) {
      series.push({ label: "min", stroke: palette.edge, width: 1, points: { show: false } });
      series.push({ label: "max", stroke: palette.edge, width: 1, points: { show: false } });
      opts.bands = [{ series: [3, 2], fill: palette.band }];
    }
    this.u = new uPlot(opts, this.columns(data), el);
    this.resize = () => this.u.setSize({ width: Math.max(this.el.clientWidth, 300), height });
    window.addEventListener("resize", this.resize);
  }

  columns(d) {
    return this.rollup ? [d.t, d.v, d.min, d.max] : [d.t, d.v];
  }

  // set replaces the data (a refetch of the window).
  set(data) {
    if (Array.isArray(data.min) !== this.rollup) return false; // resolution changed: rebuild
    this.u.setData(this.columns(data));
    return true;
  }

  // append adds live raw points, keeping the last windowSec seconds.
  append(t, v, windowSec) {
    const [ts, vs] = this.u.data;
    const nt = ts.concat(t), nv = vs.concat(v);
    const from = nt[nt.length - 1] - windowSec;
    let i = 0;
    while (i < nt.length && nt[i] <= from) i++;
    this.u.setData([nt.slice(i), nv.slice(i)]);
  }

  get length() {
    return this.u.data[0].length;
  }

  redraw() {
    this.u.redraw(false, false);
  }

  destroy() {
    window.removeEventListener("resize", this.resize);
    this.u.destroy();
  }
}
