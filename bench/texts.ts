/**
 * Queries and documents of a given length in the model's tokens, cut from the test corpus
 * (multilingual prose), deterministic for a seed: every run sends the same texts.
 */
import { loadCorpus } from "../test/support/spm-vocab.js";
import { createRng } from "../test/support/rng.js";

export type TokenCounter = (text: string) => number[];
export type Detokenizer = (tokens: readonly number[]) => string;

export class TextMaker {
  private readonly words: string[];
  private readonly rng;

  constructor(
    private readonly tokenize: TokenCounter,
    private readonly detokenize: Detokenizer,
    seed: number,
  ) {
    this.words = loadCorpus()
      .split(/\s+/u)
      .filter((w) => w.length > 0);
    this.rng = createRng(seed);
  }

  /** A text of about `tokens` tokens (exact up to the tokenizer's merges at the cut). */
  text(tokens: number): string {
    let start = this.rng.int(this.words.length);
    const parts: string[] = [];
    let text = "";
    while (this.tokenize(text).length < tokens + 4) {
      parts.push(this.words[start % this.words.length]);
      start++;
      text = parts.join(" ");
    }
    const cut = this.tokenize(text).slice(0, tokens);
    return this.detokenize(cut).trim();
  }

  /** `n` distinct texts of about `tokens` tokens. */
  texts(n: number, tokens: number): string[] {
    const out = new Set<string>();
    while (out.size < n) out.add(this.text(tokens));
    return [...out];
  }
}
