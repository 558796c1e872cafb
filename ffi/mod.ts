/**
 * The facade of ffi/: the only module the rest of the tree imports from here (a layering test
 * checks). Every libc symbol is in symbols.ts as data; libc.ts wraps them with typed functions
 * that turn -1 + errno into ErrnoError; socket.ts gives AF_VSOCK/AF_UNIX streams; libcrypto.ts
 * gives OpenSSL's AES-256-GCM.
 */
export * from "./errno.ts";
export * from "./libc.ts";
export * from "./libcrypto.ts";
export * from "./socket.ts";
