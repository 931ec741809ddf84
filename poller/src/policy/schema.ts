// The one source of truth for weight-tuning policy files (apiVersion
// loadfeed/v1). Everything a user may write is described here, with its
// default; `compile.ts` turns a parsed file into a `CompiledPolicy`.
import { z } from 'zod';
import { parseHostPort, parseL4Address } from '@loadfeed/kernel-bridge';
import { parseDuration } from '../duration.js';

export const API_VERSION = 'loadfeed/v1';

export const DEFAULT_STALE_AFTER = '2s';
export const DEFAULT_AGENT_INTERVAL = '1s';
export const DEFAULT_HALF_LIFE = '2s';
export const DEFAULT_WEIGHT_MIN = 1;
export const DEFAULT_WEIGHT_MAX = 100;

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a duration (e.g. 500ms, 2s, 1m)` });
    return z.NEVER;
  }
  return ms;
});

/** A string the given address parser accepts; its error message becomes the issue. */
const address = (parse: (text: string) => unknown) =>
  z.string().superRefine((text, ctx) => {
    try {
      parse(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1..63 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)');

export const headroomSchema = z.strictObject({
  name: z.literal('headroom'),
  /** Count CPU pressure (PSI) as load when it is worse than utilisation. */
  usePressure: z.boolean().default(true),
});

export const strategySchema = z.discriminatedUnion('name', [headroomSchema]);

export const serverSchema = z.strictObject({
  /** Agent node id that reports for this server; when omitted, the agent announcing the address's IP. */
  node: name.optional(),
  /** The engine's address of the destination, e.g. 192.0.2.21:8080. */
  address: address((text) => parseHostPort(text)),
});

export const serviceSchema = z
  .strictObject({
    name,
    /** Engine that forwards this service: fastpath, memory (later ipvs, nftables, haproxy). */
    engine: z.string().default('fastpath'),
    /** The engine's address of the service, e.g. "tcp 192.0.2.10:80" (port 0: the fast path picks one). */
    address: address((text) => parseL4Address(text, { allowPortZero: true })),
    /** Scheduler in the engine's words (fastpath: wlc or swrr); the engine's default when omitted. */
    scheduler: z.string().optional(),
    servers: z.array(serverSchema).min(1, 'needs at least one server'),
    strategy: strategySchema.prefault({ name: 'headroom' }),
    smoothing: z.strictObject({ halfLife: duration.prefault(DEFAULT_HALF_LIFE) }).prefault({}),
    weights: z
      .strictObject({
        min: z.number().int().min(0).default(DEFAULT_WEIGHT_MIN),
        max: z.number().int().min(1).default(DEFAULT_WEIGHT_MAX),
      })
      .prefault({})
      .superRefine((w, ctx) => {
        if (w.min > w.max) ctx.addIssue({ code: 'custom', message: `must be <= weights.max (${w.max})`, path: ['min'] });
      }),
  });

export const policySchema = z.strictObject({
  apiVersion: z.literal(API_VERSION, { error: `must be "${API_VERSION}"` }),
  liveness: z
    .strictObject({
      /** A node with no sample for this long is quiesced (weight 0). */
      staleAfter: duration.prefault(DEFAULT_STALE_AFTER),
    })
    .prefault({}),
  agents: z
    .strictObject({
      /** Sampling interval pushed to every agent on connect. */
      interval: duration.prefault(DEFAULT_AGENT_INTERVAL),
    })
    .prefault({}),
  services: z.array(serviceSchema).min(1, 'needs at least one service'),
});

export type PolicyInput = z.input<typeof policySchema>;
export type PolicyOutput = z.output<typeof policySchema>;
