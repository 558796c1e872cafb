/**
 * PURE: one member of a tar stream, read as the stream goes by — pg_basebackup's own manifest
 * (`backup_manifest`, which it writes into a tar sent to stdout), kept beside a backup so that a
 * later `backup --incremental` can hand it to `pg_basebackup --incremental`. Headers only as
 * much as needed: a plain ustar name; every other member is skipped by its size.
 */
const BLOCK = 512;

function octal(b: Uint8Array): number {
  if (b[0]! & 0x80) {
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = new TextDecoder().decode(b).replace(/\0.*$/s, "").trim();
  return s ? parseInt(s, 8) : 0;
}

export class TarMember {
  readonly #name: string;
  readonly #max: number;
  #header = new Uint8Array(BLOCK);
  #have = 0;
  #skip = 0;
  #data: Uint8Array | undefined;
  #got = 0;
  #ended = false;
  /** The member's bytes once it has passed whole. */
  found: Uint8Array | undefined;

  /** `name`: the member's path in the tar; `maxBytes`: larger members are not kept. */
  constructor(name: string, maxBytes = 512 << 20) {
    this.#name = name;
    this.#max = maxBytes;
  }

  push(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length && !this.#ended) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - off);
        if (this.#data && this.#got < this.#data.length) {
          const take = Math.min(n, this.#data.length - this.#got);
          this.#data.set(chunk.subarray(off, off + take), this.#got);
          this.#got += take;
          if (this.#got === this.#data.length) {
            this.found = this.#data;
            this.#data = undefined;
          }
        }
        this.#skip -= n;
        off += n;
        continue;
      }
      const n = Math.min(BLOCK - this.#have, chunk.length - off);
      this.#header.set(chunk.subarray(off, off + n), this.#have);
      this.#have += n;
      off += n;
      if (this.#have < BLOCK) continue;
      this.#have = 0;
      const h = this.#header;
      if (h.every((b) => b === 0)) {
        this.#ended = true;
        return;
      }
      const size = octal(h.subarray(124, 136));
      const name = new TextDecoder().decode(h.subarray(0, 100)).replace(/\0.*$/s, "");
      this.#skip = Math.ceil(size / BLOCK) * BLOCK;
      if (name.replace(/^\.\//, "") === this.#name && size <= this.#max) {
        this.#data = new Uint8Array(size);
        this.#got = 0;
        if (size === 0) this.found = this.#data;
      }
    }
  }
}
