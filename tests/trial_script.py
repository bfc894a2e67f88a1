"""A scripted model for `localcodex trial`: what the emulator answers Codex for the trial's two tasks.

Set it as the emulator's responder (``emu.responder = TrialScript()``); it answers the way a well-behaved coding
model answers Codex 0.169, using the tools Codex really offers (``exec_command`` with a ``cmd`` string):

* the read-only task -> a plain text summary naming ``python -m unittest``;
* the edit task -> ``exec_command`` running ``apply_patch`` with a heredoc (as Codex's prompt tells models to
  edit files; Codex intercepts the call and applies the patch itself), then, once the
  ``function_call_output`` is back, a short final message.

Misbehaviour, for tests that must see a trial fail: ``read_only="edit"`` (edits ``calc/ops.py`` anyway),
``read_only="greeting"`` (answers with the emulator's greeting, not how to run the tests),
``edit="none"`` (claims success without a tool call),
``edit="prose"`` (writes the tool call as JSON text, as models with a broken tool template do),
``edit="other_file"`` (also touches ``calc/ops.py``), ``edit="failing_test"`` (adds a test that fails).
Any other prompt gets the emulator's default answer, so setup's own ``codex exec`` checks keep working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from emulator import Reply, ResponderRequest
from emulator.responder import default_reply

from localcodex.adapters.scratch_repo import template_files
from localcodex.core.trial import EDIT_TARGET, EDIT_TASK, READ_ONLY_TASK

SUMMARY = ("Run the tests from the repository root with `python -m unittest -v` (standard library, nothing to "
           "install). They cover add, divide (including dividing by zero) and mean.")
EDIT_DONE = f"Added test_mean_of_empty_list_raises to {EDIT_TARGET}: mean([]) must raise ValueError."
NEW_TEST = ["", "    def test_mean_of_empty_list_raises(self):", "        with self.assertRaises(ValueError):",
            "            mean([])"]
FAILING_TEST = ["", "    def test_mean_of_empty_list_is_zero(self):", "        self.assertEqual(mean([]), 0)"]
SHELL_TOOL = "exec_command"


def hunk(path: str, added: list[str], context: int = 3) -> list[str]:
    """apply_patch lines appending `added` after the last `context` lines of template file `path`."""
    tail = template_files()[path].rstrip("\n").splitlines()[-context:]
    return [f"*** Update File: {path}", "@@", *(f" {line}" for line in tail), *(f"+{line}" for line in added)]


def apply_patch_command(*hunks: list[str]) -> str:
    """The shell command a model sends through exec_command: one apply_patch envelope in a heredoc (Codex
    intercepts exactly that shape and applies the patch itself)."""
    lines = ["*** Begin Patch", *(line for h in hunks for line in h), "*** End Patch"]
    return "apply_patch <<'PATCH'\n" + "\n".join(lines) + "\nPATCH"


@dataclass
class TrialScript:
    read_only: str = "answer"  # answer | edit
    edit: str = "patch"  # patch | none | prose | other_file | failing_test
    seen: list[ResponderRequest] = field(default_factory=list)

    def __call__(self, req: ResponderRequest) -> Reply:
        self.seen.append(req)
        prompt = req.last_user_text
        if READ_ONLY_TASK in prompt:
            return self._read_only(req)
        if EDIT_TASK in prompt:
            return self._edit(req)
        return default_reply(req)

    def _read_only(self, req: ResponderRequest) -> Reply:
        if self.read_only == "answer" or req.function_outputs:
            return Reply(text=SUMMARY)
        if self.read_only == "edit":
            return self._call(req, "printf '\\n# tidied up\\n' >> calc/ops.py")
        if self.read_only == "greeting":  # an answer, but not to the question
            return default_reply(req)
        raise ValueError(f"unknown read_only behaviour {self.read_only!r}")

    def _edit(self, req: ResponderRequest) -> Reply:
        if req.function_outputs:
            return Reply(text=EDIT_DONE)
        if self.edit == "none":
            return Reply(text=EDIT_DONE)
        if self.edit == "prose":
            return Reply(text=json.dumps({"name": SHELL_TOOL, "arguments": {"cmd": self._edit_command()}}))
        return self._call(req, self._edit_command())

    def _edit_command(self) -> str:
        if self.edit == "failing_test":
            return apply_patch_command(hunk(EDIT_TARGET, FAILING_TEST))
        test_hunk = hunk(EDIT_TARGET, NEW_TEST)
        if self.edit == "other_file":
            return apply_patch_command(test_hunk, hunk("calc/ops.py", ["", "", "ZERO = 0"], context=1))
        return apply_patch_command(test_hunk)

    @staticmethod
    def _call(req: ResponderRequest, cmd: str) -> Reply:
        if SHELL_TOOL not in req.tool_names:
            raise AssertionError(f"Codex offered no {SHELL_TOOL} tool; it offered {req.tool_names}")
        arguments: dict[str, Any] = {"cmd": cmd}
        return Reply(tool_calls=[(SHELL_TOOL, arguments)])
