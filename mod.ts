/**
 * wasmnet: real TCP (and more) for WebAssembly programs in a browser, over one WebSocket, under a policy.
 *
 * ```ts
 * import { Server } from "jsr:@wasmnet/server";
 * const server = Server.builder().host("0.0.0.0").port(9000).policyFile("policy.toml").build();
 * await server.listen();
 * ```
 *
 * Run as the main module, this file is the `wasmnet-server` command (`deno run --allow-net jsr:@wasmnet/server`).
 *
 * @module
 */

export {
  handleWsUpgrade,
  type ListenOptions,
  parseHostPort,
  type RunningServer,
  Server,
  ServerBuilder,
  type ServerOptions,
  type UpgradeOptions,
} from "./src/server.ts";
export { Session, type SessionOptions, type WebSocketPort } from "./src/frontends/wasmnet/session.ts";
export {
  decideBind,
  decideResolved,
  decideTarget,
  type Decision,
  loadPolicyFile,
  Policy,
  type PolicyConfig,
  type PolicyConfigInput,
  PolicyError,
} from "./src/policy/mod.ts";
export { type ErrorCode, eventForCode, WasmnetError } from "./src/core/errors.ts";
export { type DecisionLog, type DecisionRecord, jsonLineLog, silentLog } from "./src/core/log.ts";
export type { Resolver } from "./src/core/sockets/resolver.ts";
/**
 * Limits shared by several servers (docs/deployment.md): `Server.builder().cluster(await openCluster(
 * policy.config.cluster, { workers: 1 }))` counts the caps in the Redis that `[cluster] redis` names.
 */
export {
  type ClusterSetup,
  type LimitStore,
  MemoryStore,
  openCluster,
  RedisStore,
  SharedLimits,
  StoreError,
} from "./src/cluster/mod.ts";
export * as protocol from "@wasmnet/protocol";
/** Token helpers, so an operator's own backend can mint the HS256 tokens `[auth]` checks. */
export { importHs256Key, signHs256, TOKEN_PROTOCOL_PREFIX } from "./src/auth/mod.ts";

import { main } from "./cli.ts";
if (import.meta.main) Deno.exit(await main(Deno.args));
