/**
 * Throughput through nginx with 1, 2 and 3 replicas of the tiny fixture, each replica on one
 * llama.cpp thread, under the same bounded closed-loop load over loopback. The figures are printed
 * (docs/RELIABILITY.md quotes them); what is asserted is what must hold on any machine: every
 * request succeeds, and least-connections spreads the load over every replica. Speed-up is not
 * asserted: on a 2-core machine shared by the load generator, nginx and the replicas, it flattens.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { coresBusy, cpuSnapshot, describeLoad, machineLoad, runLoad, startTestCluster, stopTestCluster, type LoadResult } from "./support.js";

const CONCURRENCY = 8;
const WARMUP_MS = 1000;
const MEASURE_MS = 5000;

const results: Array<{ replicas: number; load: LoadResult }> = [];

for (const replicas of [1, 2, 3]) {
  test(`throughput with ${replicas} replica(s) behind nginx`, async (t) => {
    const cluster = await startTestCluster({ replicas });
    try {
      await runLoad({ url: cluster.url, concurrency: CONCURRENCY, durationMs: WARMUP_MS });
      const cpuBefore = cpuSnapshot(cluster);
      const load = await runLoad({ url: cluster.url, concurrency: CONCURRENCY, durationMs: MEASURE_MS });
      const cores = coresBusy(cpuBefore, cpuSnapshot(cluster));
      t.diagnostic(`${describeLoad(`${replicas} replica(s), concurrency ${CONCURRENCY}`, load)}; ${machineLoad()}`);
      const perRequestMs = (cores: number) => (cores * load.seconds * 1000) / load.ok;
      const ceiling = availableParallelism() / (perRequestMs(cores.total) / 1000);
      t.diagnostic(
        `cores busy: replicas ${cores.replicas.toFixed(2)}, nginx ${cores.nginx.toFixed(2)}, load generator ${cores.loadGenerator.toFixed(2)}, ` +
          `total ${cores.total.toFixed(2)} of ${availableParallelism()}; CPU per request: replicas ${perRequestMs(cores.replicas).toFixed(1)} ms, ` +
          `nginx ${perRequestMs(cores.nginx).toFixed(2)} ms, load generator ${perRequestMs(cores.loadGenerator).toFixed(1)} ms; ` +
          `so this machine's ceiling, all cores on this work: ${ceiling.toFixed(0)} req/s`,
      );
      results.push({ replicas, load });
      assert.equal(load.failed, 0, load.failures.slice(0, 5).join("\n"));
      assert.ok(load.ok > 0);
      const ports = cluster.replicas.map((r) => String(r.port));
      for (const port of ports) {
        const share = (load.byUpstream[port] ?? 0) / load.ok;
        assert.ok(share >= 0.05, `replica on port ${port} served ${(share * 100).toFixed(1)} % of requests: least_conn should spread load (${JSON.stringify(load.byUpstream)})`);
      }
      assert.deepEqual(Object.keys(load.byUpstream).sort(), [...ports].sort(), "only the cluster's replicas answered");
    } finally {
      await stopTestCluster(cluster);
    }
  });
}

test("scaling summary", (t) => {
  assert.equal(results.length, 3);
  const base = results[0].load.requestsPerSecond;
  for (const { replicas, load } of results) {
    t.diagnostic(`${replicas} replica(s): ${load.requestsPerSecond.toFixed(1)} req/s, ${(load.requestsPerSecond / base).toFixed(2)}x of 1 replica`);
  }
});
