// Make every workspace's built `bin` files executable. npm does this when it
// links bins at install time, which in a fresh checkout comes before the
// build writes them; systemd units and tests execute the files directly.
import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const { workspaces } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const ws of workspaces) {
  const { bin } = JSON.parse(readFileSync(path.join(root, ws, 'package.json'), 'utf8'));
  for (const file of Object.values(bin ?? {})) chmodSync(path.join(root, ws, file), 0o755);
}
