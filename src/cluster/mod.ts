/**
 * Past one process: limits shared by every replica through Redis (`[cluster]`), the replica's name, and the
 * local share of each cap when there is no store. See docs/deployment.md.
 *
 * @module
 */

import type { ClusterConfig, PolicyConfig } from "../policy/mod.ts";
import { RedisStore } from "./redis_store.ts";
import { type ClusterNotice, SharedLimits } from "./shared_limits.ts";
import type { LimitStore } from "./store.ts";

export {
  type ClusterNotice,
  SharedLimits,
  type SharedLimitsStats,
  type StoreFailureMode,
} from "./shared_limits.ts";
export { type Counter, type LimitStore, MemoryStore, StoreError } from "./store.ts";
export { RedisStore, type RedisStoreOptions } from "./redis_store.ts";

/** How this process counts limits: what admission and the bandwidth limiter are given. */
export interface ClusterSetup {
  /** This replica's name (`[cluster] name`, else host name, plus `-w<index>` under `--workers`). */
  replica: string;
  /** The shared store, when `[cluster] redis` is set. */
  shared?: SharedLimits;
  /** Divides each cap when counting locally (the worker count without a store; 1 otherwise). */
  localShare: number;
}

/** Where this process sits in a deployment. */
export interface ReplicaPlace {
  /** 0-based worker index under `--workers`, or undefined for a single process. */
  workerIndex?: number;
  /** Worker processes on this port (1 for a single process). */
  workers: number;
}

/** The replica name: `[cluster] name`, else the host name; `-w<index>` appended under `--workers`. */
export function replicaName(cluster: ClusterConfig, place: ReplicaPlace): string {
  const base = cluster.name !== "" ? cluster.name : hostName();
  return place.workerIndex === undefined ? base : `${base}-w${place.workerIndex}`;
}

/** The host name as a replica name (`wasmnet` when it cannot be read, e.g. without `--allow-sys`). */
function hostName(): string {
  try {
    return Deno.hostname().replace(/[^\w.-]/g, "_").slice(0, 64) || "wasmnet";
  } catch {
    return "wasmnet";
  }
}

/**
 * Opens what `[cluster]` asks for: a Redis store (password from the variable `password_env` names) with its
 * renewals started, or nothing. `notice` hears of outages (the CLI logs them as JSON lines on stderr).
 * Throws when `password_env` names a variable that is not set.
 */
export async function openCluster(
  cluster: ClusterConfig,
  place: ReplicaPlace,
  notice?: (notice: ClusterNotice & { replica: string }) => void,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<ClusterSetup> {
  const replica = replicaName(cluster, place);
  if (cluster.redis === "") return { replica, localShare: Math.max(1, place.workers) };
  let password: string | undefined;
  if (cluster.password_env !== "") {
    password = env(cluster.password_env);
    if (password === undefined || password === "") {
      throw new Error(`cluster.password_env names ${cluster.password_env}, which is not set`);
    }
  }
  let ca: string | undefined;
  if (cluster.tls_ca_file !== "") {
    try {
      ca = await Deno.readTextFile(cluster.tls_ca_file);
    } catch (err) {
      throw new Error(`cluster.tls_ca_file ${cluster.tls_ca_file}: ${(err as Error).message}`);
    }
  }
  const ready: { shared?: SharedLimits } = {};
  const store: LimitStore = await RedisStore.open({
    url: cluster.redis,
    password,
    ca,
    prefix: cluster.key_prefix,
    // A reconnect is the moment to re-create the leases and end the outage, without waiting for the timer.
    onReady: () => void ready.shared?.tick(),
    // A lost connection is an outage now (admission and /readyz), not at the next renewal.
    onError: (err) => ready.shared?.reportFailure(err),
  });
  const shared = ready.shared = new SharedLimits(store, {
    leaseMs: cluster.lease_secs * 1000,
    onFailure: cluster.on_store_failure,
    notice: (n) => notice?.({ ...n, replica }),
  });
  shared.start();
  return { replica, shared, localShare: 1 };
}

/**
 * The start-up line about how caps are counted: shared through Redis, or this process's share of each cap
 * (so N workers without a store never silently allow N times the cap).
 */
export function describeShares(config: PolicyConfig, setup: ClusterSetup): string {
  const { max_sessions, max_sessions_per_ip } = config.server;
  const perToken = config.auth.max_sessions_per_token;
  const caps = (share: number) => {
    const parts = [
      `max_sessions ${Math.ceil(max_sessions / share)}`,
      `max_sessions_per_ip ${Math.ceil(max_sessions_per_ip / share)}`,
    ];
    if (perToken > 0) parts.push(`max_sessions_per_token ${Math.ceil(perToken / share)}`);
    return parts.join(", ");
  };
  const c = config.cluster;
  if (setup.shared !== undefined) {
    return `shared through Redis as replica ${setup.replica} (lease ${c.lease_secs} s); if Redis fails: ${
      c.on_store_failure === "closed"
        ? "new sessions get 503"
        : `each of ${c.replicas} replicas enforces ${caps(c.replicas)}`
    }`;
  }
  if (setup.localShare > 1) {
    return `counted per worker without [cluster] redis: each of ${setup.localShare} workers enforces ${
      caps(setup.localShare)
    }`;
  }
  return `counted in this process (${caps(1)})`;
}
