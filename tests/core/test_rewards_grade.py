"""Table tests of answer grading (visionrl.core.rewards.grade).

`grade_answer` must agree with mathruler 0.1.0: every row of GRADE is also run through
`mathruler.grader.grade_answer` itself, so the expected values are the library's verdicts, some of
them surprising (marked "!").
"""

import os
import threading
import time

import pytest
from mathruler.grader import grade_answer as mathruler_grade_answer
from visionrl.core.rewards import grade as grade_module
from visionrl.core.rewards import grade_answer, grade_mcq
from visionrl.core.rewards.grade import MAX_ANSWER_CHARS

GRADE = [
    # Fractions and decimals.
    (r"\frac12", "0.5", True),
    (r"\frac{1}{2}", "1/2", True),
    ("0.5", "1/2", True),
    (r"\frac{1}{2}", r"\dfrac{1}{2}", True),
    ("2/4", "1/2", False),  # fractions must match literally
    (r"\frac{2}{4}", r"\frac{1}{2}", False),
    ("1/3", "0.333", False),
    (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}/2", True),
    # Case and letters.
    ("Yes", "yes", True),
    ("yes", "Yes.", False),  # ! a trailing period is not stripped
    ("b", "B", True),
    ("(B)", "B", True),  # via sympy: (b) - b == 0
    ("B)", "B", False),
    ("B. cat", "B", False),  # mathruler has no option-letter extraction
    (r"\text{B}", "B", True),
    ("Answer 1", "1", False),
    # Units, percent, dollars.
    ("50%", "50", True),
    (r"50\%", "50", True),
    ("0.5", "50%", False),  # ! % is dropped, not divided by 100
    (r"\$5", "5", True),
    ("$5.00", "5", True),
    ("5 cm", "5", True),
    (r"5\text{ cm}", "5", True),
    ("5 dogs", "5", False),  # only a fixed list of units is dropped
    (r"10^\circ", "10", True),
    ("3 million", "3000000", False),  # ! "million" becomes *10^6, then integers must match literally
    # Tuples and intervals.
    ("(1,2)", "(1, 2)", True),
    ("(1,2)", "[1,2]", False),  # brackets must match
    ("(2,1)", "(1,2)", False),
    ("1,2", "(1,2)", False),
    ("(1,2,3)", "(1,2)", False),
    ("[0,1)", "[0,1)", True),
    # Integers are strict: no sympy.
    ("1,000", "1000", True),
    ("2.0", "2", True),
    ("2.00001", "2", False),
    ("3", "3.0000001", True),  # ! integers are compared with a 1e-7 tolerance
    ("4", "2+2", False),  # ! integer ground truth: no arithmetic
    (r"\sqrt{4}", "2", False),  # ! same
    ("1e3", "1000", True),
    # Symbolic.
    ("x+1", "1+x", True),
    ("x^2", "x**2", True),
    (r"2\sqrt{2}", r"\sqrt{8}", True),
    (r"\pi", "3.14159", False),
    (r"\infty", "inf", True),
    # Odds and ends.
    ("None", "None", True),  # ! a missing box ("None") matches a ground truth of "None"
    ("", "None", False),
    ("x=5", "5", True),  # a short "k = " prefix is dropped
    (r"\boxed{5}", "5", True),
    ("5.", "5", True),
    ("-3", "- 3", True),
    ("1", "one", False),
]


@pytest.mark.parametrize(("pred", "gt", "expected"), GRADE)
def test_grade_answer(pred, gt, expected):
    assert mathruler_grade_answer(pred, gt) is expected, "table disagrees with mathruler"
    assert grade_answer(pred, gt) is expected


MCQ = [
    ("B. cat", "B", True),
    ("<answer>B</answer>", "B", True),
    (r"\boxed{B}", "(B)", True),
    ("<think>(A)?</think> The answer is (b)", "B", True),
    ("b", "B", True),
    ("A or B", "B", False),
    ("The answer is C", "B", False),
    ("", "B", False),
    ("B", "", False),  # no ground-truth letter
]


@pytest.mark.parametrize(("pred", "gt", "expected"), MCQ)
def test_grade_mcq(pred, gt, expected):
    assert grade_mcq(pred, gt) is expected


def test_option_text_needs_grade_mcq():
    """The same answer fails mathruler's grader but passes the letter grader."""
    assert grade_answer("B. cat", "B") is False
    assert grade_mcq("B. cat", "B") is True


def test_long_inputs_are_compared_as_strings():
    long = "1" * (MAX_ANSWER_CHARS + 1)
    assert grade_answer(long, long) is True
    assert grade_answer(" " + long, long + "\n") is True
    assert grade_answer(long, "1") is False
    assert grade_answer("x" * 1_000_000, "x") is False


def test_hanging_sympy_times_out_in_a_thread_and_recovers():
    """`9**9**9 - x` passes mathruler's guards and sympy then evaluates 9^387420489.

    Graded from a non-main thread (where `signal.alarm` could not work), it must come back False
    in about `timeout_s`, and the next comparison must work again, on a freshly forked grader.
    """
    assert grade_answer("b", "c") is False  # starts the worker, so startup is not timed below
    result: list[bool] = []
    start = time.perf_counter()
    thread = threading.Thread(target=lambda: result.append(grade_answer("9**9**9", "x", timeout_s=0.5)))
    thread.start()
    thread.join(timeout=30)
    elapsed = time.perf_counter() - start
    assert result == [False]
    assert elapsed < 2.0, f"took {elapsed:.2f} s with timeout_s=0.5"
    start = time.perf_counter()
    assert grade_answer("a+b", "b+a") is True
    assert time.perf_counter() - start < 2.0, "recovery should fork a warm grader, not restart sympy"


def test_forked_caller_gets_its_own_worker():
    """A forked child must not write into its parent's pipes, nor kill its parent's server."""
    assert grade_answer("b", "c") is False  # make sure the parent's server runs
    parent = grade_module._worker()
    pid = os.fork()
    if pid == 0:  # child: check, then leave without running pytest's teardown
        parent._kill()  # must be a no-op here
        os._exit(0 if grade_module._worker() is not parent else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child reused its parent's worker"
    assert parent._proc is not None and parent._proc.poll() is None, "the child killed the parent's server"
    assert grade_answer("a+b", "b+a") is True
