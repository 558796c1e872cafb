/** PURE: 06-tls.conf (postgres) and PgBouncer's client TLS options from resolved material. */
import type { ConfEntry } from "./conf_file.ts";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string | undefined;
}

export function tlsEntries(tls: TlsFiles): ConfEntry[] {
  return [
    {
      name: "ssl",
      value: true,
      why: "TLS available on 5433; plaintext still accepted (host, not hostssl)",
    },
    { name: "ssl_cert_file", value: tls.certFile },
    { name: "ssl_key_file", value: tls.keyFile },
    ...(tls.caFile ? [{ name: "ssl_ca_file", value: tls.caFile }] : []),
    { name: "ssl_min_protocol_version", value: "TLSv1.2" },
  ];
}

/**
 * PgBouncer's client TLS. Without client_tls_ca_file its TLS library loads the whole system
 * CA bundle at startup (~25 ms here, on every boot) although allow/require never verify a
 * client certificate; so when there is no CA, the server's own certificate is named instead.
 */
export function pgbouncerTlsOptions(tls: TlsFiles, mode: "allow" | "require"): [string, string][] {
  return [
    ["client_tls_sslmode", mode],
    ["client_tls_cert_file", tls.certFile],
    ["client_tls_key_file", tls.keyFile],
    ["client_tls_ca_file", tls.caFile ?? tls.certFile],
  ];
}
