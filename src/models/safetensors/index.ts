export { SafetensorsCheckpoint, SINGLE_FILE, INDEX_FILE } from "./checkpoint.js";
export { SafetensorsError, SafetensorsFile, MAX_HEADER_BYTES, type SafetensorsTensorInfo } from "./file.js";
export { decodeFloats, dtypeBits, isFloatDtype, isKnownDtype, type FloatDtype } from "./dtype.js";
export { encodeSafetensors, writeSafetensors, roundToBf16, toBf16Bits, type SafetensorsWriteTensor } from "./write.js";
