// The console's only way to the service: the public API, with the signed-in key in the
// Authorization header. The key lives in this tab's session storage, never in a URL.

const KEY = "anomaly-console-key";

export class AuthError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// No answer came back: the network failed, or the service did not answer within
// TIMEOUT_S. ``changing``: the request was one that changes something (not a GET), so the
// service may have acted on it before the reply was lost.
export class NoReply extends Error {
  constructor(detail, changing) {
    super(detail);
    this.changing = changing;
  }
}

// Long enough for the slowest answer a healthy service gives (a thresholds page with its
// drift tests), short enough that an operator is not left waiting on a dead connection.
export const TIMEOUT_S = 20;

// Whether a reverse proxy answered in the service's place. The service never answers 502
// or 504 (bad gateway, gateway timeout: the shipped nginx's own problem documents, or any
// proxy's page); its 503s carry a problem's ``detail``, while a proxy's 503 page does not.
function fromProxy(status, data) {
  if (status === 502 || status === 504) return true;
  return status === 503 && !(data && typeof data.detail === "string");
}

// How many requests are on their way, told to the page (its busy indication).
let waiting = 0;
let busyListener = () => {};
export function onBusy(listener) {
  busyListener = listener;
}
function waitingFor(step) {
  waiting += step;
  busyListener(waiting > 0);
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export async function api(path, { method = "GET", body } = {}) {
  const key = session.key();
  if (!key) throw new AuthError(401, "Sign in with an API key.");
  const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_S * 1000);
  waitingFor(1);
  let response;
  let text;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal: controller.signal,
    });
    text = await response.text();
  } catch (error) {
    const why = controller.signal.aborted ? `no answer within ${TIMEOUT_S} s` : error.message;
    throw new NoReply(why, method !== "GET");
  } finally {
    clearTimeout(timer);
    waitingFor(-1);
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  const detail = (data && typeof data.detail === "string" && data.detail) || response.statusText;
  if (fromProxy(response.status, data)) {
    // A proxy in front answered, not the service: it may have passed the request on before
    // giving up, so a change's fate is as unknown as when no reply came.
    // A read changed nothing, whatever the proxy's text says of "applied".
    const changing = method !== "GET";
    const why = `a proxy answered ${response.status}${changing && detail ? `: ${detail}` : ""}`;
    throw new NoReply(why, changing);
  }
  if (response.status === 401 || response.status === 403) {
    throw new AuthError(response.status, detail);
  }
  if (!response.ok) throw new ApiError(response.status, detail);
  return data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// A fresh id per submission, keyed on everything that tells two submissions apart (the key
// that sends it and the whole body: stream, reading, label, note) and kept only while its
// outcome is unknown: a retry after a lost reply reuses it, so the feedback API answers with
// the stored submission instead of storing it twice; once a reply came, the same label
// sent again later (normal, anomaly, then normal again) is a new submission, stored.
const labelIds = new Map();
export function clientLabelId(author, body) {
  const key = JSON.stringify([author, body]);
  if (!labelIds.has(key)) labelIds.set(key, `console-${crypto.randomUUID()}`);
  return labelIds.get(key);
}
export function labelAnswered(author, body) {
  labelIds.delete(JSON.stringify([author, body]));
}
export function forgetLabelIds() {
  labelIds.clear();
}
