#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { FerryError } from '../errors/index.js';
import { fail } from './output.js';
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
  // A command line commander cannot parse is bad input like any other: INVALID_INPUT, exit 2, JSON with --json.
  .exitOverride()
  .configureOutput({ outputError: () => undefined });

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

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (!(e instanceof CommanderError)) throw e;
  // --help and --version end here with exit code 0.
  if (e.exitCode !== 0) {
    // commander.help: a command without its subcommand, whose help commander printed on stderr.
    const why = e.code === 'commander.help' ? 'this command needs one of its subcommands' : e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    fail(new FerryError('INVALID_INPUT', `${why}; --help lists the commands and their options.`), process.argv.includes('--json'));
  }
}
