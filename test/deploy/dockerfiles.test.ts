/**
 * The two Dockerfiles, read and checked against the build script and the server: they run exactly
 * scripts/build-image-steps.sh's steps (./image-steps.test.ts runs those for real), as a non-root
 * user under tini, with a health check that matches the server, a model volume, and (CUDA) a base
 * image whose CUDA major is the one the installed llama.cpp binary links. And the health check
 * script the images run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseServeArgs } from "../../src/cli/serve-options.js";
import { all, dockerIgnores, envPairs, execForm, expandArgs, one, readDockerfile, type Dockerfile } from "./dockerfile.js";
import { appFiles, linkedCudaMajor } from "./image-support.js";

const REPO = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
const run = promisify(execFile);

for (const [file, variant] of [
  ["Dockerfile", "cpu"],
  ["Dockerfile.cuda", "cuda"],
] as const) {
  test(`${file}: multi-stage on Node 20 slim, the build is build-image-steps.sh ${variant}, non-root under tini, health check on /health, model volume`, () => {
    const docker: Dockerfile = readDockerfile(path.join(REPO, file));
    assert.equal(docker.globalArgs.NODE_IMAGE, "node:20-bookworm-slim");
    assert.ok(docker.stages.length >= 2, "multi-stage");
    const [build, runtime] = [docker.stages[0], docker.stages[docker.stages.length - 1]];
    assert.equal(build.from, "${NODE_IMAGE}");
    assert.equal(build.name, "build");

    // The build stage copies every APP_FILES entry, then runs the script's install step.
    const copied = all(build, "COPY").flatMap((c) => c.args.split(" ").slice(0, -1));
    const workdir = one(build, "WORKDIR").args;
    for (const appFile of appFiles()) {
      assert.ok(
        copied.some((src) => src === appFile || appFile.startsWith(`${src}/`)),
        `${file} does not COPY ${appFile}, which build-image-steps.sh copies into the image`,
      );
    }
    const runs = all(build, "RUN").map((r) => r.args);
    assert.ok(runs.includes(`bash scripts/build-image-steps.sh install ${workdir} /app ${variant}`), runs.join("\n"));
    assert.ok(runs.some((r) => /apt-get install -y --no-install-recommends tini/.test(r)));

    // The runtime stage: the app from the build stage, tini as PID 1, a non-root user, the smoke run as that user.
    const copies = all(runtime, "COPY").map((c) => c.args);
    assert.ok(copies.includes("--from=build /app /app"));
    assert.ok(copies.includes("--from=build /usr/bin/tini-static /usr/bin/tini"));
    const user = one(runtime, "USER").args;
    assert.match(user, /^[1-9]\d*(:[1-9]\d*)?$/, "a numeric non-root user, so Kubernetes' runAsNonRoot can verify it");
    const userIndex = runtime.instructions.findIndex((i) => i.keyword === "USER");
    const smokeIndex = runtime.instructions.findIndex((i) => i.keyword === "RUN" && i.args.includes("build-image-steps.sh smoke /app"));
    assert.ok(smokeIndex > userIndex, "the final image is smoke-tested as the user it runs as");
    if (variant === "cuda") assert.match(runtime.instructions[smokeIndex].args, /build-image-steps\.sh cuda-libs \/app/);
    const entrypoint = execForm(one(runtime, "ENTRYPOINT").args);
    assert.deepEqual(entrypoint, ["/usr/bin/tini", "--", "node", "/app/bin/rerankd.js"]);
    assert.equal(one(runtime, "STOPSIGNAL").args, "SIGTERM");

    // CMD is a valid `rerankd serve` command line; its port is the exposed one and the health check's.
    const cmd = execForm(one(runtime, "CMD").args);
    assert.equal(cmd[0], "serve");
    const options = parseServeArgs(cmd.slice(1), {});
    assert.ok(options !== "help");
    assert.equal(options.host, "0.0.0.0");
    assert.equal(one(runtime, "EXPOSE").args, String(options.port));
    const env = Object.assign({}, ...all(runtime, "ENV").map((e) => envPairs(e.args))) as Record<string, string>;
    assert.equal(env.RERANKD_HEALTH_URL, `http://127.0.0.1:${options.port}/health`);
    const healthcheck = one(runtime, "HEALTHCHECK").args;
    assert.match(healthcheck, /--start-period=\d+m/);
    assert.ok(healthcheck.endsWith('CMD ["node", "/app/scripts/healthcheck.mjs"]'), healthcheck);

    // The model cache (Hub downloads and converted GGUF, both under HF_HOME) is on the volume.
    assert.deepEqual(execForm(one(runtime, "VOLUME").args), ["/models"]);
    assert.ok(env.HF_HOME.startsWith("/models/"), env.HF_HOME);
    assert.ok(all(runtime, "RUN").some((r) => /chown rerankd:rerankd \/models/.test(r.args)));

    if (variant === "cuda") {
      const base = expandArgs(runtime.from, docker);
      const match = /^nvidia\/cuda:(\d+)\.\d+\.\d+-runtime-ubuntu(\d+\.\d+)$/.exec(base);
      assert.ok(match, `the CUDA stage is FROM an nvidia/cuda runtime image, not ${base}`);
      assert.equal(Number(match[1]), linkedCudaMajor(REPO), "the base image's CUDA major is the one node-llama-cpp's prebuilt CUDA backend links");
      assert.equal(match[2], "22.04", "the Ubuntu the prebuilt CUDA binaries were built on");
      assert.ok(copies.includes("--from=build /usr/local/bin/node /usr/local/bin/node"));
    } else {
      assert.equal(runtime.from, "${NODE_IMAGE}");
    }
  });
}

test(".dockerignore keeps dependencies, caches and models out, and none of the files the images copy", () => {
  const patterns = readFileSync(path.join(REPO, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  for (const appFile of appFiles()) assert.equal(dockerIgnores(patterns, appFile), false, `.dockerignore excludes ${appFile}`);
  for (const out of ["node_modules/x", ".git/HEAD", ".cache/fixtures/a.gguf", "models/x.gguf", "test/cluster/support.ts"]) {
    assert.equal(dockerIgnores(patterns, out), true, `.dockerignore lets ${out} into the build context`);
  }
});

test("the health check script: 0 when /health is 200, 1 when it is not or nothing listens", async () => {
  const { createServer } = await import("node:http");
  let status = 503;
  const server = createServer((req, res) => {
    res.statusCode = req.url === "/health" ? status : 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const check = (url: string) =>
    run(process.execPath, [path.join(REPO, "scripts/healthcheck.mjs"), url]).then(
      () => 0,
      (error: { code?: number }) => error.code ?? -1,
    );
  try {
    assert.equal(await check(`http://127.0.0.1:${port}/health`), 1, "503 while loading or draining");
    status = 200;
    assert.equal(await check(`http://127.0.0.1:${port}/health`), 0);
  } finally {
    server.close();
  }
  assert.equal(await check(`http://127.0.0.1:${port}/health`), 1, "nothing listening");
});
