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
import json
import logging
import os
import select
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
    on time but leaves sympy burning CPU and holding the GIL. A child process can be killed.

    Why `subprocess` and not `multiprocessing`: fork is unsafe once CUDA or NCCL threads exist
    (Lightning DDP ranks), and spawn re-imports the user's `__main__` script. A plain
    `python -c` child imports only this module. One worker per process (each DDP rank gets its
    own); a forked child notices the pid change and starts its own. Needs POSIX `select` on pipes.

    Cost: starting a worker means importing sympy (seconds). A replacement is launched as soon as
    one is killed, so it is usually ready by the next call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._atexit_registered = False

    def grade(self, pred: str, gt: str, timeout_s: float) -> bool:
        """mathruler's verdict, or False if it takes longer than `timeout_s` seconds."""
        with self._lock:
            proc = self._ensure_ready()
            assert proc.stdin is not None and proc.stdout is not None, "worker pipes are missing"
            try:
                proc.stdin.write(json.dumps([pred, gt]).encode("ascii") + b"\n")
                proc.stdin.flush()
                line = _read_line(proc.stdout.fileno(), time.monotonic() + timeout_s)
            except (BrokenPipeError, EOFError) as err:
                # The worker died mid-request (killed from outside, or crashed with a traceback on
                # stderr): the pair is ungraded, so it counts as wrong.
                log.warning("sympy grading worker died (%s); grading %.100r vs %.100r as wrong", err, pred, gt)
                self._restart()
                return False
            if line is None:
                log.warning("sympy check exceeded %.1f s; grading %.100r vs %.100r as wrong", timeout_s, pred, gt)
                self._restart()
                return False
            return line == b"1\n"

    def _ensure_ready(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._restart()
        proc = self._proc
        assert proc is not None and proc.stdout is not None, "worker was not launched"
        if not self._ready:
            try:
                ready = _read_line(proc.stdout.fileno(), time.monotonic() + _STARTUP_TIMEOUT_S)
            except EOFError:
                ready = None
            if ready != b"ready\n":
                self._kill()
                raise RuntimeError(
                    f"The sympy grading worker ({sys.executable} -c {_WORKER_COMMAND!r}) did not "
                    f"start within {_STARTUP_TIMEOUT_S:.0f} s; see its traceback above, if any."
                )
            self._ready = True
        return proc

    def _restart(self) -> None:
        """Kill the current worker, if any, and launch a new one without waiting for it."""
        self._kill()
        # The child must import this package from wherever the parent does (editable install,
        # a source checkout on sys.path, ...), so it inherits the parent's sys.path.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self._ready = False
        if not self._atexit_registered:
            atexit.register(self._kill)
            self._atexit_registered = True

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._proc = None


def _read_line(fd: int, deadline: float) -> bytes | None:
    """One newline-terminated line from `fd`, or None at `deadline`; EOFError if the writer died."""
    buf = b""
    while not buf.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 64)
        if not chunk:
            raise EOFError("worker closed its output")
        buf += chunk
    return buf


def _serve() -> None:
    """Worker main loop: read `[pred, gt]` JSON lines from stdin, answer b"1" or b"0" per line."""
    import resource

    from mathruler.grader import grade_answer as mathruler_grade

    # sympy's first simplify in a fresh process fills caches and can take over a second; do it
    # before reporting ready so the caller's time bound measures only its own comparison.
    mathruler_grade("(x+1)**2", "x**2+2*x+1")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > _WORKER_MEMORY_BYTES:
        resource.setrlimit(resource.RLIMIT_AS, (_WORKER_MEMORY_BYTES, hard))
    parent = os.getppid()

    def exit_with_parent() -> None:
        # If the parent dies mid-request, nobody will read our answer or kill us: exit instead of
        # finishing a possibly endless sympy call.
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        pred, gt = json.loads(line)
        # mathruler catches every sympy/pylatexenc error itself (bare `except:`) and reports it
        # as "not equal", so nothing text-dependent can escape this call.
        out.write(b"1\n" if mathruler_grade(pred, gt) else b"0\n")
        out.flush()


_WORKERS: dict[int, _SympyWorker] = {}


def _worker() -> _SympyWorker:
    # Keyed by pid so a forked child never writes into its parent's pipes.
    return _WORKERS.setdefault(os.getpid(), _SympyWorker())


def grade_answer(pred: str, gt: str, timeout_s: float = 2.0) -> bool:
    r"""mathruler's verdict on `pred` vs `gt`; False if the sympy check takes over `timeout_s` s.

    Matches after MATH-style normalisation (`\frac12` = `0.5`, `Yes` = `yes`, units, `%`, `$`
    dropped), compares tuples element-wise, requires integers and fractions to match literally,
    and otherwise asks sympy whether the difference simplifies to 0. Never raises on text.

    >>> grade_answer(r"\frac{1}{2}", "0.5"), grade_answer("Yes", "yes"), grade_answer("B. cat", "B")
    (True, True, False)
    >>> grade_answer("9**9**9", "x", timeout_s=0.5)  # sympy would compute 9^387420489
    False
    """
    assert timeout_s > 0, f"timeout_s must be positive, got {timeout_s}"
    if len(pred) > MAX_ANSWER_CHARS or len(gt) > MAX_ANSWER_CHARS:
        return pred.strip() == gt.strip()
    # Imported here: mathruler.grader imports sympy, which takes seconds, and importing this
    # package should stay cheap for code that only extracts answers.
    from mathruler.grader import _normalize
    from mathruler.math_normalize import normalize_answer

    # mathruler's own first two steps, run here because they settle most matches without sympy;
    # neither can raise on a str (both wrap their parsers in bare `except:`).
    if normalize_answer(pred) == normalize_answer(gt) or _normalize(pred) == _normalize(gt):
        return True
    return _worker().grade(pred, gt, timeout_s)


def grade_mcq(pred_text: str, gt_letter: str, letters: str = DEFAULT_LETTERS) -> bool:
    """True if the option letter read from `pred_text` equals the ground-truth letter.

    Both sides go through `extract_choice_letter`, so a ground truth of "B", "(B)" or "b" works.

    >>> grade_mcq("<answer>B. cat</answer>", "B"), grade_mcq("\\\\boxed{(b)}", "B"), grade_mcq("A or B", "B")
    (True, True, False)
    """
    want = extract_choice_letter(gt_letter, letters)
    return want is not None and extract_choice_letter(pred_text, letters) == want
