// `npm test` runs this first (pretest): it names the node the suite runs under, which is the `node` on
// PATH (npm does not put its own node there), and stops when that one is older than package.json's
// "engines" allows, instead of letting the suite fail in confusing ways under an unsupported Node.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const minimum = Number(/^>=\s*(\d+)/.exec(pkg.engines.node)?.[1]);
const major = Number(process.versions.node.split('.')[0]);
process.stdout.write(`node ${process.version} (${process.execPath})\n`);
if (!(major >= minimum)) {
  process.stderr.write(
    `Node.js ${pkg.engines.node} is required (package.json "engines"); this is ${process.version}.\n` +
      'scripts/install-deps.sh installs one into .node/ when the machine\'s is older; `make test` uses it, and so\n' +
      'does `npm test` once .node/current/bin is first on PATH (`. scripts/node-env.sh` in bash).\n',
  );
  process.exit(1);
}
