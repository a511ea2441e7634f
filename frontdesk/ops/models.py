from frontdesk.ops.throttle import Hit

__all__ = ["Hit"]
