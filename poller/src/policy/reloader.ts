// Hot reload: the policy file is watched (its directory, so editors that
// write a new file and rename it over the old one, and Kubernetes ConfigMap
// symlink swaps, are seen too) and re-read on SIGHUP. A changed file is
// compiled and swapped in atomically; a file that does not compile is
// refused and the last good policy stays in force.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { PolicyError, type PolicyProblem } from '../errors.js';
import { compilePolicy, readPolicyFile, type CompiledPolicy, type KnownEngines } from './compile.js';

/** Editors write in bursts; wait this long after the last change event. */
export const RELOAD_DEBOUNCE_MS = 200;

export type ReloadOutcome = { readonly ok: true; readonly policy: CompiledPolicy } | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

export class PolicyReloader {
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastText: string;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    initialText: string,
    private readonly engines: KnownEngines,
    private readonly onOutcome: (outcome: ReloadOutcome) => void,
  ) {
    this.lastText = initialText;
  }

  start(): void {
    this.watcher = watch(path.dirname(path.resolve(this.file)), () => this.schedule());
    this.watcher.on('error', () => undefined);
    process.on('SIGHUP', this.onHangup);
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    process.off('SIGHUP', this.onHangup);
  }

  /** Re-read now; `force` reloads even when the text did not change (SIGHUP). */
  reload(force: boolean): Promise<void> {
    this.running = this.running.then(() => this.load(force));
    return this.running;
  }

  private readonly onHangup = (): void => {
    void this.reload(true);
  };

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.reload(false);
    }, RELOAD_DEBOUNCE_MS);
  }

  private async load(force: boolean): Promise<void> {
    let text: string;
    try {
      text = await readPolicyFile(this.file);
      if (!force && text === this.lastText) return;
      this.lastText = text;
      this.onOutcome({ ok: true, policy: compilePolicy(text, this.file, this.engines) });
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      this.onOutcome({ ok: false, problems: err.problems });
    }
  }
}
