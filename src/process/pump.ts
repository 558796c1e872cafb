/** EFFECT: copy a byte stream into a process's stdin (or any sink), seeing each chunk. */
export async function pump(
  from: AsyncIterable<Uint8Array>,
  to: WritableStream<Uint8Array>,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<void> {
  const writer = to.getWriter();
  try {
    for await (const chunk of from) {
      onChunk?.(chunk);
      await writer.write(chunk);
    }
  } finally {
    await writer.close().catch(() => {});
  }
}
