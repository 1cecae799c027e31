/** Entry point: Hugging Face checkpoint folder → GGUF, dispatched on config.json's `architectures`. */
import { ConvertError } from "./errors.js";
import { convertGemma } from "./gemma.js";
import { readJsonObject } from "./hf-files.js";
import { convertQwen3 } from "./qwen3.js";
import { convertXlmRoberta } from "./xlm-roberta.js";
import { OUT_TYPES, type ConvertOptions, type ConvertResult } from "./types.js";

export const SUPPORTED_ARCHITECTURES = ["GemmaForCausalLM", "XLMRobertaForSequenceClassification", "Qwen3ForCausalLM"] as const;

/**
 * Converts the checkpoint in `opts.dir` to GGUF at `opts.out`. Tensors are
 * streamed one at a time into a temporary file that is renamed to `out` only
 * when complete: on any error nothing is left at `out`.
 */
export async function convertCheckpoint(opts: ConvertOptions): Promise<ConvertResult> {
  if (!OUT_TYPES.includes(opts.outtype)) {
    throw new ConvertError(`unsupported outtype ${JSON.stringify(opts.outtype)}; expected one of ${OUT_TYPES.join(", ")}`);
  }
  const config = await readJsonObject(opts.dir, "config.json", true);
  const archs = config.architectures;
  const arch = Array.isArray(archs) && typeof archs[0] === "string" ? archs[0] : undefined;
  if (arch === undefined) {
    throw new ConvertError(`${opts.dir}/config.json has no "architectures" list; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`);
  }
  switch (arch) {
    case "GemmaForCausalLM":
      return convertGemma(opts.dir, config, opts);
    case "XLMRobertaForSequenceClassification":
      return convertXlmRoberta(opts.dir, config, opts);
    case "Qwen3ForCausalLM":
      return convertQwen3(opts.dir, config, opts);
    default:
      throw new ConvertError(`unsupported architecture ${JSON.stringify(arch)} in ${opts.dir}/config.json; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`);
  }
}
