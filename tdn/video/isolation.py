"""Crash-proof calls: run ``fn(arg)`` in a throw-away child process, under a hard time-out.

FFmpeg (behind PyAV and decord) can crash or hang on hostile files. :class:`Server` keeps one long-lived
helper process (a "zygote") that imports the heavy modules once and then forks one child per call; the
child runs ``fn(arg)`` and pickles the result back through a pipe. A child that crashes closes the pipe
without an answer (:class:`ChildCrashed`); one that overruns the time-out is killed
(:class:`ChildTimedOut`). The caller and the zygote survive both.

Why not the obvious tools: forking the caller itself is unsafe (it may hold torch/OpenMP threads), and
``multiprocessing``'s spawn and forkserver children re-import the caller's ``__main__``. The zygote is
started with ``python -c`` instead, so a Streamlit script or an unguarded user script is never re-run.
``fn`` travels by reference (pickled as module + name), so it must be a module-level function; ``arg``
and the result must pickle. A call costs mostly the fork of a process holding torch and PyAV; starting the
zygote is paid once.
"""

from __future__ import annotations

import importlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any


class IsolationError(Exception):
    """An isolated call that gave no answer."""


class ChildCrashed(IsolationError):
    """The child died (signal, abort, out of memory) before it answered."""


class ChildTimedOut(IsolationError):
    """The child overran its time-out and was killed."""


class ServerUnavailable(IsolationError):
    """The zygote could not be started or reached."""


def available() -> bool:
    """Whether this platform can isolate calls (needs fork and passing file descriptors)."""
    return hasattr(os, "fork") and hasattr(socket, "send_fds")


class Server:
    """Parent side of the zygote: hand it (fn, arg) and a pipe, read the forked child's answer.

    ``preload`` names modules the zygote imports before its first call (every child inherits them).
    Thread-safe; a process forked from the owner gets a zygote of its own on first use.
    """

    HANDSHAKE_TIMEOUT_S = 120.0  # the first call also waits for the zygote's imports

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        self.preload = preload
        self._lock = threading.Lock()
        self._owner_pid = os.getpid()
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None

    def call(self, fn: Callable[[Any], Any], arg: Any, timeout_s: float) -> Any:
        """``fn(arg)`` run in a fresh child; raises :class:`IsolationError` when no answer comes."""
        payload = pickle.dumps((fn, arg), protocol=pickle.HIGHEST_PROTOCOL)
        read_fd, write_fd = os.pipe()
        try:
            pid = self._submit(payload, write_fd)
            os.close(write_fd)
            write_fd = -1
            data = _read_until_eof(read_fd, pid, time.monotonic() + timeout_s)
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        if data is None:
            raise ChildTimedOut(f"the isolated call took longer than {timeout_s:g} s and was stopped")
        try:
            return pickle.loads(data)
        except Exception as error:  # an empty or cut answer means the child died
            raise ChildCrashed("the isolated child process died before it answered") from error

    def start(self) -> None:
        """Start the zygote now (if it is not running), so that the first call does not wait for it."""
        with self._lock:
            self._ensure_started()

    def stop(self) -> None:
        """Stop the zygote; the next call starts a new one."""
        with self._lock:
            self._stop()

    def _ensure_started(self) -> None:
        if self._owner_pid != os.getpid():  # we were forked: the zygote and socket belong to the parent
            self._owner_pid, self._process, self._socket = os.getpid(), None, None
        if self._process is None or self._process.poll() is not None:
            self._stop()
            self._start()

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        code = "import sys; from tdn.video.isolation import serve; serve(int(sys.argv[1]), sys.argv[2:])"
        self._process = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno()), *self.preload],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is for the caller, not the zygote
        )
        theirs.close()
        self._socket = ours

    def _stop(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._socket, self._process = None, None

    def _submit(self, payload: bytes, write_fd: int) -> int:
        """Hand a call to the zygote; returns the pid of the child working on it."""
        with self._lock:
            for _ in range(2):  # a zygote that died since the last call is restarted once
                self._ensure_started()
                assert self._socket is not None
                try:
                    socket.send_fds(self._socket, [struct.pack("<I", len(payload)) + payload], [write_fd])
                    self._socket.settimeout(self.HANDSHAKE_TIMEOUT_S)
                    pid = struct.unpack("<q", _recv_exact(self._socket, 8))[0]
                except OSError:
                    self._stop()
                    continue
                if pid > 0:
                    return pid
                self._stop()  # the zygote could not fork or read the call
        raise ServerUnavailable("the isolated helper process could not be started")


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        more = sock.recv(count - len(data))
        if not more:
            raise ConnectionError("the other end closed the connection")
        data += more
    return data


def _read_until_eof(fd: int, pid: int, deadline: float) -> bytes | None:
    """Everything the child writes, or None (after killing it) once the deadline passes."""
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def serve(fd: int, preload: list[str]) -> None:
    """The zygote's loop: receive (call, pipe), fork a child that runs the call and writes its answer."""
    for name in preload:
        importlib.import_module(name)  # once here, not in every forked child
    sock = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
            if not message or not fds:
                return  # the caller has gone: so do we
            if len(message) < 4:
                message += _recv_exact(sock, 4 - len(message))
            (length,) = struct.unpack("<I", message[:4])
            payload = message[4:]
            if len(payload) < length:
                payload += _recv_exact(sock, length - len(payload))
        except OSError:
            return
        try:
            fn, arg = pickle.loads(payload)  # here, so that fn's module is imported once in the zygote
        except Exception:
            fn, arg = None, None
        pid = os.fork()
        if pid == 0:
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                if fn is None:
                    raise RuntimeError("the call could not be unpickled")
                result = fn(arg)
                with os.fdopen(fds[0], "wb") as out:
                    pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(fds[0])
        sock.sendall(struct.pack("<q", pid))
