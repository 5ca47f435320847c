// The operator's console: sign-in, routing between the views, and wiring. Every action is
// a call to the public API with the signed-in key; a 401 or 403 brings the sign-in prompt
// back with the service's reason.

import { api, forgetLabelIds, session } from "./api.js";
import { createWindow, loadWindows, streamTyped } from "./maintenance.js";
import { loadQueue, loadStream, streamKeys } from "./review.js";
import {
  $, VIEWS, can, dropAnswers, guarded, handle, readModels, say, showBusy, showSignIn, state,
} from "./shell.js";
import { loadThresholds } from "./thresholds.js";

// --- sign-in ----------------------------------------------------------------------------

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

// What the previous key was shown: nothing of it stays in the page for the next person.
const RENDERED = [
  "who-name", "queue-summary", "queue-items", "stream-plot", "stream-selected",
  "thresholds-current", "thresholds-pending", "thresholds-chart", "thresholds-table",
  "thresholds-drift", "windows-table",
];

function signOut() {
  session.clear();
  dropAnswers();
  forgetLabelIds();
  state.who = null;
  state.stream = null;
  for (const id of RENDERED) $(id).replaceChildren();
  $("stream-selected").hidden = true;
  $("queue-stream").value = "";
  $("stream-id").value = "";
  history.replaceState(null, "", location.pathname + location.search);
  $("nav").hidden = true;
  $("who").hidden = true;
  say("Signed out.");
  showSignIn();
}

async function start() {
  state.who = await api("/v1/whoami");
  await readModels();
  $("who-name").textContent = `${state.who.name} (${state.who.scopes.join(", ")})`;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("view-signin").hidden = true;
  $("window-form").hidden = !can("admin");
  await route();
}

// --- routing ----------------------------------------------------------------------------

async function route() {
  if (!session.key() || !state.who) {
    showSignIn();
    return;
  }
  say("");  // what the status line said belonged to the view before
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

// --- wiring -----------------------------------------------------------------------------

function wire() {
  showBusy();
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("queue-filters").addEventListener("submit", guarded(async (e) => { e.preventDefault(); await loadQueue(); }));
  $("stream-filters").addEventListener("submit", guarded(async (e) => { e.preventDefault(); await loadStream(); }));
  $("thresholds-filters").addEventListener("submit", guarded(async (e) => { e.preventDefault(); await loadThresholds(); }));
  $("window-form").addEventListener("submit", guarded(createWindow));
  $("windows-filters").addEventListener("submit", guarded(async (e) => { e.preventDefault(); await loadWindows(); }));
  $("window-stream").addEventListener("input", streamTyped);
  $("stream-plot").addEventListener("keydown", streamKeys);
  // The skip link moves the focus only: #main in the address would be a route, and the
  // router knows no such view.
  $("skip").addEventListener("click", (event) => {
    event.preventDefault();
    $("main").focus();
  });
  window.addEventListener("hashchange", route);
  $("signin-button").disabled = false;
  document.body.dataset.ready = "true";
  if (session.key()) start().catch(handle);
  else showSignIn();
}

wire();
