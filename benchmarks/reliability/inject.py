"""Runs a module as `python -m MODULE ARGS` and kills the process (SIGKILL, no cleanup) at
its N-th write into a watched folder: a kill placed exactly where a file is half written or
about to be renamed, the instants a kill at a random time rarely hits.

    python -m benchmarks.reliability.inject --watch RUN_DIR --kill-at N --log EVENTS \\
        -- apps.adding train --run-dir RUN_DIR ...     (a module, or a script.py)

Write events, counted when their path lies under a watched folder: a file opened for
writing by Python (`open`, `pathlib`, `zipfile`: the process dies after writing half of
the first chunk, leaving a torn file), an HDF5 file created through h5py (dies once the
file exists, unfinished), a `tf.io.gfile.GFile` opened for writing (like `open`), and a
rename (`os.replace`, `os.rename`, `tf.io.gfile.rename`: dies before it). Writes done in
C++ by TensorFlow (TensorBoard events, SavedModel files) are not seen: the timed kills
cover them. `--kill-at 0` kills nowhere and only logs the events (a reference run); the
log has one line per event: index, seconds since start, kind, path.
"""

from __future__ import annotations

import argparse
import builtins
import io
import os
import runpy
import signal
import sys
import time


class Watcher:
    def __init__(self, folders: list[str], kill_at: int, log: str):
        self.folders = [os.path.abspath(folder) + os.sep for folder in folders]
        self.kill_at = kill_at
        self.count = 0
        self.start = time.monotonic()
        self.log = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if log else None

    def watched(self, path) -> bool:
        try:
            path = os.path.abspath(os.fsdecode(path))
        except TypeError:
            return False  # a file descriptor
        return any(path.startswith(folder) or path + os.sep == folder for folder in self.folders)

    def event(self, kind: str, path) -> bool:
        """Counts a write event; True when the process must die at it."""
        self.count += 1
        if self.log is not None:
            line = f"{self.count}\t{time.monotonic() - self.start:.3f}\t{kind}\t{os.fsdecode(path)}\n"
            os.write(self.log, line.encode("utf-8", "replace"))
        return self.count == self.kill_at

    @staticmethod
    def die() -> None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


class _TornOnWrite:
    """A file object that kills the process after writing half of its first chunk."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        half = data[: max(1, len(data) // 2)]
        self._handle.write(half)
        self._handle.flush()
        Watcher.die()

    def close(self):
        Watcher.die()  # opened for writing and closed unwritten: the empty file stays

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getattr__(self, name):
        return getattr(self._handle, name)


def _writes(mode) -> bool:
    return isinstance(mode, str) and any(flag in mode for flag in "wax+")


def install(watcher: Watcher) -> None:
    original_open = io.open

    def watched_open(file, mode="r", *args, **kwargs):
        handle = original_open(file, mode, *args, **kwargs)
        if _writes(mode) and watcher.watched(file) and watcher.event("open", file):
            return _TornOnWrite(handle)
        return handle

    io.open = builtins.open = watched_open

    for module, name in ((os, "replace"), (os, "rename")):
        original = getattr(module, name)

        def renamed(source, target, *args, _original=original, _name=name, **kwargs):
            if watcher.watched(target) and watcher.event(_name, target):
                watcher.die()
            return _original(source, target, *args, **kwargs)

        setattr(module, name, renamed)

    try:
        import h5py
    except ImportError:
        h5py = None
    if h5py is not None:
        original_file = h5py.File.__init__

        def h5_init(self, name, mode="r", *args, **kwargs):
            original_file(self, name, mode, *args, **kwargs)
            if _writes(mode) and watcher.watched(name) and watcher.event("h5py", name):
                self.flush()
                watcher.die()

        h5py.File.__init__ = h5_init

    import tensorflow as tf  # the runs watched here load it anyway

    gfile = tf.io.gfile
    original_init, original_write, original_rename = gfile.GFile.__init__, gfile.GFile.write, gfile.rename

    def gfile_init(self, name, mode="r", *args, **kwargs):
        original_init(self, name, mode, *args, **kwargs)
        self._kill_on_write = _writes(mode) and watcher.watched(name) and watcher.event("gfile", name)

    def gfile_write(self, data):
        if getattr(self, "_kill_on_write", False):
            original_write(self, data[: max(1, len(data) // 2)])
            self.flush()
            watcher.die()
        return original_write(self, data)

    def gfile_rename(source, target, overwrite=False):
        if watcher.watched(target) and watcher.event("gfile.rename", target):
            watcher.die()
        return original_rename(source, target, overwrite)

    gfile.GFile.__init__, gfile.GFile.write, gfile.rename = gfile_init, gfile_write, gfile_rename


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: python -m benchmarks.reliability.inject [options] -- MODULE ARGS...")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability.inject")
    parser.add_argument("--watch", action="append", required=True, help="a folder whose writes count")
    parser.add_argument("--kill-at", type=int, default=0, help="die at this write event (0: never)")
    parser.add_argument("--log", default="", help="append the write events to this file")
    args = parser.parse_args(argv[:split])
    module, *module_args = argv[split + 1 :]
    install(Watcher(args.watch, args.kill_at, args.log))
    sys.argv = [module, *module_args]
    if module.endswith(".py"):
        runpy.run_path(module, run_name="__main__")
    else:
        runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
