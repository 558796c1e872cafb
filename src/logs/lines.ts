/** Read a byte stream to its end, handing each line (cut at `maxBytes`) to `onLine`. */
import { LineSplitter } from "./splitter.ts";

export async function pipeLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  maxBytes = 8192,
): Promise<void> {
  const splitter = new LineSplitter(maxBytes);
  try {
    for await (const chunk of stream) for (const line of splitter.push(chunk)) onLine(line);
  } catch { /* the pipe broke: the process is gone */ }
  for (const line of splitter.flush()) onLine(line);
}
