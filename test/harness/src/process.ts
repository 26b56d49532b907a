import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Raised when a server cannot start: names the server, the reason and where its log is. */
export class HarnessError extends Error {
  override name = 'HarnessError';
  readonly server: string;
  readonly logFile: string | undefined;
  constructor(server: string, reason: string, logFile?: string, options?: { cause?: unknown }) {
    super(`${server}: ${reason}${logFile === undefined ? '' : ` (log: ${logFile})`}`, options);
    this.server = server;
    this.logFile = logFile;
  }
}

/** How to launch one server process. */
export interface ProcessSpec {
  /** Short server name used in errors and logs, e.g. `postgres`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly uid?: number;
  readonly gid?: number;
}

/**
 * A server process in its own process group, with its output in a log file and a watchdog that kills the group
 * if the process that started it dies without stopping it (a crashed or killed test run leaves nothing behind).
 */
export class ManagedProcess {
  #child: ChildProcess | undefined;
  #watchdog: ChildProcess | undefined;
  #log: WriteStream | undefined;
  #exited: Promise<number | null> = Promise.resolve(null);
  #exitCode: number | null | undefined;

  readonly spec: ProcessSpec;
  constructor(spec: ProcessSpec) {
    this.spec = spec;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.#child !== undefined && this.#exitCode === undefined;
  }

  /** Starts the process; resolves once it has been spawned (not when it is ready). */
  async spawn(): Promise<void> {
    if (this.running) return;
    this.#log = createWriteStream(this.spec.logFile, { flags: 'a' });
    await new Promise<void>((resolve) => this.#log!.once('open', () => resolve()));
    const options: SpawnOptions = {
      env: this.spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    };
    if (this.spec.cwd !== undefined) options.cwd = this.spec.cwd;
    if (this.spec.uid !== undefined) options.uid = this.spec.uid;
    if (this.spec.gid !== undefined) options.gid = this.spec.gid;
    const child = spawn(this.spec.command, [...this.spec.args], options);
    this.#exitCode = undefined;
    this.#child = child;
    child.stdout?.pipe(this.#log, { end: false });
    child.stderr?.pipe(this.#log, { end: false });
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal === null ? null : -1);
        // Whatever the leader left in its group (say, backends of a crashed postmaster) goes with it.
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
        this.#stopWatchdog();
        resolve(this.#exitCode);
      });
      child.once('error', (error) => {
        this.#log?.write(`\n[harness] spawn failed: ${error.message}\n`);
        this.#exitCode = -1;
        resolve(-1);
      });
    });
    await new Promise<void>((resolve) => {
      child.once('spawn', () => resolve());
      child.once('error', () => resolve());
    });
    if (child.pid === undefined) {
      throw new HarnessError(this.spec.name, `could not spawn ${this.spec.command}`, this.spec.logFile);
    }
    // The watchdog notices a dead parent within a second, then ends the group: SIGTERM, SIGKILL after 5 s.
    const script =
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; ` +
      `kill -TERM -${child.pid} 2>/dev/null || exit 0; ` +
      `for i in $(seq 50); do kill -0 -${child.pid} 2>/dev/null || exit 0; sleep 0.1; done; ` +
      `kill -KILL -${child.pid} 2>/dev/null; exit 0`;
    this.#watchdog = spawn('bash', ['-c', script], { detached: true, stdio: 'ignore' });
    this.#watchdog.unref();
  }

  /** Resolves with the exit code if the process exits, for racing against readiness. */
  exited(): Promise<number | null> {
    return this.#exited;
  }

  /**
   * Stops the process group: `signal` first, SIGKILL after `graceMs`. Idempotent.
   * @default signal 'SIGTERM', graceMs 10_000
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    const child = this.#child;
    if (child?.pid === undefined || this.#exitCode !== undefined) {
      this.#cleanup();
      return;
    }
    killGroup(child.pid, signal);
    const exited = await Promise.race([this.#exited.then(() => true), sleep(graceMs, false, { ref: false })]);
    if (!exited) {
      killGroup(child.pid, 'SIGKILL');
      await this.#exited;
    }
    // Children of the group leader (e.g. postgres backends) may outlive it for a moment.
    killGroup(child.pid, 'SIGKILL');
    this.#cleanup();
  }

  #cleanup(): void {
    this.#stopWatchdog();
    this.#log?.end();
    this.#log = undefined;
  }

  #stopWatchdog(): void {
    if (this.#watchdog?.pid !== undefined && this.#watchdog.exitCode === null) {
      try {
        process.kill(this.#watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.#watchdog = undefined;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

/**
 * Polls `probe` until it resolves truthy, the process exits, or `timeoutMs` passes.
 * @throws HarnessError naming the server, with the last probe error and the log path.
 */
export async function waitUntilReady(
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let exitCode: number | null | undefined;
  void proc.exited().then((code) => {
    exitCode = code;
  });
  while (Date.now() < deadline) {
    if (!proc.running && exitCode !== undefined) {
      throw new HarnessError(
        proc.spec.name,
        `exited with code ${String(exitCode)} before it was ready`,
        proc.spec.logFile,
      );
    }
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  const detail = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
  throw new HarnessError(proc.spec.name, `not ready after ${timeoutMs} ms${detail}`, proc.spec.logFile);
}
