"""The operator console: a Textual app that watches and steers rollouts through the journal.

Textual is imported only below this package (and by `ui.launch.run_console`).
"""
