import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HarnessError, ManagedProcess, waitUntilReady } from './process.ts';

/** Running, not a zombie waiting for a reaper (a killed process's child is reparented and may linger as one). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

describe('ManagedProcess', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-process-test-'));

  it('stops the whole process group, grandchildren included', async () => {
    const logFile = join(dir, 'group.log');
    // The shell starts a grandchild and prints its pid; both must be gone after stop().
    const proc = new ManagedProcess({
      name: 'group',
      command: 'bash',
      args: ['-c', 'sleep 300 & echo "child $!"; wait'],
      logFile,
    });
    await proc.spawn();
    await waitUntilReady(proc, async () => /child \d+/.test(readFileSync(logFile, 'utf8')), 5_000, 20);
    const grandchild = Number(/child (\d+)/.exec(readFileSync(logFile, 'utf8'))?.[1]);
    expect(alive(grandchild)).toBe(true);
    await proc.stop('SIGTERM', 2_000);
    await expect.poll(() => alive(grandchild)).toBe(false);
    expect(proc.running).toBe(false);
    await proc.stop(); // idempotent
  });

  it('reports a process that exits before it is ready, naming the server and its log', async () => {
    const logFile = join(dir, 'crash.log');
    const proc = new ManagedProcess({ name: 'crasher', command: 'bash', args: ['-c', 'echo boom; exit 3'], logFile });
    await proc.spawn();
    const failure = waitUntilReady(proc, async () => false, 5_000, 20);
    await expect(failure).rejects.toBeInstanceOf(HarnessError);
    await expect(failure).rejects.toThrow(`crasher: exited with code 3 before it was ready (log: ${logFile})`);
  });

  it('ends the server when the process that started it is killed without stopping it', async () => {
    const logFile = join(dir, 'orphan.log');
    const script = `
      import { ManagedProcess } from ${JSON.stringify(new URL('./process.ts', import.meta.url).pathname)};
      const proc = new ManagedProcess({ name: 'orphan', command: 'sleep', args: ['300'], logFile: ${JSON.stringify(logFile)} });
      await proc.spawn();
      process.stdout.write(String(proc.pid));
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = await new Promise<number>((resolve) =>
      parent.stdout.once('data', (data) => resolve(Number(String(data)))),
    );
    expect(alive(pid)).toBe(true);
    parent.kill('SIGKILL');
    await expect.poll(() => alive(pid), { timeout: 5_000, interval: 100 }).toBe(false);
  });
});
