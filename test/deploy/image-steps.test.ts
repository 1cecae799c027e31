/**
 * The container images' build steps on a machine without a container engine: the Dockerfiles RUN
 * scripts/build-image-steps.sh (./dockerfiles.test.ts checks that), and this runs the same steps for
 * real: copy the app, npm install its production dependencies (from npm's cache), prune the
 * llama.cpp binaries for the CUDA and the CPU image, then run the installed app as an unprivileged
 * user that owns none of it, as the image does: serve the tiny model, answer, drain on SIGTERM.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { buildTinyGemma } from "../support/tiny-gemma.js";
import { REPO, SCRIPT, linkedCudaMajor } from "./image-support.js";

const run = promisify(execFile);

const work = mkdtempSync(path.join(tmpdir(), "rerankd-image-steps-"));
const app = path.join(work, "app");
let model: string;
before(async () => {
  const fixture = await buildTinyGemma();
  model = path.join(work, "model.gguf");
  copyFileSync(fixture.path, model);
});
after(() => rmSync(work, { recursive: true, force: true }));

const llamaPackages = () => readdirSync(path.join(app, "node_modules/@node-llama-cpp")).sort();

test("build-image-steps.sh install: the app's files and production dependencies, from npm's cache", async () => {
  // --offline: CI's `npm install` of the checkout has just filled npm's cache with every package.
  const { stdout } = await run("bash", [SCRIPT, "copy", REPO, app]);
  assert.match(stdout, /copied/);
  await run("bash", [SCRIPT, "deps", app], { env: { ...process.env, NPM_INSTALL_FLAGS: "--offline" }, maxBuffer: 16 << 20 });
  assert.deepEqual(readdirSync(app).sort(), ["bin", "node_modules", "package-lock.json", "package.json", "scripts", "src", "tsconfig.json"]);
  assert.deepEqual(readdirSync(path.join(app, "scripts")).sort(), ["build-image-steps.sh", "healthcheck.mjs"]);
  assert.equal(existsSync(path.join(app, "test")), false);
  // (typescript itself is there: node-llama-cpp depends on it.)
  for (const dev of ["eslint", "typescript-eslint", "@eslint/js"]) assert.equal(existsSync(path.join(app, "node_modules", dev)), false, `dev dependency ${dev} installed`);
  for (const dep of ["fastify", "node-llama-cpp", "tsx", "prom-client"]) assert.ok(existsSync(path.join(app, "node_modules", dep)), dep);
});

test("build-image-steps.sh prune: the CUDA image keeps the CUDA binaries, the CPU image only its own platform's", async () => {
  const arch = process.arch;
  await assert.rejects(run("bash", [SCRIPT, "prune", app, "rocm"]), /variant must be cpu or cuda/);
  if (arch === "x64") {
    await run("bash", [SCRIPT, "prune", app, "cuda"]);
    assert.deepEqual(llamaPackages(), ["linux-x64", "linux-x64-cuda", "linux-x64-cuda-ext"]);
    assert.equal(linkedCudaMajor(app), linkedCudaMajor(REPO));
  }
  await run("bash", [SCRIPT, "prune", app, "cpu"]);
  assert.deepEqual(llamaPackages(), [`linux-${arch}`]);
});

test("build-image-steps.sh smoke: the installed app serves the tiny model as an unprivileged user, answers, and drains on SIGTERM", async () => {
  // As the image runs it: a user that owns nothing of the app (root owns it here, as in the image).
  chmodSync(work, 0o755);
  execFileSync("chmod", ["-R", "a+rX", work]);
  const asUser = process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/nonexistent"] : [];
  const [cmd, ...args] = [...asUser, "bash", path.join(app, "scripts/build-image-steps.sh"), "smoke", app, model];
  const { stdout, stderr } = await run(cmd, args, { timeout: 170_000, maxBuffer: 16 << 20 });
  assert.match(stdout, /^0\.\d+\.\d+/m, "rerankd --version");
  assert.match(stdout, /llama\.cpp \S+ loads \(cpu\)/);
  assert.match(stdout, /smoke passed: served .*model\.gguf, answered a rerank, drained on SIGTERM/);
  assert.match(stderr, /drained/);
});

