"""Ctrl-C during `tune` and `bench`: one line, exit code 130, no traceback, no process left.

A terminal sends SIGINT to the whole foreground process group: to us and to TVM's builder and
runner workers, the re-measurement process and g++. Raising KeyboardInterrupt does not work
here: TVM turns it into a RuntimeError inside its callbacks (which would then look like a
failed candidate or bench cell), and every worker prints its own traceback. So while a command
runs, SIGINT is blocked in every thread, and a child inherits its parent thread's signal mask
across exec: TVM's workers never see it. One thread takes it with sigwait and ends the process:
it freezes every descendant (SIGSTOP, so that none dies while we still run and the main thread
records that death as a crashed candidate), says what was kept and how to resume, kills them and
exits at once. Stopping wherever the main thread is is safe because everything worth keeping is
already on disk, record by record (fsynced ledger and results, files written whole): the same
guarantee that makes a `kill -9` resumable.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil

EXIT_CODE = 130  # 128 + SIGINT, what shells report for a Ctrl-C


def _descendants() -> list[int]:

    try:
        return [p.pid for p in psutil.Process().children(recursive=True)]
    except psutil.Error:
        return []


def _signal_all(pids, sig) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:  # already gone
            pass


def freeze_descendants() -> list[int]:
    """SIGSTOP every descendant, again until no new one appears (a worker pool may be starting
    one right now); returns their pids."""
    frozen: list[int] = []
    for _ in range(10):
        fresh = [pid for pid in _descendants() if pid not in frozen]
        if not fresh:
            break
        _signal_all(fresh, signal.SIGSTOP)
        frozen += fresh
    return frozen


def _end(describe: Callable[[], str]) -> None:
    frozen = freeze_descendants()
    try:
        text = describe()
    except Exception as e:  # the message must not keep us from exiting
        text = f"could not say what was kept ({type(e).__name__}: {e})"
    try:
        sys.stdout.flush()
    except Exception:
        pass
    lead = "\n" if sys.stderr.isatty() else ""  # below a live progress line
    os.write(2, f"{lead}shared-mcts: interrupted: {text}\n".encode())
    _signal_all(frozen, signal.SIGKILL)
    os._exit(EXIT_CODE)


@contextmanager
def exit_on_interrupt(describe: Callable[[], str]) -> Iterator[None]:
    """Within the block, Ctrl-C (SIGINT) ends the process with one line, `shared-mcts:
    interrupted: ` + describe(), and exit code 130. Threads and child processes started inside
    it inherit the blocked signal from the thread that starts them.

    Threads that already run (numpy's OpenBLAS starts its own when numpy is imported) do not
    block it, and the kernel delivers a process-wide signal to one of them: Python's C handler,
    which runs in whatever thread gets the signal, writes it to a wakeup pipe that a second
    waiter reads. With no such thread the signal stays pending for the sigwait waiter."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal masks and wakeup fds can only be arranged from the main thread
        return
    closing = threading.Event()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)

    def end_unless_closing() -> None:
        if not closing.is_set():
            _end(describe)

    def pending() -> None:
        signal.sigwait({signal.SIGINT})
        end_unless_closing()

    def delivered() -> None:
        os.read(wake_read, 1)
        end_unless_closing()

    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: None)  # so the C handler writes the pipe
    previous_wakeup = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    waiters = [threading.Thread(target=target, name=f"shared-mcts-interrupt-{target.__name__}", daemon=True)
               for target in (pending, delivered)]
    for waiter in waiters:
        waiter.start()
    try:
        yield
    finally:
        closing.set()
        signal.pthread_kill(waiters[0].ident, signal.SIGINT)  # wakes the sigwait waiter, which sees `closing`
        os.write(wake_write, b"\0")  # and the pipe's reader
        for waiter in waiters:
            waiter.join()
        signal.set_wakeup_fd(previous_wakeup)
        signal.signal(signal.SIGINT, previous_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        os.close(wake_read)
        os.close(wake_write)
