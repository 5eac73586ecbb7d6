"""Answer grading: mathruler 0.1.0's `grade_answer` with a time bound, and a letter grader for MCQ.

`grade_answer` returns exactly what `mathruler.grader.grade_answer` returns, with two departures:

1. The sympy step runs with a time bound. A symbolic comparison slower than `timeout_s` counts as
   wrong: mathruler's own guards let e.g. `9**9**9` vs `x` through, and sympy then computes
   9^387420489 for minutes. The check runs in a helper process (see `_SympyWorker` for why).
2. Inputs longer than `MAX_ANSWER_CHARS` are compared as stripped strings only: an answer that
   long is never a short closed-form match, and mathruler's normalisation (pylatexenc, regex
   loops) is superlinear on such text.

mathruler's verdicts that are easy to get wrong are pinned in `tests/core/test_rewards_grade.py`.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time

from visionrl.core.rewards.extract import DEFAULT_LETTERS, extract_choice_letter

log = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 1000
_STARTUP_TIMEOUT_S = 120.0  # importing sympy in a fresh interpreter; not charged to `timeout_s`
_WORKER_MEMORY_BYTES = 4 << 30  # so a runaway expression raises MemoryError instead of OOM-ing the node
_WORKER_COMMAND = "from visionrl.core.rewards.grade import _serve; _serve()"


class _SympyWorker:
    """A helper process that runs `mathruler.grader.grade_answer`, killed when it overruns.

    Why a process: sympy is pure Python and cannot be interrupted from outside its thread. A
    `signal.alarm` only works in the main thread (reward code may run in a thread pool) and its
    exception would be swallowed by mathruler's bare `except:` anyway. A watchdog thread returns
    on time but leaves sympy burning CPU and holding the GIL. A process can be killed.

    Why `subprocess` and not `multiprocessing`: fork is unsafe once CUDA or NCCL threads exist
    (Lightning DDP ranks), and spawn re-imports the user's `__main__` script. A plain
    `python -c` server imports only this module and sympy (seconds), then forks the process that
    grades; killing that one and forking a warm replacement takes milliseconds. One server per
    process, so each DDP rank has its own and a forked caller starts its own. Needs POSIX.

    Protocol, one line each way: `[pred, gt]` as JSON in; `1`/`0` out, `dead` when the grading
    process died, `ready <pid>` when a new one is listening.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner = os.getpid()
        self._proc: subprocess.Popen[bytes] | None = None
        self._grader_pid = 0  # 0 until a `ready <pid>` line has been read
        self._buf = b""
        self._atexit_registered = False

    def grade(self, pred: str, gt: str, timeout_s: float) -> bool:
        """mathruler's verdict, or False if it takes longer than `timeout_s` seconds."""
        with self._lock:
            proc = self._ensure_ready()
            assert proc.stdin is not None, "worker stdin pipe is missing"
            try:
                proc.stdin.write(json.dumps([pred, gt]).encode("ascii") + b"\n")
                proc.stdin.flush()
                line = self._read_line(time.monotonic() + timeout_s)
            except (BrokenPipeError, EOFError) as err:
                # The server itself died (killed from outside): the pair is ungraded, so it counts
                # as wrong, and the next call starts a new server.
                log.warning(
                    "sympy grading server died (%s); grading %.100r vs %.100r as wrong", err, pred, gt
                )
                self._kill()
                return False
            if line is None:
                # Kill only the grader; the server forks a warm one. A late answer from the killed
                # grader, if any, is skipped by `_ensure_ready`.
                log.warning(
                    "sympy check exceeded %.1f s; grading %.100r vs %.100r as wrong", timeout_s, pred, gt
                )
                try:
                    os.kill(self._grader_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # it crashed just now; the server reports that and forks a new one
                self._grader_pid = 0
                return False
            if line == b"dead\n":
                # The grading process crashed; its traceback is on stderr. A new one is forked.
                log.warning("sympy grading process crashed on %.100r vs %.100r; graded as wrong", pred, gt)
                self._grader_pid = 0
                return False
            return line == b"1\n"

    def launch(self) -> None:
        """Start the server in the background if it is not running; do not wait for it."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()

    def _ensure_ready(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        assert self._proc is not None, "worker was not started"
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not self._grader_pid:
            try:
                line = self._read_line(deadline)
            except EOFError:
                line = None
            if line is None:
                self._kill()
                raise RuntimeError(
                    f"The sympy grading server ({sys.executable} -c {_WORKER_COMMAND!r}) did not "
                    f"start within {_STARTUP_TIMEOUT_S:.0f} s; see its traceback above, if any."
                )
            if line.startswith(b"ready "):
                self._grader_pid = int(line.split()[1])
            # Any other line is the late answer or death notice of a grader killed on timeout.
        return self._proc

    def _start(self) -> None:
        self._kill()
        # The server must import this package from wherever the caller does (editable install,
        # a source checkout on sys.path, ...), so it inherits the caller's sys.path.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        if not self._atexit_registered:
            atexit.register(self._kill)
            self._atexit_registered = True

    def _kill(self) -> None:
        if os.getpid() != self._owner:
            return  # a forked copy of this object, e.g. at a forked child's exit: not our server
        if self._proc is not None:
            self._proc.kill()  # its grading child sees stdin close (or its parent vanish) and exits
            self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._proc = None
        self._grader_pid, self._buf = 0, b""

    def _read_line(self, deadline: float) -> bytes | None:
        """The next line from the server, or None at `deadline`; EOFError if the server died."""
        assert self._proc is not None and self._proc.stdout is not None, "worker stdout pipe is missing"
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError("grading server closed its output")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line + b"\n"


def _exit_when_orphaned() -> None:
    """Exit once the parent is gone, even in the middle of an endless sympy call."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _serve() -> None:
    """Server main loop: fork a grading process, and fork a new one whenever it dies."""
    import resource

    from mathruler.grader import grade_answer as mathruler_grade

    # sympy's first simplify in a fresh process fills caches and can take over a second; do it
    # once here, so that every forked grader starts warm and `timeout_s` measures only its work.
    mathruler_grade("(x+1)**2", "x**2+2*x+1")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > _WORKER_MEMORY_BYTES:
        resource.setrlimit(resource.RLIMIT_AS, (_WORKER_MEMORY_BYTES, hard))
    _exit_when_orphaned()
    out = sys.stdout.buffer
    while True:
        pid = os.fork()
        if pid == 0:
            _exit_when_orphaned()
            out.write(f"ready {os.getpid()}\n".encode())
            out.flush()
            while line := sys.stdin.buffer.readline():
                pred, gt = json.loads(line)
                # mathruler catches every sympy/pylatexenc error itself (bare `except:`) and
                # reports it as "not equal", so nothing text-dependent can escape this call.
                out.write(b"1\n" if mathruler_grade(pred, gt) else b"0\n")
                out.flush()
            os._exit(0)  # stdin closed: the caller is gone
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            return
        out.write(b"dead\n")
        out.flush()


_WORKERS: dict[int, _SympyWorker] = {}


def _worker() -> _SympyWorker:
    # Keyed by pid so a forked caller never writes into its parent's pipes.
    return _WORKERS.setdefault(os.getpid(), _SympyWorker())


def grade_answer(pred: str, gt: str, timeout_s: float = 2.0) -> bool:
    r"""mathruler's verdict on `pred` vs `gt`; False if the sympy check takes over `timeout_s` s.

    Matches after MATH-style normalisation (`\frac12` = `0.5`, `Yes` = `yes`, units, `%`, `$`
    dropped), compares tuples element-wise, requires integers and fractions to match literally,
    and otherwise asks sympy whether the difference simplifies to 0. Never raises on text.

    >>> grade_answer(r"\frac{1}{2}", "0.5"), grade_answer("Yes", "yes"), grade_answer("B. cat", "B")
    (True, True, False)
    """
    assert timeout_s > 0, f"timeout_s must be positive, got {timeout_s}"
    if len(pred) > MAX_ANSWER_CHARS or len(gt) > MAX_ANSWER_CHARS:
        return pred.strip() == gt.strip()
    # Imported here: mathruler.grader imports sympy, which takes seconds, and importing this
    # package should stay cheap for code that only extracts answers. The server is launched
    # first so that, on the first call, its sympy import runs while ours does.
    _worker().launch()
    from mathruler.grader import _normalize
    from mathruler.math_normalize import normalize_answer

    # mathruler's own first two steps, run here because they settle most matches without sympy;
    # neither can raise on a str (both wrap their parsers in bare `except:`).
    if normalize_answer(pred) == normalize_answer(gt) or _normalize(pred) == _normalize(gt):
        return True
    return _symbolic(pred, gt, timeout_s)


@functools.lru_cache(maxsize=1 << 16)
def _symbolic(pred: str, gt: str, timeout_s: float) -> bool:
    # RL graders see the same (answer, ground truth) pairs over and over (G samples per prompt, short
    # answers); caching the verdict saves a round trip to the helper process for each repeat.
    return _worker().grade(pred, gt, timeout_s)


def grade_mcq(pred_text: str, gt_letter: str, letters: str = DEFAULT_LETTERS) -> bool:
    """True if the option letter read from `pred_text` equals the ground-truth letter.

    Both sides go through `extract_choice_letter`, so a ground truth of "B", "(B)" or "b" works.

    >>> grade_mcq("<answer>B. cat</answer>", "B"), grade_mcq("\\\\boxed{(b)}", "B"), grade_mcq("A or B", "B")
    (True, True, False)
    """
    want = extract_choice_letter(gt_letter, letters)
    return want is not None and extract_choice_letter(pred_text, letters) == want
