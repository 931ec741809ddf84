// A fake kernel on the other end of the IPVS netlink socket: it is told, in
// order, which requests to expect (controller or IPVS family, command, flags)
// and what to answer, checks each request against that, and answers with
// canned messages (most captured from a real kernel, ipvs-fixtures.ts).
// Answers can be held back, to see what a client sends before any ACK.

/** Let every pending microtask and I/O callback run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}
import {
  createIpvsCodec,
  ipvsCodec,
  ipvsUapi as u,
  type CommandAttributes,
  type NetlinkMessage,
  type NetlinkReply,
  type NetlinkTransport,
} from '@loadfeed/kernel-bridge';
import { IPVS_FIXTURE_FAMILY } from './ipvs-fixtures.js';

export interface SeenRequest {
  /** `ctrl` for the generic netlink controller, `ipvs` for the IPVS family, else the raw type. */
  readonly family: 'ctrl' | 'ipvs' | number;
  readonly flags: number;
  readonly cmd: number;
  readonly version: number;
  /** IPVS requests: the decoded attributes. */
  readonly attrs: CommandAttributes;
  /** Controller requests: the family name asked for. */
  readonly familyName: string | undefined;
}

export type Answer = readonly NetlinkReply[] | { readonly errno: number };

export interface Expectation {
  readonly family: 'ctrl' | 'ipvs';
  readonly cmd: number;
  readonly flags: number;
  /** What to answer; a function sees the request (to answer per service, say). */
  readonly answer: Answer | ((request: SeenRequest) => Answer);
}

const REQUEST_ACK = u.NLM_F.REQUEST | u.NLM_F.ACK;
export const DO_FLAGS = REQUEST_ACK;
export const DUMP_FLAGS = REQUEST_ACK | u.NLM_F.DUMP;

export class FakeIpvsPeer implements NetlinkTransport {
  readonly seen: SeenRequest[] = [];
  /** Requests that did not match what was expected, described; a test asserts this stays empty. */
  readonly mismatches: string[] = [];
  closed = false;
  private readonly expected: Expectation[] = [];
  private held: (() => void)[] | null = null;
  private holding: number | 'all' | null = null;
  private dumpInFlight = false;

  constructor(readonly familyId = IPVS_FIXTURE_FAMILY) {}

  expect(...expectations: Expectation[]): this {
    this.expected.push(...expectations);
    return this;
  }

  /** Hold the answers to `cmd` (IPVS command; all requests when omitted) from now on: see flush(), release(). */
  hold(cmd?: number): void {
    this.holding = cmd ?? 'all';
    this.held ??= [];
  }

  /** Send the answers held so far; keep holding. */
  flush(): void {
    const held = this.held ?? [];
    this.held = this.holding === null ? null : [];
    for (const answer of held) answer();
  }

  /** Send the answers held so far and stop holding. */
  release(): void {
    this.holding = null;
    this.flush();
  }

  /** Requests of `cmd` seen so far. */
  count(cmd: number): number {
    return this.seen.filter((r) => r.family === 'ipvs' && r.cmd === cmd).length;
  }

  /** Expectations not yet met. */
  get pending(): number {
    return this.expected.length;
  }

  request(type: number, flags: number, payload: Uint8Array): Promise<readonly NetlinkReply[]> {
    const genl = ipvsCodec.decodeGenl(payload);
    const family = type === u.GENL_ID_CTRL ? 'ctrl' : type === this.familyId ? 'ipvs' : type;
    const request: SeenRequest = {
      family,
      flags,
      cmd: genl.cmd,
      version: genl.version,
      attrs: family === 'ipvs' ? ipvsCodec.decodeCommand(genl.attributes) : {},
      familyName: family === 'ctrl' ? ipvsCodec.decodeCtrl(genl.attributes).familyName : undefined,
    };
    this.seen.push(request);
    const expected = this.expected.shift();
    const problem = this.check(request, expected);
    if (problem !== null || expected === undefined) {
      this.mismatches.push(problem ?? 'unexpected request');
      return Promise.reject(new Error(`fake IPVS peer: ${problem ?? 'unexpected request'}`));
    }
    const isDump = (flags & u.NLM_F.DUMP) === u.NLM_F.DUMP;
    if (isDump && this.dumpInFlight) this.mismatches.push(`dump ${cmdName(request.cmd)} while another dump runs (the kernel answers EBUSY)`);
    if (isDump) this.dumpInFlight = true;
    const answer = typeof expected.answer === 'function' ? expected.answer(request) : expected.answer;
    return new Promise((resolve) => {
      const send = (): void => {
        if (isDump) this.dumpInFlight = false;
        resolve('errno' in answer ? [errorReply(answer.errno)] : answer);
      };
      const hold = this.held !== null && (this.holding === 'all' || this.holding === request.cmd);
      if (hold) this.held?.push(send);
      else queueMicrotask(send);
    });
  }

  close(): void {
    this.closed = true;
  }

  private check(request: SeenRequest, expected: Expectation | undefined): string | null {
    const seen = `${String(request.family)} ${cmdName(request.cmd, request.family)} flags 0x${request.flags.toString(16)}`;
    if (expected === undefined) return `no request expected, got ${seen}`;
    const want = `${expected.family} ${cmdName(expected.cmd, expected.family)} flags 0x${expected.flags.toString(16)}`;
    if (seen !== want) return `expected ${want}, got ${seen}`;
    const version = request.family === 'ctrl' ? u.CTRL_VERSION : u.IPVS_GENL_VERSION;
    if (request.version !== version) return `${seen}: version ${request.version}, expected ${version}`;
    if (request.family === 'ctrl' && request.familyName !== u.IPVS_GENL_NAME) return `asked for family ${String(request.familyName)}`;
    return null;
  }
}

function cmdName(cmd: number, family: 'ctrl' | 'ipvs' | number = 'ipvs'): string {
  if (family === 'ctrl') return cmd === u.CTRL_CMD_GETFAMILY ? 'CTRL_CMD_GETFAMILY' : `ctrl command ${cmd}`;
  return u.IPVS_CMD_NAMES[cmd] ?? `command ${cmd}`;
}

/** NLMSG_ERROR carrying `errno` (0 = ACK). */
export function errorReply(errno: number): NetlinkReply {
  return {
    type: u.NLMSG.ERROR,
    flags: 0,
    payload: ipvsCodec.encodeNetlinkError(errno, { length: 20, type: IPVS_FIXTURE_FAMILY, flags: 0, seq: 1, pid: 0 }),
  };
}

export const ACK: Answer = { errno: 0 };

/** Captured messages as the transport hands them over: without NLMSG_DONE. */
export function asReplies(messages: readonly NetlinkMessage[]): NetlinkReply[] {
  return messages.filter((m) => m.type !== u.NLMSG.DONE).map((m) => ({ type: m.type, flags: m.flags, payload: m.payload }));
}

/** One IPVS message of `cmd` with `attrs`, as the kernel would send it in a dump. */
export function ipvsMessage(cmd: number, attrs: CommandAttributes, familyId = IPVS_FIXTURE_FAMILY): NetlinkReply {
  const codec = createIpvsCodec();
  return {
    type: familyId,
    flags: u.NLM_F.MULTI,
    payload: codec.encodeGenl({ cmd, version: u.IPVS_GENL_VERSION, attributes: codec.encodeCommand(attrs) }),
  };
}

/** The controller's answer naming `familyId` for "IPVS". */
export function familyReply(familyId = IPVS_FIXTURE_FAMILY): NetlinkReply[] {
  return [
    {
      type: u.GENL_ID_CTRL,
      flags: 0,
      payload: ipvsCodec.encodeGenl({
        cmd: 1, // CTRL_CMD_NEWFAMILY
        version: u.CTRL_VERSION,
        attributes: ipvsCodec.encodeCtrl({ familyId, familyName: u.IPVS_GENL_NAME, version: u.IPVS_GENL_VERSION }),
      }),
    },
  ];
}
