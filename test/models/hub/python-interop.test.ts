// Cross-checks with the real Python huggingface_hub, when one is available: Python downloads from the fake
// Hub and rerankd reuses its cache (and the other way round), and both produce the same files.
// Runs only if `$RERANKD_TEST_PYTHON` (default python3) can import huggingface_hub; skipped otherwise.

import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, test } from "node:test";

import { snapshotDownload } from "../../../src/models/hub/index.js";
import { FakeHub } from "../../support/fake-hub.js";

const PYTHON = process.env.RERANKD_TEST_PYTHON ?? "python3";
const probe = spawnSync(PYTHON, ["-c", "import huggingface_hub; print(huggingface_hub.__version__)"], { encoding: "utf8" });
const pythonVersion = probe.status === 0 ? probe.stdout.trim() : undefined;
const run = promisify(execFile);

const REPO = "acme/interop";
const PATTERNS = ["config.json", "*.safetensors", "tokenizer.json"];
const FILES = [
  { path: "config.json", content: '{"hidden_size": 8}' },
  { path: "tokenizer.json", content: '{"model": {}}' },
  { path: "README.md", content: "# interop\n" },
  { path: "model.safetensors", content: randomBytes(1_200_000), lfs: true },
  { path: "sub/model.safetensors", content: randomBytes(10_000), lfs: true },
  { path: "pytorch_model.bin", content: randomBytes(5_000), lfs: true },
];

/** Files (f) and symlinks (l -> target) under the repo folder, relative, ignoring Python's .locks. */
async function layout(cacheDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(dir, e.name), r);
      else if (e.isSymbolicLink()) out.push(`l ${r} -> ${await readlink(join(dir, e.name))}`);
      else out.push(`f ${r}`);
    }
  };
  await walk(join(cacheDir, "models--acme--interop"), "");
  return out.sort();
}

describe(`interop with Python huggingface_hub ${pythonVersion ?? ""}`, { skip: pythonVersion === undefined ? `no huggingface_hub for ${PYTHON}` : false }, () => {
  let hub: FakeHub;
  let dirs: string[];
  const env = (cacheDir: string, extra: Record<string, string> = {}): Record<string, string> => ({
    HF_ENDPOINT: hub.endpoint,
    HF_HUB_CACHE: cacheDir,
    HF_HOME: join(cacheDir, "hf-home"),
    ...extra,
  });
  const python = async (code: string, cacheDir: string, extra: Record<string, string> = {}): Promise<string> => {
    const { PATH, HOME } = process.env;
    const { stdout } = await run(PYTHON, ["-c", code], {
      env: { PATH, HOME, HF_HUB_DISABLE_TELEMETRY: "1", HF_HUB_DISABLE_PROGRESS_BARS: "1", ...env(cacheDir, extra) },
    });
    return stdout.trim();
  };
  const pySnapshot = `import json; from huggingface_hub import snapshot_download; print(snapshot_download("${REPO}", allow_patterns=${JSON.stringify(PATTERNS)}))`;

  beforeEach(async () => {
    // The CDN must be on another host name: huggingface_hub 1.x follows a HEAD redirect to the same host name
    // whatever the port (rerankd compares name and port), and the CDN's answer has no X-Repo-Commit.
    hub = await FakeHub.start({ repos: [{ id: REPO, files: FILES }], cdnOnOtherHost: true });
    dirs = [await mkdtemp(join(tmpdir(), "rerankd-py-")), await mkdtemp(join(tmpdir(), "rerankd-ts-"))];
  });
  afterEach(async () => {
    await hub.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test("both write the same blobs, symlinks, refs (and tree listing)", async () => {
    const [py, ts] = dirs;
    const pyPath = await python(pySnapshot, py);
    const r = await snapshotDownload(REPO, { env: env(ts), allowPatterns: PATTERNS });
    assert.equal(pyPath, join(py, "models--acme--interop", "snapshots", hub.commitOf(REPO)));
    assert.equal(r.path, join(ts, "models--acme--interop", "snapshots", hub.commitOf(REPO)));
    const pyLayout = await layout(py);
    const tsLayout = await layout(ts);
    // Older huggingface_hub versions write no tree listing: compare with it only when present.
    const pyHasTrees = pyLayout.some((l) => l.startsWith("f trees/"));
    assert.deepEqual(pyHasTrees ? tsLayout : tsLayout.filter((l) => !l.startsWith("f trees/")), pyLayout);
  });

  test("rerankd reuses what Python downloaded: no file request, offline works", async () => {
    const [py] = dirs;
    await python(pySnapshot, py);
    hub.clearRequests();
    const online = await snapshotDownload(REPO, { env: env(py), allowPatterns: PATTERNS });
    assert.deepEqual(online.downloaded, []);
    assert.deepEqual(hub.fileRequests(), []);
    const offline = await snapshotDownload(REPO, { env: env(py, { HF_HUB_OFFLINE: "1" }), allowPatterns: PATTERNS });
    assert.equal(offline.path, online.path);
    assert.deepEqual(offline.files, ["config.json", "model.safetensors", "sub/model.safetensors", "tokenizer.json"]);
  });

  test("Python reuses what rerankd downloaded, offline, and its cache scan finds nothing wrong", async () => {
    const [, ts] = dirs;
    const r = await snapshotDownload(REPO, { env: env(ts), allowPatterns: PATTERNS });
    hub.clearRequests();
    const out = await python(
      [
        "import json",
        "from huggingface_hub import snapshot_download, try_to_load_from_cache, scan_cache_dir",
        `p = snapshot_download("${REPO}", allow_patterns=${JSON.stringify(PATTERNS)})`,
        `f = try_to_load_from_cache("${REPO}", "sub/model.safetensors")`,
        "info = scan_cache_dir()",
        "revs = [sorted(rev.refs) for repo in info.repos for rev in repo.revisions]",
        "print(json.dumps({'path': p, 'file': f, 'warnings': [str(w) for w in info.warnings], 'refs': revs}))",
      ].join("\n"),
      ts,
      { HF_HUB_OFFLINE: "1" },
    );
    const result = JSON.parse(out) as { path: string; file: string; warnings: string[]; refs: string[][] };
    assert.equal(result.path, r.path);
    assert.equal(result.file, join(r.path, "sub", "model.safetensors"));
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(result.refs, [["main"]]);
    assert.deepEqual(hub.requests, []);
  });
});
