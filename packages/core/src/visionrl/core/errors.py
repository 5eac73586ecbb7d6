"""The error users can cause and fix, shared by every module (imports nothing, so nothing imports in a circle).

`run_cli` turns a `UserError` into `error: <message>` on stderr and exit code 2; the message is one sentence
naming the flag, file or row. `visionrl.core.data.validate.DataError` (a bad dataset row) is one too.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix; the message is one sentence naming the flag, file or row."""
