/**
 * The Atomics bridge between a Worker running a WASI program and the thread that owns the socket core:
 * the worker posts a call and blocks in `Atomics.wait` on a SharedArrayBuffer; the owner runs the call on
 * its core (asynchronously, on its own event loop) and writes the answer into the buffer, then
 * `Atomics.notify`. This is how a program blocks without JSPI.
 *
 * Buffer layout (`Int32Array` view): [0] state (0 idle, 1 answered), [1] answer length; bytes from 8 on
 * hold the answer. Answers are encoded by {@link encodeAnswer}: a JSON header and, for byte results, the
 * raw bytes after it. The buffer bounds one answer; `recv` never asks for more than {@link maxPayload}.
 *
 * @module
 */

import type { CoreOp, Executor } from "./wasix.ts";

/** Default SharedArrayBuffer size: 1 MiB of payload plus headers. */
export const DEFAULT_BRIDGE_BYTES = 1024 * 1024 + 4096;
const HEADER = 8;
/** Room kept for the JSON part of an answer. */
const JSON_ROOM = 4096;

/** The largest payload one answer can carry in a buffer of `bytes`. */
export function maxPayload(bytes: number): number {
  return bytes - HEADER - JSON_ROOM;
}

/** A call posted from the worker to the owner. */
export interface BridgeCall {
  /** Marks bridge messages among others on the same port. */
  wasmnetCall: true;
  op: CoreOp;
  args: unknown[];
}

/** Encodes a core answer: `[u32 json length][json][bytes]`, where a `data` field's bytes travel raw. */
export function encodeAnswer(value: unknown): Uint8Array {
  let data: Uint8Array | undefined;
  let json: string;
  if (value && typeof value === "object" && (value as { data?: unknown }).data instanceof Uint8Array) {
    data = (value as { data: Uint8Array }).data;
    json = JSON.stringify({ ...value, data: data.length, $bytes: true }, bigintReplacer);
  } else json = JSON.stringify({ v: value === undefined ? null : value }, bigintReplacer);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(4 + head.length + (data?.length ?? 0));
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  if (data) out.set(data, 4 + head.length);
  return out;
}

/** Decodes what {@link encodeAnswer} made. */
export function decodeAnswer(bytes: Uint8Array): unknown {
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  const obj = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + len)), bigintReviver);
  if (obj.$bytes) {
    const { $bytes: _, ...rest } = obj;
    return { ...rest, data: bytes.slice(4 + len, 4 + len + obj.data) };
  }
  return obj.v;
}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? { $big: value.toString() } : value;
}

function bigintReviver(_key: string, value: unknown): unknown {
  return value && typeof value === "object" && "$big" in value
    ? BigInt((value as { $big: string }).$big)
    : value;
}

/**
 * The worker side: an {@link Executor} that posts each call through `post` and blocks until the owner
 * answers in `shared`.
 */
export function workerExecutor(shared: SharedArrayBuffer, post: (call: BridgeCall) => void): Executor {
  const state = new Int32Array(shared, 0, 2);
  const bytes = new Uint8Array(shared);
  return (op, args) => {
    Atomics.store(state, 0, 0);
    post({ wasmnetCall: true, op, args });
    Atomics.wait(state, 0, 0);
    const len = Atomics.load(state, 1);
    return decodeAnswer(bytes.slice(HEADER, HEADER + len));
  };
}

/**
 * The owner side: runs each {@link BridgeCall} with `exec` (a local executor over a core) and answers in
 * `shared`. Calls arrive one at a time (the worker is blocked until answered).
 */
export async function answerCall(shared: SharedArrayBuffer, call: BridgeCall, exec: Executor): Promise<void> {
  const state = new Int32Array(shared, 0, 2);
  let answer: Uint8Array;
  try {
    answer = encodeAnswer(await exec(call.op, call.args));
  } catch (error) {
    console.error("wasmnet wasi bridge: core call failed:", error);
    answer = encodeAnswer({ errno: 29 }); // IO
  }
  if (answer.length > shared.byteLength - HEADER) answer = encodeAnswer({ errno: 42 }); // NOBUFS
  new Uint8Array(shared).set(answer, HEADER);
  Atomics.store(state, 1, answer.length);
  Atomics.store(state, 0, 1);
  Atomics.notify(state, 0);
}
