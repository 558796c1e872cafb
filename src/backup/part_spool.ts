/**
 * EFFECT: the parts of a backup a restore has downloaded and checked, kept in the data root
 * (`.restore-staging/parts/<label>/<n>`) until the restore is done, so that a restore killed or
 * cut off midway continues where it stopped: run again, it takes each kept part whose SHA-256
 * still matches the manifest and downloads only the rest (download.ts). Unpacking starts over
 * (tar cannot resume mid-stream), which costs local disk time, not the network.
 *
 * The directory is postgres-writable, so what is read back is untrusted: every operation runs as
 * postgres (PgTree), and a part is used only if its SHA-256 is the manifest's (download.ts
 * checks). A `source` file names the object (its ETag and size): parts of another object (the
 * backup was replaced) are dropped. Writes skip fsync: a process killed keeps them in the page
 * cache, and a part torn by a crash fails its hash and is downloaded again.
 */
import type { PgTree } from "../fs/tree.ts";
import type { PartCache } from "./download.ts";

export class PartSpool implements PartCache {
  readonly #tree: PgTree;
  readonly dir: string;
  #broken = false;

  private constructor(tree: PgTree, dir: string) {
    this.#tree = tree;
    this.dir = dir;
  }

  /**
   * The spool for one stored object in `dir`, emptied first if it held another object's parts.
   * `source`: what identifies the object (its key, ETag and size).
   */
  static open(tree: PgTree, dir: string, source: string): PartSpool {
    if (tree.readText(`${dir}/source`) !== source) {
      tree.remove(dir);
      tree.ensureDir(dir, 0o700);
      tree.writeAtomic(`${dir}/source`, source, 0o600);
    }
    return new PartSpool(tree, dir);
  }

  /** Parts kept, and their bytes (before checking). */
  kept(): { parts: number; bytes: number } {
    let parts = 0;
    let bytes = 0;
    for (const e of this.#tree.list(this.dir)) {
      if (!e.isFile || !/^\d+$/.test(e.name)) continue;
      parts++;
      bytes += this.#tree.stat(`${this.dir}/${e.name}`)?.size ?? 0;
    }
    return { parts, bytes };
  }

  get(i: number): Promise<Uint8Array | undefined> {
    try {
      return Promise.resolve(this.#tree.readBytes(`${this.dir}/${i}`));
    } catch {
      return Promise.resolve(undefined); // not a file we can read: download it
    }
  }

  async put(i: number, bytes: Uint8Array): Promise<void> {
    if (this.#broken) return;
    const tmp = `${this.dir}/${i}.tmp`;
    try {
      this.#tree.remove(tmp, false);
      const f = this.#tree.open(tmp, { write: true, createNew: true, mode: 0o600 });
      try {
        for (let off = 0; off < bytes.length;) off += await f.write(bytes.subarray(off));
      } finally {
        f.close();
      }
      this.#tree.rename(tmp, `${this.dir}/${i}`);
    } catch {
      // Out of space (or the like): the restore goes on, only no longer resumable from here.
      this.#broken = true;
      this.#tree.remove(tmp, false);
    }
  }
}
