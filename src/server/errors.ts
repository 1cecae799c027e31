/**
 * The one error hierarchy of rerankd. Every failure a client can see is one of these; the server's
 * error handler (./error-handler.ts) is the only place that turns them (and Fastify's own errors)
 * into HTTP responses of API.md's shape.
 */
export type ErrorType =
  | "BadRequestError"
  | "AuthenticationError"
  | "NotFoundError"
  | "PayloadTooLargeError"
  | "UnsupportedMediaTypeError"
  | "RateLimitError"
  | "InternalServerError"
  | "ServiceUnavailableError"
  | "TimeoutError";

export class RerankdError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly type: ErrorType,
    /** The request field at fault, when there is one. */
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = type;
  }
}

export class BadRequestError extends RerankdError {
  constructor(message: string, param: string | null = null) {
    super(message, 400, "BadRequestError", param);
  }
}

export class AuthenticationError extends RerankdError {
  constructor(message = "Invalid or missing API key: send 'Authorization: Bearer <key>'.") {
    super(message, 401, "AuthenticationError");
  }
}

export class NotFoundError extends RerankdError {
  constructor(message: string, param: string | null = null) {
    super(message, 404, "NotFoundError", param);
  }
}

export class PayloadTooLargeError extends RerankdError {
  constructor(message: string) {
    super(message, 413, "PayloadTooLargeError");
  }
}

export class UnsupportedMediaTypeError extends RerankdError {
  constructor(message: string) {
    super(message, 415, "UnsupportedMediaTypeError");
  }
}

export class RateLimitError extends RerankdError {
  constructor(
    message: string,
    /** Seconds after which a retry is likely to be accepted (the Retry-After header). */
    readonly retryAfterSeconds: number,
  ) {
    super(message, 429, "RateLimitError");
  }
}

export class InternalServerError extends RerankdError {
  constructor(message = "The model failed to evaluate this request; the server is still serving.") {
    super(message, 500, "InternalServerError");
  }
}

export class ServiceUnavailableError extends RerankdError {
  constructor(message: string) {
    super(message, 503, "ServiceUnavailableError");
  }
}

export class TimeoutError extends RerankdError {
  constructor(message: string) {
    super(message, 504, "TimeoutError");
  }
}

/** A request was abandoned (client gone, deadline passed): its queued work is dropped. */
export class CancelledError extends Error {
  constructor(readonly reason: "client-closed" | "deadline") {
    super(reason === "deadline" ? "request deadline passed" : "client closed the connection");
    this.name = "CancelledError";
  }
}
