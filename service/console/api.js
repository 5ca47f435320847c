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
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  const detail = (data && data.detail) || response.statusText;
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
// that sends it and the whole body: stream, reading, label, note): a retry of the same
// click reuses it, so the feedback API answers with the stored submission instead of
// storing it twice, and two different submissions never share one (the API would refuse
// the second with a 409).
const labelIds = new Map();
export function clientLabelId(author, body) {
  const key = JSON.stringify([author, body]);
  if (!labelIds.has(key)) labelIds.set(key, `console-${crypto.randomUUID()}`);
  return labelIds.get(key);
}
