// The on-disk layout of Python huggingface_hub's cache (file_download.py), reproduced exactly so that
// files fetched by either tool are reused by the other:
//
//   <cacheDir>/models--{owner}--{name}/
//     blobs/<etag>                 file content; etag = git blob sha1 (regular file) or sha256 (LFS file),
//                                  taken from X-Linked-Etag or ETag with W/ prefix and quotes stripped
//     blobs/<etag>.incomplete      partial download, resumed with a Range request
//     snapshots/<commit>/<path>    relative symlink to ../../blobs/<etag> (one more ../ per sub-folder)
//     refs/<revision>              the commit hash the branch/tag pointed to, no trailing newline
//     .no_exist/<commit>/<path>    empty marker: the file does not exist at that commit
//   <cacheDir>/CACHEDIR.TAG        cache-directory tag, as huggingface_hub writes it
//     trees/<commit>.json          the repo's file list at that (immutable) commit, huggingface_hub >= 1.x's
//                                  tree cache (_tree_cache.py, format_version 1): a commit-hash revision whose
//                                  files are all cached needs no request, and offline mode can tell a partial
//                                  snapshot from a complete one.

import { lstat, mkdir, readFile, readdir, rename, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";

import { COMMIT_HASH_RE } from "./reference.js";

/** Same cache-directory tag huggingface_hub writes (https://bford.info/cachedir/), so backups skip the cache. */
const CACHEDIR_TAG =
  "Signature: 8a477f597d28d172789f06886806bc55\n" +
  "# This file is a cache directory tag created by huggingface_hub.\n" +
  "# For information about cache directory tags, see:\n" +
  "#\thttps://bford.info/cachedir/\n";

/** Create <cacheDir>/CACHEDIR.TAG unless it exists (best effort, as huggingface_hub). */
export async function ensureCacheDirTag(cacheDir: string): Promise<void> {
  try {
    await writeFile(join(cacheDir, "CACHEDIR.TAG"), CACHEDIR_TAG, { flag: "wx" });
  } catch {
    // exists already, or not writable: never an error
  }
}

export const SHA256_RE = /^[0-9a-f]{64}$/;

/** `models--owner--name`, as huggingface_hub's repo_folder_name(repo_type="model"). */
export function repoFolderName(repo: string): string {
  return ["models", ...repo.split("/")].join("--");
}

/** Normalise an HTTP ETag to a file name, as huggingface_hub's _normalize_etag: drop `W/`, strip quotes. */
export function normalizeEtag(etag: string | null | undefined): string | undefined {
  if (etag === null || etag === undefined) return undefined;
  let value = etag.trim();
  // Python's str.lstrip("W/") strips any run of 'W' and '/' characters; real ETags start with W/ or '"'.
  while (value.startsWith("W") || value.startsWith("/")) value = value.slice(1);
  value = value.replace(/^"+|"+$/g, "");
  return value === "" ? undefined : value;
}

export class RepoCache {
  readonly root: string;
  readonly repo: string;
  /** `<cacheDir>/models--owner--name` */
  readonly storage: string;

  constructor(cacheDir: string, repo: string) {
    this.root = cacheDir;
    this.repo = repo;
    this.storage = join(cacheDir, repoFolderName(repo));
  }

  blobPath(etag: string): string {
    if (etag.includes("/") || etag.includes("\\") || etag === "." || etag === "..") {
      throw new Error(`refusing an etag that is not a plain file name: ${JSON.stringify(etag)}`);
    }
    return join(this.storage, "blobs", etag);
  }

  incompletePath(etag: string): string {
    return `${this.blobPath(etag)}.incomplete`;
  }

  snapshotDir(commit: string): string {
    if (!COMMIT_HASH_RE.test(commit)) throw new Error(`not a commit hash: ${JSON.stringify(commit)}`);
    return join(this.storage, "snapshots", commit);
  }

  /** snapshots/<commit>/<path>, refusing paths that would leave the snapshot folder (as _get_pointer_path). */
  pointerPath(commit: string, path: string): string {
    const snapshot = this.snapshotDir(commit);
    const pointer = join(snapshot, ...path.split("/"));
    if (!resolve(pointer).startsWith(resolve(snapshot) + sep)) {
      throw new Error(`invalid file path ${JSON.stringify(path)}: it leaves the snapshot folder`);
    }
    return pointer;
  }

  refPath(revision: string): string {
    return join(this.storage, "refs", ...revision.split("/"));
  }

  noExistPath(commit: string, path: string): string {
    return join(this.storage, ".no_exist", commit, ...path.split("/"));
  }

  treeCachePath(commit: string): string {
    if (!COMMIT_HASH_RE.test(commit)) throw new Error(`not a commit hash: ${JSON.stringify(commit)}`);
    return join(this.storage, "trees", `${commit}.json`);
  }

  /** The commit a branch/tag pointed to when last resolved, or undefined. Commit hashes resolve to themselves. */
  async resolveRevision(revision: string): Promise<string | undefined> {
    if (COMMIT_HASH_RE.test(revision)) return revision;
    try {
      const text = (await readFile(this.refPath(revision), "utf8")).trim();
      return COMMIT_HASH_RE.test(text) ? text : undefined;
    } catch {
      return undefined;
    }
  }

  /** Write refs/<revision> (only when it changed, like _cache_commit_hash_for_specific_revision). */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const path = this.refPath(revision);
    try {
      if ((await readFile(path, "utf8")) === commit) return;
    } catch {
      // missing: write it
    }
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    await writeFile(tmp, commit);
    await rename(tmp, path);
  }

  /** True when snapshots/<commit>/<path> exists and its symlink resolves (a dangling link counts as absent). */
  async hasPointer(commit: string, path: string): Promise<boolean> {
    return exists(this.pointerPath(commit, path));
  }

  async hasBlob(etag: string): Promise<boolean> {
    return exists(this.blobPath(etag));
  }

  async hasSnapshot(commit: string): Promise<boolean> {
    try {
      return (await stat(this.snapshotDir(commit))).isDirectory();
    } catch {
      return false;
    }
  }

  /** Create snapshots/<commit>/<path> as a relative symlink to blobs/<etag>, replacing what was there. */
  async linkPointer(commit: string, path: string, etag: string): Promise<string> {
    const pointer = this.pointerPath(commit, path);
    const blob = this.blobPath(etag);
    await mkdir(dirname(pointer), { recursive: true });
    const target = relative(dirname(pointer), blob);
    try {
      await unlink(pointer);
    } catch {
      // nothing to replace
    }
    try {
      await symlink(target, pointer);
    } catch (error) {
      // Created concurrently by someone else: fine if it points at the same blob.
      if (!(isErrno(error, "EEXIST") && (await sameFile(pointer, blob)))) throw error;
    }
    return pointer;
  }

  /** Mark `path` as absent at `commit` (huggingface_hub's .no_exist cache). Best effort. */
  async markMissing(commit: string, path: string): Promise<void> {
    try {
      const marker = this.noExistPath(commit, path);
      await mkdir(dirname(marker), { recursive: true });
      await writeFile(marker, "");
    } catch {
      // only an optimisation
    }
  }

  /** Every file path (relative, `/`-separated) present in snapshots/<commit>, symlinks resolved. */
  async listSnapshotFiles(commit: string): Promise<string[]> {
    const root = this.snapshotDir(commit);
    const out: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const full = join(dir, entry.name);
        const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
        if (entry.isDirectory()) {
          await walk(full, rel);
        } else if (await exists(full)) {
          out.push(rel);
        }
      }
    };
    await walk(root, "");
    return out.sort();
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function lexists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    const [sa, sb] = await Promise.all([stat(a), stat(b)]);
    return sa.ino === sb.ino && sa.dev === sb.dev;
  } catch {
    return false;
  }
}

export function isErrno(error: unknown, ...codes: string[]): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    "code" in error &&
    typeof (error as { code: unknown }).code === "string" &&
    codes.includes((error as { code: string }).code)
  );
}
