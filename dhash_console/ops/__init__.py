"""Operations the engine composes: backup, migrate, deploy, smoke, probes, notify."""
