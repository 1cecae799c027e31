// Download the files of a Hub repository that match some patterns, as huggingface_hub's snapshot_download:
//   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true  -> commit (`sha`) and file list,
//   kept in trees/<commit>.json (huggingface_hub's tree cache); refs/<revision> <- commit; then every matching
//   file is fetched at that commit (hf_hub_download with revision=commit: nothing is requested for a file
//   whose snapshot pointer exists).
// A commit-hash revision skips the API call when the commit's tree listing is cached, so a fully cached
// commit needs no request at all (as huggingface_hub >= 1.x).
// Patterns are Unix shell wildcards matched like Python's fnmatch (case-sensitive, `*` also matches `/`;
// a pattern ending with `/` matches everything under that folder).

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

import { ensureCacheDirTag, RepoCache, SHA256_RE } from "./cache.js";
import {
  canFallBackToCache,
  downloadBlob,
  expectedSha256,
  type FileMetadata,
  getFileMetadata,
  type HubClientOptions,
  type HubContext,
  hubContext,
  networkAndNotCached,
  notCachedMessage,
  publicError,
  toNetworkError,
} from "./download.js";
import {
  HubHttpError,
  HubIntegrityError,
  HubNetworkError,
  HubNotFoundError,
  HubOfflineError,
} from "./errors.js";
import { baseHeaders, errorFromResponse, hubRequest, repoInfoUrl } from "./http.js";
import { DEFAULT_REVISION, isCommitHash, validateRepoFilePath, validateRepoId, validateRevision } from "./reference.js";

/**
 * What a GGUF conversion of a Gemma / XLM-RoBERTa / Qwen3 checkpoint needs: config, safetensors weights (and
 * their index), tokenizer files. Never pickles (*.bin, *.pt), TF/Flax (*.h5, *.msgpack), ONNX or GGUF files.
 */
export const DEFAULT_CHECKPOINT_PATTERNS: readonly string[] = Object.freeze([
  "config.json",
  "*.safetensors",
  "model.safetensors.index.json",
  "tokenizer.model",
  "sentencepiece.bpe.model",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "generation_config.json",
]);

export interface RepoSibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256: string; size: number };
}

export interface RepoInfo {
  sha: string;
  siblings: RepoSibling[];
}

// ------------------------------------------------------------------------------------------ patterns

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/** Python fnmatch.translate: `*` -> any run (including `/`), `?` -> one char, `[seq]`, `[!seq]`. */
export function fnmatchToRegExp(pattern: string): RegExp {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") {
      out += ".*";
    } else if (c === "?") {
      out += ".";
    } else if (c === "[") {
      let j = i + 1;
      if (j < pattern.length && pattern[j] === "!") j++;
      if (j < pattern.length && pattern[j] === "]") j++;
      while (j < pattern.length && pattern[j] !== "]") j++;
      if (j >= pattern.length) {
        out += "\\[";
      } else {
        let body = pattern.slice(i + 1, j).replace(/\\/g, "\\\\");
        if (body.startsWith("!")) body = `^${body.slice(1)}`;
        else if (body.startsWith("^")) body = `\\${body}`;
        out += `[${body}]`;
        i = j;
      }
    } else {
      out += escapeRegExp(c);
    }
  }
  return new RegExp(`^(?:${out})$`, "s");
}

function compile(patterns: readonly string[] | undefined): RegExp[] | undefined {
  return patterns?.map((p) => fnmatchToRegExp(p.endsWith("/") ? `${p}*` : p));
}

/** huggingface_hub's filter_repo_objects: keep paths matching an allow pattern (if any) and no ignore pattern. */
export function filterRepoFiles(
  paths: readonly string[],
  allowPatterns: readonly string[] | undefined,
  ignorePatterns?: readonly string[],
): string[] {
  const allow = compile(allowPatterns);
  const ignore = compile(ignorePatterns);
  return paths.filter(
    (path) => (allow === undefined || allow.some((r) => r.test(path))) && !(ignore ?? []).some((r) => r.test(path)),
  );
}

// ------------------------------------------------------------------------------------------ repo info

function parseRepoInfo(data: unknown, url: string, repo: string): RepoInfo {
  const bad = (why: string): HubHttpError =>
    new HubHttpError(`Unexpected answer from the Hub for ${repo} (${why}); check HF_ENDPOINT`, 200, url, { repo });
  if (typeof data !== "object" || data === null) throw bad("not a JSON object");
  const obj = data as { sha?: unknown; siblings?: unknown };
  if (typeof obj.sha !== "string" || !isCommitHash(obj.sha)) throw bad("no commit sha");
  if (!Array.isArray(obj.siblings)) throw bad("no siblings list");
  const siblings: RepoSibling[] = [];
  for (const item of obj.siblings as unknown[]) {
    if (typeof item !== "object" || item === null) throw bad("malformed sibling");
    const s = item as { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: unknown };
    if (typeof s.rfilename !== "string") throw bad("sibling without rfilename");
    try {
      validateRepoFilePath(s.rfilename);
    } catch {
      throw bad(`unsafe file name ${JSON.stringify(s.rfilename)}`);
    }
    const sibling: RepoSibling = { rfilename: s.rfilename };
    if (typeof s.size === "number") sibling.size = s.size;
    if (typeof s.blobId === "string") sibling.blobId = s.blobId;
    if (typeof s.lfs === "object" && s.lfs !== null) {
      const lfs = s.lfs as { sha256?: unknown; size?: unknown };
      if (typeof lfs.sha256 === "string" && typeof lfs.size === "number") {
        sibling.lfs = { sha256: lfs.sha256.toLowerCase(), size: lfs.size };
      }
    }
    siblings.push(sibling);
  }
  return { sha: obj.sha, siblings };
}

/** GET the repository's commit and file list at `revision` (HfApi.model_info(files_metadata=True)). */
export async function fetchRepoInfo(ctx: HubContext, repo: string, revision: string): Promise<RepoInfo> {
  const url = repoInfoUrl(ctx.config.endpoint, repo, revision);
  let response: Response;
  try {
    ({ response } = await hubRequest(url, {
      method: "GET",
      headers: { ...baseHeaders(ctx.config.token, ctx.config.userAgent), accept: "application/json" },
      redirects: "hub",
      signal: ctx.signal
        ? AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.config.metadataTimeoutMs)])
        : AbortSignal.timeout(ctx.config.metadataTimeoutMs),
      fetch: ctx.fetch,
    }));
  } catch (error) {
    throw toNetworkError(error, ctx, `the file list of ${repo}@${revision}`, repo);
  }
  if (!response.ok) {
    throw await errorFromResponse(response, {
      repo,
      revision,
      url,
      tokenSent: ctx.config.token !== undefined,
      endpoint: ctx.config.endpoint,
    });
  }
  let data: unknown;
  try {
    data = await response.json();
  } catch (error) {
    const mapped = toNetworkError(error, ctx, `the file list of ${repo}@${revision}`, repo);
    if (mapped instanceof HubNetworkError) throw mapped;
    throw new HubHttpError(`The Hub's answer for ${repo}@${revision} is not JSON; check HF_ENDPOINT`, 200, url, { repo });
  }
  return parseRepoInfo(data, url, repo);
}

const TREE_CACHE_FORMAT_VERSION = 1;

/** Write trees/<commit>.json in huggingface_hub's format, when the file list has what that format requires. */
async function writeTreeCache(cache: RepoCache, info: RepoInfo): Promise<void> {
  const files: Record<string, Record<string, string | number>> = {};
  for (const s of [...info.siblings].sort((a, b) => (a.rfilename < b.rfilename ? -1 : a.rfilename > b.rfilename ? 1 : 0))) {
    if (s.size === undefined || s.blobId === undefined) return; // Python would reject the file: write nothing
    files[s.rfilename] = {
      size: s.size,
      blob_id: s.blobId,
      ...(s.lfs ? { lfs_sha256: s.lfs.sha256, lfs_size: s.lfs.size } : {}),
    };
  }
  try {
    const path = cache.treeCachePath(info.sha);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, JSON.stringify({ format_version: TREE_CACHE_FORMAT_VERSION, files }, null, 1));
    await rename(tmp, path);
  } catch {
    // only an optimisation, as in huggingface_hub
  }
}

/** Read trees/<commit>.json (written by rerankd or huggingface_hub); undefined when absent or not understood. */
export async function readTreeCache(cache: RepoCache, commit: string): Promise<RepoInfo | undefined> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(cache.treeCachePath(commit), "utf8"));
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null) return undefined;
  const obj = data as { format_version?: unknown; files?: unknown };
  if (obj.format_version !== TREE_CACHE_FORMAT_VERSION || typeof obj.files !== "object" || obj.files === null) return undefined;
  const siblings: RepoSibling[] = [];
  for (const [path, value] of Object.entries(obj.files as Record<string, unknown>)) {
    if (typeof value !== "object" || value === null) return undefined;
    const e = value as { size?: unknown; blob_id?: unknown; lfs_sha256?: unknown; lfs_size?: unknown };
    if (typeof e.size !== "number" || typeof e.blob_id !== "string") return undefined;
    try {
      validateRepoFilePath(path);
    } catch {
      return undefined;
    }
    const sibling: RepoSibling = { rfilename: path, size: e.size, blobId: e.blob_id };
    if (typeof e.lfs_sha256 === "string") {
      sibling.lfs = { sha256: e.lfs_sha256.toLowerCase(), size: typeof e.lfs_size === "number" ? e.lfs_size : e.size };
    }
    siblings.push(sibling);
  }
  return { sha: commit, siblings };
}

// ------------------------------------------------------------------------------------------ snapshot

export interface SnapshotDownloadOptions extends HubClientOptions {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  /** Files to fetch (fnmatch patterns); default DEFAULT_CHECKPOINT_PATTERNS. Pass ["*"] for everything. */
  allowPatterns?: readonly string[];
  /** Files to skip even when allowed. */
  ignorePatterns?: readonly string[];
  /** Files downloaded at the same time (default 4). */
  maxConcurrency?: number;
}

export interface SnapshotResult {
  repo: string;
  revision: string;
  commit: string;
  /** snapshots/<commit>: the folder to read the checkpoint from. */
  path: string;
  /** Matching files present in the snapshot, relative `/` paths, sorted. */
  files: string[];
  /** The subset of `files` this call downloaded. */
  downloaded: string[];
  /** "network": the file list came from the Hub; "cache": no request could be or had to be made. */
  source: "network" | "cache";
  /** The Hub error that made the cache serve the request, if that happened while online. */
  warning?: string;
}

interface CachedSnapshot {
  commit: string;
  files: string[];
  /** Matching files the cached tree listing has but the snapshot lacks; undefined without a tree listing. */
  missing: string[] | undefined;
}

async function cachedSnapshot(
  cache: RepoCache,
  revision: string,
  allow: readonly string[] | undefined,
  ignore: readonly string[] | undefined,
): Promise<CachedSnapshot | undefined> {
  const commit = await cache.resolveRevision(revision);
  if (commit === undefined || !(await cache.hasSnapshot(commit))) return undefined;
  const listing = await readTreeCache(cache, commit);
  if (listing) {
    const wanted = filterRepoFiles(listing.siblings.map((s) => s.rfilename), allow, ignore).sort();
    const present: string[] = [];
    const missing: string[] = [];
    for (const f of wanted) ((await cache.hasPointer(commit, f)) ? present : missing).push(f);
    return { commit, files: present.sort(), missing };
  }
  // Downloaded by another tool: we cannot know what the repo has; take what the snapshot holds.
  return { commit, files: filterRepoFiles(await cache.listSnapshotFiles(commit), allow, ignore), missing: undefined };
}

function patternsText(allow: readonly string[] | undefined): string {
  return allow === undefined ? "*" : allow.join(", ");
}

/**
 * Fetch the files of `repo` at `revision` that match the patterns into the huggingface_hub cache and return
 * the snapshot folder. Offline mode and an unreachable Hub are served from the cache when possible.
 */
export async function snapshotDownload(repo: string, options: SnapshotDownloadOptions = {}): Promise<SnapshotResult> {
  const ctx = hubContext(options);
  try {
    return await snapshotDownloadInner(ctx, repo, options);
  } catch (error) {
    throw publicError(error, ctx, repo);
  }
}

async function snapshotDownloadInner(ctx: HubContext, repo: string, options: SnapshotDownloadOptions): Promise<SnapshotResult> {
  const revision = options.revision ?? DEFAULT_REVISION;
  validateRepoId(repo);
  validateRevision(revision);
  const allow = options.allowPatterns ?? DEFAULT_CHECKPOINT_PATTERNS;
  const ignore = options.ignorePatterns;
  const cache = new RepoCache(ctx.config.cacheDir, repo);
  const label = `${repo}@${revision}`;

  const fromCache = (c: CachedSnapshot, warning?: string): SnapshotResult => ({
    repo,
    revision,
    commit: c.commit,
    path: cache.snapshotDir(c.commit),
    files: c.files,
    downloaded: [],
    source: "cache",
    ...(warning !== undefined ? { warning } : {}),
  });

  if (ctx.config.offline) {
    const c = await cachedSnapshot(cache, revision, allow, ignore);
    const why = "offline mode is on (HF_HUB_OFFLINE)";
    const todo = "download it once with network access first, or unset HF_HUB_OFFLINE";
    if (c === undefined) {
      throw new HubOfflineError(`${notCachedMessage(repo, revision, ctx.config.cacheDir)} and ${why}: ${todo}.`, { repo });
    }
    if (c.missing !== undefined && c.missing.length > 0) {
      throw new HubOfflineError(
        `The cached snapshot of ${label} is incomplete (missing ${c.missing.join(", ")}) and ${why}: ${todo}.`,
        { repo, file: c.missing[0] },
      );
    }
    if (c.files.length === 0) {
      throw new HubOfflineError(
        `The cached snapshot of ${label} (${cache.snapshotDir(c.commit)}) has no file matching ${patternsText(allow)} and ${why}: ${todo}.`,
        { repo },
      );
    }
    return fromCache(c);
  }

  // A commit is immutable, and so is its file list: with the tree listing cached, no API call is needed
  // (and no request at all when every matching file is already in the snapshot).
  let info = isCommitHash(revision) ? await readTreeCache(cache, revision) : undefined;
  const listedFromCache = info !== undefined;
  if (info === undefined) {
    try {
      info = await fetchRepoInfo(ctx, repo, revision);
    } catch (error) {
      if (!canFallBackToCache(error)) throw error;
      const c = await cachedSnapshot(cache, revision, allow, ignore);
      if (c && c.files.length > 0 && (c.missing === undefined || c.missing.length === 0)) {
        return fromCache(c, (error as Error).message);
      }
      if (error instanceof HubNetworkError) {
        if (c?.missing !== undefined && c.missing.length > 0) {
          throw new HubNetworkError(
            `${error.message}. The cached snapshot of ${label} is incomplete (missing ${c.missing.join(", ")}): ` +
              "run again with network access to complete it.",
            error.code,
            { repo, cause: error.cause },
          );
        }
        throw networkAndNotCached(error, repo, revision, ctx.config.cacheDir);
      }
      throw error;
    }
  }

  const commit = info.sha;
  const wanted = filterRepoFiles(info.siblings.map((s) => s.rfilename), allow, ignore).sort();
  if (wanted.length === 0) {
    const names = info.siblings.map((s) => s.rfilename);
    const shown = names.slice(0, 20).join(", ") + (names.length > 20 ? ", …" : "");
    throw new HubNotFoundError(
      "file",
      `${label} has no file matching ${patternsText(allow)}${ignore ? ` (ignoring ${ignore.join(", ")})` : ""}; it has: ${shown || "no files"}`,
      { repo, revision },
    );
  }

  await mkdir(cache.snapshotDir(commit), { recursive: true });
  await ensureCacheDirTag(ctx.config.cacheDir);
  await cache.writeRef(revision, commit);
  if (!listedFromCache) await writeTreeCache(cache, info);

  const siblings = new Map(info.siblings.map((s) => [s.rfilename, s]));
  const todo: string[] = [];
  for (const f of wanted) if (!(await cache.hasPointer(commit, f))) todo.push(f);
  const result: SnapshotResult = {
    repo,
    revision,
    commit,
    path: cache.snapshotDir(commit),
    files: wanted,
    downloaded: [],
    source: listedFromCache ? "cache" : "network",
  };
  if (todo.length === 0) return result;
  result.source = "network";

  const sizes = todo.map((f) => siblings.get(f)?.lfs?.size ?? siblings.get(f)?.size);
  const totalBytes = sizes.every((s) => s !== undefined) ? sizes.reduce<number>((a, b) => a + (b ?? 0), 0) : undefined;

  // Stop the other downloads as soon as one fails (their partial files stay for a resume).
  const stop = new AbortController();
  const child: HubContext = { ...ctx, signal: ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal };
  const queue = [...todo];
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    for (let f = queue.shift(); f !== undefined && errors.length === 0; f = queue.shift()) {
      try {
        if (await fetchSnapshotFile(child, cache, repo, commit, f, siblings.get(f))) result.downloaded.push(f);
      } catch (error) {
        // Say that the file is missing from the cache, not only that the Hub could not be reached.
        errors.push(error instanceof HubNetworkError ? networkAndNotCached(error, repo, revision, ctx.config.cacheDir, f) : error);
        stop.abort(new Error("another file failed"));
      }
    }
  };
  ctx.progress.begin({ label, files: todo.length, totalBytes });
  const workers = Math.max(1, Math.min(options.maxConcurrency ?? 4, todo.length));
  await Promise.all(Array.from({ length: workers }, () => worker()));
  ctx.progress.end(errors.length === 0);
  // The first error is the root cause; the others are the aborts it triggered in the other workers.
  if (errors.length > 0) throw errors[0];
  result.downloaded.sort();
  return result;
}

/** Bring one file of the snapshot into the cache; returns whether bytes were downloaded. */
async function fetchSnapshotFile(
  ctx: HubContext,
  cache: RepoCache,
  repo: string,
  commit: string,
  file: string,
  sibling: RepoSibling | undefined,
): Promise<boolean> {
  if (await cache.hasPointer(commit, file)) return false;
  const meta = await getFileMetadata(ctx, repo, commit, file, cache);
  if (meta.commit !== commit) {
    throw new HubHttpError(
      `The Hub answered commit ${meta.commit} for "${file}" of ${repo}@${commit}; check HF_ENDPOINT`,
      undefined,
      meta.url,
      { repo, file },
    );
  }
  const lfs = sibling?.lfs;
  const announced = lfs?.size ?? sibling?.size;
  if (announced !== undefined && meta.size !== undefined && announced !== meta.size) {
    throw new HubIntegrityError(
      `The Hub's metadata for "${file}" of ${repo} disagree: ${announced} bytes in the file list, ${meta.size} in the file's headers`,
      "metadata",
      String(announced),
      String(meta.size),
      { repo, file },
    );
  }
  if (lfs && SHA256_RE.test(meta.etag) && meta.etag !== lfs.sha256) {
    throw new HubIntegrityError(
      `The Hub's metadata for "${file}" of ${repo} disagree: sha256 ${lfs.sha256} in the file list, ${meta.etag} in the file's headers`,
      "metadata",
      lfs.sha256,
      meta.etag,
      { repo, file },
    );
  }
  // A size missing from the headers is taken from the file list (huggingface_hub's tree metadata).
  const sized: FileMetadata = { ...meta, size: meta.size ?? announced };
  let downloaded = false;
  if (!(await cache.hasBlob(meta.etag))) {
    await downloadBlob(ctx, cache, { repo, file, meta: sized, sha256: expectedSha256(meta.etag, lfs?.sha256) });
    downloaded = true;
  }
  await cache.linkPointer(commit, file, meta.etag);
  return downloaded;
}
