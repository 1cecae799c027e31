/**
 * Just enough of the protobuf wire format to read SentencePiece models:
 * varints, 32/64-bit fixed fields and length-delimited fields; anything else is
 * skipped by wire type. Every read is bounds-checked.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export class ProtobufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtobufError";
  }
}

export class ProtoReader {
  pos: number;
  private readonly view: DataView;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.byteLength,
    /** Names the message being read, for errors. */
    readonly context = "message",
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new ProtobufError(`truncated ${this.context}: ${what} needs ${n} bytes at offset ${this.pos} but only ${this.end - this.pos} remain`);
    }
  }

  /**
   * A varint as a JS number holding its low 32 bits, unsigned. int32 fields
   * with negative values are 10-byte varints; `| 0` on the result gives them back.
   */
  varint32(): number {
    let result = 0;
    for (let i = 0; i < 10; i++) {
      this.need(1, "varint");
      const b = this.buf[this.pos++];
      if (i < 5) result |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) {
        if (i === 9 && b > 1) throw new ProtobufError(`malformed varint in ${this.context} ending at offset ${this.pos}`);
        return result >>> 0;
      }
    }
    throw new ProtobufError(`malformed varint in ${this.context} at offset ${this.pos} (more than 10 bytes)`);
  }

  int32(): number {
    return this.varint32() | 0;
  }

  bool(): boolean {
    return this.varint32() !== 0;
  }

  float(): number {
    this.need(4, "float");
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Returns [fieldNumber, wireType]. */
  tag(): [number, number] {
    const t = this.varint32();
    const field = t >>> 3;
    if (field === 0) throw new ProtobufError(`invalid field number 0 in ${this.context} at offset ${this.pos}`);
    return [field, t & 7];
  }

  /** The bounds of a length-delimited field; advances past it. */
  lengthDelimited(): { start: number; end: number } {
    const len = this.varint32();
    this.need(len, "length-delimited field");
    const start = this.pos;
    this.pos += len;
    return { start, end: this.pos };
  }

  bytes(): Uint8Array {
    const { start, end } = this.lengthDelimited();
    return this.buf.subarray(start, end);
  }

  string(): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes());
    } catch (err) {
      if (err instanceof ProtobufError) throw err;
      throw new ProtobufError(`invalid UTF-8 string in ${this.context} before offset ${this.pos}`);
    }
  }

  /** A sub-reader over a nested message. */
  message(context: string): ProtoReader {
    const { start, end } = this.lengthDelimited();
    return new ProtoReader(this.buf, start, end, context);
  }

  skip(wireType: number, field: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint32();
        return;
      case WIRE_I64:
        this.need(8, `field ${field}`);
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_I32:
        this.need(4, `field ${field}`);
        this.pos += 4;
        return;
      default:
        throw new ProtobufError(`unsupported wire type ${wireType} for field ${field} in ${this.context} at offset ${this.pos}`);
    }
  }

  /** Reads a field only if its wire type is the expected one. */
  expect(wireType: number, expected: number, field: number): void {
    if (wireType !== expected) {
      throw new ProtobufError(`field ${field} of ${this.context} has wire type ${wireType}, expected ${expected}`);
    }
  }
}
