/**
 * The open-files limit of the supervisor, inherited by postgres and PgBouncer. A stock soft
 * limit of 1024 leaves PgBouncer short of descriptors for its clients; the soft limit goes up
 * to the hard one (at most FD_LIMIT_TARGET), and as root the hard limit is raised to the
 * target first. planFdLimit is PURE; raiseFdLimit applies it.
 */
import { getrlimit, type Rlimit, RLIMIT_NOFILE, setrlimit } from "../../ffi/mod.ts";
import { errorMessage } from "../util/errors.ts";

export const FD_LIMIT_TARGET = 65536;

/** The limit to set, or undefined when `current` is already as high as it should be. */
export function planFdLimit(
  current: Rlimit,
  { root, target = FD_LIMIT_TARGET }: { root: boolean; target?: number },
): Rlimit | undefined {
  const hard = root ? Math.max(current.hard, target) : current.hard;
  const soft = Math.max(current.soft, Math.min(hard, target));
  return soft === current.soft && hard === current.hard ? undefined : { soft, hard };
}

export interface FdLimitResult {
  limit: Rlimit;
  /** One line for the operator when the limit stays below `need`. */
  warning?: string;
}

/** Raise RLIMIT_NOFILE; never throws. `need`: descriptors PgBouncer may use (for the warning). */
export function raiseFdLimit(need: number, root = Deno.uid() === 0): FdLimitResult {
  let limit: Rlimit;
  try {
    limit = getrlimit(RLIMIT_NOFILE);
  } catch (error) {
    return {
      limit: { soft: 0, hard: 0 },
      warning: `cannot read the open-files limit (${
        errorMessage(error)
      }); PgBouncer may run short of descriptors`,
    };
  }
  const before = limit;
  let failure = "";
  for (const asRoot of root ? [true, false] : [false]) {
    const want = planFdLimit(before, { root: asRoot });
    if (!want) break;
    try {
      setrlimit(RLIMIT_NOFILE, want);
      limit = want;
      break;
    } catch (error) {
      // Root without CAP_SYS_RESOURCE (a container): raise the soft limit only.
      failure = errorMessage(error);
    }
  }
  if (limit.soft >= need) return { limit };
  return {
    limit,
    warning: `the open-files limit is ${limit.soft} (hard ${limit.hard}${
      failure ? `; raising it failed: ${failure}` : ""
    }), below the ${need} PgBouncer may need; raise the hard limit (ulimit -Hn, LimitNOFILE=) to at least ${need}`,
  };
}
