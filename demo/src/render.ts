// The demo's live view: one row per backend. Pure, so it can be tested.

export interface DemoServerView {
  readonly id: string;
  /** CPU allowance, cores. */
  readonly capacity: number;
  /** CPU used as a fraction of the allowance, or null before the first sample. */
  readonly cpu: number | null;
  readonly weight: number;
  /** Fraction of the requests served in the last window. */
  readonly share: number;
}

export interface DemoView {
  readonly elapsedS: number;
  readonly ratePerSecond: number;
  readonly errors: number;
  readonly servers: readonly DemoServerView[];
  /** URL of the poller's dashboard, shown in the table when set. */
  readonly dashboard?: string | null;
}

export function renderTable(v: DemoView): string {
  const pct = (x: number | null): string => (x === null ? '    -' : `${(x * 100).toFixed(0).padStart(4)}%`);
  const lines = [
    `loadfeed demo  t=${v.elapsedS.toFixed(0)}s  load ${v.ratePerSecond.toFixed(0)} req/s  errors ${v.errors}`,
    ...(v.dashboard ? [`dashboard ${v.dashboard}  (or: loadfeed top --status ${new URL(v.dashboard).host})`] : []),
    'backend   capacity    cpu  weight  share',
    ...v.servers.map(
      (s) =>
        `${s.id.padEnd(8)} ${`${s.capacity} core`.padStart(9)}  ${pct(s.cpu)}  ${String(s.weight).padStart(6)}  ${pct(s.share)}  ${'#'.repeat(Math.round(s.share * 30))}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

export function renderJson(v: DemoView): string {
  return `${JSON.stringify({
    t: Number(v.elapsedS.toFixed(1)),
    rate: v.ratePerSecond,
    errors: v.errors,
    servers: v.servers.map((s) => ({
      id: s.id,
      capacity: s.capacity,
      cpu: s.cpu === null ? null : Number(s.cpu.toFixed(3)),
      weight: s.weight,
      share: Number(s.share.toFixed(3)),
    })),
  })}\n`;
}
