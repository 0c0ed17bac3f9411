/**
 * The Diffie-Hellman group QEMU's TLS servers (the incoming migration, the NBD export of a storage
 * move) load from `dh-params.pem` in the host's TLS folder. Without that file, QEMU's
 * `tls-creds-x509` object with `endpoint=server` asks GnuTLS to generate 2048-bit parameters each
 * time it is added: about 200 ms of every move's prepare phase, measured here (QEMU 10.0, GnuTLS
 * 3.7; bench/results/migrate.md, "QEMU's server TLS credentials"), against 3–4 ms with the file.
 *
 * The file holds ffdhe3072, the published group of RFC 7919 (`openssl genpkey -genparam -algorithm
 * DH -pkeyopt group:ffdhe3072`): public, the same on every host, and stronger than what QEMU would
 * generate. It is used only by TLS 1.2 DHE cipher suites; TLS 1.3 negotiates its own groups.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The file name QEMU's tls-creds-x509 object reads in its `dir`. */
export const DH_PARAMS_FILE = 'dh-params.pem';

/** RFC 7919 ffdhe3072 in PKCS#3 PEM. */
export const FFDHE3072_PEM = `-----BEGIN DH PARAMETERS-----
MIIBiAKCAYEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEfz9zeNVs7ZRkDW7w09N75nAI4YbRvydbmyQd62R0mkff3
7lmMsPrBhtkcrv4TCYUTknC0EwyTvEN5RPT9RFLi103TZPLiHnH1S/9croKrnJ32
nuhtK8UiNjoNq8Uhl5sN6todv5pC1cRITgq80Gv6U93vPBsg7j/VnXwl5B0rZsYu
N///////////AgEC
-----END DH PARAMETERS-----
`;

/** What {@link ensureDhParams} found or did. */
export type DhParamsOutcome = { kind: 'present' } | { kind: 'written' } | { kind: 'failed'; error: Error };

/**
 * Writes ffdhe3072 to `dir`/dh-params.pem unless a file of that name is there already (an
 * operator's own parameters are kept). A folder Ferry may not write to (a read-only mount of the
 * host's certificates) is reported, not thrown: QEMU then generates its own, only slower.
 */
export function ensureDhParams(dir: string): DhParamsOutcome {
  const path = join(dir, DH_PARAMS_FILE);
  if (existsSync(path)) return { kind: 'present' };
  try {
    writeFileSync(path, FFDHE3072_PEM, { mode: 0o644, flag: 'wx' });
    return { kind: 'written' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { kind: 'present' };
    return { kind: 'failed', error: e as Error };
  }
}
