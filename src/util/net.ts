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
