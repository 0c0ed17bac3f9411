/**
 * The destination's first step of `prepare`: the incoming QEMU, and this host's end of the move's
 * hand-over tunnel (docs/design/0001, "Network cut-over"). The tunnel opens while QEMU starts.
 */
import type { Qmp } from '../qmp/index.js';
import { openTunnel, pinMac, tunnelName } from '../qemu/index.js';
import { tapName, type VmSpec } from '../vm/index.js';
import type { MigrationHost } from './host.js';
import type { PrepareRequest } from './protocol.js';

/**
 * Starts the incoming QEMU of `spec` and, with a hand-over, opens the tunnel meanwhile, then pins
 * the VM's MAC to the incoming tap: the redirect at switch-over is then one local step on the
 * source, and only frames the source tunnels here (or a switch floods) reach this bridge for that
 * MAC. Both are made (or have failed) before it returns or throws, so that a rollback finds
 * everything it made; QEMU's error wins over the tunnel's.
 */
export async function startIncomingWithTunnel(h: MigrationHost, req: PrepareRequest, spec: VmSpec): Promise<Qmp> {
  const { handover } = req;
  const opening = handover && openTunnel(tunnelName(req.jobId), handover.vni, h.migrationAddress, handover.sourceAddress, h.bridge)
    .then(() => undefined, (e: unknown) => e);
  const started = await h.startIncoming(spec).then((qmp) => ({ qmp }), (e: unknown) => ({ e }));
  const tunnelError = await opening;
  if ('e' in started) {
    if (tunnelError !== undefined) h.log.warn({ job: req.jobId, err: tunnelError }, 'the hand-over tunnel did not open either');
    throw started.e;
  }
  if (tunnelError !== undefined) throw tunnelError;
  if (handover) await pinMac(req.vm.mac, tapName(req.vm.uuid));
  return started.qmp;
}
