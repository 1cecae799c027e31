/**
 * What one evaluation step costs by its shape (how many lanes, how many tokens each), measured
 * through rerankd's own backend: the numbers behind the scheduler's CPU policy and the defaults of
 * --max-num-seqs and --max-num-batched-tokens. Every round runs every shape once, back to back, and
 * each shape's tokens/s is divided by that of one lane of 256 tokens (llama.cpp alone's shape) in
 * the same round: this VM's speed drifts by +-15% within minutes, a round by little.
 */
import { familyForArchitecture } from "../src/families/index.js";
import type { StepItem } from "../src/engine/backend.js";
import { loadLlamaBackend } from "../src/models/llama-backend.js";
import { ceilingTokens, median } from "./direct.js";

export interface StepShape {
  /** Tokens of each lane's chunk; every lane reads its last token's logits (as a pair's end does). */
  lanes: readonly number[];
  /** What the shape stands for in the workloads. */
  role: string;
}

export const REFERENCE_SHAPE: StepShape = { lanes: [256], role: "llama.cpp alone's shape (the reference)" };

export const STEP_SHAPES: readonly StepShape[] = [
  REFERENCE_SHAPE,
  { lanes: [128], role: "one lane, a 128-token step" },
  { lanes: [64, 64], role: "two lanes, 128 tokens" },
  { lanes: [32, 32, 32, 32], role: "four lanes, 128 tokens" },
  { lanes: [44, 44], role: "W4's long request at 128 tokens: two 44-token document parts" },
  { lanes: [44, 44, 44], role: "W4's long request, three parts (needs 132)" },
  { lanes: [45, 45, 45, 45], role: "W4's long request, four parts (needs 180)" },
  { lanes: [64, 64, 64], role: "three lanes, 192 tokens" },
  { lanes: [63], role: "a 2-document request's first step: query prefix and first pair" },
  { lanes: [43], role: "its second step: the second pair after a copied prefix" },
  { lanes: [43, 43], role: "two pairs after copied prefixes" },
  { lanes: [20, 43], role: "unequal chunks: two ubatches, one pass over the weights each" },
];

export interface StepShapeResult {
  lanes: number[];
  role: string;
  tokens: number;
  medianMs: number;
  /** tokens/s over the reference shape's in the same round: median over rounds. */
  relative: number;
  relativeByRound: number[];
}

export async function measureStepShapes(path: string, options: { threads: number; rounds: number }): Promise<StepShapeResult[]> {
  const shapes = STEP_SHAPES;
  const widest = Math.max(...shapes.map((s) => s.lanes.length));
  const longest = Math.max(...shapes.flatMap((s) => s.lanes));
  const batch = Math.max(...shapes.map((s) => s.lanes.reduce((a, b) => a + b, 0)));
  const backend = await loadLlamaBackend({ modelPath: path, device: "cpu", threads: options.threads, lanes: widest, batchTokens: batch, laneCapacity: () => longest });
  try {
    const stepper = backend.stepper;
    if (!stepper) throw new Error("the llama.cpp backend evaluates explicit steps");
    const readout = familyForArchitecture("gemma").bind(backend.tokenizer).readout;
    const tokens = ceilingTokens(longest + 64 * widest);
    const run = async (shape: StepShape, round: number): Promise<number> => {
      // Each lane its own tokens (offset by lane and round), so no two lanes or rounds repeat.
      const items: StepItem[] = shape.lanes.map((n, i) => {
        const start = (i * 64 + round * 7) % (tokens.length - n);
        return { lane: backend.lanes[i], tokens: tokens.slice(start, start + n), from: 0, to: n, readout };
      });
      const started = performance.now();
      const outcomes = await stepper.step(items);
      const ms = performance.now() - started;
      for (const outcome of outcomes) if (!outcome.ok) throw outcome.error;
      for (const item of items) await stepper.truncate(item.lane, 0);
      return ms;
    };
    await run(REFERENCE_SHAPE, 0); // untimed: builds the graph and pages the weights in
    const ms = shapes.map((): number[] => []);
    for (let round = 0; round < options.rounds; round++) {
      for (const [k, shape] of shapes.entries()) ms[k].push(await run(shape, round));
    }
    const reference = ms[shapes.indexOf(REFERENCE_SHAPE)];
    const referenceTokens = REFERENCE_SHAPE.lanes[0];
    return shapes.map((shape, k) => {
      const total = shape.lanes.reduce((a, b) => a + b, 0);
      const relativeByRound = ms[k].map((x, round) => total / x / (referenceTokens / reference[round]));
      return { lanes: [...shape.lanes], role: shape.role, tokens: total, medianMs: median(ms[k]), relative: median(relativeByRound), relativeByRound };
    });
  } finally {
    await backend.dispose();
  }
}
