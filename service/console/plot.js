// Two small SVG charts drawn by hand (no charting library to vendor or update): one
// stream's scores over its readings, and a model's threshold versions.

import { localTimeText, number, utcText } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 1200;
const H = 360;
const PAD = { left: 56, right: 16, top: 16, bottom: 40 };

function s(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function frame(label) {
  return s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
}

// Runs of consecutive indexes where test(point) holds: [[first, last], ...].
function runs(points, test) {
  const found = [];
  let start = -1;
  points.forEach((point, i) => {
    if (test(point, i) && start < 0) start = i;
    if (!test(point, i) && start >= 0) {
      found.push([start, i - 1]);
      start = -1;
    }
  });
  if (start >= 0) found.push([start, points.length - 1]);
  return found;
}

const TICK_GAP = 14;
// Up to this score the axis is linear from 0. Above it, the threshold's side (0 to 1) keeps
// LINEAR_SHARE of the height and the rest is logarithmic, so a fault a hundred times over the
// threshold and the readings near it both stay readable, each at its true value.
const LINEAR_UP_TO = 10;
const LINEAR_SHARE = 0.3;

// y(v): pixels down from the plot's top for a score v; the tick values, 0 and 1 first.
function scoreScale(highest, plotH) {
  if (highest <= LINEAR_UP_TO) {
    const top = highest * 1.05;
    const step = highest > 4 ? 2 : highest > 2 ? 1 : 0.5;
    const ticks = [0, 1];
    for (let v = step; v <= top; v += step) ticks.push(v);
    return { log: false, ticks, y: (v) => plotH - (Math.max(0, Math.min(v, top)) / top) * plotH };
  }
  const decades = Math.log10(highest) * 1.05;
  const y = (v) => {
    if (v <= 1) return plotH - Math.max(0, v) * LINEAR_SHARE * plotH;
    return plotH - (LINEAR_SHARE + (1 - LINEAR_SHARE) * Math.min(Math.log10(v) / decades, 1)) * plotH;
  };
  const ticks = [0, 1, highest];  // the highest score is labelled, before round numbers
  for (let v = 10; Math.log10(v) <= decades; v *= 10) ticks.push(v);
  return { log: true, ticks, y };
}

// points: [{score, smoothed_score, alert, suppressed_by_window, timestamp}], oldest first.
// windows: maintenance windows covering the stream; labels: Map reading id -> label.
export function streamPlot(points, { windows = [], labels = new Map(), selected = -1, onPick }) {
  const svg = frame(`Scores of ${points.length} readings against the threshold`);
  const n = points.length;
  const x0 = PAD.left;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = n > 1 ? plotW / (n - 1) : plotW;
  const x = (i) => (n > 1 ? x0 + i * step : x0 + plotW / 2);
  const highest = Math.max(1.5, ...points.map((p) => Math.max(p.score, p.smoothed_score ?? 0)));
  const scale = scoreScale(highest, plotH);
  const y = (v) => PAD.top + scale.y(v);
  const band = (first, last, cls, title) => {
    const left = x(first) - step / 2;
    const rect = s("rect", {
      x: Math.max(x0, left), y: PAD.top, height: plotH, class: cls,
      width: Math.max(2, Math.min(x(last) + step / 2, x0 + plotW) - Math.max(x0, left)),
    });
    rect.append(s("title", {}, title));
    svg.append(rect);
  };
  // Windows are marked where they applied: on the readings received while they were in
  // force (a reading's own timestamp may be older than its arrival).
  const byId = new Map(windows.map((w) => [w.id, w]));
  const windowOf = (p) => p.suppressed_by_window ?? p.excluded_from_learning_by_window ?? null;
  for (const [a, b] of runs(points, (p) => windowOf(p) !== null)) {
    const w = byId.get(windowOf(points[a]));
    const what = w ? `${w.modes.join(", ")}: ${w.reason}` : "";
    band(a, b, "window-band", `maintenance window ${windowOf(points[a])} ${what}`);
  }
  for (const [a, b] of runs(points, (p) => p.alert)) band(a, b, "alert-band", "alert");
  for (const [a, b] of runs(points, (p) => p.suppressed_by_window !== null && !p.alert && p.anomaly)) {
    band(a, b, "suppressed-band", "anomalous inside a suppress_alerts window");
  }
  // axes and threshold
  svg.append(s("line", { x1: x0, x2: x0, y1: PAD.top, y2: PAD.top + plotH, class: "axis" }));
  svg.append(s("line", { x1: x0, x2: x0 + plotW, y1: PAD.top + plotH, y2: PAD.top + plotH, class: "axis" }));
  // Labels closer than a line of text to one already drawn are left out (0 and 1 first).
  const drawn = [];
  for (const v of scale.ticks) {
    if (drawn.some((w) => Math.abs(y(w) - y(v)) < TICK_GAP)) continue;
    drawn.push(v);
    svg.append(s("text", { x: x0 - 8, y: y(v) + 4, "text-anchor": "end", class: "tick-y" }, number(v)));
  }
  if (scale.log) {
    svg.append(s("text", { x: x0 + plotW - 8, y: PAD.top + 28, "text-anchor": "end", class: "scale-note" }, "logarithmic above the threshold (1)"));
  }
  svg.append(s("line", { x1: x0, x2: x0 + plotW, y1: y(1), y2: y(1), class: "threshold" }));
  if (n) {
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      const date = new Date(points[i].timestamp);
      const label = s("text", { x: x(i), y: H - 12, "text-anchor": i === 0 ? "start" : i === n - 1 ? "end" : "middle" }, localTimeText(date));
      label.append(s("title", {}, utcText(date)));
      svg.append(label);
    }
  }
  const line = (values, cls) => {
    const d = values
      .map((v, i) => (v === null || v === undefined ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`))
      .filter(Boolean);
    if (d.length) svg.append(s("polyline", { points: d.join(" "), class: cls }));
  };
  line(points.map((p) => p.score), "score");
  line(points.map((p) => p.smoothed_score), "smoothed");
  points.forEach((p, i) => {
    const label = labels.get(p.reading_id);
    if (label) {
      const dot = s("circle", { cx: x(i), cy: PAD.top + 6, r: 5, class: `label-${label}` });
      dot.append(s("title", {}, `labelled ${label}`));
      svg.append(dot);
    }
  });
  if (selected >= 0 && selected < n) {
    svg.append(s("line", { x1: x(selected), x2: x(selected), y1: PAD.top, y2: PAD.top + plotH, class: "cursor" }));
    svg.append(s("circle", { cx: x(selected), cy: y(points[selected].score), r: 6, class: "picked" }));
  }
  if (onPick) {
    points.forEach((p, i) => {
      const hit = s("rect", {
        x: x(i) - Math.max(step, 4) / 2, y: PAD.top, width: Math.max(step, 4), height: plotH,
        class: "hit", "data-index": i,
      });
      hit.addEventListener("click", () => onPick(i));
      svg.append(hit);
    });
  }
  return svg;
}

// versions: [{version, value, created_at, source}], oldest first; a step line of values.
export function versionChart(versions, current) {
  const svg = frame(`Threshold value of ${versions.length} versions`);
  if (!versions.length) return svg;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const n = versions.length;
  const x = (i) => PAD.left + (n > 1 ? (i / (n - 1)) * plotW : plotW / 2);
  const values = versions.map((v) => v.value);
  const lo = Math.min(...values) * 0.9;
  const hi = Math.max(...values) * 1.1;
  const y = (v) => PAD.top + plotH - ((v - lo) / (hi - lo || 1)) * plotH;
  svg.append(s("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotH, class: "axis" }));
  svg.append(s("line", { x1: PAD.left, x2: PAD.left + plotW, y1: PAD.top + plotH, y2: PAD.top + plotH, class: "axis" }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    svg.append(s("text", { x: PAD.left - 8, y: y(v) + 4, "text-anchor": "end" }, number(v)));
  }
  let d = `M${x(0)},${y(values[0])}`;
  for (let i = 1; i < n; i += 1) d += ` H${x(i)} V${y(values[i])}`;
  svg.append(s("path", { d, class: "step" }));
  versions.forEach((v, i) => {
    const dot = s("circle", { cx: x(i), cy: y(v.value), r: v.version === current ? 7 : 4, class: v.version === current ? "picked" : "dot" });
    dot.append(s("title", {}, `version ${v.version}: ${number(v.value)} (${v.source})`));
    svg.append(dot);
    svg.append(s("text", { x: x(i), y: H - 12, "text-anchor": "middle" }, `v${v.version}`));
  });
  return svg;
}
