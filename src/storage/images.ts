import { execFile } from 'node:child_process';
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../errors/index.js';
import { errnoWhy } from '../util/files.js';

const run = promisify(execFile);

/** Creates a qcow2 image of `sizeBytes` at `path` (its folder too). */
export async function createImage(path: string, sizeBytes: number): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (e) {
    throw new FerryError('STORAGE_FAILED', `The folder of ${path} cannot be made: ${errnoWhy(e)}.`, { cause: e });
  }
  try {
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(sizeBytes)]);
  } catch (e) {
    throw new FerryError('STORAGE_FAILED', `qemu-img could not create ${path}: ${stderrOf(e)}.`, { cause: e });
  }
}

/** Virtual size and format of an image, from `qemu-img info`. */
export async function imageInfo(path: string): Promise<{ virtualSize: number; format: string; actualSize: number }> {
  try {
    // -U: the image is usually open by a running QEMU, which holds its lock.
    const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', path]);
    const j = JSON.parse(stdout) as { 'virtual-size': number; format: string; 'actual-size': number };
    return { virtualSize: j['virtual-size'], format: j.format, actualSize: j['actual-size'] };
  } catch (e) {
    throw new FerryError('STORAGE_FAILED', `qemu-img could not read ${path}: ${stderrOf(e)}.`, { cause: e });
  }
}

/**
 * Copies the contents of image `from` into the existing image `to` of the same size (`qemu-img
 * convert -n`), keeping `to`'s format and skipping unallocated clusters. Neither may be in use.
 */
export async function copyImage(from: string, to: string): Promise<void> {
  try {
    await run('qemu-img', ['convert', '-n', '-f', 'qcow2', '-O', 'qcow2', from, to]);
  } catch (e) {
    throw new FerryError('STORAGE_FAILED', `qemu-img could not copy ${from} to ${to}: ${stderrOf(e)}.`, { cause: e });
  }
}

/** Deletes an image and its folder when that becomes empty. Missing files are fine. */
export async function deleteImage(path: string): Promise<void> {
  try {
    await rm(path, { force: true });
  } catch (e) {
    throw new FerryError('STORAGE_FAILED', `The image ${path} cannot be deleted: ${errnoWhy(e)}.`, { cause: e });
  }
  await rmdir(dirname(path)).catch(() => undefined);
}

function stderrOf(e: unknown): string {
  const s = (e as { stderr?: string }).stderr ?? (e instanceof Error ? e.message : String(e));
  return s.trim().replace(/\.$/, '');
}
