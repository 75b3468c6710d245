// Source of schemas/*.schema.json: run `node schemas/gen-schemas.mjs` after editing.
// Written as code so the shared fragments (scripts, timeouts, lists) are defined once.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const scalar = (description) => ({ type: ['string', 'number', 'boolean', 'null'], description });
// A number or boolean where a script or list entry is expected is read as its text (`execute: true`), as the original does.
const script = (description) => ({ type: ['string', 'number', 'boolean', 'null'], description });
const list = (description) => ({ type: ['array', 'null'], items: { type: ['string', 'number', 'boolean', 'null'] }, description });
const bool = (description) => ({ type: ['boolean', 'null'], description });
const int = (description) => ({ type: ['integer', 'null'], description });
const timeout = (description) => ({ type: ['string', 'number', 'null'], description: `${description} A duration such as 30s, 1m30s, 10m or 1.5h; -1 disables it.` });
const env = (level) => ({
  type: ['object', 'null'],
  description: `Environment variables for scripts at the ${level} level and below, exported in order. ` +
    'A NAME/a,b suffix defines variants a and b: every task runs once per variant, and the suffixed value overrides the bare one. ' +
    'Values are expanded by bash on the machine; $(HOST:cmd) runs cmd on this host first.',
  propertyNames: { pattern: '^[a-zA-Z_][a-zA-Z0-9_]*(/[a-zA-Z0-9_]+(,[a-zA-Z0-9_]+)*)?$' },
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
});
const scripts = (level) => ({
  prepare: script(`Script run before the ${level}'s tasks, once per machine at this level.`),
  restore: script(`Script run after the ${level}'s tasks, even after failures; it must leave the machine clean.`),
  debug: script(`Script run (traced) after a ${level}-level script fails, to show what went wrong.`),
});
const eachScripts = (level) => ({
  'prepare-each': script(`Script run before every task under this ${level}.`),
  'restore-each': script(`Script run after every task under this ${level}, even after failures.`),
  'debug-each': script(`Script run after any task under this ${level} fails.`),
});
const timeouts = {
  'warn-timeout': timeout('Print a warning with the output so far when a script runs longer than this (default 5m).'),
  'kill-timeout': timeout('Kill a script that runs longer than this (default 15m).'),
};
const selection = {
  priority: int('Jobs with a larger priority are scheduled first (default 0; negative allowed).'),
  manual: bool('Only run when selected explicitly by a filter argument.'),
};
const variants = list('Variant list: plain names replace the inherited set, +name adds, -name removes; globs allowed.');
const systemsList = list('Systems to run on: plain names replace the inherited set, +name adds, -name removes; globs allowed.');
const backendsList = list('Backends to run on: plain names replace the inherited set, +name adds, -name removes; globs allowed.');

const systemDef = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    image: scalar('Image to boot (defaults to the system name); its meaning depends on the backend.'),
    kernel: scalar('Kernel to boot (linode).'),
    username: scalar('User to log in as over SSH (default root); non-root users need passwordless sudo.'),
    password: scalar('Password to log in with (default: the -pass value).'),
    workers: { type: ['integer', 'null'], description: 'How many machines of this system run jobs in parallel (default 1).' },
    storage: scalar('Disk size such as 20G, or preserve-size (google, linode).'),
    plan: scalar('Machine type, flavor or plan (google, openstack, linode); defaults to the backend plan.'),
    'secure-boot': bool('Enable secure boot (google).'),
    'cpu-family': scalar('Minimum CPU platform (google).'),
    bios: scalar('Firmware: "" or uefi (qemu).'),
    networks: list('openstack: network names for this system (default: the backend\'s networks, else the first non-external network).'),
    groups: list('openstack: security group names for this system (default: the backend\'s groups).'),
    environment: env('system'),
    variants,
    ...selection,
    // Options this project adds for its backends (docker, podman, lxd, qemu): see docs/backends.md.
    'run-options': list('Extra command-line options when starting this system, after the backend\'s: docker/podman run, lxc launch, or qemu arguments.'),
    'device-backends': {
      type: ['object', 'null'],
      additionalProperties: false,
      description: 'qemu: the guest\'s disk interface and network card.',
      properties: {
        drive: scalar('Disk interface, the -drive if= value (default ide; virtio is much faster).'),
        network: scalar('Network card model, a -device name (default e1000; virtio-net-pci is faster).'),
      },
    },
  },
};

const backend = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', description: 'Backend type (defaults to the backend name): adhoc, local, docker, podman, lxd, qemu, google, openstack, linode, humbox.' },
    key: scalar('Credentials for the backend API; $(HOST:...) is expanded. google: service account or authorized user JSON, or a path to one; openstack: the password.'),
    location: scalar('Where machines live: google project/zone, openstack project/region, lxd remote, linode datacenter, humbox URL.'),
    plan: scalar('Default machine type, flavor or plan for the systems (google, openstack, linode).'),
    endpoint: scalar('openstack: the Keystone identity URL (it must offer identity v3). google: the Compute Engine API base URL, for private endpoints (default https://compute.googleapis.com).'),
    account: scalar('openstack: the user name to authenticate as (default domain).'),
    networks: list('openstack: network names for systems that name none (default: the first non-external network).'),
    groups: list('openstack: security group names for systems that name none.'),
    storage: scalar('Default disk size for the systems, such as 20G (google, linode, humbox).'),
    memory: scalar('Memory for each machine, such as 2G (qemu; default 1500M).'),
    'halt-timeout': timeout('Machines older than this are garbage collected by -gc (google, openstack, linode, docker, podman).'),
    allocate: script('adhoc: script that obtains a machine and reports it with ADDRESS host[:port].'),
    discard: script('adhoc: script that throws the machine at $SPREAD_SYSTEM_ADDRESS away.'),
    systems: {
      type: 'array',
      description: 'Systems this backend provides: a name such as ubuntu-22.04, or a one-key map name: {options}.',
      // Not a oneOf: an unknown key inside a system map must stay a warning,
      // and a oneOf would turn it into a failed alternative.
      items: { type: ['string', 'number', 'object'], minProperties: 1, maxProperties: 1, additionalProperties: systemDef },
    },
    environment: env('backend'),
    variants,
    ...scripts('backend'),
    ...eachScripts('backend'),
    ...timeouts,
    ...selection,
    'run-options': list('Extra command-line options when starting machines: docker/podman run, lxc launch, or qemu arguments.'),
    engine: scalar('The engine\'s command, with optional leading arguments split at spaces: docker, podman, lxc or qemu-system-x86_64 by default.'),
  },
};

const suite = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    summary: scalar('One line describing the suite (required).'),
    systems: systemsList,
    backends: backendsList,
    variants,
    environment: env('suite'),
    ...scripts('suite'),
    ...eachScripts('suite'),
    ...timeouts,
    ...selection,
  },
};

const project = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://spread-ts.dev/schemas/spread.schema.json',
  title: 'spread.yaml',
  description: 'A spread project: where tasks run (backends and systems) and which task suites exist.',
  type: 'object',
  additionalProperties: false,
  properties: {
    project: { type: ['string', 'number'], description: 'Project name (lower case letters, digits, and . _ - between them).' },
    path: scalar('Absolute directory on the machines where the project content is sent.'),
    reroot: scalar('Directory, relative to spread.yaml, that is the project root: suites, the content sent, repack and .spread-reuse.yaml live there (default: the directory of spread.yaml).'),
    backends: { type: 'object', description: 'Backends by name: how to obtain machines.', additionalProperties: backend },
    suites: {
      type: 'object',
      description: 'Task suites by directory (with a trailing slash): every subdirectory holding a task.yaml is a task.',
      additionalProperties: suite,
    },
    environment: env('project'),
    ...scripts('project'),
    ...eachScripts('project'),
    ...timeouts,
    repack: script('Script run on this host with the project tar on fd 3; it writes the tar to send on fd 4.'),
    include: list('Top-level entries of the project directory to send (default: all).'),
    exclude: list('GNU tar --exclude patterns of content not to send.'),
    rename: list('GNU tar --transform expressions applied to the names sent, such as s,^,prefix/,S.'),
  },
};

const task = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://spread-ts.dev/schemas/task.schema.json',
  title: 'task.yaml',
  description: 'A spread task: what to run on the machines.',
  type: 'object',
  additionalProperties: false,
  properties: {
    summary: scalar('One line describing the task (required).'),
    details: scalar('Longer description; not used by spread.'),
    systems: systemsList,
    backends: backendsList,
    variants,
    environment: env('task'),
    samples: int('Run the task this many times, as jobs named with #1..#N.'),
    prepare: script('Script run before execute.'),
    execute: script('The task itself: a bash script that fails the task by exiting non-zero.'),
    restore: script('Script run after execute, even after failures; it must leave the machine clean.'),
    debug: script('Script run (traced) when prepare or execute fails, to show what went wrong.'),
    artifacts: list('Paths relative to the task directory fetched into -artifacts=DIR after the task.'),
    instances: {
      type: ['integer', 'object', 'null'],
      minimum: 1,
      description: 'Run the task on this many machines of its system at once, kept in step with SIGNAL, BARRIER, PUBLISH and READ ' +
        '(see docs/tasks.md); or a map of role names to counts, such as {server: 1, client: 2}.',
      additionalProperties: { type: 'integer', minimum: 1 },
    },
    ...timeouts,
    ...selection,
  },
};

for (const [name, schema] of [['spread', project], ['task', task]]) {
  writeFileSync(join(here, `${name}.schema.json`), `${JSON.stringify(schema, null, 2)}\n`);
}
