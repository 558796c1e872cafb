/** PURE: the few S3 XML responses we read (list, errors, multipart ids), by tag. */

function unescape(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);/gi, (m, e: string) => {
    const named: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
    if (named[e.toLowerCase()]) return named[e.toLowerCase()]!;
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return m;
  });
}

export function tag(xml: string, name: string): string | undefined {
  const m = xml.match(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`));
  return m ? unescape(m[1]!) : undefined;
}

export function blocks(xml: string, name: string): string[] {
  return [...xml.matchAll(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, "g"))].map((m) => m[1]!);
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

export function parseList(xml: string): { objects: ListedObject[]; next: string | undefined } {
  const objects = blocks(xml, "Contents").map((c) => ({
    key: tag(c, "Key") ?? "",
    size: Number(tag(c, "Size") ?? 0),
    lastModified: new Date(tag(c, "LastModified") ?? 0),
  }));
  const truncated = tag(xml, "IsTruncated") === "true";
  return { objects, next: truncated ? tag(xml, "NextContinuationToken") : undefined };
}
