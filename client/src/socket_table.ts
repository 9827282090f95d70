/**
 * The client's table of socket ids: what each id is (TCP, listener, UDP, a lookup), its state, what
 * arrived before anyone read it, and the ids closed with bytes still unread (kept, bounded, so a late
 * `onData` still gets them). `WasmnetClient` (client.ts) is the public API over it and the only writer.
 *
 * @module
 */

import type { ClientFlow } from "./flow.ts";
import type { SocketSink } from "./socket.ts";
import type { AcceptCallback, CloseCallback, DataCallback, DataFromCallback } from "./types.ts";
import type { WasmnetError } from "./errors.ts";
import { type Event, SERVER_ID_BASE, type SocketId } from "./wire.ts";

/** What an id names. */
export type Kind = "tcp" | "listener" | "udp" | "resolve";

/** A request waiting for its answer (`connected`, `listening`, …). */
export interface Pending {
  resolve(event: Event): void;
  reject(error: WasmnetError): void;
  what: string;
}

/** One id and everything the client keeps about it. */
export interface Entry {
  id: SocketId;
  kind: Kind;
  state: "opening" | "open" | "closing" | "closed";
  /** The server confirmed the socket (connected, listening, udp_bound, accepted); until then an error releases it. */
  established: boolean;
  pending?: Pending;
  /** Bytes that arrived before a data handler existed. */
  held: Uint8Array[];
  heldFrom: [Uint8Array, string, number][];
  heldAccepts: [SocketId, string][];
  flushScheduled: boolean;
  onData?: DataCallback;
  onDataFrom?: DataFromCallback;
  onAccept?: AcceptCallback;
  onClose: CloseCallback[];
  closeWaiters: (() => void)[];
  /** Error reported on an established socket; handed to close callbacks when `closed` follows. */
  error?: WasmnetError;
  /** Stream socket consuming this id's data instead of callbacks. */
  sink?: SocketSink;
  /** v2 credit of a TCP socket (undefined without flow control). */
  flow?: ClientFlow;
  /** `shutdown` was asked for: no more sends. */
  writeShut?: boolean;
  /** When the connect went out (ms), for the session's round-trip estimate. */
  connectSentAt?: number;
  /** v2: the grant from the initial window to ours went out. */
  openingGranted?: boolean;
  /** ... and the request went out (after any bytes that were waiting for credit). */
  shutdownSent?: boolean;
}

/** Sockets closed while still holding bytes nobody read, kept so a late `onData` still gets them. */
export const MAX_LEFTOVERS = 256;

/** A fresh entry for `id`, opening. */
export function newEntry(id: SocketId, kind: Kind): Entry {
  return {
    id,
    kind,
    state: "opening",
    held: [],
    heldFrom: [],
    heldAccepts: [],
    flushScheduled: false,
    established: false,
    onClose: [],
    closeWaiters: [],
  };
}

/** The ids of one client: open ones, and closed ones with unread bytes ({@link MAX_LEFTOVERS} at most). */
export class ClientSocketTable {
  readonly #open = new Map<SocketId, Entry>();
  readonly #unread = new Map<SocketId, Entry>();
  #nextId = 1;

  /** A free id below `SERVER_ID_BASE` (the server's ids start there), not open and not kept unread. */
  allocId(): SocketId {
    let id = this.#nextId;
    while (this.#open.has(id) || this.#unread.has(id)) {
      id = id + 1 >= SERVER_ID_BASE ? 1 : id + 1;
    }
    this.#nextId = id + 1 >= SERVER_ID_BASE ? 1 : id + 1;
    return id;
  }

  /** Adds an open entry. */
  add(entry: Entry): void {
    this.#open.set(entry.id, entry);
  }

  /** The open entry of `id`. */
  get(id: SocketId): Entry | undefined {
    return this.#open.get(id);
  }

  /** The entry of `id`, open or closed with unread bytes. */
  find(id: SocketId): Entry | undefined {
    return this.#open.get(id) ?? this.#unread.get(id);
  }

  /** The closed entry of `id` whose bytes nobody read yet. */
  unread(id: SocketId): Entry | undefined {
    return this.#unread.get(id);
  }

  /** Removes an open entry. */
  delete(id: SocketId): boolean {
    return this.#open.delete(id);
  }

  /** Keeps a closed `entry` for a late reader; the oldest goes past {@link MAX_LEFTOVERS}. */
  keepUnread(entry: Entry): void {
    this.#unread.set(entry.id, entry);
    if (this.#unread.size > MAX_LEFTOVERS) this.#unread.delete(this.#unread.keys().next().value!);
  }

  /** Everything of a closed entry was read. */
  forgetUnread(id: SocketId): void {
    this.#unread.delete(id);
  }

  /** The open entries. */
  values(): IterableIterator<Entry> {
    return this.#open.values();
  }

  /** Removes and returns every open entry (the client is gone). */
  drain(): Entry[] {
    const entries = [...this.#open.values()];
    this.#open.clear();
    return entries;
  }
}
