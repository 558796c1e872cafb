/**
 * PURE: the transport's failures (http.ts) and the words for them. A message says what stopped
 * and how far the exchange had got: "no progress for 30 s after 1.2 MiB of 4.8 MiB sent".
 */

export type HttpErrorKind =
  /** No TCP connection (refused, unreachable, or not within connectMs). */
  | "connect"
  /** The TLS handshake failed (certificate, protocol) or did not finish within connectMs. */
  | "tls"
  /** No byte sent or received for idleMs. */
  | "idle"
  /** The caller's overall deadline passed. */
  | "deadline"
  /** The peer closed or reset the connection mid-exchange. */
  | "closed"
  /** The answer is not HTTP/1.1 as we read it. */
  | "protocol";

export class HttpError extends Error {
  readonly kind: HttpErrorKind;

  constructor(kind: HttpErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HttpError";
    this.kind = kind;
  }
}

/** How far one request/response exchange has got. */
export interface Progress {
  phase: "connect" | "send" | "wait" | "receive";
  /** Body bytes the kernel accepted, of `toSend`. */
  sent: number;
  toSend: number;
  /** Response bytes read (head included), and the body's declared length once known. */
  received: number;
  bodyReceived: number;
  toReceive: number | undefined;
}

export function newProgress(toSend: number): Progress {
  return { phase: "connect", sent: 0, toSend, received: 0, bodyReceived: 0, toReceive: undefined };
}

/** 512 B, 12.5 KiB, 1.2 MiB, 3.0 GiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** 30 s, 1.5 s, 0.2 s. */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : Number(s.toFixed(1))} s`;
}

/** "after 1.2 MiB of 4.8 MiB sent", "after sending 4.8 MiB", "after 3.0 MiB received". */
export function describeProgress(p: Progress): string {
  switch (p.phase) {
    case "connect":
      return "while connecting";
    case "send":
      return `after ${formatBytes(p.sent)} of ${formatBytes(p.toSend)} sent`;
    case "wait":
      return p.toSend ? `after sending ${formatBytes(p.toSend)}` : "after sending the request";
    case "receive":
      return p.toReceive === undefined
        ? `after ${formatBytes(p.bodyReceived)} received`
        : `after ${formatBytes(p.bodyReceived)} of ${formatBytes(p.toReceive)} received`;
  }
}

/** The idle timeout's message: which timer fired, after how long, and how far we got. */
export function idleMessage(p: Progress, idleMs: number): string {
  const what = p.phase === "wait" ? "no answer" : "no progress";
  return `${what} for ${formatSeconds(idleMs)} ${describeProgress(p)}`;
}

export function deadlineMessage(p: Progress, deadlineMs: number): string {
  return `not done within the deadline of ${formatSeconds(deadlineMs)} (${describeProgress(p)})`;
}

export function closedMessage(p: Progress, why: string): string {
  const where = p.phase === "wait" ? "before an answer" : describeProgress(p);
  return `the connection was closed ${where}${why ? ` (${why})` : ""}`;
}
