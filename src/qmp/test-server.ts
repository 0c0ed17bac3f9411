/**
 * A scriptable QMP server on a unix socket in a temporary folder, for the client's unit
 * tests (not exported from index.ts). It greets, answers qmp_capabilities, and leaves the
 * rest to the test: read what the client sent with next(), answer with send().
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}';

/** One accepted connection. */
export class ServerConn {
  private buf = '';
  private readonly queue: Record<string, unknown>[] = [];
  private waiting: ((m: Record<string, unknown>) => void) | undefined;
  readonly ended: Promise<void>;

  constructor(readonly socket: Socket, private readonly negotiate: boolean) {
    this.ended = new Promise((res) => socket.on('close', () => res()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk.toString('utf8')));
  }

  /** The next command the client sent, parsed. */
  next(): Promise<Record<string, unknown>> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((res) => { this.waiting = res; });
  }

  /** Sends a message (object → one JSON line with \r\n, string → as is). */
  send(msg: object | string): void {
    this.socket.write(typeof msg === 'string' ? msg : `${JSON.stringify(msg)}\r\n`);
  }

  reply(id: unknown, ret: unknown = {}): void { this.send({ return: ret, id }); }

  event(name: string, data?: object): void {
    this.send({ timestamp: { seconds: 1, microseconds: 2 }, event: name, ...(data ? { data } : {}) });
  }

  private onData(text: string): void {
    this.buf += text;
    for (let nl = this.buf.indexOf('\n'); nl !== -1; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (this.negotiate && msg['execute'] === 'qmp_capabilities') {
        this.reply(msg['id']);
        continue;
      }
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(msg);
      else this.queue.push(msg);
    }
  }
}

export interface TestServerOptions {
  /** Sent on connect; false sends nothing. Default: a QEMU 7.2 greeting. */
  greeting?: string | false;
  /** Answer qmp_capabilities automatically (default true). */
  negotiate?: boolean;
}

export class TestServer {
  private readonly conns: ServerConn[] = [];
  private readonly all: ServerConn[] = [];
  private waiting: ((c: ServerConn) => void) | undefined;

  private constructor(readonly dir: string, readonly path: string, private server: Server | undefined) {}

  /** Creates a folder and, unless `listen` is false, listens on `<dir>/qmp.sock`. */
  static async start(opts: TestServerOptions = {}, listen = true): Promise<TestServer> {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-qmp-'));
    const s = new TestServer(dir, join(dir, 'qmp.sock'), undefined);
    if (listen) await s.listen(opts);
    return s;
  }

  /** Starts listening (for tests that connect before the server exists). */
  async listen(opts: TestServerOptions = {}): Promise<void> {
    const greeting = opts.greeting === undefined ? `${GREETING}\r\n` : opts.greeting;
    this.server = createServer((socket) => {
      const conn = new ServerConn(socket, opts.negotiate ?? true);
      this.all.push(conn);
      if (greeting !== false) socket.write(greeting);
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(conn);
      else this.conns.push(conn);
    });
    const srv = this.server;
    await new Promise<void>((res) => srv.listen(this.path, () => res()));
  }

  /** The next accepted connection. */
  accepted(): Promise<ServerConn> {
    const c = this.conns.shift();
    if (c !== undefined) return Promise.resolve(c);
    return new Promise((res) => { this.waiting = res; });
  }

  async stop(): Promise<void> {
    const srv = this.server;
    if (srv) {
      srv.close();
      for (const c of this.all) c.socket.destroy();
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
