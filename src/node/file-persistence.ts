/**
 * A file that keeps a hybrid logical clock's upper bound across restarts.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HlcPersistenceError, InvalidArgumentError } from '../errors.js';
import { isHlcWallMs } from '../logical/hlc-range.js';
import type { HlcPersistence, HlcUpperBound } from '../logical/hlc.js';

const FORMAT = 'chronobound-hlc-upper-bound';
const VERSION = 1;
/** Largest file `load` reads; the bound's JSON is about 80 bytes. */
const MAX_FILE_BYTES = 4096;
/** Attempts at creating a temporary file under a fresh random name. */
const TEMP_ATTEMPTS = 8;
/** `O_NOFOLLOW` where the platform has it (not on Windows, which has no such flag). */
const O_NOFOLLOW: number = constants.O_NOFOLLOW ?? 0;
/** Flags of the temporary file: created here, never an existing file, never through a symlink. */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | O_NOFOLLOW;

/**
 * Persistence for {@link chronobound!HybridLogicalClock | HybridLogicalClock} in a
 * small JSON file.
 *
 * `store` writes the new bound to a temporary file created exclusively
 * (`O_CREAT | O_EXCL`, plus `O_NOFOLLOW` where the platform has it) under a
 * random name next to `path` (`<path>.<16 hex digits>.tmp`), fsyncs it, renames
 * it over `path` and fsyncs the directory. So after a crash at any point the file
 * holds either the old or the new bound, never a torn one; a symlink or file
 * planted at a temporary name is never written through (the create fails and
 * another random name is tried); and a temporary file left by a crash never
 * blocks a later write. `load` removes such leftovers (`<path>.tmp`, the name
 * older versions used, and `<path>.<16 hex digits>.tmp`).
 *
 * If `path` itself is a symbolic link, both calls refuse with
 * {@link chronobound!HlcPersistenceError | HlcPersistenceError} naming it: the
 * link is neither followed nor replaced. Point `path` at the real file instead.
 *
 * `load` returns `undefined` only when the file does not exist; a corrupt,
 * unreadable or oversized (over 4 KiB) file throws instead of silently starting
 * from scratch.
 *
 * Both calls are synchronous and block the event loop for one fsync (on
 * typical disks 0.1–10 ms); the clock calls `store` at most once per
 * `persistWindowMs` of issued time.
 *
 * @param path - the file; its directory must exist. One file per clock.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   if `path` is not a non-empty string.
 * @example
 * ```ts
 * import { HybridLogicalClock } from 'chronobound';
 * import { filePersistence } from 'chronobound/node';
 *
 * const hlc = new HybridLogicalClock({ node: 'a', persistence: filePersistence('/var/lib/app/hlc.json') });
 * ```
 */
export function filePersistence(path: string): HlcPersistence {
  if (typeof path !== 'string' || path.length === 0)
    throw new InvalidArgumentError('path', path, 'a non-empty file path');

  return {
    /**
     * @throws {@link chronobound!HlcPersistenceError | HlcPersistenceError} naming the path if the file is a symbolic link,
     *   not a regular file, unreadable, larger than 4 KiB or corrupt.
     */
    load(): HlcUpperBound | undefined {
      const text = readBound(path);
      removeLeftovers(path);
      return text === undefined ? undefined : decode(path, text);
    },

    /**
     * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} naming `upper.wallMs` unless it is an integer in
     *   [0, 2^48) — a bound `load` could not read back is never written.
     * @throws {@link chronobound!HlcPersistenceError | HlcPersistenceError} naming the path if it is a symbolic link or the
     *   bound could not be made durable.
     */
    store(upper: HlcUpperBound): void {
      const wallMs = upper.wallMs;
      if (!isHlcWallMs(wallMs))
        throw new InvalidArgumentError('upper.wallMs', wallMs, 'an integer in [0, 2^48)');
      refuseSymlink(path, 'write through or replace');
      const body = Buffer.from(
        `${JSON.stringify({ format: FORMAT, version: VERSION, wallMs })}\n`,
        'utf8',
      );
      const { fd, temp } = createTemp(path);
      try {
        try {
          writeAll(fd, body);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        // rename() replaces whatever is at `path` without following it, so even a
        // symlink planted after the check above is replaced, never written through.
        renameSync(temp, path);
      } catch (e) {
        try {
          unlinkSync(temp);
        } catch {
          // Already renamed or gone; the original error is the one that matters.
        }
        throw new HlcPersistenceError(path, 'the new bound could not be written', { cause: e });
      }
      syncDirectory(path);
    },
  };
}

/** The file's text, or `undefined` if it does not exist. Never follows a symlink. */
function readBound(path: string): string | undefined {
  // lstat first: platforms without O_NOFOLLOW rely on it; O_NOFOLLOW closes the race.
  if (refuseSymlink(path, 'follow') === 'missing') return undefined;
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP' || code === 'EMLINK') refuseSymlink(path, 'follow');
    throw new HlcPersistenceError(path, 'the file could not be read', { cause: e });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw new HlcPersistenceError(path, 'it is not a regular file; refusing to read it');
    if (stat.size > MAX_FILE_BYTES)
      throw new HlcPersistenceError(
        path,
        `the file is corrupt (${stat.size} bytes, more than the ${MAX_FILE_BYTES} a bound takes)`,
      );
    const buffer = Buffer.alloc(MAX_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > MAX_FILE_BYTES)
        throw new HlcPersistenceError(
          path,
          `the file is corrupt (more than ${MAX_FILE_BYTES} bytes)`,
        );
    }
    return buffer.toString('utf8', 0, length);
  } catch (e) {
    if (e instanceof HlcPersistenceError) throw e;
    throw new HlcPersistenceError(path, 'the file could not be read', { cause: e });
  } finally {
    closeSync(fd);
  }
}

/**
 * Throws if `path` is a symbolic link (even a dangling one); returns `'missing'` if
 * nothing is there. Other `lstat` failures are left to the operation that follows.
 */
function refuseSymlink(path: string, operation: string): 'missing' | undefined {
  let isLink: boolean;
  try {
    isLink = lstatSync(path).isSymbolicLink();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : undefined;
  }
  if (isLink)
    throw new HlcPersistenceError(
      path,
      `it is a symbolic link; refusing to ${operation} it (point the path at the real file)`,
    );
  return undefined;
}

/** Creates a fresh temporary file next to `path`, exclusively, under a random name. */
function createTemp(path: string): { fd: number; temp: string } {
  let last: unknown;
  for (let attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
    const temp = `${path}.${randomBytes(8).toString('hex')}.tmp`;
    try {
      return { fd: openSync(temp, CREATE_FLAGS, 0o644), temp };
    } catch (e) {
      last = e;
      // Something is already there (planted or left over): never touch it, try another name.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ELOOP') break;
    }
  }
  throw new HlcPersistenceError(path, 'the new bound could not be written', { cause: last });
}

function writeAll(fd: number, body: Buffer): void {
  let written = 0;
  while (written < body.length) written += writeSync(fd, body, written, body.length - written);
}

/** `<name>.tmp` (older versions) or `<name>.<16 hex digits>.tmp`, for `<name>` = basename(path). */
function isLeftover(name: string, base: string): boolean {
  if (!name.startsWith(base) || !name.endsWith('.tmp')) return false;
  const middle = name.slice(base.length, name.length - 4);
  return middle === '' || /^\.[0-9a-f]{16}$/.test(middle);
}

/**
 * Removes temporary files left by crashed writers. Unlinking removes a name, never
 * what a symlink points to; directories and anything unremovable are left alone.
 */
function removeLeftovers(path: string): void {
  const base = basename(path);
  const directory = dirname(path);
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return;
  }
  for (const name of names) {
    if (!isLeftover(name, base)) continue;
    try {
      unlinkSync(join(directory, name));
    } catch {
      // A directory, or no permission: harmless, since writes never reuse these names.
    }
  }
}

/** Parses the file body; anything unexpected is corruption. */
function decode(path: string, text: string): HlcUpperBound {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new HlcPersistenceError(path, `the file is corrupt (not JSON: ${preview(text)})`, {
      cause: e,
    });
  }
  if (typeof data !== 'object' || data === null)
    throw new HlcPersistenceError(path, `the file is corrupt (not an object: ${preview(text)})`);
  const record = data as { format?: unknown; version?: unknown; wallMs?: unknown };
  if (record.format !== FORMAT || record.version !== VERSION)
    throw new HlcPersistenceError(
      path,
      `the file is corrupt or not an HLC bound (expected format "${FORMAT}" version ${VERSION}: ${preview(text)})`,
    );
  const wallMs = record.wallMs;
  if (!isHlcWallMs(wallMs))
    throw new HlcPersistenceError(
      path,
      `the file is corrupt (wallMs must be an integer in [0, 2^48): ${preview(text)})`,
    );
  return { wallMs };
}

/** Makes the rename durable; platforms that cannot fsync a directory are skipped. */
function syncDirectory(path: string): void {
  let fd: number;
  try {
    fd = openSync(dirname(path), 'r');
  } catch (e) {
    if (isUnsupported(e)) return;
    throw new HlcPersistenceError(path, 'its directory could not be opened to fsync', {
      cause: e,
    });
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    if (!isUnsupported(e))
      throw new HlcPersistenceError(path, 'its directory could not be fsynced', { cause: e });
  } finally {
    closeSync(fd);
  }
}

function isUnsupported(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  // Windows cannot open directories; some filesystems refuse fsync on them.
  return code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL' || code === 'ENOTSUP';
}

/** The start of the file's text, quoted, for a message (the file is at most 4 KiB). */
function preview(text: string): string {
  const shown = JSON.stringify(text.length > 80 ? text.slice(0, 80) : text);
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}
