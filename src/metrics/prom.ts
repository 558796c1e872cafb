/**
 * PURE: Prometheus text exposition (format 0.0.4). Names follow the conventions
 * (`beyond_pg_*`, base units in the name, counters end in `_total`); `promtool check metrics`
 * runs over the output in tests.
 */

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: Sample[];
}

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function renderFamilies(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${f.help.replaceAll("\\", "\\\\").replaceAll("\n", " ")}`);
    out.push(`# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = s.labels && Object.keys(s.labels).length
        ? `{${Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
        : "";
      out.push(`${f.name}${labels} ${formatValue(s.value)}`);
    }
  }
  return out.join("\n") + "\n";
}

export function gauge(name: string, help: string, samples: Sample[] | number): Family {
  return {
    name,
    help,
    type: "gauge",
    samples: typeof samples === "number" ? [{ value: samples }] : samples,
  };
}

export function counter(name: string, help: string, samples: Sample[] | number): Family {
  return {
    name,
    help,
    type: "counter",
    samples: typeof samples === "number" ? [{ value: samples }] : samples,
  };
}
