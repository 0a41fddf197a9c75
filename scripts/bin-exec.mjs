// Marks the built CLI (dist/cli.js, package.json's "bin") executable. tsc
// writes it 0644; npm makes a dependency's bins executable when it installs
// them, but in a fresh clone `npm install` builds dist/ (prepare) after it
// has linked the project's own bin, so `npx tickfan` there ran into
// "Permission denied" until a second install.

import { chmodSync, readFileSync, statSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
for (const file of Object.values(pkg.bin ?? {})) {
  const path = new URL(`../${file}`, import.meta.url);
  chmodSync(path, statSync(path).mode | 0o111);
}
