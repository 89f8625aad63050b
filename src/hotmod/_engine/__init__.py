"""The engine: one transaction per batch of changed files.

watch → plan → stage → commit → report, with the module graph beside it:
``graph`` (import hook, module records), ``scan`` (static facts from syntax
trees), ``plan`` (compile and classify), ``stage`` (run what must run again,
isolated), ``patch`` and ``reconcile`` (fold new code into live objects),
``undo`` (the undo log), ``reloader`` (the loop that ties them together).
"""
