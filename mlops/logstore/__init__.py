"""The production log store (docs/production-data.md): predictions and feedback as immutable,
Hive-partitioned Parquet parts (kind=/date=/hour=) in a local folder or an object store."""

from mlops.logstore.store import Part, Scan, Store, open_store, open_uri

__all__ = ["Part", "Scan", "Store", "open_store", "open_uri"]
