// The docs cite error codes, metrics (with their labels), log events, CloudEvent types, agent routes and CLI
// commands that an operator will copy into a terminal at 3 a.m.: each must exist in the packages' sources, each
// CLI line must be accepted by the real CLI, and each relative link must land on a file and heading that exist.
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { main as agentMain } from '../../../packages/agent/src/cli.ts';
import { main as migrateMain } from '../../../packages/migrations/src/cli.ts';

const root = resolve(import.meta.dirname, '..', '..', '..');

function walk(directory: string, keep: (path: string) => boolean): string[] {
  const files: string[] = [];
  for (const name of readdirSync(directory)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(directory, name);
    if (statSync(path).isDirectory()) files.push(...walk(path, keep));
    else if (keep(path)) files.push(path);
  }
  return files;
}

/** The documents under test. */
const DOCS = [
  join(root, 'README.md'),
  join(root, 'examples', 'k8s', 'README.md'),
  ...readdirSync(join(root, 'docs', 'runbooks'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(root, 'docs', 'runbooks', name)),
];
const docs = DOCS.map((file) => ({ file: relative(root, file), text: readFileSync(file, 'utf8') }));

/** What the packages ship: sources without tests, alert rules, deploy manifests (and the test harness, for
 * GANTRY_TEST_SERVERS). */
const SOURCE_FILES = readdirSync(join(root, 'packages')).flatMap((name) =>
  walk(
    join(root, 'packages', name),
    (path) => (/\/src\/.*\.ts$/.test(path) && !path.endsWith('.test.ts')) || /\/(alerts|deploy)\/.*\.ya?ml$/.test(path),
  ),
);
const HARNESS_FILES = walk(
  join(root, 'test', 'harness', 'src'),
  (path) => path.endsWith('.ts') && !path.endsWith('.test.ts'),
);
const sources = [...SOURCE_FILES, ...HARNESS_FILES].map((file) => readFileSync(file, 'utf8')).join('\n');
const quoted = (value: string): boolean =>
  sources.includes(`'${value}'`) || sources.includes(`"${value}"`) || sources.includes(`\`${value}\``);
const word = (value: string): boolean =>
  new RegExp(`\\b${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(sources);

/** Inline code spans and fenced code blocks of a markdown text. */
function codeOf(text: string): { spans: string[]; blocks: { lang: string; body: string }[] } {
  const blocks: { lang: string; body: string }[] = [];
  const withoutBlocks = text.replace(/^```(\w*)\n([\s\S]*?)^```$/gm, (_match, lang: string, body: string) => {
    blocks.push({ lang, body });
    return '';
  });
  const spans = [...withoutBlocks.matchAll(/`([^`\n]+)`/g)].map((match) => match[1]!);
  return { spans, blocks };
}

const EXTERNAL_TOKENS = new Set(['PGHOST', 'PGDATABASE']); // node-postgres' own variables

/**
 * A GANTRY_* name exists when the sources name it, or build it from their prefix constant (flags reads
 * `${'GANTRY_FLAGS_'}${'URL'}`): then both the quoted prefix and the quoted rest must be there.
 */
function gantryNameExists(name: string): boolean {
  if (word(name)) return true;
  const prefix = /^GANTRY_[A-Z]+_/.exec(name)?.[0];
  return prefix !== undefined && quoted(prefix) && quoted(name.slice(prefix.length));
}

describe('error codes, variables and reason codes', () => {
  it.each(docs)('$file: every GANTRY_* name exists in the packages', ({ text }) => {
    const names = new Set([...text.matchAll(/\bGANTRY_[A-Z0-9_]*[A-Z0-9]\b/g)].map((match) => match[0]));
    const missing = [...names].filter((name) => !gantryNameExists(name));
    expect(missing).toEqual([]);
  });

  it('every GANTRY_* variable the manifests set exists in the packages', () => {
    const manifests = walk(join(root, 'examples', 'k8s'), (path) => /\.ya?ml$/.test(path));
    const names = new Set(
      manifests.flatMap((file) =>
        [...readFileSync(file, 'utf8').matchAll(/\bGANTRY_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => m[0]),
      ),
    );
    expect(names.size).toBeGreaterThan(10);
    expect([...names].filter((name) => !gantryNameExists(name))).toEqual([]);
  });

  it.each(docs)(
    '$file: every upper-case code in backticks (reason codes, OTEL_* …) exists in the packages',
    ({ text }) => {
      const tokens = new Set(
        codeOf(text)
          .spans.filter((span) => /^[A-Z][A-Z0-9_]{2,}$/.test(span))
          .filter((span) => !EXTERNAL_TOKENS.has(span)),
      );
      expect([...tokens].filter((token) => !quoted(token) && !gantryNameExists(token))).toEqual([]);
    },
  );
});

describe('metrics', () => {
  /** Labels a metric is defined with: `labelNames` near its `name:` in the sources, plus scrape and identity labels. */
  const TARGET_LABELS = ['namespace', 'pod', 'job', 'instance', 'service', 'version', 'le', '__name__'];
  const HTTP_LABELS = ['http_request_method', 'http_route', 'http_response_status_code', 'tenant'];
  function labelsOf(metric: string): string[] | undefined {
    if (metric === 'http_server_request_duration_seconds') return HTTP_LABELS;
    if (!sources.includes(`'${metric}'`)) return undefined;
    // Each definition follows the name: `name: '…', help, labelNames: [...]` or `gauge('…', help, [...])`.
    const labels = new Set<string>();
    for (let at = sources.indexOf(`'${metric}'`); at >= 0; at = sources.indexOf(`'${metric}'`, at + 1)) {
      let window = sources.slice(at, at + 600);
      const next = window.slice(1).search(/'gantry_[a-z0-9_]+'|\n\s*\n/);
      if (next >= 0) window = window.slice(0, next + 1);
      const list =
        /labelNames:\s*\[([^\]]*)\]/.exec(window) ?? /\[(\s*'[a-z_]+'(?:\s*,\s*'[a-z_]+')*\s*,?\s*)\]/.exec(window);
      for (const match of (list?.[1] ?? '').matchAll(/'([a-z_]+)'/g)) labels.add(match[1]!);
    }
    return [...labels];
  }
  const base = (name: string): string => name.replace(/_(bucket|count|sum)$/, '');

  it('every HTTP metric label the docs use is written by @gantry/telemetry', () => {
    for (const label of HTTP_LABELS) expect(quoted(label), label).toBe(true);
  });

  it.each(docs)('$file: every metric exists, and every label used with it is one of its labels', ({ text }) => {
    const problems: string[] = [];
    const pattern =
      /\b(gantry_[a-z0-9_]*[a-z0-9]|http_server_request_duration_seconds(?:_bucket|_count|_sum)?)\b(\{[^}]*\})?/g;
    for (const match of text.matchAll(pattern)) {
      const metric = base(match[1]!);
      if (metric === 'gantry_migrations') continue; // the state tables' schema, not a metric
      const labels = labelsOf(metric);
      if (labels === undefined || !quoted(metric)) {
        problems.push(`${match[1]!}: no such metric`);
        continue;
      }
      for (const item of (match[2] ?? '').slice(1, -1).split(',')) {
        const label = item.trim().split(/\s*(?:=~|!~|!=|=)\s*/)[0]!;
        if (label !== '' && !labels.includes(label) && !TARGET_LABELS.includes(label))
          problems.push(`${metric}{${label}}: not a label of this metric (${labels.join(', ')})`);
      }
    }
    // `by (…)` / `without (…)` in PromQL: each label must belong to a metric of the same query line.
    for (const block of codeOf(text).blocks.filter((item) => item.lang === 'promql')) {
      for (const line of block.body.split('\n')) {
        const metrics = [...line.matchAll(pattern)].map((match) => base(match[1]!));
        const allowed = new Set([...TARGET_LABELS, ...metrics.flatMap((metric) => labelsOf(metric) ?? [])]);
        for (const clause of line.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
          for (const label of clause[1]!.split(',').map((item) => item.trim()))
            if (!allowed.has(label)) problems.push(`${line.trim()}: label ${label} is on none of its metrics`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('log events and CloudEvents', () => {
  const EVENT = /^(health|telemetry|flags|migrations|secrets|agent)\.[a-z_]+(?:\.[a-z_]+)*(\.\*|\.)?$/;
  const FILE = /\.(ya?ml|json|jsonl|ts|js|md)$/;

  /** Event names cited: whole code spans, and double-quoted strings inside code blocks (jq filters). */
  function citedEvents(text: string): string[] {
    const { spans, blocks } = codeOf(text);
    const candidates = [
      ...spans,
      ...blocks.flatMap((block) => [...block.body.matchAll(/"([a-z_.*]+)"/g)].map((match) => match[1]!)),
    ];
    return [...new Set(candidates.filter((item) => EVENT.test(item) && !FILE.test(item)))];
  }

  it.each(docs)('$file: every log event is one the packages log', ({ text }) => {
    const missing = citedEvents(text).filter((event) => {
      if (event.endsWith('.*') || event.endsWith('.')) {
        // a family: some event must start with it (`agent.audit.${action}` counts through its template prefix)
        const prefix = event.endsWith('.*') ? event.slice(0, -1) : event;
        return !sources.includes(`'${prefix}`) && !sources.includes(`\`${prefix}`);
      }
      return !quoted(event);
    });
    expect(missing).toEqual([]);
  });

  it('the runbooks cite a good share of the events (the check above is not vacuous)', () => {
    expect(docs.flatMap((doc) => citedEvents(doc.text)).length).toBeGreaterThan(60);
  });

  it.each(docs)('$file: every CloudEvent type is one the agent emits', ({ text }) => {
    const types = new Set([...text.matchAll(/\bdev\.gantry\.[a-z.]*[a-z]/g)].map((match) => match[0]));
    expect([...types].filter((type) => !quoted(type))).toEqual([]);
  });
});

describe('agent routes', () => {
  const server = readFileSync(join(root, 'packages', 'agent', 'src', 'server.ts'), 'utf8');
  it.each(docs)('$file: every /gate/v1/… path is a route of the agent', ({ text }) => {
    const routes = new Set([...text.matchAll(/\/gate\/v1\/([a-z-]+)/g)].map((match) => match[1]!));
    const known = (route: string): boolean =>
      server.includes(`'/gate/v1/${route}'`) || server.includes(`'/gate/v1/${route}/'`);
    expect([...routes].filter((route) => !known(route))).toEqual([]);
  });

  it.each(docs)('$file: every Flagger hook type in a URL is one the agent serves', ({ text }) => {
    const hooks = new Set([...text.matchAll(/\/gate\/v1\/flagger\/([a-z-]+)/g)].map((match) => match[1]!));
    for (const hook of hooks) expect(server, hook).toContain(`'${hook}'`);
  });
});

/** Splits a shell command line into words (quotes respected), stopping at pipes, redirections and `;`/`&&`. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const pattern = /"([^"]*)"|'([^']*)'|(\|\||&&|[|;>&#]|\\$)|(\S+)/g;
  for (const match of line.matchAll(pattern)) {
    if (match[3] !== undefined) break;
    words.push(match[1] ?? match[2] ?? match[4]!);
  }
  return words;
}

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

/** `gantry-migrate`/`gantry-agent` invocations in the docs' code (shell blocks, spans) and in the Jobs' manifests. */
function cliLines(binary: string): { where: string; args: string[] }[] {
  const lines: { where: string; args: string[] }[] = [];
  for (const doc of docs) {
    const { spans, blocks } = codeOf(doc.text);
    const shell = blocks.filter((block) => ['sh', 'bash', 'shell', 'console'].includes(block.lang));
    const candidates = [...spans, ...shell.flatMap((block) => block.body.split('\n'))];
    for (const candidate of candidates) {
      const at = candidate.indexOf(`${binary} `);
      if (at < 0) continue;
      // the binary must be the command: at the start, after env assignments, or after `$(`, `|`, `&&`, `;`
      const before = candidate.slice(0, at).trimEnd();
      if (before !== '' && !/(\$\(|\||&&|;)$/.test(before) && !/^(\w+=\S*\s*)+$/.test(before)) continue;
      const words = shellWords(candidate.slice(at));
      if (words[0] === binary && words.length > 1) lines.push({ where: doc.file, args: words.slice(1) });
    }
  }
  for (const file of walk(join(root, 'examples', 'k8s'), (path) => /\.ya?ml$/.test(path))) {
    for (const document of readFileSync(file, 'utf8').split(/^---$/m)) {
      const object = parse(document);
      const pod = object?.spec?.template?.spec;
      for (const container of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
        if (container.command?.[0] === binary)
          lines.push({ where: relative(root, file), args: [...container.command.slice(1), ...(container.args ?? [])] });
      }
    }
  }
  return lines;
}

describe('CLI commands', () => {
  const migrateLines = cliLines('gantry-migrate');
  const agentLines = cliLines('gantry-agent');

  it('the docs and manifests use both CLIs', () => {
    expect(migrateLines.length).toBeGreaterThan(10);
    expect(agentLines.length).toBeGreaterThan(0);
  });

  it('every gantry-migrate line is accepted by the real CLI (command and flags known, flags valid for it)', async () => {
    for (const { where, args } of migrateLines) {
      // Without a database the CLI stops right after validating the command line: "No database" means accepted.
      const withoutUrl = args.filter((arg, index) => arg !== '--url' && args[index - 1] !== '--url');
      const stdout = capture();
      const stderr = capture();
      const code = await migrateMain(withoutUrl, { stdout: stdout.stream, stderr: stderr.stream, env: {} });
      const output = `${stdout.text()}${stderr.text()}`;
      const accepted = code === 0 || (code === 2 && output.includes('No database'));
      expect(accepted, `${where}: gantry-migrate ${args.join(' ')} → exit ${code}: ${output.slice(0, 300)}`).toBe(true);
    }
  });

  it('every gantry-agent line is accepted by the real CLI (config files are the example ConfigMap)', async () => {
    const configMap = parse(readFileSync(join(root, 'examples', 'k8s', 'common', 'agent-config.yaml'), 'utf8'));
    const directory = mkdtempSync(join(tmpdir(), 'gantry-docs-'));
    const config = join(directory, 'agent.yaml');
    writeFileSync(config, configMap.data['agent.yaml']);
    for (const { where, args } of agentLines) {
      const command = args[0] === 'run' || args[0]?.startsWith('-') ? 'check-config' : args[0]!;
      const rest = (args[0] === 'run' ? args.slice(1) : args.slice(args[0]?.startsWith('-') ? 0 : 1)).map(
        (arg, index, all) =>
          all[index - 1] === '--config' || all[index - 1] === '-c'
            ? arg.startsWith('/')
              ? config
              : resolve(directory, dirname(arg), 'agent.yaml')
            : arg,
      );
      let output = '';
      const code = await agentMain([command, ...rest], {
        env: {},
        stdout: (text) => (output += text),
        stderr: (text) => (output += text),
      });
      expect(code, `${where}: gantry-agent ${args.join(' ')}: ${output.slice(0, 300)}`).toBe(0);
    }
  });
});

describe('links and the README contract', () => {
  const slug = (heading: string): string =>
    heading
      .trim()
      .toLowerCase()
      .replace(/`/g, '')
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');

  it.each(docs)('$file: every relative link lands on an existing file and heading', ({ file, text }) => {
    const broken: string[] = [];
    const withoutCode = text.replace(/^```[\s\S]*?^```$/gm, '');
    for (const match of withoutCode.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split('#');
      const targetFile = path === '' ? join(root, file) : resolve(dirname(join(root, file)), path!);
      let stats;
      try {
        stats = statSync(targetFile);
      } catch {
        broken.push(target);
        continue;
      }
      if (anchor !== undefined && stats.isFile()) {
        const headings = [...readFileSync(targetFile, 'utf8').matchAll(/^#+ (.+)$/gm)].map((heading) =>
          slug(heading[1]!),
        );
        if (!headings.includes(anchor)) broken.push(target);
      }
    }
    expect(broken).toEqual([]);
  });

  const readme = readFileSync(join(root, 'README.md'), 'utf8');

  it('keeps the two commands exactly', () => {
    expect(readme).toContain('./gantry demo    # the main job: see what Gantry does');
    expect(readme).toContain(
      './gantry test    # the whole test suite, against real PostgreSQL, Unleash, Kafka and Prometheus',
    );
  });

  it('has a demo section for the demo summary', () => {
    expect(readme).toMatch(/^## The demo\n\n[^\n]*`\.\/gantry demo`/m);
  });

  it('lists every package with a link to it', () => {
    for (const name of readdirSync(join(root, 'packages')))
      expect(readme, name).toContain(`[\`@gantry/${name}\`](packages/${name})`);
  });

  it('links every runbook from the runbooks index', () => {
    const index = readFileSync(join(root, 'docs', 'runbooks', 'README.md'), 'utf8');
    for (const name of readdirSync(join(root, 'docs', 'runbooks')).filter((item) => item !== 'README.md'))
      expect(index, name).toContain(`](${name})`);
  });
});
