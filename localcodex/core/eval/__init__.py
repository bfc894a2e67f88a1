"""`localcodex eval`: the same task set on every model path (Codex profile), graded, kept in the receipts.

tasks (built-in set and users' task folders) -> attempt (one `codex exec` + its grade) -> runner (task ×
profile × repeat, receipts as it goes) -> report (per class of work: pass rate, time, tokens, cost, verdict).
"""
