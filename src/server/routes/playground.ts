/**
 * GET / (the playground page) and its two assets under /playground/: static files, read once at
 * start, carrying no data, so they are public even when the server requires API keys (the page
 * asks for the key and sends it with its own requests). A strict Content-Security-Policy keeps the
 * page to this server: its own script and styles, and requests to its own origin only.
 */
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";

const STATIC_DIR = new URL("../static/playground/", import.meta.url);

/** Paths the playground serves, for auth.ts's public routes. */
export const PLAYGROUND_ROUTES = ["/", "/playground/playground.js", "/playground/playground.css"] as const;

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

interface StaticFile {
  body: Buffer;
  type: string;
}

function load(name: string, type: string): StaticFile {
  return { body: readFileSync(new URL(name, STATIC_DIR)), type };
}

export function playgroundRoutes(app: FastifyInstance): void {
  const files: Record<(typeof PLAYGROUND_ROUTES)[number], StaticFile> = {
    "/": load("index.html", "text/html; charset=utf-8"),
    "/playground/playground.js": load("playground.js", "text/javascript; charset=utf-8"),
    "/playground/playground.css": load("playground.css", "text/css; charset=utf-8"),
  };
  for (const url of PLAYGROUND_ROUTES) {
    const file = files[url];
    app.get(url, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type(file.type)
        .header("Cache-Control", "no-cache")
        .header("X-Content-Type-Options", "nosniff")
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("Referrer-Policy", "no-referrer")
        .send(file.body),
    );
  }
}
