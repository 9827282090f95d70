/**
 * Native allocator warm-up: one call at server start that keeps the data path off fresh pages.
 *
 * Deno copies every outgoing WebSocket message into a native buffer allocated with the system allocator
 * (glibc's `malloc` on Linux) and frees it once the frame is written. glibc returns freed memory at the top
 * of its heap to the kernel as soon as more than 128 KiB is free there (and maps chunks over 128 KiB
 * separately), so a relay streaming 100-250 KiB messages keeps giving pages back and faulting fresh ones
 * in: one page fault per 4 KiB relayed, measured at 40-60% of the server's CPU in a bulk download
 * (docs/benchmarks.md, "Where the time goes").
 *
 * glibc raises both thresholds the first time it frees a separately mapped chunk: to that chunk's size,
 * and twice that for giving memory back. A structured clone of an 8 MiB array makes V8 serialize it into a
 * native buffer that is allocated and freed right away, which is such a chunk. From then on, messages up
 * to 8 MiB reuse heap memory and the heap is only trimmed past 16 MiB free. The cost is one 8 MiB copy at
 * start; on other allocators it does nothing.
 *
 * @module
 */

let warmed = false;

/** Size of the chunk that raises glibc's thresholds (their cap is 32 MiB on 64-bit). */
export const WARM_UP_BYTES = 8 * 1024 * 1024;

/** Raises glibc's dynamic mmap and trim thresholds, once per process (see the module doc). */
export function warmAllocator(): void {
  if (warmed) return;
  warmed = true;
  structuredClone(new Uint8Array(WARM_UP_BYTES));
}
