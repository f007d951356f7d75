"""Run a function in a forked child process and bring back what it returns."""

import multiprocessing


def _run(function, queue):
    queue.put(function())


def in_forked_child(function, what: str):
    """``function()`` in a child forked from this process (Linux); fails the test, naming
    ``what`` the child was doing, if it hangs or fails."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_run, args=(function, queue))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0, f"the child hung or failed {what}"
    return queue.get(timeout=5)
