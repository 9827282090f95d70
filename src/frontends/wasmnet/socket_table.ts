/**
 * The socket table of one session: ids to entries, with the counts the limits need. Only the session
 * that owns it writes to it.
 *
 * @module
 */

/** What every entry has: its kind decides which limits count it. */
export interface TableEntry {
  readonly kind: "tcp" | "listener" | "udp";
  /** True while an outbound connect (or TLS handshake) is in flight. */
  connecting: boolean;
}

/** A map from socket id to entry, counting sockets, listeners and connects in flight. */
export class SocketTable<E extends TableEntry> {
  readonly #entries = new Map<number, E>();

  /** Number of entries (sockets plus listeners). */
  get size(): number {
    return this.#entries.size;
  }

  /** Number of listeners. */
  get listeners(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.kind === "listener") n++;
    return n;
  }

  /** Number of connects in flight. */
  get connecting(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.connecting) n++;
    return n;
  }

  /** The entry under `id`, if any. */
  get(id: number): E | undefined {
    return this.#entries.get(id);
  }

  /** True if `id` is in use. */
  has(id: number): boolean {
    return this.#entries.has(id);
  }

  /** Adds an entry; the caller has checked the id is free. */
  add(id: number, entry: E): void {
    this.#entries.set(id, entry);
  }

  /** Removes `id` only if it still maps to `entry` (a late callback must not remove a reused id). */
  remove(id: number, entry: E): boolean {
    if (this.#entries.get(id) !== entry) return false;
    this.#entries.delete(id);
    return true;
  }

  /** Removes and returns every entry (session shutdown). */
  drain(): E[] {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    return all;
  }
}
