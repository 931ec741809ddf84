// A small, safe arithmetic language for policy files: guards ("mem > 0.95")
// and the `expression` strategy ("cores * (1 - max(cpu, psi_cpu))"). It is
// parsed once at compile time into a tree and evaluated by walking it: no
// `eval`, no property access, no loops, so a policy cannot run arbitrary code.
//
// Grammar (usual precedence, left-associative):
//   expr   := or
//   or     := and ('||' and)*
//   and    := cmp ('&&' cmp)*
//   cmp    := sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)?
//   sum    := prod (('+' | '-') prod)*
//   prod   := unary (('*' | '/') unary)*
//   unary  := ('-' | '!') unary | atom
//   atom   := NUMBER | NAME | 'app.' APPNAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
// Values are numbers; comparisons and logic give 1 or 0. A metric the agent
// could not measure is null, and null propagates: arithmetic on null is null,
// a comparison with null is false (so a guard never fires on missing data).
//
// Size is bounded where the text is parsed: at most MAX_EXPRESSION_CHARS
// characters and MAX_EXPRESSION_DEPTH levels of nesting (a chain `a + b + c`
// nests one level per operator), so neither the parser nor an evaluation
// that walks the tree recursively can run out of stack.
// `app.NAME` is the named application metric NAME (Sample.named_metrics), null
// while the server does not report it.
import { APP_METRIC_NAME, METRICS, type MetricEntry } from '@loadfeed/proto';
import { excerpt } from '../errors.js';

/** Longest expression text; real guards and scores are a line or two. */
export const MAX_EXPRESSION_CHARS = 2_000;
/** Deepest nesting of operators, calls and parentheses. */
export const MAX_EXPRESSION_DEPTH = 64;

/** Variables that are not sample metrics: the agent's Hello, and the service's own connection count. */
const NODE_VARIABLES = {
  cores: 'CPU capacity of the scope, cores',
  memory_bytes: 'memory capacity of the scope, bytes',
  connections: "established connections on the service's port",
} as const;

export type VariableName = MetricEntry['variable'] | keyof typeof NODE_VARIABLES;

/** Every name an expression may read, with what it is: the metric catalog's variables, then the node's. */
export function expressionVariables(): Readonly<Record<VariableName, string>> {
  return { ...(Object.fromEntries(METRICS.map((m) => [m.variable, m.description])) as Record<MetricEntry['variable'], string>), ...NODE_VARIABLES };
}
export type Variables = Readonly<Record<VariableName, number | null>> & {
  /** Named application metrics (`app.NAME`). */
  readonly app: Readonly<Record<string, number>>;
};

type Node =
  | { readonly k: 'num'; readonly v: number }
  | { readonly k: 'var'; readonly name: VariableName }
  | { readonly k: 'app'; readonly name: string }
  | { readonly k: 'un'; readonly op: '-' | '!'; readonly a: Node }
  | { readonly k: 'bin'; readonly op: string; readonly a: Node; readonly b: Node }
  | { readonly k: 'call'; readonly fn: FunctionName; readonly args: readonly Node[] };

const FUNCTIONS = {
  min: { arity: [1, Infinity], f: (xs: number[]) => Math.min(...xs) },
  max: { arity: [1, Infinity], f: (xs: number[]) => Math.max(...xs) },
  clamp: { arity: [3, 3], f: ([x = 0, lo = 0, hi = 0]: number[]) => Math.min(hi, Math.max(lo, x)) },
  abs: { arity: [1, 1], f: ([x = 0]: number[]) => Math.abs(x) },
  sqrt: { arity: [1, 1], f: ([x = 0]: number[]) => Math.sqrt(x) },
} as const;
type FunctionName = keyof typeof FUNCTIONS;

export class ExpressionError extends Error {
  override readonly name = 'ExpressionError';
}

export interface Expression {
  readonly source: string;
  /** Names of the variables it reads. */
  readonly variables: ReadonlySet<VariableName>;
  /** Named application metrics it reads (`app.NAME`), without the prefix. */
  readonly appMetrics: ReadonlySet<string>;
  evaluate(vars: Variables): number | null;
}

const TOKEN = /\s*(?:(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)|(<=|>=|==|!=|&&|\|\||[-+*/()<>!,]))/y;

export function parseExpression(source: string): Expression {
  if (source.length > MAX_EXPRESSION_CHARS) throw new ExpressionError(`${source.length} characters, at most ${MAX_EXPRESSION_CHARS}`);
  const tokens: { text: string; kind: 'num' | 'name' | 'op'; at: number }[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(source);
    if (!m) {
      if (source.slice(at).trim() === '') break;
      throw new ExpressionError(`unexpected "${source.slice(at).trim()[0]}" at column ${at + 1 + (source.slice(at).length - source.slice(at).trimStart().length)}`);
    }
    const text = m[1] ?? m[2] ?? m[3] ?? '';
    tokens.push({ text, kind: m[1] !== undefined ? 'num' : m[2] !== undefined ? 'name' : 'op', at: m.index + m[0].length - text.length });
  }
  let i = 0;
  let depth = 0;
  const variables = new Set<VariableName>();
  /** Every node is built through here: its depth is one more than its deepest child's. */
  const depths = new WeakMap<Node, number>();
  const node = (n: Node, ...children: Node[]): Node => {
    const d = 1 + Math.max(0, ...children.map((c) => depths.get(c) ?? 1));
    if (d > MAX_EXPRESSION_DEPTH) throw new ExpressionError(`nests more than ${MAX_EXPRESSION_DEPTH} levels deep (operators, calls, parentheses): split it or use min()/max()`);
    depths.set(n, d);
    return n;
  };
  /** Parser recursion (parentheses, calls, unary operators) is bounded the same way. */
  const nested = <T>(parse: () => T): T => {
    depth += 1;
    if (depth > MAX_EXPRESSION_DEPTH) throw new ExpressionError(`nests more than ${MAX_EXPRESSION_DEPTH} levels deep (operators, calls, parentheses): split it or use min()/max()`);
    const result = parse();
    depth -= 1;
    return result;
  };
  const appMetrics = new Set<string>();
  const peek = (): string | undefined => tokens[i]?.text;
  const fail = (want: string): never => {
    const t = tokens[i];
    throw new ExpressionError(t ? `expected ${want} at column ${t.at + 1}, found ${excerpt(t.text)}` : `expected ${want} at the end`);
  };
  const expect = (text: string): void => {
    if (peek() !== text) fail(`"${text}"`);
    i += 1;
  };
  const binary = (next: () => Node, ops: readonly string[]): (() => Node) => () => {
    let a = next();
    while (ops.includes(peek() ?? '')) {
      const op = tokens[i++]?.text ?? '';
      const b = next();
      a = node({ k: 'bin', op, a, b }, a, b);
    }
    return a;
  };
  const atom = (): Node => {
    const t = tokens[i];
    if (!t) return fail('a number, a name or "("');
    if (t.kind === 'num') {
      i += 1;
      return node({ k: 'num', v: Number(t.text) });
    }
    if (t.text === '(') {
      i += 1;
      const e = nested(or);
      expect(')');
      return e;
    }
    if (t.kind === 'name') {
      i += 1;
      if (peek() === '(') {
        if (!Object.hasOwn(FUNCTIONS, t.text)) throw new ExpressionError(`unknown function ${excerpt(t.text)} (known: ${Object.keys(FUNCTIONS).join(', ')})`);
        i += 1;
        const args = [nested(or)];
        while (peek() === ',') {
          i += 1;
          args.push(nested(or));
        }
        expect(')');
        const fn = t.text as FunctionName;
        const [lo, hi] = FUNCTIONS[fn].arity;
        if (args.length < lo || args.length > hi) {
          throw new ExpressionError(`${fn}() takes ${lo === hi ? lo : `${lo} or more`} argument${lo === 1 && hi === 1 ? '' : 's'}, got ${args.length}`);
        }
        return node({ k: 'call', fn, args }, ...args);
      }
      const app = /^app\.(.*)$/.exec(t.text);
      if (app?.[1] !== undefined) {
        if (!APP_METRIC_NAME.test(app[1])) throw new ExpressionError(`"${t.text}": an application metric name is 1..64 characters of a-z 0-9 _ starting with a letter`);
        appMetrics.add(app[1]);
        return { k: 'app', name: app[1] };
      }
      const known = expressionVariables();
      if (!Object.hasOwn(known, t.text)) {
        throw new ExpressionError(`unknown name ${excerpt(t.text)} (known: ${Object.keys(known).join(', ')}, app.NAME)`);
      }
      variables.add(t.text as VariableName);
      return node({ k: 'var', name: t.text as VariableName });
    }
    return fail('a number, a name or "("');
  };
  const unary = (): Node => {
    const op = peek();
    if (op === '-' || op === '!') {
      i += 1;
      const a = nested(unary);
      return node({ k: 'un', op, a }, a);
    }
    return atom();
  };
  const prod = binary(unary, ['*', '/']);
  const sum = binary(prod, ['+', '-']);
  const cmp = (): Node => {
    const a = sum();
    const op = peek();
    if (op === '<' || op === '<=' || op === '>' || op === '>=' || op === '==' || op === '!=') {
      i += 1;
      const b = sum();
      return node({ k: 'bin', op, a, b }, a, b);
    }
    return a;
  };
  const and = binary(cmp, ['&&']);
  const or = binary(and, ['||']);
  if (tokens.length === 0) throw new ExpressionError('empty expression');
  const tree = or();
  if (i < tokens.length) fail('an operator or the end');
  return new ParsedExpression(source, variables, appMetrics, tree);
}

/** A parsed expression: compared by its tree, printed (toJSON) as its source. */
class ParsedExpression implements Expression {
  constructor(
    readonly source: string,
    readonly variables: ReadonlySet<VariableName>,
    readonly appMetrics: ReadonlySet<string>,
    private readonly tree: Node,
  ) {}

  evaluate(vars: Variables): number | null {
    return evaluate(this.tree, vars);
  }

  toJSON(): string {
    return this.source;
  }
}

function evaluate(n: Node, vars: Variables): number | null {
  switch (n.k) {
    case 'num':
      return n.v;
    case 'var':
      return vars[n.name];
    case 'app':
      return Object.hasOwn(vars.app, n.name) ? (vars.app[n.name] ?? null) : null;
    case 'un': {
      const a = evaluate(n.a, vars);
      if (n.op === '!') return a === null ? 1 : a === 0 ? 1 : 0;
      return a === null ? null : -a;
    }
    case 'call': {
      const args = n.args.map((x) => evaluate(x, vars));
      if (args.some((x) => x === null)) return null;
      return FUNCTIONS[n.fn].f(args as number[]);
    }
    case 'bin': {
      if (n.op === '&&' || n.op === '||') {
        const a = truthy(evaluate(n.a, vars));
        if (n.op === '&&' ? !a : a) return a ? 1 : 0;
        return truthy(evaluate(n.b, vars)) ? 1 : 0;
      }
      const a = evaluate(n.a, vars);
      const b = evaluate(n.b, vars);
      if (a === null || b === null) return ['<', '<=', '>', '>=', '==', '!='].includes(n.op) ? 0 : null;
      switch (n.op) {
        case '+':
          return a + b;
        case '-':
          return a - b;
        case '*':
          return a * b;
        case '/':
          return b === 0 ? null : a / b;
        case '<':
          return a < b ? 1 : 0;
        case '<=':
          return a <= b ? 1 : 0;
        case '>':
          return a > b ? 1 : 0;
        case '>=':
          return a >= b ? 1 : 0;
        case '==':
          return a === b ? 1 : 0;
        default:
          return a !== b ? 1 : 0;
      }
    }
  }
}

function truthy(x: number | null): boolean {
  return x !== null && x !== 0;
}
