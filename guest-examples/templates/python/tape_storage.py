"""The `tape-writer` resource (componentize-py looks for resource classes in
the module named after their interface)."""

from wit_world.exports import tape_storage

import convert


class TapeWriter(tape_storage.TapeWriter):
    def __init__(self, writer):
        self.writer = writer

    def next_seq(self):
        return self.writer.log.count

    def append(self, frames):
        return convert.guarded(
            lambda: self.writer.append([convert.frame_in(f) for f in frames]))

    def finish(self, summary, reason):
        return convert.guarded(lambda: convert.info_out(
            self.writer.finish(convert.summary_in(summary), convert.REASONS[reason])))

    def abort(self, reason):
        return convert.guarded(lambda: self.writer.abort(reason))
