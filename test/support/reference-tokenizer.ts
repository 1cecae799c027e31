// Independent TypeScript port of llama.cpp's SPM tokenizer (llm_tokenizer_spm_session
// in src/llama-vocab.cpp), for raw text with parse_special = false and Gemma's
// add_space_prefix = false:
//
//  1. replace every " " with "▁" (llama_escape_whitespace; no other whitespace changes),
//  2. split into UTF-8 characters,
//  3. seed a max-priority queue with every adjacent pair whose concatenation is a vocab
//     piece, keyed by that piece's score; ties go to the leftmost pair (smaller left index),
//  4. pop: skip stale entries (either side already merged away or grown), otherwise merge
//     the right symbol into the left and queue the new pairs with its neighbours,
//  5. emit each final symbol's id; a symbol not in the vocabulary (only possible for a
//     single character) is emitted as one <0xXX> byte token per UTF-8 byte.
//
// llama.cpp's resegment() also consults rev_merge for symbols not in the vocab, but every
// multi-character symbol was produced by a merge whose result is a vocab piece, and a single
// valid UTF-8 character never equals a two-symbol concatenation, so that branch is dead for
// well-formed input and is omitted here.

import { SPACE_PIECE, byteTokenText } from "./spm-vocab.js";

export interface SpmTokenizerVocab {
  pieceToId: ReadonlyMap<string, number>;
  scores: readonly number[];
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  /** Length of left+right when queued; a mismatch later means the entry is stale. */
  length: number;
}

/** True when `a` should be popped before `b` (std::priority_queue with llm_bigram_spm::comparator). */
function bigramBefore(a: Bigram, b: Bigram): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}

class BigramQueue {
  private readonly heap: Bigram[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(item: Bigram): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!bigramBefore(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  pop(): Bigram | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < heap.length && bigramBefore(heap[l], heap[best])) best = l;
        if (r < heap.length && bigramBefore(heap[r], heap[best])) best = r;
        if (best === i) break;
        [heap[i], heap[best]] = [heap[best], heap[i]];
        i = best;
      }
    }
    return top;
  }
}

interface SymbolNode {
  text: string;
  prev: number;
  next: number;
}

const utf8 = new TextEncoder();

/** Token ids llama.cpp would produce for `text` (no BOS/EOS, special-token text not parsed). */
export function referenceTokenize(vocab: SpmTokenizerVocab, text: string): number[] {
  if (text === "") return [];
  // node-llama-cpp hands llama.cpp UTF-8; lone surrogates become U+FFFD on the way.
  const wellFormed = new TextDecoder().decode(utf8.encode(text));
  const escaped = wellFormed.replaceAll(" ", SPACE_PIECE);

  const chars = Array.from(escaped);
  const symbols: SymbolNode[] = chars.map((char, i) => ({
    text: char,
    prev: i - 1,
    next: i + 1 < chars.length ? i + 1 : -1,
  }));

  const queue = new BigramQueue();
  const tryAddBigram = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const merged = symbols[left].text + symbols[right].text;
    const id = vocab.pieceToId.get(merged);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id], length: merged.length });
  };

  for (let i = 1; i < symbols.length; i++) tryAddBigram(i - 1, i);

  while (queue.size > 0) {
    const bigram = queue.pop();
    if (!bigram) break;
    const leftSym = symbols[bigram.left];
    const rightSym = symbols[bigram.right];
    if (leftSym.text === "" || rightSym.text === "" || leftSym.text.length + rightSym.text.length !== bigram.length) continue;

    leftSym.text += rightSym.text;
    rightSym.text = "";
    leftSym.next = rightSym.next;
    if (rightSym.next >= 0) symbols[rightSym.next].prev = bigram.left;

    tryAddBigram(leftSym.prev, bigram.left);
    tryAddBigram(bigram.left, leftSym.next);
  }

  const ids: number[] = [];
  for (let i = 0; i !== -1; i = symbols[i].next) {
    const symbol = symbols[i].text;
    const id = vocab.pieceToId.get(symbol);
    if (id !== undefined) {
      ids.push(id);
      continue;
    }
    for (const byte of utf8.encode(symbol)) {
      const byteId = vocab.pieceToId.get(byteTokenText(byte));
      if (byteId === undefined) throw new Error(`vocabulary has no byte token for 0x${byte.toString(16)}`);
      ids.push(byteId);
    }
  }
  return ids;
}
