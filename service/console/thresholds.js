// The thresholds view (admin): the value in force, candidates awaiting approval, the
// version history with roll-back, and the drift verdict.

import { api } from "./api.js";
import { change, h, number, share, timeElement } from "./dom.js";
import { versionChart } from "./plot.js";
import { $, loaded, newest, oneAtATime, readModels, say, state } from "./shell.js";

// What the view shows of a model, emptied when no model is served.
const PARTS = ["thresholds-current", "thresholds-pending", "thresholds-chart", "thresholds-table", "thresholds-drift"];

export async function loadThresholds() {
  const current_ = newest("thresholds");
  if (!$("thresholds-model").value) {
    // No model was served at sign-in: ask again, and say why none is when still none is.
    const listed = await readModels();
    if (!current_()) return;
    if (!$("thresholds-model").value) {
      for (const id of PARTS) $(id).replaceChildren();
      const why = Object.values(listed.problems || {}).join("; ") || "no model loaded";
      say(`No model is being served, so there is no threshold to show: ${why}`, { error: true });
      return;
    }
  }
  const model = $("thresholds-model").value;
  const [history, drift] = await Promise.all([
    api(`/v1/admin/thresholds/${encodeURIComponent(model)}`),
    api(`/v1/drift/${encodeURIComponent(model)}`),
  ]);
  if (!current_()) return;
  loaded();
  const current = history.current;
  $("thresholds-current").replaceChildren(h("p", {},
    `In force: ${number(current.value)} (version ${current.version}, model ${current.model} v${current.model_version}); `
    + `training baseline ${number(current.baseline)}, ${share(current.drift_ratio)} from it.`));
  const open = history.pending.filter((p) => p.status === "pending");
  $("thresholds-pending").replaceChildren(open.length ? h("ul", {}, ...open.map((p) => pendingItem(p, current))) : h("p", { text: "None waiting." }));
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
        type: "button", class: "rollback", onclick: oneAtATime(async () => {
          if (!confirm(`Roll ${current.model} back to the value of version ${v.version}? ${replacing(v.value, current)}`)) return;
          await api(`/v1/admin/thresholds/${encodeURIComponent(model)}/rollback`, { method: "POST", body: { version: v.version, reason: `rolled back from the console by ${state.who.name}` } });
          say(`Rolled back to the value of version ${v.version}.`);
          await loadThresholds();
        }, { group: rollbackButtons, reread: loadThresholds, unknown: "Look for the roll-back in the version history before rolling back again: a second one adds another version." }),
      }, `Roll back to v${v.version}`))))));
  $("thresholds-drift").replaceChildren(driftSummary(drift));
}

// What a change would do, for its confirmation: the value in force, the new one, and the
// relative change between them.
function replacing(value, current) {
  return `${number(value)} would replace ${number(current.value)} (version ${current.version}, in force now): a ${change((value - current.value) / current.value)} change.`;
}

// A roll-back runs alone: a second one (or the same one twice) would add another version.
const rollbackButtons = () => [...document.querySelectorAll("#thresholds-table button.rollback")];

function pendingItem(pending, current) {
  const reason = h("input", { type: "text", placeholder: "reason (optional)", "aria-label": `Reason for deciding candidate ${pending.id}` });
  const item = h("li", { class: "panel", dataset: { pendingId: pending.id } });
  const decide = (action) => oneAtATime(async () => {
    if (action === "approve" && !confirm(`Approve candidate ${pending.id} for ${current.model}? ${replacing(pending.candidate, current)}`)) return;
    const body = { reason: reason.value.trim() };
    const result = await api(`/v1/admin/pending-thresholds/${pending.id}/${action}`, { method: "POST", body });
    say(action === "approve" ? `Approved: version ${result.version} (${number(result.value)}) is now in force.` : `Candidate ${pending.id} rejected.`);
    await loadThresholds();
  }, {
    group: () => [...item.querySelectorAll("button")],  // approve and reject decide the same candidate
    reread: loadThresholds,
    unknown: "Look at the pending candidates and the version history before deciding again.",
  });
  item.append(
    h("p", {}, `Candidate ${number(pending.candidate)} instead of ${number(pending.current_value)} (v${pending.current_version}), ${change(pending.relative_change)} change, proposed `,
      timeElement(pending.created_at), `: ${pending.reason}`),
    h("div", { class: "actions" }, reason,
      h("button", { type: "button", class: "primary", onclick: decide("approve") }, "Approve"),
      h("button", { type: "button", onclick: decide("reject") }, "Reject")));
  return item;
}

function driftSummary(drift) {
  // Too few confirmed normals to judge is not a finding: it must not read as all clear.
  const verdict = drift.sufficient ? drift.recommendation : "unjudged";
  const action = { unjudged: "Not judged yet.", none: "No action needed.", recalibrate: "Recommended: recalibrate the threshold.", retrain: "Recommended: retrain the model." }[verdict];
  return h("div", {},
    h("p", {}, h("span", { class: `drift-${verdict}`, text: action }), ` ${drift.reason} (${number(drift.n_recent)} recent confirmed normals against ${number(drift.n_reference)} reference errors.)`),
    drift.sensors.length ? h("div", { class: "scroll" }, h("table", { class: "data" },
      h("thead", {}, h("tr", {}, ...["Sensor", "KS statistic", "Adjusted p", "Drifted"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, ...drift.sensors.map((x) => h("tr", {},
        h("th", { scope: "row", text: x.sensor }),
        h("td", { class: "num", text: number(x.statistic) }),
        h("td", { class: "num", text: number(x.adjusted_pvalue) }),
        h("td", { text: x.drifted ? "yes" : "no" })))))) : null);
}
