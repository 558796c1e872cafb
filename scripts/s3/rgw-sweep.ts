/**
 * Remove the test buckets radosgw still holds from earlier runs (tests take a bucket each and
 * leave it; S3 allows an account 1,000): every bucket created more than `--hours` ago (default
 * 3), with what it holds. Run by scripts/test before the lanes, on the host (radosgw-admin
 * runs where radosgw does). Concurrent runs are safe: a run's own buckets are younger.
 *
 *   deno run -A scripts/s3/rgw-sweep.ts RGW_DIR [--hours N]
 */
const dir = Deno.args[0];
if (!dir) {
  console.error("usage: rgw-sweep.ts RGW_DIR [--hours N]");
  Deno.exit(2);
}
const at = Deno.args.indexOf("--hours");
const hours = at >= 0 ? Number(Deno.args[at + 1]) : 3;
const env = { CEPH_CONF: `${dir}/ceph.conf` };
const admin = (args: string[]) =>
  new Deno.Command("radosgw-admin", {
    args: ["-n", "client.rgw", "--admin-socket=", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();

const listed = await admin(["bucket", "stats"]);
if (!listed.success) {
  console.error(`rgw-sweep: radosgw-admin bucket stats failed; nothing removed`);
  Deno.exit(0);
}
const cutoff = Date.now() - hours * 3600_000;
/** What tests/support/s3.ts freshBucket() names them: a prefix, 12 characters of a UUID. */
const TEST_BUCKET = /^[a-z0-9]+-[0-9a-f]{8}-[0-9a-f]{3}$/;
const old = (JSON.parse(new TextDecoder().decode(listed.stdout)) as {
  bucket: string;
  creation_time?: string;
}[]).filter((b) => TEST_BUCKET.test(b.bucket) && Date.parse(b.creation_time ?? "") < cutoff)
  .map((b) => b.bucket);
let removed = 0;
const queue = [...old];
await Promise.all([0, 1, 2, 3].map(async () => {
  for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
    const out = await admin(["bucket", "rm", `--bucket=${b}`, "--purge-objects", "--bypass-gc"]);
    if (out.success) removed++;
  }
}));
if (old.length) {
  console.error(`rgw-sweep: removed ${removed} of ${old.length} buckets older than ${hours} h`);
}
