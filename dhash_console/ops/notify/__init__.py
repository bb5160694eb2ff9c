"""Notifications that say why (Slack, Discord, Teams, email, console, a JSON webhook).

The engine wires it in with a few lines::

    notifier = Notifier(config.notifications, env=env.name, environ=os.environ,
                        report=bus.publish, console=print_line)
    task = asyncio.create_task(notifier.run(bus.subscribe("notifier", 1000)))
    ...
    await notifier.drain(5.0)   # before bus.close(); bounded
"""

from dhash_console.ops.notify.message import Item, Notification
from dhash_console.ops.notify.notifier import ChannelStats, DeliveryReport, Notifier
from dhash_console.ops.notify.testsend import ChannelResult, send_test

__all__ = [
    "ChannelResult",
    "ChannelStats",
    "DeliveryReport",
    "Item",
    "Notification",
    "Notifier",
    "send_test",
]
