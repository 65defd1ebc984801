;; The table-growth bomb: a hostile provider, as a core module in text form.
;;
;; Rust has no stable way to emit `table.grow` (no table intrinsics, and
;; `asm!` is unstable on wasm32), so this one attacker is written in
;; WebAssembly text. `tests/build.rs` parses it with the `wat` crate, embeds
;; the `provider` world of `wit/` with `wit-component`, and encodes it as a
;; component: built from source like every other test guest.
;;
;; `init` succeeds; `get("table-bomb")` grows a function table 65,536
;; elements at a time until the host refuses (the host's limiter traps);
;; `stats` answers zeros, so the tests can check the next call works; every
;; other call answers `internal`.
;;
;; Canonical ABI notes: a `result<T, storage-error>` is returned through a
;; pointer to a return area: discriminant byte at 0, payload at 4 (or 8 when
;; T contains a 64-bit field). A `storage-error` is a discriminant byte
;; (`not-found` = 0, `internal` = 6) and a string (pointer, length) at +4.
(module
  (memory (export "memory") 1)
  (table $t 1 funcref)

  ;; Static data (offsets below 1024).
  (data (i32.const 16) "table-bomb")       ;; 10 bytes, provider name and attack id
  (data (i32.const 32) "0.1.0")            ;; 5 bytes
  (data (i32.const 48) "not a tape")       ;; 10 bytes
  (data (i32.const 64) "the table-bomb provider only attacks") ;; 36 bytes
  (data (i32.const 112) "table growth returned -1") ;; 24 bytes

  ;; Return area: 64 bytes at 1024. Stats answers from a zeroed area at 2048.
  (global $ret i32 (i32.const 1024))
  (global $zeros i32 (i32.const 2048))
  ;; Bump allocator for what the host lowers into this module (strings, the
  ;; arguments of `save`, `list` and `search`); never freed.
  (global $bump (mut i32) (i32.const 4096))

  (func $realloc (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
    (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
        (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (local.set $end (i32.add (local.get $p) (local.get $new_size)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add
                  (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16))
                  (i32.const 1)))
              (i32.const -1))
          (then unreachable))))
    (if (local.get $old)
      (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (global.set $bump (local.get $end))
    (local.get $p))

  ;; Writes `err(<case>(<string>))` with the payload at `$off`; returns the area.
  (func $err (param $off i32) (param $case i32) (param $ptr i32) (param $len i32)
    (result i32)
    (i32.store8 (global.get $ret) (i32.const 1))
    (i32.store8 (i32.add (global.get $ret) (local.get $off)) (local.get $case))
    (i32.store (i32.add (global.get $ret) (i32.add (local.get $off) (i32.const 4)))
      (local.get $ptr))
    (i32.store (i32.add (global.get $ret) (i32.add (local.get $off) (i32.const 8)))
      (local.get $len))
    (global.get $ret))

  ;; `internal("the table-bomb provider only attacks")`, payload at `$off`.
  (func $internal (param $off i32) (result i32)
    (call $err (local.get $off) (i32.const 6) (i32.const 64) (i32.const 36)))

  ;; Is the string at (`$ptr`, `$len`) "table-bomb"?
  (func $is_bomb (param $ptr i32) (param $len i32) (result i32)
    (if (i32.ne (local.get $len) (i32.const 10)) (then (return (i32.const 0))))
    (i32.and
      (i64.eq (i64.load (local.get $ptr)) (i64.load (i32.const 16)))
      (i32.eq (i32.load16_u (i32.add (local.get $ptr) (i32.const 8)))
              (i32.load16_u (i32.const 24)))))

  ;; init: ok(provider-info { name: "table-bomb", version: "0.1.0", capabilities: {} })
  (func (export "tapedeck:storage/tape-storage@0.2.0#init")
    (param i32 i32) (result i32)
    (i32.store8 (global.get $ret) (i32.const 0))
    (i32.store offset=4 (global.get $ret) (i32.const 16))
    (i32.store offset=8 (global.get $ret) (i32.const 10))
    (i32.store offset=12 (global.get $ret) (i32.const 32))
    (i32.store offset=16 (global.get $ret) (i32.const 5))
    (i32.store8 offset=20 (global.get $ret) (i32.const 0))
    (global.get $ret))

  ;; get: the attack for "table-bomb", `not-found` for anything else.
  ;; append-many: `internal` for every entry, in a list allocated here. An
  ;; element of `list<result<u64, storage-error>>` is 24 bytes: discriminant
  ;; at 0, the error's discriminant at 8 and its string at 12.
  (func (export "tapedeck:storage/tape-storage@0.2.0#append-many")
    (param $ptr i32) (param $n i32) (result i32)
    (local $list i32) (local $i i32) (local $e i32)
    (local.set $list
      (call $realloc (i32.const 0) (i32.const 0) (i32.const 8)
        (i32.mul (local.get $n) (i32.const 24))))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $e (i32.add (local.get $list) (i32.mul (local.get $i) (i32.const 24))))
        (i32.store8 (local.get $e) (i32.const 1))
        (i32.store8 offset=8 (local.get $e) (i32.const 6))
        (i32.store offset=12 (local.get $e) (i32.const 64))
        (i32.store offset=16 (local.get $e) (i32.const 36))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i32.store (global.get $ret) (local.get $list))
    (i32.store offset=4 (global.get $ret) (local.get $n))
    (global.get $ret))

  (func (export "tapedeck:storage/tape-storage@0.2.0#get")
    (param $ptr i32) (param $len i32) (result i32)
    (if (call $is_bomb (local.get $ptr) (local.get $len))
      (then
        ;; Grow until the host says no. Its limiter traps; should a grow
        ;; ever return -1 instead, answer `internal` saying so.
        (loop $grow
          (br_if $grow
            (i32.ne (table.grow $t (ref.null func) (i32.const 65536)) (i32.const -1))))
        (return (call $err (i32.const 8) (i32.const 6) (i32.const 112) (i32.const 24)))))
    (call $err (i32.const 8) (i32.const 0) (i32.const 48) (i32.const 10)))

  ;; stats: ok(all zeros).
  (func (export "tapedeck:storage/tape-storage@0.2.0#stats") (result i32)
    (global.get $zeros))

  (func (export "tapedeck:storage/tape-storage@0.2.0#create")
    ;; The header, flattened: id, session-id, name, tags (pointer and length
    ;; each), created-at, and the envelope (discriminant, pointer, length).
    (param i32 i32 i32 i32 i32 i32 i32 i32 i64 i32 i32 i32) (result i32)
    (call $internal (i32.const 4)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#resume")
    (param i32 i32) (result i32)
    (call $internal (i32.const 4)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#save")
    (param i32) (result i32)
    (call $internal (i32.const 8)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#read-frames")
    (param i32 i32 i64 i32 i64) (result i32)
    (call $internal (i32.const 4)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#delete")
    (param i32 i32) (result i32)
    (call $internal (i32.const 4)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#list")
    (param i32) (result i32)
    (call $internal (i32.const 4)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#search")
    (param i32) (result i32)
    (call $internal (i32.const 4)))

  ;; The writer resource: never created (create fails), but exported.
  (func (export "tapedeck:storage/tape-storage@0.2.0#[method]tape-writer.next-seq")
    (param i32) (result i64)
    (i64.const 0))
  (func (export "tapedeck:storage/tape-storage@0.2.0#[method]tape-writer.append")
    (param i32 i32 i32) (result i32)
    (call $internal (i32.const 8)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#[method]tape-writer.finish")
    ;; The writer, the summary (three counts, the digest and the seal as
    ;; discriminant, pointer, length), the reason.
    (param i32 i64 i64 i64 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (call $internal (i32.const 8)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#[method]tape-writer.abort")
    (param i32 i32 i32) (result i32)
    (call $internal (i32.const 4)))
  (func (export "tapedeck:storage/tape-storage@0.2.0#[dtor]tape-writer")
    (param i32))
)
