/**
 * Per-request limits that keep one request from costing the server without bound: documents per
 * rerank request, pairs per score request, characters per query/document/prompt, token ids per
 * detokenize request, and the request's deadline (enforced in ./request-context.ts). The body's
 * size is Fastify's bodyLimit (413).
 *
 * The counts are checked in a preValidation hook, after JSON parsing and before schema validation:
 * a body of a million empty strings is refused by one length comparison, not validated item by
 * item. The hook reads field names, not routes, so every POST route (and any added later that uses
 * the same field names) is covered; values of the wrong type are left to the schema's 400.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { BadRequestError } from "./errors.js";

export interface RequestLimits {
  /** Most documents in one rerank request (--max-documents). */
  maxDocuments: number;
  /** Most pairs in one score request, i.e. items on either side (--max-pairs). */
  maxPairs: number;
  /** Most characters (UTF-16 code units) in one query, document or prompt (--max-chars). */
  maxChars: number;
  /** Milliseconds a request may take, from its arrival; 0 = no deadline (--request-timeout). */
  requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: RequestLimits = {
  maxDocuments: 1000,
  maxPairs: 1000,
  maxChars: 100_000,
  requestTimeoutMs: 120_000,
};

/** Fields holding one text. */
const TEXT_FIELDS = ["query", "prompt"] as const;
/** Fields holding texts (a list, or for the score route's sides also a single string). */
const LIST_FIELDS = ["documents", "texts", "queries", "text_1", "text_2", "data_1", "data_2"] as const;

const SCORE_PATH = /(^|\/)score$/;

const textOf = (item: unknown): string | null => {
  if (typeof item === "string") return item;
  if (item !== null && typeof item === "object" && !Array.isArray(item)) {
    const text = (item as { text?: unknown }).text;
    if (typeof text === "string") return text;
  }
  return null;
};

/** Throws the BadRequestError for the first limit the body exceeds, if any. */
export function checkBodyLimits(body: unknown, route: string, limits: RequestLimits): void {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return;
  const fields = body as Record<string, unknown>;
  const chars = (value: string, field: string, param: string) => {
    if (value.length > limits.maxChars) {
      throw new BadRequestError(
        `\`${field}\` is ${value.length} characters long; this server accepts at most ${limits.maxChars} per query or document (--max-chars).`,
        param,
      );
    }
  };
  for (const name of TEXT_FIELDS) {
    const value = fields[name];
    if (typeof value === "string") chars(value, name, name);
  }
  const scoring = SCORE_PATH.test(route);
  const [cap, flag, what] = scoring ? [limits.maxPairs, "--max-pairs", "pairs"] : [limits.maxDocuments, "--max-documents", "documents"];
  for (const name of LIST_FIELDS) {
    const value = fields[name];
    if (typeof value === "string") chars(value, name, name);
    if (!Array.isArray(value)) continue;
    if (value.length > cap) {
      throw new BadRequestError(
        `\`${name}\` has ${value.length} items; this server accepts at most ${cap} ${what} per request (${flag}).`,
        name,
      );
    }
    value.forEach((item, i) => {
      const text = textOf(item);
      if (text !== null) chars(text, `${name}[${i}]`, name);
    });
  }
  const tokens = fields.tokens;
  if (Array.isArray(tokens) && tokens.length > limits.maxChars) {
    throw new BadRequestError(
      `\`tokens\` has ${tokens.length} items; this server accepts at most ${limits.maxChars} (--max-chars).`,
      "tokens",
    );
  }
}

/** The preValidation hook applying checkBodyLimits to every request with a JSON body. */
export function bodyLimitsHook(limits: RequestLimits) {
  return async function enforceBodyLimits(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    if (request.body === undefined) return;
    checkBodyLimits(request.body, request.routeOptions.url ?? request.url, limits);
  };
}
