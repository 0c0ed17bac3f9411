/**
 * What this host last saw in the cluster's record of each HA VM it holds: priority, restart and
 * failback policy, home. etcd holds them; this copy in the host's SQLite is what a VM gets back
 * when it is registered again after etcd's data was lost (src/cluster/owner.ts), instead of the
 * defaults. Kept by uuid, for the VMs of this host's inventory only; best effort (a write that
 * fails is logged once and tried again at the next tick, the cluster tick goes on).
 */
import type { Logger } from 'pino';
import { FAILBACK_POLICIES, keptPolicies, RESTART_POLICIES, type HaRecord, type KeptPolicies } from '../cluster/index.js';
import type { Db } from '../util/db.js';

/** The kept policies of this host's HA VMs, in the agent's SQLite. */
export class HaPolicyMemory {
  private failing = false;

  constructor(private readonly db: Db, private readonly log: Logger) {
    db.exec('CREATE TABLE IF NOT EXISTS ha_policies (uuid TEXT PRIMARY KEY, policies TEXT NOT NULL)');
  }

  /**
   * Keeps the policies of each record whose VM (by uuid) is in `held`, and forgets every VM that is
   * not: a record that is gone leaves what was kept of it, which is the point.
   */
  remember(records: readonly HaRecord[], held: ReadonlySet<string>): void {
    try {
      const rows = this.db.prepare('SELECT uuid, policies FROM ha_policies').all() as { uuid: string; policies: string }[];
      const have = new Map(rows.map((r) => [r.uuid, r.policies]));
      const put = this.db.prepare('INSERT INTO ha_policies (uuid, policies) VALUES (?, ?) ON CONFLICT(uuid) DO UPDATE SET policies = excluded.policies');
      const drop = this.db.prepare('DELETE FROM ha_policies WHERE uuid = ?');
      this.db.transaction(() => {
        for (const r of records) {
          const v = JSON.stringify(keptPolicies(r));
          if (held.has(r.spec.uuid) && have.get(r.spec.uuid) !== v) put.run(r.spec.uuid, v);
        }
        for (const uuid of have.keys()) if (!held.has(uuid)) drop.run(uuid);
      })();
      this.failing = false;
    } catch (e) {
      if (!this.failing) this.log.warn({ err: e }, 'could not keep the HA policies of this host\'s VMs (a VM registered again after a loss of etcd\'s data may get older ones, or the defaults)');
      this.failing = true;
    }
  }

  /** The policies and home last kept for the VM of this uuid. */
  recall(uuid: string): KeptPolicies | undefined {
    try {
      const row = this.db.prepare('SELECT policies FROM ha_policies WHERE uuid = ?').get(uuid) as { policies: string } | undefined;
      if (!row) return undefined;
      const k = JSON.parse(row.policies) as Partial<KeptPolicies>;
      // A row that does not hold what a record needs (written by a future agent, or damaged) counts as none.
      const whole = Number.isInteger(k.priority) && RESTART_POLICIES.some((x) => x === k.restart) && FAILBACK_POLICIES.some((x) => x === k.failback)
        && typeof k.home === 'string' && k.home !== '' && typeof k.asOf === 'string';
      return whole ? k as KeptPolicies : undefined;
    } catch (e) {
      this.log.warn({ err: e, uuid }, 'could not read the kept HA policies of a VM: it is registered with the defaults');
      return undefined;
    }
  }
}
