/**
 * A scripted stand-in for `WasmnetClient` for the core's unit tests: connects, binds and data are
 * driven by the test.
 *
 * @module
 */
import type { CoreClient } from "./core.ts";

/** What the fake recorded and lets a test drive. */
export class FakeClient implements CoreClient {
  sent: [number, Uint8Array][] = [];
  closed: number[] = [];
  connects: { host: string; port: number; resolve: (id: number) => void; reject: (e: unknown) => void }[] =
    [];
  dataHandlers = new Map<number, (data: Uint8Array) => void>();
  closeHandlers = new Map<number, (error?: { kind: string; code?: string }) => void>();
  acceptHandlers = new Map<number, (connId: number, remote: string) => void>();
  bindResult: { id: number; port: number } | Error = { id: 100, port: 4321 };
  names: Record<string, string[]> = {};
  udpOpens: { host: string; port: number; resolve: (v: { id: number; port: number }) => void }[] = [];
  sentTo: [number, string, number, Uint8Array][] = [];
  dataFromHandlers = new Map<number, (data: Uint8Array, addr: string, port: number) => void>();

  connectUdp(host: string, port: number): Promise<{ id: number; port: number }> {
    return new Promise((resolve) => this.udpOpens.push({ host, port, resolve }));
  }
  sendTo(id: number, addr: string, port: number, data: Uint8Array): boolean {
    this.sentTo.push([id, addr, port, data]);
    return true;
  }
  onDataFrom(id: number, cb: (data: Uint8Array, addr: string, port: number) => void): void {
    this.dataFromHandlers.set(id, cb);
  }

  connect(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => this.connects.push({ host, port, resolve, reject }));
  }
  bind(_addr: string, _port: number): Promise<{ id: number; port: number }> {
    return this.bindResult instanceof Error
      ? Promise.reject(this.bindResult)
      : Promise.resolve(this.bindResult);
  }
  listen(): void {}
  onAccept(id: number, cb: (connId: number, remote: string) => void): void {
    this.acceptHandlers.set(id, cb);
  }
  onData(id: number, cb: (data: Uint8Array) => void): void {
    this.dataHandlers.set(id, cb);
  }
  onClose(id: number, cb: (error?: { kind: string; code?: string }) => void): void {
    this.closeHandlers.set(id, cb);
  }
  send(id: number, data: Uint8Array): boolean {
    this.sent.push([id, data]);
    return true;
  }
  close(id: number): Promise<void> {
    this.closed.push(id);
    return Promise.resolve();
  }
  resolve(name: string): Promise<string[]> {
    const addrs = this.names[name];
    return addrs ? Promise.resolve(addrs) : Promise.reject({ kind: "failed", code: "RESOLVE_FAILED" });
  }
}
