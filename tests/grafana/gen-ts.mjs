// gen-ts.mjs - writes one TypeScript file per dashboard so that `tsc --strict` checks it against
// Grafana's own schema (@grafana/schema, the types Grafana's frontend is built with):
//   - the whole dashboard `satisfies Json<Dashboard>`: unknown keys, wrong types, missing
//     required fields, enum values that do not exist;
//   - each panel's `options` and `fieldConfig.defaults.custom` against its panel type's
//     Options / FieldConfig (Dashboard types them as Record<string, unknown> only).
// Json<T> turns TypeScript string enums into their string values: JSON cannot name an enum
// member, so `"mode": "absolute"` stands for ThresholdsMode.Absolute (and "absolut" fails).
// It also checks that schemaVersion is the one this @grafana/schema writes (defaultDashboard).
//
// Usage: node gen-ts.mjs WORK_DIR DASHBOARD.json...
//   WORK_DIR holds node_modules (npm ci of tests/grafana/package-lock.json); the files go to
//   WORK_DIR/gen with a tsconfig.json.  Exit 1 (naming the file) on unreadable JSON, an unknown
//   panel type or a schemaVersion that differs.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [work, ...files] = process.argv.slice(2);
if (!work || files.length === 0) {
  console.error('usage: node gen-ts.mjs WORK_DIR DASHBOARD.json...');
  process.exit(2);
}
const require = createRequire(path.resolve(work, 'package.json'));
const schemaVersion = require('@grafana/schema').defaultDashboard.schemaVersion;

// Panel types the dashboards may use, and where @grafana/schema keeps their option types.
const PANEL_TYPES = {
  timeseries: 'timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen',
  stat: 'stat/panelcfg/x/StatPanelCfg_types.gen',
  table: 'table/panelcfg/x/TablePanelCfg_types.gen',
  gauge: 'gauge/panelcfg/x/GaugePanelCfg_types.gen',
  bargauge: 'bargauge/panelcfg/x/BarGaugePanelCfg_types.gen',
  statetimeline: 'statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen',
  statushistory: 'statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen',
  text: 'text/panelcfg/x/TextPanelCfg_types.gen',
};
const RAW = '@grafana/schema/dist/esm/raw/composable/';

const gen = path.join(work, 'gen');
fs.rmSync(gen, { recursive: true, force: true });
fs.mkdirSync(gen, { recursive: true });
fs.writeFileSync(path.join(gen, 'json.ts'), `\
// JSON cannot name a TypeScript enum member: a JSON string is checked against the enum's values.
export type Json<T> = T extends string
  ? \`\${T}\`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;
`);

let failed = false;
const fail = (msg) => {
  console.error(msg);
  failed = true;
};
const lit = (v, indent) => JSON.stringify(v, null, 2).replaceAll('\n', '\n' + indent);
const where = (name, p) => `// @where ${name} panel id=${p.id} ${JSON.stringify(p.title ?? '')}`;

const outputs = [];
for (const file of files) {
  const name = path.basename(file);
  let d;
  try {
    d = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${name}: not readable JSON: ${e.message}`);
    continue;
  }
  if (d.schemaVersion !== schemaVersion) {
    fail(`${name}: schemaVersion ${JSON.stringify(d.schemaVersion)}, but @grafana/schema writes ${schemaVersion}`);
  }
  const lines = [`// generated from ${name} by tests/grafana/gen-ts.mjs: do not edit`,
    "import type { Dashboard } from '@grafana/schema';",
    "import type { Json } from './json';"];
  const used = new Set();
  const checks = [];
  const all = [];
  for (const p of d.panels ?? []) {
    all.push(p);
    if (p.type === 'row') all.push(...(p.panels ?? []));
  }
  for (const p of all) {
    if (p.type === 'row') continue;
    const mod = PANEL_TYPES[p.type];
    if (!mod) {
      fail(`${name} panel id=${p.id} "${p.title}": type "${p.type}" has no schema here (tests/grafana/gen-ts.mjs PANEL_TYPES)`);
      continue;
    }
    used.add(p.type);
    checks.push(where(name, p));
    checks.push(`export const panel_${p.id}_options = ${lit(p.options ?? {}, '')} satisfies Json<Partial<${p.type}.Options>>;`);
    const custom = p.fieldConfig?.defaults?.custom;
    if (custom !== undefined) {
      checks.push(where(name, p));
      checks.push(`export const panel_${p.id}_custom = ${lit(custom, '')} satisfies Json<Partial<${p.type}.FieldConfig>>;`);
    }
  }
  for (const t of [...used].sort()) lines.push(`import type * as ${t} from '${RAW}${PANEL_TYPES[t]}';`);
  lines.push('', `// @where ${name} (dashboard)`, 'export const dashboard = {');
  for (const [k, v] of Object.entries(d)) {
    if (k !== 'panels') {
      lines.push(`  ${JSON.stringify(k)}: ${lit(v, '  ')},`);
      continue;
    }
    lines.push('  "panels": [');
    for (const p of v) {
      lines.push('    ' + where(name, p));
      lines.push(`    ${lit(p, '    ')},`);
    }
    lines.push('  ],');
    lines.push(`  // @where ${name} (dashboard)`);
  }
  lines.push('} satisfies Json<Dashboard>;', '', ...checks, '');
  const out = path.join(gen, name.replace(/\.json$/, '') + '.ts');
  fs.writeFileSync(out, lines.join('\n'));
  outputs.push(path.basename(out));
}

fs.writeFileSync(path.join(gen, 'tsconfig.json'), JSON.stringify({
  compilerOptions: {
    strict: true, noEmit: true, target: 'es2022', module: 'esnext',
    moduleResolution: 'bundler', skipLibCheck: true, types: [],
  },
  files: ['json.ts', ...outputs],
}, null, 2) + '\n');
process.exit(failed ? 1 : 0);
