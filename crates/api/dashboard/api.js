// The JSON API under /api/v1, called with the session cookie the server set
// at login (HttpOnly: this code never sees the token).

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let whenUnauthenticated = () => {};

/** Called with the error whenever a request (other than login) gets 401. */
export function onUnauthenticated(handler) {
  whenUnauthenticated = handler;
}

async function request(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, "network", String(e && e.message ? e.message : e));
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    const e = new ApiError(
      response.status,
      err.code || `http_${response.status}`,
      err.message || response.statusText,
      response.headers.get("Retry-After"),
    );
    if (response.status === 401 && path !== "/auth/login") whenUnauthenticated(e);
    throw e;
  }
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body ?? {}),
  patch: (path, body) => request("PATCH", path, body),
  del: (path) => request("DELETE", path),
};

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}
