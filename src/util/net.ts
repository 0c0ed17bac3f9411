import { execFile } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * A TCP port on `host` that nothing listens on right now, for a QEMU server (NBD) that cannot
 * report the port it picked itself. Another process may take it before QEMU does; callers retry.
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error(`no port on ${host}`))));
    });
  });
}

/**
 * Closes this network namespace's TCP connections to `host`:`port` at once (`ss -K`, the kernel's
 * SOCK_DESTROY): the process holding them sees ECONNABORTED. QEMU 7.2 opens an NBD client
 * connection synchronously inside `blockdev-add`, holding its main loop; when the peer stops
 * answering mid-handshake, only this gives the monitor (and the guest) back before TCP gives up,
 * many minutes later. Resolves with how many connections were closed; never throws.
 */
export async function destroyConnections(host: string, port: number): Promise<number> {
  const dst = host.includes(':') ? `[${host}]` : host;
  return new Promise((resolve) => {
    execFile('ss', ['-K', '-H', '-tn', 'dst', dst, 'dport', '=', String(port)], { timeout: 5_000 }, (err, stdout) => {
      resolve(err ? 0 : stdout.split('\n').filter((l) => l.trim() !== '').length);
    });
  });
}
