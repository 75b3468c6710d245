// Injected into the CommonJS bundles (scripts/bundle.mjs): the ES modules' import.meta.url, as the bundle's own file.
import { pathToFileURL } from 'node:url';

export const __spreadUrl = pathToFileURL(__filename).href;
