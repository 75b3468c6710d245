/**
 * Backend types and their implementations, as an explicit map (no import
 * side effects). A type the loader accepts but this build cannot run yet
 * fails at the start of a run, in one line naming it.
 */
import type { Backend as BackendConfig } from '../project/types.js';
import { adhocBackend } from './adhoc.js';
import type { Backend, BackendContext, BackendFactory } from './backend.js';
import { dockerBackend } from './docker.js';
import { googleBackend } from './google.js';
import { localBackend } from './local.js';
import { lxdBackend } from './lxd.js';
import { openstackBackend } from './openstack.js';
import { podmanBackend } from './podman.js';
import { qemuBackend } from './qemu.js';

export const BACKENDS: Readonly<Record<string, BackendFactory>> = {
  adhoc: adhocBackend,
  local: localBackend,
  docker: dockerBackend, podman: podmanBackend, lxd: lxdBackend, qemu: qemuBackend,
  google: (config, ctx) => googleBackend(config, ctx),
  openstack: (config, ctx) => openstackBackend(config, ctx),
};

export class UnsupportedBackendError extends Error {
  override readonly name = 'UnsupportedBackendError';
}

export function createBackend(config: BackendConfig, ctx: BackendContext): Backend {
  const factory = BACKENDS[config.type];
  if (!factory) {
    throw new UnsupportedBackendError(`backend ${JSON.stringify(config.name)} has type ${JSON.stringify(config.type)}, which this version of spread cannot run yet (available: ${Object.keys(BACKENDS).join(', ')})`);
  }
  return factory(config, ctx);
}
