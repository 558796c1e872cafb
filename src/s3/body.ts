/**
 * A response body read into memory, never more than a cap: a store (or anything answering on
 * its address) that sends a 1 GiB answer where we expect a 16 MiB segment must cost us the cap,
 * not the gigabyte. The declared Content-Length is checked first, then every chunk as it
 * arrives; past the cap the stream is cancelled (the connection is dropped).
 */

export class BodyTooLarge extends Error {
  readonly limit: number;
  /** The Content-Length that gave it away, when there was one. */
  readonly declared: number | undefined;

  constructor(limit: number, declared?: number) {
    super(
      declared === undefined
        ? `body larger than ${limit} bytes`
        : `body of ${declared} bytes, larger than ${limit}`,
    );
    this.name = "BodyTooLarge";
    this.limit = limit;
    this.declared = declared;
  }
}

/** `declared`: the Content-Length, when the answer has one. */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  { declared }: { declared?: number } = {},
): Promise<Uint8Array<ArrayBuffer>> {
  if (declared !== undefined && declared > limit) {
    body?.cancel().catch(() => {});
    throw new BodyTooLarge(limit, declared);
  }
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      reader.cancel().catch(() => {});
      throw new BodyTooLarge(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1 && chunks[0]!.buffer instanceof ArrayBuffer) {
    return chunks[0] as Uint8Array<ArrayBuffer>;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
