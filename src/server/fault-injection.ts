/**
 * A TESTING AID, not a feature: RERANKD_FAULT_INJECT makes the real engine fail on purpose, so
 * the end-to-end fault tests run the real CLI on a real model. Read once at start (src/cli/serve.ts),
 * absent from --help, and announced in the log when set. Unset, the backend is used untouched.
 *
 *   RERANKD_FAULT_INJECT=evaluate:every=N
 *
 * Every Nth pair evaluation (counted across all lanes) gets its last token replaced with an id
 * outside the vocabulary before it reaches llama.cpp, which then rejects the whole decode batch
 * ("invalid token"): every pair in that batch fails, as with a real engine error mid-batch, and the
 * scheduler's recovery path (lane reset) runs against the real llama.cpp context. Should a backend
 * accept the bad token anyway, the evaluation is failed here, so the fault always happens.
 */
import type { EvaluationLane, ModelBackend } from "../engine/backend.js";
import type { Readout } from "../families/types.js";

export const FAULT_ENV = "RERANKD_FAULT_INJECT";

export interface FaultSpec {
  kind: "evaluate";
  every: number;
}

export class FaultSpecError extends Error {
  override name = "FaultSpecError";
}

export function parseFaultSpec(text: string | undefined): FaultSpec | null {
  if (text === undefined || text.trim() === "") return null;
  const match = /^evaluate:every=(\d+)$/.exec(text.trim());
  if (!match || Number(match[1]) < 1) throw new FaultSpecError(`${FAULT_ENV} must be "evaluate:every=N" with N >= 1, not "${text}"`);
  return { kind: "evaluate", every: Number(match[1]) };
}

export interface FaultyBackend extends ModelBackend {
  /** Evaluations made to fail so far. */
  readonly injected: () => number;
}

export function withFaults(backend: ModelBackend, spec: FaultSpec): FaultyBackend {
  let evaluations = 0;
  let injected = 0;
  const invalid = Math.max(backend.tokenizer.vocabularySize, 1) + 1000;
  const lanes = backend.lanes.map(
    (lane): EvaluationLane => ({
      id: lane.id,
      heldTokens: () => lane.heldTokens(),
      reset: () => lane.reset(),
      async evaluate(tokens: readonly number[], readout: Readout) {
        evaluations++;
        if (evaluations % spec.every !== 0) return lane.evaluate(tokens, readout);
        injected++;
        await lane.evaluate([...tokens.slice(0, -1), invalid], readout);
        throw new Error("injected fault: the engine accepted an out-of-vocabulary token");
      },
    }),
  );
  return {
    info: backend.info,
    tokenizer: backend.tokenizer,
    lanes,
    dispose: () => backend.dispose(),
    injected: () => injected,
  };
}
