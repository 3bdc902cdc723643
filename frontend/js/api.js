// Calls to the Strata API, and its errors as one type the page can act on: each error knows its
// kind (waking, limited, auth, forbidden, unavailable, invalid) and when it may be retried.

import { authorization } from "./auth.js";
import { apiUrl } from "./config.js";

const RATE_LIMIT_KINDS = ["requests", "tokens"];

export class ApiError extends Error {
  constructor(message, { status = null, code = null, type = null, retryAfterS = null, limits = {}, waking = false } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.type = type;
    this.retryAfterS = retryAfterS;
    this.limits = limits;
    this.waking = waking;
  }

  // An error answer (OpenAI's shape: {"error": {message, type, code}}, plus strata.waking).
  static async fromResponse(response) {
    const body = await response.json().catch(() => ({}));
    return ApiError.fromBody(body, {
      status: response.status,
      retryAfterS: retryAfter(response.headers.get("Retry-After")),
      limits: rateLimits(response.headers),
    });
  }

  // The same shape, from an error event that ended a stream, or from a response's body.
  static fromBody(body, { status = null, retryAfterS = null, limits = {} } = {}) {
    const error = body?.error || {};
    const waking = Boolean(body?.strata?.waking) || error.code === "model_waking";
    return new ApiError(error.message || (status ? `Request failed (${status}).` : "The answer was interrupted."), {
      status,
      code: error.code || null,
      type: error.type || null,
      retryAfterS: body?.strata?.retry_after_s ?? retryAfterS,
      limits,
      waking,
    });
  }

  static network() {
    return new ApiError("The service cannot be reached.", { code: "network_error" });
  }

  // A stream that stopped without its end ([DONE]) or its error event: the answer is incomplete.
  static broken() {
    return new ApiError("The connection dropped before the answer was complete.", { code: "stream_broken" });
  }

  get kind() {
    if (this.waking) return "waking";
    if (this.status === 429 || ["rate_limit_exceeded", "insufficient_quota"].includes(this.code)) return "limited";
    if (this.status === 401 || this.code === "invalid_api_key") return "auth";
    if (this.status === 403 || this.code === "permission_denied") return "forbidden";
    if (this.status === null || this.status >= 500) {
      return this.type === "invalid_request_error" ? "invalid" : "unavailable";
    }
    return "invalid";
  }
}

// Seconds from a Retry-After header (seconds, or an HTTP date), or null.
export function retryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

// OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers.
export function rateLimits(headers) {
  const limits = {};
  for (const kind of RATE_LIMIT_KINDS) {
    const limit = headers.get(`x-ratelimit-limit-${kind}`);
    if (limit === null) continue;
    limits[kind] = {
      limit: Number(limit),
      remaining: Number(headers.get(`x-ratelimit-remaining-${kind}`)),
      reset: headers.get(`x-ratelimit-reset-${kind}`),
    };
  }
  return limits;
}

export async function apiFetch(path, { method = "GET", body, signal } = {}) {
  const headers = {};
  const credentials = await authorization();
  if (credentials) headers.Authorization = credentials;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(await apiUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw ApiError.network();
  }
  if (!response.ok) throw await ApiError.fromResponse(response);
  return response;
}

export async function apiJson(path, options) {
  const response = await apiFetch(path, options);
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    throw new ApiError("The service answered with something that is not JSON.", { code: "bad_response" });
  }
}
