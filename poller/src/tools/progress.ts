// A one-line spinner for steps that take more than a second (the demo's
// start, `loadfeed top` connecting). Only on a terminal: piped or logged
// output gets nothing, so JSON lines and logs stay clean.

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
export const SPINNER_INTERVAL_MS = 80;

export interface ProgressTarget {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export class Progress {
  private text = '';
  private frame = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly started = performance.now();

  constructor(private readonly out: ProgressTarget = process.stderr) {}

  get active(): boolean {
    return this.out.isTTY === true;
  }

  /** Show (or replace) the current step. */
  step(text: string): void {
    if (!this.active) return;
    this.text = text;
    this.draw();
    if (!this.timer) {
      this.timer = setInterval(() => this.draw(), SPINNER_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Clear the line; with `text`, leave it behind as a finished step. */
  done(text?: string): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.active) return;
    const seconds = ((performance.now() - this.started) / 1000).toFixed(1);
    this.out.write(`\r\x1b[2K${text === undefined ? '' : `✔ ${text} (${seconds}s)\n`}`);
  }

  private draw(): void {
    this.frame = (this.frame + 1) % FRAMES.length;
    this.out.write(`\r\x1b[2K${FRAMES[this.frame] ?? ''} ${this.text}`);
  }
}
