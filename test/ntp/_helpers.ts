/**
 * Shared helpers for the NTP tests: counting open sockets (to catch leaks) and
 * waiting for a condition without sleeping longer than needed.
 */
import { readdirSync, readlinkSync } from 'node:fs';

/** Open socket file descriptors of this process (Linux), plus ref'd UDP handles elsewhere. */
export function openSockets(): number {
  try {
    let count = 0;
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) count++;
      } catch {
        // the fd closed while we looked
      }
    }
    return count;
  } catch {
    return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
  }
}

/** Active (ref'd) UDP handles. */
export function activeUdpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

/** Resolves once `condition()` holds, polling every few ms; rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > timeoutMs)
      throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Waits for sockets closed in the last tick to leave the fd table. */
export async function settleSockets(expected: number, timeoutMs = 1000): Promise<number> {
  const start = performance.now();
  while (openSockets() > expected && performance.now() - start < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return openSockets();
}
