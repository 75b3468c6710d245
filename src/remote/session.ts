/**
 * The contract between the runner and a live machine: a connected session
 * that runs rendered scripts, receives the project as a tar stream and sends
 * artifacts back. Implemented over SSH (ssh-session.ts) and on this machine
 * (local-session.ts). Everything above this interface is transport-agnostic.
 */
import type { Duplex, Readable } from 'node:stream';
import type { Output } from '../output.js';

export interface ExecRequest {
  /**
   * A complete bash script (rendered by script.ts) run by a fresh
   * `/bin/bash` as root, stdin from /dev/null, stdout and stderr merged.
   */
  readonly script: string;
  /** Aborting kills the script's whole process group (SIGKILL). */
  readonly signal?: AbortSignal;
  /** Output bytes as they arrive, all of them (warn-timeout messages, -logs files). */
  readonly onOutput?: (chunk: Buffer) => void;
  /** Run with a pseudo-terminal attached to these local streams (interactive shells). */
  readonly tty?: TtyStreams;
}

export interface TtyStreams {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly columns?: number;
  readonly rows?: number;
}

export interface ExecResult {
  /** The script's exit status; 137 or similar after a kill. */
  readonly exitCode: number;
  /** What the script printed, stdout and stderr merged, in order; bounded (head and tail kept). */
  readonly output: Output;
  /** True when the script was killed through `signal`. */
  readonly killed: boolean;
  /**
   * Set when the script's end is unknown although the connection is fine:
   * the process running it on the machine was killed (by the script itself).
   */
  readonly broken?: string;
}

/** The connection dropped under an operation; the machine may still be alive. */
export class ConnectionLostError extends Error {
  override readonly name = 'ConnectionLostError';
}

export interface UploadOptions {
  readonly ifEmpty?: boolean;
}

export interface Session {
  /** `host:port` or a description such as `local worker 2`, for logs. */
  readonly address: string;
  /** Run one script to completion. Rejects with ConnectionLostError if the link drops. */
  exec(request: ExecRequest): Promise<ExecResult>;
  /**
   * Extract a gzip-compressed tar stream into `dir` (created if missing);
   * resolves true. With `ifEmpty`, only into a missing or empty `dir`:
   * when it holds anything, nothing is extracted and it resolves false (the
   * check rides along with the upload: one round trip, one login).
   */
  upload(tarGz: Readable, dir: string, opts?: UploadOptions): Promise<boolean>;
  /**
   * Stream back an xz/gzip-less plain tar of `paths` (relative to `dir`,
   * globs allowed, missing paths ignored).
   */
  download(dir: string, paths: readonly string[]): Promise<Readable>;
  /**
   * Listen on the machine's loopback (127.0.0.1, a port it picks) and hand
   * each connection made there to `onConnection`: a reverse forward over the
   * existing connection, so nothing is opened to the network. Resolves to
   * the port; the listener ends with the session. Used by the sync helpers
   * of multi-machine tasks.
   */
  forwardIn?(onConnection: (stream: Duplex) => void): Promise<number>;
  /** Fires once if the connection drops. */
  onClose(listener: () => void): void;
  /** Close the connection; idempotent. */
  close(): Promise<void>;
}
