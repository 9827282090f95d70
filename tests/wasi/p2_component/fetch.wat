;; The core module of the wasip2 test component: the canonical-ABI form of the calls a wasip2 program
;; makes to open a TCP connection and exchange bytes (create-tcp-socket, start-connect, subscribe,
;; pollable.block, finish-connect, blocking-write-and-flush, blocking-read until `closed`).
;; Any unexpected error traps (`unreachable`), so the host sees a failure instead of a wrong answer.
(module
  (import "wasi:sockets/instance-network@0.2.10" "instance-network" (func $instance_network (result i32)))
  (import "wasi:sockets/tcp-create-socket@0.2.10" "create-tcp-socket" (func $create (param i32 i32)))
  ;; self, network, variant tag, 11 flattened payload words, retptr
  (import "wasi:sockets/tcp@0.2.10" "[method]tcp-socket.start-connect"
    (func $start_connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.10" "[method]tcp-socket.finish-connect" (func $finish_connect (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.10" "[method]tcp-socket.subscribe" (func $subscribe (param i32) (result i32)))
  (import "wasi:sockets/tcp@0.2.10" "[resource-drop]tcp-socket" (func $drop_socket (param i32)))
  (import "wasi:io/poll@0.2.10" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.10" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (import "wasi:io/streams@0.2.10" "[method]output-stream.blocking-write-and-flush"
    (func $write_flush (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.10" "[method]input-stream.blocking-read" (func $read (param i32 i64 i32)))
  (import "wasi:io/streams@0.2.10" "[resource-drop]input-stream" (func $drop_input (param i32)))
  (import "wasi:io/streams@0.2.10" "[resource-drop]output-stream" (func $drop_output (param i32)))
  (import "wasi:sockets/network@0.2.10" "[resource-drop]network" (func $drop_network (param i32)))

  (memory (export "memory") 40)
  ;; bump allocator for cabi_realloc, from 64 KiB up; the answer is gathered from 2 MiB up
  (global $heap (mut i32) (i32.const 65536))
  (global $out_start i32 (i32.const 2097152))
  (global $out (mut i32) (i32.const 2097152))
  (global $ret i32 (i32.const 1024)) ;; 16-byte scratch for results
  (global $answer i32 (i32.const 1040)) ;; (ptr, len) of the returned list

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    ;; align up
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (global.get $out_start)) (then unreachable))
    (if (local.get $old_size) (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (local.get $p))

  (func $ok (result i32) ;; result discriminant at $ret: 0 = ok
    (i32.eqz (i32.load8_u (global.get $ret))))

  (func (export "fetch") (param $port i32) (param $req i32) (param $req_len i32) (result i32)
    (local $net i32) (local $sock i32) (local $poll i32) (local $in i32) (local $outs i32)
    (local $chunk i32) (local $len i32)
    (global.set $out (global.get $out_start))
    (local.set $net (call $instance_network))
    ;; create-tcp-socket(ipv4)
    (call $create (i32.const 0) (global.get $ret))
    (if (i32.eqz (call $ok)) (then unreachable))
    (local.set $sock (i32.load offset=4 (global.get $ret)))
    ;; start-connect(network, ipv4 { port, address: (127, 0, 0, 1) })
    (call $start_connect (local.get $sock) (local.get $net)
      (i32.const 0) (local.get $port) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (global.get $ret))
    (if (i32.eqz (call $ok)) (then unreachable))
    ;; loop: subscribe, block, finish-connect until it is not would-block
    (block $connected
      (loop $wait
        (local.set $poll (call $subscribe (local.get $sock)))
        (call $block (local.get $poll))
        (call $drop_pollable (local.get $poll))
        (call $finish_connect (local.get $sock) (global.get $ret))
        (br_if $connected (call $ok))
        ;; error-code 8 = would-block: wait again; anything else traps
        (if (i32.ne (i32.load8_u offset=4 (global.get $ret)) (i32.const 8)) (then unreachable))
        (br $wait)))
    (local.set $in (i32.load offset=4 (global.get $ret)))
    (local.set $outs (i32.load offset=8 (global.get $ret)))
    ;; blocking-write-and-flush(request)
    (call $write_flush (local.get $outs) (local.get $req) (local.get $req_len) (global.get $ret))
    (if (i32.eqz (call $ok)) (then unreachable))
    ;; blocking-read(4096) until stream-error::closed
    (block $done
      (loop $more
        (call $read (local.get $in) (i64.const 4096) (global.get $ret))
        (if (call $ok)
          (then
            (local.set $chunk (i32.load offset=4 (global.get $ret)))
            (local.set $len (i32.load offset=8 (global.get $ret)))
            (memory.copy (global.get $out) (local.get $chunk) (local.get $len))
            (global.set $out (i32.add (global.get $out) (local.get $len)))
            (br $more)))
        ;; err: stream-error tag at offset 4: 1 = closed (end of stream), 0 = last-operation-failed
        (br_if $done (i32.eq (i32.load8_u offset=4 (global.get $ret)) (i32.const 1)))
        unreachable))
    (call $drop_input (local.get $in))
    (call $drop_output (local.get $outs))
    (call $drop_socket (local.get $sock))
    (call $drop_network (local.get $net))
    (i32.store (global.get $answer) (global.get $out_start))
    (i32.store offset=4 (global.get $answer) (i32.sub (global.get $out) (global.get $out_start)))
    (global.get $answer))
)
