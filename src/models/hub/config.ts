// Hub settings from the environment, resolved the way Python's huggingface_hub (constants.py, get_token)
// resolves them, so both tools share one cache and one login:
//   cache   HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub > ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub
//   endpoint HF_ENDPOINT (trailing '/' stripped), default https://huggingface.co
//   offline  HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE in {1, ON, YES, TRUE} (any case)
//   token    HF_TOKEN > HUGGING_FACE_HUB_TOKEN > the file HF_TOKEN_PATH (default $HF_HOME/token)
// Functions take the environment as an argument so tests never touch process.env.

import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const DEFAULT_ENDPOINT = "https://huggingface.co";
const TRUE_VALUES = new Set(["1", "ON", "YES", "TRUE"]);

export type HubEnv = Readonly<Record<string, string | undefined>>;

export interface HubConfig {
  /** Base URL of the Hub, without trailing slash. */
  endpoint: string;
  /** Access token sent as `Authorization: Bearer`, if any. */
  token: string | undefined;
  /** No network at all: everything must come from the cache. */
  offline: boolean;
  /** Root of the huggingface_hub cache (the folder holding `models--owner--name`). */
  cacheDir: string;
  /** Timeout for metadata requests (HEAD / API), ms. HF_HUB_ETAG_TIMEOUT (s), default 10 s. */
  metadataTimeoutMs: number;
  /** Longest wait for the next bytes of a download, ms. HF_HUB_DOWNLOAD_TIMEOUT (s), default 10 s. */
  downloadIdleTimeoutMs: number;
  userAgent: string;
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && TRUE_VALUES.has(value.trim().toUpperCase());
}

function expandHome(path: string, env: HubEnv): string {
  const home = env.HOME && env.HOME !== "" ? env.HOME : homedir();
  if (path === "~") return home;
  if (path.startsWith("~/")) return join(home, path.slice(2));
  return path;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== "" ? value : undefined;
}

function seconds(value: string | undefined, fallbackSeconds: number): number {
  const n = value === undefined ? NaN : Number(value);
  return (Number.isFinite(n) && n > 0 ? n : fallbackSeconds) * 1000;
}

export function hfHome(env: HubEnv): string {
  const explicit = nonEmpty(env.HF_HOME);
  if (explicit) return expandHome(explicit, env);
  const xdg = nonEmpty(env.XDG_CACHE_HOME);
  return join(xdg ? expandHome(xdg, env) : join(expandHome("~", env), ".cache"), "huggingface");
}

export function resolveCacheDir(env: HubEnv): string {
  const explicit = nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE);
  return explicit ? expandHome(explicit, env) : join(hfHome(env), "hub");
}

export function isOffline(env: HubEnv): boolean {
  return isTrue(env.HF_HUB_OFFLINE) || isTrue(env.TRANSFORMERS_OFFLINE);
}

/** HF_TOKEN, then the legacy HUGGING_FACE_HUB_TOKEN, then the token file written by `huggingface-cli login`. */
export function resolveToken(env: HubEnv): string | undefined {
  const fromEnv = nonEmpty(env.HF_TOKEN) ?? nonEmpty(env.HUGGING_FACE_HUB_TOKEN);
  if (fromEnv) return fromEnv.trim();
  const tokenPath = nonEmpty(env.HF_TOKEN_PATH) ? expandHome(env.HF_TOKEN_PATH as string, env) : join(hfHome(env), "token");
  try {
    const token = readFileSync(tokenPath, "utf8").trim();
    return token === "" ? undefined : token;
  } catch {
    return undefined;
  }
}

/** Resolve the Hub settings from `env` (default: process.env); `overrides` win over the environment. */
export function resolveHubConfig(env: HubEnv = process.env, overrides: Partial<HubConfig> = {}): HubConfig {
  const endpoint = (nonEmpty(env.HF_ENDPOINT) ?? DEFAULT_ENDPOINT).trim().replace(/\/+$/, "");
  return {
    endpoint,
    token: "token" in overrides ? overrides.token : resolveToken(env),
    offline: isOffline(env),
    cacheDir: resolveCacheDir(env),
    metadataTimeoutMs: seconds(env.HF_HUB_ETAG_TIMEOUT, 10),
    downloadIdleTimeoutMs: seconds(env.HF_HUB_DOWNLOAD_TIMEOUT, 10),
    userAgent: `rerankd/0.1.0; node/${process.versions.node}`,
    ...overrides,
    ...(overrides.endpoint !== undefined ? { endpoint: overrides.endpoint.replace(/\/+$/, "") } : {}),
  };
}
