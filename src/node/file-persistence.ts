/**
 * A file that keeps a hybrid logical clock's upper bound across restarts.
 *
 * @module
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { HlcPersistenceError, InvalidArgumentError } from '../errors.js';
import { HLC_MAX_WALL_MS } from '../logical/hlc.js';
import type { HlcPersistence, HlcUpperBound } from '../logical/hlc.js';

const FORMAT = 'chronobound-hlc-upper-bound';
const VERSION = 1;

/**
 * Persistence for {@link chronobound!HybridLogicalClock | HybridLogicalClock} in a
 * small JSON file. `store` writes `<path>.tmp`, fsyncs it, renames it over
 * `path` and fsyncs the directory, so after a crash at any point the file holds
 * either the old or the new bound, never a torn one. `load` returns `undefined` only when the
 * file does not exist; a corrupt or unreadable file throws instead of
 * silently starting from scratch.
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
  const temp = `${path}.tmp`;

  return {
    /**
     * @throws {@link HlcPersistenceError} naming the path if the file is unreadable or corrupt.
     */
    load(): HlcUpperBound | undefined {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new HlcPersistenceError(path, 'the file could not be read', { cause: e });
      }
      return decode(path, text);
    },

    /**
     * @throws {@link HlcPersistenceError} naming the path if the bound could not be made durable.
     */
    store(upper: HlcUpperBound): void {
      const wallMs = upper.wallMs;
      if (!Number.isSafeInteger(wallMs) || wallMs < 0)
        throw new InvalidArgumentError('upper.wallMs', wallMs, 'a safe integer ≥ 0');
      const body = `${JSON.stringify({ format: FORMAT, version: VERSION, wallMs })}\n`;
      try {
        const fd = openSync(temp, 'w', 0o644);
        try {
          writeSync(fd, body);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(temp, path);
      } catch (e) {
        try {
          unlinkSync(temp);
        } catch {
          // The temp file may not exist; the original error is the one that matters.
        }
        throw new HlcPersistenceError(path, 'the new bound could not be written', { cause: e });
      }
      syncDirectory(path);
    },
  };
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
  if (
    typeof wallMs !== 'number' ||
    !Number.isInteger(wallMs) ||
    wallMs < 0 ||
    wallMs > HLC_MAX_WALL_MS
  )
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

function preview(text: string): string {
  const shown = JSON.stringify(text);
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}
