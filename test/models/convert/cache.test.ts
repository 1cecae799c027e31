// Cache keys for converted GGUF files: same checkpoint + outtype + converter version → same path, reused.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  CONVERTER_VERSION,
  checkpointContentHash,
  checkpointRevision,
  convertedGgufPath,
  ensureConvertedGguf,
  hubSnapshotOf,
  repoDirName,
} from "../../../src/models/convert/index.js";
import { spmUnavailableReason, tempDir } from "../../support/hf-checkpoint.js";
import { makeFixture, writeVariant } from "./helpers.js";

const skip = spmUnavailableReason();
let root = "";
let dir = "";

before(async () => {
  root = await tempDir("rerankd-convert-cache-");
  if (skip) return;
  const fx = await makeFixture();
  dir = (await writeVariant(fx, root, "f32")).dir;
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test("converted file names encode repo, revision, outtype and converter version", () => {
  const commit = "0123456789abcdef0123456789abcdef01234567";
  assert.equal(
    convertedGgufPath({ cacheRoot: "/c", repoId: "BAAI/bge-reranker-v2-gemma", revision: commit, outtype: "q8_0" }),
    `/c/rerankd/gguf/BAAI--bge-reranker-v2-gemma/${commit}-q8_0-c${CONVERTER_VERSION}.gguf`,
  );
  assert.equal(repoDirName("../evil/../x y"), "evil--x_y");
  assert.throws(() => convertedGgufPath({ cacheRoot: "/c", repoId: "a/b", revision: "../../etc", outtype: "f16" }), /not usable in a file name/);
  assert.deepEqual(hubSnapshotOf(`/home/u/.cache/huggingface/hub/models--BAAI--bge-reranker-v2-gemma/snapshots/${commit}`), {
    repoId: "BAAI/bge-reranker-v2-gemma",
    revision: commit,
  });
  assert.equal(hubSnapshotOf("/tmp/some/folder"), undefined);
});

test("content hash: stable, sensitive to weights, and uses hub blob names without rereading", { skip }, async () => {
  const h1 = await checkpointContentHash(dir);
  assert.match(h1, /^sha256-[0-9a-f]{16}$/);
  assert.equal(await checkpointContentHash(dir), h1);
  assert.equal(await checkpointRevision(dir), h1);
  assert.equal(await checkpointRevision(dir, "v1.2"), "v1.2");

  const copy = join(root, "copy");
  await cp(dir, copy, { recursive: true });
  assert.equal(await checkpointContentHash(copy), h1, "a byte-identical copy has the same hash");
  const st = join(copy, "model.safetensors");
  const bytes = await readFile(st);
  bytes[bytes.length - 1] ^= 1;
  await writeFile(st, bytes);
  assert.notEqual(await checkpointContentHash(copy), h1, "one flipped weight bit changes the hash");

  // A huggingface_hub layout: snapshot files are symlinks to blobs named by their sha256.
  const repo = join(root, "hub", "models--org--tiny");
  const commit = "89abcdef0123456789abcdef0123456789abcdef";
  const snap = join(repo, "snapshots", commit);
  await mkdir(join(repo, "blobs"), { recursive: true });
  await mkdir(snap, { recursive: true });
  for (const name of ["config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "model.safetensors"]) {
    const data = await readFile(join(dir, name));
    const sha = createHash("sha256").update(data).digest("hex");
    await writeFile(join(repo, "blobs", sha), data);
    await symlink(join("..", "..", "blobs", sha), join(snap, name));
  }
  assert.equal(await checkpointRevision(snap), commit);
  assert.equal(await checkpointContentHash(snap), h1, "blob names stand in for content hashes");
});

test("ensureConvertedGguf converts once, then reuses the file", { skip }, async () => {
  const cacheRoot = join(root, "cache");
  const progress: number[] = [];
  const first = await ensureConvertedGguf({ dir, outtype: "q8_0", cacheRoot, repoId: "org/tiny-gemma", onProgress: (p) => progress.push(p.done) });
  assert.equal(first.reused, false);
  assert.equal(first.path, convertedGgufPath({ cacheRoot, repoId: "org/tiny-gemma", revision: first.revision, outtype: "q8_0" }));
  assert.ok(progress.length > 0 && progress[progress.length - 1] === progress.length);
  const mtime = (await stat(first.path)).mtimeMs;

  const second = await ensureConvertedGguf({ dir, outtype: "q8_0", cacheRoot, repoId: "org/tiny-gemma" });
  assert.deepEqual(second, { ...first, reused: true });
  assert.equal((await stat(second.path)).mtimeMs, mtime);

  // Another outtype is another file.
  const f16 = await ensureConvertedGguf({ dir, outtype: "f16", cacheRoot, repoId: "org/tiny-gemma" });
  assert.notEqual(f16.path, first.path);

  // A damaged cached file is not reused: it is converted again.
  const bytes = await readFile(first.path);
  await writeFile(`${first.path}.part`, bytes.subarray(0, bytes.length >> 1));
  await rename(`${first.path}.part`, first.path);
  const third = await ensureConvertedGguf({ dir, outtype: "q8_0", cacheRoot, repoId: "org/tiny-gemma" });
  assert.equal(third.reused, false);
  assert.equal((await stat(third.path)).size, bytes.length);
});
