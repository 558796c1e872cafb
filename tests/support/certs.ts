/** Test certificates made with the openssl CLI: a CA and leaves it signs. */

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

export async function makeCa(dir: string, name = "ca"): Promise<{ cert: string; key: string }> {
  Deno.mkdirSync(dir, { recursive: true });
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-sha256",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "30",
    "-subj",
    `/CN=${name} test CA`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ], dir);
  return { cert: `${dir}/${name}.pem`, key: `${dir}/${name}.key` };
}

/** A leaf for localhost/127.0.0.1 signed by `ca`, written as <prefix>.pem/.key in dir. */
export async function makeLeaf(
  dir: string,
  ca: { cert: string; key: string },
  prefix: string,
  o: { days?: number } = {},
): Promise<{ cert: string; key: string }> {
  await openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${prefix}.key`,
    "-out",
    `${prefix}.csr`,
    "-subj",
    `/CN=localhost`,
  ], dir);
  Deno.writeTextFileSync(`${dir}/${prefix}.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  await openssl([
    "x509",
    "-req",
    "-in",
    `${prefix}.csr`,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-sha256",
    "-days",
    String(o.days ?? 30),
    "-out",
    `${prefix}.pem`,
    "-extfile",
    `${prefix}.ext`,
  ], dir);
  return { cert: `${dir}/${prefix}.pem`, key: `${dir}/${prefix}.key` };
}

/** A self-signed pair (for user-managed and renewal tests). */
export async function makeSelfSigned(
  dir: string,
  prefix: string,
  days: number,
): Promise<{ cert: string; key: string }> {
  Deno.mkdirSync(dir, { recursive: true });
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-sha256",
    "-nodes",
    "-keyout",
    `${prefix}.key`,
    "-out",
    `${prefix}.crt`,
    "-days",
    String(days),
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], dir);
  return { cert: `${dir}/${prefix}.crt`, key: `${dir}/${prefix}.key` };
}

/** SHA-256 fingerprint (hex, lower case) of the certificate a server presents. */
export async function servedFingerprint(port: number): Promise<string> {
  const sh =
    `openssl s_client -starttls postgres -connect 127.0.0.1:${port} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`;
  const out = await new Deno.Command("sh", { args: ["-c", sh], stdout: "piped" }).output();
  return (new TextDecoder().decode(out.stdout).match(/=([0-9A-F:]+)/i)?.[1] ?? "").replaceAll(
    ":",
    "",
  ).toLowerCase();
}

export async function fileFingerprint(cert: string): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: ["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
    stdout: "piped",
  }).output();
  return (new TextDecoder().decode(out.stdout).match(/=([0-9A-F:]+)/i)?.[1] ?? "").replaceAll(
    ":",
    "",
  ).toLowerCase();
}
