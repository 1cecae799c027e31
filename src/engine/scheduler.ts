/**
 * The scheduler: one queue for every request's pairs, evaluated in steps on the backend's lanes
 * (llama.cpp sequences of one context).
 *
 * A step is assembled explicitly, all lanes at once, then decoded as one batch:
 *  1. Lanes whose request ended (cancelled, failed) are released at the step boundary.
 *  2. Every free lane takes a pair. Fairness: the request with the fewest pairs on lanes goes first,
 *     then one whose query prefix a free lane already holds, then the oldest; a request's pairs are
 *     taken in order. So a request of 2 documents arriving behind one of 1,000 takes the next free
 *     lanes: it waits at most for the pairs already on lanes to finish (bounded by one pair's
 *     evaluation), never for the 1,000.
 *  3. The pair goes to the free lane holding the longest prefix of it. A causal LLM reranker's pairs
 *     start with the same query prefix ([bos] "A: " query): a lane keeps it between pairs and only
 *     what follows it is erased. A lane without it copies it from a lane that holds it (KV copy, no
 *     evaluation) when the backend can; when another lane is computing that prefix right now, the
 *     pair waits for it (the lane takes other work, or rests one step) instead of computing it a
 *     second time. Identical queries of different requests share the same way (the match is on
 *     tokens).
 *  4. The step's token budget (--max-num-batched-tokens) is shared among requests, then evenly
 *     among a request's lanes (water-filling: each lane evaluates min(its remaining tokens, c), c as
 *     large as the share allows). A pair longer than its share continues in the next step (chunked
 *     prefill), so one long pair never blocks the others and every step stays within one llama.cpp
 *     batch. Equal pieces matter: llama.cpp keeps a KV stream per sequence and splits a batch into
 *     ubatches of equal length per sequence, so every distinct chunk length is a pass over the
 *     weights (measured on the Gemma-2B shape on a 2-core CPU: a step costs what about 18 tokens
 *     more do, each extra ubatch about 12).
 *     On a GPU, where batching is nearly free, requests share the step evenly. On a CPU, where a
 *     step costs its tokens and passes however they are batched, the request with the least work
 *     left gets the step (shortest remaining processing time first) and the others wait; one passed
 *     over for STARVATION_STEPS steps in a row gets a floor in the next, so none starves. Chunks that
 *     would leave a tail of a few tokens are extended to the pair's end or held back whole. A small
 *     request arriving during a long one thus waits for the step in progress, then runs in steps of
 *     its own.
 *  5. The backend decodes the step; finished pairs deliver their readout, and the next step starts.
 *
 * A request whose signal aborts has its queued pairs dropped at once; its pairs on lanes stop at the
 * end of the running step (a step is the unit llama.cpp cannot interrupt).
 *
 * Backends without explicit steps (ModelBackend.stepper absent: the rank backend, test fakes,
 * wrappers) get the same policy with whole pairs: each step starts one `lane.evaluate` per free
 * lane in the same tick and waits for them; the lane itself reuses what it holds.
 */
import { CancelledError } from "../server/errors.js";
import type { PairTokens, Readout } from "../families/types.js";
import type { EvaluationLane, ModelBackend, StepEvaluator, StepItem, StepOutcome } from "./backend.js";

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

/** Running totals since the scheduler started: for benchmarks and diagnostics. */
export interface SchedulerCounters {
  /** Evaluation steps run. */
  steps: number;
  /** Seconds spent inside steps (the backend evaluating). */
  stepSeconds: number;
  /** Seconds spent between steps while work was waiting (the scheduler's own cost). */
  gapSeconds: number;
  /** Tokens evaluated by the model. */
  evaluatedTokens: number;
  /** Tokens of finished pairs (what they would cost evaluated from scratch). */
  pairTokens: number;
  pairs: number;
  /** Prefixes copied from another lane instead of evaluated. */
  prefixCopies: number;
}

export interface SchedulerEvents {
  /** A lane finished a pair (or failed it): for metrics. */
  onPairDone?(info: { evaluatedTokens: number; seconds: number; failed: boolean }): void;
  /**
   * A request left the scheduler: seconds from submission to its first pair's start (null if none
   * started), then from that start to its end; for queue and inference latency metrics.
   */
  onRequestDone?(info: { queueSeconds: number | null; inferenceSeconds: number; pairs: number; outcome: "ok" | "failed" | "cancelled" }): void;
  /** Pairs evaluated together in one step (so decoded in one batch): for metrics. */
  onDispatch?(info: { pairs: number; tokens: number }): void;
}

export interface SchedulerOptions {
  /**
   * Whether a step costs in proportion to its tokens, however they are spread over lanes (a CPU:
   * more lanes add no throughput, they let new requests start at once and hold prefixes). Then a
   * lane may rest a step while another computes the prefix it needs, and one request may hold at
   * most all lanes but one, so a request arriving during a long one starts at the next step.
   * Default: true for a backend with explicit steps running on the CPU.
   */
  computeBound?: boolean;
  /** Most lanes one request may hold at once (default: all but one when compute-bound, else all). */
  maxLanesPerRequest?: number;
}

/**
 * Tokens a step may re-evaluate to even out its chunks (see Scheduler.align): a pass over the
 * weights costs about as much as 6 to 13 tokens on this machine's CPU (bench: one sequence in
 * batches of 16 vs 256 tokens), so a ubatch saved is worth a few tokens recomputed.
 */
const ALIGN_PAD_TOKENS = 16;

/**
 * A chunk that would leave fewer tokens than this of its pair for a later step is either extended
 * to the pair's end or held back whole: a tail of a few tokens would cost a pass over the weights of
 * its own later (llama.cpp's equal split makes every distinct chunk length a pass; measured on the
 * Gemma-2B shape, a pass costs about what 6 tokens do).
 */
const MIN_TAIL_TOKENS = 8;

/**
 * On a compute-bound device a request passed over for this many steps in a row gets a floor share in
 * the next (see shortestFirst): often enough that none starves, rarely enough that a short request's
 * steps stay one pass (a floor chunk of a few tokens is a pass of its own).
 */
const STARVATION_STEPS = 2;

/** Thrown to the requests of a failed evaluation; the scheduler keeps serving the others. */
export class EvaluationError extends Error {
  constructor(override readonly cause: unknown) {
    super(`model evaluation failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "EvaluationError";
  }
}

/**
 * Shortest query prefix worth copying between lanes rather than evaluating; a prefix of one token
 * (a bare BOS) gains nothing.
 */
const MIN_SHARED_PREFIX = 2;

class ActiveRequest {
  nextPair = 0;
  inFlight = 0;
  finished = 0;
  evaluatedTokens = 0;
  settled = false;
  /** Steps in a row this request had pairs on lanes but no tokens in the step. */
  passedOver = 0;
  readonly submittedAt = performance.now();
  firstStartedAt: number | null = null;
  readonly values: number[][];
  queuedTokens: number;
  detach: () => void = () => undefined;

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

/** A pair on a lane. */
interface Task {
  request: ActiveRequest;
  index: number;
  pair: PairTokens;
  /** Tokens of the pair the lane holds evaluated (valid once the task is prepared). */
  done: number;
  /** Tokens this task evaluated (reused ones excluded). */
  evaluated: number;
  startedAt: number;
  /** How the lane gets the pair's leading tokens before its first step; null once prepared. */
  setup: { keep: number; donor: Slot | null } | null;
}

class Slot {
  task: Task | null = null;
  constructor(readonly lane: EvaluationLane) {}
}

export class Scheduler {
  private readonly queue: ActiveRequest[] = [];
  private readonly slots: Slot[];
  private readonly stepper: StepEvaluator | null;
  private arrivals = 0;
  private queuedTokens = 0;
  private queuedPairs = 0;
  private running = false;
  private idleWaiters: Array<() => void> = [];
  private readonly totals: SchedulerCounters = {
    steps: 0,
    stepSeconds: 0,
    gapSeconds: 0,
    evaluatedTokens: 0,
    pairTokens: 0,
    pairs: 0,
    prefixCopies: 0,
  };

  /** See SchedulerOptions.computeBound. */
  private readonly computeBound: boolean;
  private readonly maxLanesPerRequest: number;

  constructor(
    private readonly backend: ModelBackend,
    private readonly events: SchedulerEvents = {},
    options: SchedulerOptions = {},
  ) {
    this.slots = backend.lanes.map((lane) => new Slot(lane));
    this.stepper = backend.stepper ?? null;
    this.computeBound = options.computeBound ?? (this.stepper !== null && backend.info.device === "cpu");
    this.maxLanesPerRequest = options.maxLanesPerRequest ?? (this.computeBound && this.slots.length > 1 ? this.slots.length - 1 : this.slots.length);
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
      const signal = job.signal;
      if (signal) {
        const onAbort = () => this.cancel(request, signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        request.detach = () => signal.removeEventListener("abort", onAbort);
      }
      this.wake();
    });
  }

  stats(): SchedulerStats {
    return {
      queuedRequests: this.queue.length,
      queuedPairs: this.queuedPairs,
      queuedTokens: this.queuedTokens,
      busyLanes: this.slots.filter((s) => s.task !== null).length,
      lanes: this.slots.length,
    };
  }

  counters(): SchedulerCounters {
    return { ...this.totals };
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wake(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  /**
   * The step loop. Runs while there is work; between an assignment that finds nothing and the
   * loop's exit there is no await, so a submission can never be left unnoticed.
   */
  private async loop(): Promise<void> {
    let gapStart = performance.now();
    try {
      for (;;) {
        this.releaseEnded();
        this.assign();
        const active = this.slots.filter((s): s is Slot & { task: Task } => s.task !== null);
        if (active.length === 0) break;
        await this.prepare(active);
        const ready = active.filter((s) => s.task !== null && !s.task.request.settled);
        if (ready.length === 0) continue;
        const items = this.stepper ? this.chunks(ready) : this.wholePairs(ready);
        await this.align(items);
        this.events.onDispatch?.({ pairs: items.length, tokens: items.reduce((n, { item }) => n + item.to - item.from, 0) });
        const started = performance.now();
        this.totals.gapSeconds += (started - gapStart) / 1000;
        const outcomes = await this.run(items.map(({ item }) => item));
        gapStart = performance.now();
        this.totals.steps++;
        this.totals.stepSeconds += (gapStart - started) / 1000;
        await this.finish(items, outcomes);
      }
    } catch (error) {
      // A bug here must not wedge the server: fail what is queued, free the lanes.
      for (const request of [...this.queue]) this.settle(request, new EvaluationError(error));
      for (const slot of this.slots) slot.task = null;
    } finally {
      this.running = false;
      // Work submitted while the loop was finishing a failure: run again.
      if (this.queue.some((r) => r.pending > 0)) this.wake();
      else for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  /** Frees the lanes of requests that ended (cancelled or failed) since the last step. */
  private releaseEnded(): void {
    for (const slot of this.slots) {
      if (slot.task?.request.settled) slot.task = null;
    }
  }

  /** Gives every free lane a pair, by the fairness policy, placing pairs where their prefix is. */
  private assign(): void {
    const free = new Set(this.slots.filter((s) => s.task === null));
    if (free.size === 0) return;
    const waiting = new Set<ActiveRequest>();
    this.assignPass(free, waiting, true);
    // On a GPU a lane left resting costs throughput: there, a pair waits for a prefix being
    // computed elsewhere only when the lane found other work; otherwise it computes it too.
    if (!this.computeBound && free.size > 0 && waiting.size > 0) this.assignPass(free, new Set(), false);
  }

  private assignPass(free: Set<Slot>, waiting: Set<ActiveRequest>, mayWait: boolean): void {
    while (free.size > 0) {
      const request = this.pickRequest(free, waiting);
      if (!request) return;
      const pair = request.job.pairs[request.nextPair];
      const slot = bestSlot(free, pair, this.slots, this.stepper?.copy !== undefined);
      const own = commonPrefix(slot.lane.heldTokens(), pair.tokens);
      let setup: Task["setup"] = { keep: Math.min(own, pair.tokens.length - 1), donor: null };
      if (this.stepper?.copy && own < pair.prefixLength && pair.prefixLength >= MIN_SHARED_PREFIX) {
        const donor = this.slots.find((s) => s !== slot && commonPrefix(s.lane.heldTokens(), pair.tokens) >= pair.prefixLength);
        if (donor) {
          setup = { keep: Math.min(commonPrefix(donor.lane.heldTokens(), pair.tokens), pair.tokens.length - 1), donor };
        } else if (mayWait && this.slots.some((s) => s.task && s.task.done < pair.prefixLength && sharesPrefix(s.task.pair, pair))) {
          // Another lane is computing this prefix now: copy it from there next step.
          waiting.add(request);
          continue;
        }
      }
      free.delete(slot);
      request.nextPair++;
      request.inFlight++;
      request.queuedTokens -= pair.tokens.length;
      this.queuedTokens -= pair.tokens.length;
      this.queuedPairs--;
      const now = performance.now();
      request.firstStartedAt ??= now;
      slot.task = { request, index: request.nextPair - 1, pair, done: 0, evaluated: 0, startedAt: now, setup };
    }
  }

  private pickRequest(free: ReadonlySet<Slot>, waiting: ReadonlySet<ActiveRequest>): ActiveRequest | undefined {
    let best: ActiveRequest | undefined;
    let bestHeld = false;
    for (const request of this.queue) {
      if (request.pending === 0 || request.settled || waiting.has(request)) continue;
      if (request.inFlight >= this.maxLanesPerRequest) continue;
      if (best && request.inFlight > best.inFlight) continue;
      const pair = request.job.pairs[request.nextPair];
      const held = pair.prefixLength > 0 && [...free].some((s) => commonPrefix(s.lane.heldTokens(), pair.tokens) >= pair.prefixLength);
      if (!best || request.inFlight < best.inFlight || (held && !bestHeld)) {
        best = request;
        bestHeld = held;
      }
    }
    return best;
  }

  /**
   * Brings newly assigned lanes to their starting state: copies first (they read other lanes'
   * current state, which the truncations below may change), then truncations.
   */
  private async prepare(active: ReadonlyArray<Slot & { task: Task }>): Promise<void> {
    const fresh = active.filter((s) => s.task.setup !== null);
    if (!this.stepper) {
      // Whole-pair backends reuse what the lane holds inside lane.evaluate.
      for (const slot of fresh) slot.task.setup = null;
      return;
    }
    const stepper = this.stepper;
    const setups = fresh.map((slot) => ({ slot, task: slot.task, setup: slot.task.setup as NonNullable<Task["setup"]> }));
    for (const entry of setups) entry.task.setup = null;
    // A lane may be a donor and, in the same step, the target of another copy: copy from it first.
    const donors = new Set(setups.map((e) => e.setup.donor).filter((d) => d !== null));
    setups.sort((a, b) => Number(donors.has(a.slot)) - Number(donors.has(b.slot)));
    for (const { slot, task, setup } of setups) {
      if (!setup.donor || !stepper.copy) continue;
      // Still there? (a chain of copies within one step may have replaced it)
      const stillHeld = commonPrefix(setup.donor.lane.heldTokens(), task.pair.tokens) >= setup.keep;
      const copied = stillHeld && (await stepper.copy(slot.lane, setup.donor.lane, setup.keep).catch(() => false));
      if (copied && commonPrefix(slot.lane.heldTokens(), task.pair.tokens) >= setup.keep) {
        this.totals.prefixCopies++;
        task.done = setup.keep;
        setup.donor = null;
        setup.keep = -1;
      } else {
        // Not copied: evaluate from what the lane itself holds.
        setup.donor = null;
        setup.keep = Math.min(commonPrefix(slot.lane.heldTokens(), task.pair.tokens), task.pair.tokens.length - 1);
      }
    }
    for (const { slot, task, setup } of setups) {
      if (setup.keep < 0) continue;
      try {
        if (slot.lane.heldTokens().length !== setup.keep) await stepper.truncate(slot.lane, setup.keep);
        task.done = setup.keep;
      } catch (error) {
        await this.fail(slot, task, error);
      }
    }
  }

  /**
   * The step's items under the token budget, shared among requests (shortestFirst on a
   * compute-bound device, evenly otherwise), then evenly among each request's lanes; a pair longer
   * than its share continues next step.
   */
  private chunks(ready: ReadonlyArray<Slot & { task: Task }>): Array<{ slot: Slot; task: Task; item: StepItem }> {
    const remaining = ready.map((s) => s.task.pair.tokens.length - s.task.done);
    const groups = new Map<ActiveRequest, number[]>();
    ready.forEach((slot, i) => {
      const group = groups.get(slot.task.request);
      if (group) group.push(i);
      else groups.set(slot.task.request, [i]);
    });
    const members = [...groups.values()];
    const demands = members.map((m) => m.reduce((n, i) => n + remaining[i], 0));
    const budget = Math.max(1, this.backend.info.batchTokens);
    const requests = [...groups.keys()];
    const requestShares = this.computeBound
      ? shortestFirst(
          demands,
          requests.map((request, g) => request.queuedTokens + demands[g]),
          budget,
          requests.map((request) => (request.passedOver >= STARVATION_STEPS ? STARVATION_STEPS + 1 : 0)),
        )
      : waterFill(demands, budget);
    let shares = new Array<number>(ready.length).fill(0);
    members.forEach((m, g) => {
      const laneRemaining = m.map((i) => remaining[i]);
      const laneShares = this.computeBound
        ? evenChunks(laneRemaining, requestShares[g], MIN_TAIL_TOKENS)
        : waterFill(laneRemaining, requestShares[g]);
      m.forEach((i, k) => (shares[i] = laneShares[k]));
    });
    if (this.computeBound) shares = avoidShortTails(remaining, shares, budget, MIN_TAIL_TOKENS);
    requests.forEach((request, g) => {
      request.passedOver = members[g].some((i) => shares[i] > 0) ? 0 : request.passedOver + 1;
    });
    const items: Array<{ slot: Slot; task: Task; item: StepItem }> = [];
    ready.forEach((slot, i) => {
      if (shares[i] === 0) return;
      const task = slot.task;
      const to = task.done + shares[i];
      const end = to === task.pair.tokens.length;
      items.push({ slot, task, item: { lane: slot.lane, tokens: task.pair.tokens, from: task.done, to, readout: end ? task.request.job.readout : null } });
    });
    // Ascending lane ids: llama.cpp groups consecutive sequences into one ubatch.
    return items.sort((a, b) => a.slot.lane.id - b.slot.lane.id);
  }

  /**
   * Evens out the step's chunk lengths where that is cheap. llama.cpp keeps a KV stream per
   * sequence and splits such a batch into ubatches of equal length per sequence (split_equal), so
   * chunks of 160, 159 and 158 tokens become three ubatches (474, 2 and 1 tokens), each a full
   * pass over the weights. A chunk a few tokens short is lengthened backwards instead: the lane
   * drops its last few evaluated tokens and evaluates them again, so the step is one ubatch. At most
   * ALIGN_PAD_TOKENS are re-evaluated per step, within the budget.
   */
  private async align(items: Array<{ slot: Slot; task: Task; item: StepItem }>): Promise<void> {
    if (!this.stepper || items.length < 2) return;
    const stepper = this.stepper;
    const budget = Math.max(1, this.backend.info.batchTokens);
    let total = items.reduce((n, { item }) => n + item.to - item.from, 0);
    let pad = ALIGN_PAD_TOKENS;
    const byLength = [...items].sort((a, b) => b.item.to - b.item.from - (a.item.to - a.item.from));
    let head = byLength[0].item.to - byLength[0].item.from;
    const padded: Array<{ slot: Slot; task: Task; item: StepItem }> = [];
    for (const entry of byLength.slice(1)) {
      const length = entry.item.to - entry.item.from;
      const short = head - length;
      if (short === 0) continue;
      if (short <= pad && entry.item.from >= short && total + short <= budget) {
        entry.item.from -= short;
        pad -= short;
        total += short;
        padded.push(entry);
      } else {
        head = length;
      }
    }
    for (const entry of padded) {
      try {
        await stepper.truncate(entry.slot.lane, entry.item.from);
        entry.task.done = entry.item.from;
      } catch (error) {
        items.splice(items.indexOf(entry), 1);
        await this.fail(entry.slot, entry.task, error);
      }
    }
  }

  private wholePairs(ready: ReadonlyArray<Slot & { task: Task }>): Array<{ slot: Slot; task: Task; item: StepItem }> {
    return ready.map((slot) => ({
      slot,
      task: slot.task,
      item: { lane: slot.lane, tokens: slot.task.pair.tokens, from: 0, to: slot.task.pair.tokens.length, readout: slot.task.request.job.readout },
    }));
  }

  private async run(items: readonly StepItem[]): Promise<Array<StepOutcome & { evaluated?: number }>> {
    if (this.stepper) return this.stepper.step(items);
    // Whole pairs through lane.evaluate, all started in the same tick so the backend batches them.
    const settled = await Promise.allSettled(items.map((item) => item.lane.evaluate(item.tokens, item.readout as Readout)));
    return settled.map((s) =>
      s.status === "fulfilled" ? { ok: true, values: s.value.values, evaluated: s.value.evaluatedTokens } : { ok: false, error: s.reason as unknown },
    );
  }

  private async finish(
    items: ReadonlyArray<{ slot: Slot; task: Task; item: StepItem }>,
    outcomes: ReadonlyArray<StepOutcome & { evaluated?: number }>,
  ): Promise<void> {
    for (let i = 0; i < items.length; i++) {
      const { slot, task, item } = items[i];
      const outcome = outcomes[i];
      if (!outcome || !outcome.ok) {
        await this.fail(slot, task, outcome ? outcome.error : new Error("the backend returned no outcome"));
        continue;
      }
      const evaluated = outcome.evaluated ?? item.to - item.from;
      task.evaluated += evaluated;
      task.done = item.to;
      this.totals.evaluatedTokens += evaluated;
      if (item.to < task.pair.tokens.length) continue;
      slot.task = null;
      const request = task.request;
      request.inFlight--;
      this.totals.pairs++;
      this.totals.pairTokens += task.pair.tokens.length;
      this.events.onPairDone?.({ evaluatedTokens: task.evaluated, seconds: (performance.now() - task.startedAt) / 1000, failed: false });
      if (request.settled) continue;
      if (!outcome.values) {
        this.settle(request, new EvaluationError(new Error("the backend returned no readout for a finished pair")));
        continue;
      }
      request.values[task.index] = outcome.values;
      request.evaluatedTokens += task.evaluated;
      request.finished++;
      if (request.finished === request.job.pairs.length) this.settle(request, null);
    }
  }

  /** A pair failed: its request fails, its lane is wiped (its KV state is unknown) and freed. */
  private async fail(slot: Slot, task: Task, error: unknown): Promise<void> {
    this.events.onPairDone?.({ evaluatedTokens: 0, seconds: (performance.now() - task.startedAt) / 1000, failed: true });
    task.request.inFlight--;
    this.settle(task.request, new EvaluationError(error));
    slot.task = null;
    await (this.stepper ? this.stepper.reset(slot.lane) : slot.lane.reset()).catch(() => undefined);
  }

  private cancel(request: ActiveRequest, reason: unknown): void {
    this.settle(request, reason instanceof CancelledError ? reason : new CancelledError("client-closed"));
  }

  /** Ends a request: its queued pairs leave the queue, and its promise settles exactly once. */
  private settle(request: ActiveRequest, error: unknown): void {
    if (request.settled) return;
    request.settled = true;
    request.detach();
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

/**
 * The free lane for a pair. llama.cpp puts only consecutive sequences in one ubatch, so a lane that
 * leaves a hole among the busy ones costs a pass over the weights per step. Without KV copies the
 * lane holding the longest prefix of the pair wins (evaluating a prefix costs more), then the lane
 * that keeps the busy lanes contiguous; with copies (a prefix moves cheaply) contiguity comes first.
 * Ties go to the lowest id.
 */
function bestSlot(free: ReadonlySet<Slot>, pair: PairTokens, all: readonly Slot[], canCopy: boolean): Slot {
  const busy = all.filter((s) => s.task !== null).map((s) => s.lane.id);
  const runs = (id: number): number => {
    const ids = [...busy, id].sort((a, b) => a - b);
    let count = 0;
    for (let i = 0; i < ids.length; i++) if (i === 0 || ids[i] !== ids[i - 1] + 1) count++;
    return count;
  };
  let best: Slot | undefined;
  let bestKey: number[] = [];
  for (const slot of free) {
    const held = Math.min(commonPrefix(slot.lane.heldTokens(), pair.tokens), canCopy ? pair.prefixLength : Infinity);
    const key = canCopy ? [runs(slot.lane.id), -held, slot.lane.id] : [-held, runs(slot.lane.id), slot.lane.id];
    if (!best || lexLess(key, bestKey)) {
      best = slot;
      bestKey = key;
    }
  }
  return best as Slot;
}

function lexLess(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

function sharesPrefix(a: PairTokens, b: PairTokens): boolean {
  if (a.prefixLength !== b.prefixLength || a.prefixLength === 0) return false;
  for (let i = 0; i < a.prefixLength; i++) if (a.tokens[i] !== b.tokens[i]) return false;
  return true;
}

export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * The step budget among requests on a compute-bound device, where a step costs its tokens (plus a
 * pass over the weights per distinct chunk length) however they are batched, so a small request's
 * latency is the cost of every step it waits through. Requests owed a floor (`floors[g]` of them,
 * each an eighth of an even share; by default every request one) get it first, so none starves;
 * the request with the least work left (`left`, all its unevaluated tokens) then gets all it can
 * use this step (shortest remaining processing time first), and nobody else gets more: topping the
 * step up with another request's chunk would add that chunk's tokens and, its length differing, a
 * pass to the short request's wait, for less than the pass's worth of throughput. Not even another
 * small request: sharing steps makes the first of two that arrive together wait for the second's
 * work too (in a W4 step trace, 8.2 s instead of 5.9 s, the second gaining 0.1 s), for fixed step
 * costs worth about half a second. With one request, or when the shortest can use the whole
 * budget, this is simply a full step.
 */
export function shortestFirst(
  demands: readonly number[],
  left: readonly number[],
  budget: number,
  floors: readonly number[] = demands.map(() => 1),
): number[] {
  const n = demands.length;
  const shares = new Array<number>(n).fill(0);
  if (n === 0) return shares;
  const floor = n > 1 ? Math.max(1, Math.floor(budget / (8 * n))) : 0;
  let free = budget;
  for (let g = 0; g < n && free > 0; g++) {
    shares[g] = Math.min(demands[g], floor * (floors[g] ?? 0), free);
    free -= shares[g];
  }
  const order = demands.map((_, g) => g).sort((a, b) => left[a] - left[b] || a - b);
  const first = order[0];
  const extra = Math.min(demands[first] - shares[first], free);
  shares[first] += extra;
  return shares;
}

/**
 * A request's budget among its lanes on a compute-bound device: equal chunks (water-filling, so the
 * step is one pass over the weights), except that a chunk leaving its pair a tail of fewer than
 * `minTail` tokens is extended to the pair's end when the budget has room, else held back whole and
 * its share spread over the other lanes (so the step stays full and the tail never becomes a pass
 * of its own).
 */
export function evenChunks(remaining: readonly number[], budget: number, minTail: number): number[] {
  const held = new Set<number>();
  for (;;) {
    const live = remaining.map((_, i) => i).filter((i) => !held.has(i));
    const part = waterFill(
      live.map((i) => remaining[i]),
      budget,
    );
    const shares = new Array<number>(remaining.length).fill(0);
    live.forEach((i, k) => (shares[i] = part[k]));
    let total = part.reduce((a, b) => a + b, 0);
    let holdBack = -1;
    for (const i of [...live].sort((a, b) => shares[a] - shares[b] || a - b)) {
      const tail = remaining[i] - shares[i];
      if (shares[i] === 0 || tail <= 0 || tail >= minTail) continue;
      if (total + tail <= budget) {
        shares[i] += tail;
        total += tail;
      } else if (live.filter((j) => shares[j] > 0).length > 1) {
        holdBack = i;
        break;
      }
    }
    if (holdBack < 0) return shares;
    held.add(holdBack);
  }
}

/**
 * Keeps chunks from leaving a tail of fewer than `minTail` tokens of their pair for a later step,
 * where it would cost a pass over the weights of its own: such a chunk is extended to the pair's
 * end when the budget has room, else held back whole for the next step (unless it is the step's
 * only one). The smallest chunks are held back first.
 */
export function avoidShortTails(remaining: readonly number[], shares: readonly number[], budget: number, minTail: number): number[] {
  const out = [...shares];
  let total = out.reduce((a, b) => a + b, 0);
  const order = out.map((_, i) => i).sort((a, b) => out[b] - out[a] || a - b);
  for (const i of order) {
    const tail = remaining[i] - out[i];
    if (out[i] === 0 || tail <= 0 || tail >= minTail) continue;
    if (total + tail <= budget) {
      out[i] += tail;
      total += tail;
    } else if (out.filter((x) => x > 0).length > 1) {
      total -= out[i];
      out[i] = 0;
    }
  }
  return out;
}

/**
 * Splits `budget` tokens among lanes needing `remaining[i]` each: every lane gets min(remaining, c)
 * with the largest c that fits (water-filling). When there are more lanes than tokens, the first
 * lanes get one token each and the rest wait.
 */
export function waterFill(remaining: readonly number[], budget: number): number[] {
  const total = remaining.reduce((a, b) => a + b, 0);
  if (total <= budget) return [...remaining];
  const order = remaining.map((r, i) => ({ r, i })).sort((a, b) => a.r - b.r);
  const shares = new Array<number>(remaining.length).fill(0);
  let left = budget;
  for (let k = 0; k < order.length; k++) {
    const lanesLeft = order.length - k;
    const { r, i } = order[k];
    if (r * lanesLeft <= left) {
      shares[i] = r;
      left -= r;
      continue;
    }
    const c = Math.floor(left / lanesLeft);
    if (c === 0) {
      for (let j = k; j < order.length && left > 0; j++, left--) shares[order[j].i] = 1;
      return shares;
    }
    for (let j = k; j < order.length; j++) shares[order[j].i] = c;
    return shares;
  }
  return shares;
}
