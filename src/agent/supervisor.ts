import { QmpClient, type Qmp } from '../qmp/index.js';
import type { Inventory } from '../vm/index.js';
import { isQemuAlive } from '../qemu/index.js';
import type { Logger } from 'pino';

/**
 * Holds one QMP connection per running VM and turns what QEMU reports into inventory events:
 * a guest shutdown or an asked-for stop ends in `stopped`; QEMU vanishing without either ends in
 * `failed`. QEMU's QMP socket takes one client at a time, so only the supervisor talks to it and
 * other parts borrow its connection.
 */
export class Supervisor {
  private readonly conns = new Map<string, Qmp>();
  private readonly expectExit = new Set<string>();

  constructor(private readonly inv: Inventory, private readonly log: Logger) {}

  /** The VM's QMP connection; undefined when the VM has none. */
  qmp(name: string): Qmp | undefined { return this.conns.get(name); }

  /** Marks that the VM's QEMU is about to exit on purpose (stop, delete, a finished move). */
  expect(name: string): void { this.expectExit.add(name); }

  /** Connects to a VM's QMP socket and follows its events until QEMU exits. */
  async attach(name: string, qmpPath: string, pid: number, uuid: string): Promise<Qmp> {
    const qmp = await QmpClient.connect(qmpPath, { timeoutMs: 10_000, retryUntilMs: 10_000 });
    this.conns.set(name, qmp);
    let shutdown = false;
    qmp.on('SHUTDOWN', () => { shutdown = true; });
    qmp.on('STOP', () => this.safeApply(name, { type: 'paused' }));
    qmp.on('RESUME', () => this.safeApply(name, { type: 'resumed' }));
    qmp.on('close', () => {
      if (this.conns.get(name) === qmp) this.conns.delete(name);
      void this.onGone(name, qmpPath, pid, uuid, shutdown);
    });
    return qmp;
  }

  /** Closes the connection without judging the VM (agent shut-down). */
  detachAll(): void {
    for (const [name, q] of this.conns) { this.expectExit.add(name); void q.close(); }
    this.conns.clear();
  }

  private async onGone(name: string, qmpPath: string, pid: number, uuid: string, shutdown: boolean): Promise<void> {
    const expected = this.expectExit.delete(name);
    if (expected) return; // the caller that asked for the exit records the outcome
    // The socket may close while QEMU still lives (a QMP hiccup): then only reconnecting makes sense.
    await new Promise((r) => setTimeout(r, 200));
    if (isQemuAlive(pid, uuid)) {
      this.log.warn({ vm: name }, 'QMP closed while QEMU lives; reconnecting');
      await this.attach(name, qmpPath, pid, uuid).catch((e: unknown) => this.log.error({ vm: name, err: e }, 'QMP reconnect failed'));
      return;
    }
    if (shutdown) this.safeApply(name, { type: 'stopped' }, null);
    else this.safeApply(name, { type: 'crashed', reason: 'QEMU exited without a shutdown' }, null);
  }

  private safeApply(name: string, ev: Parameters<Inventory['apply']>[1], pid?: number | null): void {
    try {
      if (this.inv.find(name)) this.inv.apply(name, ev, pid);
    } catch (e) {
      this.log.debug({ vm: name, err: e }, 'event ignored in this state');
    }
  }
}
