/**
 * The one place where failures become HTTP responses: rerankd's own errors, Fastify's (bad JSON,
 * wrong content type, body too large), validation errors from the TypeBox schemas, and anything
 * unexpected (500, without internals). No stack trace, path or other request's data ever leaves.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { EvaluationError } from "../engine/scheduler.js";
import {
  BadRequestError,
  CancelledError,
  InternalServerError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  RerankdError,
  TimeoutError,
  UnsupportedMediaTypeError,
} from "./errors.js";
import type { ErrorResponse } from "./schemas.js";
import { noteRequestError } from "./logging.js";

/** The fields of an Ajv error this module reads (Fastify runs Ajv with `verbose` for parentSchema). */
interface ValidationIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: unknown;
}

export function errorBody(error: RerankdError): ErrorResponse {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.status } };
}

/** Maps any thrown value to the RerankdError a client may see. */
export function toClientError(error: unknown): RerankdError {
  if (error instanceof RerankdError) return error;
  if (error instanceof CancelledError) {
    return error.reason === "deadline"
      ? new TimeoutError("The request did not finish within the server's request timeout; its queued work was dropped.")
      : new BadRequestError("The client closed the connection.");
  }
  if (error instanceof EvaluationError) return new InternalServerError();
  const fastify = error as Partial<FastifyError>;
  switch (fastify.code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new UnsupportedMediaTypeError("The request body must be JSON: send 'Content-Type: application/json'.");
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new PayloadTooLargeError("The request body is larger than this server accepts (--max-body-bytes).");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new BadRequestError("The request body is empty; send a JSON object.");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new BadRequestError("The request body is not valid JSON.");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new BadRequestError("The request's Content-Length does not match its body.");
  }
  if (fastify.validation) return validationError(fastify.validation as unknown as ValidationIssue[]);
  if (error instanceof SyntaxError && fastify.statusCode === 400) return new BadRequestError("The request body is not valid JSON.");
  if (typeof fastify.statusCode === "number" && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return new BadRequestError(sanitize(fastify.message ?? "Bad request."));
  }
  return new InternalServerError("Internal server error.");
}

const sanitize = (message: string): string => message.replace(/\/[^\s'"]+/g, "<path>").slice(0, 300);

/** A readable message naming the field, from Ajv's errors for one request. */
export function validationError(errors: readonly ValidationIssue[]): BadRequestError {
  // Ajv lists a union's branch failures before the union's own error. A branch that failed on a
  // bound (minimum, minItems) matched the type, so its error is the precise one; otherwise the
  // union's own error, which describes every accepted shape, is.
  const union = errors.find((e) => e.keyword === "anyOf");
  const bound = errors.find((e) => e.keyword !== "type" && e.keyword !== "anyOf" && (!union || e.instancePath === union.instancePath));
  const error = bound ?? union ?? errors[0];
  const segments = error.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (error.keyword === "required") segments.push(String((error.params as { missingProperty: string }).missingProperty));
  if (error.keyword === "additionalProperties") segments.push(String((error.params as { additionalProperty: string }).additionalProperty));
  const field = segments.reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path ? `${path}.${s}` : s), "");
  const param = segments[0] ?? null;
  const where = field ? `\`${field}\`` : "The request body";
  let message: string;
  switch (error.keyword) {
    case "required":
      message = `${where} is required.`;
      break;
    case "type":
      message = error.instancePath
        ? `${where} must be ${article((error.params as { type: string }).type)}.`
        : "The request body must be a JSON object.";
      break;
    case "anyOf":
      message = `${where} must be ${describe(error.parentSchema)}.`;
      break;
    case "minItems":
      message = `${where} must contain at least ${(error.params as { limit: number }).limit} item(s).`;
      break;
    case "minimum":
      message = `${where} must be >= ${(error.params as { limit: number }).limit}.`;
      break;
    default:
      message = `${where} ${error.message ?? "is invalid"}.`;
  }
  return new BadRequestError(message, param);
}

function article(type: string): string {
  return type === "integer" || type === "object" || type === "array" ? `an ${type}` : `a ${type}`;
}

interface SchemaLike {
  type?: string;
  description?: string;
  anyOf?: SchemaLike[];
}

function describe(schema: unknown): string {
  const s = (schema ?? {}) as SchemaLike;
  if (s.anyOf) {
    const branches = s.anyOf.filter((b) => b.type !== "null");
    const nullable = branches.length < s.anyOf.length;
    const text = branches.length === 1 ? describe(branches[0]) : (s.description ?? branches.map(describe).join(" or "));
    return nullable ? `${text} (or null)` : text;
  }
  if (s.description && s.type !== "boolean" && s.type !== "integer") return s.description;
  return article(s.type ?? "value");
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const clientError = toClientError(error);
    // Logged once, in the request's completion line (./logging.ts), with the cause of a 5xx.
    noteRequestError(request, clientError, error);
    sendError(reply, clientError);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new NotFoundError(`No route ${request.method} ${request.url.split("?")[0]}.`));
  });
}

export function sendError(reply: FastifyReply, error: RerankdError): FastifyReply {
  if (error instanceof RateLimitError) reply.header("Retry-After", String(error.retryAfterSeconds));
  return reply.code(error.status).type("application/json").send(errorBody(error));
}
