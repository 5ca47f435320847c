// The operator's console: sign-in, review queue, stream view, thresholds, maintenance
// windows. Every action is a call to the public API with the signed-in key; a 401 or 403
// brings the sign-in prompt back with the service's reason.

import {
  ApiError, AuthError, api, clientLabelId, h, number, query, session, share, timeElement,
} from "./api.js";
import { streamPlot, versionChart } from "./plot.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["queue", "stream", "thresholds", "maintenance"];
const state = { who: null, models: [], defaultModel: null, stream: null };

// Each view draws only the answer to its latest request: an older answer that arrives
// late (a slow first load, then a filter) must not replace a newer one.
const latest = new Map();
function newest(view) {
  const ticket = (latest.get(view) || 0) + 1;
  latest.set(view, ticket);
  return () => latest.get(view) === ticket;
}

function say(text, { error = false } = {}) {
  const status = $("status");
  status.textContent = text;
  status.className = error ? "status warn" : "status";
}

// --- sign-in ----------------------------------------------------------------------------

function showSignIn(reason) {
  for (const view of VIEWS) $(`view-${view}`).hidden = true;
  $("view-signin").hidden = false;
  const why = $("signin-reason");
  why.hidden = !reason;
  why.textContent = reason || "";
  $("api-key").focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $("api-key");
  session.set(input.value.trim());
  input.value = "";
  try {
    await start();
  } catch (error) {
    await handle(error);
  }
}

function signOut() {
  session.clear();
  state.who = null;
  $("nav").hidden = true;
  $("who").hidden = true;
  say("Signed out.");
  showSignIn();
}

async function start() {
  state.who = await api("/v1/whoami");
  const listed = await api("/v1/models");
  state.models = listed.models.map((m) => m.name);
  state.defaultModel = listed.default_model || state.models[0] || null;
  for (const id of ["queue-model", "stream-model", "thresholds-model"]) fillModels($(id), false);
  fillModels($("window-model"), true);
  $("who-name").textContent = `${state.who.name} (${state.who.scopes.join(", ")})`;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("view-signin").hidden = true;
  $("window-form").hidden = !can("admin");
  await route();
}

function can(scope) {
  return Boolean(state.who && state.who.scopes.includes(scope));
}

function fillModels(select, withAny) {
  const chosen = select.value;
  select.replaceChildren(
    ...(withAny ? [h("option", { value: "", text: "every model" })] : []),
    ...state.models.map((name) => h("option", { value: name, text: name })),
  );
  select.value = chosen || (withAny ? "" : state.defaultModel || "");
}

async function handle(error) {
  if (error instanceof AuthError) {
    if (error.status === 401) session.clear();
    const what = error.status === 401 ? "Your key was not accepted" : "Your key may not do this";
    say(`${what}: ${error.message}`, { error: true });
    showSignIn(`${what} (${error.status}): ${error.message}. Sign in with a key that may.`);
  } else if (error instanceof ApiError) {
    say(`The service refused (${error.status}): ${error.message}`, { error: true });
  } else {
    say(`The service could not be reached: ${error.message}. Nothing was changed; try again.`, { error: true });
  }
}

function guarded(action) {
  return async (...args) => {
    try {
      await action(...args);
    } catch (error) {
      await handle(error);
    }
  };
}

// --- routing ----------------------------------------------------------------------------

async function route() {
  if (!session.key() || !state.who) {
    showSignIn();
    return;
  }
  const [name, ...rest] = location.hash.replace(/^#/, "").split("/");
  const view = VIEWS.includes(name) ? name : "queue";
  for (const other of VIEWS) $(`view-${other}`).hidden = other !== view;
  $("view-signin").hidden = true;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (view === "queue") await loadQueue();
    if (view === "stream") {
      if (rest.length) $("stream-id").value = decodeURIComponent(rest.join("/"));
      if ($("stream-id").value) await loadStream();
    }
    if (view === "thresholds") await loadThresholds();
    if (view === "maintenance") await loadWindows();
  } catch (error) {
    await handle(error);
  }
}

// --- labelling (queue and stream view) --------------------------------------------------

async function label(reading, value, note) {
  const body = {
    label: value,
    reading_ids: [reading.reading_id],
    stream_id: reading.stream_id,
    client_label_id: clientLabelId(reading.reading_id, value),
  };
  if (note) body.note = note;
  const stored = await api("/v1/feedback", { method: "POST", body });
  say(`Reading ${reading.reading_id} of ${reading.stream_id} labelled ${value} (label ${stored.labels[0].id}).`);
  return stored;
}

function labelControls(reading, onDone) {
  const note = h("input", { type: "text", placeholder: "note (optional)", "aria-label": `Note for reading ${reading.reading_id}`, maxlength: "2000" });
  const button = (value, text, cls) => h("button", {
    type: "button", class: cls, "data-label": value,
    onclick: guarded(async (event) => {
      const target = event.currentTarget;
      target.disabled = true;
      try {
        await label(reading, value, note.value.trim());
        onDone(value);
      } finally {
        target.disabled = false;
      }
    }),
  }, text);
  return h("div", { class: "actions" }, note,
    button("normal", "Confirm normal", "primary"),
    button("anomaly", "Confirm anomaly", "danger"));
}

// --- review queue -----------------------------------------------------------------------

async function loadQueue() {
  const model = $("queue-model").value;
  const stream = $("queue-stream").value.trim();
  const current = newest("queue");
  const queue = await api(`/v1/feedback/review-queue${query({ model, stream_id: stream })}`);
  if (!current()) return;
  const items = [
    ...queue.alerts.map((r) => ({ ...r, kind: "alert" })),
    ...queue.audit_sample.map((r) => ({ ...r, kind: "audit" })),
  ].sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0));
  const where = stream ? `stream ${stream} of ${queue.model}` : queue.model;
  $("queue-summary").textContent = `${number(queue.alerts.length)} alert reading(s) and ${number(queue.audit_sample.length)} audit sample reading(s) of ${where} awaiting review, newest first.`;
  $("queue-items").replaceChildren(...items.map(queueCard));
}

function queueCard(reading) {
  const badge = reading.kind === "alert"
    ? h("span", { class: "badge alert", text: "alert" })
    : h("span", { class: "badge audit", text: "audit sample" });
  const scale = Math.max(2, reading.score * 1.1);
  const fill = h("span", { class: reading.score > 1 ? "fill over" : "fill" });
  fill.style.width = `${Math.min(100, (reading.score / scale) * 100)}%`;
  const mark = h("span", { class: "mark", title: "threshold" });
  mark.style.left = `${(1 / scale) * 100}%`;
  const card = h("li", { class: `card ${reading.kind}`, dataset: { readingId: reading.reading_id, stream: reading.stream_id } },
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
      card.remove();
      const left = $("queue-items").children.length;
      $("queue-summary").textContent = `${number(left)} reading(s) left in the queue.`;
    }));
  return card;
}

function sensorTable(reading) {
  if (!reading.sensors.length) return h("p", { text: "No per-sensor figures for this reading." });
  return h("table", { class: "sensors" },
    h("caption", { class: "hint", text: "Sensors by their share of the error: observed, and what the model expected where it expects a value" }),
    h("thead", {}, h("tr", {}, ...["Sensor", "Share", "", "Observed", "Expected"].map((t) => h("th", { scope: "col", text: t })))),
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

async function loadStream() {
  const model = $("stream-model").value;
  const stream = $("stream-id").value.trim();
  const current = newest("stream");
  const [readings, labels, windows] = await Promise.all([
    api(`/v1/feedback/streams/${encodeURIComponent(stream)}/readings${query({ model })}`),
    api(`/v1/feedback${query({ stream_id: stream, model, limit: 1000 })}`),
    api("/v1/maintenance-windows?limit=500"),
  ]);
  if (!current()) return;
  const labelled = new Map();
  for (const item of [...labels.items].reverse()) if (item.reading_id) labelled.set(item.reading_id, item.label);
  const covering = windows.filter((w) => (!w.model || w.model === readings.model)
    && (w.stream_id ? w.stream_id === stream : w.stream_prefix ? stream.startsWith(w.stream_prefix) : true));
  state.stream = { points: readings.points, labels: labelled, windows: covering, selected: readings.points.length - 1, stream, model: readings.model };
  drawStream();
  say(`${number(readings.points.length)} retained reading(s) of ${stream} on ${readings.model}.`);
}

function drawStream() {
  const view = state.stream;
  const plot = $("stream-plot");
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
  panel.replaceChildren(
    h("h3", { text: `Reading ${point.reading_id}` }),
    h("p", {}, timeElement(point.timestamp), ` · score ${number(point.score)} · smoothed ${number(point.smoothed_score)} · ${state_}`,
      view.labels.has(point.reading_id) ? ` · labelled ${view.labels.get(point.reading_id)}` : ""),
    labelControls(reading, (value) => { view.labels.set(point.reading_id, value); drawStream(); }),
  );
}

function streamKeys(event) {
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

// --- thresholds -------------------------------------------------------------------------

async function loadThresholds() {
  const model = $("thresholds-model").value;
  const current_ = newest("thresholds");
  const [history, drift] = await Promise.all([
    api(`/v1/admin/thresholds/${encodeURIComponent(model)}`),
    api(`/v1/drift/${encodeURIComponent(model)}`),
  ]);
  if (!current_()) return;
  const current = history.current;
  $("thresholds-current").replaceChildren(h("p", {},
    `In force: ${number(current.value)} (version ${current.version}, model ${current.model} v${current.model_version}); `
    + `training baseline ${number(current.baseline)}, ${share(current.drift_ratio)} from it.`));
  const open = history.pending.filter((p) => p.status === "pending");
  $("thresholds-pending").replaceChildren(open.length ? h("ul", {}, ...open.map(pendingItem)) : h("p", { text: "None waiting." }));
  $("thresholds-chart").replaceChildren(versionChart(history.versions, current.version));
  $("thresholds-table").className = "data";
  $("thresholds-table").replaceChildren(
    h("caption", { class: "hint", text: "Every version, newest first" }),
    h("thead", {}, h("tr", {}, ...["Version", "Value", "Source", "Reason", "Author", "Set", "Samples", ""].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, ...[...history.versions].reverse().map((v) => h("tr", { dataset: { version: v.version } },
      h("th", { scope: "row", text: `v${v.version}${v.version === current.version ? " (in force)" : ""}` }),
      h("td", { class: "num", text: number(v.value) }),
      h("td", { text: v.source }),
      h("td", { text: v.reason }),
      h("td", { text: v.author }),
      h("td", {}, timeElement(v.created_at)),
      h("td", { class: "num", text: number(v.statistics.n_samples ?? null) }),
      h("td", {}, v.version === current.version ? "" : h("button", {
        type: "button", onclick: guarded(async () => {
          await api(`/v1/admin/thresholds/${encodeURIComponent(model)}/rollback`, { method: "POST", body: { version: v.version, reason: `rolled back from the console by ${state.who.name}` } });
          say(`Rolled back to the value of version ${v.version}.`);
          await loadThresholds();
        }),
      }, `Roll back to v${v.version}`))))));
  $("thresholds-drift").replaceChildren(driftSummary(drift));
}

function pendingItem(pending) {
  const reason = h("input", { type: "text", placeholder: "reason (optional)", "aria-label": `Reason for deciding candidate ${pending.id}` });
  const decide = (action) => guarded(async () => {
    const body = { reason: reason.value.trim() };
    const result = await api(`/v1/admin/pending-thresholds/${pending.id}/${action}`, { method: "POST", body });
    say(action === "approve" ? `Approved: version ${result.version} (${number(result.value)}) is now in force.` : `Candidate ${pending.id} rejected.`);
    await loadThresholds();
  });
  return h("li", { class: "panel", dataset: { pendingId: pending.id } },
    h("p", {}, `Candidate ${number(pending.candidate)} instead of ${number(pending.current_value)} (v${pending.current_version}), ${share(pending.relative_change)} change, proposed `,
      timeElement(pending.created_at), `: ${pending.reason}`),
    h("div", { class: "actions" }, reason,
      h("button", { type: "button", class: "primary", onclick: decide("approve") }, "Approve"),
      h("button", { type: "button", onclick: decide("reject") }, "Reject")));
}

function driftSummary(drift) {
  const action = { none: "No action needed.", recalibrate: "Recommended: recalibrate the threshold.", retrain: "Recommended: retrain the model." }[drift.recommendation];
  return h("div", {},
    h("p", {}, h("span", { class: `drift-${drift.recommendation}`, text: action }), ` ${drift.reason} (${number(drift.n_recent)} recent confirmed normals against ${number(drift.n_reference)} reference errors.)`),
    drift.sensors.length ? h("div", { class: "scroll" }, h("table", { class: "data" },
      h("thead", {}, h("tr", {}, ...["Sensor", "KS statistic", "Adjusted p", "Drifted"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, ...drift.sensors.map((x) => h("tr", {},
        h("th", { scope: "row", text: x.sensor }),
        h("td", { class: "num", text: number(x.statistic) }),
        h("td", { class: "num", text: number(x.adjusted_pvalue) }),
        h("td", { text: x.drifted ? "yes" : "no" })))))) : null);
}

// --- maintenance windows ----------------------------------------------------------------

async function loadWindows() {
  const current = newest("maintenance");
  const windows = await api("/v1/maintenance-windows?limit=200");
  if (!current()) return;
  $("windows-table").className = "data";
  $("windows-table").replaceChildren(
    h("caption", { class: "hint", text: "Windows, newest first" }),
    h("thead", {}, h("tr", {}, ...["Id", "Status", "Scope", "Modes", "Starts", "Ends", "Why", "Set by", ""].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, ...windows.map((w) => h("tr", { dataset: { windowId: w.id } },
      h("th", { scope: "row", text: String(w.id) }),
      h("td", { text: w.status }),
      h("td", { text: `${w.model || "every model"} · ${w.stream_id || (w.stream_prefix ? `${w.stream_prefix}*` : "every stream")}` }),
      h("td", { text: w.modes.join(", ") }),
      h("td", {}, timeElement(w.starts_at)),
      h("td", {}, w.ended_at ? timeElement(w.ended_at) : w.ends_at ? timeElement(w.ends_at) : "open-ended"),
      h("td", { text: w.end_reason ? `${w.reason} (ended: ${w.end_reason})` : w.reason }),
      h("td", { text: w.ended_by ? `${w.author}, ended by ${w.ended_by}` : w.author }),
      h("td", {}, w.status !== "over" && can("admin") ? h("button", {
        type: "button", onclick: guarded(async () => {
          await api(`/v1/maintenance-windows/${w.id}/end`, { method: "POST", body: { reason: `ended from the console by ${state.who.name}` } });
          say(`Window ${w.id} ended.`);
          await loadWindows();
        }),
      }, `End window ${w.id}`) : "")))));
}

async function createWindow(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  const scope = data.get("scope");
  const stream = String(data.get("stream") || "").trim();
  const body = {
    modes: data.getAll("mode"),
    reason: String(data.get("reason")).trim(),
  };
  if (data.get("model")) body.model = data.get("model");
  if (scope === "stream") body.stream_id = stream;
  if (scope === "prefix") body.stream_prefix = stream;
  if (data.get("start")) body.starts_at = new Date(String(data.get("start"))).toISOString();
  if (data.get("end")) body.ends_at = new Date(String(data.get("end"))).toISOString();
  const window_ = await api("/v1/maintenance-windows", { method: "POST", body });
  say(`Window ${window_.id} set (${window_.modes.join(", ")}, ${window_.status}).`);
  form.reset();
  await loadWindows();
}

// --- wiring -----------------------------------------------------------------------------

function wire() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("queue-filters").addEventListener("submit", guarded(async (e) => { e.preventDefault(); await loadQueue(); }));
  $("stream-filters").addEventListener("submit", guarded(async (e) => { e.preventDefault(); await loadStream(); }));
  $("thresholds-filters").addEventListener("submit", guarded(async (e) => { e.preventDefault(); await loadThresholds(); }));
  $("window-form").addEventListener("submit", guarded(createWindow));
  $("stream-plot").addEventListener("keydown", streamKeys);
  window.addEventListener("hashchange", route);
  $("signin-button").disabled = false;
  document.body.dataset.ready = "true";
  if (session.key()) start().catch(handle);
  else showSignIn();
}

wire();
