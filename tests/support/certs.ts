/** Test certificates made with the openssl CLI: a CA and leaves it signs. */
import { certInfo, fingerprintFrom, generateSelfSigned } from "../../src/tls/openssl.ts";

/** A new P-256 key (`openssl req` arguments). */
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

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
    ...EC_KEY,
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
    ...EC_KEY,
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

/** A self-signed pair for localhost (user-managed and renewal tests): the product's generator. */
export async function makeSelfSigned(
  dir: string,
  prefix: string,
  days: number,
): Promise<{ cert: string; key: string }> {
  Deno.mkdirSync(dir, { recursive: true });
  const pair = { cert: `${dir}/${prefix}.crt`, key: `${dir}/${prefix}.key` };
  await generateSelfSigned({
    keyPath: pair.key,
    certPath: pair.cert,
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    days,
  });
  return pair;
}

/** SHA-256 fingerprint (hex, lower case) of the certificate a server presents. */
export async function servedFingerprint(port: number): Promise<string> {
  const sh =
    `openssl s_client -starttls postgres -connect 127.0.0.1:${port} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`;
  const out = await new Deno.Command("sh", { args: ["-c", sh], stdout: "piped" }).output();
  return fingerprintFrom(new TextDecoder().decode(out.stdout));
}

/** SHA-256 fingerprint (hex, lower case) of a certificate file. */
export async function fileFingerprint(cert: string): Promise<string> {
  return (await certInfo(cert)).fingerprint;
}
