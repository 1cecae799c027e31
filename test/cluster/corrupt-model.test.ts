/**
 * One replica's model made to fail by a corrupt GGUF (the fixture cut short, so llama.cpp finds
 * tensor data past the end of the file), in a cluster of three behind nginx: the replica answers 503
 * while loading, fails to load, exits 1, and is restarted by the supervisor with a growing back-off,
 * over and over. Under load through nginx every request must succeed on the two healthy replicas.
 * (./faulty-replica.test.ts: a replica whose engine fails while it is up.)
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Cluster } from "../../src/cluster/supervisor.js";
import { describeLoad, machineLoad, runLoad, startTestCluster, stopTestCluster } from "./support.js";

const BROKEN = 2;
const dir = mkdtempSync(path.join(tmpdir(), "rerankd-corrupt-"));
let cluster: Cluster | undefined;
after(async () => {
  await stopTestCluster(cluster);
  rmSync(dir, { recursive: true, force: true });
});

test("a replica whose model cannot load crash-loops without costing a single request", async (t) => {
  const corrupt = path.join(dir, "corrupt.gguf");
  cluster = await startTestCluster({
    replicas: 3,
    failTimeoutSeconds: 2,
    waitForReady: 2,
    modelFor: (index, fixture) => {
      if (index !== BROKEN) return fixture;
      const bytes = readFileSync(fixture);
      writeFileSync(corrupt, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      return corrupt;
    },
  });
  const broken = cluster.replicas[BROKEN];
  // Let it fail once before the load, and keep the load going over its next restart and failure.
  await cluster.waitFor(() => broken.exits.length >= 1, 120_000, "the broken replica to fail");
  const exitsBefore = broken.exits.length;
  const load = await runLoad({
    url: cluster.url,
    concurrency: 6,
    durationMs: 60_000,
    until: () => broken.exits.length < exitsBefore + 1,
  });
  t.diagnostic(
    `${describeLoad("3 replicas, one on a corrupt model", load)}; the broken replica started ${broken.starts} times, ` +
      `exit codes ${JSON.stringify(broken.exits.map((e) => e.code))}, never ready; ${machineLoad()}`,
  );
  assert.equal(broken.readyCount, 0);
  assert.ok(broken.exits.length >= exitsBefore + 1, "it kept failing and being restarted during the load");
  for (const exit of broken.exits) assert.equal(exit.code, 1);
  assert.match(broken.output(), /model is corrupted or incomplete|cannot serve/);
  assert.equal(load.failed, 0, load.failures.slice(0, 10).join("\n"));
  assert.equal(load.byUpstream[String(broken.port)], undefined, "the broken replica never answered a scoring request");
  const healthy = cluster.replicas.filter((r) => r.index !== BROKEN).map((r) => String(r.port));
  assert.deepEqual(Object.keys(load.byUpstream).sort(), healthy.sort());
});
