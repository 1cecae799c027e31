/**
 * deploy/kubernetes, checked against the server it deploys. Every manifest parses; the base, the GPU
 * overlay and the queue-autoscaling component are rendered as `kubectl apply -k` would (./kustomize.ts)
 * and then: the container's arguments are a valid `rerankd serve` command line; its port is the
 * named container port the Service, the probes and the Prometheus annotations use; the probe paths
 * and the metric the HPA scales on are served by a real server started with those very arguments
 * (on the tiny model); the grace period covers preStop plus --shutdown-timeout; the model path is
 * the file the model Job writes on the volume the pods mount; the user is the image's; the GPU
 * overlay asks for a GPU and runs the CUDA image with --device auto.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseConvertArgs } from "../../src/cli/convert.js";
import { parseServeArgs, type ServeOptions } from "../../src/cli/serve-options.js";
import { startServer, type RunningServer } from "../../src/cli/serve.js";
import { buildTinyGemma } from "../support/tiny-gemma.js";
import { one, readDockerfile } from "./dockerfile.js";
import { podSpec, readYamlDocuments, render, type Json, type JsonObject, type Resource } from "./kustomize.js";

const REPO = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
const K8S = path.join(REPO, "deploy/kubernetes");
const BASE = path.join(K8S, "base");
const GPU = path.join(K8S, "overlays/gpu");
const QUEUE = path.join(K8S, "components/queue-autoscaling");

const work = mkdtempSync(path.join(tmpdir(), "rerankd-k8s-test-"));
const keyFile = path.join(work, "api-keys");
writeFileSync(keyFile, "test-key\n");
after(() => rmSync(work, { recursive: true, force: true }));

// ---- helpers over rendered resources ----

function find(resources: Resource[], kind: string, name?: string): Resource {
  const found = resources.filter((r) => r.kind === kind && (name === undefined || r.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0];
}

interface Container extends JsonObject {
  name: string;
  image: string;
}

const containers = (r: Resource, list = "containers") => (podSpec(r)[list] as Container[] | undefined) ?? [];
const obj = (value: Json | undefined): JsonObject => {
  assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), `expected a mapping, got ${JSON.stringify(value)}`);
  return value;
};
const strings = (value: Json | undefined): string[] => {
  assert.ok(Array.isArray(value) && value.every((v) => typeof v === "string"), `expected a list of strings, got ${JSON.stringify(value)}`);
  return value as string[];
};

/** "4" → 4, "1500m" → 1.5. */
function cpuQuantity(q: Json | undefined): number {
  const text = String(q);
  return text.endsWith("m") ? Number(text.slice(0, -1)) / 1000 : Number(text);
}

/** The value after `--flag` in an argument list. */
function flag(args: string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
}

/** The serve options of the Deployment's container, parsed by the CLI itself (the key file swapped for a readable one). */
function serveOptions(container: Container): { args: string[]; options: ServeOptions } {
  const args = strings(container.args);
  assert.equal(args[0], "serve", "the container runs `rerankd serve` (the image's entrypoint is rerankd)");
  const readable = args.slice(1).map((a, i, all) => (all[i - 1] === "--api-key-file" ? keyFile : a));
  const options = parseServeArgs(readable, {});
  assert.ok(options !== "help");
  return { args, options };
}

/** Where a path inside the container comes from: the volume mounted over it, and that volume. */
function mountOf(r: Resource, container: Container, file: string): { mount: JsonObject; volume: JsonObject } {
  const mounts = ((container.volumeMounts as JsonObject[] | undefined) ?? []).filter((m) => file.startsWith(`${String(m.mountPath)}/`));
  assert.equal(mounts.length, 1, `${file} is on exactly one mounted volume of ${container.name}`);
  const volumes = (podSpec(r).volumes as JsonObject[]).filter((v) => v.name === mounts[0].name);
  assert.equal(volumes.length, 1, `volume ${String(mounts[0].name)}`);
  return { mount: mounts[0], volume: volumes[0] };
}

function selectorMatchesPods(selector: JsonObject, deployment: Resource): void {
  const podLabels = obj(obj(obj(deployment.spec).template).metadata).labels as JsonObject;
  for (const [k, v] of Object.entries(obj(selector))) assert.equal(podLabels[k], v, `selector ${k}=${String(v)} matches the pods`);
}

// ---- a real server, started with the base Deployment's own arguments ----

let server: RunningServer;
let serverOptions: ServeOptions;
before(async () => {
  const model = await buildTinyGemma();
  const deployment = find(render(BASE), "Deployment", "rerankd");
  const { options } = serveOptions(containers(deployment)[0]);
  serverOptions = options;
  server = await startServer({ ...options, model: model.path, host: "127.0.0.1", port: 0, threads: 1, logLevel: "silent" }, () => undefined, {});
  await server.ready;
});
after(async () => {
  await server?.close();
});

// ---- the tests ----

test("every manifest under deploy/kubernetes parses as YAML, and every resource names its apiVersion, kind and name", () => {
  const files = readdirSync(K8S, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 10, files.join(", "));
  for (const file of files) {
    for (const doc of readYamlDocuments(path.join(K8S, file))) {
      const d = obj(doc);
      if (file.endsWith("kustomization.yaml") || file.endsWith("-values.yaml")) continue;
      assert.equal(typeof d.apiVersion, "string", file);
      assert.equal(typeof d.kind, "string", file);
      assert.equal(typeof obj(d.metadata).name, "string", file);
    }
  }
  const kinds = render(BASE).map((r) => `${r.kind}/${r.metadata.name}`).sort();
  assert.deepEqual(kinds, [
    "Deployment/rerankd",
    "HorizontalPodAutoscaler/rerankd",
    "Job/rerankd-model",
    "PersistentVolumeClaim/rerankd-models",
    "PodDisruptionBudget/rerankd",
    "Service/rerankd",
  ]);
});

for (const [label, dir] of [
  ["base", BASE],
  ["GPU overlay", GPU],
] as const) {
  test(`${label}: the Deployment's flags are rerankd serve's, and its port is the one the Service, probes and scrape annotations use`, () => {
    const resources = render(dir);
    const deployment = find(resources, "Deployment", "rerankd");
    const [container] = containers(deployment);
    const { args, options } = serveOptions(container);
    assert.equal(options.host, "0.0.0.0", "reachable from the Service");
    const ports = container.ports as JsonObject[];
    const http = ports.find((p) => p.name === "http");
    assert.ok(http, "a container port named http");
    assert.equal(http.containerPort, options.port);

    const service = find(resources, "Service", "rerankd");
    const servicePorts = obj(service.spec).ports as JsonObject[];
    assert.ok(servicePorts.every((p) => p.targetPort === "http"));
    selectorMatchesPods(obj(obj(service.spec).selector), deployment);

    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const get = obj(obj(container[probe]).httpGet);
      assert.equal(get.port, "http", `${probe} uses the named port`);
    }
    assert.equal(obj(obj(container.readinessProbe).httpGet).path, "/health", "readiness on /health");
    assert.equal(obj(obj(container.livenessProbe).httpGet).path, "/ping", "liveness on /ping");

    const annotations = obj(obj(obj(obj(deployment.spec).template).metadata).annotations);
    assert.equal(annotations["prometheus.io/port"], String(options.port));
    assert.equal(annotations["prometheus.io/path"], "/metrics");

    // The API keys come from the Secret the example creates, mounted where --api-key-file reads.
    const keyPath = flag(args, "api-key-file");
    assert.ok(keyPath, "--api-key-file");
    const { volume, mount } = mountOf(deployment, container, keyPath);
    assert.equal(mount.readOnly, true);
    const secret = obj(volume.secret);
    const [example] = readYamlDocuments(path.join(K8S, "secret.example.yaml")).map(obj);
    assert.equal(secret.secretName, obj(example.metadata).name);
    const items = secret.items as JsonObject[];
    assert.ok(items.some((i) => `${String(mount.mountPath)}/${String(i.path)}` === keyPath && String(i.key) in obj(example.stringData)));
  });

  test(`${label}: shutdown and probes agree with --shutdown-timeout, resources with --threads, the user with the image`, () => {
    const deployment = find(render(dir), "Deployment", "rerankd");
    const [container] = containers(deployment);
    const { options } = serveOptions(container);
    const pod = podSpec(deployment);
    const preStop = strings(obj(obj(obj(container.lifecycle).preStop).exec).command);
    assert.equal(preStop[0], "sleep");
    const preStopSeconds = Number(preStop[1]);
    assert.ok(preStopSeconds >= 3, "long enough for endpoint removal to reach the balancers");
    const shutdownSeconds = options.shutdownTimeoutMs / 1000;
    assert.equal(flag(strings(container.args), "shutdown-timeout"), String(shutdownSeconds), "--shutdown-timeout is explicit");
    const grace = Number(pod.terminationGracePeriodSeconds);
    assert.ok(grace >= preStopSeconds + shutdownSeconds + 5, `grace ${grace} s < preStop ${preStopSeconds} + shutdown ${shutdownSeconds} + 5`);
    const liveness = obj(container.livenessProbe);
    assert.ok(Number(liveness.periodSeconds) * Number(liveness.failureThreshold) > shutdownSeconds, "a drain never looks dead to the liveness probe");
    const startup = obj(container.startupProbe);
    assert.ok(Number(startup.periodSeconds) * Number(startup.failureThreshold) >= 120, "the startup probe allows minutes for the model to load");

    const resources = obj(container.resources);
    assert.ok(cpuQuantity(obj(resources.requests).cpu) >= options.threads, "--threads fits the CPU request");
    assert.ok(obj(resources.requests).memory && obj(resources.limits).memory);

    const dockerfile = readDockerfile(path.join(REPO, dir === GPU ? "Dockerfile.cuda" : "Dockerfile"));
    const runtime = dockerfile.stages[dockerfile.stages.length - 1];
    const [uid, gid] = one(runtime, "USER").args.split(":").map(Number);
    const security = obj(pod.securityContext);
    assert.deepEqual([security.runAsNonRoot, security.runAsUser, security.runAsGroup, security.fsGroup], [true, uid, gid, gid]);
    assert.equal(obj(container.securityContext).readOnlyRootFilesystem, true);
    assert.ok(mountOf(deployment, container, "/tmp/tsx").volume.emptyDir !== undefined, "a writable /tmp for tsx's cache");
  });

  test(`${label}: the model the replicas serve is the file the model Job writes, on the volume they share`, () => {
    const resources = render(dir);
    const deployment = find(resources, "Deployment", "rerankd");
    const [container] = containers(deployment);
    const { options } = serveOptions(container);
    const served = mountOf(deployment, container, options.model);
    assert.equal(served.mount.readOnly, true);
    const claim = obj(served.volume.persistentVolumeClaim).claimName;
    assert.equal(find(resources, "PersistentVolumeClaim").metadata.name, claim);

    const [wait] = containers(deployment, "initContainers");
    assert.ok(strings(wait.command).includes(options.model), "the init container waits for the served file");
    assert.equal(wait.image, container.image);

    const job = find(resources, "Job", "rerankd-model");
    const [convert] = containers(job);
    const jobArgs = strings(convert.args);
    assert.equal(jobArgs[0], "convert");
    const command = parseConvertArgs(jobArgs.slice(1));
    assert.ok(command !== "help");
    assert.equal(command.output, options.model);
    assert.match(options.model, new RegExp(`\\.${command.outtype}\\.gguf$`), "the file name says its type");
    const written = mountOf(job, convert, command.output);
    assert.notEqual(written.mount.readOnly, true);
    assert.equal(obj(written.volume.persistentVolumeClaim).claimName, claim);
    const hfHome = ((convert.env as JsonObject[]) ?? []).find((e) => e.name === "HF_HOME");
    assert.ok(hfHome && String(hfHome.value).startsWith(`${String(written.mount.mountPath)}/`), "the Hub download is cached on the volume too");
    assert.equal(convert.image, container.image);
  });
}

test("the probe paths and the scrape path answer on a server started with the Deployment's arguments", async () => {
  const deployment = find(render(BASE), "Deployment", "rerankd");
  const [container] = containers(deployment);
  for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    const probePath = String(obj(obj(container[probe]).httpGet).path);
    const response = await fetch(`${server.url}${probePath}`);
    assert.equal(response.status, 200, `${probe} ${probePath} on a ready server`);
  }
  const metrics = await fetch(`${server.url}/metrics`);
  assert.equal(metrics.status, 200, "/metrics needs no API key (Prometheus scrapes without one)");
  assert.ok(serverOptions.apiKeys.length > 0, "the Deployment's server requires API keys");
  const rerank = await fetch(`${server.url}/v1/rerank`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(rerank.status, 401, "and scoring does need one");
});

test("PodDisruptionBudget and HorizontalPodAutoscaler target the Deployment, and a disruption always leaves a replica serving", () => {
  const resources = render(BASE);
  const deployment = find(resources, "Deployment", "rerankd");
  const pdb = find(resources, "PodDisruptionBudget", "rerankd");
  selectorMatchesPods(obj(obj(pdb.spec).selector).matchLabels as JsonObject, deployment);
  const hpa = find(resources, "HorizontalPodAutoscaler", "rerankd");
  const spec = obj(hpa.spec);
  assert.deepEqual(obj(spec.scaleTargetRef), { apiVersion: "apps/v1", kind: "Deployment", name: "rerankd" });
  assert.ok(Number(spec.minReplicas) > Number(obj(pdb.spec).maxUnavailable), "minReplicas > PDB maxUnavailable");
  assert.ok(Number(spec.minReplicas) >= 2, "two replicas at least: one can die while the other serves");
  const metrics = spec.metrics as JsonObject[];
  assert.ok(metrics.some((m) => m.type === "Resource" && obj(m.resource).name === "cpu"));
  const rollout = obj(obj(obj(deployment.spec).strategy).rollingUpdate);
  assert.equal(rollout.maxUnavailable, 0, "a rollout starts a new replica before it stops an old one");
});

test("queue-depth autoscaling: the HPA's Pods metric is the adapter's rule, and rerankd exports that metric", async () => {
  const hpa = find(render(BASE, [QUEUE]), "HorizontalPodAutoscaler", "rerankd");
  const metrics = obj(hpa.spec).metrics as JsonObject[];
  assert.equal(metrics.length, 2, "CPU and the queue");
  const pods = obj(metrics.find((m) => m.type === "Pods")?.pods);
  const name = String(obj(pods.metric).name);
  const target = obj(pods.target);
  assert.equal(target.type, "AverageValue");
  assert.ok(Number(target.averageValue) > 0 && Number(target.averageValue) < serverOptions.maxQueuedTokens, "scales out before replicas answer 429");

  const [values] = readYamlDocuments(path.join(QUEUE, "prometheus-adapter-values.yaml")).map(obj);
  const rules = obj(values.rules).custom as JsonObject[];
  const rule = rules.find((r) => obj(r.name).as === name);
  assert.ok(rule, `an adapter rule exposes ${name}`);
  const series = /^(\w+)\{/.exec(String(rule.seriesQuery))?.[1];
  assert.ok(series);
  assert.equal(new RegExp(String(obj(rule.name).matches)).test(series), true);
  assert.deepEqual(Object.keys(obj(obj(rule.resources).overrides)).sort(), ["namespace", "pod"], "a per-pod metric");

  const text = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(text, new RegExp(`^# TYPE ${series} gauge$`, "m"), `rerankd's /metrics exports the gauge ${series}`);
  assert.match(text, new RegExp(`^${series} \\d+`, "m"));
});

test("GPU overlay: one NVIDIA GPU per replica, the CUDA image, tolerated on GPU nodes, --device auto, f16", () => {
  const resources = render(GPU);
  const deployment = find(resources, "Deployment", "rerankd");
  const [container] = containers(deployment);
  const { options } = serveOptions(container);
  assert.equal(options.device, "auto", "--device auto lets llama.cpp find CUDA");
  assert.match(options.model, /\.f16\.gguf$/);
  assert.equal(obj(obj(container.resources).limits)["nvidia.com/gpu"], 1);
  assert.match(container.image, /^rerankd:.*-cuda$/);
  for (const c of containers(deployment, "initContainers")) assert.equal(c.image, container.image);
  const tolerations = podSpec(deployment).tolerations as JsonObject[];
  assert.ok(tolerations.some((t) => t.key === "nvidia.com/gpu" && t.effect === "NoSchedule"));
  const base = find(render(BASE), "Deployment", "rerankd");
  assert.match(containers(base)[0].image, /^rerankd:\d+\.\d+\.\d+$/);
  assert.equal(serveOptions(containers(base)[0]).options.device, "cpu", "the CPU base never probes for a GPU");
  // The same Job writes the overlay's file.
  const job = parseConvertArgs(strings(containers(find(resources, "Job", "rerankd-model"))[0].args).slice(1));
  assert.ok(job !== "help");
  assert.deepEqual([job.output, job.outtype], [options.model, "f16"]);
  // The versions agree: the overlay's tag is the base's plus -cuda.
  assert.equal(container.image, `${containers(base)[0].image}-cuda`);
  assert.match(readFileSync(path.join(GPU, "kustomization.yaml"), "utf8"), /nvidia\.com\/gpu/);
});
