/**
 * AES-256-GCM through OpenSSL's libcrypto (the other library we dlopen besides libc). Deno's
 * own AES-GCM (WebCrypto and node:crypto alike) runs ~12 ms per MiB here; OpenSSL uses the
 * CPU's AES and carry-less multiply instructions: ~0.25 ms per MiB. Short calls on the
 * calling thread (a 1 MiB record is well under a millisecond), so no thread hop. Where the
 * library or FFI is missing (a command whose permission profile has none), `aeadAvailable()`
 * is false and callers use Deno's own.
 */

/** (ctx, cipher, engine, key, iv) */
const INIT = {
  parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
  result: "i32",
} as const;
/** (ctx, out, int *outl, in, inl) */
const UPDATE = {
  parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
  result: "i32",
} as const;
/** (ctx, out, int *outl) */
const FINAL = { parameters: ["pointer", "buffer", "buffer"], result: "i32" } as const;

const symbols = {
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_EncryptInit_ex: INIT,
  EVP_DecryptInit_ex: INIT,
  EVP_EncryptUpdate: UPDATE,
  EVP_DecryptUpdate: UPDATE,
  EVP_EncryptFinal_ex: FINAL,
  EVP_DecryptFinal_ex: FINAL,
  // (ctx, type, arg, ptr)
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
} as const;

const GCM_GET_TAG = 0x10;
const GCM_SET_TAG = 0x11;
const TAG = 16;
/** inl is an int: feed at most this much per call. */
const STEP = 1 << 30;

let lib: Deno.DynamicLibrary<typeof symbols>["symbols"] | null | undefined;

function crypto(): Deno.DynamicLibrary<typeof symbols>["symbols"] | null {
  if (lib !== undefined) return lib;
  try {
    // Asked first: a command whose profile revoked ffi must not be prompted for it.
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") throw new Error("no ffi");
    lib = Deno.dlopen("libcrypto.so.3", symbols).symbols;
  } catch {
    lib = null;
  }
  return lib;
}

/** Whether libcrypto's AES-256-GCM is usable here (permission and library present). */
export function aeadAvailable(): boolean {
  return crypto() !== null;
}

function run<T>(
  decrypt: boolean,
  key: Uint8Array,
  iv: Uint8Array,
  body: (c: NonNullable<typeof lib>, ctx: Deno.PointerValue) => T,
): T {
  const c = crypto();
  if (!c) throw new Error("libcrypto is not available");
  if (key.length !== 32 || iv.length !== 12) {
    throw new Error("AES-256-GCM needs a 32-byte key, a 12-byte nonce");
  }
  const ctx = c.EVP_CIPHER_CTX_new();
  if (ctx === null) throw new Error("EVP_CIPHER_CTX_new failed");
  try {
    const init = decrypt ? c.EVP_DecryptInit_ex : c.EVP_EncryptInit_ex;
    if (init(ctx, c.EVP_aes_256_gcm(), null, key as BufferSource, iv as BufferSource) !== 1) {
      throw new Error("AES-256-GCM init failed");
    }
    return body(c, ctx);
  } finally {
    c.EVP_CIPHER_CTX_free(ctx);
  }
}

/** Push `input` through Update; the bytes written into `out` from 0. */
function update(
  fn: (
    ctx: Deno.PointerValue,
    out: BufferSource,
    outl: BufferSource,
    input: BufferSource,
    inl: number,
  ) => number,
  ctx: Deno.PointerValue,
  input: Uint8Array,
  out: Uint8Array,
): number {
  const outl = new Int32Array(1);
  let written = 0;
  for (let off = 0; off < input.length; off += STEP) {
    const part = input.subarray(off, Math.min(input.length, off + STEP));
    if (
      fn(ctx, out.subarray(written) as BufferSource, outl, part as BufferSource, part.length) !== 1
    ) {
      throw new Error("AES-256-GCM update failed");
    }
    written += outl[0]!;
  }
  return written;
}

/**
 * AES-256-GCM of `plain` (no associated data): the ciphertext, then the 16-byte tag. Written
 * into `into` (at least plain.length + 16 bytes) when given: no copy for a caller assembling
 * many records.
 */
export function gcmSeal(
  key: Uint8Array,
  iv: Uint8Array,
  plain: Uint8Array,
  into?: Uint8Array,
): Uint8Array {
  if (into && into.length < plain.length + TAG) throw new Error("gcmSeal: output too small");
  return run(false, key, iv, (c, ctx) => {
    const out = into ?? new Uint8Array(plain.length + TAG);
    const n = update(c.EVP_EncryptUpdate, ctx, plain, out);
    const outl = new Int32Array(1);
    if (c.EVP_EncryptFinal_ex(ctx, out.subarray(n) as BufferSource, outl) !== 1) {
      throw new Error("AES-256-GCM final failed");
    }
    const tag = out.subarray(n + outl[0]!, n + outl[0]! + TAG);
    if (c.EVP_CIPHER_CTX_ctrl(ctx, GCM_GET_TAG, TAG, tag as BufferSource) !== 1) {
      throw new Error("AES-256-GCM tag failed");
    }
    return out.subarray(0, n + outl[0]! + TAG);
  });
}

/** The plaintext of gcmSeal's output, or undefined when it fails its check (corrupt, wrong key). */
export function gcmOpen(
  key: Uint8Array,
  iv: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | undefined {
  if (sealed.length < TAG) return undefined;
  return run(true, key, iv, (c, ctx) => {
    const cipher = sealed.subarray(0, sealed.length - TAG);
    const out = new Uint8Array(cipher.length + TAG);
    const n = update(c.EVP_DecryptUpdate, ctx, cipher, out);
    const tag = sealed.slice(sealed.length - TAG);
    if (c.EVP_CIPHER_CTX_ctrl(ctx, GCM_SET_TAG, TAG, tag as BufferSource) !== 1) {
      throw new Error("AES-256-GCM tag failed");
    }
    const outl = new Int32Array(1);
    if (c.EVP_DecryptFinal_ex(ctx, out.subarray(n) as BufferSource, outl) !== 1) return undefined;
    return out.subarray(0, n + outl[0]!);
  });
}
