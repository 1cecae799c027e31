/**
 * A ModelBackend without a model, for scheduler tests: a pair's "logit" is a pure function of its
 * tokens, evaluation takes a controllable time, and every call is recorded.
 */
import type { BackendInfo, EvaluationLane, ModelBackend, Tokenizer } from "../../src/engine/backend.js";
import type { Readout } from "../../src/families/types.js";

export const fakeScore = (tokens: readonly number[]): number => tokens.reduce((s, t, i) => s + t * (i + 1), 0) % 1009;

/** One token per Unicode code point: token ids are readable in failures and need no vocabulary. */
export function codePointTokenizer(): Tokenizer {
  return {
    tokenize: (text) => [...text].map((c) => c.codePointAt(0) ?? 0),
    detokenize: (ids) => String.fromCodePoint(...ids),
    bosToken: 1,
    eosToken: 2,
    vocabularySize: 0x110000,
  };
}

/** What a model-less backend reports: `lanes` lanes of 4096 tokens, `batchTokens` per step. */
export function fakeBackendInfo(lanes: number, batchTokens: number): BackendInfo {
  return {
    architecture: "fake",
    name: null,
    device: "cpu",
    threads: 1,
    lanes,
    laneCapacity: 4096,
    batchTokens,
    fileSizeBytes: 0,
  };
}

export interface FakeCall {
  lane: number;
  tokens: readonly number[];
  reused: number;
  startedAt: number;
}

export class FakeBackend implements ModelBackend {
  readonly calls: FakeCall[] = [];
  readonly lanes: FakeLane[];
  readonly info: BackendInfo;
  /** Throw from the evaluation of any pair containing this token. */
  failOnToken: number | null = null;
  delayMs = 2;
  readonly tokenizer: Tokenizer = codePointTokenizer();

  constructor(lanes: number) {
    this.lanes = Array.from({ length: lanes }, (_, id) => new FakeLane(id, this));
    this.info = fakeBackendInfo(lanes, 512);
  }

  async dispose(): Promise<void> {}
}

class FakeLane implements EvaluationLane {
  private held: number[] = [];
  constructor(
    readonly id: number,
    private readonly backend: FakeBackend,
  ) {}

  heldTokens(): readonly number[] {
    return this.held;
  }

  async evaluate(tokens: readonly number[], _readout: Readout): Promise<{ values: number[]; evaluatedTokens: number }> {
    let reused = 0;
    while (reused < Math.min(this.held.length, tokens.length - 1) && this.held[reused] === tokens[reused]) reused++;
    this.backend.calls.push({ lane: this.id, tokens, reused, startedAt: performance.now() });
    await new Promise((r) => setTimeout(r, this.backend.delayMs));
    if (this.backend.failOnToken !== null && tokens.includes(this.backend.failOnToken)) {
      this.held = [];
      throw new Error("injected evaluation failure");
    }
    this.held = [...tokens];
    return { values: [fakeScore(tokens)], evaluatedTokens: tokens.length - reused };
  }

  async reset(): Promise<void> {
    this.held = [];
  }
}
