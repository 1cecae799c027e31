/**
 * API-key authentication: `Authorization: Bearer <key>` on every route but the public ones.
 * Keys are compared as SHA-256 digests with timingSafeEqual, against every configured key (no
 * early exit), so neither a key's length nor its prefix leaks through timing.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AuthenticationError } from "./errors.js";
import { sendError } from "./error-handler.js";
import { PLAYGROUND_ROUTES } from "./routes/playground.js";

/**
 * Routes anyone may call: liveness, readiness, version, metrics, the API's documentation and the
 * playground page (static files without data: the page sends the key the user enters).
 */
export const PUBLIC_ROUTES: readonly string[] = ["/health", "/ping", "/version", "/metrics", "/openapi.json", ...PLAYGROUND_ROUTES];
const PUBLIC_PREFIXES: readonly string[] = ["/docs"];

const digest = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest();

export function isPublicRoute(url: string): boolean {
  const path = url.split("?")[0];
  return PUBLIC_ROUTES.includes(path) || PUBLIC_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));
}

export function apiKeyGuard(keys: readonly string[]) {
  const digests = keys.map(digest);
  return async function checkApiKey(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (isPublicRoute(request.url)) return;
    const header = request.headers.authorization ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    const presented = digest(match ? match[1].trim() : "");
    let valid = false;
    for (const d of digests) valid = timingSafeEqual(d, presented) || valid;
    if (!match || !valid) {
      await sendError(reply, new AuthenticationError());
    }
  };
}
