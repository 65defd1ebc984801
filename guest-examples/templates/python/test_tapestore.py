"""Unit tests of `tapestore`, the storage logic, under plain CPython:

    python3 test_tapestore.py

(The whole provider, built as a component, is checked by
`tapedeck provider test`.)"""

import json
import os
import struct
import tempfile
import unittest
import zlib

import tapestore
from tapestore import Frame, StoreError


def header(tape_id, created_at=1, envelope=None):
    return {"id": tape_id, "session_id": "s", "name": tape_id, "tags": [["k", "v"]],
            "created_at": created_at, "envelope": envelope}


def summary(frames, digest=None, seal=None, ended_at=99):
    return {"frame_count": len(frames), "byte_count": sum(len(f.payload) for f in frames),
            "ended_at": ended_at, "digest": digest, "seal": seal}


def frame(seq, terms=(), attributes=(), payload=None):
    return Frame(seq, 1000 + seq, seq % 2, payload if payload is not None else b"p%d" % seq, 0,
                 terms, attributes)


def same(a, b):
    return [(f.seq, f.timestamp, f.direction, f.payload, f.flags, f.terms, f.attributes)
            for f in a] == [(f.seq, f.timestamp, f.direction, f.payload, f.flags, f.terms,
                             f.attributes) for f in b]


class StoreTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.store = self.fresh()

    def tearDown(self):
        self.tmp.cleanup()

    def fresh(self):
        """A new instance over the same storage (the host may make one any time)."""
        return tapestore.Store(json.dumps({"root": self.root, "fsync": False}))

    def read_all(self, store, tape_id):
        return store.read_frames(tape_id, 0, 1_000_000, 1 << 40)

    def search(self, store, terms, text=None):
        needle = text.encode() if text is not None else None

        def matches(info):
            return store.has_terms(info, terms) and (
                needle is None or store.contains_text(info["header"]["id"], needle))

        page, _ = store.page(matches, None, 1000)
        return sorted(i["header"]["id"] for i in page)

    # -- verbatim round trips ----------------------------------------------

    def test_terms_and_attributes_come_back_verbatim_and_in_order(self):
        frames = [
            frame(0, ["method:initialize", "b", "a", "ä ü ✓", "x" * 256],
                  [("k", "v"), ("k", "again"), ("empty", ""), ("ünï", "🎉" * 100)]),
            frame(1),
            frame(2, ["a"], [("z", "1")], payload=b""),
            Frame(3, 2**64 - 1, 1, bytes(range(256)), 1, ["t\nnewline", "\x00"],
                  [("v", "x" * 4096)]),
        ]
        w = self.store.create(header("t"))
        self.assertEqual(w.append(frames[:2]), 2)
        self.assertEqual(w.append(frames[2:]), 4)
        for store in (self.store, self.fresh()):
            self.assertTrue(same(self.read_all(store, "t"), frames))
        self.store.save(header("saved"), frames, summary(frames), tapestore.COMPLETED)
        self.assertTrue(same(self.read_all(self.fresh(), "saved"), frames))

    def test_envelope_and_seal_come_back_verbatim(self):
        env = bytes(range(256)) * 64  # 16 KiB
        frames = [frame(0), frame(1)]
        w = self.store.create(header("a", envelope=env))
        w.append(frames)
        info = w.finish(summary(frames, "ab" * 32, b"\x00seal\xff"), tapestore.COMPLETED)
        self.assertEqual(info["seal"], b"\x00seal\xff")
        self.store.save(header("b", envelope=b""), frames, summary(frames, None, b""),
                        tapestore.CRASHED)
        self.store.create(header("c"))
        s = self.fresh()
        a, b, c = s.info("a"), s.info("b"), s.info("c")
        self.assertEqual((a["header"]["envelope"], a["seal"], a["digest"], a["state"]),
                         (env, b"\x00seal\xff", "ab" * 32, tapestore.FINISHED))
        self.assertEqual((b["header"]["envelope"], b["seal"], b["state"]),
                         (b"", b"", tapestore.CRASHED))
        self.assertEqual((c["header"]["envelope"], c["seal"]), (None, None))

    def test_a_seek_across_frames_with_extras_finds_the_right_frame(self):
        frames = [frame(i, ["t%d" % (i % 7)], [("i", str(i))]) for i in range(3000)]
        self.store.save(header("big"), frames, summary(frames), tapestore.COMPLETED)
        got = self.fresh().read_frames("big", 2050, 3, 1 << 20)
        self.assertTrue(same(got, frames[2050:2053]))

    # -- search by terms ---------------------------------------------------

    def test_terms_search_is_an_and_over_the_tapes_frames_by_exact_equality(self):
        self.store.save(header("one", 1), [frame(0, ["method:a"]), frame(1, ["tool:x"])],
                        summary([frame(0), frame(1)]), tapestore.COMPLETED)
        w = self.store.create(header("two", 2))
        w.append([frame(0, ["method:a", "tool:y"])])
        self.store.create(header("none", 3))
        s = self.fresh()
        self.assertEqual(self.search(s, []), ["none", "one", "two"])
        self.assertEqual(self.search(s, ["method:a"]), ["one", "two"])
        # Both terms, in different frames of the same tape.
        self.assertEqual(self.search(s, ["method:a", "tool:x"]), ["one"])
        self.assertEqual(self.search(s, ["tool:x", "tool:y"]), [])
        # Exact equality: no case folding, no prefixes, no trimming.
        for near in ["METHOD:a", "method:", "method", "method:a ", "tool:"]:
            self.assertEqual(self.search(s, [near]), [], near)
        self.assertEqual(self.search(s, ["method:a"], text="p0"), ["one", "two"])

    def test_payloads_are_not_parsed_for_search(self):
        p = b'{"jsonrpc":"2.0","method":"tools/call","id":1}'
        self.store.save(header("j"), [frame(0, payload=p)], summary([frame(0, payload=p)]),
                        tapestore.COMPLETED)
        self.assertEqual(self.search(self.store, ["method:tools/call"]), [])
        self.assertEqual(self.search(self.store, ["tools/call"]), [])

    def test_terms_of_frames_not_stored_do_not_match_and_resume_drops_them(self):
        w = self.store.create(header("t"))
        w.append([frame(0, ["a"])])
        path = os.path.join(self.root, "tapes", "t")
        # An append that wrote its index entries, then stopped mid-record.
        with open(os.path.join(path, "terms"), "ab") as f:
            f.write(tapestore.term_entry(1, "late") + b"\x01\x00")  # and a torn entry
        with open(os.path.join(path, "frames"), "ab") as f:
            f.write(tapestore.encode(frame(1, ["late"]))[:-3])
        s = self.fresh()
        self.assertEqual(self.search(s, ["late"]), [])
        self.assertEqual(s.info("t")["frame_count"], 1)
        w = s.resume("t")
        self.assertEqual(w.log.count, 1)
        self.assertEqual([t for _, t, _ in tapestore.read_terms(os.path.join(path, "terms"))],
                         ["a"])
        self.assertEqual(w.append([frame(1, ["other"])]), 2)
        s = self.fresh()
        self.assertEqual(self.search(s, ["late"]), [])
        self.assertEqual(self.search(s, ["other", "a"]), ["t"])

    # -- append-many -------------------------------------------------------

    def test_append_many_gives_one_independent_result_per_entry(self):
        a = self.store.create(header("a"))
        a.append([frame(0)])
        self.store.create(header("b"))
        self.store.save(header("done"), [frame(0)], summary([frame(0)]), tapestore.COMPLETED)
        s = self.fresh()
        results = s.append_many([
            ("a", [frame(0), frame(1, ["t:a"]), frame(2)]),  # a redelivered frame, then new ones
            ("b", [frame(0, ["t:b"])]),
            ("missing", [frame(0)]),
            ("done", [frame(1)]),
            ("b", [frame(1)]),  # the same id again
            ("a", []),
            ("bad/id", [frame(0)]),
        ])
        self.assertEqual(results[:2], [3, 1])
        kinds = [r.kind if isinstance(r, StoreError) else r for r in results[2:]]
        self.assertEqual(kinds, [tapestore.NOT_FOUND, tapestore.INVALID_INPUT,
                                 tapestore.INVALID_INPUT, tapestore.INVALID_INPUT,
                                 tapestore.INVALID_INPUT])
        s = self.fresh()
        self.assertEqual(len(self.read_all(s, "a")), 3)
        self.assertEqual(len(self.read_all(s, "b")), 1)
        self.assertEqual(len(self.read_all(s, "done")), 1)
        self.assertEqual(self.search(s, ["t:b"]), ["b"])

    def test_a_failing_entry_stores_nothing_of_itself(self):
        self.store.create(header("a"))
        self.store.create(header("b"))
        results = self.store.append_many([
            ("a", [frame(0), frame(2)]),  # not consecutive
            ("b", [frame(1, ["gap"])]),  # a gap
            ("a", [frame(0)]),  # repeated: fails although it alone would succeed
        ])
        self.assertTrue(all(isinstance(r, StoreError) and r.kind == tapestore.INVALID_INPUT
                            for r in results), results)
        s = self.fresh()
        self.assertEqual(s.info("a")["frame_count"], 0)
        self.assertEqual(s.info("b")["frame_count"], 0)
        self.assertEqual(self.search(s, ["gap"]), [])
        self.assertEqual(s.append_many([("a", [frame(0)]), ("b", [frame(0)])]), [1, 1])

    # -- finish ------------------------------------------------------------

    def test_finish_aborted_records_the_summary(self):
        frames = [frame(0), frame(1)]
        w = self.store.create(header("t"))
        w.append(frames)
        info = w.finish(summary(frames, "cd" * 32, b"seal", ended_at=1234), tapestore.ABORTED)
        self.assertEqual((info["state"], info["ended_at"], info["digest"], info["seal"]),
                         (tapestore.ABORTED, 1234, "cd" * 32, b"seal"))
        info = self.fresh().info("t")
        self.assertEqual((info["state"], info["frame_count"], info["ended_at"], info["digest"],
                          info["seal"]), (tapestore.ABORTED, 2, 1234, "cd" * 32, b"seal"))
        # The same finish again succeeds; a different one does not.
        self.assertRaises(StoreError, self.fresh().resume, "t")  # not recording any more
        self.assertEqual(w.finish(summary(frames, "cd" * 32, b"seal", ended_at=1234),
                                  tapestore.ABORTED)["state"], tapestore.ABORTED)
        with self.assertRaises(StoreError) as e:
            w.finish(summary(frames, "cd" * 32, b"other"), tapestore.ABORTED)
        self.assertEqual(e.exception.kind, tapestore.INVALID_INPUT)
        with self.assertRaises(StoreError) as e:
            w.finish(summary(frames, "cd" * 32, b"seal"), tapestore.COMPLETED)
        self.assertEqual(e.exception.kind, tapestore.INVALID_INPUT)

    def test_finish_aborted_checks_the_counts(self):
        w = self.store.create(header("t"))
        w.append([frame(0)])
        with self.assertRaises(StoreError) as e:
            w.finish(summary([frame(0), frame(1)]), tapestore.ABORTED)
        self.assertEqual(e.exception.kind, tapestore.INVALID_INPUT)
        self.assertEqual(self.store.info("t")["state"], tapestore.RECORDING)

    # -- tapes of the previous version -------------------------------------

    def write_v1_tape(self, tape_id, frames, end=None):
        """A tape as the previous version (contract 0.1) wrote it."""
        d = os.path.join(self.root, "tapes", tape_id)
        os.makedirs(d)
        records = []
        for f in frames:
            head = struct.pack("<QQBB", f.seq, f.timestamp, f.direction, f.flags)
            crc = zlib.crc32(f.payload, zlib.crc32(head))
            records.append(struct.pack("<IIQQBBxx", len(f.payload), crc, f.seq, f.timestamp,
                                       f.direction, f.flags) + f.payload)
        with open(os.path.join(d, "frames"), "wb") as out:
            out.write(b"".join(records))
        with open(os.path.join(d, "methods"), "w") as out:
            out.write('"initialize"\n')
        with open(os.path.join(d, "seek"), "wb") as out:
            out.write(struct.pack("<QQ", 0, 0))
        stored = {"format": 1, "stamp": 1, "header": {
            "id": tape_id, "session_id": "s", "name": "old", "tags": [], "created_at": 5}}
        with open(os.path.join(d, "header.json"), "w") as out:
            json.dump(stored, out)
        if end is not None:
            with open(os.path.join(d, "end.json"), "w") as out:
                json.dump(end, out)

    def test_tapes_of_the_previous_version_are_read_and_continued(self):
        old = [Frame(0, 10, 0, b'{"method":"initialize"}', 0), Frame(1, 11, 1, b"\xff", 1)]
        self.write_v1_tape("done", old, {"state": "finished", "frame_count": 2,
                                         "byte_count": 24, "ended_at": 12, "digest": "ee"})
        self.write_v1_tape("rec", old)
        s = self.fresh()
        self.assertTrue(same(self.read_all(s, "done"), old))
        info = s.info("done")
        self.assertEqual((info["state"], info["frame_count"], info["byte_count"], info["digest"],
                          info["seal"], info["header"]["envelope"]),
                         ("finished", 2, 24, "ee", None, None))
        # Old frames have no terms: the old method index is not a terms index.
        self.assertEqual(self.search(s, ["initialize"]), [])
        self.assertEqual(self.search(s, ["method:initialize"]), [])
        self.assertEqual(self.search(s, [], text="initialize"), ["done", "rec"])
        w = s.resume("rec")
        self.assertEqual(w.append([frame(2, ["new"], [("a", "b")])]), 3)
        w.finish(summary(old + [frame(2)], seal=b"s"), tapestore.COMPLETED)
        s = self.fresh()
        self.assertTrue(same(self.read_all(s, "rec"), old + [frame(2, ["new"], [("a", "b")])]))
        self.assertTrue(same(s.read_frames("rec", 1, 10, 1 << 20), old[1:] + [frame(2, ["new"],
                                                                                    [("a", "b")])]))
        self.assertEqual(self.search(s, ["new"]), ["rec"])
        self.assertEqual(s.info("rec")["seal"], b"s")


if __name__ == "__main__":
    unittest.main()
