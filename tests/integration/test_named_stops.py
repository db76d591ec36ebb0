"""Stop signals and the ``barrier NAME`` client at the moments test_named.py does not reach
(outside review 8; each test failed at 6fa298f): the first stop signal decides its exit code
(128+n), whenever it comes, and the client leaves nothing behind.

The client is a real process. Where the moment is too short to hit from outside every time, it
runs under its own entry point with one call wrapped so that the signal comes exactly then (as
test_stop_signal_windows.py does for the agent's own windows).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from agent.commands.cli import main
from tests.integration.conftest import Agents, finish, wait_for_line

pytestmark = pytest.mark.timeout(60)

# The client's own entry point, with a SIGTERM to itself as it starts to connect to the sidecar:
# after it asked for its stop signals to be taken, before it has sent its request.
_SIGTERM_AS_IT_CONNECTS = (
    "import os, signal, http.client; from agent.__main__ import main\n"
    "connect = http.client.HTTPConnection.connect\n"
    "def connect_after_sigterm(self):\n"
    "    os.kill(os.getpid(), signal.SIGTERM)\n"
    "    return connect(self)\n"
    "http.client.HTTPConnection.connect = connect_after_sigterm; os._exit(main())"
)


@contextlib.contextmanager
def _busy_sidecar() -> Iterator[int]:
    """A port whose listener accepts nothing and whose backlog is full: what a client sees of a
    sidecar too busy (or too slow to start) to take its connection. The kernel drops the
    client's SYN, so its connect waits, until its own connect timeout (5 s)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fill = [socket.socket() for _ in range(3)]
        try:
            for sock in fill:  # backlog 0 holds one; the rest stay half-open, SYN dropped
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.connect(("127.0.0.1", port))
            yield port
        finally:
            for sock in fill:
                sock.close()


def test_a_sigterm_while_the_client_connects_decides_its_code() -> None:
    """The first stop signal decides (143), at whatever moment it comes: one that comes while
    the client connects to a sidecar that does not take the connection ends it at once. At
    6fa298f it was read only once the request was sent: the connect ran its course (5 s) and
    the client exited 2, "no sidecar answers (timed out)"."""
    with _busy_sidecar() as port:
        argv = [sys.executable, "-c", _SIGTERM_AS_IT_CONNECTS, "barrier", "x"]
        argv += ["--listen", "127.0.0.1", "--health-port", str(port)]
        client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            code, _, err = finish(client)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
    assert "Traceback" not in err, err
    assert code == 143, err


def test_a_sigterm_before_a_refused_connect_decides_its_code() -> None:
    """The same moment with no sidecar listening yet (a native sidecar restarting): the SIGTERM
    came first, so it decides (143), not the refusal that came after it (2 at 6fa298f)."""
    argv = [sys.executable, "-c", _SIGTERM_AS_IT_CONNECTS, "barrier", "x"]
    argv += ["--listen", "127.0.0.1", "--health-port", str(_closed_port())]
    code, _, err = finish(
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    )
    assert code == 143, err


# As the answer comes: after the client saw the first bytes of it, before it has read it all.
_SIGTERM_AS_THE_ANSWER_COMES = (
    "import os, signal, http.client; from agent.__main__ import main\n"
    "getresponse = http.client.HTTPConnection.getresponse\n"
    "def getresponse_after_sigterm(self):\n"
    "    os.kill(os.getpid(), signal.SIGTERM)\n"
    "    return getresponse(self)\n"
    "http.client.HTTPConnection.getresponse = getresponse_after_sigterm; os._exit(main())"
)


def test_a_sigterm_as_a_slow_answer_comes_still_stops_the_client() -> None:
    """A stop signal as the answer comes still stops the client (143). What answers on the
    health port sends its status line and headers, and the rest is slow to come (a busy
    process, or not the sidecar at all). At 6fa298f the client read it to its end with its
    stop signals blocked, and without --timeout never ended."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(30)
        argv = [sys.executable, "-c", _SIGTERM_AS_THE_ANSWER_COMES, "barrier", "x"]
        argv += ["--listen", "127.0.0.1", "--health-port", str(listener.getsockname()[1])]
        client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)  # the request
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nreleased")
                try:
                    code, _, err = finish(client, timeout=20)
                except subprocess.TimeoutExpired:
                    pytest.fail("a client SIGTERMed as the answer came still ran 20 s later")
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
    assert "Traceback" not in err, err
    assert code == 143, err


def _closed_port() -> int:
    """A loopback port nothing listens on: the client is refused at once (exit 2)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_client_run_in_process_leaves_no_thread_fd_or_blocked_signal() -> None:
    """Nothing is left behind when the CLI runs in-process (the tests, any Python caller of
    ``agent.commands.cli.main``): once ``main(["barrier", ...])`` has returned, no thread of it
    runs, no descriptor of it is open, and the caller's signal mask is its own again. At
    6fa298f a thread sat in sigwaitinfo for good and the stop signals stayed blocked, so the
    caller's next Ctrl-C or SIGTERM was swallowed."""
    threads = set(threading.enumerate())
    fds = set(os.listdir("/proc/self/fd"))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        code = main(["barrier", "x", "--listen", "127.0.0.1", "--health-port", str(_closed_port())])
        assert code == 2
        left = [t.name for t in set(threading.enumerate()) - threads]
        assert left == [], left
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask
        assert set(os.listdir("/proc/self/fd")) <= fds
    finally:  # what it left: the thread takes a signal sent to it alone, and ends
        for thread in set(threading.enumerate()) - threads:
            assert thread.ident is not None
            with contextlib.suppress(ProcessLookupError):
                signal.pthread_kill(thread.ident, signal.SIGHUP)
            thread.join(10)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _inherit_many_descriptors() -> None:
    """In the child, before it runs the client: every descriptor number from 3 to 1,099 is
    /dev/null, open and inheritable, as a parent with that many files open leaves them (those
    the exec would close, subprocess's own among them, too)."""
    null = os.open(os.devnull, os.O_RDONLY)
    for fd in range(3, 1100):
        if fd != null:
            os.dup2(null, fd)
    os.set_inheritable(null, True)


def test_a_client_that_inherits_many_descriptors_still_passes(agents: Agents) -> None:
    """A client started by a process with more than 1,024 descriptors open and inheritable (a
    shell, ``os.system``, ``subprocess`` with ``close_fds=False``) passes as any other: its
    descriptors are above select()'s FD_SETSIZE, which at 6fa298f ended its wait in a
    traceback and exit 1."""
    agents.publish(0)
    sidecar = agents.start("sidecar", 0, 1)
    wait_for_line(sidecar, "serving /readyz")
    argv = [sys.executable, "-m", "agent", "barrier", "x", "--listen", agents.address(0)]
    client = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        close_fds=False,
        preexec_fn=_inherit_many_descriptors,
    )
    agents.procs.append(client)
    code, _, err = finish(client)
    assert "Traceback" not in err, err
    assert code == 0, err
