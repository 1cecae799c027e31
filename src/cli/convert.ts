/**
 * `rerankd convert SRC -o OUT.gguf [--outtype f32|f16|q8_0]`: a Hugging Face checkpoint (a folder,
 * or a Hub id downloaded first) to a GGUF file llama.cpp loads, with a progress bar.
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { convertCheckpoint, OUT_TYPES, type OutType } from "../models/convert/index.js";
import { createConsoleProgress, fetchModel, parseModelReference } from "../models/hub/index.js";
import { conversionProgress } from "../models/resolve.js";
import { UsageError } from "./serve-options.js";

export const CONVERT_HELP = `Usage: rerankd convert SRC -o OUT.gguf [--outtype f32|f16|q8_0]

Converts a Hugging Face checkpoint to GGUF. SRC is a checkpoint folder (config.json, safetensors,
tokenizer files) or a Hub id owner/name[@revision] (downloaded into the Hugging Face cache first).

Options:
  -o, --output OUT.gguf       where to write (written to a temporary name, renamed when complete)
  --outtype f32|f16|q8_0      tensor type of the weight matrices (default q8_0); norms stay f32
  -h, --help                  show this help`;

export interface ConvertCommand {
  source: string;
  output: string;
  outtype: OutType;
}

export function parseConvertArgs(argv: string[]): ConvertCommand | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        output: { type: "string", short: "o" },
        outtype: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) return "help";
  if (parsed.positionals.length !== 1) throw new UsageError("give exactly one SRC (a checkpoint folder or a Hub id)");
  if (!parsed.values.output) throw new UsageError("give the output file with -o OUT.gguf");
  const outtype = parsed.values.outtype ?? "q8_0";
  if (!(OUT_TYPES as readonly string[]).includes(outtype)) throw new UsageError(`--outtype must be one of ${OUT_TYPES.join(", ")}, not "${outtype}"`);
  return { source: parsed.positionals[0], output: resolve(parsed.values.output), outtype: outtype as OutType };
}

export async function runConvert(command: ConvertCommand, say: (line: string) => void = console.log): Promise<void> {
  let dir = resolve(command.source);
  if (!existsSync(dir)) {
    const ref = parseModelReference(command.source);
    if (ref.kind !== "repo") throw new UsageError("convert takes a repository, not a single file");
    const fetched = await fetchModel(ref, { progress: createConsoleProgress() });
    dir = fetched.path;
  } else if (!statSync(dir).isDirectory()) {
    throw new UsageError(`${command.source} is not a checkpoint folder`);
  }
  const result = await convertCheckpoint({
    dir,
    out: command.output,
    outtype: command.outtype,
    onProgress: conversionProgress(say, command.outtype),
  });
  for (const warning of result.warnings) say(`warning: ${warning}`);
  say(`wrote ${result.out} (${result.architecture}, ${result.tensorCount} tensors, ${command.outtype}, vocabulary ${result.vocabSize})`);
}
