/**
 * EFFECT: the restore spool. During recovery postgres asks for one WAL file at a time; the
 * supervisor fetches the requested file and, for a segment, the next few in parallel into a
 * bounded directory on the data volume, decompressed in a child process (zstd and gzip check
 * their own content checksums; the size is checked against `beyond-size`). `restore-wal`
 * renames the file into pg_wal. Misses and failures are never cached: recovery asks again.
 *
 * The spool is in the data root, which postgres can write: every file operation there runs as
 * postgres (fs/tree.ts PgTree), and a file is written only through a new name (O_EXCL).
 */
import type { ObjectStore } from "../s3/store.ts";
import type { PgTree } from "../fs/tree.ts";
import { command } from "../process/command.ts";
import { spawnTracked } from "../process/registry.ts";
import { ArchiveError } from "./errors.ts";
import type { ArchiveConfig } from "./config.ts";
import { nextSegments, parseSegment, walKind } from "./names.ts";
import { maxWalFileBytes } from "./validate.ts";
import { externalToolsAvailable } from "./prepare.ts";
import { checkWalSize, corruptWal, decodeWal, getWalObject } from "./restore.ts";

interface Spooled {
  file: string;
  found: boolean;
}

export interface SpoolOptions {
  cfg: ArchiveConfig;
  client: ObjectStore;
  /** The data root (postgres's); `dir` is inside it, so handing a file over is a rename. */
  data: PgTree;
  dir: string;
  /** Segments fetched ahead of the one asked for. */
  prefetch: number;
  stats: { restoredTotal: number; prefetchHitsTotal: number };
}

export class RestoreSpool {
  readonly #o: SpoolOptions;
  readonly #spool = new Map<string, Promise<Spooled>>();

  constructor(o: SpoolOptions) {
    this.#o = o;
    // Files of an earlier run may be for another restore target: start empty.
    o.data.remove(o.dir);
    o.data.ensureDir(o.dir, 0o700);
  }

  #spoolPath(name: string): string {
    return `${this.#o.dir}/${name}`;
  }

  async #fetch(name: string): Promise<Spooled> {
    const { data } = this.#o;
    const file = this.#spoolPath(name);
    const obj = await getWalObject(this.#o.client, this.#o.cfg, name);
    if (!obj) return { file, found: false };
    const codec = obj.metadata["beyond-codec"] ?? "none";
    const tmp = `${file}.part`;
    data.remove(tmp, false);
    try {
      if ((codec === "zstd" || codec === "gzip") && await externalToolsAvailable()) {
        // Decompress (which checks the codec's checksum) in a child process.
        const tool = codec === "zstd"
          ? ["zstd", "-d", "-q", "-c", "--no-asyncio"] // one object: no I/O threads to start
          : ["gzip", "-d", "-c"];
        const child = spawnTracked(
          command(tool[0]!, {
            args: tool.slice(1),
            stdin: "piped",
            stdout: "piped",
            stderr: "piped",
          }),
        );
        const writer = child.stdin.getWriter();
        const feed = writer.write(obj.body).then(() => writer.close()).catch(() => {});
        // Opened as postgres with O_EXCL: never through a link planted under the name.
        const out = data.open(tmp, { write: true, createNew: true, mode: 0o600 });
        // A small object that inflates past what a WAL file can be is not one: stop it there
        // (the spool is on the data volume; a bomb must not fill it).
        const limit = maxWalFileBytes(name);
        let written = 0;
        const capped = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, ctl) {
            written += chunk.length;
            if (written > limit) {
              try {
                child.kill("SIGKILL");
              } catch { /* exited */ }
              ctl.error(corruptWal(name, `it decompresses to more than ${limit} bytes`));
              return;
            }
            ctl.enqueue(chunk);
          },
        });
        const [, status, stderr] = await Promise.all([
          child.stdout.pipeThrough(capped).pipeTo(out.writable),
          child.status,
          new Response(child.stderr).text(),
          feed,
        ]);
        if (!status.success) {
          throw corruptWal(name, `cannot decompress: ${stderr.trim().split("\n").pop()}`);
        }
        checkWalSize(name, obj, data.stat(tmp)?.size ?? 0);
      } else {
        data.writeAtomic(tmp, await decodeWal(name, obj), 0o600);
      }
      data.rename(tmp, file);
      return { file, found: true };
    } catch (error) {
      data.remove(tmp, false);
      throw error;
    }
  }

  #spooled(name: string): Promise<Spooled> {
    let p = this.#spool.get(name);
    if (!p) {
      p = this.#fetch(name);
      this.#spool.set(name, p);
      // Failures and misses are not kept: recovery asks again, and the store may have it then.
      p.then((s) => s.found || this.#spool.delete(name), () => this.#spool.delete(name));
    }
    return p;
  }

  /**
   * restore_command's request: where the file now is (restore-wal renames it into place), or
   * found: false. Prefetches the segments that follow.
   */
  async restore(name: string): Promise<{ found: boolean; file?: string }> {
    if (!walKind(name)) {
      throw new ArchiveError(`${JSON.stringify(name)} is not a WAL file name`, false);
    }
    const hit = this.#spool.has(name);
    const result = await this.#spooled(name);
    this.#spool.delete(name); // handed over: restore-wal moves the file away
    if (result.found) {
      this.#o.stats.restoredTotal++;
      if (hit) this.#o.stats.prefetchHitsTotal++;
    }
    if (walKind(name) === "segment") {
      this.#dropBefore(name);
      if (result.found) {
        const ahead = nextSegments(name, this.#o.prefetch);
        let started = 0;
        for (const next of ahead) {
          if (this.#spool.has(next)) continue;
          if (started++ >= this.#o.cfg.parallel) break;
          this.#spooled(next).catch(() => {});
        }
      }
    }
    return result.found ? { found: true, file: result.file } : { found: false };
  }

  /** Spooled segments older than `name` on its timeline will not be asked for again. */
  #dropBefore(name: string): void {
    const id = parseSegment(name);
    if (!id) return;
    for (const [other, p] of this.#spool) {
      const o = parseSegment(other);
      if (
        walKind(other) !== "segment" || !o || o.timeline !== id.timeline || o.number >= id.number
      ) {
        continue;
      }
      this.#spool.delete(other);
      p.then((s) => {
        if (s.found) this.#o.data.remove(s.file, false);
      }, () => {});
    }
  }
}
