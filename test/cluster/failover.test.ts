/**
 * A replica that goes away under load, behind nginx, on three replicas of the tiny fixture:
 *  - SIGTERM (a rolling update, a scale-down, a node drain): the replica drains (finishes what it
 *    has, refuses new work with 503) and exits 0; nginx sends the refused requests to another
 *    replica. Zero requests may fail.
 *  - SIGKILL (OOM killer, a crash): requests in flight on it lose their connection; nginx re-sends
 *    them to another replica (scoring is idempotent), so the failures are at most the requests that
 *    were in flight on it, every other request succeeds, and once the supervisor has restarted it,
 *    the replica serves again.
 * Figures are printed for docs/RELIABILITY.md.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Cluster, Replica } from "../../src/cluster/supervisor.js";
import { describeLoad, machineLoad, readAccessLog, runLoad, startTestCluster, stopTestCluster } from "./support.js";

const CONCURRENCY = 6;
/** Load runs this long before the signal, and at least this long after the replica is back. */
const BEFORE_MS = 1500;
const AFTER_READY_MS = 2000;
/** Hard bound on one scenario's load. */
const MAX_LOAD_MS = 120_000;

let cluster: Cluster;
before(async () => {
  cluster = await startTestCluster({ replicas: 3, failTimeoutSeconds: 2 });
});
after(async () => {
  await stopTestCluster(cluster);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Requests waiting for or in evaluation on one replica, from its own /metrics. */
async function inFlight(replica: Replica): Promise<number> {
  const text = await (await fetch(`${replica.url}/metrics`)).text();
  return Number(/^rerankd_queue_requests (\d+)/m.exec(text)?.[1] ?? NaN);
}

/**
 * Load through nginx; `signal` is sent to `victim` after BEFORE_MS; the load goes on until the
 * supervisor has restarted the victim, it is ready, it has answered a request through nginx
 * (it rejoined), and AFTER_READY_MS more have passed.
 */
async function loadAcrossRestart(victim: Replica, signal: NodeJS.Signals) {
  const exitsBefore = victim.exits.length;
  const readyBefore = victim.readyCount;
  const victimAddress = `127.0.0.1:${victim.port}`;
  let readyAt = Infinity;
  let rejoinedAt = Infinity;
  let servedAfterRestart = 0;
  const start = performance.now();
  const loading = runLoad({
    url: cluster.url,
    concurrency: CONCURRENCY,
    durationMs: MAX_LOAD_MS,
    until: () => performance.now() - start < rejoinedAt + AFTER_READY_MS,
    onAnswer: ({ status, upstream, at }) => {
      if (status === 200 && upstream === victimAddress && at > readyAt) {
        servedAfterRestart++;
        rejoinedAt = Math.min(rejoinedAt, at);
      }
    },
  });
  await sleep(BEFORE_MS);
  const inFlightAtSignal = await inFlight(victim);
  const signalledAt = performance.now() - start;
  assert.ok(victim.kill(signal), `could not send ${signal}`);
  await cluster.waitFor(() => victim.exits.length > exitsBefore, 60_000, `replica ${victim.index} to exit`);
  const exit = victim.exits[victim.exits.length - 1];
  await cluster.waitFor(() => victim.readyCount > readyBefore, 120_000, `replica ${victim.index} to be ready again`);
  readyAt = performance.now() - start;
  const load = await loading;
  return { load, exit, inFlightAtSignal, signalledAt, readyAt, rejoinedAt, servedAfterRestart, victimAddress };
}

test("SIGTERM one replica under load: it drains and exits 0, and no request fails", async (t) => {
  const victim = cluster.replicas[0];
  const r = await loadAcrossRestart(victim, "SIGTERM");
  t.diagnostic(
    `${describeLoad("SIGTERM replica 0 of 3", r.load)}; in flight on it at SIGTERM: ${r.inFlightAtSignal}; ` +
      `it exited ${r.exit.signal ?? `code ${r.exit.code}`} ${(r.exit.at / 1000).toFixed(1)} s into the cluster's life, ` +
      `ready again ${((r.readyAt - r.signalledAt) / 1000).toFixed(1)} s after the signal, served ${r.servedAfterRestart} after; ${machineLoad()}`,
  );
  assert.deepEqual([r.exit.code, r.exit.signal], [0, null], `the drained replica should exit 0:\n${victim.output()}`);
  assert.equal(r.load.failed, 0, r.load.failures.slice(0, 10).join("\n"));
  assert.ok(r.servedAfterRestart > 0, "the restarted replica rejoined");
});

test("SIGKILL one replica under load: failures at most the requests in flight on it, the rest succeed, its restart rejoins", async (t) => {
  const victim = cluster.replicas[1];
  const r = await loadAcrossRestart(victim, "SIGKILL");
  t.diagnostic(
    `${describeLoad("SIGKILL replica 1 of 3", r.load)}; in flight on it at SIGKILL: ${r.inFlightAtSignal}; ` +
      `ready again ${((r.readyAt - r.signalledAt) / 1000).toFixed(1)} s after the kill, first answer through nginx ` +
      `${((r.rejoinedAt - r.readyAt) / 1000).toFixed(1)} s after ready, ${r.servedAfterRestart} answers after; ${machineLoad()}`,
  );
  assert.equal(r.exit.signal, "SIGKILL");
  // A request can only fail if the killed replica had it; at most CONCURRENCY were in flight anywhere.
  assert.ok(r.load.failed <= CONCURRENCY, `${r.load.failed} failed:\n${r.load.failures.join("\n")}`);
  for (const failure of r.load.failures) assert.ok(failure.includes(r.victimAddress), `a failure not caused by the killed replica: ${failure}`);
  assert.equal(r.load.ok + r.load.failed, r.load.sent);
  assert.ok(r.servedAfterRestart > 0, "the restarted replica rejoined");
});

test("nginx's access log accounts for every request and shows the retries", async (t) => {
  await cluster.stop();
  const lines = readAccessLog(cluster).filter((l) => l.requestId.startsWith("load-"));
  const retried = lines.filter((l) => l.upstreams.length > 1);
  const failedAttempts = lines.reduce((n, l) => n + l.upstreamStatuses.filter((s) => s !== "200").length, 0);
  t.diagnostic(`${lines.length} load requests logged by nginx; ${retried.length} needed a second replica; ${failedAttempts} attempts failed over in total`);
  assert.ok(lines.length > 0);
  for (const l of retried) assert.equal(l.upstreamStatuses.length, l.upstreams.length);
});
