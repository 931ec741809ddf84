// Compile a policy file into a fully defaulted, checked `CompiledPolicy`.
// Every problem is reported with file, line, path and value, all at once.
import { readFile } from 'node:fs/promises';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { formatHostPort, formatL4Address, parseHostPort, parseL4Address } from '@loadfeed/kernel-bridge';
import { PolicyError, type PolicyProblem } from '../errors.js';
import { policySchema, type PolicyOutput } from './schema.js';

export type StrategyConfig = PolicyOutput['services'][number]['strategy'];

export interface CompiledServer {
  /** Node id of the agent reporting for it, or null to match by address. */
  readonly node: string | null;
  readonly address: string;
  /** IP of `address`, used to match agents by the addresses in their Hello. */
  readonly host: string;
}

export interface CompiledService {
  readonly name: string;
  readonly engine: string;
  readonly address: string;
  readonly scheduler: string | null;
  readonly servers: readonly CompiledServer[];
  readonly strategy: StrategyConfig;
  readonly smoothing: { readonly halfLifeMs: number };
  readonly weights: { readonly min: number; readonly max: number };
}

export interface CompiledPolicy {
  readonly file: string;
  readonly liveness: { readonly staleAfterMs: number };
  readonly agents: { readonly intervalMs: number };
  readonly services: readonly CompiledService[];
}

export interface EngineLimits {
  /** Highest weight the engine accepts. */
  readonly maxWeight: number;
}

/** Engines the policy may name, with what compile must check against. */
export type KnownEngines = ReadonlyMap<string, EngineLimits>;

export async function loadPolicyFile(file: string, engines: KnownEngines): Promise<CompiledPolicy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PolicyError([{ file, line: null, path: '', message: `cannot read: ${(err as Error).message}` }], { cause: err });
  }
  return compilePolicy(text, file, engines);
}

export function compilePolicy(text: string, file: string, engines: KnownEngines): CompiledPolicy {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  const problems: PolicyProblem[] = [];
  for (const e of doc.errors) {
    problems.push({ file, line: e.linePos?.[0].line ?? null, path: '', message: (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '') });
  }
  if (problems.length > 0) throw new PolicyError(problems);

  const lineOf = (path: readonly PropertyKey[]): number | null => locate(doc, lineCounter, path);
  const result = policySchema.safeParse(doc.toJS());
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(problemFromIssue(file, doc, issue, lineOf));
    throw new PolicyError(problems);
  }
  const compiled = finish(result.data, file);
  checkSemantics(compiled, engines, (path, message) => problems.push({ file, line: lineOf(path), path: formatPath(path), message }));
  if (problems.length > 0) throw new PolicyError(problems);
  return compiled;
}

function finish(p: PolicyOutput, file: string): CompiledPolicy {
  return {
    file,
    liveness: { staleAfterMs: p.liveness.staleAfter },
    agents: { intervalMs: p.agents.interval },
    services: p.services.map((s) => ({
      name: s.name,
      engine: s.engine,
      // Engines report addresses in canonical form (`tcp 192.0.2.1:80`,
      // `[2001:db8::1]:80`): compare like with like. The schema checked they parse.
      address: formatL4Address(parseL4Address(s.address, { allowPortZero: true })),
      scheduler: s.scheduler ?? null,
      servers: s.servers.map((srv) => {
        const a = parseHostPort(srv.address);
        return { node: srv.node ?? null, address: formatHostPort(a), host: a.host };
      }),
      strategy: s.strategy,
      smoothing: { halfLifeMs: s.smoothing.halfLife },
      weights: { min: s.weights.min, max: s.weights.max },
    })),
  };
}


type Report = (path: readonly PropertyKey[], message: string) => void;

function checkSemantics(p: CompiledPolicy, engines: KnownEngines, report: Report): void {
  const names = new Set<string>();
  const addresses = new Set<string>();
  p.services.forEach((s, i) => {
    if (names.has(s.name)) report(['services', i, 'name'], `"${s.name}" names another service already`);
    names.add(s.name);
    const limits = engines.get(s.engine);
    if (!limits) {
      report(['services', i, 'engine'], `"${s.engine}" is not an engine (known: ${[...engines.keys()].join(', ')})`);
      return;
    }
    const key = `${s.engine} ${s.address}`;
    if (addresses.has(key)) report(['services', i, 'address'], `"${s.address}" is used by another service of engine ${s.engine}`);
    addresses.add(key);
    if (s.weights.max > limits.maxWeight) {
      report(['services', i, 'weights', 'max'], `${s.weights.max} exceeds the ${s.engine} engine's maximum weight (${limits.maxWeight})`);
    }
    const dests = new Set<string>();
    s.servers.forEach((srv, j) => {
      if (dests.has(srv.address)) report(['services', i, 'servers', j, 'address'], `"${srv.address}" is listed twice`);
      dests.add(srv.address);
    });
  });
}

function problemFromIssue(
  file: string,
  doc: Document,
  issue: z.core.$ZodIssue,
  lineOf: (path: readonly PropertyKey[]) => number | null,
): PolicyProblem {
  const path = issue.path;
  const value = valueAt(doc, path);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return { file, line: lineOf([...path, issue.keys[0] ?? '']), path: formatPath(path), message };
  }
  if (value !== undefined && !message.includes(JSON.stringify(value))) {
    message = `${JSON.stringify(value)}${message.startsWith('must') ? ' ' : ': '}${message}`;
  }
  if (value === undefined && issue.code === 'invalid_type') message = 'is required';
  return { file, line: lineOf(path), path: formatPath(path), message };
}

/** The scalar the user wrote at `path`; undefined for collections and missing fields. */
function valueAt(doc: Document, path: readonly PropertyKey[]): unknown {
  const value: unknown = doc.getIn(path as unknown[]);
  return isMap(value) || isSeq(value) ? undefined : value;
}

/** Line of the deepest node of `path` that exists in the document. */
function locate(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number | null {
  for (let n = path.length; n >= 0; n -= 1) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    const offset = n === 0 ? doc.contents?.range?.[0] : node?.range?.[0];
    if (offset !== undefined) return lines.linePos(offset).line;
  }
  return null;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc === '' ? String(part) : `${acc}.${String(part)}`), '');
}
