"""The history store (an aiosqlite journal of every event) and the environment lock.

Import the modules you need (`store.history`, `store.lock`, `store.process`): this package
imports nothing itself, so taking a lock never loads the database driver.
"""
