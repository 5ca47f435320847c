// What every view shares: the signed-in key's name and scopes, the status line, the
// sign-in prompt a refused request brings back, and the guard every action runs in.

import { ApiError, AuthError, NoReply, api, onBusy, session } from "./api.js";
import { h } from "./dom.js";

export const $ = (id) => document.getElementById(id);
export const VIEWS = ["queue", "stream", "thresholds", "maintenance"];
export const state = { who: null, models: [], defaultModel: null, stream: null };

// Each view draws only the answer to its latest request: an older answer that arrives
// late (a slow first load, then a filter) must not replace a newer one.
const latest = new Map();
export function newest(view) {
  const ticket = (latest.get(view) || 0) + 1;
  latest.set(view, ticket);
  return () => latest.get(view) === ticket;
}

// Answers still on their way are dropped (on sign-out: they belong to the previous key).
export function dropAnswers() {
  for (const [view, ticket] of latest) latest.set(view, ticket + 1);
}

export function say(text, { error = false } = {}) {
  const status = $("status");
  status.textContent = text;
  status.className = error ? "status warn" : "status";
}

// A view that loaded is no longer in the state an earlier error described: the error goes
// (a message about something done stays until the next view).
export function loaded() {
  if ($("status").classList.contains("warn")) say("");
}

// While a request is on its way the header says so, and the content is marked busy.
export function showBusy() {
  onBusy((busy) => {
    $("busy").hidden = !busy;
    $("main").setAttribute("aria-busy", String(busy));
  });
}

// The models served, into every model picker; the listing (with why a model is not
// served, when none is).
export async function readModels() {
  const listed = await api("/v1/models");
  state.models = listed.models.map((m) => m.name);
  state.defaultModel = listed.default_model || state.models[0] || null;
  for (const id of ["queue-model", "stream-model", "thresholds-model"]) fillModels($(id), false);
  fillModels($("window-model"), true);
  return listed;
}

function fillModels(select, withAny) {
  const chosen = select.value;
  select.replaceChildren(
    ...(withAny ? [h("option", { value: "", text: "every model" })] : []),
    ...state.models.map((name) => h("option", { value: name, text: name })),
  );
  select.value = state.models.includes(chosen) ? chosen : (withAny ? "" : state.defaultModel || "");
}

export function can(scope) {
  return Boolean(state.who && state.who.scopes.includes(scope));
}

export function showSignIn(reason) {
  for (const view of VIEWS) $(`view-${view}`).hidden = true;
  $("view-signin").hidden = false;
  const why = $("signin-reason");
  why.hidden = !reason;
  why.textContent = reason || "";
  $("api-key").focus();
}

// A change whose reply was lost: the service may or may not have applied it.
export const lostReply = (error) => error instanceof NoReply && error.changing;

// ``unknown``: what to check before trying again, for a change whose reply was lost.
export async function handle(error, unknown = "Check whether it was applied before trying again.") {
  if (error instanceof AuthError) {
    if (error.status === 401) session.clear();
    const [what, next] = error.status === 401
      ? ["Your key was not accepted", "Sign in with a valid key."]
      : ["Your key may not do this", "Sign in with a key that has the scope this view needs."];
    say(`${what}: ${error.message}`, { error: true });
    showSignIn(`${what} (${error.status}): ${error.message}. ${next}`);
  } else if (error instanceof ApiError) {
    say(`The service refused (${error.status}): ${error.message}`, { error: true });
  } else if (lostReply(error)) {
    say(`The reply was lost (${error.message}): it is not known whether the service applied this change. ${unknown}`, { error: true });
  } else if (error instanceof NoReply) {
    say(`The service could not be reached (${error.message}). Nothing was changed; try again.`, { error: true });
  } else {
    say(`The console failed: ${error.message}. Reload the page.`, { error: true });
  }
}

// An action run from a button, with the buttons it decides (``group()``, the clicked one by
// default) disabled until it settles, so a double click cannot send its request twice.
// When the reply to its change is lost, ``reread()`` reads the view again before the
// buttons come back, so the operator sees whether it was applied instead of repeating it.
export function oneAtATime(action, { group = (button) => [button], unknown, reread } = {}) {
  return async (event) => {
    const buttons = group(event.currentTarget);
    if (buttons.some((button) => button.disabled)) return;
    for (const button of buttons) button.disabled = true;
    try {
      await action(event);
    } catch (error) {
      let check = unknown;
      if (lostReply(error) && reread) {
        try {
          await reread();
          check = `${unknown} The view below was read again just now.`;
        } catch {
          check = `${unknown} The view could not be read again: Refresh it first.`;
        }
      }
      await handle(error, check);
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  };
}

export function guarded(action, unknown) {
  return async (...args) => {
    try {
      await action(...args);
    } catch (error) {
      await handle(error, unknown);
    }
  };
}
