// Proves the tiny Gemma fixture, the reference tokenizer and the reference forward pass
// against llama.cpp itself (through node-llama-cpp): same token ids, same raw "Yes" logit.
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { getLlama } from "node-llama-cpp";
import type { ControlledEvaluateInputItem, Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { readGgufHeader } from "../../src/models/gguf/reader.js";
import { GgmlType } from "../../src/models/gguf/types.js";
import { referenceForward } from "./reference-gemma.js";
import { referenceTokenize } from "./reference-tokenizer.js";
import { createRng } from "./rng.js";
import { SPECIAL_IDS, loadCorpus } from "./spm-vocab.js";
import { buildTinyGemma, storedWeights } from "./tiny-gemma.js";
import type { TinyGemma, TinyGemmaDtype } from "./tiny-gemma.js";

const PROMPT =
  "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing a prediction of either 'Yes' or 'No'.";

let llama: Llama;
before(async () => {
  llama = await getLlama({ gpu: false, build: "never" });
});
after(async () => {
  await llama.dispose();
});

interface LoadedFixture {
  fixture: TinyGemma;
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
}

async function loadFixture(dtype: TinyGemmaDtype): Promise<LoadedFixture> {
  const fixture = await buildTinyGemma({ dtype });
  const model = await llama.loadModel({ modelPath: fixture.path });
  // threads: 2 explicitly; node-llama-cpp's default oversubscribes a 2-core machine.
  const context = await model.createContext({ contextSize: 512, sequences: 1, threads: 2 });
  return { fixture, model, context, sequence: context.getSequence() };
}

async function disposeFixture(loaded: LoadedFixture): Promise<void> {
  await loaded.context.dispose();
  await loaded.model.dispose();
}

/** llama.cpp's raw logit of `target` after evaluating `tokens` from an empty sequence. */
async function llamaLastLogit(sequence: LlamaContextSequence, tokens: number[], target: number): Promise<number> {
  const last = tokens.length - 1;
  const input = tokens.map((token, i): ControlledEvaluateInputItem =>
    i === last ? [token as Token, { generateNext: { logits: { filter: { tokens: [target as Token] } } } }] : (token as Token),
  );
  try {
    const output = await sequence.controlledEvaluate(input);
    const logit = output[last]?.next.logits?.get(target as Token);
    assert.ok(logit !== undefined, "llama.cpp returned no logit");
    return logit;
  } finally {
    await sequence.clearHistory();
  }
}

/** Token sequences of length 1 to 300: real prompts (with BOS, as the reranker sends them) and random ids. */
function evaluationSequences(fixture: TinyGemma): number[][] {
  const tokenize = (text: string): number[] => referenceTokenize(fixture.vocab, text);
  const bos = SPECIAL_IDS.bos;
  const rerankPrompt = (query: string, passage: string): number[] => [bos, ...tokenize(`A: ${query}\nB: ${passage}\n${PROMPT}`)];
  const corpus = loadCorpus();
  const rng = createRng(99);
  const randomIds = (length: number): number[] => Array.from({ length }, () => 4 + rng.int(fixture.config.vocabSize - 4));
  return [
    [bos],
    [bos, ...tokenize("Yes")],
    [bos, ...tokenize("No")],
    [bos, ...tokenize("Le café est très bon à Paris.")],
    [bos, ...tokenize("北京是中国的首都。🙂")],
    rerankPrompt("what is the capital of France?", "Paris is the capital of France."),
    rerankPrompt("how many legs does a spider have?", "The weather in Berlin is mild in spring."),
    [bos, ...tokenize(corpus.slice(0, 600))].slice(0, 300),
    randomIds(2),
    randomIds(7),
    randomIds(64),
    randomIds(180),
    [bos, ...randomIds(299)],
  ];
}

interface Comparison {
  length: number;
  llama: number;
  reference: number;
  error: number;
}

async function compareLogits(loaded: LoadedFixture): Promise<Comparison[]> {
  const { fixture, sequence } = loaded;
  const yes = fixture.vocab.pieceToId.get("Yes");
  assert.ok(yes !== undefined);
  const weights = storedWeights(fixture.weights, fixture.dtype);
  const results: Comparison[] = [];
  for (const tokens of evaluationSequences(fixture)) {
    const fromLlama = await llamaLastLogit(sequence, tokens, yes);
    const reference = referenceForward(fixture.config, weights, tokens).logitFor(yes);
    results.push({ length: tokens.length, llama: fromLlama, reference, error: Math.abs(fromLlama - reference) });
  }
  return results;
}

function report(label: string, results: Comparison[]): void {
  const maxError = Math.max(...results.map((r) => r.error));
  const rows = results.map((r) => `  n=${String(r.length).padStart(3)} llama=${r.llama.toFixed(5)} ref=${r.reference.toFixed(5)} err=${r.error.toExponential(2)}`);
  console.log(`[${label}] max |llama - reference| = ${maxError.toExponential(3)}\n${rows.join("\n")}`);
}

describe("tiny Gemma fixture (f32) against llama.cpp", () => {
  let loaded: LoadedFixture;
  before(async () => {
    loaded = await loadFixture("f32");
  });
  after(async () => {
    await disposeFixture(loaded);
  });

  it("writes the hparams and tensors llama.cpp's gemma loader expects", async () => {
    const { fixture, model } = loaded;
    const header = await readGgufHeader(fixture.path);
    assert.deepEqual(header.metadata["general.architecture"], { type: "string", value: "gemma" });
    assert.deepEqual(header.metadata["gemma.attention.head_count_kv"], { type: "u32", value: 1 });
    assert.equal(header.tensors.length, 2 + 9 * fixture.config.numLayers);
    assert.ok(!header.tensors.some((t) => t.name === "output.weight"), "LM head is tied to token_embd");
    const embd = header.tensors.find((t) => t.name === "token_embd.weight");
    assert.deepEqual(embd?.shape, [fixture.config.hiddenSize, fixture.config.vocabSize]);
    assert.equal(embd?.type, GgmlType.F32);
    assert.equal(model.tokens.bos, SPECIAL_IDS.bos);
    assert.equal(model.tokens.eos, SPECIAL_IDS.eos);
    assert.equal(model.fileInfo.metadata.general.architecture, "gemma");
  });

  it("reuses the cached GGUF when the options are unchanged", async () => {
    const again = await buildTinyGemma({ dtype: "f32" });
    assert.equal(again.path, loaded.fixture.path);
    assert.equal(statSync(again.path).mtimeMs, statSync(loaded.fixture.path).mtimeMs);
    const other = await buildTinyGemma({ dtype: "f32", seed: 1 });
    assert.notEqual(other.path, loaded.fixture.path);
  });

  it("tokenizes exactly like llama.cpp's SPM tokenizer", () => {
    const { fixture, model } = loaded;
    const corpus = loadCorpus();
    const rng = createRng(5);
    const samples = [
      "",
      " ",
      "   ",
      "\n",
      "\n\n\n",
      "Yes",
      "No",
      "A:",
      "B:",
      " Yes",
      "Yes.",
      "hello world",
      "  leading and trailing  ",
      "multiple   spaces\tand\ttabs",
      "line one\nline two\r\nline three",
      PROMPT,
      "A: what is the capital of France?\nB: Paris is the capital and the most populous city of France.",
      "Crème brûlée, naïve façade, jalapeño",
      "Ça va ? ¿Dónde está? Schöne Grüße",
      "北京是中国的首都。東京は日本の首都です。서울",
      "Emoji 🙂😀🎉 ❤️ 👍🏽 🦀",
      "Привет мир, γειά σου κόσμε, שלום",
      "1234567890 3.14159 -17 +23 50% $4.99 €5",
      "<bos> <pad> <0x41> <unk> literal special-looking text",
      "e\u0301 combining accent vs é",
      "\u0000 nul and \u007f del",
      corpus,
    ];
    // Random slices of the corpus and random strings from a mixed alphabet.
    const alphabet = Array.from("ab cdeé北京🙂\n\t.?Ж🦀Yes No:A");
    for (let i = 0; i < 150; i++) {
      const start = rng.int(corpus.length);
      samples.push(corpus.slice(start, start + 1 + rng.int(120)));
      samples.push(Array.from({ length: 1 + rng.int(30) }, () => alphabet[rng.int(alphabet.length)]).join(""));
    }
    for (const text of samples) {
      assert.deepEqual(referenceTokenize(fixture.vocab, text), model.tokenize(text, false), `text ${JSON.stringify(text)}`);
    }
  });

  it("matches the reference forward pass on the raw last-position 'Yes' logit", async () => {
    const results = await compareLogits(loaded);
    report("f32", results);
    assert.ok(results.length >= 10);
    for (const r of results) {
      assert.ok(r.error <= 5e-3 + 2e-3 * Math.abs(r.reference), `n=${r.length}: llama ${r.llama} vs reference ${r.reference}`);
    }
    // The logit must carry signal: it spans a useful range across inputs...
    const logits = results.map((r) => r.reference);
    assert.ok(Math.max(...logits) - Math.min(...logits) > 3, `logits ${logits.join(", ")}`);
    assert.ok(logits.every((l) => Math.abs(l) < 20));
  });

  it("depends on context and positions, not only on the last token", async () => {
    const { fixture, sequence } = loaded;
    const yes = fixture.vocab.pieceToId.get("Yes");
    assert.ok(yes !== undefined);
    const tokens = referenceTokenize(fixture.vocab, "the passage answers the query");
    const base = await llamaLastLogit(sequence, [SPECIAL_IDS.bos, ...tokens], yes);
    // Same tokens, prefix order shuffled (same last token): only attention over positions can tell them apart.
    const shuffled = [...tokens.slice(0, -1)].reverse().concat(tokens.slice(-1));
    const reordered = await llamaLastLogit(sequence, [SPECIAL_IDS.bos, ...shuffled], yes);
    const reference = referenceForward(fixture.config, fixture.weights, [SPECIAL_IDS.bos, ...shuffled]).logitFor(yes);
    assert.ok(Math.abs(base - reordered) > 0.05, `base ${base} vs reordered ${reordered}`);
    assert.ok(Math.abs(reordered - reference) <= 5e-3 + 2e-3 * Math.abs(reference));
  });
});

// Quantized fixtures: the reference uses the same rounded weights llama.cpp sees. f16 stays
// within the f32 tolerance; q8_0 needs more room because ggml's CPU matmul also quantizes the
// activations to q8_0 (its vec_dot_type), which the float64 reference does not imitate.
const QUANTIZED_TOLERANCE: Record<Exclude<TinyGemmaDtype, "f32">, (reference: number) => number> = {
  f16: (reference) => 5e-3 + 2e-3 * Math.abs(reference),
  q8_0: (reference) => 8e-2 + 1e-2 * Math.abs(reference),
};

for (const dtype of ["f16", "q8_0"] as const) {
  describe(`tiny Gemma fixture (${dtype}) against llama.cpp`, () => {
    it("loads and matches the reference computed with the stored weights", async () => {
      const loaded = await loadFixture(dtype);
      try {
        const header = await readGgufHeader(loaded.fixture.path);
        const expectedType = dtype === "f16" ? GgmlType.F16 : GgmlType.Q8_0;
        assert.equal(header.tensors.find((t) => t.name === "blk.0.attn_q.weight")?.type, expectedType);
        assert.equal(header.tensors.find((t) => t.name === "blk.0.attn_norm.weight")?.type, GgmlType.F32);
        const results = await compareLogits(loaded);
        report(dtype, results);
        for (const r of results) {
          assert.ok(r.error <= QUANTIZED_TOLERANCE[dtype](r.reference), `n=${r.length}: llama ${r.llama} vs reference ${r.reference}`);
        }
      } finally {
        await disposeFixture(loaded);
      }
    });
  });
}
