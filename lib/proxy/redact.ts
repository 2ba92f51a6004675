import { Transform, type TransformCallback } from 'node:stream';

export { redactText, tokenForms } from '../redaction.js';

/** Overwrites every occurrence of every form in `buf` with `*` (same length: framing stays valid). */
function mask(buf: Buffer, forms: readonly Buffer[]): void {
  for (const f of forms) {
    for (let i = buf.indexOf(f); i !== -1; i = buf.indexOf(f, i + f.length)) buf.fill(0x2a, i, i + f.length);
  }
}

/** The forms as bytes, once per forms array (a token record's forms are one frozen array while it is cached). */
const formBytes = new WeakMap<readonly string[], readonly Buffer[]>();
function bytesOf(forms: readonly string[]): readonly Buffer[] {
  let bytes = formBytes.get(forms);
  if (!bytes) formBytes.set(forms, (bytes = forms.map((f) => Buffer.from(f))));
  return bytes;
}

/** Masks every form of the token in a whole body, in place (same length). */
export function maskBody(buf: Buffer, forms: readonly string[]): void {
  mask(buf, bytesOf(forms));
}

/** Thrown into the pipeline when a body exceeds its cap. */
export class TooLargeError extends Error {
  constructor() {
    super('body exceeds the size cap');
    this.name = 'TooLargeError';
  }
}

/**
 * A pass-through for a body on its way to the browser (or upstream), never buffering it whole:
 * counts bytes against `max` (error beyond it) and, when `forms` is given, masks the token in it. A
 * match split across chunks is found because the last `longest - 1` bytes are held back until the next
 * chunk (or the end): the only data ever buffered. Masking keeps the length, so `Content-Length` holds.
 */
export class GuardedBody extends Transform {
  private tail: Buffer = Buffer.alloc(0);
  private seen = 0;
  private readonly keep: number;
  private readonly forms: readonly Buffer[] | undefined;

  /** `forms`: the token forms to mask (see `tokenForms`), or none to only count. */
  constructor(
    private readonly max: number,
    forms: readonly string[] | undefined,
  ) {
    super();
    this.forms = forms ? bytesOf(forms) : undefined;
    this.keep = this.forms && this.forms.length ? Math.max(...this.forms.map((f) => f.length)) - 1 : 0;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) return done(new TooLargeError());
    if (!this.forms) return done(null, chunk);
    const buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    mask(buf, this.forms);
    const held = Math.min(this.keep, buf.length);
    this.tail = buf.subarray(buf.length - held);
    done(null, held === buf.length ? undefined : buf.subarray(0, buf.length - held));
  }

  override _flush(done: TransformCallback): void {
    done(null, this.tail.length ? this.tail : undefined);
  }
}
