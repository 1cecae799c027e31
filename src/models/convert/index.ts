export { convertCheckpoint, SUPPORTED_ARCHITECTURES } from "./convert.js";
export { ConvertError } from "./errors.js";
export { ggmlTypeFor } from "./tensor-plan.js";
export {
  CONVERTER_VERSION,
  checkpointContentHash,
  checkpointRevision,
  convertedGgufPath,
  defaultCacheRoot,
  ensureConvertedGguf,
  hubSnapshotOf,
  repoDirName,
  type ConvertedPathOptions,
  type EnsureConvertedOptions,
  type EnsureConvertedResult,
} from "./cache.js";
export { OUT_TYPES, type ConvertOptions, type ConvertProgress, type ConvertResult, type OutType } from "./types.js";
export { TokenType, convertSentencePieceVocab, gemmaTokenizerMetadata, type ConvertedVocab } from "./vocab.js";
