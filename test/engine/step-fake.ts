/**
 * A ModelBackend with explicit steps (a `stepper`) and no model, for scheduler tests. It keeps each
 * lane's "KV state" as the list of tokens it holds and enforces what llama.cpp would need: a step's
 * chunk must continue exactly what the lane holds, steps never overlap, a step stays within the
 * token budget, a lane appears once per step. A finished pair's "logit" is computed from the lane's
 * held tokens, so any state leaking between pairs or requests changes the score.
 */
import type {
  BackendInfo,
  EvaluationLane,
  ModelBackend,
  StepEvaluator,
  StepItem,
  StepOutcome,
  Tokenizer,
} from "../../src/engine/backend.js";
import type { Readout } from "../../src/families/types.js";
import { codePointTokenizer, fakeBackendInfo, fakeScore } from "../support/fake-backend.js";

export interface StepRecord {
  items: Array<{ lane: number; from: number; to: number; pairLength: number; last: number; query: number; readout: boolean }>;
  tokens: number;
}

export class StepLane implements EvaluationLane {
  held: number[] = [];
  constructor(readonly id: number) {}
  heldTokens(): readonly number[] {
    return this.held;
  }
  evaluate(): Promise<{ values: number[]; evaluatedTokens: number }> {
    return Promise.reject(new Error("a step backend's lanes are driven by steps"));
  }
  async reset(): Promise<void> {
    this.held = [];
  }
}

export class StepFakeBackend implements ModelBackend {
  readonly lanes: StepLane[];
  readonly info: BackendInfo;
  readonly steps: StepRecord[] = [];
  readonly copies: Array<{ target: number; source: number; keep: number }> = [];
  readonly truncations: Array<{ lane: number; keep: number }> = [];
  readonly resets: number[] = [];
  /** Violations of the backend's contract seen (must stay empty). */
  readonly violations: string[] = [];
  /** Fail any step item whose chunk contains this token. */
  failOnToken: number | null = null;
  delayMs = 1;
  private inStep = false;
  readonly stepper: StepEvaluator;
  readonly tokenizer: Tokenizer = codePointTokenizer();

  constructor(lanes: number, batchTokens: number, options: { copy?: boolean } = {}) {
    this.lanes = Array.from({ length: lanes }, (_, id) => new StepLane(id));
    this.info = fakeBackendInfo(lanes, batchTokens);
    const lane = (l: EvaluationLane): StepLane => {
      const found = this.lanes[l.id];
      if (found !== l) throw new Error("foreign lane");
      return found;
    };
    const stepper: StepEvaluator = {
      step: (items) => this.step(items),
      truncate: async (l, keep) => {
        this.checkIdle("truncate");
        const target = lane(l);
        if (keep > target.held.length) this.violations.push(`truncate lane ${l.id} to ${keep} > held ${target.held.length}`);
        target.held = target.held.slice(0, keep);
        this.truncations.push({ lane: l.id, keep });
      },
      reset: async (l) => {
        this.checkIdle("reset");
        lane(l).held = [];
        this.resets.push(l.id);
      },
    };
    if (options.copy ?? true) {
      stepper.copy = async (target, source, keep) => {
        this.checkIdle("copy");
        const from = lane(source);
        if (keep > from.held.length) this.violations.push(`copy ${keep} tokens from lane ${source.id} holding ${from.held.length}`);
        lane(target).held = from.held.slice(0, keep);
        this.copies.push({ target: target.id, source: source.id, keep });
        return true;
      };
    }
    this.stepper = stepper;
  }

  private checkIdle(what: string): void {
    if (this.inStep) this.violations.push(`${what} while a step runs`);
  }

  private async step(items: readonly StepItem[]): Promise<StepOutcome[]> {
    this.checkIdle("step");
    this.inStep = true;
    const tokens = items.reduce((n, i) => n + i.to - i.from, 0);
    if (tokens > this.info.batchTokens) this.violations.push(`step of ${tokens} tokens over the budget ${this.info.batchTokens}`);
    const seen = new Set<number>();
    for (const item of items) {
      if (seen.has(item.lane.id)) this.violations.push(`lane ${item.lane.id} twice in a step`);
      seen.add(item.lane.id);
    }
    this.steps.push({
      tokens,
      items: items.map((i) => ({
        lane: i.lane.id,
        from: i.from,
        to: i.to,
        pairLength: i.tokens.length,
        last: i.tokens[i.tokens.length - 1],
        query: i.tokens[1],
        readout: i.readout !== null,
      })),
    });
    await new Promise((r) => setTimeout(r, this.delayMs));
    const outcomes = items.map((item): StepOutcome => {
      const lane = this.lanes[item.lane.id];
      const chunk = item.tokens.slice(item.from, item.to);
      if (this.failOnToken !== null && chunk.includes(this.failOnToken)) {
        lane.held = [...lane.held, 999_999]; // garbage state: the scheduler must reset the lane
        return { ok: false, error: new Error("injected step failure") };
      }
      const expected = item.tokens.slice(0, item.from);
      if (lane.held.length !== item.from || lane.held.some((t, k) => t !== expected[k])) {
        this.violations.push(`lane ${lane.id} holds [${lane.held.slice(0, 8).join(",")}...] (${lane.held.length}), not the pair's first ${item.from}`);
      }
      if (item.to <= item.from) this.violations.push(`empty chunk on lane ${lane.id}`);
      lane.held = [...lane.held, ...chunk];
      const end = item.to === item.tokens.length;
      if (end !== (item.readout !== null)) this.violations.push(`readout ${item.readout ? "on a middle chunk" : "missing at the end"}`);
      return { ok: true, values: item.readout ? [fakeScore(lane.held)] : null };
    });
    this.inStep = false;
    return outcomes;
  }

  /** Tokens the model evaluated across all steps. */
  evaluatedTokens(): number {
    return this.steps.reduce((n, s) => n + s.tokens, 0);
  }

  async dispose(): Promise<void> {}
}

export const readout: Readout = { kind: "last-token-logits", tokenIds: [0] };
