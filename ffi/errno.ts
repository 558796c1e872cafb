/** Linux errno numbers we name in messages (x86_64 and aarch64 share these). */
export const errnoNames: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  24: "EMFILE",
  23: "ENFILE",
  28: "ENOSPC",
  31: "EMLINK",
  40: "ELOOP",
  32: "EPIPE",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  105: "ENOBUFS",
  107: "ENOTCONN",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
  115: "EINPROGRESS",
};

export class ErrnoError extends Error {
  readonly errno: number;
  readonly code: string;

  constructor(call: string, errno: number, detail?: string) {
    const code = errnoNames[errno] ?? `errno ${errno}`;
    super(`${call}${detail ? ` ${detail}` : ""} failed: ${code}`);
    this.name = "ErrnoError";
    this.errno = errno;
    this.code = code;
  }
}
