#!/usr/bin/env node
/** The entry of the installed command (bundled as dist/bin/spread.cjs): the CLI bundle sits beside it. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './launch.js';

launch(join(dirname(fileURLToPath(import.meta.url)), 'spread-bundle.cjs'));
