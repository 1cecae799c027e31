/** A checkpoint that cannot be converted: missing or corrupt files, unsupported architecture, inconsistent shapes. */
export class ConvertError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConvertError";
  }
}
