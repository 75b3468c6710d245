/**
 * Loading a project: find spread.yaml walking up, parse and schema-check it,
 * build the readonly model and discover the tasks of every suite. All
 * semantic checks of spec §1 live here (or in the helpers it calls), each
 * failing with one ConfigError that names the file and line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { collectTasks, listTaskEntries } from './discover.js';
import type { SuiteDir } from './discover.js';
import { parseTaskEntry } from './task-file.js';
import { ConfigError } from './errors.js';
import type { ConfigWarning } from './errors.js';
import { FieldReader } from './field-reader.js';
import { PROJECT_OR_BACKEND_NAME, SUITE_NAME, SYSTEM_NAME } from './names.js';
import { checkedList, checkSelectionLists } from './selection-lists.js';
import { checkSchema } from './schema-check.js';
import { byCodeUnit } from './env.js';
import { decodeYaml, isMap, isScalar, parseYaml, scalarText, viaOfPair, whereOfNode } from './yaml-source.js';
import type { YamlSource } from './yaml-source.js';
import type { Backend, Project, Suite, System, Task, Where } from './types.js';

export interface LoadOptions {
  /** Unknown keys are errors instead of warnings. */
  readonly strict?: boolean;
  /** Paths in messages are shown relative to this directory (default: the project dir). */
  readonly displayBase?: string;
}

export interface LoadResult {
  readonly project: Project;
  readonly warnings: readonly ConfigWarning[];
}

/** Backend types this tool knows; a known type whose backend is not built fails at run start. */
export const BACKEND_TYPES = ['adhoc', 'local', 'docker', 'podman', 'lxd', 'qemu', 'google', 'linode', 'humbox', 'openstack'] as const;

const NAME_HINT = 'use lower case letters and digits, with . _ or - between them';

/** Walk up from `start` looking for spread.yaml, then .spread.yaml, in each directory. */
export function findProjectFile(start: string): string {
  let dir = resolve(start);
  for (;;) {
    for (const name of ['spread.yaml', '.spread.yaml']) {
      const file = join(dir, name);
      if (existsSync(file)) return file;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new ConfigError('cannot find spread.yaml or .spread.yaml (run spread inside a project, or create spread.yaml)');
    dir = parent;
  }
}

/** Load a project: spread.yaml, then every suite's task files. */
export function loadProject(file: string, options: LoadOptions = {}): LoadResult {
  const top = readTop(file, options);
  const opts = { backendNames: [...top.backendNames], strict: options.strict };
  return finish(top, (suite) => collectTasks(listTaskEntries(suite).map((e) => parseTaskEntry(e, opts)), top.warnings));
}

/** spread.yaml read and checked: everything but the tasks. */
interface Top {
  readonly fields: Omit<Project, 'suites'>;
  readonly suites: readonly SuiteHead[];
  readonly backendNames: ReadonlySet<string>;
  readonly warnings: ConfigWarning[];
}

/** A suite as spread.yaml defines it, before its tasks are read. */
interface SuiteHead extends SuiteDir {
  readonly fields: Omit<Suite, 'tasks'>;
}

function readTop(file: string, options: LoadOptions): Top {
  const abs = resolve(file);
  const base = options.displayBase ?? dirname(abs);
  const display = (path: string): string => relative(base, path) || path;
  const warnings: ConfigWarning[] = [];

  const src = readYaml(abs, display(abs));
  warnings.push(...checkSchema(src, 'spread', src.value, options.strict));
  const top = FieldReader.of(src, src.contents, { file: src.file, line: 1, column: 1 });
  if (!isMap(src.contents)) throw new ConfigError('spread.yaml must be a map of keys such as project, path, backends and suites', top.at);

  const name = top.str('project');
  if (!top.has('project') || name === '') throw new ConfigError('missing project name (add project: <name>)', top.at);
  if (!PROJECT_OR_BACKEND_NAME.test(name)) throw new ConfigError(`invalid project name: ${JSON.stringify(name)} (${NAME_HINT})`, top.where('project'));
  // reroot: the project root is elsewhere, as the original joins it (`..` and absolute values included, unchecked).
  const reroot = top.str('reroot');
  const dir = join(dirname(abs), reroot);
  const path = top.str('path');
  if (path === '') throw new ConfigError('missing project path field with remote project location (add path: /some/remote/dir)', top.where('path'));

  const backends = readBackends(top);
  const backendNames = new Set(backends.map((b) => b.name));

  const suitesNode = top.map('suites');
  if (suitesNode.entries().length === 0) throw new ConfigError('must define at least one task suite (add suites: {tests/: {summary: ...}})', top.where('suites'));
  const suites = suitesNode.entries().map(([key, node, where]) => readSuite({ src, key, node, where, dir, display, backendNames, warnings }));

  const fields: Omit<Project, 'suites'> = {
    name, file: abs, dir, reroot, path,
    env: top.env(),
    backends,
    prepare: top.script('prepare'), restore: top.script('restore'), debug: top.script('debug'),
    prepareEach: top.script('prepare-each'), restoreEach: top.script('restore-each'), debugEach: top.script('debug-each'),
    repack: top.script('repack'),
    include: top.list('include'), exclude: top.list('exclude'), rename: top.list('rename'),
    warnTimeout: top.timeout('warn-timeout'), killTimeout: top.timeout('kill-timeout'),
    where: top.at,
  };
  return { fields, suites, backendNames, warnings };
}

function finish(top: Top, tasksOf: (suite: SuiteHead) => Task[]): LoadResult {
  const suites = top.suites.map((suite) => ({ ...suite.fields, tasks: tasksOf(suite) }));
  return { project: { ...top.fields, suites }, warnings: top.warnings };
}

/** Read and parse one YAML file; a read failure is a ConfigError too. */
export function readYaml(abs: string, display: string): YamlSource {
  let bytes: Buffer;
  try {
    bytes = readFileSync(abs);
  } catch (err) {
    throw new ConfigError(`cannot read: ${(err as Error).message}`, { file: display });
  }
  const text = decodeYaml(display, bytes);
  return parseYaml(display, text);
}

function readBackends(top: FieldReader): Backend[] {
  const map = top.map('backends');
  const backends: Backend[] = [];
  for (const [name, node, where] of map.entries()) {
    if (!PROJECT_OR_BACKEND_NAME.test(name)) throw new ConfigError(`invalid backend name: ${JSON.stringify(name)} (${NAME_HINT})`, where);
    if (node === null || (isScalar(node) && node.value === null)) continue;
    backends.push(readBackend(FieldReader.of(top.src, node, where), name));
  }
  if (backends.length === 0) throw new ConfigError('must define at least one backend (add backends: {name: {systems: [...]}})', top.where('backends'));
  return backends;
}

function readBackend(r: FieldReader, name: string): Backend {
  const label = `backend ${JSON.stringify(name)}`;
  const type = r.str('type') || name;
  if (!(BACKEND_TYPES as readonly string[]).includes(type)) {
    throw new ConfigError(`${label} has unsupported type ${JSON.stringify(type)} (use one of: ${BACKEND_TYPES.join(', ')}, or set type:)`, r.where(r.has('type') ? 'type' : undefined));
  }
  const allocate = r.str('allocate');
  const discard = r.str('discard');
  if (type !== 'adhoc' && (allocate.trim() !== '' || discard.trim() !== '')) {
    throw new ConfigError(`${label} cannot use allocate and discard fields (they belong to type adhoc)`, r.where(allocate ? 'allocate' : 'discard'));
  }
  if (type === 'adhoc' && allocate.trim() === '') throw new ConfigError(`${label} requires an allocate field (a script that prints ADDRESS host[:port])`, r.at);

  const storage = r.size('storage');
  const plan = r.str('plan');
  const networks = r.list('networks');
  const groups = r.list('groups');
  const systems = readSystems(r, name, label, { storage, plan, networks, groups });
  // Backend variants are sorted at load, as the original does.
  const variants = checkedList(r, 'variants', label, 'variants').sort(byCodeUnit);
  return {
    name, type, key: r.str('key'), location: r.str('location'), plan, storage,
    memory: r.size('memory'), haltTimeout: r.timeout('halt-timeout'),
    endpoint: r.str('endpoint'), account: r.str('account'), networks, groups,
    allocate, discard, systems, env: r.env(), variants,
    prepare: r.script('prepare'), restore: r.script('restore'), debug: r.script('debug'),
    prepareEach: r.script('prepare-each'), restoreEach: r.script('restore-each'), debugEach: r.script('debug-each'),
    warnTimeout: r.timeout('warn-timeout'), killTimeout: r.timeout('kill-timeout'),
    priority: r.int('priority'), manual: r.bool('manual'),
    options: { runOptions: r.list('run-options'), engine: r.str('engine') },
    where: r.at,
  };
}

/** What a system takes from its backend when it does not say. */
interface SystemDefaults {
  readonly storage: number;
  readonly plan: string;
  readonly networks: readonly string[];
  readonly groups: readonly string[];
}

function readSystems(r: FieldReader, backend: string, label: string, defaults: SystemDefaults): System[] {
  const { storage, plan } = defaults;
  const byName = new Map<string, System>();
  for (const [item, at] of r.items('systems')) {
    let name: string;
    let fields: FieldReader;
    if (isMap(item)) {
      const pair = item.items[0]!;
      name = scalarText(pair.key);
      fields = FieldReader.of(r.src, pair.value, whereOfNode(r.src, pair.key as never, viaOfPair(r.src, pair) ?? at.via));
    } else {
      name = scalarText(item);
      fields = FieldReader.of(r.src, null, at);
    }
    if (!SYSTEM_NAME.test(name)) throw new ConfigError(`${label} refers to invalid system name: ${JSON.stringify(name)} (system names look like ubuntu-22.04: letters, a dash, then a version)`, fields.at);
    const workers = fields.int('workers') ?? 0;
    if (workers < 0) throw new ConfigError(`${label} has system ${JSON.stringify(name)} with ${workers} workers (use 1 or more)`, fields.where('workers'));
    const systemLabel = `${backend}:${name}`;
    byName.delete(name);
    byName.set(name, {
      name, backend, image: fields.str('image') || name, kernel: fields.str('kernel'),
      username: fields.str('username'), password: fields.str('password'),
      workers: workers === 0 ? 1 : workers,
      storage: fields.size('storage') || storage, plan: fields.str('plan') || plan,
      secureBoot: fields.bool('secure-boot'), cpuFamily: fields.str('cpu-family'), bios: fields.str('bios'),
      // As the original: a system's own non-empty list replaces the backend's, never merges with it.
      networks: orDefault(fields.list('networks'), defaults.networks), groups: orDefault(fields.list('groups'), defaults.groups),
      env: fields.env(), variants: checkedList(fields, 'variants', systemLabel, 'variants'),
      priority: fields.int('priority'), manual: fields.bool('manual'),
      options: { runOptions: fields.list('run-options'), deviceBackends: Object.fromEntries(fields.env('device-backends')) },
      where: fields.at,
    });
  }
  if (byName.size === 0) throw new ConfigError(`no systems specified for ${label} (add systems: [ubuntu-22.04] or similar)`, r.where(r.has('systems') ? 'systems' : undefined));
  return [...byName.values()];
}

const orDefault = (own: readonly string[], inherited: readonly string[]): readonly string[] => (own.length > 0 ? own : inherited);

interface SuiteInput {
  readonly src: YamlSource;
  readonly key: string;
  readonly node: unknown;
  readonly where: Where;
  readonly dir: string;
  readonly display: (path: string) => string;
  readonly backendNames: ReadonlySet<string>;
  readonly warnings: ConfigWarning[];
}

function readSuite(input: SuiteInput): SuiteHead {
  const { key, where } = input;
  if (!key.endsWith('/')) throw new ConfigError(`invalid suite name (must end with /): ${JSON.stringify(key)}`, where);
  if (!SUITE_NAME.test(key)) throw new ConfigError(`invalid suite name: ${JSON.stringify(key)} (use directories of lower case letters and digits, ending with /)`, where);
  const r = FieldReader.of(input.src, input.node, where);
  const name = key.replace(/^\/+|\/+$/g, '') + '/';
  const label = `suite ${name}`;
  const summary = r.str('summary').trim();
  if (summary === '') throw new ConfigError(`${label} is missing a summary (add summary: <one line>)`, where);
  const lists = checkSelectionLists(r, label, input.backendNames, input.warnings);
  return {
    suite: name, suiteWhere: where, dir: input.dir, display: input.display,
    fields: {
      name, summary, ...lists,
      env: r.env(),
      prepare: r.script('prepare'), restore: r.script('restore'), debug: r.script('debug'),
      prepareEach: r.script('prepare-each'), restoreEach: r.script('restore-each'), debugEach: r.script('debug-each'),
      warnTimeout: r.timeout('warn-timeout'), killTimeout: r.timeout('kill-timeout'),
      priority: r.int('priority'), manual: r.bool('manual'),
      where,
    },
  };
}
