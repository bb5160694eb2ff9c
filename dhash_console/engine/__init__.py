"""The rollout engine: state machine, monitoring window, gate evaluation, clock. No UI here."""
