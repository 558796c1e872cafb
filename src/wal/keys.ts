/** The client-side encryption keys of an archive config (envelope.ts), derived once. */
import type { ArchiveConfig } from "./config.ts";
import {
  type ArchiveKey,
  EnvelopeError,
  keyFromBase64,
  loadCrypto,
  open,
  sealAsync,
} from "./envelope.ts";
import type { StoredObject } from "../s3/store.ts";
import { ArchiveError } from "./errors.ts";
import type { Prepared } from "./prepare.ts";

const cache = new Map<string, ArchiveKey[]>();

/** Every key (the first encrypts); empty when the archive is not encrypted. */
export async function archiveKeys(cfg: ArchiveConfig): Promise<ArchiveKey[]> {
  const list = cfg.encryptionKeys ?? [];
  if (!list.length) return [];
  const id = list.join(",");
  let keys = cache.get(id);
  if (!keys) {
    const c = await loadCrypto();
    keys = list.map((k) => keyFromBase64(k, c));
    cache.set(id, keys);
  }
  return keys;
}

/**
 * A stored WAL object as it was before sealing (compressed): opened when its metadata names a
 * key id. A wrong or missing key, or a corrupt object, is an ArchiveError (not transient).
 */
export async function openWalObject(
  cfg: ArchiveConfig,
  name: string,
  obj: StoredObject,
): Promise<StoredObject> {
  if (obj.metadata["beyond-key-id"] === undefined) return obj;
  const c = await loadCrypto();
  try {
    const body = open(c, await archiveKeys(cfg), obj.body, name);
    const { "beyond-key-id": _, ...metadata } = obj.metadata;
    return { body, metadata };
  } catch (error) {
    if (error instanceof EnvelopeError) throw new ArchiveError(error.message, false, error);
    throw error;
  }
}

/** Seal a prepared WAL file when the archive is encrypted (its hash is then the ciphertext's). */
export async function sealPrepared(cfg: ArchiveConfig, p: Prepared): Promise<Prepared> {
  const keys = await archiveKeys(cfg);
  if (!keys.length) return p;
  const body = await sealAsync(await loadCrypto(), keys[0]!, p.body);
  const { bodySha256: _plainHash, ...rest } = p;
  return { ...rest, body, keyId: keys[0]!.id };
}

/** Why this machine cannot decrypt a sealed backup (its key is not configured), or undefined. */
export async function keyProblem(
  cfg: ArchiveConfig,
  m: { label: string; encryption?: { key_id: string } },
): Promise<string | undefined> {
  if (!m.encryption) return undefined;
  const keys = await archiveKeys(cfg);
  if (keys.some((k) => k.id === m.encryption!.key_id)) return undefined;
  return `backup ${m.label} was encrypted with key id ${m.encryption.key_id}, and BEYOND_PG_ARCHIVE_ENCRYPTION_KEY has ${
    keys.length ? `only ${keys.map((k) => k.id).join(", ")}` : "no key"
  }; add the key that made it`;
}
