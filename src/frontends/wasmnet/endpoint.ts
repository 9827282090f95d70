/**
 * wasmnet's own protocol as an endpoint: the server hands it every WebSocket upgrade no other endpoint
 * claims, and it runs a {@link Session} on it (protocol v2 when the client offers `wasmnet.v2`).
 *
 * @module
 */

import { type Endpoint, trackedHandlers } from "../endpoint.ts";
import { offeredProtocols, upgradeToPort } from "../../core/websocket.ts";
import { PROTOCOL_V2 } from "./flow.ts";
import { Session } from "./session.ts";

/** wasmnet's own protocol: served at every path no other endpoint claims. */
export const wasmnetEndpoint: Endpoint = {
  name: "wasmnet",
  matches: () => true,
  upgrade(request, _url, ctx) {
    // Protocol v2 (flow control) when the client offers it; everyone else gets the original, unchanged.
    const v2 = offeredProtocols(request).includes(PROTOCOL_V2);
    return upgradeToPort(request, (port) => {
      const session = new Session(port, {
        policy: ctx.policy,
        serverHost: ctx.serverHost,
        clientIp: ctx.clientIp,
        core: ctx.core.session({ frontend: "wasmnet", policy: ctx.policy, clientIp: ctx.clientIp }),
        flowControl: v2,
        reuseReadBuffers: true, // Deno's WebSocket.send copies before returning (issue 5, measured)
      });
      return trackedHandlers(ctx, session);
    }, v2 ? { protocol: PROTOCOL_V2 } : {});
  },
};
