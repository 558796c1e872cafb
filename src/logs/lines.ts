/** Read a byte stream to its end, handing each line (cut at `maxBytes`) to `onLine`. */
import { LineSplitter } from "./splitter.ts";
import { sleep } from "../util/sleep.ts";

/**
 * After a small read, wait this long before the next: a chatty child (log_statement=all writes
 * one line per write) then arrives in chunks of many lines instead of one read per line. A
 * 64 KiB pipe fills in 5 ms only above ~13 MB/s, and a read that large skips the wait, so the
 * writer never blocks on us.
 */
const COALESCE_MS = 5;
const SMALL_READ = 16 * 1024;

/** Each chunk with the splitter that carries partial lines; resolves with the last line. */
export async function pipeChunks(
  stream: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array, splitter: LineSplitter) => void,
  maxBytes = 8192,
): Promise<string[]> {
  const splitter = new LineSplitter(maxBytes);
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      onChunk(value, splitter);
      if (value.length < SMALL_READ) await sleep(COALESCE_MS);
    }
  } catch { /* the pipe broke: the process is gone */ }
  return splitter.flush();
}

export async function pipeLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  maxBytes = 8192,
): Promise<void> {
  const rest = await pipeChunks(stream, (chunk, splitter) => {
    for (const line of splitter.push(chunk)) onLine(line);
  }, maxBytes);
  rest.forEach(onLine);
}
