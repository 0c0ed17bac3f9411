import type { Command } from 'commander';
import { buildImage, findImage, type GuestImage } from '../../image/index.js';
import { imageDir } from '../../util/paths.js';
import { printJson, run } from '../output.js';

/** Prints the image as aligned "field  value" lines for people. */
function printImage(img: GuestImage, extra: [string, string][] = []): void {
  const rows: [string, string][] = [['kernel', img.kernel], ['initrd', img.initrd], ['key', img.key], ['kernel version', img.kernelVersion], ...extra];
  process.stdout.write(rows.map(([k, v]) => `${k.padEnd(15)} ${v}\n`).join(''));
}

/** `ferry image …`: build and show the test guest. */
export function registerImage(program: Command): void {
  const image = program.command('image').description('the test guest image');

  image.command('build').description('build the test guest from Debian packages (cached by a hash of its inputs)')
    .option('--force', 'rebuild even when a build of the same inputs exists')
    .option('--dir <dir>', 'image folder (default $FERRY_CACHE/image)')
    .option('--json', 'print JSON')
    .action((o: { force?: boolean; dir?: string; json?: boolean }) => run(o.json, async () => {
      // Progress goes to stderr so that stdout stays one JSON document with --json.
      const img = await buildImage({ dir: o.dir ?? imageDir(), force: o.force ?? false, log: (l) => process.stderr.write(`${l}\n`) });
      if (o.json) printJson(img);
      else printImage(img, [['size', `${(img.sizeBytes / 1048576).toFixed(1)} MiB`], ['cached', img.cached ? 'yes' : 'no']]);
    }));

  image.command('show').description('show the built test guest')
    .option('--dir <dir>', 'image folder (default $FERRY_CACHE/image)')
    .option('--json', 'print JSON')
    .action((o: { dir?: string; json?: boolean }) => run(o.json, () => {
      const img = findImage(o.dir ?? imageDir());
      if (o.json) printJson(img);
      else printImage(img);
      return Promise.resolve();
    }));
}
