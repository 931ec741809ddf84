// Every policy shipped in deploy/examples/policies compiles.
import test from 'ava';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultEngines, loadPolicyFile } from '@loadfeed/poller';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../deploy/examples/policies');
const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));

test('there are example policies', (t) => {
  t.true(files.length > 0);
});

for (const f of files) {
  test(`example ${f} compiles`, async (t) => {
    const p = await loadPolicyFile(path.join(dir, f), defaultEngines().limits());
    t.true(p.services.length > 0);
  });
}
