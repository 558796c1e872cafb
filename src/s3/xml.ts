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

export interface ListedUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** ListMultipartUploads: the uploads, and the markers of the next page when truncated. */
export function parseUploads(
  xml: string,
): { uploads: ListedUpload[]; next: { key: string; id: string } | undefined } {
  const uploads = blocks(xml, "Upload").map((u) => ({
    key: tag(u, "Key") ?? "",
    uploadId: tag(u, "UploadId") ?? "",
    initiated: new Date(tag(u, "Initiated") ?? 0),
  }));
  const truncated = tag(xml, "IsTruncated") === "true";
  const key = tag(xml, "NextKeyMarker");
  const id = tag(xml, "NextUploadIdMarker");
  return { uploads, next: truncated && key ? { key, id: id ?? "" } : undefined };
}

/** DeleteObjects (quiet): the keys it did not delete, with the store's code. */
export function parseDeleteResult(
  xml: string,
): { key: string; code: string; message: string | undefined }[] {
  return blocks(xml, "Error").map((e) => ({
    key: tag(e, "Key") ?? "",
    code: tag(e, "Code") ?? "",
    message: tag(e, "Message"),
  }));
}
