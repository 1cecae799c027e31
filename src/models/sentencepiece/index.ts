export {
  ModelType,
  PieceType,
  SentencePieceModelError,
  parseSentencePieceModel,
  readSentencePieceModel,
  type NormalizerSpec,
  type PieceTypeValue,
  type SentencePiece,
  type SentencePieceModel,
  type TrainerSpec,
} from "./model.js";
export { ProtoReader, ProtobufError } from "./protobuf.js";
