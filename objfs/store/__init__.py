"""The namespaced item store (seed 003): items as JSON files under namespace directories.

See `store` for the operations and concurrency, `names` for the layout and its encoding, `items`
for the object's body and metadata, `query` for filters and sorting, and `index` for what makes
a warm search cost listings only.
"""

from .items import CorruptItem, Item, StoreConflict
from .store import SearchResult, Store

__all__ = ["CorruptItem", "Item", "SearchResult", "Store", "StoreConflict"]
