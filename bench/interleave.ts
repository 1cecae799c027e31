/**
 * llama.cpp alone, interleaved with a running workload, for a throughput ratio this shared VM's
 * drift cannot fake. Measured here: llama.cpp alone evaluating the same 256 tokens ran anywhere from
 * 40 to 58 tokens/s from one minute to the next (43.7 then 55 within 131 s; 57 for 45 s then 42),
 * with nothing else running in the VM; the cause is outside it. A check before and after a
 * workload of minutes therefore compares it with another machine.
 *
 * So during a workload, every `intervalSeconds` the server process is paused (SIGSTOP), llama.cpp
 * evaluates alone in this process once, and the server resumes (SIGCONT). The workload's
 * throughput counts only the time it ran, each request's latency excludes the pauses it spanned,
 * and it is compared with the samples' time-weighted rate, taken among its own seconds (ABAB at a
 * ~20 s grain), so both see the same machine.
 */
import { ceilingTokens, type LoadedModel } from "./direct.js";

export interface AloneSample {
  /** Milliseconds (performance.now) when the server was paused and resumed. */
  pausedAt: number;
  resumedAt: number;
  tokensPerSecond: number;
}

export class InterleavedAlone {
  readonly samples: AloneSample[] = [];
  private stopped = false;
  /** When the pause in progress began (null: the server is running). */
  private pausedSince: number | null = null;
  private wake: (() => void) | null = null;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly serverPid: number,
    private readonly tokens: number,
    private readonly evaluate: () => Promise<number>,
    private readonly intervalSeconds: number,
    private readonly release: () => Promise<void>,
  ) {
    this.loop = this.run();
  }

  /** Starts sampling llama.cpp alone (one evaluation of `tokens` tokens in one batch) every `intervalSeconds`. */
  static async start(loaded: LoadedModel, serverPid: number, options: { tokens: number; intervalSeconds: number; threads: number }): Promise<InterleavedAlone> {
    const context = await loaded.model.createContext({ contextSize: options.tokens + 8, sequences: 1, batchSize: Math.max(options.tokens, 512), threads: options.threads });
    const sequence = context.getSequence();
    const tokens = ceilingTokens(options.tokens);
    const evaluate = async (): Promise<number> => {
      await sequence.clearHistory();
      const started = performance.now();
      await sequence.controlledEvaluate(tokens);
      return options.tokens / ((performance.now() - started) / 1000);
    };
    // Untimed, with the server still running: builds the graph once, as the server's did.
    process.kill(serverPid, "SIGSTOP");
    try {
      await evaluate();
    } finally {
      process.kill(serverPid, "SIGCONT");
    }
    return new InterleavedAlone(serverPid, options.tokens, evaluate, options.intervalSeconds, () => context.dispose());
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.intervalSeconds * 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (this.stopped) return;
      const pausedAt = performance.now();
      this.pausedSince = pausedAt;
      process.kill(this.serverPid, "SIGSTOP");
      let tokensPerSecond: number;
      try {
        tokensPerSecond = await this.evaluate();
      } finally {
        process.kill(this.serverPid, "SIGCONT");
        this.pausedSince = null;
      }
      this.samples.push({ pausedAt, resumedAt: performance.now(), tokensPerSecond });
    }
  }

  /** Stops sampling (a sample in progress finishes first) and frees the context. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.release();
  }

  /** Milliseconds the server was paused between `from` and `to` (performance.now values). */
  pausedWithin(from: number, to: number): number {
    let total = 0;
    for (const s of this.samples) total += Math.max(0, Math.min(to, s.resumedAt) - Math.max(from, s.pausedAt));
    return total;
  }

  /**
   * Waits until the server has run for `ms` milliseconds, pauses not counted (or until `end`
   * settles). A client pausing between requests waits in the server's time: in wall time its
   * requests would bunch up behind every pause, as no real load does.
   */
  async sleepRunning(ms: number, end: Promise<unknown>): Promise<void> {
    const from = performance.now();
    let ended = false;
    void end.then(
      () => (ended = true),
      () => (ended = true),
    );
    for (;;) {
      const now = performance.now();
      const paused = this.pausedWithin(from, now) + (this.pausedSince === null ? 0 : now - Math.max(from, this.pausedSince));
      const left = ms - (now - from - paused);
      if (ended || left <= 0) return;
      await Promise.race([new Promise((resolve) => setTimeout(resolve, left)), end.catch(() => undefined)]);
    }
  }

  /**
   * llama.cpp alone's tokens/s over all samples: their tokens over their evaluation time, the same
   * time-weighted average the workload's tokens/s is (NaN without any).
   */
  meanTokensPerSecond(): number {
    const seconds = this.samples.reduce((n, s) => n + this.tokens / s.tokensPerSecond, 0);
    return this.samples.length === 0 ? NaN : (this.samples.length * this.tokens) / seconds;
  }
}
