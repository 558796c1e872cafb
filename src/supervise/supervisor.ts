/**
 * EFFECT: the long-running part. Boot, then postgres (readiness from postmaster.pid), then
 * post-start, and only then PgBouncer, so 5432 only ever serves a fully ready database.
 * Children that die are restarted with capped backoff, forever. A stop request runs pre-stop
 * hooks, stops PgBouncer, then postgres (fast, then immediate).
 *
 * Setup errors throw (the CLI exits non-zero); once running, problems are logged and retried.
 */
import { applyPlan, boot, planFor, tlsOptions } from "../boot/boot.ts";
import { filesSignature, resolveTls, type TlsMaterial } from "../tls/material.ts";
import { runHooks } from "../boot/hooks.ts";
import { renderAuthFile } from "../config/pgbouncer.ts";
import type { Context } from "../context.ts";
import type { RootTree } from "../fs/tree.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { VERSION } from "../version.ts";
import { nextRestart } from "./backoff.ts";
import { Child, describeExit, lastProblemLine, type OutputPump } from "./child.ts";
import { removeStaleFifos } from "../process/fifo.ts";
import { handleLeftoverPgbouncer, handleLeftoverPostmaster } from "./leftovers.ts";
import { pgbouncerSignals } from "./pgbouncer_signals.ts";
import { canConnectUnix } from "./operations.ts";
import { postStart } from "./post_start.ts";
import { requirePortFree } from "./ports.ts";
import { waitReady } from "./postmaster_pid.ts";
import { sleep } from "./sleep.ts";
import { deriveState, type Facts, type State } from "./state.ts";
import { blameUserConf, quarantineUserConf } from "./user_conf.ts";

export interface Status {
  state: State;
  reason: string;
  versions: { beyondPg: string; postgres: string; pgbouncer: string };
  ports: { pgbouncer: number; direct: number };
  uptimeSeconds: number;
  restarts: { postgres: number; pgbouncer: number };
  lastExit: { postgres?: string; pgbouncer?: string };
  phases: Record<string, number>;
  quarantined?: string;
  tls: { source: string; fingerprint: string; notAfter: string; problem?: string } | {
    source: "off";
    problem?: string;
  };
  archive?: Record<string, unknown>;
}

export interface SupervisorHooks {
  /** After boot (PGDATA and config exist), before postgres starts: archiving sets up here. */
  afterBoot?: () => Promise<void>;
  /** Extra status (archiving). */
  archiveStatus?: () => Record<string, unknown>;
  /**
   * While this says true, postgres stopping is an error that stops everything, not a restart
   * (restore: recovery that cannot reach its target ends with FATAL; retrying would repeat it).
   */
  failFast?: () => boolean;
}

export class Supervisor {
  readonly #ctx: Context;
  readonly #output: OutputPump;
  readonly #stop = new AbortController();
  readonly #facts: Facts = {
    phase: "booting",
    postgresUp: false,
    pgbouncerUp: false,
    quarantined: undefined,
    problem: undefined,
  };
  #postgres: Child | undefined;
  #pgbouncer: Child | undefined;
  #tls: TlsMaterial | undefined;
  #tlsProblem: string | undefined;
  #tlsSignature = "";
  #fifoDirReady = false;
  #tlsTimer: ReturnType<typeof setInterval> | undefined;
  #rotating = false;
  /** shared_preload_libraries as rendered this boot. */
  #preload: string[] = [];
  #pgFailures = 0;
  #bouncerFailures = 0;
  readonly #restarts = { postgres: 0, pgbouncer: 0 };
  readonly #lastExit: Status["lastExit"] = {};
  readonly #phases: Record<string, number> = {};
  readonly #startedAt = Date.now();
  #readyResolve!: () => void;
  /** Settles the first time 5432 serves a ready database. */
  readonly ready = new Promise<void>((r) => (this.#readyResolve = r));

  readonly #hooks: SupervisorHooks;
  #fatal: Error | undefined;

  constructor(ctx: Context, output: OutputPump, hooks: SupervisorHooks = {}) {
    this.#ctx = ctx;
    this.#output = output;
    this.#hooks = hooks;
  }

  set hooks(h: SupervisorHooks) {
    Object.assign(this.#hooks, h);
  }

  get stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  get postgresUp(): boolean {
    return this.#facts.postgresUp;
  }

  get pgbouncerUp(): boolean {
    return this.#facts.pgbouncerUp;
  }

  get quarantined(): string | undefined {
    return this.#facts.quarantined;
  }

  /** 99-user.conf was put back and loads: leave safe mode. */
  clearQuarantine(): void {
    this.#facts.quarantined = undefined;
  }

  get context(): Context {
    return this.#ctx;
  }

  requestStop(reason: string): void {
    if (this.stopping) return;
    log.info(`stopping (${reason})`);
    this.#facts.phase = "stopping";
    this.#stop.abort();
  }

  status(): Status {
    const { state, reason } = deriveState(this.#facts);
    return {
      state,
      reason,
      versions: {
        beyondPg: VERSION,
        postgres: this.#ctx.bins.version,
        pgbouncer: this.#ctx.bins.pgbouncerVersion,
      },
      ports: { pgbouncer: this.#ctx.settings.port, direct: this.#ctx.settings.directPort },
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      restarts: { ...this.#restarts },
      lastExit: { ...this.#lastExit },
      phases: { ...this.#phases },
      ...(this.#facts.quarantined ? { quarantined: this.#facts.quarantined } : {}),
      tls: this.#tls
        ? {
          source: this.#tls.source,
          fingerprint: this.#tls.fingerprint,
          notAfter: this.#tls.notAfter,
          ...(this.#tlsProblem ? { problem: this.#tlsProblem } : {}),
        }
        : { source: "off", ...(this.#tlsProblem ? { problem: this.#tlsProblem } : {}) },
      ...(this.#hooks.archiveStatus ? { archive: this.#hooks.archiveStatus() } : {}),
    };
  }

  get tls(): TlsMaterial | undefined {
    return this.#tls;
  }

  /** Files whose change may mean a new certificate (in use, or a source appearing). */
  #tlsWatchList(): string[] {
    const ctx = this.#ctx;
    return [
      ...(this.#tls?.watch ?? []),
      `${ctx.settings.tlsDir}/cert.pem`,
      `${ctx.settings.tlsDir}/key.pem`,
      `${ctx.settings.tlsDir}/ca.pem`,
      `${ctx.layout.stateDir}/.user-managed`,
      `${ctx.layout.stateDir}/server.crt`,
      `${ctx.layout.stateDir}/server.key`,
    ];
  }

  /**
   * Re-resolve TLS material; when it changed (and is a valid pair), rewrite the config and
   * reload postgres and PgBouncer (SIGHUP, as pg_ctl reload does). Open sessions stay up.
   */
  async rotateTls(): Promise<{ changed: boolean; problem?: string }> {
    if (this.#rotating) return { changed: false };
    this.#rotating = true;
    try {
      const before = this.#tls;
      const { material, problem } = await resolveTls(tlsOptions(this.#ctx), before);
      if (problem && problem !== this.#tlsProblem) log.warn(problem);
      this.#tlsProblem = problem;
      this.#tlsSignature = filesSignature(this.#tlsWatchList());
      const changed = material !== undefined &&
        (material.fingerprint !== before?.fingerprint || material.certFile !== before?.certFile);
      if (!changed) return { changed: false, ...(problem ? { problem } : {}) };
      this.#tls = material;
      applyPlan(planFor(this.#ctx, material), this.#ctx.trees);
      this.#postgres?.signal("SIGHUP");
      this.#pgbouncer?.signal("SIGHUP");
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

  #watchTls(): void {
    this.#tlsSignature = filesSignature(this.#tlsWatchList());
    this.#tlsTimer = setInterval(() => {
      if (this.stopping || filesSignature(this.#tlsWatchList()) === this.#tlsSignature) return;
      this.rotateTls().catch((e) => log.warn(`TLS rotation: ${errorMessage(e)}`));
    }, 1000);
  }

  async run(): Promise<number> {
    const ctx = this.#ctx;
    this.#phases["settings_ms"] = ctx.settingsMs;
    try {
      const booted = await boot(ctx);
      this.#phases["initdb_ms"] = booted.initdbMs;
      this.#phases["config_ms"] = booted.configMs;
      this.#phases["pre_start_hooks_ms"] = booted.hooksMs;
      this.#preload = booted.plan.preload;
      this.#tls = booted.tls;
      this.#tlsProblem = booted.tlsProblem;
      await this.#hooks.afterBoot?.();
    } catch (error) {
      this.#facts.phase = "failed";
      this.#facts.problem = errorMessage(error);
      throw error;
    }
    if (this.stopping) return await this.#shutdown();
    this.#facts.phase = "starting";

    let t = performance.now();
    await handleLeftoverPostmaster(
      ctx.trees.data,
      ctx.layout.pgdata,
      ctx.runAs.user.uid,
      ctx.settings.stopTimeoutMs,
    );
    await handleLeftoverPgbouncer(
      ctx.trees.pgbouncer,
      `${ctx.layout.pgbouncerDir}/pgbouncer.pid`,
      `${ctx.layout.pgbouncerDir}/pgbouncer.ini`,
      ctx.runAs.user.uid,
    );
    try {
      requirePortFree("127.0.0.1", ctx.settings.directPort, "BEYOND_PG_DIRECT_PORT");
      requirePortFree(ctx.settings.listenAddr, ctx.settings.port, "BEYOND_PG_PORT");
    } catch (error) {
      this.#facts.phase = "failed";
      this.#facts.problem = errorMessage(error);
      throw error;
    }
    if (!(await this.#bringUpPostgres())) return await this.#shutdown();
    this.#phases["start_postgres_ms"] = Math.round(performance.now() - t);

    t = performance.now();
    if (!(await this.#postStartUntilDone())) return await this.#shutdown();
    this.#phases["post_start_ms"] = Math.round(performance.now() - t);

    t = performance.now();
    if (!(await this.#bringUpPgbouncer())) return await this.#shutdown();
    this.#phases["pgbouncer_ms"] = Math.round(performance.now() - t);
    this.#phases["total_ms"] = Math.round(performance.now());

    this.#facts.phase = "up";
    this.#facts.problem = undefined;
    if (this.#facts.quarantined) log.error(deriveState(this.#facts).reason);
    log.info(
      `ready: PgBouncer ${ctx.bins.pgbouncerVersion} on ${ctx.settings.listenAddr}:${ctx.settings.port}, PostgreSQL ${ctx.bins.version} on 127.0.0.1:${ctx.settings.directPort}`,
    );
    log.info(
      `startup phases: ${Object.entries(this.#phases).map(([k, v]) => `${k}=${v}`).join(" ")}`,
    );
    this.#readyResolve();
    this.#watchTls();
    await new Promise((r) => this.#stop.signal.addEventListener("abort", r, { once: true }));
    clearInterval(this.#tlsTimer);
    const code = await this.#shutdown();
    if (this.#fatal) throw this.#fatal;
    return code;
  }

  // ---- postgres -------------------------------------------------------------------------

  /**
   * Where children's output FIFOs live (made on first use): root's directory, each FIFO handed
   * to postgres, so nothing can be swapped in between.
   */
  #fifoDir(): RootTree {
    const run = this.#ctx.trees.run;
    const dir = `${this.#ctx.layout.runDir}/output`;
    if (!this.#fifoDirReady) {
      run.ensureDir(dir, 0o755);
      removeStaleFifos(run.sub(dir));
      this.#fifoDirReady = true;
    }
    return run.sub(dir);
  }

  #spawnPostgres(): Child {
    const ctx = this.#ctx;
    return new Child({
      name: "postgres",
      cmd: ctx.bins.postgres,
      args: ["-D", ctx.layout.pgdata],
      env: {
        BEYOND_PG_RUN_DIR: ctx.layout.runDir,
        // postgres's own Deno cache: root's must never be one postgres can write.
        DENO_DIR: ctx.trees.denoPostgres.base,
        DENO_NO_UPDATE_CHECK: "1",
      },
      cwd: ctx.layout.pgdata,
      runAs: ctx.runAs.switchTo,
      fifoDir: this.#fifoDir(),
    }, this.#output);
  }

  /** Start postgres until it is ready (true) or we are stopping (false). */
  async #bringUpPostgres(): Promise<boolean> {
    const ctx = this.#ctx;
    const userConf = `${ctx.layout.confDir}/99-user.conf`;
    while (!this.stopping) {
      let child: Child;
      try {
        child = this.#spawnPostgres();
      } catch (error) {
        const decision = nextRestart(this.#pgFailures, 0);
        this.#pgFailures = decision.failures;
        this.#facts.problem = `cannot start postgres: ${errorMessage(error)}`;
        log.error(`${this.#facts.problem}; retrying in ${decision.delayMs} ms`);
        await sleep(decision.delayMs, this.#stop.signal);
        continue;
      }
      this.#postgres = child;
      if (
        await waitReady(
          ctx.trees.data,
          ctx.layout.pgdata,
          child.pid,
          child.exited,
          this.#stop.signal,
        )
      ) {
        this.#facts.postgresUp = true;
        this.#watchPostgres(child);
        return true;
      }
      if (this.stopping) return false;
      const status = await child.exited;
      const tail = child.tail();
      this.#lastExit.postgres = describeExit(status);
      if (this.#hooks.failFast?.()) {
        this.#facts.phase = "failed";
        this.#facts.problem = `postgres stopped (${describeExit(status)}): ${
          lastProblemLine(tail)
        }`;
        throw new OperatorError(this.#facts.problem, { exitCode: 1 });
      }
      let userText = "";
      try {
        userText = ctx.trees.data.readText(userConf) ?? "";
      } catch { /* unreadable */ }
      if (!this.#facts.quarantined && blameUserConf(tail, userText)) {
        const aside = quarantineUserConf(ctx.trees.data, userConf);
        this.#facts.quarantined = aside;
        log.error(
          `postgres cannot start with 99-user.conf (${
            lastProblemLine(tail)
          }); moved it to ${aside} and starting without it`,
        );
        continue;
      }
      const decision = nextRestart(this.#pgFailures, performance.now() - child.startedAt);
      this.#pgFailures = decision.failures;
      this.#facts.problem = `postgres did not start (${describeExit(status)}): ${
        lastProblemLine(tail)
      }`;
      log.error(
        `${this.#facts.problem}; retrying in ${decision.delayMs} ms${
          decision.crashLoop ? " (crash loop)" : ""
        }`,
      );
      await sleep(decision.delayMs, this.#stop.signal);
    }
    return false;
  }

  #watchPostgres(child: Child): void {
    child.exited.then(async (status) => {
      if (this.stopping || this.#postgres !== child) return;
      this.#facts.postgresUp = false;
      if (this.#hooks.failFast?.()) {
        this.#fatal = new OperatorError(
          `postgres stopped (${describeExit(status)}): ${lastProblemLine(child.tail())}`,
        );
        this.requestStop("postgres stopped");
        return;
      }
      this.#restarts.postgres++;
      this.#lastExit.postgres = describeExit(status);
      const decision = nextRestart(this.#pgFailures, performance.now() - child.startedAt);
      this.#pgFailures = decision.failures;
      this.#facts.problem = `postgres ${describeExit(status)}`;
      log.error(
        `postgres ${describeExit(status)}; restarting in ${decision.delayMs} ms${
          decision.crashLoop ? " (crash loop)" : ""
        }`,
      );
      if (!(await sleep(decision.delayMs, this.#stop.signal))) return;
      if (await this.#bringUpPostgres()) {
        this.#facts.problem = undefined;
        log.info("postgres is back");
      }
    });
  }

  async #postStartUntilDone(): Promise<boolean> {
    const ctx = this.#ctx;
    let failures = 0;
    while (!this.stopping) {
      while (!this.#facts.postgresUp) {
        if (!(await sleep(50, this.#stop.signal))) return false;
      }
      try {
        const result = await postStart({
          socketDir: ctx.layout.socketDir,
          port: ctx.settings.directPort,
          password: ctx.settings.password,
          database: ctx.settings.database,
          extensions: ctx.manifest.extensions.filter((e) => e.create),
          preload: this.#preload,
        });
        const changes = [
          result.passwordChanged && "password set",
          result.databaseCreated && `database ${ctx.settings.database} created`,
          result.created.length && `extensions created: ${result.created.join(", ")}`,
          result.updated.length && `extensions updated: ${result.updated.join(", ")}`,
        ].filter(Boolean);
        if (changes.length) log.info(`post-start: ${changes.join("; ")}`);
        ctx.trees.pgbouncer.writeIfChanged(
          `${ctx.layout.pgbouncerDir}/userlist.txt`,
          renderAuthFile([{ role: "postgres", verifier: result.verifier }]),
          0o600,
        );
        await runHooks("post-start", {
          hooksDir: ctx.layout.hooksDir,
          timeoutMs: ctx.settings.hookTimeoutMs,
          env: ctx.hookEnv,
        });
        return true;
      } catch (error) {
        const decision = nextRestart(failures, 0);
        failures = decision.failures;
        this.#facts.problem = `post-start failed: ${errorMessage(error)}`;
        log.error(`${this.#facts.problem}; retrying in ${decision.delayMs} ms`);
        if (!(await sleep(decision.delayMs, this.#stop.signal))) return false;
      }
    }
    return false;
  }

  // ---- pgbouncer ------------------------------------------------------------------------

  async #bringUpPgbouncer(): Promise<boolean> {
    const ctx = this.#ctx;
    const ini = `${ctx.layout.pgbouncerDir}/pgbouncer.ini`;
    const socket = `${ctx.layout.socketDir}/.s.PGSQL.${ctx.settings.port}`;
    await handleLeftoverPgbouncer(
      ctx.trees.pgbouncer,
      `${ctx.layout.pgbouncerDir}/pgbouncer.pid`,
      ini,
      ctx.runAs.user.uid,
    );

    while (!this.stopping) {
      let child: Child;
      try {
        child = new Child({
          name: "pgbouncer",
          cmd: ctx.bins.pgbouncer,
          args: [ini],
          env: {},
          cwd: ctx.layout.pgbouncerDir,
          runAs: ctx.runAs.switchTo,
          fifoDir: this.#fifoDir(),
        }, this.#output);
      } catch (error) {
        const decision = nextRestart(this.#bouncerFailures, 0);
        this.#bouncerFailures = decision.failures;
        this.#facts.problem = `cannot start PgBouncer: ${errorMessage(error)}`;
        log.error(`${this.#facts.problem}; retrying in ${decision.delayMs} ms`);
        await sleep(decision.delayMs, this.#stop.signal);
        continue;
      }
      this.#pgbouncer = child;
      while (child.running && !this.stopping && !(await canConnectUnix(socket))) {
        await sleep(3, this.#stop.signal);
      }
      if (this.stopping) return false;
      if (child.running) {
        this.#facts.pgbouncerUp = true;
        this.#watchPgbouncer(child);
        return true;
      }
      const status = await child.exited;
      this.#lastExit.pgbouncer = describeExit(status);
      const decision = nextRestart(this.#bouncerFailures, performance.now() - child.startedAt);
      this.#bouncerFailures = decision.failures;
      this.#facts.problem = `PgBouncer did not start (${describeExit(status)}): ${
        lastProblemLine(child.tail())
      }`;
      log.error(`${this.#facts.problem}; retrying in ${decision.delayMs} ms`);
      await sleep(decision.delayMs, this.#stop.signal);
    }
    return false;
  }

  #watchPgbouncer(child: Child): void {
    child.exited.then(async (status) => {
      if (this.stopping || this.#pgbouncer !== child) return;
      this.#facts.pgbouncerUp = false;
      this.#restarts.pgbouncer++;
      this.#lastExit.pgbouncer = describeExit(status);
      const decision = nextRestart(this.#bouncerFailures, performance.now() - child.startedAt);
      this.#bouncerFailures = decision.failures;
      log.error(`PgBouncer ${describeExit(status)}; restarting in ${decision.delayMs} ms`);
      if (!(await sleep(decision.delayMs, this.#stop.signal))) return;
      if (await this.#bringUpPgbouncer()) log.info("PgBouncer is back");
    });
  }

  // ---- stop -----------------------------------------------------------------------------

  async #shutdown(): Promise<number> {
    const ctx = this.#ctx;
    this.#facts.phase = "stopping";
    await runHooks("pre-stop", {
      hooksDir: ctx.layout.hooksDir,
      timeoutMs: ctx.settings.hookTimeoutMs,
      env: ctx.hookEnv,
    }).catch((e) => log.warn(`pre-stop hooks: ${errorMessage(e)}`));
    const bouncer = this.#pgbouncer;
    if (bouncer?.running) {
      const sig = pgbouncerSignals(ctx.bins.pgbouncerVersion);
      (await bouncer.stop(sig.safe, 5000)) ||
        (await bouncer.stop(sig.immediate, 5000)) ||
        (await bouncer.stop("SIGKILL", 5000));
    }
    this.#facts.pgbouncerUp = false;
    let clean = true;
    const pg = this.#postgres;
    if (pg?.running) {
      if (!(await pg.stop("SIGINT", ctx.settings.stopTimeoutMs))) {
        clean = false;
        log.warn(
          `postgres did not stop within ${ctx.settings.stopTimeoutMs} ms; immediate shutdown`,
        );
        (await pg.stop("SIGQUIT", 5000)) || (await pg.stop("SIGKILL", 5000));
      }
      clean &&= pg.exitStatus?.code === 0;
    }
    this.#facts.postgresUp = false;
    log.info(clean ? "stopped cleanly" : "stopped (not cleanly)");
    return clean ? 0 : 1;
  }
}
