// End-to-end tests of the Hub client against test/support/fake-hub.ts: cache layout identical to Python
// huggingface_hub's, reuse, resume, integrity checks, errors, offline mode and redirects.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";

import {
  DEFAULT_CHECKPOINT_PATTERNS,
  fetchModel,
  hubDownload,
  HubAuthError,
  HubDiskFullError,
  HubError,
  HubIntegrityError,
  HubNetworkError,
  HubNotFoundError,
  HubOfflineError,
  type ProgressReporter,
  snapshotDownload,
} from "../../../src/models/hub/index.js";
import { FakeHub, gitBlobSha1, sha256Hex } from "../../support/fake-hub.js";

const REPO = "acme/tiny-reranker";
const config = Buffer.from(JSON.stringify({ architectures: ["Gemma2ForCausalLM"], hidden_size: 8 }));
const tokenizer = Buffer.from(JSON.stringify({ model: { vocab: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`t${i}`, i])) } }));
const weights = randomBytes(3 * 1024 * 1024 + 123); // > the 1 MiB write buffer
const dense = randomBytes(40_000);
const pickle = randomBytes(5_000);

const FILES = [
  { path: "config.json", content: config },
  { path: "tokenizer.json", content: tokenizer },
  { path: "README.md", content: "# tiny\n" },
  { path: "special_tokens_map.json", content: "" }, // empty: no GET needed, like huggingface_hub
  { path: "model.safetensors", content: weights, lfs: true },
  { path: "2_Dense/model.safetensors", content: dense, lfs: true },
  { path: "pytorch_model.bin", content: pickle, lfs: true },
  { path: "onnx/model.onnx", content: randomBytes(1000), lfs: true },
];

const WANTED = ["2_Dense/model.safetensors", "config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json"];

interface Env {
  hub: FakeHub;
  cacheDir: string;
  env: Record<string, string>;
}

interface EnvOptions {
  cdnOnOtherHost?: boolean;
  access?: "public" | "private" | "gated";
  token?: string;
  renamed?: Record<string, string>;
}

async function makeEnv(options: EnvOptions = {}): Promise<Env> {
  const hub = await FakeHub.start({
    repos: [{ id: REPO, files: FILES, access: options.access ?? "public" }],
    token: "hf_secret_test_token_123",
    cdnOnOtherHost: options.cdnOnOtherHost,
    renamed: options.renamed,
  });
  const cacheDir = await mkdtemp(join(tmpdir(), "rerankd-hub-"));
  const env: Record<string, string> = {
    HF_ENDPOINT: hub.endpoint,
    HF_HUB_CACHE: cacheDir,
    HF_HOME: join(cacheDir, "hf-home"), // no token file there
  };
  if (options.token !== undefined) env.HF_TOKEN = options.token;
  return { hub, cacheDir, env };
}

async function disposeEnv(t: Env): Promise<void> {
  await t.hub.close();
  await rm(t.cacheDir, { recursive: true, force: true });
}

const fast = { retryDelayMs: 5 };

function storage(cacheDir: string): string {
  return join(cacheDir, "models--acme--tiny-reranker");
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

async function rejectsWith<T extends HubError>(promise: Promise<unknown>, cls: new (...args: never[]) => T): Promise<T> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof cls, `expected ${cls.name}, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${cls.name}, but it resolved`);
}

describe("snapshotDownload against a fake Hub", () => {
  let t: Env;
  beforeEach(async () => {
    t = await makeEnv();
  });
  afterEach(() => disposeEnv(t));

  test("a fresh download produces huggingface_hub's exact cache layout", async () => {
    const commit = t.hub.commitOf(REPO);
    const result = await snapshotDownload(REPO, { env: t.env, allowPatterns: DEFAULT_CHECKPOINT_PATTERNS });
    const root = storage(t.cacheDir);

    assert.equal(result.commit, commit);
    assert.equal(result.path, join(root, "snapshots", commit));
    assert.deepEqual(result.files, WANTED);
    assert.deepEqual(result.downloaded, WANTED);
    assert.equal(result.source, "network");

    assert.ok(existsSync(join(t.cacheDir, "CACHEDIR.TAG")), "cache-directory tag at the root");
    // refs/main holds the bare commit hash (no newline), like Path.write_text(commit_hash).
    assert.equal(await readFile(join(root, "refs", "main"), "utf8"), commit);

    // blobs are named by the etag: git blob sha1 for regular files, sha256 for LFS files; nothing partial left.
    const empty = gitBlobSha1(Buffer.alloc(0)); // e69de29bb2d1d6434b8b29ae775ad8c2e48c5391
    const expectedBlobs = [gitBlobSha1(config), gitBlobSha1(tokenizer), sha256Hex(weights), sha256Hex(dense), empty].sort();
    assert.deepEqual(await listFiles(join(root, "blobs")), expectedBlobs);

    // snapshots/<commit>/<path> are relative symlinks into blobs/.
    assert.deepEqual(await listFiles(result.path), WANTED);
    const links: Record<string, string> = {
      "config.json": `../../blobs/${gitBlobSha1(config)}`,
      "tokenizer.json": `../../blobs/${gitBlobSha1(tokenizer)}`,
      "model.safetensors": `../../blobs/${sha256Hex(weights)}`,
      "2_Dense/model.safetensors": `../../../blobs/${sha256Hex(dense)}`,
      "special_tokens_map.json": `../../blobs/${empty}`,
    };
    for (const [file, target] of Object.entries(links)) {
      const p = join(result.path, file);
      assert.ok((await lstat(p)).isSymbolicLink(), `${file} is a symlink`);
      assert.equal(await readlink(p), target);
    }
    assert.deepEqual(await readFile(join(result.path, "model.safetensors")), weights);
    assert.deepEqual(await readFile(join(result.path, "config.json")), config);

    // Excluded files were never even asked for.
    assert.ok(!t.hub.requests.some((r) => /\.(bin|onnx|md)$/.test(r.path)), "no request for excluded files");
    assert.ok(!existsSync(join(result.path, "pytorch_model.bin")));
    assert.equal((await readFile(join(result.path, "special_tokens_map.json"))).length, 0);
    assert.ok(!t.hub.requests.some((r) => r.method === "GET" && r.path.endsWith("special_tokens_map.json")));
    // The LFS content went through the 302 to the CDN.
    assert.equal(t.hub.requests.filter((r) => r.kind === "cdn").length, 2);
  });

  test("a second call makes no file request, and a commit-hash revision makes no request at all", async () => {
    await snapshotDownload(REPO, { env: t.env });
    t.hub.clearRequests();

    const again = await snapshotDownload(REPO, { env: t.env });
    assert.deepEqual(t.hub.fileRequests(), []);
    assert.deepEqual(t.hub.requests.map((r) => r.kind), ["api"]);
    assert.deepEqual(again.downloaded, []);
    assert.deepEqual(again.files, WANTED);

    t.hub.clearRequests();
    const pinned = await snapshotDownload(REPO, { env: t.env, revision: t.hub.commitOf(REPO) });
    assert.deepEqual(t.hub.requests, []);
    assert.equal(pinned.source, "cache");
    assert.deepEqual(pinned.files, WANTED);
    assert.equal(pinned.path, again.path);
  });

  test("the commit's file list is kept in huggingface_hub's tree cache, trees/<commit>.json", async () => {
    const commit = t.hub.commitOf(REPO);
    await snapshotDownload(REPO, { env: t.env });
    const tree = JSON.parse(await readFile(join(storage(t.cacheDir), "trees", `${commit}.json`), "utf8"));
    assert.equal(tree.format_version, 1);
    assert.deepEqual(Object.keys(tree.files), FILES.map((f) => f.path).sort());
    assert.deepEqual(tree.files["config.json"], { size: config.length, blob_id: gitBlobSha1(config) });
    const lfs = t.hub.file(REPO, "model.safetensors");
    assert.deepEqual(tree.files["model.safetensors"], {
      size: weights.length,
      blob_id: lfs.gitSha1,
      lfs_sha256: sha256Hex(weights),
      lfs_size: weights.length,
    });
  });

  test("a commit-hash revision with a cached tree listing asks only for the files it lacks", async () => {
    const commit = t.hub.commitOf(REPO);
    await snapshotDownload(REPO, { env: t.env, allowPatterns: ["config.json"] });
    t.hub.clearRequests();
    const r = await snapshotDownload(REPO, { env: t.env, revision: commit, allowPatterns: ["config.json", "tokenizer.json"] });
    assert.deepEqual(r.downloaded, ["tokenizer.json"]);
    assert.deepEqual(t.hub.requests.map((x) => `${x.method} ${x.path}`), [
      `HEAD /${REPO}/resolve/${commit}/tokenizer.json`,
      `GET /${REPO}/resolve/${commit}/tokenizer.json`,
    ]);
  });

  test("a cache without a tree listing (older huggingface_hub) is reused with one API request and no file request", async () => {
    await snapshotDownload(REPO, { env: t.env });
    await rm(join(storage(t.cacheDir), "trees"), { recursive: true });
    t.hub.clearRequests();
    const r = await snapshotDownload(REPO, { env: t.env, revision: t.hub.commitOf(REPO) });
    assert.deepEqual(t.hub.requests.map((x) => x.kind), ["api"]);
    assert.deepEqual(r.downloaded, []);
    assert.ok(existsSync(join(storage(t.cacheDir), "trees", `${t.hub.commitOf(REPO)}.json`)));
  });

  test("without X-Linked-Size the size comes from the file list (snapshot) or the GET answer (one file)", async () => {
    t.hub.omitLinkedSize = true;
    const r = await snapshotDownload(REPO, { env: t.env });
    assert.deepEqual(await readFile(join(r.path, "model.safetensors")), weights);
    const one = await hubDownload(REPO, "pytorch_model.bin", { env: t.env });
    assert.deepEqual(await readFile(one.path), pickle);
  });

  test("a blob already present (other revision or tool) is linked, not downloaded again", async () => {
    const commit = t.hub.commitOf(REPO);
    await snapshotDownload(REPO, { env: t.env });
    await rm(join(storage(t.cacheDir), "snapshots", commit), { recursive: true });
    t.hub.clearRequests();
    const r = await snapshotDownload(REPO, { env: t.env });
    assert.deepEqual(r.downloaded, []);
    assert.deepEqual(await listFiles(r.path), WANTED);
    assert.equal(t.hub.requests.filter((x) => x.kind === "cdn" || x.method === "GET" && x.kind === "resolve").length, 0);
  });

  test("a connection cut mid-file is resumed in-process with a Range request", async () => {
    const cut = 1_000_000;
    t.hub.cutOnce.set("model.safetensors", cut);
    const result = await snapshotDownload(REPO, { env: t.env, ...fast });
    const cdn = t.hub.requests.filter((r) => r.kind === "cdn" && r.path.endsWith(sha256Hex(weights)));
    assert.equal(cdn.length, 2);
    assert.equal(cdn[0].range, undefined);
    assert.equal(cdn[1].range, `bytes=${cut}-`);
    assert.equal(cdn[1].status, 206);
    assert.deepEqual(await readFile(join(result.path, "model.safetensors")), weights);
    assert.ok(!(await listFiles(join(storage(t.cacheDir), "blobs"))).some((f) => f.endsWith(".incomplete")));
  });

  test("a stalled transfer is abandoned after HF_HUB_DOWNLOAD_TIMEOUT and resumed", async () => {
    t.hub.stallOnce.set("model.safetensors", 200_000);
    const started = Date.now();
    const result = await snapshotDownload(REPO, { env: { ...t.env, HF_HUB_DOWNLOAD_TIMEOUT: "0.3" }, ...fast });
    assert.ok(Date.now() - started < 5000);
    const cdn = t.hub.requests.filter((r) => r.kind === "cdn" && r.path.endsWith(sha256Hex(weights)));
    assert.deepEqual(cdn.map((r) => r.range), [undefined, "bytes=200000-"]);
    assert.deepEqual(await readFile(join(result.path, "model.safetensors")), weights);
  });

  test("a revision like refs/pr/1 is stored as nested refs/refs/pr/1, like huggingface_hub", async () => {
    const prCommit = t.hub.commitOf(REPO); // the fake's PR ref points at the same commit
    t.hub.addRepo({ id: "acme/pr-repo", files: [{ path: "config.json", content: config }], commit: prCommit, refs: { "refs/pr/1": prCommit } });
    const r = await snapshotDownload("acme/pr-repo", { env: t.env, revision: "refs/pr/1" });
    const root = join(t.cacheDir, "models--acme--pr-repo");
    assert.equal(await readFile(join(root, "refs", "refs", "pr", "1"), "utf8"), prCommit);
    assert.ok(!existsSync(join(root, "refs", "main")));
    assert.deepEqual(r.files, ["config.json"]);
    const api = t.hub.requests.find((x) => x.kind === "api");
    // The revision is one URL segment (Python: quote(revision, safe="")); files are then fetched at the commit.
    assert.equal(api?.rawUrl, "/api/models/acme/pr-repo/revision/refs%2Fpr%2F1?blobs=true");
    assert.ok(t.hub.fileRequests().every((x) => x.kind !== "resolve" || x.path.includes(`/resolve/${prCommit}/`)));
  });

  test("the caller's AbortSignal stops a download at once and keeps the partial file", async () => {
    t.hub.stallOnce.set("model.safetensors", 300_000);
    const controller = new AbortController();
    // Abort once the stalled file has its first bytes on disk (the idle timeout is far away: 10 s).
    const progress: ProgressReporter = {
      begin: () => undefined,
      update: (file, done) => {
        if (file === "model.safetensors" && done >= 300_000) setTimeout(() => controller.abort(new Error("stop asked")), 50);
      },
      warn: () => undefined,
      end: () => undefined,
    };
    const started = Date.now();
    await assert.rejects(snapshotDownload(REPO, { env: t.env, signal: controller.signal, progress }), /stop asked/);
    assert.ok(Date.now() - started < 8000, "did not wait for the idle timeout");
    const incomplete = join(storage(t.cacheDir), "blobs", `${sha256Hex(weights)}.incomplete`);
    assert.equal((await readFile(incomplete)).length, 300_000);
  });

  test("an interrupted download leaves blobs/<etag>.incomplete, which the next call resumes", async () => {
    const cut = 1_500_000;
    t.hub.cutOnce.set("model.safetensors", cut);
    const err = await rejectsWith(snapshotDownload(REPO, { env: t.env, maxRetries: 0, maxConcurrency: 1 }), HubNetworkError);
    assert.match(err.message, /model\.safetensors/);
    const incomplete = join(storage(t.cacheDir), "blobs", `${sha256Hex(weights)}.incomplete`);
    assert.equal((await readFile(incomplete)).length, cut);

    t.hub.clearRequests();
    const result = await snapshotDownload(REPO, { env: t.env });
    const get = t.hub.requests.find((r) => r.kind === "cdn" && r.method === "GET");
    assert.equal(get?.range, `bytes=${cut}-`);
    assert.deepEqual(await readFile(join(result.path, "model.safetensors")), weights);
    assert.ok(!existsSync(incomplete));
  });

  test("a server that ignores Range (200) makes the download restart from zero", async () => {
    t.hub.cutOnce.set("model.safetensors", 700_000);
    await rejectsWith(snapshotDownload(REPO, { env: t.env, maxRetries: 0, maxConcurrency: 1 }), HubNetworkError);
    t.hub.ignoreRange = true;
    t.hub.clearRequests();
    const result = await snapshotDownload(REPO, { env: t.env });
    const get = t.hub.requests.find((r) => r.kind === "cdn" && r.method === "GET");
    assert.equal(get?.range, "bytes=700000-");
    assert.equal(get?.status, 200);
    assert.deepEqual(await readFile(join(result.path, "model.safetensors")), weights);
  });

  test("the sha256 covers the resumed prefix: a damaged partial file is detected and removed", async () => {
    const blobs = join(storage(t.cacheDir), "blobs");
    await mkdir(blobs, { recursive: true });
    const damaged = Buffer.from(weights.subarray(0, 500_000));
    damaged[1234] ^= 0x01;
    const incomplete = join(blobs, `${sha256Hex(weights)}.incomplete`);
    await writeFile(incomplete, damaged);

    const err = await rejectsWith(snapshotDownload(REPO, { env: t.env }), HubIntegrityError);
    assert.equal(err.check, "sha256");
    assert.match(err.message, /model\.safetensors/);
    assert.ok(!existsSync(incomplete));
    assert.ok(!existsSync(join(blobs, sha256Hex(weights))));
    // The range request was made: the prefix was reused, not re-downloaded.
    assert.equal(t.hub.requests.find((r) => r.kind === "cdn" && r.path.endsWith(sha256Hex(weights)))?.range, "bytes=500000-");
  });

  test("corrupted content fails the checksum, names the file and leaves no blob", async () => {
    t.hub.corrupt.add("model.safetensors");
    const err = await rejectsWith(snapshotDownload(REPO, { env: t.env, maxConcurrency: 1 }), HubIntegrityError);
    assert.equal(err.check, "sha256");
    assert.equal(err.file, "model.safetensors");
    assert.match(err.message, /Checksum mismatch for "model\.safetensors"/);
    const blobs = await listFiles(join(storage(t.cacheDir), "blobs"));
    assert.ok(!blobs.some((f) => f.startsWith(sha256Hex(weights))), `no blob or partial left: ${blobs.join(", ")}`);
    assert.ok(!existsSync(join(storage(t.cacheDir), "snapshots", t.hub.commitOf(REPO), "model.safetensors")));

    // Once the Hub serves the right bytes, the same call succeeds.
    t.hub.corrupt.clear();
    const ok = await snapshotDownload(REPO, { env: t.env });
    assert.deepEqual(await readFile(join(ok.path, "model.safetensors")), weights);
  });

  test("404: unknown repository, unknown revision, and no matching file are told apart", async () => {
    const repoErr = await rejectsWith(snapshotDownload("acme/does-not-exist", { env: t.env }), HubNotFoundError);
    assert.equal(repoErr.what, "repo");
    assert.match(repoErr.message, /Repository acme\/does-not-exist not found/);

    const revErr = await rejectsWith(snapshotDownload(REPO, { env: t.env, revision: "v9" }), HubNotFoundError);
    assert.equal(revErr.what, "revision");
    assert.match(revErr.message, /Revision "v9" not found in repository acme\/tiny-reranker/);

    const none = await rejectsWith(snapshotDownload(REPO, { env: t.env, allowPatterns: ["*.gguf"] }), HubNotFoundError);
    assert.equal(none.what, "file");
    assert.match(none.message, /no file matching \*\.gguf/);
  });

  test("allowPatterns decides: *.bin is fetched only when asked for", async () => {
    const r = await snapshotDownload(REPO, { env: t.env, allowPatterns: ["*.bin", "config.json"] });
    assert.deepEqual(r.files, ["config.json", "pytorch_model.bin"]);
    const d = await snapshotDownload(REPO, { env: t.env, allowPatterns: ["*"], ignorePatterns: ["*.bin", "onnx/", "*.md"] });
    assert.deepEqual(d.files, WANTED);
  });

  test("progress is reported per file up to the total", async () => {
    const events: Array<[string, number, number | undefined]> = [];
    let task: { files: number; totalBytes: number | undefined } | undefined;
    let ended: boolean | undefined;
    const progress: ProgressReporter = {
      begin: (t0) => {
        task = t0;
      },
      update: (file, done, size) => events.push([file, done, size]),
      warn: () => undefined,
      end: (ok) => {
        ended = ok;
      },
    };
    await snapshotDownload(REPO, { env: t.env, progress });
    const total = config.length + tokenizer.length + weights.length + dense.length;
    assert.deepEqual(task, { label: `${REPO}@main`, files: 5, totalBytes: total });
    assert.equal(ended, true);
    const last = new Map<string, number>();
    for (const [file, done, size] of events) {
      assert.ok(done >= (last.get(file) ?? 0), "monotonic without restarts");
      assert.ok(size !== undefined && done <= size);
      last.set(file, done);
    }
    assert.equal([...last.values()].reduce((a, b) => a + b, 0), total);
  });
});

describe("authentication, redirects and tokens", () => {
  const TOKEN = "hf_secret_test_token_123";
  let t: Env;
  afterEach(() => disposeEnv(t));

  test("401 on a private repo without a token says to set HF_TOKEN", async () => {
    t = await makeEnv({ access: "private" });
    const err = await rejectsWith(snapshotDownload(REPO, { env: t.env }), HubAuthError);
    assert.equal(err.status, 401);
    assert.match(err.message, /set HF_TOKEN/);
  });

  test("a wrong token is refused with a message that names HF_TOKEN but not the token", async () => {
    t = await makeEnv({ access: "private", token: "hf_wrong_token_456" });
    const err = await rejectsWith(snapshotDownload(REPO, { env: t.env }), HubAuthError);
    assert.match(err.message, /HF_TOKEN/);
    assert.ok(!err.message.includes("hf_wrong_token_456"));
    assert.ok(!String(err.stack).includes("hf_wrong_token_456"));
  });

  test("a gated repo: metadata readable, files 401 GatedRepo -> HF_TOKEN; with the token it downloads", async () => {
    t = await makeEnv({ access: "gated" });
    const err = await rejectsWith(snapshotDownload(REPO, { env: t.env }), HubAuthError);
    assert.equal(err.gated, true);
    assert.match(err.message, /gated/);
    assert.match(err.message, /HF_TOKEN/);

    const r = await snapshotDownload(REPO, { env: { ...t.env, HF_TOKEN: TOKEN } });
    assert.deepEqual(r.files, WANTED);
  });

  test("the token goes to the Hub with Bearer, never to a CDN on another host", async () => {
    t = await makeEnv({ access: "private", cdnOnOtherHost: true, token: TOKEN });
    const r = await snapshotDownload(REPO, { env: t.env });
    assert.deepEqual(await readFile(join(r.path, "model.safetensors")), weights);
    const hubReqs = t.hub.requests.filter((x) => x.kind === "api" || x.kind === "resolve");
    const cdnReqs = t.hub.requests.filter((x) => x.kind === "cdn");
    assert.ok(hubReqs.length > 0 && cdnReqs.length === 2);
    for (const x of hubReqs) assert.equal(x.authorization, `Bearer ${TOKEN}`);
    for (const x of cdnReqs) {
      assert.match(x.host, /^127\.0\.0\.2:/);
      assert.equal(x.authorization, undefined);
    }
  });

  test("a CDN on another port of the same machine gets no token either (hosts compare name and port)", async () => {
    t = await makeEnv({ access: "private", token: TOKEN });
    await snapshotDownload(REPO, { env: t.env });
    const cdnReqs = t.hub.requests.filter((x) => x.kind === "cdn");
    assert.equal(cdnReqs.length, 2);
    for (const x of cdnReqs) {
      assert.match(x.host, /^127\.0\.0\.1:/);
      assert.equal(x.authorization, undefined);
    }
  });

  test("a renamed repo's redirect stays on the Hub and keeps the token", async () => {
    t = await makeEnv({ access: "private", token: TOKEN, renamed: { "acme/old-name": REPO } });
    const r = await snapshotDownload("acme/old-name", { env: t.env });
    // Stored under the name that was asked for, as huggingface_hub does.
    assert.equal(r.path, join(t.cacheDir, "models--acme--old-name", "snapshots", t.hub.commitOf(REPO)));
    assert.deepEqual(await readFile(join(r.path, "model.safetensors")), weights);
    const redirected = t.hub.requests.filter((x) => x.path.includes(`/${REPO}/`));
    assert.ok(t.hub.requests.some((x) => x.path.includes("/acme/old-name/") && x.status === 307));
    assert.ok(redirected.length > 0);
    for (const x of redirected) assert.equal(x.authorization, `Bearer ${TOKEN}`);
  });
});

describe("offline mode and unreachable Hub", () => {
  let t: Env;
  let deadEndpoint: string;
  before(async () => {
    // A port that was just free: connections to it are refused.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    deadEndpoint = `http://127.0.0.1:${port}`;
  });
  beforeEach(async () => {
    t = await makeEnv();
  });
  afterEach(() => disposeEnv(t));

  test("HF_HUB_OFFLINE=1 serves a cached snapshot through refs/main without any request", async () => {
    const online = await snapshotDownload(REPO, { env: t.env });
    t.hub.clearRequests();
    const offline = await snapshotDownload(REPO, { env: { ...t.env, HF_HUB_OFFLINE: "1" } });
    assert.deepEqual(t.hub.requests, []);
    assert.equal(offline.source, "cache");
    assert.equal(offline.path, online.path);
    assert.deepEqual(offline.files, WANTED);
  });

  test("HF_HUB_OFFLINE=1 with nothing cached fails clearly", async () => {
    const err = await rejectsWith(snapshotDownload(REPO, { env: { ...t.env, HF_HUB_OFFLINE: "true" } }), HubOfflineError);
    assert.match(err.message, /not in the cache/);
    assert.match(err.message, /HF_HUB_OFFLINE/);
    assert.deepEqual(t.hub.requests, []);
    const fileErr = await rejectsWith(hubDownload(REPO, "config.json", { env: { ...t.env, HF_HUB_OFFLINE: "1" } }), HubOfflineError);
    assert.match(fileErr.message, /"config\.json" of acme\/tiny-reranker@main is not in the cache/);
  });

  test("HF_HUB_OFFLINE=1 names the files a partial snapshot lacks (per the cached tree listing)", async () => {
    await snapshotDownload(REPO, { env: t.env, allowPatterns: ["config.json"] });
    const err = await rejectsWith(snapshotDownload(REPO, { env: { ...t.env, HF_HUB_OFFLINE: "1" } }), HubOfflineError);
    assert.match(err.message, /incomplete \(missing 2_Dense\/model\.safetensors, model\.safetensors, special_tokens_map\.json, tokenizer\.json\)/);
    // Asking only for what is there works.
    const ok = await snapshotDownload(REPO, { env: { ...t.env, HF_HUB_OFFLINE: "1" }, allowPatterns: ["config.json"] });
    assert.deepEqual(ok.files, ["config.json"]);
  });

  test("an unreachable Hub with a partial snapshot names the missing file", async () => {
    const commit = t.hub.commitOf(REPO);
    await snapshotDownload(REPO, { env: t.env, allowPatterns: ["config.json"] });
    const dead = { ...t.env, HF_ENDPOINT: deadEndpoint };
    const err = await rejectsWith(
      snapshotDownload(REPO, { env: dead, revision: commit, allowPatterns: ["config.json", "tokenizer.json"], ...fast }),
      HubNetworkError,
    );
    assert.equal(err.file, "tokenizer.json");
    assert.match(err.message, new RegExp(`"tokenizer\\.json" of acme/tiny-reranker@${commit} is not in the cache`));
    const viaMain = await rejectsWith(
      snapshotDownload(REPO, { env: dead, allowPatterns: ["config.json", "tokenizer.json"] }),
      HubNetworkError,
    );
    assert.match(viaMain.message, /incomplete \(missing tokenizer\.json\)/);
  });

  test("an unreachable Hub: cached models are served, others fail saying so", async () => {
    const err = await rejectsWith(snapshotDownload(REPO, { env: { ...t.env, HF_ENDPOINT: deadEndpoint } }), HubNetworkError);
    assert.equal(err.code, "ECONNREFUSED");
    assert.match(err.message, /Cannot reach the Hub/);
    assert.match(err.message, /not in the cache/);
    assert.match(err.message, /downloaded first/);
    assert.match(err.message, /HF_HUB_OFFLINE/);

    await snapshotDownload(REPO, { env: t.env });
    const cached = await snapshotDownload(REPO, { env: { ...t.env, HF_ENDPOINT: deadEndpoint } });
    assert.equal(cached.source, "cache");
    assert.match(cached.warning ?? "", /Cannot reach the Hub/);
    assert.deepEqual(cached.files, WANTED);
  });
});

describe("single files (hf:owner/name/file references)", () => {
  let t: Env;
  beforeEach(async () => {
    t = await makeEnv();
  });
  afterEach(() => disposeEnv(t));

  test("fetchModel downloads one file like hf_hub_download and reuses it", async () => {
    const commit = t.hub.commitOf(REPO);
    const r = await fetchModel(`hf:${REPO}/model.safetensors`, { env: t.env });
    assert.equal(r.path, join(storage(t.cacheDir), "snapshots", commit, "model.safetensors"));
    assert.equal(await readlink(r.path), `../../blobs/${sha256Hex(weights)}`);
    assert.deepEqual(await readFile(r.path), weights);
    assert.equal(await readFile(join(storage(t.cacheDir), "refs", "main"), "utf8"), commit);
    assert.deepEqual(r.downloaded, ["model.safetensors"]);

    t.hub.clearRequests();
    const again = await fetchModel(`hf:${REPO}/model.safetensors`, { env: t.env });
    assert.deepEqual(again.downloaded, []);
    assert.deepEqual(t.hub.requests.map((x) => `${x.method} ${x.kind}`), ["HEAD resolve"]);

    t.hub.clearRequests();
    const pinned = await fetchModel(`hf:${REPO}/model.safetensors@${commit}`, { env: t.env });
    assert.equal(pinned.path, r.path);
    assert.deepEqual(t.hub.requests, []);
  });

  test("a file that does not exist is a 404 naming the file, remembered in .no_exist", async () => {
    const err = await rejectsWith(hubDownload(REPO, "weights/missing.gguf", { env: t.env }), HubNotFoundError);
    assert.equal(err.what, "file");
    assert.match(err.message, /File "weights\/missing\.gguf" not found in acme\/tiny-reranker@main/);
    assert.ok(existsSync(join(storage(t.cacheDir), ".no_exist", t.hub.commitOf(REPO), "weights", "missing.gguf")));
  });

  test("a full disk gives a clear error and removes the partial file", { skip: !existsSync("/dev/full") }, async () => {
    const blobs = join(storage(t.cacheDir), "blobs");
    await mkdir(blobs, { recursive: true });
    const incomplete = join(blobs, `${sha256Hex(weights)}.incomplete`);
    await symlink("/dev/full", incomplete); // every write to it fails with ENOSPC
    const err = await rejectsWith(hubDownload(REPO, "model.safetensors", { env: t.env }), HubDiskFullError);
    assert.match(err.message, /No space left/);
    assert.match(err.message, /model\.safetensors/);
    assert.match(err.message, /partial file was removed/);
    assert.ok(!existsSync(incomplete) && !(await listFiles(blobs)).includes(`${sha256Hex(weights)}.incomplete`));
  });
});

after(() => {
  // node:test keeps the process alive while sockets linger; nothing global to clean.
});
