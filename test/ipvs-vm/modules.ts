// Kernel modules the guest loads before it can reach the host filesystem and
// IPVS, in an order where each comes after what it depends on. Pure: reads
// the text of modules.dep.
//
// Depth-first over the dependency lists, not their line order: busybox depmod
// (what scripts/install-ipvs-kernel.sh runs) orders a line's dependencies
// differently from kmod's depmod.

/**
 * Loaded by the guest's /init, in this order of need: virtio PCI and 9p to
 * mount the host's /, overlay for a writable root, crc32c_generic (libcrc32c's
 * soft dependency, which nothing would load before a modprobe helper exists;
 * crc32c-intel fails on CPUs without SSE4.2), IPVS and its common schedulers.
 * Anything else (ip_vs_sh, dummy, …) busybox modprobe loads on demand.
 */
export const GUEST_MODULES = [
  'virtio_pci',
  '9pnet_virtio',
  '9p',
  'overlay',
  'crc32c_generic',
  'ip_vs',
  'ip_vs_rr',
  'ip_vs_wrr',
  'ip_vs_wlc',
  'ip_vs_lc',
] as const;

/** `kernel/fs/9p/9p.ko` → `9p`; `-` and `_` are the same in module names. */
export function moduleName(path: string): string {
  return (path.split('/').pop() ?? path).replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');
}

/** Paths (relative to lib/modules/<release>/) of `wanted` and everything they need, dependencies first. */
export function moduleLoadOrder(modulesDep: string, wanted: readonly string[]): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    if (path === '') continue;
    deps.set(
      path,
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter((d) => d !== ''),
    );
    byName.set(moduleName(path), path);
  }
  const order: string[] = [];
  const done = new Set<string>();
  const visit = (path: string, chain: readonly string[]): void => {
    if (done.has(path)) return;
    if (chain.includes(path)) throw new Error(`modules.dep has a dependency cycle: ${[...chain, path].join(' → ')}`);
    for (const dep of deps.get(path) ?? []) visit(dep, [...chain, path]);
    done.add(path);
    order.push(path);
  };
  for (const name of wanted) {
    const path = byName.get(name.replace(/-/g, '_'));
    if (path === undefined) throw new Error(`module ${name} is not in modules.dep`);
    visit(path, []);
  }
  return order;
}
