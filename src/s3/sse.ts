/**
 * PURE: server-side encryption as S3 wants it asked for. SSE-S3 (`aes256`: the store's keys)
 * and SSE-KMS (`kms:<key id>`) are asked for when an object is stored; the store decrypts for
 * anyone allowed to read. SSE-C (`c:<key file>`: our 256-bit key, which the store uses and
 * forgets) needs the key on every request that stores, reads or uploads a part, and HTTPS.
 */

export type Sse =
  | { kind: "aes256" }
  | { kind: "kms"; keyId: string }
  /** `key`: 32 bytes, base64; `md5`: base64 of its MD5 (the store checks it; client.ts fills it). */
  | { kind: "c"; key: string; md5?: string };

/** `store`: PUT and CreateMultipartUpload; `read`: GET, HEAD and UploadPart. */
export function sseHeaders(sse: Sse, use: "store" | "read"): Record<string, string> {
  switch (sse.kind) {
    case "aes256":
      return use === "store" ? { "x-amz-server-side-encryption": "AES256" } : {};
    case "kms":
      return use === "store"
        ? {
          "x-amz-server-side-encryption": "aws:kms",
          "x-amz-server-side-encryption-aws-kms-key-id": sse.keyId,
        }
        : {};
    case "c":
      return {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": sse.key,
        "x-amz-server-side-encryption-customer-key-md5": sse.md5 ?? "",
      };
  }
}
