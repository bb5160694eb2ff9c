"""The faces: headless (text or JSON lines) and the Textual console."""
