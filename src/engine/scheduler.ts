/**
 * The scheduler: one queue for every request's pairs, fed to the backend's lanes.
 *
 * Policy, in order, whenever a lane is free it takes the next pair of:
 *  1. the request with the fewest pairs currently being evaluated (so a request that arrives
 *     behind a 1,000-document request gets a lane at the next free one, not after it);
 *  2. among those, a request whose query prefix the lane already holds (its KV state is reused);
 *  3. then the oldest request.
 * Pairs of one request are taken in order. Lanes started in the same tick are evaluated in one
 * batch by the backend.
 *
 * A request whose signal aborts has its queued pairs dropped at once; pairs already running finish
 * and their results are discarded.
 */
import { CancelledError } from "../server/errors.js";
import type { PairTokens, Readout } from "../families/types.js";
import type { EvaluationLane, ModelBackend } from "./backend.js";

export interface ScoringJob {
  pairs: readonly PairTokens[];
  readout: Readout;
  signal?: AbortSignal;
}

export interface JobResult {
  /** Readout values per pair, in pair order. */
  values: number[][];
  /** Tokens actually run through the model (less than the pairs' total when prefixes were reused). */
  evaluatedTokens: number;
}

export interface SchedulerStats {
  queuedRequests: number;
  queuedPairs: number;
  queuedTokens: number;
  busyLanes: number;
  lanes: number;
}

export interface SchedulerEvents {
  /** A lane finished a pair (or failed it): for metrics. */
  onPairDone?(info: { evaluatedTokens: number; seconds: number; failed: boolean }): void;
  /**
   * A request left the scheduler: seconds from submission to its first pair's start (null if none
   * started), then from that start to its end; for queue and inference latency metrics.
   */
  onRequestDone?(info: { queueSeconds: number | null; inferenceSeconds: number; pairs: number; outcome: "ok" | "failed" | "cancelled" }): void;
  /** Pairs started together in one scheduling step (so decoded in one batch): for metrics. */
  onDispatch?(info: { pairs: number; tokens: number }): void;
}

/** Thrown to the requests of a failed evaluation; the scheduler keeps serving the others. */
export class EvaluationError extends Error {
  constructor(override readonly cause: unknown) {
    super(`model evaluation failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "EvaluationError";
  }
}

class ActiveRequest {
  nextPair = 0;
  inFlight = 0;
  finished = 0;
  evaluatedTokens = 0;
  settled = false;
  readonly submittedAt = performance.now();
  firstStartedAt: number | null = null;
  readonly values: number[][];
  queuedTokens: number;

  constructor(
    readonly arrival: number,
    readonly job: ScoringJob,
    readonly resolve: (r: JobResult) => void,
    readonly reject: (e: unknown) => void,
  ) {
    this.values = new Array<number[]>(job.pairs.length);
    this.queuedTokens = job.pairs.reduce((n, p) => n + p.tokens.length, 0);
  }

  get pending(): number {
    return this.job.pairs.length - this.nextPair;
  }
}

export class Scheduler {
  private readonly queue: ActiveRequest[] = [];
  private readonly idleLanes: EvaluationLane[];
  private arrivals = 0;
  private queuedTokens = 0;
  private queuedPairs = 0;

  constructor(
    private readonly backend: ModelBackend,
    private readonly events: SchedulerEvents = {},
  ) {
    this.idleLanes = [...backend.lanes];
  }

  submit(job: ScoringJob): Promise<JobResult> {
    return new Promise<JobResult>((resolve, reject) => {
      if (job.signal?.aborted) {
        reject(new CancelledError("client-closed"));
        return;
      }
      if (job.pairs.length === 0) {
        resolve({ values: [], evaluatedTokens: 0 });
        return;
      }
      const request = new ActiveRequest(this.arrivals++, job, resolve, reject);
      this.queue.push(request);
      this.queuedTokens += request.queuedTokens;
      this.queuedPairs += job.pairs.length;
      job.signal?.addEventListener("abort", () => this.cancel(request, job.signal?.reason), { once: true });
      this.pump();
    });
  }

  stats(): SchedulerStats {
    return {
      queuedRequests: this.queue.length,
      queuedPairs: this.queuedPairs,
      queuedTokens: this.queuedTokens,
      busyLanes: this.backend.lanes.length - this.idleLanes.length,
      lanes: this.backend.lanes.length,
    };
  }

  /** Resolves once nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.queue.length > 0 || this.idleLanes.length < this.backend.lanes.length) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private pump(): void {
    let started = 0;
    let tokens = 0;
    while (this.idleLanes.length > 0) {
      const lane = this.idleLanes.pop() as EvaluationLane;
      const request = this.pick(lane);
      if (!request) {
        this.idleLanes.push(lane);
        break;
      }
      started++;
      tokens += request.job.pairs[request.nextPair].tokens.length;
      void this.run(lane, request, request.nextPair++);
    }
    if (started > 0) this.events.onDispatch?.({ pairs: started, tokens });
  }

  private pick(lane: EvaluationLane): ActiveRequest | undefined {
    let best: ActiveRequest | undefined;
    let bestHolds = false;
    const held = lane.heldTokens();
    for (const request of this.queue) {
      if (request.pending === 0) continue;
      const holds = holdsPrefix(held, request.job.pairs[request.nextPair]);
      if (
        !best ||
        request.inFlight < best.inFlight ||
        (request.inFlight === best.inFlight && holds && !bestHolds)
      ) {
        best = request;
        bestHolds = holds;
      }
    }
    return best;
  }

  private async run(lane: EvaluationLane, request: ActiveRequest, index: number): Promise<void> {
    const pair = request.job.pairs[index];
    request.firstStartedAt ??= performance.now();
    request.inFlight++;
    this.queuedTokens -= pair.tokens.length;
    request.queuedTokens -= pair.tokens.length;
    this.queuedPairs--;
    const started = performance.now();
    try {
      const { values, evaluatedTokens } = await lane.evaluate(pair.tokens, request.job.readout);
      this.events.onPairDone?.({ evaluatedTokens, seconds: (performance.now() - started) / 1000, failed: false });
      request.inFlight--;
      request.finished++;
      request.values[index] = values;
      request.evaluatedTokens += evaluatedTokens;
      if (request.finished === request.job.pairs.length) this.settle(request, null);
    } catch (error) {
      this.events.onPairDone?.({ evaluatedTokens: 0, seconds: (performance.now() - started) / 1000, failed: true });
      request.inFlight--;
      this.settle(request, new EvaluationError(error));
      await lane.reset().catch(() => undefined);
    } finally {
      this.idleLanes.push(lane);
      this.pump();
    }
  }

  private cancel(request: ActiveRequest, reason: unknown): void {
    this.settle(request, reason instanceof CancelledError ? reason : new CancelledError("client-closed"));
  }

  /** Ends a request: its queued pairs leave the queue, and its promise settles exactly once. */
  private settle(request: ActiveRequest, error: unknown): void {
    if (request.settled) return;
    request.settled = true;
    const at = this.queue.indexOf(request);
    if (at >= 0) this.queue.splice(at, 1);
    this.queuedTokens -= request.queuedTokens;
    this.queuedPairs -= request.pending;
    request.queuedTokens = 0;
    request.nextPair = request.job.pairs.length;
    const now = performance.now();
    const started = request.firstStartedAt;
    this.events.onRequestDone?.({
      queueSeconds: started === null ? null : (started - request.submittedAt) / 1000,
      inferenceSeconds: started === null ? 0 : (now - started) / 1000,
      pairs: request.job.pairs.length,
      outcome: error === null ? "ok" : error instanceof CancelledError ? "cancelled" : "failed",
    });
    if (error === null) request.resolve({ values: request.values, evaluatedTokens: request.evaluatedTokens });
    else request.reject(error);
  }
}

function holdsPrefix(held: readonly number[], pair: PairTokens | undefined): boolean {
  if (!pair || held.length < pair.prefixLength || pair.prefixLength === 0) return false;
  for (let i = 0; i < pair.prefixLength; i++) if (held[i] !== pair.tokens[i]) return false;
  return true;
}
