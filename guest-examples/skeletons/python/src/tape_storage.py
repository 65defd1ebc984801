"""The `tape-writer` resource (componentize-py looks for a resource's class
in the module named after its interface)."""

from wit_world.exports import tape_storage

import app


class TapeWriter(tape_storage.TapeWriter):
    def __init__(self, writer):
        self.writer = writer

    def next_seq(self):
        return self.writer.next_seq

    def append(self, frames):
        return app.guarded(lambda: self.writer.append(frames))

    def finish(self, summary, reason):
        return app.guarded(lambda: self.writer.finish(app.the_store(), summary, reason))

    def abort(self, reason):
        return app.guarded(lambda: self.writer.abort())
