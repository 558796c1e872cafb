/**
 * EFFECT: the long-running part. Boot, then postgres (readiness from postmaster.pid), then
 * post-start, then PgBouncer serves, so 5432 only ever serves a fully ready database. On a warm
 * boot (PgBouncer's auth file already holds the password's verifier) PgBouncer starts right
 * after postgres, beside its recovery, and is PAUSEd at once: clients that come meanwhile wait
 * and are served at RESUME, after post-start (a wake no longer pays PgBouncer's start). Each
 * child is kept running by a ChildLoop (child_loop.ts) whose decisions are the pure policy's
 * (policy.ts). A stop request runs pre-stop hooks, stops PgBouncer, then postgres (fast, then
 * immediate).
 *
 * Setup errors throw (the CLI exits non-zero); once running, problems are logged and retried.
 * Everything else that runs alongside (control, HTTP, archiving, the TLS watcher) is a runnable
 * of the composition root (src/app/), not part of this class.
 */
import { boot, type BootResult } from "../boot/boot.ts";
import type { CloneProgress } from "../boot/upstream.ts";
import type { Context } from "../boot/context.ts";
import { extensionDirStamp } from "../boot/binaries.ts";
import { hasHooks, runHooks } from "../boot/hooks.ts";
import { renderAuthFile } from "../config/pgbouncer.ts";
import type { RootTree, Tree } from "../fs/tree.ts";
import { removeStaleFifos } from "../process/fifo.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { canConnectUnix } from "../util/net.ts";
import { readOwnedFile } from "../fs/handover.ts";
import { controlTimeline, systemIdentifierOf } from "../wal/config.ts";
import { buildVerifier, parseVerifier, verifierMatches } from "../auth/scram.ts";
import { PgConnection } from "../pg/client.ts";
import { sleep } from "../util/sleep.ts";
import { VERSION } from "../util/version.ts";
import { nextRestart } from "./backoff.ts";
import { Child, type ChildHandle, type ChildSpec, type OutputPump } from "./child.ts";
import { ChildLoop, type LoopEvents } from "./child_loop.ts";
import { describeExit } from "./exit.ts";
import { handleLeftoverPgbouncer, handleLeftoverPostmaster } from "./leftovers.ts";
import { pgbouncerSignals } from "./pgbouncer_signals.ts";
import { requirePortFree } from "./ports.ts";
import { postStart } from "./post_start.ts";
import { waitReady } from "./postmaster_pid.ts";
import { deriveState, type Facts, type State } from "./state.ts";
import { quarantineUserConf } from "./user_conf.ts";

/** PgBouncer's auth file as of the last post-start, kept in PGDATA/beyond (survives a reboot). */
const AUTH_COPY = "pgbouncer-userlist.txt";
/** The inputs of the last post-start that finished (#postStartStamp). */
const POST_START_STAMP = "post-start.json";
/** A stamp is a few KiB (the manifest's extensions); a larger file is not ours. */
const POST_START_STAMP_MAX = 64 * 1024;

interface PostStartStamp {
  /** This boot's inputs (undefined: unknown, so never deferred). */
  text: string | undefined;
  /** The stamp found. */
  found: string | undefined;
  deferrable: boolean;
}
/** How long after 5432 serves a wake's post-start runs (#postStartBesideClients). */
const POST_START_AFTER_READY_MS = 1000;

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
  [more: string]: unknown;
}

export interface SupervisorHooks {
  /** After boot (PGDATA and config exist), before postgres starts: archiving sets up here. */
  afterBoot?: (booted: BootResult) => Promise<void> | void;
  /**
   * postgres is up, before post-start writes anything (each attempt): a fork drops the slots it
   * inherited here, before the configured WAL sinks' slots are made.
   */
  beforePostStart?: () => Promise<void> | void;
  /** More status from the runnables around (TLS, archiving). */
  statusExtra?: () => Record<string, unknown>;
  /**
   * While this says true, postgres stopping is an error that stops everything, not a restart
   * (restore: recovery that cannot reach its target ends with FATAL; retrying would repeat it).
   */
  failFast?: () => boolean;
  /** How children are started (default: real processes through Child). Tests pass fakes. */
  spawn?: (spec: ChildSpec) => ChildHandle;
  /**
   * True when post-start must finish before 5432 serves even on a warm boot whose inputs are
   * unchanged (a fork's first boot: its inherited slots go first).
   */
  postStartFirst?: () => boolean;
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
  readonly #postgres: ChildLoop;
  readonly #pgbouncer: ChildLoop;
  #fifoDirReady = false;
  /** shared_preload_libraries as rendered this boot. */
  #preload: string[] = [];
  /** Post-start running after 5432 serves (a wake with nothing for it to do). */
  #besideClients: Promise<void> | undefined;
  readonly #restarts = { postgres: 0, pgbouncer: 0 };
  readonly #lastExit: Status["lastExit"] = {};
  readonly #phases: Record<string, number> = {};
  readonly #startedAt = Date.now();
  #readyResolve!: () => void;
  /** Settles the first time 5432 serves a ready database. */
  readonly ready = new Promise<void>((r) => (this.#readyResolve = r));
  readonly #hooks: SupervisorHooks;
  #fatal: Error | undefined;
  /** A replica's clone from its primary, while it runs (status). */
  #clone: CloneProgress | undefined;
  /** The pre-stop hooks already ran (an idle stop runs them before PAUSE). */
  #preStopRan = false;

  constructor(ctx: Context, output: OutputPump, hooks: SupervisorHooks = {}) {
    this.#ctx = ctx;
    this.#output = output;
    this.#hooks = hooks;
    const userConf = `${ctx.layout.confDir}/99-user.conf`;
    const common = {
      sleep: (ms: number, s: AbortSignal) => sleep(ms, s),
      now: () => performance.now(),
      failFast: () => this.#hooks.failFast?.() ?? false,
      log: { info: (l: string) => log.info(l), error: (l: string) => log.error(l) },
    };
    this.#postgres = new ChildLoop(
      { name: "postgres", label: "postgres" },
      {
        ...common,
        launch: () => this.#spawn(this.#postgresSpec()),
        waitUp: (c, s) => waitReady(ctx.trees.data, ctx.layout.pgdata, c.pid, c.exited, s),
        userConf: {
          text: () => {
            try {
              return ctx.trees.data.readText(userConf) ?? "";
            } catch {
              return "";
            }
          },
          quarantined: () => this.#facts.quarantined !== undefined,
          quarantine: () => quarantineUserConf(ctx.trees.data, userConf),
        },
      },
      this.#events("postgres"),
      this.#stop.signal,
    );
    const socket = `${ctx.layout.socketDir}/.s.PGSQL.${ctx.settings.port}`;
    this.#pgbouncer = new ChildLoop(
      { name: "pgbouncer", label: "PgBouncer" },
      {
        ...common,
        failFast: () => false,
        launch: () => this.#spawn(this.#pgbouncerSpec()),
        waitUp: async (c, s) => {
          while (c.running && !s.aborted && !(await canConnectUnix(socket))) await sleep(3, s);
          return c.running && !s.aborted;
        },
      },
      this.#events("pgbouncer"),
      this.#stop.signal,
    );
  }

  /** Facts and counters kept from what a child loop reports. */
  #events(name: "postgres" | "pgbouncer"): LoopEvents {
    const key = name === "postgres" ? "postgresUp" : "pgbouncerUp";
    return {
      up: () => (this.#facts[key] = true),
      down: () => {
        this.#facts[key] = false;
        this.#restarts[name]++;
      },
      exited: (status) => (this.#lastExit[name] = describeExit(status)),
      problem: (text) => (this.#facts.problem = text),
      quarantined: (aside) => (this.#facts.quarantined = aside),
      failed: (problem) => {
        this.#fatal = new Error(problem);
        this.requestStop(`${name} stopped`);
      },
    };
  }

  #spawn(spec: ChildSpec): ChildHandle {
    return this.#hooks.spawn ? this.#hooks.spawn(spec) : new Child(spec, this.#output);
  }

  get stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  /** Aborts when a stop is requested. */
  get stopSignal(): AbortSignal {
    return this.#stop.signal;
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

  /** Signal both children (SIGHUP: reload their configuration). */
  signalChildren(sig: Deno.Signal): void {
    this.#postgres.child?.signal(sig);
    this.#pgbouncer.child?.signal(sig);
  }

  /**
   * Stop postgres on purpose, run `between` (pg_rewind), start it again; PgBouncer stays up
   * and its clients wait. Throws what `between` threw, after postgres is started again.
   */
  async cyclePostgres(why: string, between: () => Promise<void>): Promise<void> {
    const ctx = this.#ctx;
    log.info(`stopping postgres: ${why}`);
    this.#facts.problem = why;
    await this.#postgres.halt(async (pg) => {
      if (!(await pg.stop("SIGINT", ctx.settings.stopTimeoutMs))) {
        (await pg.stop("SIGQUIT", 5000)) || (await pg.stop("SIGKILL", 5000));
      }
    });
    this.#facts.postgresUp = false;
    try {
      await between();
    } finally {
      if (!this.stopping && (await this.#postgres.start())) {
        this.#facts.problem = undefined;
        log.info("postgres is back");
      }
    }
  }

  requestStop(reason: string, o: { preStopHooksRan?: boolean } = {}): void {
    if (this.stopping) return;
    this.#preStopRan = o.preStopHooksRan ?? false;
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
      ...(this.#clone ? { clone: { ...this.#clone } } : {}),
      ...(this.#hooks.statusExtra?.() ?? {}),
    };
  }

  /** Note a setup failure in the facts and throw it on. */
  #failed(error: unknown): never {
    this.#facts.phase = "failed";
    this.#facts.problem = errorMessage(error);
    throw error;
  }

  async run(): Promise<number> {
    const ctx = this.#ctx;
    this.#phases["settings_ms"] = ctx.settingsMs;
    try {
      const booted = await boot(ctx, {
        stop: this.#stop.signal,
        report: (r) => {
          if (r.clone) this.#clone = r.clone;
          if (r.problem !== undefined) this.#facts.problem = r.problem;
        },
      });
      this.#facts.problem = undefined;
      this.#phases["initdb_ms"] = booted.initdbMs;
      if (booted.gap) this.#phases["gap_fetch_ms"] = booted.gap.ms;
      this.#phases["config_ms"] = booted.configMs;
      this.#phases["pre_start_hooks_ms"] = booted.hooksMs;
      this.#preload = booted.plan.preload;
      await this.#hooks.afterBoot?.(booted);
    } catch (error) {
      if (this.stopping) return await this.#shutdown();
      this.#failed(error);
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
      this.#failed(error);
    }
    // postgres first (its spawn happens before start() first waits); then, on a warm boot,
    // PgBouncer beside postgres's recovery, paused (see the header).
    const starting = this.#postgres.start();
    const stamping = this.#postStartStamp().catch((): PostStartStamp => ({
      text: undefined,
      found: undefined,
      deferrable: false,
    }));
    const early = this.#pgbouncerMayStartEarly().catch((error) => {
      log.warn(`PgBouncer starts after post-start: ${errorMessage(error)}`);
      return false;
    }).then((yes) => yes && !this.stopping ? this.#startPaused() : undefined);
    let postgresUp: boolean;
    try {
      postgresUp = await starting;
    } catch (error) {
      (await early)?.close();
      this.#failed(error);
    }
    if (!postgresUp) {
      (await early)?.close();
      return await this.#shutdown();
    }
    this.#phases["start_postgres_ms"] = Math.round(performance.now() - t);

    t = performance.now();
    // A wake whose post-start would find nothing to do (its inputs are those of the last one
    // that finished) lets the clients in first and runs it beside them (see #postStartStamp).
    const stamp = await stamping;
    let paused: PgConnection | undefined;
    if (stamp.deferrable) paused = await early;
    const deferred = paused !== undefined;
    let authChanged = false;
    if (!deferred) {
      // What this post-start changes may not be what the stamp says (an interrupted one would
      // leave the catalog ahead of it): it goes until this one finished.
      if (stamp.found !== undefined && stamp.found !== stamp.text) {
        try {
          ctx.trees.data.remove(`${ctx.layout.stateDir}/${POST_START_STAMP}`);
        } catch { /* the next boot compares it again */ }
      }
      const changed = await this.#postStartUntilDone(stamp.text);
      if (changed === undefined) {
        (await early)?.close();
        return await this.#shutdown();
      }
      authChanged = changed;
      this.#phases["post_start_ms"] = Math.round(performance.now() - t);
      t = performance.now();
      paused = await early;
    }

    if (paused) {
      // The auth file changed under a running PgBouncer: RELOAD rereads it, then clients go.
      if (!(await this.#resume(paused, authChanged))) return await this.#shutdown();
    } else if (!this.#pgbouncer.child?.running && !(await this.#pgbouncer.start())) {
      return await this.#shutdown();
    }
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
    if (deferred) this.#besideClients = this.#postStartBesideClients(stamp.text);
    await new Promise((r) => this.#stop.signal.addEventListener("abort", r, { once: true }));
    const code = await this.#shutdown();
    if (this.#fatal) throw this.#fatal;
    return code;
  }

  // ---- children -------------------------------------------------------------------------

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

  #postgresSpec(): ChildSpec {
    const ctx = this.#ctx;
    return {
      name: "postgres",
      cmd: ctx.bins.postgres,
      args: ["-D", ctx.layout.pgdata],
      env: {
        BEYOND_PG_RUN_DIR: ctx.layout.runDir,
        // postgres's own Deno cache: root's must never be one postgres can write.
        DENO_DIR: ctx.trees.denoPostgres.base,
        DENO_NO_UPDATE_CHECK: "1",
      },
      // No cwd: postgres enters -D itself, and a child with none is spawned through setsid and
      // setpriv instead of a fork of this process (process/command.ts): a fork costs ~6 ms, and
      // a page fault on each page the supervisor writes afterwards, while postgres starts.
      runAs: ctx.runAs.switchTo,
      fifoDir: this.#fifoDir(),
    };
  }

  #pgbouncerSpec(): ChildSpec {
    const ctx = this.#ctx;
    return {
      name: "pgbouncer",
      cmd: ctx.bins.pgbouncer,
      args: [`${ctx.layout.pgbouncerDir}/pgbouncer.ini`],
      env: {},
      // No cwd (every path in its config is absolute): spawned as postgres is.
      runAs: ctx.runAs.switchTo,
      fifoDir: this.#fifoDir(),
    };
  }

  /**
   * What post-start depends on besides the catalog, as the stamp the last finished post-start
   * left in PGDATA/beyond, and whether this boot may run it after 5432 serves: only when the
   * stamp is this boot's, PgBouncer started early (its auth file holds the configured password),
   * no post-start hook is installed (hooks may prepare what clients use) and this is not a
   * fork's first boot. The stamp is postgres's file and holds no secret (the replication
   * password only as a SCRAM verifier, as pg_authid has it); a forged one changes only the
   * order: post-start still runs, its checks are the SQL itself, and postgres's uid can do
   * anything it does.
   */
  async #postStartStamp(): Promise<PostStartStamp> {
    const ctx = this.#ctx;
    const path = `${ctx.layout.stateDir}/${POST_START_STAMP}`;
    let found: string | undefined;
    try {
      // postgres's file: no link, a regular file it owns, small, read as postgres.
      found = new TextDecoder().decode(
        await readOwnedFile(path, ctx.runAs.switchTo, POST_START_STAMP_MAX),
      );
    } catch { /* none, or not one we wrote */ }
    const extensions = await extensionDirStamp(ctx.bins);
    if (extensions === undefined) return { text: undefined, found, deferrable: false };
    let control: Uint8Array | undefined;
    try {
      control = ctx.trees.data.readBytes(`${ctx.layout.pgdata}/global/pg_control`);
    } catch { /* unreadable: no stamp */ }
    if (!control) return { text: undefined, found, deferrable: false };
    const inputs = {
      beyondPg: VERSION,
      postgres: ctx.bins.versionText,
      // A promoted standby, a restore or a rewind: another history than the last post-start's.
      systemIdentifier: systemIdentifierOf(control),
      timeline: controlTimeline(control),
      extensionFiles: extensions,
      database: ctx.settings.database,
      extensions: ctx.manifest.extensions.filter((e) => e.create),
      preload: this.#preload,
      slots: ctx.settings.replication.sinks.map((s) => s.name),
    };
    const replication = ctx.settings.replication.password?.reveal();
    let verifier: string | undefined;
    if (replication !== undefined) {
      // Same inputs otherwise: the last verifier is reused when the password still matches it
      // (only one as root writes them: 4096 iterations).
      const last = (found ?? "").match(/"replicationVerifier":"(SCRAM-SHA-256\$[^"]{1,400})"/)?.[1];
      try {
        const parsed = last ? parseVerifier(last) : undefined;
        if (parsed?.iterations === 4096 && await verifierMatches(replication, last!)) {
          verifier = last;
        }
      } catch { /* not one we wrote */ }
      verifier ??= await buildVerifier(replication);
    }
    const text = JSON.stringify({ ...inputs, replicationVerifier: verifier ?? null }) + "\n";
    // (PgBouncer starting early, which deferring needs too, is #pgbouncerMayStartEarly's call.)
    const deferrable = found === text && !(this.#hooks.postStartFirst?.() ?? false) &&
      !hasHooks(ctx.layout.hooksDir, "post-start");
    return { text, found, deferrable };
  }

  /**
   * Post-start after 5432 serves (a wake with nothing to do), a second later: the first
   * clients' backends start without a second backend starting beside them (on 2 vCPUs that
   * cost the first query ~60 ms). What it changed is logged.
   */
  async #postStartBesideClients(stamp: string | undefined): Promise<void> {
    if (!(await sleep(POST_START_AFTER_READY_MS, this.#stop.signal))) return;
    const t = performance.now();
    const authChanged = await this.#postStartUntilDone(stamp);
    if (authChanged === undefined) return;
    const ms = Math.round(performance.now() - t);
    this.#phases["post_start_ms"] = ms;
    if (this.#facts.problem?.startsWith("post-start failed")) this.#facts.problem = undefined;
    // PgBouncer rereads its auth file on SIGHUP (only when another client changed the role).
    if (authChanged) this.#pgbouncer.child?.signal("SIGHUP");
    log.info(`post-start ran beside the first clients: ${ms} ms`);
  }

  /**
   * Post-start until it succeeds: whether PgBouncer's auth file changed, or undefined when a
   * stop came first. Its stamp (#postStartStamp) is written once it finished.
   */
  async #postStartUntilDone(stamp?: string): Promise<boolean | undefined> {
    const ctx = this.#ctx;
    let failures = 0;
    while (!this.stopping) {
      while (!this.#facts.postgresUp) {
        if (!(await sleep(50, this.#stop.signal))) return undefined;
      }
      try {
        await this.#hooks.beforePostStart?.();
        const result = await postStart({
          socketDir: ctx.layout.socketDir,
          port: ctx.settings.directPort,
          password: ctx.settings.password,
          database: ctx.settings.database,
          extensions: ctx.manifest.extensions.filter((e) => e.create),
          preload: this.#preload,
          replicationPassword: ctx.settings.replication.password,
          slots: ctx.settings.replication.sinks.map((s) => s.name),
        });
        const changes = [
          result.passwordChanged && "password set",
          result.databaseCreated && `database ${ctx.settings.database} created`,
          result.created.length && `extensions created: ${result.created.join(", ")}`,
          result.updated.length && `extensions updated: ${result.updated.join(", ")}`,
          result.replicationRole && `replication role ${result.replicationRole}`,
          result.slotsCreated.length && `slots created: ${result.slotsCreated.join(", ")}`,
          result.standby && "hot standby (read-only: nothing to write)",
        ].filter(Boolean);
        if (changes.length) log.info(`post-start: ${changes.join("; ")}`);
        const auth = renderAuthFile([{ role: "postgres", verifier: result.verifier }]);
        const authChanged = ctx.trees.pgbouncer.writeIfChanged(
          `${ctx.layout.pgbouncerDir}/userlist.txt`,
          auth,
          0o600,
        );
        // A copy on the volume: the run dir is gone after a reboot (a VM's wake), this is not.
        ctx.trees.data.writeIfChanged(`${ctx.layout.stateDir}/${AUTH_COPY}`, auth, 0o600);
        await runHooks("post-start", {
          hooksDir: ctx.layout.hooksDir,
          timeoutMs: ctx.settings.hookTimeoutMs,
          env: ctx.hookEnv,
        });
        if (stamp !== undefined && !result.standby && result.failed.length === 0) {
          ctx.trees.data.writeIfChanged(`${ctx.layout.stateDir}/${POST_START_STAMP}`, stamp, 0o600);
        }
        return authChanged;
      } catch (error) {
        const decision = nextRestart(failures, 0);
        failures = decision.failures;
        this.#facts.problem = `post-start failed: ${errorMessage(error)}`;
        log.error(`${this.#facts.problem}; retrying in ${decision.delayMs} ms`);
        if (!(await sleep(decision.delayMs, this.#stop.signal))) return undefined;
      }
    }
    return undefined;
  }

  // ---- PgBouncer beside recovery ----------------------------------------------------------

  /**
   * PgBouncer may start before post-start when the auth file of the last boot holds a verifier
   * of the configured password (the run dir's, or after a reboot the copy on the volume, which
   * is then put in place): the admin console then takes our PAUSE, and PgBouncer accepts exactly
   * the configured password for postgres until post-start has run. Not while a stop is an error
   * (restore: recovery may take hours, 5432 stays closed meanwhile). Both files are postgres's:
   * read only to choose the order, used only when they match the password, and the iteration
   * count is capped before we hash with it.
   */
  async #pgbouncerMayStartEarly(): Promise<boolean> {
    const ctx = this.#ctx;
    if (this.#hooks.spawn || this.#hooks.failFast?.()) return false;
    const runFile = `${ctx.layout.pgbouncerDir}/userlist.txt`;
    const sources: [Tree, string][] = [
      [ctx.trees.pgbouncer, runFile],
      [ctx.trees.data, `${ctx.layout.stateDir}/${AUTH_COPY}`],
    ];
    for (const [tree, path] of sources) {
      let text: string | undefined;
      try {
        text = tree.readText(path);
      } catch {
        continue;
      }
      const verifier = text?.match(/^"postgres" "(SCRAM-SHA-256\$[^"\n]{1,400})"$/m)?.[1];
      const parsed = verifier ? parseVerifier(verifier) : undefined;
      if (!verifier || !parsed || parsed.iterations > 100_000) continue;
      if (!(await verifierMatches(ctx.settings.password.reveal(), verifier))) continue;
      if (path !== runFile) {
        ctx.trees.pgbouncer.writeIfChanged(
          runFile,
          renderAuthFile([{ role: "postgres", verifier }]),
          0o600,
        );
      }
      return true;
    }
    return false;
  }

  /**
   * Start PgBouncer and PAUSE it: its admin connection, or undefined when it could not be
   * paused (then it is stopped, and started again after post-start as before).
   */
  async #startPaused(): Promise<PgConnection | undefined> {
    const ctx = this.#ctx;
    try {
      if (!(await this.#pgbouncer.start())) return undefined;
      const conn = await PgConnection.connect({
        path: `${ctx.layout.socketDir}/.s.PGSQL.${ctx.settings.port}`,
        user: "postgres",
        database: "pgbouncer",
        password: ctx.settings.password.reveal(),
        applicationName: "beyond-pg-boot",
        timeoutMs: 2000,
      });
      try {
        await conn.query("PAUSE", 2000);
        return conn;
      } catch (error) {
        conn.close();
        throw error;
      }
    } catch (error) {
      log.warn(
        `PgBouncer could not be paused beside postgres's start (${
          errorMessage(error)
        }); it starts after post-start instead`,
      );
      await this.#haltPgbouncer();
      return undefined;
    }
  }

  /** Stop the PgBouncer started early, not to be restarted by its loop (TERM, then KILL). */
  async #haltPgbouncer(): Promise<void> {
    await this.#pgbouncer.halt(async (b) => {
      (await b.stop("SIGTERM", 2000)) || (await b.stop("SIGKILL", 2000));
    });
  }

  /** RELOAD (when the auth file changed) and RESUME; false when a stop came first. */
  async #resume(conn: PgConnection, authChanged: boolean): Promise<boolean> {
    try {
      if (authChanged) await conn.query("RELOAD", 5000);
      await conn.query("RESUME", 5000);
      return true;
    } catch (error) {
      // PgBouncer restarted meanwhile (its loop starts it unpaused) or the console failed:
      // a fresh PgBouncer reads the new auth file and is not paused.
      log.warn(`PgBouncer RESUME after post-start: ${errorMessage(error)}; restarting it`);
      await this.#haltPgbouncer();
      return !this.stopping && await this.#pgbouncer.start();
    } finally {
      conn.close();
    }
  }

  // ---- stop -----------------------------------------------------------------------------

  /** The pre-stop hooks (a failing hook is a warning: the stop goes on). */
  async runPreStopHooks(): Promise<void> {
    const ctx = this.#ctx;
    await runHooks("pre-stop", {
      hooksDir: ctx.layout.hooksDir,
      timeoutMs: ctx.settings.hookTimeoutMs,
      env: ctx.hookEnv,
    }).catch((e) => log.warn(`pre-stop hooks: ${errorMessage(e)}`));
  }

  /**
   * Stop postgres cleanly and keep it stopped (a generation handoff): its loop lets go of it,
   * so the exit is not a restart; PgBouncer keeps running. True when it shut down cleanly.
   */
  async parkPostgres(why: string): Promise<boolean> {
    const pg = this.#postgres.release();
    if (!pg?.running) return false;
    this.#facts.postgresUp = false;
    this.#facts.problem = why;
    const stopped = await pg.stop("SIGINT", this.#ctx.settings.stopTimeoutMs);
    return stopped && pg.exitStatus?.code === 0;
  }

  /** Start postgres again after parkPostgres (a handoff aborted); true once it is up. */
  async unparkPostgres(): Promise<boolean> {
    const up = await this.#postgres.start();
    if (up) this.#facts.problem = undefined;
    return up;
  }

  async #shutdown(): Promise<number> {
    const ctx = this.#ctx;
    this.#facts.phase = "stopping";
    if (!this.#preStopRan) await this.runPreStopHooks();
    const bouncer = this.#pgbouncer.child;
    if (bouncer?.running) {
      const sig = pgbouncerSignals(ctx.bins.pgbouncerVersion);
      // Without postgres (parked by a handoff, or never up) no transaction can finish: the
      // clients PgBouncer holds are let go at once (a handoff's reconnect to the next one).
      const hasServer = this.#postgres.child?.running ?? false;
      (hasServer && await bouncer.stop(sig.safe, 5000)) ||
        (await bouncer.stop(sig.immediate, 5000)) ||
        (await bouncer.stop("SIGKILL", 5000));
    }
    this.#facts.pgbouncerUp = false;
    let clean = true;
    const pg = this.#postgres.child;
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
    await this.#besideClients;
    log.info(clean ? "stopped cleanly" : "stopped (not cleanly)");
    return clean ? 0 : 1;
  }
}
