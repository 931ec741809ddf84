// The pure parts of the IPVS guest harness (test/ipvs-vm): the initramfs
// archive, module load order, shell quoting of the job, the static-binary
// check, kernel release order and the TAP summary. The guest itself is
// exercised by ipvs-vm.test.ts.
import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { cpioArchive, InitramfsTree } from '../ipvs-vm/cpio.js';
import { jobScript, shellQuote } from '../ipvs-vm/guest-init.js';
import { compareReleases, isStaticElf } from '../ipvs-vm/kernel.js';
import { moduleLoadOrder, moduleName } from '../ipvs-vm/modules.js';
import { summarizeTap } from '../ipvs-vm/tap.js';
import { binary, findExecutable, realEngineGate } from '../helpers/real-engine.js';

interface CpioMember {
  readonly name: string;
  readonly mode: number;
  readonly nlink: number;
  readonly data: Buffer;
}

/** A newc reader written from the format's description, to check the writer against. */
function readNewc(archive: Buffer): CpioMember[] {
  const members: CpioMember[] = [];
  let offset = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    const header = archive.subarray(offset, offset + 110).toString('ascii');
    if (!header.startsWith('070701')) throw new Error(`bad magic at ${offset}`);
    const field = (i: number): number => parseInt(header.slice(6 + i * 8, 14 + i * 8), 16);
    const [mode, nlink, size, nameSize] = [field(1), field(4), field(6), field(11)];
    const name = archive.subarray(offset + 110, offset + 110 + nameSize - 1).toString('utf8');
    if (archive[offset + 110 + nameSize - 1] !== 0) throw new Error(`name of ${name} not NUL-terminated`);
    const dataStart = align(offset + 110 + nameSize);
    const data = archive.subarray(dataStart, dataStart + size);
    offset = align(dataStart + size);
    if (name === 'TRAILER!!!') break;
    members.push({ name, mode, nlink, data: Buffer.from(data) });
  }
  if (offset !== archive.length) throw new Error(`${archive.length - offset} bytes after the trailer`);
  return members;
}

test('cpio: files, directories and symlinks in newc format, parents first, 4-byte aligned', (t) => {
  const tree = new InitramfsTree()
    .file('/bin/busybox', Buffer.from('#!x'), 0o755)
    .symlink('/work/node_modules/@loadfeed/kernel-bridge', '../../kernel-bridge')
    .dir('/dev')
    .file('init', 'echo hi\n', 0o755);
  const members = readNewc(tree.archive());
  t.deepEqual(
    members.map((m) => [m.name, m.mode.toString(8)]),
    [
      ['bin', '40755'],
      ['bin/busybox', '100755'],
      ['work', '40755'],
      ['work/node_modules', '40755'],
      ['work/node_modules/@loadfeed', '40755'],
      ['work/node_modules/@loadfeed/kernel-bridge', '120777'],
      ['dev', '40755'],
      ['init', '100755'],
    ],
  );
  t.is(members.find((m) => m.name.endsWith('kernel-bridge'))?.data.toString(), '../../kernel-bridge');
  t.is(members.find((m) => m.name === 'init')?.data.toString(), 'echo hi\n');
});

test('cpio: any names and contents come back as written', (t) => {
  const entry = fc.record({
    name: fc.stringMatching(/^[a-zA-Z0-9._-]{1,20}$/),
    data: fc.uint8Array({ maxLength: 37 }),
  });
  fc.assert(
    fc.property(fc.uniqueArray(entry, { selector: (e) => e.name, maxLength: 8 }), (entries) => {
      const archive = cpioArchive(entries.map((e) => ({ type: 'file', path: `d/${e.name}`, data: e.data })));
      const back = readNewc(archive);
      t.deepEqual(
        back.map((m) => [m.name, [...m.data]]),
        entries.map((e) => [`d/${e.name}`, [...e.data]]),
      );
    }),
    { numRuns: 300 },
  );
});

const busybox = realEngineGate('initramfs (busybox cpio)', [binary('busybox', 'busybox-static')]);

busybox.test('cpio: busybox, which unpacks it in the guest, lists the same members', (t) => {
  const archive = new InitramfsTree().file('/a/b.txt', 'b').symlink('/a/c', 'b.txt').archive();
  const listing = spawnSync(findExecutable('busybox') ?? 'busybox', ['cpio', '-t'], { input: archive, encoding: 'utf8' });
  t.is(listing.error, undefined);
  t.deepEqual(listing.stdout.trim().split('\n'), ['a', 'a/b.txt', 'a/c']);
});

test('modules: dependencies load first, whatever order modules.dep lists them in', (t) => {
  // busybox depmod writes a line's dependencies in another order than kmod's depmod.
  const dep = [
    'kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko',
    'kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/lib/libcrc32c.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko',
    'kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:',
    'kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:',
    'kernel/lib/libcrc32c.ko:',
    'kernel/net/netfilter/ipvs/ip_vs_wrr.ko: kernel/net/netfilter/ipvs/ip_vs.ko',
    'kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko',
    'kernel/net/9p/9pnet.ko:',
    'kernel/fs/netfs/netfs.ko:',
    'kernel/crypto/crc32c_generic.ko:',
  ].join('\n');
  const order = moduleLoadOrder(dep, ['ip_vs_wrr', '9p', 'crc32c-generic']);
  const before = (a: string, b: string): boolean => order.findIndex((p) => moduleName(p) === a) < order.findIndex((p) => moduleName(p) === b);
  t.is(order.length, 10);
  t.true(before('nf_defrag_ipv4', 'nf_conntrack'));
  t.true(before('nf_conntrack', 'ip_vs'));
  t.true(before('libcrc32c', 'ip_vs'));
  t.true(before('ip_vs', 'ip_vs_wrr'));
  t.true(before('netfs', '9p'));
  t.is(new Set(order).size, order.length, 'each module once');
  t.throws(() => moduleLoadOrder(dep, ['dummy']), { message: /module dummy is not in modules\.dep/ });
  t.throws(() => moduleLoadOrder('a.ko: b.ko\nb.ko: a.ko\n', ['a']), { message: /dependency cycle: a\.ko → b\.ko → a\.ko/ });
});

test('job: any argument and environment value reaches the command unchanged through sh', (t) => {
  const text = fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes('\0'));
  fc.assert(
    fc.property(fc.array(text, { maxLength: 4 }), text, (args, value) => {
      const script = jobScript({
        cwd: '/',
        command: ['/bin/sh', '-c', 'printf "%s\\0" "$V" "$@"', 'sh', ...args],
        env: { V: value },
      });
      const run = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
      t.is(run.status, 0, run.stderr);
      t.deepEqual(run.stdout.split('\0').slice(0, -1), [value, ...args]);
    }),
    { numRuns: 100 },
  );
  t.is(shellQuote(`it's`), `'it'\\''s'`);
  t.throws(() => jobScript({ cwd: '/', command: ['true'], env: { 'BAD-NAME': '1' } }), { message: /cannot be passed/ });
});

test('static ELF check: no PT_INTERP program header', (t) => {
  const elf = (types: readonly number[]): Buffer => {
    const b = Buffer.alloc(64 + 56 * types.length);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little endian
    b.writeBigUInt64LE(64n, 0x20);
    b.writeUInt16LE(56, 0x36);
    b.writeUInt16LE(types.length, 0x38);
    types.forEach((type, i) => b.writeUInt32LE(type, 64 + i * 56));
    return b;
  };
  t.true(isStaticElf(elf([1, 1, 4])));
  t.false(isStaticElf(elf([6, 3, 1])), 'PT_INTERP: dynamically linked');
  t.false(isStaticElf(Buffer.from('#!/bin/sh\n')));
});

test('kernel releases compare numerically', (t) => {
  const releases = ['6.1.0-100-amd64', '6.1.0-9-amd64', '6.1.0-56-amd64', '5.10.0-30-amd64'];
  t.deepEqual([...releases].sort(compareReleases), ['5.10.0-30-amd64', '6.1.0-9-amd64', '6.1.0-56-amd64', '6.1.0-100-amd64']);
});

test('TAP summary: counts and each failure with its diagnostics; an unfinished run is flagged', (t) => {
  const tap = [
    'TAP version 13',
    'ok 1 - a',
    'not ok 2 - b',
    '  ---',
    '    name: AssertionError',
    '  ...',
    'not ok 3 - c exited with a non-zero exit code: 1',
    'ok 4 - d # SKIP',
    '',
    '1..4',
    '# tests 3',
    '# pass 1',
    '# skip 1',
    '# fail 2',
    '',
  ].join('\n');
  t.deepEqual(summarizeTap(tap), {
    pass: 1,
    fail: 2,
    skip: 1,
    failures: ['not ok 2 - b\n  ---\n    name: AssertionError\n  ...', 'not ok 3 - c exited with a non-zero exit code: 1'],
    complete: true,
  });
  t.false(summarizeTap('TAP version 13\nok 1 - a\n').complete);
});
