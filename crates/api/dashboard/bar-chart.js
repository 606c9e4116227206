// A horizontal bar chart as inline SVG: one bar per row, values 0..1.

import { svg } from "./dom.js";

const ROW = 28;
const LABEL_W = 180;
const VALUE_W = 64;
const WIDTH = 720;

/** The class of a bar by online rate: good / warn / bad. */
export function rateClass(rate) {
  if (rate >= 0.95) return "good";
  if (rate >= 0.8) return "warn";
  return "bad";
}

/**
 * `rows`: [{label, value (0..1), text}]. Returns an <svg> that scales to its
 * container's width.
 */
export function barChart(rows, title) {
  const height = Math.max(1, rows.length) * ROW + 24;
  const plot = WIDTH - LABEL_W - VALUE_W;
  const chart = svg("svg", {
    class: "bar-chart",
    viewBox: `0 0 ${WIDTH} ${height}`,
    role: "img",
    "aria-label": title,
  });
  chart.append(svg("title", {}, title));
  // Grid lines at 0, 50, 80, 95 and 100 %.
  for (const mark of [0, 0.5, 0.8, 0.95, 1]) {
    const x = LABEL_W + plot * mark;
    chart.append(svg("line", { class: "grid", x1: x, x2: x, y1: 0, y2: height - 20 }));
    // 95 % sits too close to 100 % for a label of its own: its line says enough.
    if (mark !== 0.95) {
      chart.append(svg("text", { class: "axis", x, y: height - 6, "text-anchor": "middle" }, `${Math.round(mark * 100)}%`));
    }
  }
  rows.forEach((row, i) => {
    const y = i * ROW;
    const value = Math.min(1, Math.max(0, Number.isFinite(row.value) ? row.value : 0));
    chart.append(
      svg("text", { class: "label", x: LABEL_W - 8, y: y + ROW / 2 + 5, "text-anchor": "end" }, row.label),
      svg("rect", {
        class: `bar ${rateClass(value)}`,
        x: LABEL_W, y: y + 5, width: Math.max(1, plot * value), height: ROW - 10,
      }),
      svg("text", { class: "value", x: LABEL_W + plot + 8, y: y + ROW / 2 + 5 }, row.text),
    );
  });
  return chart;
}
