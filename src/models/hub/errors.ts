// One error hierarchy for everything that can go wrong while resolving or downloading a model from the
// Hugging Face Hub. Callers can switch on `kind` or use `instanceof`; every message is written for the
// person running `rerankd serve` and never contains the access token.

export type HubErrorKind =
  | "invalid-reference"
  | "auth"
  | "not-found"
  | "network"
  | "offline"
  | "integrity"
  | "disk-full"
  | "http";

export interface HubErrorOptions {
  repo?: string;
  file?: string;
  cause?: unknown;
}

export class HubError extends Error {
  readonly kind: HubErrorKind;
  /** `owner/name` of the repository concerned, when known. */
  readonly repo: string | undefined;
  /** Path of the file inside the repository concerned, when known. */
  readonly file: string | undefined;

  constructor(kind: HubErrorKind, message: string, options: HubErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.repo = options.repo;
    this.file = options.file;
  }
}

/** The model reference string could not be parsed. */
export class HubReferenceError extends HubError {
  readonly input: string;
  constructor(input: string, reason: string) {
    super("invalid-reference", `Invalid model reference ${JSON.stringify(input)}: ${reason}`);
    this.input = input;
  }
}

/** 401/403: the repository is gated or private and the request was not (sufficiently) authenticated. */
export class HubAuthError extends HubError {
  readonly status: number;
  readonly gated: boolean;
  constructor(message: string, status: number, gated: boolean, options: HubErrorOptions = {}) {
    super("auth", message, options);
    this.status = status;
    this.gated = gated;
  }
}

export type HubNotFoundTarget = "repo" | "revision" | "file";

/** 404: the repository, the revision or the file does not exist (`what` says which). */
export class HubNotFoundError extends HubError {
  readonly what: HubNotFoundTarget;
  readonly revision: string | undefined;
  constructor(what: HubNotFoundTarget, message: string, options: HubErrorOptions & { revision?: string } = {}) {
    super("not-found", message, options);
    this.what = what;
    this.revision = options.revision;
  }
}

/** The Hub could not be reached (DNS, refused connection, timeout, connection cut too often). */
export class HubNetworkError extends HubError {
  /** Low-level error code (ECONNREFUSED, ENOTFOUND, ETIMEDOUT, ...) when known. */
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, options: HubErrorOptions = {}) {
    super("network", message, options);
    this.code = code;
  }
}

/** Offline mode (HF_HUB_OFFLINE) is on and the cache does not hold what was asked for. */
export class HubOfflineError extends HubError {
  constructor(message: string, options: HubErrorOptions = {}) {
    super("offline", message, options);
  }
}

/** A downloaded file does not match the size or sha256 the Hub announced. The partial file is deleted. */
export class HubIntegrityError extends HubError {
  readonly check: "size" | "sha256" | "metadata";
  readonly expected: string;
  readonly actual: string;
  constructor(
    message: string,
    check: "size" | "sha256" | "metadata",
    expected: string,
    actual: string,
    options: HubErrorOptions = {},
  ) {
    super("integrity", message, options);
    this.check = check;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The disk holding the cache is full (ENOSPC / EDQUOT). The partial file is deleted. */
export class HubDiskFullError extends HubError {
  readonly path: string;
  constructor(message: string, path: string, options: HubErrorOptions = {}) {
    super("disk-full", message, options);
    this.path = path;
  }
}

/** Any other unexpected HTTP answer (5xx, 400, malformed metadata, ...). */
export class HubHttpError extends HubError {
  readonly status: number | undefined;
  readonly url: string;
  constructor(message: string, status: number | undefined, url: string, options: HubErrorOptions = {}) {
    super("http", message, options);
    this.status = status;
    this.url = url;
  }
}

/** Replace every occurrence of `secret` in the error's message (defence in depth: messages are built without it). */
export function redactError<E extends Error>(error: E, secret: string | undefined): E {
  if (secret && secret.length > 0 && error.message.includes(secret)) {
    error.message = error.message.split(secret).join("***");
  }
  return error;
}
