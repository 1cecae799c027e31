/**
 * One replica's model made to fail, in a cluster of three behind nginx: its errors must not take the
 * cluster down. Here with the hardening work's fault-injection hook (src/server/fault-injection.ts):
 * RERANKD_FAULT_INJECT=evaluate:every=1 on one replica makes every evaluation of its real llama.cpp
 * context fail, so it answers every scoring request with 500 while /health stays 200 (the process
 * is up, the engine is broken). nginx retries the 500 on a healthy replica and, after 3 failures,
 * keeps it out of rotation for fail_timeout. Every request must succeed on the two healthy replicas.
 * (./corrupt-model.test.ts: the other way a model fails, one that cannot load.)
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import type { Cluster } from "../../src/cluster/supervisor.js";
import { describeLoad, machineLoad, readAccessLog, rerankBody, runLoad, startTestCluster, stopTestCluster } from "./support.js";

const BROKEN = 2;
let cluster: Cluster | undefined;
after(async () => {
  await stopTestCluster(cluster);
});

/** rerankd_requests_total by status for the scoring route, from one replica's /metrics. */
async function scoringStatuses(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^rerankd_requests_total\{([^}]*)\} (\d+)/gm)) {
    if (!/route="\/v1\/rerank"/.test(m[1])) continue;
    const status = /status="(\d+)"/.exec(m[1])?.[1] ?? "?";
    counts[status] = (counts[status] ?? 0) + Number(m[2]);
  }
  return counts;
}

test("a replica whose engine fails every evaluation (fault-injection hook) costs no request: nginx retries its 500s elsewhere", async (t) => {
  cluster = await startTestCluster({
    replicas: 3,
    failTimeoutSeconds: 2,
    replicaEnv: (index) => (index === BROKEN ? { RERANKD_FAULT_INJECT: "evaluate:every=1" } : {}),
  });
  const broken = cluster.replicas[BROKEN];
  assert.match(broken.output(), /TESTING AID: RERANKD_FAULT_INJECT is set/);
  // The fault is real: asked directly, the replica fails the request, and still says it is healthy.
  const direct = await fetch(`${broken.url}/v1/rerank`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(rerankBody(0)) });
  assert.equal(direct.status, 500);
  assert.equal(((await direct.json()) as { error: { type: string } }).error.type, "InternalServerError");
  assert.equal((await fetch(`${broken.url}/health`)).status, 200);

  const load = await runLoad({ url: cluster.url, concurrency: 6, durationMs: 8000 });
  const brokenStatuses = await scoringStatuses(broken.url);
  t.diagnostic(
    `${describeLoad("3 replicas, one failing every evaluation", load)}; the failing replica answered ${JSON.stringify(brokenStatuses)} ` +
      `(including the direct request) and stayed up (${broken.exits.length} exits); ${machineLoad()}`,
  );
  assert.equal(load.failed, 0, load.failures.slice(0, 10).join("\n"));
  assert.ok((brokenStatuses["500"] ?? 0) >= 2, "nginx did send it traffic, and it failed it");
  assert.equal(brokenStatuses["200"], undefined);
  assert.equal(load.byUpstream[String(broken.port)], undefined, "no answer came from the failing replica");
  assert.equal(broken.exits.length, 0, "an engine failure does not kill the process");

  await cluster.stop();
  const retriedFrom = readAccessLog(cluster).filter((l) => l.upstreams[0] === `127.0.0.1:${broken.port}` && l.upstreamStatuses[0] === "500");
  t.diagnostic(`nginx retried ${retriedFrom.length} requests that the failing replica had answered 500`);
  assert.ok(retriedFrom.length >= 1);
  for (const l of retriedFrom) assert.equal(l.status, 200);
  cluster.removeWorkDir();
  cluster = undefined;
});
