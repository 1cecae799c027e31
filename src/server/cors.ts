/**
 * CORS, off unless the operator lists origins (--allowed-origins). When on, an allowed Origin gets
 * Access-Control-Allow-Origin on every answer (errors included, so a browser can read a 401 or a
 * 429), and preflights are answered here, before authentication: a browser sends them without
 * credentials. Requests from other origins get no CORS headers, so browsers refuse their answers.
 */
import type { FastifyInstance } from "fastify";

const ALLOWED_HEADERS = "authorization, content-type, x-request-id";
const EXPOSED_HEADERS = "x-request-id, retry-after";

export function registerCors(app: FastifyInstance, allowedOrigins: readonly string[]): void {
  if (allowedOrigins.length === 0) return;
  const any = allowedOrigins.includes("*");
  const allowed = new Set(allowedOrigins.map((o) => o.toLowerCase()));
  app.addHook("onRequest", async (request, reply) => {
    const origin = request.headers.origin;
    reply.header("Vary", "Origin");
    if (typeof origin !== "string" || !(any || allowed.has(origin.toLowerCase()))) return;
    reply.header("Access-Control-Allow-Origin", any ? "*" : origin);
    reply.header("Access-Control-Expose-Headers", EXPOSED_HEADERS);
    if (request.method === "OPTIONS" && request.headers["access-control-request-method"] !== undefined) {
      reply.header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      reply.header("Access-Control-Allow-Headers", ALLOWED_HEADERS);
      reply.header("Access-Control-Max-Age", "600");
      return reply.code(204).send();
    }
  });
}
