/** PURE: conf/extensions.toml → a validated manifest. */
import { parse } from "smol-toml";
import { OperatorError } from "../util/errors.ts";
import type { ConfValue } from "./conf_file.ts";

export interface ExtensionSpec {
  name: string;
  preload: boolean;
  create: boolean;
  /** Shared library file name without .so (defaults to the extension name). */
  library: string;
  database: string | undefined;
  settings: Record<string, ConfValue>;
  /**
   * Package per source ("pgdg", "github", "paradedb", or a Debian suite: "bookworm", "trixie",
   * "testing"); "-" = not shipped by that source.
   */
  packages: Record<string, string>;
}

export interface Manifest {
  major: number;
  extensions: ExtensionSpec[];
}

function bad(source: string, what: string, fix: string): never {
  throw new OperatorError(`Cannot read extension manifest ${source}: ${what}; ${fix}`, {
    exitCode: 2,
  });
}

function isTable(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
}

export function parseManifest(text: string, source: string): Manifest {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (error) {
    bad(
      source,
      `not valid TOML (${error instanceof Error ? error.message.split("\n")[0] : error})`,
      "fix the syntax",
    );
  }
  const pg = isTable(doc["postgres"]) ? doc["postgres"] : {};
  const major = typeof pg["major"] === "number" ? pg["major"] : 18;
  const table = doc["extensions"];
  if (!isTable(table)) bad(source, "no [extensions.*] tables", "add at least one extension");
  const extensions: ExtensionSpec[] = [];
  for (const [name, raw] of Object.entries(table)) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
      bad(
        source,
        `extension name ${JSON.stringify(name)} is not a plain identifier`,
        "use lower-case letters, digits and _",
      );
    }
    if (!isTable(raw)) {
      bad(source, `extensions.${name} is not a table`, `write [extensions.${name}]`);
    }
    const flag = (key: string, fallback: boolean): boolean => {
      const v = raw[key];
      if (v === undefined) return fallback;
      if (typeof v !== "boolean") {
        bad(source, `extensions.${name}.${key} is not true/false`, "use true or false");
      }
      return v;
    };
    const text = (key: string): string | undefined => {
      const v = raw[key];
      if (v === undefined) return undefined;
      if (typeof v !== "string" || v === "") {
        bad(source, `extensions.${name}.${key} is not a string`, "quote it");
      }
      return v;
    };
    const settings: Record<string, ConfValue> = {};
    if (raw["settings"] !== undefined) {
      if (!isTable(raw["settings"])) {
        bad(source, `extensions.${name}.settings is not a table`, "use settings = { ... }");
      }
      for (const [key, value] of Object.entries(raw["settings"])) {
        if (!/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_.]*$/.test(key)) {
          bad(
            source,
            `extensions.${name}.settings key ${JSON.stringify(key)} is not a prefixed setting`,
            "use prefix.name",
          );
        }
        if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
          bad(
            source,
            `extensions.${name}.settings.${key} is not a scalar`,
            "use a string, number or boolean",
          );
        }
        settings[key] = value;
      }
    }
    const packages: Record<string, string> = {};
    if (isTable(raw["packages"])) {
      for (const [k, v] of Object.entries(raw["packages"])) {
        if (typeof v === "string") packages[k] = v;
      }
    }
    extensions.push({
      name,
      preload: flag("preload", false),
      create: flag("create", true),
      library: text("library") ?? name,
      database: text("database"),
      settings,
      packages,
    });
  }
  return { major, extensions };
}
