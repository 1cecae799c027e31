/**
 * Admission control: the scheduler's queue is bounded in tokens. A scoring request is tokenized
 * first, then admitted only if its tokens fit under --max-queued-tokens together with what is
 * already queued; otherwise it gets 429 with a Retry-After estimated from how fast the queue has
 * been draining. Tokenizing and the check run in one synchronous stretch with the submission, so
 * two requests cannot both see the same free room.
 *
 * A request larger than the whole bound is admitted when nothing is queued (else it could never
 * run); the bound is then exceeded by at most that one request, whose size the per-request limits
 * (documents, characters, max_length) already cap.
 */
import { RateLimitError } from "./errors.js";

export interface AdmissionOptions {
  maxQueuedTokens: number;
  /** Tokens currently waiting in the scheduler. */
  queuedTokens: () => number;
  /** Milliseconds clock, injectable for tests. */
  now?: () => number;
}

/** Completions remembered for the drain-rate estimate. */
const WINDOW_MS = 10_000;
const MAX_RETRY_AFTER_S = 60;

export class Admission {
  private readonly now: () => number;
  /** (time, tokens) of recently finished requests, oldest first. */
  private readonly finished: Array<{ at: number; tokens: number }> = [];
  private finishedTokens = 0;
  rejected = 0;

  constructor(private readonly options: AdmissionOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  get maxQueuedTokens(): number {
    return this.options.maxQueuedTokens;
  }

  /** Throws RateLimitError when `tokens` more would overfill the queue. */
  admit(tokens: number): void {
    const queued = this.options.queuedTokens();
    if (queued === 0 || queued + tokens <= this.options.maxQueuedTokens) return;
    this.rejected++;
    const excess = queued + tokens - this.options.maxQueuedTokens;
    const retryAfter = this.retryAfterSeconds(Math.min(excess, queued));
    throw new RateLimitError(
      `The server is over capacity: ${queued} tokens are queued and this request adds ${tokens} ` +
        `(limit ${this.options.maxQueuedTokens}, --max-queued-tokens). Retry after ${retryAfter} s.`,
      retryAfter,
    );
  }

  /** Records that a request's tokens left the queue (scored), for the drain-rate estimate. */
  completed(tokens: number): void {
    const at = this.now();
    this.finished.push({ at, tokens });
    this.finishedTokens += tokens;
    this.trim(at);
  }

  /** Tokens per second scored over the last few seconds; null before anything finished. */
  drainRate(): number | null {
    const now = this.now();
    this.trim(now);
    if (this.finished.length === 0) return null;
    const span = Math.max(1000, now - this.finished[0].at);
    return (this.finishedTokens / span) * 1000;
  }

  /** Seconds until `tokens` will have drained at the recent rate: 1 to 60. */
  retryAfterSeconds(tokens: number): number {
    const rate = this.drainRate();
    if (rate === null || rate <= 0) return 1;
    return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(tokens / rate)));
  }

  private trim(now: number): void {
    while (this.finished.length > 0 && now - this.finished[0].at > WINDOW_MS) {
      this.finishedTokens -= (this.finished.shift() as { tokens: number }).tokens;
    }
  }
}
