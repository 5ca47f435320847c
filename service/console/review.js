// The feedback views: the review queue and one stream's scores, and the label buttons
// both offer.

import { NoReply, api, clientLabelId, labelAnswered, query } from "./api.js";
import { h, number, share, timeElement } from "./dom.js";
import { streamPlot } from "./plot.js";
import { $, guarded, loaded, newest, say, state } from "./shell.js";

// --- labelling --------------------------------------------------------------------------

async function label(reading, value, note) {
  const body = { label: value, reading_ids: [reading.reading_id], stream_id: reading.stream_id };
  if (note) body.note = note;
  const submission = { ...body };
  body.client_label_id = clientLabelId(state.who.name, submission);
  let stored;
  try {
    stored = await api("/v1/feedback", { method: "POST", body });
  } catch (error) {
    if (!(error instanceof NoReply)) labelAnswered(state.who.name, submission);
    throw error;
  }
  labelAnswered(state.who.name, submission);
  say(`Reading ${reading.reading_id} of ${reading.stream_id} labelled ${value} (label ${stored.labels[0].id}).`);
  return stored;
}

// The console sends a retry with the label id of the first try, so the service stores the
// label once whether or not the first reached it.
const RETRY_LABEL = "Press the same button again, with the same note: the service recognises the retry and stores the label once.";

// Readings with a label request on its way (by stream and reading id): their buttons stay
// disabled wherever they show, in a card or the stream view, so a click cannot be followed
// by a contradicting one before the first is stored.
const sending = new Set();
const readingKey = (reading) => `${reading.stream_id}\u0000${reading.reading_id}`;

function lockLabels(key, locked) {
  for (const group of document.querySelectorAll(".actions[data-reading]")) {
    if (group.dataset.reading !== key) continue;
    for (const button of group.querySelectorAll("button")) button.disabled = locked;
  }
}

// labelled(): the label the reading already has, if the view knows it; a second label is
// added only when the operator says so.
function labelControls(reading, onDone, { labelled = () => null } = {}) {
  const key = readingKey(reading);
  const note = h("input", { type: "text", placeholder: "note (optional)", "aria-label": `Note for reading ${reading.reading_id}`, maxlength: "2000" });
  const button = (value, text, cls) => h("button", {
    type: "button", class: cls, "data-label": value, disabled: sending.has(key),
    onclick: guarded(async () => {
      if (sending.has(key)) return;
      sending.add(key);
      lockLabels(key, true);
      try {
        const before = labelled();
        if (before && !confirm(`Reading ${reading.reading_id} of ${reading.stream_id} is already labelled ${before}. Add another label, ${value}, to it?`)) {
          say(`Reading ${reading.reading_id} keeps its label ${before}; nothing was sent.`);
          return;
        }
        await label(reading, value, note.value.trim());
        onDone(value);
      } finally {
        sending.delete(key);
        lockLabels(key, false);
      }
    }, RETRY_LABEL),
  }, text);
  return h("div", { class: "actions", dataset: { reading: key } }, note,
    button("normal", "Confirm normal", "primary"),
    button("anomaly", "Confirm anomaly", "danger"));
}

// --- review queue -----------------------------------------------------------------------

export async function loadQueue() {
  const model = $("queue-model").value;
  const stream = $("queue-stream").value.trim();
  const current = newest("queue");
  const queue = await api(`/v1/feedback/review-queue${query({ model, stream_id: stream })}`);
  if (!current()) return;
  loaded();
  const items = [
    ...queue.alerts.map((r) => ({ ...r, kind: "alert" })),
    ...queue.audit_sample.map((r) => ({ ...r, kind: "audit" })),
  ].sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0));
  const where = stream ? `stream ${stream} of ${queue.model}` : queue.model;
  moreAlerts = queue.more_alerts;
  const alerts = `${number(queue.alerts.length)}${moreAlerts ? " listed" : ""} alert reading(s)`;
  $("queue-summary").textContent = `${alerts} and ${number(queue.audit_sample.length)} audit sample reading(s) of ${where} awaiting review, newest first.${moreAlerts ? MORE : ""}`;
  $("queue-items").replaceChildren(...items.map(queueCard));
}

// The service lists a bounded number of unlabelled alerts and says when older ones wait
// beyond them: the count shown must not read as the whole queue.
let moreAlerts = false;
const MORE = " More unlabelled alerts are waiting: label these, then Refresh.";

function queueCard(reading) {
  const badge = reading.kind === "alert"
    ? h("span", { class: "badge alert", text: "alert" })
    : h("span", { class: "badge audit", text: "audit sample" });
  const scale = Math.max(2, reading.score * 1.1);
  const fill = h("span", { class: reading.score > 1 ? "fill over" : "fill" });
  fill.style.width = `${Math.min(100, (reading.score / scale) * 100)}%`;
  const mark = h("span", { class: "mark", title: "threshold" });
  mark.style.left = `${(1 / scale) * 100}%`;
  const card = h("li", { class: `card ${reading.kind}`, tabindex: "-1", dataset: { readingId: reading.reading_id, stream: reading.stream_id } },
    h("header", {},
      badge,
      h("a", { class: "stream", href: `#stream/${encodeURIComponent(reading.stream_id)}`, text: reading.stream_id }),
      timeElement(reading.timestamp),
      h("small", { text: `reading ${reading.reading_id}` })),
    h("div", { class: "scoreline" },
      h("span", {}, `score ${number(reading.score)} (error ${number(reading.error)} / threshold ${number(reading.threshold)}, v${reading.threshold_version})`),
      h("span", { class: "meter", role: "img", "aria-label": `score ${number(reading.score)} against threshold 1` }, fill, mark)),
    sensorTable(reading),
    labelControls(reading, () => {
      // The focus goes on to the next card (the one before, at the end), not to the page.
      const next = card.nextElementSibling || card.previousElementSibling;
      card.remove();
      (next || $("queue-summary")).focus();
      const left = $("queue-items").children.length;
      $("queue-summary").textContent = `${number(left)} listed reading(s) left.${moreAlerts ? MORE : ""}`;
    }));
  return card;
}

function sensorTable(reading) {
  if (!reading.sensors.length) return h("p", { text: "No per-sensor figures for this reading." });
  return h("table", { class: "sensors" },
    h("caption", { class: "hint", text: "Sensors by their share of the error: observed, and what the model expected where it expects a value" }),
    h("thead", {}, h("tr", {}, ...["Sensor", "Share", "", "Observed", "Expected"].map((t) => h("th", { scope: "col", text: t, class: t ? null : "bar-cell" })))),
    h("tbody", {}, ...reading.sensors.map((sensor) => {
      const bar = h("div", { class: "share" });
      bar.style.width = `${Math.max(0.5, sensor.share * 100)}%`;
      return h("tr", {},
        h("th", { scope: "row", text: sensor.sensor }),
        h("td", { class: "num", text: share(sensor.share) }),
        h("td", { class: "bar-cell" }, bar),
        h("td", { class: "num", text: number(sensor.observed) }),
        h("td", { class: "num", text: number(sensor.reconstructed) }));
    })));
}

// --- stream view ------------------------------------------------------------------------

export async function loadStream() {
  const model = $("stream-model").value;
  const stream = $("stream-id").value.trim();
  const current = newest("stream");
  const [readings, labels, windows] = await Promise.all([
    api(`/v1/feedback/streams/${encodeURIComponent(stream)}/readings${query({ model })}`),
    api(`/v1/feedback${query({ stream_id: stream, model, limit: 1000 })}`),
    api("/v1/maintenance-windows?limit=500"),
  ]);
  if (!current()) return;
  loaded();
  const labelled = new Map();
  for (const item of [...labels.items].reverse()) if (item.reading_id) labelled.set(item.reading_id, item.label);
  const covering = windows.filter((w) => (!w.model || w.model === readings.model)
    && (w.stream_id ? w.stream_id === stream : w.stream_prefix ? stream.startsWith(w.stream_prefix) : true));
  state.stream = { points: readings.points, labels: labelled, windows: covering, selected: readings.points.length - 1, stream, model: readings.model };
  drawStream();
  say(readings.points.length ? `${number(readings.points.length)} retained reading(s) of ${stream} on ${readings.model}.` : `No readings of ${stream} on ${readings.model}.`);
}

function drawStream() {
  const view = state.stream;
  const plot = $("stream-plot");
  if (!view.points.length) {
    plot.replaceChildren(h("p", { class: "hint", text: `No readings of ${view.stream} on ${view.model} are retained: nothing to plot.` }));
    $("stream-selected").hidden = true;
    return;
  }
  plot.replaceChildren(streamPlot(view.points, {
    windows: view.windows, labels: view.labels, selected: view.selected,
    onPick: (i) => { view.selected = i; drawStream(); plot.focus(); },
  }));
  const panel = $("stream-selected");
  const point = view.points[view.selected];
  panel.hidden = !point;
  if (!point) return;
  const reading = { ...point, stream_id: view.stream };
  const state_ = point.alert ? "alert" : point.suppressed_by_window ? `suppressed (window ${point.suppressed_by_window})` : point.anomaly ? "anomalous reading" : "normal";
  const labelled = () => view.labels.get(point.reading_id) || null;
  panel.replaceChildren(
    h("h3", { text: `Reading ${point.reading_id}` }),
    h("p", {}, timeElement(point.timestamp), ` · score ${number(point.score)} · smoothed ${number(point.smoothed_score)} · ${state_}`,
      labelled() ? ` · already labelled ${labelled()}` : ""),
    labelControls(reading, (value) => {
      view.labels.set(point.reading_id, value);
      drawStream();
      $("stream-plot").focus();  // where the arrow keys choose the next reading
    }, { labelled }),
  );
}

export function streamKeys(event) {
  const view = state.stream;
  if (!view || !view.points.length) return;
  const moves = { ArrowLeft: -1, ArrowRight: 1, PageUp: -10, PageDown: 10, Home: -Infinity, End: Infinity };
  if (event.key in moves) {
    event.preventDefault();
    const next = view.selected + moves[event.key];
    view.selected = Math.max(0, Math.min(view.points.length - 1, Number.isFinite(next) ? next : (next > 0 ? view.points.length - 1 : 0)));
    drawStream();
  } else if (event.key === "Enter") {
    event.preventDefault();
    const first = $("stream-selected").querySelector("input");
    if (first) first.focus();
  }
}
