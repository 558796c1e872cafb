/**
 * EFFECT: the certificate in use, and its rotation. The watched files (the material in use and
 * any source that could appear) are polled every second by inode, size and mtime; a change
 * re-resolves (tls/material.ts), and a new valid pair rewrites the configuration and reloads
 * postgres and PgBouncer (SIGHUP, as pg_ctl reload does), so open sessions stay up. Also
 * reached through `control reload`. A runnable: started once the database is up.
 */
import type { BootContext } from "../boot/boot.ts";
import { tlsOptions } from "../boot/boot.ts";
import { filesSignature, resolveTls, type TlsMaterial } from "../tls/material.ts";
import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

export type TlsStatus =
  | { source: string; fingerprint: string; notAfter: string; problem?: string }
  | { source: "off"; problem?: string };

export interface TlsWatchOptions {
  ctx: BootContext;
  material: TlsMaterial | undefined;
  problem: string | undefined;
  /** Write the configuration for this material (plan + include line). */
  apply(material: TlsMaterial): void;
  /** Tell postgres and PgBouncer to reload (SIGHUP). */
  reload(): void;
  clock: Clock;
}

export class TlsWatcher {
  readonly name = "tls-watch";
  readonly #o: TlsWatchOptions;
  #material: TlsMaterial | undefined;
  #problem: string | undefined;
  #signature = "";
  #rotating = false;
  #timer: number | undefined;

  constructor(o: TlsWatchOptions) {
    this.#o = o;
    this.#material = o.material;
    this.#problem = o.problem;
  }

  get material(): TlsMaterial | undefined {
    return this.#material;
  }

  status(): TlsStatus {
    const problem = this.#problem ? { problem: this.#problem } : {};
    const m = this.#material;
    return m
      ? { source: m.source, fingerprint: m.fingerprint, notAfter: m.notAfter, ...problem }
      : { source: "off", ...problem };
  }

  /** Files whose change may mean a new certificate (in use, or a source appearing). */
  #watchList(): string[] {
    const { settings, layout } = this.#o.ctx;
    return [
      ...(this.#material?.watch ?? []),
      `${settings.tlsDir}/cert.pem`,
      `${settings.tlsDir}/key.pem`,
      `${settings.tlsDir}/ca.pem`,
      `${layout.stateDir}/.user-managed`,
      `${layout.stateDir}/server.crt`,
      `${layout.stateDir}/server.key`,
    ];
  }

  /** Re-resolve now; rewrite and reload when a new valid pair is there. */
  async rotate(): Promise<{ changed: boolean; problem?: string }> {
    if (this.#rotating) return { changed: false };
    this.#rotating = true;
    try {
      const before = this.#material;
      const { material, problem } = await resolveTls(tlsOptions(this.#o.ctx), before);
      if (problem && problem !== this.#problem) log.warn(problem);
      this.#problem = problem;
      this.#signature = filesSignature(this.#watchList());
      const changed = material !== undefined &&
        (material.fingerprint !== before?.fingerprint || material.certFile !== before?.certFile);
      if (!changed) return { changed: false, ...(problem ? { problem } : {}) };
      this.#material = material;
      this.#o.apply(material);
      this.#o.reload();
      log.info(
        `TLS: now using the ${material.source} certificate ${
          material.fingerprint.slice(0, 16)
        }… (until ${material.notAfter})`,
      );
      return { changed: true, ...(problem ? { problem } : {}) };
    } finally {
      this.#rotating = false;
    }
  }

  start(stop: AbortSignal): void {
    this.#signature = filesSignature(this.#watchList());
    this.#timer = this.#o.clock.every(1000, () => {
      if (stop.aborted || filesSignature(this.#watchList()) === this.#signature) return;
      this.rotate().catch((e) => log.warn(`TLS rotation: ${errorMessage(e)}`));
    });
  }

  close(): void {
    if (this.#timer !== undefined) this.#o.clock.cancel(this.#timer);
  }
}
