import assert from "node:assert/strict";
import { parseList, tag } from "./xml.ts";
import { S3Client } from "./client.ts";

Deno.test("parseList() reads keys, sizes and the continuation token", () => {
  const xml = `<ListBucketResult><IsTruncated>true</IsTruncated>
    <Contents><Key>a/b&amp;c</Key><Size>3</Size><LastModified>2026-01-02T03:04:05.000Z</LastModified></Contents>
    <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>`;
  const page = parseList(xml);
  assert.deepEqual(page.objects.map((o) => [o.key, o.size]), [["a/b&c", 3]]);
  assert.equal(page.next, "tok");
  assert.equal(tag("<Error><Code>NoSuchBucket</Code></Error>", "Code"), "NoSuchBucket");
});

Deno.test("S3Client.url() builds path-style and virtual-host URLs with encoded keys", () => {
  const creds = { accessKeyId: "a", secretAccessKey: "b" };
  const base = { region: "us-east-1", bucket: "bk", credentials: creds, timeoutMs: 1000 };
  const path = new S3Client({ ...base, endpoint: "http://127.0.0.1:7480", pathStyle: true });
  assert.equal(path.url("p/wal/0001.partial").href, "http://127.0.0.1:7480/bk/p/wal/0001.partial");
  const vhost = new S3Client({
    ...base,
    endpoint: "https://s3.eu-west-1.amazonaws.com",
    pathStyle: false,
  });
  assert.equal(vhost.url("a b").href, "https://bk.s3.eu-west-1.amazonaws.com/a%20b");
});
