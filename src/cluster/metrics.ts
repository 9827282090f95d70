/**
 * The shared store's health in `/metrics`: whether it answers, how many outages and failed calls there were,
 * and how many sessions this replica holds leases for. Registered on the server's prom-client registry.
 *
 * @module
 */

import { Counter, Gauge, type Registry } from "prom-client";
import type { SharedLimits } from "./shared_limits.ts";

/** Adds the `wasmnet_cluster_*` metrics of `shared` to `registry`. */
export function registerClusterMetrics(registry: Registry, shared: SharedLimits): void {
  const registers = [registry];
  new Gauge({
    name: "wasmnet_cluster_store_up",
    help: "1 while the shared limits store (Redis) answers, 0 during an outage.",
    registers,
    collect() {
      this.set(shared.stats().up ? 1 : 0);
    },
  });
  new Counter({
    name: "wasmnet_cluster_store_outages_total",
    help: "Outages of the shared limits store (transitions from up to down).",
    registers,
    collect() {
      this.reset();
      this.inc(shared.stats().outages);
    },
  });
  new Counter({
    name: "wasmnet_cluster_store_failures_total",
    help: "Calls to the shared limits store that failed (unreachable, timed out, or a malformed reply).",
    registers,
    collect() {
      this.reset();
      this.inc(shared.stats().failures);
    },
  });
  new Gauge({
    name: "wasmnet_cluster_leases_held",
    help: "Sessions this replica holds leases for in the shared store.",
    registers,
    collect() {
      this.set(shared.stats().held);
    },
  });
}
