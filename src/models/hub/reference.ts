// Model references as accepted on the command line, like `vllm serve` takes them:
//   owner/name[@revision]                     a Hub model repository (revision: branch, tag or commit)
//   hf:owner/name/path/to/file.gguf[@revision] one file of a Hub repository
//   hf:owner/name[@revision]                  same as the first form
// Repo ids follow huggingface_hub's `validate_repo_id` rules (letters, digits, `-`, `_`, `.`; no `--` or
// `..`; no leading/trailing `-` or `.`; at most 96 characters), here always with an owner.

import { HubReferenceError } from "./errors.js";

export const DEFAULT_REVISION = "main";

/** A full 40-hex git commit id, as huggingface_hub's REGEX_COMMIT_HASH. */
export const COMMIT_HASH_RE = /^[0-9a-f]{40}$/;

export interface RepoReference {
  kind: "repo";
  /** `owner/name` */
  repo: string;
  revision: string;
  /** Whether the revision was written in the reference (false: the default `main`). */
  explicitRevision: boolean;
}

export interface FileReference {
  kind: "file";
  repo: string;
  /** Path of the file inside the repository, `/`-separated. */
  path: string;
  revision: string;
  explicitRevision: boolean;
}

export type ModelReference = RepoReference | FileReference;

const REPO_PART_RE = /^[A-Za-z0-9_.-]+$/;

function hasControlChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
const MAX_REPO_ID_LENGTH = 96;

export function isCommitHash(revision: string): boolean {
  return COMMIT_HASH_RE.test(revision);
}

/** Throws HubReferenceError (with `input` as the reported reference) unless `repo` is a valid `owner/name`. */
export function validateRepoId(repo: string, input: string = repo): void {
  const parts = repo.split("/");
  if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
    throw new HubReferenceError(input, `a Hub repository is written owner/name (got ${JSON.stringify(repo)})`);
  }
  if (repo.length > MAX_REPO_ID_LENGTH) {
    throw new HubReferenceError(input, `repository id is longer than ${MAX_REPO_ID_LENGTH} characters`);
  }
  for (const part of parts) {
    if (!REPO_PART_RE.test(part)) {
      throw new HubReferenceError(
        input,
        `${JSON.stringify(part)} may only contain letters, digits, '-', '_' and '.'`,
      );
    }
    if (/^[-.]|[-.]$/.test(part)) {
      throw new HubReferenceError(input, `${JSON.stringify(part)} cannot start or end with '-' or '.'`);
    }
  }
  if (repo.includes("--") || repo.includes("..")) {
    throw new HubReferenceError(input, "repository id cannot contain '--' or '..'");
  }
}

/** Throws HubReferenceError unless `revision` is a safe branch/tag/commit name (it becomes a path under refs/). */
export function validateRevision(revision: string, input: string = revision): void {
  if (revision === "") throw new HubReferenceError(input, "the revision after '@' is empty");
  if (/[\s\\~^:?*[\]@]/.test(revision) || hasControlChar(revision)) {
    throw new HubReferenceError(input, `revision ${JSON.stringify(revision)} contains a character git does not allow`);
  }
  const segments = revision.split("/");
  if (segments.some((s) => s === "" || s === "." || s === ".." || s.startsWith(".") || s.endsWith(".lock"))) {
    throw new HubReferenceError(input, `revision ${JSON.stringify(revision)} is not a valid git ref name`);
  }
}

/** Throws HubReferenceError unless `path` is a relative `/`-separated path that stays inside the repository. */
export function validateRepoFilePath(path: string, input: string = path): void {
  if (path === "") throw new HubReferenceError(input, "the file path is empty");
  if (path.startsWith("/")) throw new HubReferenceError(input, "the file path must be relative to the repository");
  if (path.includes("\\") || hasControlChar(path)) {
    throw new HubReferenceError(input, "the file path contains a backslash or a control character");
  }
  const segments = path.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new HubReferenceError(input, `file path ${JSON.stringify(path)} has an empty, '.' or '..' segment`);
  }
}

function splitRevision(body: string, input: string, useLast: boolean): { main: string; revision?: string } {
  const at = useLast ? body.lastIndexOf("@") : body.indexOf("@");
  if (at < 0) return { main: body };
  const revision = body.slice(at + 1);
  validateRevision(revision, input);
  return { main: body.slice(0, at), revision };
}

/**
 * Parse a model reference (see the module comment for the accepted forms).
 * Throws HubReferenceError with a message that says what is wrong.
 */
export function parseModelReference(input: string): ModelReference {
  const text = input.trim();
  if (text === "") throw new HubReferenceError(input, "the reference is empty");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new HubReferenceError(input, "URLs are not accepted; write owner/name[@revision] or hf:owner/name/file[@revision]");
  }

  if (text.startsWith("hf:")) {
    const body = text.slice(3);
    // The file path may itself contain '@' only if a revision follows; the last '@' separates the revision.
    const { main, revision } = splitRevision(body, input, true);
    const parts = main.split("/");
    if (parts.length < 2) {
      throw new HubReferenceError(input, "expected hf:owner/name/path/to/file[@revision]");
    }
    const repo = `${parts[0]}/${parts[1]}`;
    validateRepoId(repo, input);
    const common = { repo, revision: revision ?? DEFAULT_REVISION, explicitRevision: revision !== undefined };
    if (parts.length === 2) return { kind: "repo", ...common };
    const path = parts.slice(2).join("/");
    validateRepoFilePath(path, input);
    return { kind: "file", path, ...common };
  }

  if (text.startsWith(".") || text.startsWith("/") || text.startsWith("~")) {
    throw new HubReferenceError(input, "this looks like a local path, not a Hub reference (owner/name[@revision])");
  }
  const { main, revision } = splitRevision(text, input, false);
  if (main.split("/").length > 2) {
    throw new HubReferenceError(
      input,
      "a Hub repository is written owner/name; to name one file of it write hf:owner/name/path/to/file",
    );
  }
  validateRepoId(main, input);
  return { kind: "repo", repo: main, revision: revision ?? DEFAULT_REVISION, explicitRevision: revision !== undefined };
}

/** Inverse of parseModelReference (the revision is written only when it was explicit or is not `main`). */
export function formatModelReference(ref: ModelReference): string {
  const rev = ref.explicitRevision || ref.revision !== DEFAULT_REVISION ? `@${ref.revision}` : "";
  return ref.kind === "repo" ? `${ref.repo}${rev}` : `hf:${ref.repo}/${ref.path}${rev}`;
}
