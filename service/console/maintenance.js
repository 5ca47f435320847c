// The maintenance view: the windows (feedback or admin) and the form that sets one (admin).

import { api } from "./api.js";
import { h, timeElement } from "./dom.js";
import { $, can, loaded, newest, oneAtATime, say, state } from "./shell.js";

export async function loadWindows() {
  const current = newest("maintenance");
  const windows = await api("/v1/maintenance-windows?limit=200");
  if (!current()) return;
  loaded();
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
        type: "button", onclick: oneAtATime(async () => {
          await api(`/v1/maintenance-windows/${w.id}/end`, { method: "POST", body: { reason: `ended from the console by ${state.who.name}` } });
          say(`Window ${w.id} ended.`);
          await loadWindows();
        }),
      }, `End window ${w.id}`) : "")))));
}

// A stream id typed while "every stream" is chosen means that stream: typing picks the
// one-stream scope, and a form that still says every stream with an id typed is refused
// (the id is never dropped silently).
export function streamTyped() {
  const every = document.querySelector("#window-form input[name=scope][value=all]");
  if (every.checked && $("window-stream").value.trim()) {
    document.querySelector("#window-form input[name=scope][value=stream]").checked = true;
  }
}

export async function createWindow(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  const scope = data.get("scope");
  const stream = String(data.get("stream") || "").trim();
  if (scope === "all" && stream) {
    refuse(`"${stream}" is typed in Stream id or prefix, but the window is for every stream: choose "one stream" or "streams starting with", or clear the field.`);
    return;
  }
  if (scope !== "all" && !stream) {
    refuse(`Type the ${scope === "prefix" ? "prefix of the streams" : "stream id"} the window is for.`);
    return;
  }
  const body = {
    modes: data.getAll("mode"),
    reason: String(data.get("reason")).trim(),
  };
  if (data.get("model")) body.model = data.get("model");
  if (scope === "stream") body.stream_id = stream;
  if (scope === "prefix") body.stream_prefix = stream;
  if (data.get("start")) body.starts_at = new Date(String(data.get("start"))).toISOString();
  if (data.get("end")) body.ends_at = new Date(String(data.get("end"))).toISOString();
  if (scope === "all" && !body.ends_at) {
    const where = body.model ? `every stream of ${body.model}` : "every stream of every model";
    if (!confirm(`Set a window on ${where} with no end time (${body.modes.join(", ")})? It stays in force until someone ends it.`)) {
      say("No window was set.");
      return;
    }
  }
  const window_ = await api("/v1/maintenance-windows", { method: "POST", body });
  say(`Window ${window_.id} set (${window_.modes.join(", ")}, ${window_.status}).`);
  form.reset();
  await loadWindows();
}

function refuse(text) {
  say(`No window was set: ${text}`, { error: true });
  $("window-stream").focus();
}
