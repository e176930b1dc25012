"""Position keeping from drop copy fills: PositionBook, working orders, exceptions."""

from dropcopy_client.positions._book import Position, PositionBook, PositionException, WorkingOrder

__all__ = ["Position", "PositionBook", "PositionException", "WorkingOrder"]
