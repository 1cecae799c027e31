/**
 * The `npm run cluster` command (entry point: ./main.ts): `--replicas 3 MODEL.gguf [rerankd serve
 * flags]` runs N rerankd replicas on loopback ports behind nginx, on one machine. The reference for
 * running rerankd behind any L7 balancer.
 */
import { parseArgs } from "node:util";
import { UsageError, parseServeArgs } from "../cli/serve-options.js";
import { Cluster, threadsPerReplica } from "./supervisor.js";

const CLUSTER_FLAGS = {
  replicas: { type: "string", value: "N", help: "rerankd processes to run (default 2)" },
  host: { type: "string", value: "HOST", help: "address nginx listens on (default 127.0.0.1)" },
  port: { type: "string", value: "PORT", help: "port nginx listens on (default 8000; 0 = any free port)" },
  "replica-ports": { type: "string", value: "P1,P2,..", help: "the replicas' loopback ports (default: free ports)" },
  nginx: { type: "string", value: "PATH", help: "the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)" },
  "work-dir": { type: "string", value: "DIR", help: "where the generated nginx.conf, its logs and temp files go, kept after exit (default: a temp dir, removed at exit)" },
  "fail-timeout": { type: "string", value: "SECONDS", help: "how long nginx keeps a failed replica out of rotation (default 5)" },
  help: { type: "boolean", help: "show this help" },
} as const;

function help(): string {
  const rows = Object.entries(CLUSTER_FLAGS).map(([name, spec]) => {
    const left = `  --${name}${"value" in spec ? ` ${spec.value}` : ""}`;
    return `${left.padEnd(30)} ${spec.help}`;
  });
  return [
    "Usage: npm run cluster -- [cluster options] [MODEL] [rerankd serve options]",
    "",
    "Runs N `rerankd serve` replicas on loopback ports behind nginx (least connections, passive",
    "health checks, retry on another replica, keep-alive), restarts a replica that exits, and prints",
    "the URL. Every option not listed here goes to each replica's `rerankd serve` (see rerankd serve",
    "--help); each replica gets --threads (cores / replicas) unless you give --threads.",
    "",
    "Cluster options:",
    ...rows,
  ].join("\n");
}

/** Splits argv into the cluster's own flags and the arguments forwarded to `rerankd serve`. */
export function splitClusterArgs(argv: readonly string[]): { own: string[]; serve: string[] } {
  const own: string[] = [];
  const serve: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = arg.startsWith("--") ? arg.slice(2).split("=")[0] : "";
    if (name in CLUSTER_FLAGS) {
      own.push(arg);
      const spec = CLUSTER_FLAGS[name as keyof typeof CLUSTER_FLAGS];
      if (spec.type === "string" && !arg.includes("=") && i + 1 < argv.length) own.push(argv[++i]);
    } else {
      serve.push(arg);
    }
  }
  return { own, serve };
}

function whole(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} must be a whole number, not "${text}"`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${name} must be between ${min} and ${max}, not ${value}`);
  return value;
}

/** Runs the command; resolves with an exit code, or -1 while the cluster keeps running. */
export async function runClusterCommand(argv: string[]): Promise<number> {
  const { own, serve } = splitClusterArgs(argv);
  let values;
  try {
    values = parseArgs({
      args: own,
      options: Object.fromEntries(Object.entries(CLUSTER_FLAGS).map(([k, v]) => [k, { type: v.type }])),
      strict: true,
    }).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    console.error(`rerankd cluster: ${(error as Error).message}\n\n${help()}`);
    return 2;
  }
  if (values.help) {
    console.log(help());
    return 0;
  }
  let cluster: Cluster;
  try {
    const str = (k: string) => values[k] as string | undefined;
    const replicas = whole("replicas", str("replicas"), 2, 1, 64);
    const replicaPorts = str("replica-ports")
      ?.split(",")
      .map((p) => whole("replica-ports", p.trim(), 0, 1, 65535));
    if (replicaPorts && replicaPorts.length !== replicas) throw new UsageError(`--replica-ports: ${replicaPorts.length} ports for ${replicas} replicas`);
    if (serve.some((a) => /^--(host|port)(=|$)/.test(a))) {
      throw new UsageError("--host and --port are nginx's here; the replicas listen on loopback ports (--replica-ports)");
    }
    const serveArgs = [...serve];
    if (!serve.some((a) => /^--threads(=|$)/.test(a))) serveArgs.push("--threads", String(threadsPerReplica(replicas)));
    const parsed = parseServeArgs(serveArgs, process.env);
    if (parsed === "help") {
      console.log(help());
      return 0;
    }
    const failTimeout = str("fail-timeout");
    cluster = await Cluster.start({
      replicas,
      serveArgs,
      host: str("host") ?? "127.0.0.1",
      port: whole("port", str("port"), 8000, 0, 65535),
      replicaPorts,
      nginx: str("nginx"),
      workDir: str("work-dir"),
      maxBodyBytes: parsed.maxBodyBytes,
      requestTimeoutSeconds: parsed.requestTimeoutMs / 1000,
      failTimeoutSeconds: failTimeout === undefined ? undefined : whole("fail-timeout", failTimeout, 5, 1, 3600),
      stopTimeoutMs: parsed.shutdownTimeoutMs + 10_000,
      onLine: (source, line) => console.log(`[${source}] ${line}`),
    });
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`rerankd cluster: ${error.message}\nSee 'npm run cluster -- --help'.`);
      return 2;
    }
    console.error(`rerankd cluster: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }

  let stopping = false;
  const stop = () => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    console.log("rerankd cluster: stopping (nginx finishes in-flight requests, replicas drain) ...");
    void cluster.stop().then(() => {
      cluster.removeWorkDir();
      process.exit(0);
    });
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  await cluster.waitReady(1, 24 * 3600_000);
  console.log(`rerankd cluster: ${cluster.replicas.length} replica(s) behind nginx at ${cluster.url}`);
  return -1;
}
