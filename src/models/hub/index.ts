// Public surface of the Hub client: resolve `owner/name[@rev]` or `hf:owner/name/file[@rev]` to local files
// in Python huggingface_hub's cache (shared with it), downloading what is missing.

import { type HubClientOptions, hubDownload } from "./download.js";
import { parseModelReference, type ModelReference } from "./reference.js";
import { snapshotDownload, type SnapshotDownloadOptions } from "./snapshot.js";

export * from "./errors.js";
export * from "./reference.js";
export { type HubConfig, type HubEnv, DEFAULT_ENDPOINT, resolveHubConfig, resolveCacheDir, isOffline } from "./config.js";
export { RepoCache, repoFolderName, normalizeEtag } from "./cache.js";
export { type HubClientOptions, type HubFileResult, type FileMetadata, hubDownload, getFileMetadata } from "./download.js";
export {
  DEFAULT_CHECKPOINT_PATTERNS,
  type RepoInfo,
  type RepoSibling,
  type SnapshotDownloadOptions,
  type SnapshotResult,
  filterRepoFiles,
  fnmatchToRegExp,
  snapshotDownload,
} from "./snapshot.js";
export {
  type ProgressReporter,
  type ProgressTask,
  type ConsoleProgressOptions,
  createConsoleProgress,
  silentProgress,
  formatBytes,
} from "./progress.js";

export interface FetchedModel {
  reference: ModelReference;
  /** Snapshot folder (repo reference) or the file's snapshot path (file reference). */
  path: string;
  commit: string;
  /** Repo-relative files now in the cache for this reference. */
  files: string[];
  downloaded: string[];
  source: "network" | "cache";
  warning?: string;
}

/**
 * Resolve a model reference (string or parsed) to local files, downloading them when needed:
 * a repository reference fetches the files matching `allowPatterns` (default: what a checkpoint conversion
 * needs), a file reference fetches that one file.
 */
export async function fetchModel(
  reference: string | ModelReference,
  options: HubClientOptions & Pick<SnapshotDownloadOptions, "allowPatterns" | "ignorePatterns" | "maxConcurrency"> = {},
): Promise<FetchedModel> {
  const ref = typeof reference === "string" ? parseModelReference(reference) : reference;
  if (ref.kind === "file") {
    const r = await hubDownload(ref.repo, ref.path, { ...options, revision: ref.revision });
    return {
      reference: ref,
      path: r.path,
      commit: r.commit,
      files: [ref.path],
      downloaded: r.downloaded ? [ref.path] : [],
      source: r.source,
      ...(r.warning !== undefined ? { warning: r.warning } : {}),
    };
  }
  const s = await snapshotDownload(ref.repo, { ...options, revision: ref.revision });
  return {
    reference: ref,
    path: s.path,
    commit: s.commit,
    files: s.files,
    downloaded: s.downloaded,
    source: s.source,
    ...(s.warning !== undefined ? { warning: s.warning } : {}),
  };
}
