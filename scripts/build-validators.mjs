// Build step: compile schemas/*.schema.json into one ESM module of standalone
// ajv validators (dist/src/project/schema-validators.js), so a run needs no
// schema compilation at start-up (ajv compiling both schemas costs ~100 ms).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = (name) => JSON.parse(readFileSync(join(root, 'schemas', `${name}.schema.json`), 'utf8'));
const ajv = new Ajv({ allErrors: true, strict: false, code: { source: true, esm: true } });
ajv.addSchema(schema('spread'), 'spread');
ajv.addSchema(schema('task'), 'task');
const out = join(root, 'dist/src/project/schema-validators.js');
mkdirSync(dirname(out), { recursive: true });
// The schemas themselves go along, for the known keys in unknown-key messages.
const schemas = `export const schemas = ${JSON.stringify({ spread: schema('spread'), task: schema('task') })};\n`;
writeFileSync(out, standaloneCode.default(ajv, { spread: 'spread', task: 'task' }) + schemas);
