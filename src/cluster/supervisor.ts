/**
 * The reference multi-replica deployment on one machine: N `rerankd serve` processes on loopback
 * ports, each restarted when it exits (as Kubernetes restarts a container), behind one nginx with a
 * generated configuration (./nginx-config.ts). It is a small supervisor, not a cluster manager:
 * it exists to run and test the deployment shape that Kubernetes + an L7 balancer give in production.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { renderNginxConfig, type NginxConfigOptions } from "./nginx-config.js";

const REPO = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
/** The installed `rerankd` command's entry point: what the replicas run. */
export const RERANKD_BIN = path.join(REPO, "bin", "rerankd.js");

export interface ClusterOptions {
  replicas: number;
  /** Arguments of `rerankd serve` for every replica (model, keys, limits); not --host/--port. */
  serveArgs: readonly string[];
  /** Where nginx listens (default 127.0.0.1). */
  host?: string;
  /** nginx's port; 0 = a free one (default 0). */
  port?: number;
  /** The replicas' ports, one each; default: free loopback ports. */
  replicaPorts?: readonly number[];
  /** The nginx binary (default: `nginx` from PATH, else /usr/sbin/nginx). */
  nginx?: string;
  /** Working directory for nginx's config, pid, temp files and logs (default: a new temp dir, see removeWorkDir). */
  workDir?: string;
  /** Restart a replica that exits (default true). */
  restart?: boolean;
  /** rerankd's --max-body-bytes and --request-timeout (seconds), for nginx's matching limits. */
  maxBodyBytes: number;
  requestTimeoutSeconds: number;
  /** Passive health check: seconds a failed replica stays out of rotation (default 5). */
  failTimeoutSeconds?: number;
  /** nginx's proxy_next_upstream conditions (default: nginx-config.ts's RETRY_ON). */
  retryOn?: readonly string[];
  /** Extra arguments or environment for one replica (tests use it to break one replica). */
  replicaArgs?: (index: number) => readonly string[];
  replicaEnv?: (index: number) => NodeJS.ProcessEnv;
  /** Each line a replica or nginx prints, and the supervisor's own messages. */
  onLine?: (source: string, line: string) => void;
  /** How long to wait for a replica to stop after SIGTERM before SIGKILL (default 60 s). */
  stopTimeoutMs?: number;
}

export type ReplicaState = "starting" | "ready" | "exited" | "stopped";

export interface ReplicaExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms since the cluster started. */
  at: number;
  /** How long this run of the replica lasted, ms. */
  ranMs: number;
}

const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 5000;
const TAIL_LINES = 200;

export class Replica {
  state: ReplicaState = "starting";
  /** Times the process was started (1 + restarts). */
  starts = 0;
  readonly exits: ReplicaExit[] = [];
  /** Times it became ready (answers /health 200). */
  readyCount = 0;
  child: ChildProcess | null = null;
  private startedAt = 0;
  private restartDelay = RESTART_MIN_MS;
  /** Whether the current run became ready: a crash after serving restarts at once, a crash loop backs off. */
  private readyThisRun = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly tail: string[] = [];

  constructor(
    readonly index: number,
    readonly port: number,
    private readonly cluster: Cluster,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The replica's last lines of output. */
  output(): string {
    return this.tail.join("\n");
  }

  /** Sends a signal to the running process (SIGTERM drains it, SIGKILL kills it). */
  kill(signal: NodeJS.Signals): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null && this.child.kill(signal);
  }

  /** @internal */
  spawn(): void {
    const options = this.cluster.options;
    const args = [
      RERANKD_BIN,
      "serve",
      ...options.serveArgs,
      ...(options.replicaArgs?.(this.index) ?? []),
      "--host",
      "127.0.0.1",
      "--port",
      String(this.port),
    ];
    const child = spawn(process.execPath, args, {
      cwd: REPO,
      env: { ...process.env, ...options.replicaEnv?.(this.index) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.state = "starting";
    this.starts++;
    this.startedAt = Date.now();
    this.readyThisRun = false;
    const source = `replica ${this.index}`;
    const onData = lineSplitter((line) => {
      this.tail.push(line);
      if (this.tail.length > TAIL_LINES) this.tail.shift();
      options.onLine?.(source, line);
    });
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      const ranMs = Date.now() - this.startedAt;
      this.exits.push({ code, signal, at: this.cluster.elapsed(), ranMs });
      this.child = null;
      this.cluster.say(`replica ${this.index} (port ${this.port}) exited (${signal ?? `code ${code}`}) after ${(ranMs / 1000).toFixed(1)} s`);
      if (this.cluster.stopping || options.restart === false) {
        this.state = "stopped";
      } else {
        this.state = "exited";
        if (this.readyThisRun) this.restartDelay = RESTART_MIN_MS;
        const delay = this.restartDelay;
        this.restartDelay = Math.min(RESTART_MAX_MS, this.restartDelay * 2);
        this.cluster.say(`restarting replica ${this.index} in ${delay} ms`);
        this.restartTimer = setTimeout(() => {
          this.restartTimer = null;
          if (!this.cluster.stopping) this.spawn();
        }, delay);
      }
      this.cluster.changed();
    });
    this.cluster.changed();
  }

  /** @internal Polls /health while starting. */
  async probe(): Promise<void> {
    if (this.state !== "starting" || this.child === null) return;
    const child = this.child;
    try {
      const response = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200 && this.child === child && this.state === "starting") {
        this.state = "ready";
        this.readyCount++;
        this.readyThisRun = true;
        this.cluster.say(`replica ${this.index} ready on ${this.url} (pid ${child.pid}, start ${this.starts})`);
        this.cluster.changed();
      }
    } catch {
      // not listening yet
    }
  }

  /** @internal */
  async stop(timeoutMs: number): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (child === null) {
      this.state = "stopped";
      return;
    }
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

/** Calls `each` with every complete line of a stream. */
function lineSplitter(each: (line: string) => void): (chunk: Buffer) => void {
  let rest = "";
  return (chunk) => {
    const lines = (rest + chunk.toString()).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) if (line.length > 0) each(line);
  };
}

/** A free TCP port on the loopback interface. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port. */
async function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

/** The nginx binary: an explicit path, else `nginx` on PATH, else Debian's /usr/sbin/nginx. */
export function findNginx(explicit?: string): string {
  if (explicit) return explicit;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, "nginx"))) return path.join(dir, "nginx");
  }
  if (existsSync("/usr/sbin/nginx")) return "/usr/sbin/nginx";
  throw new Error("nginx not found: install it (Debian/Ubuntu: apt-get install -y nginx) or pass --nginx PATH");
}

export class Cluster {
  readonly replicas: Replica[] = [];
  readonly dir: string;
  readonly nginxBinary: string;
  stopping = false;
  url = "";
  private nginx: ChildProcess | null = null;
  private nginxExit: Promise<void> = Promise.resolve();
  private readonly started = Date.now();
  private waiters: Array<() => void> = [];
  private poller: NodeJS.Timeout | null = null;

  /** Whether `dir` is a temp dir made for this cluster (removeWorkDir deletes only that). */
  private readonly ownsDir: boolean;

  private constructor(readonly options: ClusterOptions) {
    this.nginxBinary = findNginx(options.nginx);
    this.ownsDir = options.workDir === undefined;
    this.dir = options.workDir ?? mkdtempSync(path.join(tmpdir(), "rerankd-cluster-"));
    mkdirSync(this.dir, { recursive: true });
    // nginx started as root runs its workers as `nobody`: they must reach the temp paths in here.
    chmodSync(this.dir, 0o755);
  }

  /** Starts the replicas and nginx; resolves when nginx accepts connections (replicas may still be loading). */
  static async start(options: ClusterOptions): Promise<Cluster> {
    if (!Number.isInteger(options.replicas) || options.replicas < 1) throw new Error("replicas must be a whole number >= 1");
    const cluster = new Cluster(options);
    try {
      await cluster.boot();
    } catch (error) {
      await cluster.stop();
      cluster.removeWorkDir();
      throw error;
    }
    return cluster;
  }

  /** nginx's master process. */
  get nginxPid(): number | undefined {
    return this.nginx?.pid;
  }

  get configPath(): string {
    return path.join(this.dir, "nginx.conf");
  }

  get accessLogPath(): string {
    return path.join(this.dir, "access.log");
  }

  get errorLogPath(): string {
    return path.join(this.dir, "error.log");
  }

  /** ms since the cluster started. */
  elapsed(): number {
    return Date.now() - this.started;
  }

  say(line: string): void {
    this.options.onLine?.("cluster", line);
  }

  /** @internal A replica changed state: wake whoever waits. */
  changed(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `predicate` holds (checked on every replica state change), or rejects after timeoutMs. */
  async waitFor(predicate: () => boolean, timeoutMs: number, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`cluster: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once `count` replicas (default all) answer /health with 200. */
  async waitReady(count = this.replicas.length, timeoutMs = 120_000): Promise<void> {
    await this.waitFor(() => this.replicas.filter((r) => r.state === "ready").length >= count, timeoutMs, `${count} ready replica(s)`);
  }

  private async boot(): Promise<void> {
    const host = this.options.host ?? "127.0.0.1";
    const ports = this.options.replicaPorts ?? (await Promise.all(Array.from({ length: this.options.replicas }, () => freePort())));
    if (ports.length !== this.options.replicas) throw new Error(`replicaPorts: ${ports.length} ports for ${this.options.replicas} replicas`);
    const port = this.options.port ? this.options.port : await freePort(host);

    const config: NginxConfigOptions = {
      listenHost: host,
      listenPort: port,
      upstreams: ports.map((p) => ({ host: "127.0.0.1", port: p })),
      dir: this.dir,
      maxBodyBytes: this.options.maxBodyBytes,
      requestTimeoutSeconds: this.options.requestTimeoutSeconds,
      failTimeoutSeconds: this.options.failTimeoutSeconds,
      retryOn: this.options.retryOn,
    };
    writeFileSync(this.configPath, renderNginxConfig(config));
    const nginxArgs = ["-p", `${this.dir}/`, "-c", this.configPath, "-e", this.errorLogPath];
    try {
      await promisify(execFile)(this.nginxBinary, ["-t", "-q", ...nginxArgs]);
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? String(error);
      throw new Error(`nginx rejected the generated config ${this.configPath}:\n${stderr}`, { cause: error });
    }

    ports.forEach((p, i) => this.replicas.push(new Replica(i, p, this)));
    for (const replica of this.replicas) replica.spawn();
    this.poller = setInterval(() => {
      for (const replica of this.replicas) void replica.probe();
    }, 200);

    const nginx = spawn(this.nginxBinary, nginxArgs, { cwd: this.dir, stdio: ["ignore", "pipe", "pipe"] });
    this.nginx = nginx;
    const onData = lineSplitter((line) => this.options.onLine?.("nginx", line));
    nginx.stdout?.on("data", onData);
    nginx.stderr?.on("data", onData);
    this.nginxExit = new Promise<void>((resolve) => {
      nginx.once("exit", (code, signal) => {
        this.nginx = null;
        if (!this.stopping) this.say(`nginx exited unexpectedly (${signal ?? `code ${code}`}); see ${this.errorLogPath}`);
        resolve();
      });
    });
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(host, port))) {
      if (this.nginx === null || Date.now() > deadline) {
        const log = existsSync(this.errorLogPath) ? readFileSync(this.errorLogPath, "utf8") : "";
        throw new Error(`nginx did not start listening on ${host}:${port}:\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    this.say(`nginx listening on ${this.url} (config ${this.configPath})`);
  }

  /** Stops nginx (it finishes what it has in flight) and drains every replica with SIGTERM. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.poller) clearInterval(this.poller);
    const nginx = this.nginx;
    if (nginx) {
      nginx.kill("SIGQUIT");
      const timer = setTimeout(() => nginx.kill("SIGKILL"), 15_000);
      void this.nginxExit.then(() => clearTimeout(timer));
    }
    await Promise.all([this.nginxExit, ...this.replicas.map((r) => r.stop(this.options.stopTimeoutMs ?? 60_000))]);
    this.changed();
  }

  /** After stop(): deletes the working directory (config, logs) if the cluster made it; a given --work-dir is kept. */
  removeWorkDir(): void {
    if (!this.stopping) throw new Error("stop the cluster before removing its working directory");
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Threads for each replica when the user did not say: the machine's cores shared out, at least 1. */
export function threadsPerReplica(replicas: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / replicas));
}
