/**
 * Where converted GGUF files live, so a later start reuses them:
 *
 *   <cacheRoot>/rerankd/gguf/<owner>--<name>/<revision>-<outtype>-c<CONVERTER_VERSION>.gguf
 *
 * `revision` is the Hub commit of the checkpoint when known (a huggingface_hub
 * snapshot folder is named by it), else a content hash of the checkpoint's
 * files. CONVERTER_VERSION changes whenever the converter's output for the
 * same input changes, so stale conversions are never reused.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, join, resolve, sep } from "node:path";
import { readGgufHeader } from "../gguf/reader.js";
import { convertCheckpoint } from "./convert.js";
import { ConvertError } from "./errors.js";
import { OUT_TYPES, type ConvertProgress, type OutType } from "./types.js";

/** Bump when the converter's output for the same checkpoint changes. */
export const CONVERTER_VERSION = 1;

/** `$XDG_CACHE_HOME` or `~/.cache`. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return xdg && xdg.length > 0 ? xdg : join(homedir(), ".cache");
}

/** "BAAI/bge-reranker-v2-gemma" → "BAAI--bge-reranker-v2-gemma" (one safe path segment). */
export function repoDirName(repoId: string): string {
  const cleaned = repoId
    .split("/")
    .map((p) => p.replace(/[^A-Za-z0-9._-]/g, "_"))
    .filter((p) => p.length > 0 && p !== "." && p !== "..")
    .join("--");
  if (!cleaned) throw new ConvertError(`cannot derive a cache folder name from repo id ${JSON.stringify(repoId)}`);
  return cleaned;
}

function safeRevision(revision: string): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(revision) || revision === "." || revision === "..") {
    throw new ConvertError(`revision ${JSON.stringify(revision)} is not usable in a file name`);
  }
  return revision;
}

export interface ConvertedPathOptions {
  repoId: string;
  revision: string;
  outtype: OutType;
  cacheRoot?: string;
}

export function convertedGgufPath(o: ConvertedPathOptions): string {
  if (!OUT_TYPES.includes(o.outtype)) throw new ConvertError(`unsupported outtype ${JSON.stringify(o.outtype)}`);
  return join(o.cacheRoot ?? defaultCacheRoot(), "rerankd", "gguf", repoDirName(o.repoId), `${safeRevision(o.revision)}-${o.outtype}-c${CONVERTER_VERSION}.gguf`);
}

const HUB_SNAPSHOT = /(?:^|[\\/])models--([^\\/]+)--([^\\/]+)[\\/]snapshots[\\/]([0-9a-f]{40})[\\/]?$/;

/** Repo id and commit of a huggingface_hub snapshot folder (`.../models--owner--name/snapshots/<commit>`), if `dir` is one. */
export function hubSnapshotOf(dir: string): { repoId: string; revision: string } | undefined {
  const m = HUB_SNAPSHOT.exec(resolve(dir));
  return m ? { repoId: `${m[1]}/${m[2]}`, revision: m[3] } : undefined;
}

/** Files whose content determines the conversion. */
function isRelevant(name: string): boolean {
  return (
    name.endsWith(".safetensors") ||
    ["config.json", "tokenizer.model", "sentencepiece.bpe.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "model.safetensors.index.json"].includes(name)
  );
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * A content hash of the checkpoint folder ("sha256-<16 hex>"). Files that are
 * symlinks into a huggingface_hub blob store are identified by their blob
 * name (already a content hash) instead of being read again.
 */
export async function checkpointContentHash(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter(isRelevant).sort();
  } catch (err) {
    throw new ConvertError(`cannot read checkpoint directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  const outer = createHash("sha256");
  for (const name of names) {
    const path = join(dir, name);
    const real = await realpath(path);
    const blob = basename(real);
    const isHubBlob = real.includes(`${sep}blobs${sep}`) && /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(blob);
    const size = (await stat(real)).size;
    const digest = isHubBlob ? blob : await sha256File(real);
    outer.update(`${name}\0${size}\0${digest}\n`);
  }
  return `sha256-${outer.digest("hex").slice(0, 16)}`;
}

/** The revision used in cache keys: explicit, else the hub snapshot commit, else a content hash. */
export async function checkpointRevision(dir: string, explicit?: string): Promise<string> {
  if (explicit) return safeRevision(explicit);
  return hubSnapshotOf(dir)?.revision ?? checkpointContentHash(dir);
}

/** Whether `path` is a complete GGUF file (header readable and every tensor's bytes present). */
async function isCompleteGguf(path: string): Promise<boolean> {
  try {
    const [header, st] = await Promise.all([readGgufHeader(path), stat(path)]);
    if (header.metadata["general.architecture"] === undefined) return false;
    return header.tensors.every((t) => t.byteSize !== undefined && t.fileOffset + t.byteSize <= st.size);
  } catch {
    return false;
  }
}

export interface EnsureConvertedOptions {
  /** Hugging Face checkpoint folder. */
  dir: string;
  outtype: OutType;
  /** Names the cache folder; default: from a hub snapshot path, else the folder name. */
  repoId?: string;
  /** Source revision; default: hub snapshot commit, else a content hash. */
  revision?: string;
  cacheRoot?: string;
  onProgress?: (progress: ConvertProgress) => void;
}

export interface EnsureConvertedResult {
  path: string;
  revision: string;
  /** True when an earlier conversion was reused. */
  reused: boolean;
}

/** Returns the cached conversion of `dir`, converting it first if needed. */
export async function ensureConvertedGguf(o: EnsureConvertedOptions): Promise<EnsureConvertedResult> {
  const snapshot = hubSnapshotOf(o.dir);
  const repoId = o.repoId ?? snapshot?.repoId ?? basename(resolve(o.dir));
  const revision = await checkpointRevision(o.dir, o.revision);
  const path = convertedGgufPath({ repoId, revision, outtype: o.outtype, cacheRoot: o.cacheRoot });
  if (await isCompleteGguf(path)) return { path, revision, reused: true };
  await convertCheckpoint({ dir: o.dir, out: path, outtype: o.outtype, onProgress: o.onProgress, name: repoId });
  return { path, revision, reused: false };
}
