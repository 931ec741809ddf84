// Hot reload: the policy file is re-read when it changes and on SIGHUP. A
// changed file is compiled and swapped in atomically; a file that does not
// compile is refused and the last good policy stays in force.
//
// What is watched is the file and what it resolves through, nothing else
// beside it (a trace or log written in the same directory must not keep
// postponing the reload): its name in its directory (editors that write a
// new file and rename it over the old one), the first step of a relative
// symlink (a Kubernetes ConfigMap mounts `policy.yaml → ..data/policy.yaml`
// and updates by swapping `..data`), and the file it finally resolves to, in
// its own directory (a symlink to a file edited elsewhere). After every
// change the chain is resolved again.
import { watch, type FSWatcher } from 'node:fs';
import { readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { PolicyError, type PolicyProblem } from '../errors.js';
import { compilePolicyOffThread, readPolicyFile, type CompiledPolicy, type KnownEngines } from './compile.js';

/** Editors write in bursts; wait this long after the last change event. */
export const RELOAD_DEBOUNCE_MS = 200;

export type ReloadOutcome = { readonly ok: true; readonly policy: CompiledPolicy } | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

export class PolicyReloader {
  private readonly watchers = new Map<string, FSWatcher>();
  /** Directory → names in it whose change concerns the policy. */
  private watched = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | null = null;
  private lastText: string;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly file: string,
    initialText: string,
    private readonly engines: KnownEngines,
    private readonly onOutcome: (outcome: ReloadOutcome) => void,
  ) {
    this.lastText = initialText;
  }

  /** Start watching; resolves once the watches are in place. */
  async start(): Promise<void> {
    this.stopped = false;
    process.on('SIGHUP', this.onHangup);
    await this.rewatch();
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    process.off('SIGHUP', this.onHangup);
  }

  /** Re-read now; `force` reloads even when the text did not change (SIGHUP). */
  reload(force: boolean): Promise<void> {
    this.running = this.running.then(async () => {
      await this.load(force);
      await this.rewatch();
    });
    return this.running;
  }

  private readonly onHangup = (): void => {
    void this.reload(true);
  };

  /** Watch the directories of every name the policy file resolves through. */
  private async rewatch(): Promise<void> {
    const wanted = await resolutionNames(path.resolve(this.file));
    if (this.stopped) return;
    this.watched = wanted;
    for (const [dir, w] of this.watchers) {
      if (wanted.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of wanted.keys()) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, (_event, name) => {
          // Linux always names the entry; without a name, assume it matters.
          if (name === null || this.watched.get(dir)?.has(name.toString())) this.schedule();
        });
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch {
        // A directory that vanished (an old ConfigMap generation): the next change re-resolves.
      }
    }
  }

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
      this.onOutcome({ ok: true, policy: await compilePolicyOffThread(text, this.file, this.engines) });
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      this.onOutcome({ ok: false, problems: err.problems });
    }
  }
}

/** Symlinks followed at most, as the kernel does (ELOOP beyond). */
const MAX_LINKS = 40;

/**
 * Directory → entry names that `file` resolves through: the file's own name,
 * the first component of each relative symlink on the way, and the final
 * file's name in its directory.
 */
async function resolutionNames(file: string): Promise<Map<string, Set<string>>> {
  const names = new Map<string, Set<string>>();
  const add = (dir: string, name: string): void => {
    const set = names.get(dir) ?? new Set<string>();
    set.add(name);
    names.set(dir, set);
  };
  add(path.dirname(file), path.basename(file));
  let current = file;
  for (let i = 0; i < MAX_LINKS; i += 1) {
    let target: string;
    try {
      target = await readlink(current);
    } catch {
      break; // not a symlink (or gone): the end of the chain
    }
    const first = target.split(path.sep).find((part) => part !== '' && part !== '.');
    if (!path.isAbsolute(target) && first !== undefined && first !== '..') add(path.dirname(current), first);
    current = path.resolve(path.dirname(current), target);
    add(path.dirname(current), path.basename(current));
  }
  try {
    const real = await realpath(file);
    add(path.dirname(real), path.basename(real));
  } catch {
    // Missing for now: its own name is watched.
  }
  return names;
}
