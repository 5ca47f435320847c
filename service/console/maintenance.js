// The maintenance view: the windows (feedback or admin) and the form that sets one (admin).

import { api } from "./api.js";
import { h, timeElement } from "./dom.js";
import { $, can, loaded, lostReply, newest, oneAtATime, say, state } from "./shell.js";

// Set window is disabled while a window's request is on its way, and after its reply was
// lost until the list has been read again: a retry must not set the same window twice
// unseen.
let creating = false;
let unread = false;
function updateSubmit() {
  $("window-submit").disabled = creating || unread;
}

// The windows, drawn; undefined when a newer request superseded this one.
export async function loadWindows() {
  const current = newest("maintenance");
  const windows = await api("/v1/maintenance-windows?limit=200");
  if (!current()) return undefined;
  loaded();
  unread = false;
  updateSubmit();
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
        }, { reread: loadWindows, unknown: `Look at window ${w.id}'s status in the list before ending it again.` }),
      }, `End window ${w.id}`) : "")))));
  return windows;
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
  if (creating || unread) return;
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
  creating = true;
  updateSubmit();
  let window_;
  const sent = Date.now();
  try {
    window_ = await api("/v1/maintenance-windows", { method: "POST", body });
  } catch (error) {
    if (!lostReply(error)) throw error;
    unread = true;
    await afterLostReply(error, body, form, sent);
    return;
  } finally {
    creating = false;
    updateSubmit();
  }
  say(`Window ${window_.id} set (${window_.modes.join(", ")}, ${window_.status}).`);
  form.reset();
  await loadWindows();
}

// Browser and service clocks may disagree by this much when a window's creation time is
// compared with when it was sent.
const CLOCKS_APART_MS = 60_000;
const sameTime = (a, b) => (a ? Date.parse(a) : null) === (b ? Date.parse(b) : null);

// The service may have set the window: the list is read again, and a window in force with
// this scope, modes, end and reason, set by this key since it was sent, is taken for it.
// Else Set window stays disabled until the operator has read the list again (the request
// may still be on its way to the service).
async function afterLostReply(error, body, form, sent) {
  const lost = `The reply was lost (${error.message}): it is not known whether the window was set.`;
  let windows;
  try {
    windows = await loadWindows();
  } catch {
    say(`${lost} The list could not be read again, so Set window stays disabled until it is: press Refresh list.`, { error: true });
    return;
  }
  const same = (windows || []).find((w) => w.status !== "over" && w.author === state.who.name
    && w.reason === body.reason && (w.model ?? null) === (body.model ?? null)
    && (w.stream_id ?? null) === (body.stream_id ?? null)
    && (w.stream_prefix ?? null) === (body.stream_prefix ?? null)
    && [...w.modes].sort().join() === [...body.modes].sort().join()
    && sameTime(w.ends_at, body.ends_at)
    && w.created_at && Date.parse(w.created_at) >= sent - CLOCKS_APART_MS);
  if (same) {
    say(`The reply was lost (${error.message}), but window ${same.id}, with this scope and reason and set by you, is in the list read again just now: the window is set.`);
    form.reset();
  } else {
    unread = true;
    updateSubmit();
    say(`${lost} It is not in the list read again just now; if the service was slow it may still appear: press Refresh list and look before setting it again.`, { error: true });
  }
}

function refuse(text) {
  say(`No window was set: ${text}`, { error: true });
  $("window-stream").focus();
}
