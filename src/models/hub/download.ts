// Download one file of a Hub repository into the huggingface_hub cache, as hf_hub_download does:
//   1. a commit-hash revision whose snapshot pointer exists is returned without any request;
//   2. HEAD {endpoint}/{repo}/resolve/{revision}/{path} (relative redirects only) gives X-Repo-Commit, the
//      etag (X-Linked-Etag, else ETag, normalised), the size (X-Linked-Size, else Content-Length) and, for
//      LFS files, a Location on the CDN;
//   3. refs/<revision> is written, the blob is downloaded to blobs/<etag>.incomplete (resumed with Range
//      when it exists), checked, renamed to blobs/<etag>, and snapshots/<commit>/<path> is linked to it.
// The Authorization header is sent to the CDN only when it is on the same host as the Hub.
// When the Hub cannot be reached (or offline mode is on), the cache is used through refs/ and snapshots/.

import { createHash, type Hash } from "node:crypto";
import { type FileHandle, mkdir, open, rename, statfs, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { ensureCacheDirTag, isErrno, normalizeEtag, RepoCache, SHA256_RE } from "./cache.js";
import { type HubConfig, type HubEnv, resolveHubConfig } from "./config.js";
import {
  HubAuthError,
  HubDiskFullError,
  HubError,
  HubHttpError,
  HubIntegrityError,
  HubNetworkError,
  HubNotFoundError,
  HubOfflineError,
  redactError,
} from "./errors.js";
import {
  baseHeaders,
  describeNetworkFailure,
  errorFromResponse,
  type FetchLike,
  hubRequest,
  isNetworkFailure,
  isSameOrHubHost,
  networkErrorCode,
  resolveUrl,
} from "./http.js";
import { type ProgressReporter, silentProgress } from "./progress.js";
import { DEFAULT_REVISION, isCommitHash, validateRepoFilePath, validateRepoId, validateRevision } from "./reference.js";

export interface HubClientOptions {
  /** Complete settings; default resolveHubConfig(env). */
  config?: HubConfig;
  /** Environment to read settings from when `config` is not given (default process.env). */
  env?: HubEnv;
  /** fetch implementation (default globalThis.fetch). */
  fetch?: FetchLike;
  progress?: ProgressReporter;
  signal?: AbortSignal;
  /** How many times a dropped download is resumed in-process before giving up (default 5). */
  maxRetries?: number;
  /** Pause before such a resume, ms (default 1000). */
  retryDelayMs?: number;
}

/** Internal: the options above, resolved. */
export interface HubContext {
  config: HubConfig;
  fetch: FetchLike;
  progress: ProgressReporter;
  signal: AbortSignal | undefined;
  maxRetries: number;
  retryDelayMs: number;
}

export function hubContext(options: HubClientOptions): HubContext {
  return {
    config: options.config ?? resolveHubConfig(options.env ?? process.env),
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    progress: options.progress ?? silentProgress,
    signal: options.signal,
    maxRetries: options.maxRetries ?? 5,
    retryDelayMs: options.retryDelayMs ?? 1000,
  };
}

export interface FileMetadata {
  /** Commit the revision resolved to (X-Repo-Commit). */
  commit: string;
  /** Normalised etag: the blob's file name. */
  etag: string;
  /** Size announced by the Hub; undefined when it gave none (the GET answer will tell). */
  size: number | undefined;
  /** Where to GET the content (the CDN for LFS files, else the resolve URL). */
  location: string;
  /** The resolve URL the metadata came from. */
  url: string;
}

function signalFor(ctx: HubContext, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
}

function throwIfAborted(ctx: HubContext): void {
  if (ctx.signal?.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error("aborted");
}

/** A network failure as a HubNetworkError (aborts by the caller's signal are passed through). */
export function toNetworkError(error: unknown, ctx: HubContext, what: string, repo: string): unknown {
  if (error instanceof HubError) return error;
  if (ctx.signal?.aborted) return error;
  const isTimeout = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
  if (!isTimeout && !isNetworkFailure(error)) return error;
  return new HubNetworkError(
    `Cannot reach the Hub at ${ctx.config.endpoint} while fetching ${what}: ${describeNetworkFailure(error)}`,
    networkErrorCode(error) ?? (isTimeout ? "ETIMEDOUT" : undefined),
    { repo, cause: error },
  );
}

/** HEAD the resolve URL of `path` at `revision` and read the Hub's metadata headers (get_hf_file_metadata). */
export async function getFileMetadata(
  ctx: HubContext,
  repo: string,
  revision: string,
  path: string,
  cache?: RepoCache,
): Promise<FileMetadata> {
  const url = resolveUrl(ctx.config.endpoint, repo, revision, path);
  const headers = { ...baseHeaders(ctx.config.token, ctx.config.userAgent), "accept-encoding": "identity" };
  let result;
  try {
    result = await hubRequest(url, {
      method: "HEAD",
      headers,
      redirects: "hub",
      signal: signalFor(ctx, ctx.config.metadataTimeoutMs),
      fetch: ctx.fetch,
    });
  } catch (error) {
    throw toNetworkError(error, ctx, `"${path}" of ${repo}@${revision}`, repo);
  }
  const { response } = result;
  const h = response.headers;
  const isRedirect = response.status >= 300 && response.status <= 399;
  if (!response.ok && !isRedirect) {
    const error = await errorFromResponse(response, {
      repo,
      revision,
      file: path,
      url,
      tokenSent: ctx.config.token !== undefined,
      endpoint: ctx.config.endpoint,
    });
    // Like huggingface_hub, remember that the file does not exist at that commit.
    const commit = h.get("x-repo-commit");
    if (cache && error instanceof HubNotFoundError && error.what === "file" && commit && isCommitHash(commit)) {
      await cache.markMissing(commit, path);
      await cache.writeRef(revision, commit).catch(() => undefined);
    }
    throw error;
  }
  await response.body?.cancel().catch(() => undefined);

  const commit = h.get("x-repo-commit");
  const etag = normalizeEtag(h.get("x-linked-etag") ?? h.get("etag"));
  // As get_hf_file_metadata: X-Linked-Size, else Content-Length unless this is a redirect (whose body it measures).
  const sizeHeader = h.get("x-linked-size") ?? (isRedirect ? null : h.get("content-length"));
  const size = sizeHeader !== null && /^\d+$/.test(sizeHeader.trim()) ? Number(sizeHeader.trim()) : undefined;
  const where = `"${path}" of ${repo}@${revision}`;
  if (!commit || !isCommitHash(commit)) {
    throw new HubHttpError(
      `The answer for ${where} has no X-Repo-Commit header: ${ctx.config.endpoint} does not look like a Hugging Face Hub ` +
        "(check HF_ENDPOINT, proxy and firewall settings)",
      response.status,
      url,
      { repo, file: path },
    );
  }
  if (etag === undefined || etag.includes("/") || etag.includes("\\") || etag === "." || etag === "..") {
    throw new HubHttpError(`The Hub gave no usable ETag for ${where}`, response.status, url, { repo, file: path });
  }
  const location = isRedirect ? new URL(h.get("location") as string, result.url).toString() : result.url;
  return { commit, etag, size, location, url };
}

// ---------------------------------------------------------------------------------------------------------

/** Serialises downloads of the same blob inside this process. */
const blobLocks = new Map<string, Promise<void>>();

async function withBlobLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    const held = blobLocks.get(key);
    if (held === undefined) break;
    await held.catch(() => undefined);
  }
  let release = (): void => undefined;
  const lock = new Promise<void>((resolve) => {
    release = resolve;
  });
  blobLocks.set(key, lock);
  try {
    return await fn();
  } finally {
    blobLocks.delete(key);
    release();
  }
}

export interface BlobDownload {
  repo: string;
  /** Repo file path, for messages and progress. */
  file: string;
  meta: FileMetadata;
  /** sha256 the content must have (LFS files), lowercase hex. */
  sha256: string | undefined;
}

const WRITE_BUFFER_BYTES = 1 << 20;
/** Resumes in one call, whatever progress is made between them. */
const MAX_TOTAL_RETRIES = 100;

class IdleTimeoutError extends Error {
  constructor(ms: number) {
    super(`no data received for ${Math.round(ms / 1000)} s`);
    this.name = "TimeoutError";
  }
}

/** Appends to the .incomplete file through a 1 MiB buffer. */
class BlobWriter {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes on disk (flushed). */
  written = 0;

  constructor(private readonly fh: FileHandle) {}

  /** Bytes received: on disk plus buffered. */
  get received(): number {
    return this.written + this.buffered;
  }

  async push(chunk: Uint8Array): Promise<void> {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    if (this.buffered >= WRITE_BUFFER_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const data = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = [];
    const n = this.buffered;
    this.buffered = 0;
    let offset = 0;
    while (offset < data.byteLength) {
      const { bytesWritten } = await this.fh.write(data, offset, data.byteLength - offset);
      offset += bytesWritten;
    }
    this.written += n;
  }

  async truncate(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    await this.fh.truncate(0);
    this.written = 0;
  }
}

async function hashPrefix(fh: FileHandle, length: number, hash: Hash): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(WRITE_BUFFER_BYTES * 4, Math.max(length, 1)));
  let position = 0;
  while (position < length) {
    const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

async function warnIfLowOnSpace(ctx: HubContext, dir: string, needed: number, file: string): Promise<void> {
  try {
    const s = await statfs(dir);
    const free = Number(s.bavail) * Number(s.bsize);
    if (free < needed) {
      ctx.progress.warn(
        `not enough free disk space for "${file}": ${needed} bytes needed, ${free} free in ${dir}`,
      );
    }
  } catch {
    // statfs unsupported: the write will tell
  }
}

function diskFullError(error: unknown, repo: string, file: string, path: string, size: number | undefined): HubDiskFullError {
  const bytes = size !== undefined ? ` (${size} bytes)` : "";
  return new HubDiskFullError(
    `No space left on the device while downloading "${file}" of ${repo}${bytes} into ${dirname(path)}: ` +
      "free some space or set HF_HUB_CACHE to a folder on a larger disk. The partial file was removed.",
    path,
    { repo, file, cause: error },
  );
}

/**
 * Make sure blobs/<etag> exists with the right content: download it into blobs/<etag>.incomplete, resuming
 * what is there, verify size (and sha256 for LFS files), then rename. Integrity failures and a full disk
 * delete the partial file; network failures keep it for the next attempt.
 */
export async function downloadBlob(ctx: HubContext, cache: RepoCache, job: BlobDownload): Promise<void> {
  const blob = cache.blobPath(job.meta.etag);
  await withBlobLock(blob, async () => {
    if (await cache.hasBlob(job.meta.etag)) return;
    const incomplete = cache.incompletePath(job.meta.etag);
    await mkdir(dirname(blob), { recursive: true });
    let fh: FileHandle | undefined;
    let size = job.meta.size;
    try {
      fh = await open(incomplete, "a+");
      const state = await transfer(ctx, job, fh, incomplete);
      size = state.size;
      // Verify before publishing the blob.
      const onDisk = (await fh.stat()).size;
      if (size !== undefined && onDisk !== size) {
        throw new HubIntegrityError(
          `"${job.file}" of ${job.repo} has ${onDisk} bytes but the Hub announced ${size}; the partial file was removed`,
          "size",
          String(size),
          String(onDisk),
          { repo: job.repo, file: job.file },
        );
      }
      if (state.hash && job.sha256 !== undefined) {
        const actual = state.hash.digest("hex");
        if (actual !== job.sha256) {
          throw new HubIntegrityError(
            `Checksum mismatch for "${job.file}" of ${job.repo}: sha256 ${actual}, expected ${job.sha256}; ` +
              "the partial file was removed, run again to download it anew",
            "sha256",
            job.sha256,
            actual,
            { repo: job.repo, file: job.file },
          );
        }
      }
      await fh.close();
      fh = undefined;
      await rename(incomplete, blob);
    } catch (error) {
      await fh?.close().catch(() => undefined);
      if (error instanceof HubIntegrityError || isErrno(error, "ENOSPC", "EDQUOT")) {
        await unlink(incomplete).catch(() => undefined);
      }
      if (isErrno(error, "ENOSPC", "EDQUOT")) throw diskFullError(error, job.repo, job.file, incomplete, size);
      throw error;
    }
  });
}

/** Total length of the file from a GET answer: Content-Range's total, else Content-Length (+ offset for 206). */
function lengthFromResponse(response: Response, offset: number): number | undefined {
  const encoding = (response.headers.get("content-encoding") ?? "identity").toLowerCase();
  if (encoding !== "identity") return undefined; // the body is decoded: Content-Length is not the file's
  const range = response.headers.get("content-range");
  const total = range ? /\/(\d+)\s*$/.exec(range)?.[1] : undefined;
  if (total !== undefined) return Number(total);
  const length = response.headers.get("content-length");
  if (length === null || !/^\d+$/.test(length.trim())) return undefined;
  return Number(length.trim()) + (response.status === 206 ? offset : 0);
}

interface TransferResult {
  size: number | undefined;
  hash: Hash | undefined;
}

/** Fill the .incomplete file (opened "a+") up to the file's size, resuming and retrying as http_get does. */
async function transfer(ctx: HubContext, job: BlobDownload, fh: FileHandle, incomplete: string): Promise<TransferResult> {
  let size = job.meta.size;
  const writer = new BlobWriter(fh);
  const newHash = (): Hash | undefined => (job.sha256 !== undefined ? createHash("sha256") : undefined);
  let have = (await fh.stat()).size;
  if (size !== undefined && have > size) {
    await fh.truncate(0);
    have = 0;
  }
  writer.written = have;
  let hash = newHash();
  // The sha256 must cover the whole file: re-hash what an earlier attempt left.
  if (hash && have > 0) await hashPrefix(fh, have, hash);
  ctx.progress.update(job.file, have, size);
  if (size !== undefined && have < size) await warnIfLowOnSpace(ctx, dirname(incomplete), size - have, job.file);
  const restart = async (): Promise<void> => {
    await writer.truncate();
    hash = newHash();
    ctx.progress.update(job.file, 0, size);
  };

  // Same rule as huggingface_hub: no Authorization off the Hub (a CDN URL is pre-signed).
  const trusted = isSameOrHubHost(job.meta.url, job.meta.location);
  const headers = baseHeaders(trusted ? ctx.config.token : undefined, ctx.config.userAgent);
  headers["accept-encoding"] = "identity";

  let retriesLeft = ctx.maxRetries;
  let totalRetries = 0;
  let useRange = true;
  // With an unknown size, one complete answer ends the transfer.
  let complete = size !== undefined && writer.written >= size;
  while (!complete) {
    throwIfAborted(ctx);
    const offset = writer.written;
    const requestHeaders = { ...headers };
    if (offset > 0 && useRange) requestHeaders.range = `bytes=${offset}-`;
    const controller = new AbortController();
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, controller.signal]) : controller.signal;
    const idleMs = ctx.config.downloadIdleTimeoutMs;
    const onIdle = (): void => controller.abort(new IdleTimeoutError(idleMs));
    let timer = setTimeout(onIdle, idleMs);
    const armTimer = (): void => {
      clearTimeout(timer);
      timer = setTimeout(onIdle, idleMs);
    };
    try {
      let response: Response;
      try {
        ({ response } = await hubRequest(job.meta.location, {
          method: "GET",
          headers: requestHeaders,
          redirects: "all",
          signal,
          fetch: ctx.fetch,
        }));
      } catch (error) {
        throw toNetworkError(controller.signal.reason ?? error, ctx, `"${job.file}" of ${job.repo}`, job.repo);
      }
      if (response.status === 416 && offset > 0) {
        // The range is not satisfiable: our partial file does not match the server's file; start over.
        await response.body?.cancel().catch(() => undefined);
        await restart();
        useRange = false;
        continue;
      }
      if (!response.ok) {
        throw await errorFromResponse(response, {
          repo: job.repo,
          revision: job.meta.commit,
          file: job.file,
          url: job.meta.url,
          tokenSent: trusted && ctx.config.token !== undefined,
          endpoint: ctx.config.endpoint,
        });
      }
      if (offset > 0) {
        const range = response.headers.get("content-range");
        const start = response.status === 206 && range ? /^bytes (\d+)-/.exec(range)?.[1] : undefined;
        if (start === undefined || Number(start) !== offset) {
          // The server ignored Range (200: its body is the whole file) or sent another range: start over.
          await restart();
          if (response.status === 206) {
            await response.body?.cancel().catch(() => undefined);
            useRange = false;
            continue;
          }
        }
      }
      size ??= lengthFromResponse(response, writer.written);
      if (response.body === null) throw new TypeError("terminated");
      const reader = response.body.getReader();
      let finished = false;
      armTimer();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            finished = true;
            break;
          }
          armTimer();
          if (size !== undefined && writer.received + value.byteLength > size) {
            throw new HubIntegrityError(
              `"${job.file}" of ${job.repo} is larger than the ${size} bytes the Hub announced; the partial file was removed`,
              "size",
              String(size),
              `more than ${size}`,
              { repo: job.repo, file: job.file },
            );
          }
          hash?.update(value);
          await writer.push(value);
          // Progress was made: the retry budget is per stall, as in huggingface_hub's http_get (with a cap).
          if (totalRetries < MAX_TOTAL_RETRIES) retriesLeft = ctx.maxRetries;
          ctx.progress.update(job.file, writer.received, size);
        }
      } finally {
        // On an error, release the connection instead of leaving the body half-read.
        if (!finished) await reader.cancel().catch(() => undefined);
        reader.releaseLock();
        await writer.flush();
      }
      ctx.progress.update(job.file, writer.written, size);
      if (size !== undefined && writer.written < size) throw new TypeError("terminated");
      complete = true;
    } catch (error) {
      await writer.flush().catch(() => undefined);
      const reason = controller.signal.aborted ? controller.signal.reason : error;
      if (error instanceof HubError && !(error instanceof HubNetworkError)) throw error;
      if (isErrno(error, "ENOSPC", "EDQUOT")) throw error;
      const retryable =
        !ctx.signal?.aborted &&
        (error instanceof HubNetworkError || isNetworkFailure(reason) || reason instanceof IdleTimeoutError);
      if (!retryable) throw error;
      if (retriesLeft <= 0) {
        throw new HubNetworkError(
          `Download of "${job.file}" of ${job.repo} failed: ${describeNetworkFailure(reason)} ` +
            `(${writer.written}${size !== undefined ? ` of ${size}` : ""} bytes kept in ${incomplete}; run again to resume)`,
          networkErrorCode(reason) ?? (reason instanceof IdleTimeoutError ? "ETIMEDOUT" : undefined),
          { repo: job.repo, file: job.file, cause: reason },
        );
      }
      retriesLeft--;
      totalRetries++;
      await sleep(ctx.retryDelayMs, undefined, ctx.signal ? { signal: ctx.signal } : undefined);
    } finally {
      clearTimeout(timer);
    }
  }
  return { size, hash };
}

/** The sha256 a file must have: the Hub's LFS metadata if given, else its etag when that is a sha256. */
export function expectedSha256(etag: string, lfsSha256: string | undefined): string | undefined {
  if (lfsSha256 !== undefined) return lfsSha256.toLowerCase();
  return SHA256_RE.test(etag) ? etag : undefined;
}

// ---------------------------------------------------------------------------------------------------------

export interface HubFileResult {
  repo: string;
  revision: string;
  /** Commit the revision resolved to. */
  commit: string;
  /** Repo file path. */
  file: string;
  /** snapshots/<commit>/<file> (a symlink to the blob). */
  path: string;
  /** "network": metadata came from the Hub (a download may or may not have been needed); "cache": no Hub answer. */
  source: "network" | "cache";
  /** Whether bytes were downloaded by this call. */
  downloaded: boolean;
  /** Why the cache was used although online (the Hub error), when source is "cache" and not offline. */
  warning?: string;
}

/** Errors after which the cache may still serve the request (huggingface_hub does the same). */
export function canFallBackToCache(error: unknown): boolean {
  if (error instanceof HubNetworkError || error instanceof HubAuthError) return true;
  if (error instanceof HubNotFoundError) return error.what === "repo";
  if (error instanceof HubHttpError) return error.status === undefined || error.status >= 500 || error.status === 429;
  return false;
}

export function notCachedMessage(repo: string, revision: string, cacheDir: string, what?: string): string {
  const target = what ? `"${what}" of ${repo}@${revision}` : `${repo}@${revision}`;
  return `${target} is not in the cache (${cacheDir})`;
}

/** Network failure + nothing cached: say both, and what to do. */
export function networkAndNotCached(error: HubNetworkError, repo: string, revision: string, cacheDir: string, what?: string): HubNetworkError {
  return new HubNetworkError(
    `${error.message}. ${notCachedMessage(repo, revision, cacheDir, what)}: it must be downloaded first, with network access ` +
      "(rerankd and huggingface-cli download fill the same cache); set HF_HUB_OFFLINE=1 to use only cached models.",
    error.code,
    { repo, file: what ?? error.file, cause: error.cause },
  );
}

/**
 * Download one file of a Hub repository into the cache (hf_hub_download) and return its snapshot path.
 * Honours HF_HUB_OFFLINE, falls back to the cache when the Hub cannot be reached.
 */
export async function hubDownload(
  repo: string,
  file: string,
  options: HubClientOptions & { revision?: string } = {},
): Promise<HubFileResult> {
  const ctx = hubContext(options);
  try {
    return await hubDownloadInner(ctx, repo, file, options.revision ?? DEFAULT_REVISION);
  } catch (error) {
    throw publicError(error, ctx, repo, file);
  }
}

/** Last touch on an error leaving the module: a full disk anywhere becomes HubDiskFullError; no token inside. */
export function publicError(error: unknown, ctx: HubContext, repo: string, file?: string): unknown {
  let out = error;
  if (isErrno(error, "ENOSPC", "EDQUOT") && !(error instanceof HubError)) {
    const path = (error as { path?: unknown }).path;
    out = new HubDiskFullError(
      `No space left on the device while writing to the cache for ${repo}${typeof path === "string" ? ` (${path})` : ""}: ` +
        "free some space or set HF_HUB_CACHE to a folder on a larger disk.",
      typeof path === "string" ? path : ctx.config.cacheDir,
      { repo, file, cause: error },
    );
  }
  return out instanceof Error ? redactError(out, ctx.config.token) : out;
}

async function fromCache(cache: RepoCache, revision: string, file: string): Promise<{ commit: string; path: string } | undefined> {
  const commit = await cache.resolveRevision(revision);
  if (commit === undefined || !(await cache.hasPointer(commit, file))) return undefined;
  return { commit, path: cache.pointerPath(commit, file) };
}

async function hubDownloadInner(ctx: HubContext, repo: string, file: string, revision: string): Promise<HubFileResult> {
  validateRepoId(repo);
  validateRevision(revision);
  validateRepoFilePath(file);
  const cache = new RepoCache(ctx.config.cacheDir, repo);
  const base = { repo, revision, file };

  if (isCommitHash(revision) && (await cache.hasPointer(revision, file))) {
    return { ...base, commit: revision, path: cache.pointerPath(revision, file), source: "cache", downloaded: false };
  }
  if (ctx.config.offline) {
    const hit = await fromCache(cache, revision, file);
    if (hit) return { ...base, ...hit, source: "cache", downloaded: false };
    throw new HubOfflineError(
      `${notCachedMessage(repo, revision, ctx.config.cacheDir, file)} and offline mode is on (HF_HUB_OFFLINE): ` +
        "download it once with network access first, or unset HF_HUB_OFFLINE.",
      { repo, file },
    );
  }

  let meta: FileMetadata;
  try {
    meta = await getFileMetadata(ctx, repo, revision, file, cache);
  } catch (error) {
    if (!canFallBackToCache(error)) throw error;
    const hit = await fromCache(cache, revision, file);
    if (hit) return { ...base, ...hit, source: "cache", downloaded: false, warning: (error as Error).message };
    if (error instanceof HubNetworkError) throw networkAndNotCached(error, repo, revision, ctx.config.cacheDir, file);
    throw error;
  }

  const pointer = cache.pointerPath(meta.commit, file);
  await mkdir(dirname(pointer), { recursive: true });
  await ensureCacheDirTag(ctx.config.cacheDir);
  await cache.writeRef(revision, meta.commit);
  const result = { ...base, commit: meta.commit, path: pointer, source: "network" as const };
  if (await cache.hasPointer(meta.commit, file)) return { ...result, downloaded: false };
  if (await cache.hasBlob(meta.etag)) {
    await cache.linkPointer(meta.commit, file, meta.etag);
    return { ...result, downloaded: false };
  }
  ctx.progress.begin({ label: `${repo}@${revision}`, files: 1, totalBytes: meta.size });
  let ok = false;
  try {
    await downloadBlob(ctx, cache, { repo, file, meta, sha256: expectedSha256(meta.etag, undefined) });
    ok = true;
  } finally {
    ctx.progress.end(ok);
  }
  await cache.linkPointer(meta.commit, file, meta.etag);
  return { ...result, downloaded: true };
}
