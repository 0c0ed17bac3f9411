#!/usr/bin/env node
import { Command } from 'commander';
import { registerLab } from './commands/lab.js';
import { registerImage } from './commands/image.js';
import { registerVm } from './commands/vm.js';
import { registerHost } from './commands/host.js';
import { registerMove } from './commands/move.js';
import { registerMigration } from './commands/migration.js';
import { registerCompare } from './commands/compare.js';
import { registerToken } from './commands/token.js';
import { registerCa } from './commands/ca.js';
import { registerCluster } from './commands/cluster.js';

const program = new Command('ferry')
  .description('Live migration for QEMU/KVM hosts')
  .version('0.1.0')
  .showHelpAfterError();

registerLab(program);
registerImage(program);
registerVm(program);
registerHost(program);
registerCompare(program);
registerMove(program);
registerMigration(program);
registerToken(program);
registerCa(program);
registerCluster(program);

await program.parseAsync(process.argv);
