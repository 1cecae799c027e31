/**
 * The optional per-key rate limit (--rate-limit N per second, --rate-limit-burst): a token bucket
 * per API key, or per client address when the server has no keys. Only authenticated routes count;
 * a request over the limit gets 429 with Retry-After. Buckets are kept for at most MAX_BUCKETS
 * callers (least recently seen dropped first), so many addresses cannot grow memory without bound;
 * a dropped caller starts again with a full bucket.
 */
import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { isPublicRoute } from "./auth.js";
import { RateLimitError } from "./errors.js";
import { sendError } from "./error-handler.js";

const MAX_BUCKETS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one request from `caller`'s bucket: 0 if allowed, else seconds until one is. */
  take(caller: string): number {
    const now = this.now();
    const bucket = this.buckets.get(caller) ?? { tokens: this.burst, at: now };
    this.buckets.delete(caller);
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    this.buckets.set(caller, bucket);
    if (this.buckets.size > MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / this.perSecond;
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** Who a request counts against: its API key (as a digest, never the key) or its address. */
function caller(request: FastifyRequest, keyed: boolean): string {
  if (!keyed) return `ip:${request.ip}`;
  const match = /^Bearer\s+(.+)$/i.exec((request.headers.authorization ?? "").trim());
  return `key:${createHash("sha256").update(match ? match[1].trim() : "", "utf8").digest("hex")}`;
}

export function rateLimitHook(limiter: RateLimiter, keyed: boolean, onLimited?: () => void) {
  return async function limitRate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (reply.sent || request.method === "OPTIONS" || isPublicRoute(request.url)) return;
    const wait = limiter.take(caller(request, keyed));
    if (wait > 0) {
      onLimited?.();
      const seconds = Math.max(1, Math.ceil(wait));
      await sendError(
        reply,
        new RateLimitError(`Too many requests ${keyed ? "for this API key" : "from this address"}: at most ${limiter.perSecond} per second (--rate-limit). Retry after ${seconds} s.`, seconds),
      );
    }
  };
}
