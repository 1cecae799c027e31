// Minimal HTTP layer over Node's fetch (undici) with the Hub's conventions (huggingface_hub utils/_http.py):
// - redirects are handled here, never by fetch. Metadata requests (HEAD /resolve, the API) follow a redirect
//   only when it stays on the Hub: a relative Location, the same host, or a Hub host (huggingface.co, hf.co,
//   hub-ci.huggingface.co); they stop at any other host (the CDN), whose Location and headers are the file's
//   metadata. Downloads follow every redirect;
// - the Authorization header only goes to the host it was first sent to (host = name and port, stricter than
//   huggingface_hub's name-only comparison) or to a Hub host: never to a CDN or storage host;
// - error answers are classified with X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound,
//   GatedRepo) and the status, into the HubError hierarchy; messages never carry the token.

import {
  HubAuthError,
  type HubError,
  HubHttpError,
  HubNetworkError,
  HubNotFoundError,
} from "./errors.js";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

const MAX_REDIRECTS = 20;

/** huggingface_hub's HF_URL_HOSTS without the endpoint's own host (that one is "the same host"). */
export const HUB_HOSTNAMES: ReadonlySet<string> = new Set(["huggingface.co", "hf.co", "hub-ci.huggingface.co"]);

/** Whether `target` is on the same host as `origin` (name and port) or on a Hub host. */
export function isSameOrHubHost(origin: string, target: string): boolean {
  const a = new URL(origin);
  const b = new URL(target);
  return a.host.toLowerCase() === b.host.toLowerCase() || (b.protocol === "https:" && HUB_HOSTNAMES.has(b.hostname.toLowerCase()));
}

export interface HubRequestOptions {
  method: "GET" | "HEAD";
  headers: Record<string, string>;
  /** "hub": follow only redirects that stay on the Hub (see above); "all": follow every redirect. */
  redirects: "hub" | "all";
  signal?: AbortSignal;
  fetch: FetchLike;
}

export interface HubResponse {
  response: Response;
  /** URL that produced `response` (after the redirects that were followed). */
  url: string;
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== "authorization") out[k] = v;
  return out;
}

/** Perform a request, handling redirects as described in the module comment. */
export async function hubRequest(url: string, options: HubRequestOptions): Promise<HubResponse> {
  let current = url;
  let headers = options.headers;
  for (let hop = 0; ; hop++) {
    const response = await options.fetch(current, {
      method: options.method,
      headers,
      redirect: "manual",
      signal: options.signal,
    });
    const location = response.headers.get("location");
    if (response.status < 300 || response.status > 399 || location === null) return { response, url: current };
    const next = new URL(location, current).toString();
    const staysOnHub = isSameOrHubHost(url, next);
    if (options.redirects === "hub" && !staysOnHub) return { response, url: current };
    await response.body?.cancel().catch(() => undefined);
    if (hop >= MAX_REDIRECTS) {
      throw new HubHttpError(`Too many redirects while fetching ${url}`, response.status, url);
    }
    if (!staysOnHub) headers = withoutAuthorization(headers);
    current = next;
  }
}

/** Percent-encode a repo file path for a URL, segment by segment (like Python's quote(path), '/' kept). */
export function quotePath(path: string): string {
  return path
    .split("/")
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join("/");
}

export function resolveUrl(endpoint: string, repo: string, revision: string, path: string): string {
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${quotePath(path)}`;
}

export function repoInfoUrl(endpoint: string, repo: string, revision: string): string {
  return `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
}

export function baseHeaders(token: string | undefined, userAgent: string): Record<string, string> {
  const headers: Record<string, string> = { "user-agent": userAgent };
  if (token) headers.authorization = `Bearer ${token}`;
  return headers;
}

/** The low-level error code of a failed fetch (undici wraps it in TypeError.cause, maybe an AggregateError). */
export function networkErrorCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && typeof e === "object" && e !== null; depth++) {
    const obj = e as { code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof obj.code === "string") return obj.code;
    if (Array.isArray(obj.errors) && obj.errors.length > 0) {
      e = obj.errors[0];
      continue;
    }
    e = obj.cause;
  }
  return undefined;
}

/** True for the errors fetch and the body stream throw when the network fails (not HTTP errors, not aborts). */
export function isNetworkFailure(error: unknown): boolean {
  if (error instanceof HubNetworkError) return true;
  // undici: TypeError("fetch failed") for connection errors, TypeError("terminated") for a cut body.
  if (error instanceof TypeError && (error.message === "fetch failed" || error.message === "terminated")) return true;
  const code = networkErrorCode(error);
  return (
    code !== undefined &&
    /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|EPIPE|UND_ERR_.*)$/.test(code)
  );
}

export function describeNetworkFailure(error: unknown): string {
  const code = networkErrorCode(error);
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "the host name could not be resolved (DNS)";
  if (code === "ECONNREFUSED") return "the connection was refused";
  if (code === "ETIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT") return "the connection timed out";
  if (code === "ENETUNREACH" || code === "EHOSTUNREACH") return "the network is unreachable";
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") return "the connection was closed by the other side";
  if (error instanceof Error && error.name === "TimeoutError") return "no answer in time";
  return code ?? (error instanceof Error ? error.message : String(error));
}

export interface ErrorContext {
  repo: string;
  revision: string;
  /** Repo file concerned, or undefined for the repository API. */
  file?: string;
  url: string;
  tokenSent: boolean;
  endpoint: string;
}

async function serverMessage(response: Response): Promise<string | undefined> {
  const parts: string[] = [];
  const header = response.headers.get("x-error-message");
  if (header) parts.push(header);
  try {
    const text = (await response.text()).slice(0, 2000);
    const type = response.headers.get("content-type") ?? "";
    if (type.includes("json")) {
      const data: unknown = JSON.parse(text);
      if (typeof data === "object" && data !== null && "error" in data) {
        const err = (data as { error: unknown }).error;
        if (typeof err === "string") parts.push(err);
      }
    } else if (text.trim() !== "" && !type.includes("html")) {
      parts.push(text.trim());
    }
  } catch {
    // no body
  }
  const unique = [...new Set(parts.map((p) => p.trim()).filter((p) => p !== ""))];
  if (unique.length === 0) return undefined;
  const joined = unique.join("; ");
  return joined.length > 300 ? `${joined.slice(0, 300)}…` : joined;
}

/** Turn a non-OK Hub answer into the matching HubError. */
export async function errorFromResponse(response: Response, ctx: ErrorContext): Promise<HubError> {
  const status = response.status;
  const code = response.headers.get("x-error-code");
  const server = await serverMessage(response);
  const suffix = server ? ` (Hub said: ${server})` : "";
  const at = `${ctx.repo}@${ctx.revision}`;
  const modelPage = `${ctx.endpoint}/${ctx.repo}`;
  const opts = { repo: ctx.repo, file: ctx.file, revision: ctx.revision };

  if (code === "RevisionNotFound") {
    return new HubNotFoundError("revision", `Revision "${ctx.revision}" not found in repository ${ctx.repo}${suffix}`, opts);
  }
  if (code === "EntryNotFound" || (status === 404 && ctx.file !== undefined && code !== "RepoNotFound")) {
    return new HubNotFoundError("file", `File "${ctx.file ?? "?"}" not found in ${at}${suffix}`, opts);
  }
  if (code === "GatedRepo") {
    const how = ctx.tokenSent
      ? `the token in HF_TOKEN has no access: request access on ${modelPage} with that account`
      : `request access on ${modelPage}, then set HF_TOKEN to an access token of that account`;
    return new HubAuthError(`Model ${ctx.repo} is gated: ${how}${suffix}`, status, true, opts);
  }
  if (status === 401) {
    const how = ctx.tokenSent
      ? "the token in HF_TOKEN was refused (invalid, expired, or without access to it)"
      : "if it is private or gated, set HF_TOKEN to an access token that can read it";
    return new HubAuthError(
      `Repository ${ctx.repo} was not found or needs authentication (HTTP 401): ${how}${suffix}`,
      status,
      false,
      opts,
    );
  }
  if (status === 403) {
    const how = ctx.tokenSent
      ? `the token in HF_TOKEN lacks permission for it (for a gated model, request access on ${modelPage})`
      : "set HF_TOKEN to an access token that can read it";
    return new HubAuthError(`Access to ${ctx.repo} is forbidden (HTTP 403): ${how}${suffix}`, status, false, opts);
  }
  if (code === "RepoNotFound" || status === 404) {
    const hint = ctx.tokenSent ? "" : " (if it is private, set HF_TOKEN)";
    return new HubNotFoundError("repo", `Repository ${ctx.repo} not found on ${ctx.endpoint}${hint}${suffix}`, opts);
  }
  const what = ctx.file !== undefined ? `"${ctx.file}" of ${at}` : `repository ${at}`;
  return new HubHttpError(`The Hub answered HTTP ${status} for ${what}${suffix}`, status, ctx.url, opts);
}
