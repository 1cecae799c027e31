/**
 * The reference nginx configuration and the `npm run cluster` command: the generated config is what
 * the docs promise (least connections, passive checks, retry of POSTs on another replica, keep-alive),
 * Debian's nginx accepts it, nginx's own errors come out in the API's JSON shape, and the command
 * starts replicas behind nginx, prints the URL, serves through it and stops everything on SIGTERM.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderNginxConfig, type NginxConfigOptions } from "../../src/cluster/nginx-config.js";
import { splitClusterArgs } from "../../src/cluster/cli.js";
import { freePort } from "../../src/cluster/supervisor.js";
import { parseServeArgs } from "../../src/cli/serve-options.js";
import { startServer } from "../../src/cli/serve.js";
import { buildTinyGemma } from "../support/tiny-gemma.js";
import { requireNginx } from "./support.js";

const REPO = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "rerankd-nginx-test-"));
  dirs.push(dir);
  return dir;
}

function options(dir: string, overrides: Partial<NginxConfigOptions> = {}): NginxConfigOptions {
  return {
    listenHost: "127.0.0.1",
    listenPort: 18000,
    upstreams: [
      { host: "127.0.0.1", port: 18001 },
      { host: "127.0.0.1", port: 18002 },
      { host: "127.0.0.1", port: 18003 },
    ],
    dir,
    maxBodyBytes: 16 * 1024 * 1024,
    requestTimeoutSeconds: 120,
    ...overrides,
  };
}

test("the generated config balances by least connections, checks passively, retries POSTs elsewhere and keeps upstream connections alive", () => {
  const dir = tempDir();
  const config = renderNginxConfig(options(dir));
  const upstream = /upstream rerankd \{([^}]*)\}/.exec(config)?.[1] ?? "";
  assert.match(upstream, /^\s*least_conn;/m);
  for (const port of [18001, 18002, 18003]) assert.match(upstream, new RegExp(`server 127\\.0\\.0\\.1:${port} max_fails=3 fail_timeout=5s;`));
  assert.match(upstream, /keepalive \d+;/);
  assert.match(upstream, /keepalive_timeout 60s;/, "below Fastify's 72 s keep-alive, so nginx never reuses a connection rerankd closed");
  assert.match(config, /proxy_next_upstream error timeout http_500 http_502 http_503 non_idempotent;/);
  assert.doesNotMatch(config, /http_429|http_504/, "a full queue or rerankd's own deadline goes back to the client");
  assert.match(config, /proxy_next_upstream_tries 3;/, "each replica at most once");
  assert.match(config, /proxy_http_version 1\.1;/);
  assert.match(config, /proxy_set_header Connection "";/);
  assert.match(config, /proxy_request_buffering on;/, "a body must be buffered to be re-sent");
  const read = Number(/proxy_read_timeout (\d+)s;/.exec(config)?.[1]);
  assert.ok(read > 120, "nginx outwaits rerankd's own --request-timeout so the client sees rerankd's 504");
  assert.match(config, new RegExp(`client_max_body_size ${16 * 1024 * 1024 + 65536};`));
  // Self-contained: its own pid, logs and temp paths, in the foreground, never the system's.
  assert.match(config, /^daemon off;$/m);
  assert.match(config, new RegExp(`^pid ${dir}/nginx\\.pid;$`, "m"));
  for (const temp of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) assert.match(config, new RegExp(`${temp}_temp_path ${dir}/`));
  assert.doesNotMatch(config, /\/etc\/nginx|\/var\/log|listen\s+(\S+:)?80;/);
  assert.match(config, /listen 127\.0\.0\.1:18000 /);
});

test("nginx's idle keep-alive to a replica ends before the replica's own, so nginx never reuses a connection rerankd closed", async () => {
  const model = await buildTinyGemma();
  const serve = parseServeArgs([model.path, "--host", "127.0.0.1", "--port", "0", "--threads", "1", "--log-level", "silent"], {});
  assert.ok(serve !== "help");
  const server = await startServer(serve, () => undefined, {});
  try {
    const nginxIdle = Number(/keepalive_timeout (\d+)s;/.exec(/upstream rerankd \{([^}]*)\}/.exec(renderNginxConfig(options(tempDir())))?.[1] ?? "")?.[1]);
    assert.ok(nginxIdle > 0);
    assert.ok(server.app.server.keepAliveTimeout > nginxIdle * 1000, `rerankd keeps idle connections ${server.app.server.keepAliveTimeout} ms, nginx ${nginxIdle} s`);
  } finally {
    await server.close();
  }
});

test("no upstreams is an error, and an IPv6 listen address is bracketed", () => {
  assert.throws(() => renderNginxConfig(options(tempDir(), { upstreams: [] })), /at least one upstream/);
  assert.match(renderNginxConfig(options(tempDir(), { listenHost: "::1" })), /listen \[::1\]:18000 /);
  assert.match(renderNginxConfig(options(tempDir(), { requestTimeoutSeconds: 0 })), /proxy_read_timeout 3600s;/);
});

test("Debian's nginx accepts the generated config (nginx -t)", () => {
  const nginx = requireNginx();
  const dir = tempDir();
  writeFileSync(path.join(dir, "nginx.conf"), renderNginxConfig(options(dir)));
  const out = execFileSync(nginx, ["-t", "-p", `${dir}/`, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  assert.equal(out, "");
});

/** Runs nginx on a config whose replicas are not there, to see nginx's own answers. */
async function nginxWithoutReplicas(maxBodyBytes: number): Promise<{ url: string; stop(): Promise<void> }> {
  const nginx = requireNginx();
  const dir = tempDir();
  const port = await freePort();
  const dead = await freePort();
  writeFileSync(path.join(dir, "nginx.conf"), renderNginxConfig(options(dir, { listenPort: port, upstreams: [{ host: "127.0.0.1", port: dead }], maxBodyBytes })));
  const child = spawn(nginx, ["-p", `${dir}/`, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")], { stdio: "ignore" });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${url}/health`);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGQUIT");
      await exited;
    },
  };
}

test("nginx's own errors (no replica, body too large) are the API's JSON errors", async () => {
  const server = await nginxWithoutReplicas(1024);
  try {
    const down = await fetch(`${server.url}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "q", documents: ["d"] }),
    });
    assert.equal(down.status, 502);
    assert.match(down.headers.get("content-type") ?? "", /application\/json/);
    assert.equal(down.headers.get("retry-after"), "1");
    const body = (await down.json()) as { error: { type: string; code: number; param: null; message: string } };
    assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
    assert.equal(body.error.code, 502);
    assert.equal(body.error.param, null);

    const big = await fetch(`${server.url}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "q", documents: ["x".repeat(1024 + 65536 + 10)] }),
    });
    assert.equal(big.status, 413);
    const tooLarge = (await big.json()) as { error: { type: string; code: number } };
    assert.deepEqual([tooLarge.error.type, tooLarge.error.code], ["PayloadTooLargeError", 413]);
  } finally {
    await server.stop();
  }
});

test("the cluster command's flags are its own and the rest go to rerankd serve", () => {
  assert.deepEqual(splitClusterArgs(["--replicas", "3", "m.gguf", "--api-key", "k", "--port=9000", "--threads", "1", "--nginx", "/x/nginx"]), {
    own: ["--replicas", "3", "--port=9000", "--nginx", "/x/nginx"],
    serve: ["m.gguf", "--api-key", "k", "--threads", "1"],
  });
});

/** Output of the cluster command until `pattern` appears (or it exits, or the time is up). */
function waitForOutput(child: ChildProcess, output: () => string, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    const check = () => {
      const match = pattern.exec(output());
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    };
    child.stdout?.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`cluster command exited with ${code}:\n${output()}`));
    });
    check();
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("npm run cluster: replicas behind nginx, the URL printed, served through nginx, all stopped on SIGTERM", async () => {
  requireNginx();
  const model = await buildTinyGemma();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(REPO, "src/cluster/main.ts"), "--replicas", "2", "--port", "0", model.path, "--threads", "1", "--log-level", "warn"],
    { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const [, url] = await waitForOutput(child, () => output, /behind nginx at (http:\/\/127\.0\.0\.1:\d+)/, 180_000);
  await waitForOutput(child, () => output, /replica 0 ready[\s\S]*replica 1 ready|replica 1 ready[\s\S]*replica 0 ready/, 180_000);
  const pids = [...output.matchAll(/replica \d ready on \S+ \(pid (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 2, output);
  const config = /\(config (\/\S+\/nginx\.conf)\)/.exec(output)?.[1];
  assert.ok(config && existsSync(config), `the generated config is where the command says:\n${output}`);

  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const response = await fetch(`${url}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "what is the capital of France?", documents: ["Paris is the capital of France.", "Spiders have eight legs."] }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { results: Array<{ index: number }> };
    assert.equal(body.results.length, 2);
    seen.add(response.headers.get("x-rerankd-upstream") ?? "");
  }
  assert.equal((await fetch(`${url}/health`)).status, 200);
  assert.ok(seen.size >= 1 && [...seen].every((u) => /^127\.0\.0\.1:\d+$/.test(u)), [...seen].join(" "));

  child.kill("SIGTERM");
  assert.equal(await exited, 0, output);
  for (const pid of new Set(pids)) assert.equal(alive(pid), false, `replica pid ${pid} still running after the cluster stopped`);
  await assert.rejects(fetch(`${url}/health`), "nginx stopped listening");
  assert.equal(existsSync(path.dirname(config)), false, "its temp dir is removed at exit");
});
